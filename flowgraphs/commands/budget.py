"""``marslink budget``: a surface terminal's link budget to the relay, one line per term with its unit."""

from __future__ import annotations

import sys

DEFAULT_RATE = {"ka": 500e6, "uhf": 256e3}


def register(sub) -> None:
    """Add the ``budget`` subcommand."""
    p = sub.add_parser(
        "budget",
        help="link budget of a terminal class to the LMO relay (EIRP, G/T, losses, C/N0, Es/N0)",
        description="Print the link budget between a Mars surface terminal and a relay in a circular "
        "low Mars orbit at one elevation and dust optical depth.",
    )
    p.add_argument("--terminal", required=True, choices=("fixed", "rover", "eva"), help="terminal class")
    p.add_argument("--band", choices=("ka", "uhf"), help="band (default: the terminal's first)")
    p.add_argument("--elevation", type=float, default=30.0, help="relay elevation, deg (default %(default)s)")
    p.add_argument("--tau", type=float, default=0.5, help="dust optical depth (default %(default)s)")
    p.add_argument("--symbol-rate", type=float, help="symbols/s (default 500e6 at Ka, 256e3 at UHF)")
    p.add_argument("--power", type=float, help="transmit power, W (within the class's range)")
    p.add_argument("--aperture", type=float, help="antenna aperture, m^2 (Ka; within the class's range)")
    p.add_argument("--freq", type=float, help="carrier, Hz (default 27.5e9 Ka, 401.585625e6 UHF)")
    p.add_argument("--direction", choices=("return", "forward"), default="return",
                   help="return: terminal to relay (default); forward: relay to terminal")
    p.add_argument("--altitude-km", type=float, default=400.0,
                   help="relay orbit altitude (default %(default)s)")
    p.add_argument("--ka-db-per-tau", type=float, default=None,
                   help="dust loss at Ka per unit tau per air mass, dB (default 0.6; pessimistic 2-4)")
    p.add_argument("--radome-db", type=float, default=0.0, help="radome dust loss, dB")
    p.add_argument("--json", action="store_true", help="print the terms as JSON")
    p.set_defaults(func=cmd_budget)


def cmd_budget(args) -> int:
    """Print the budget table (or JSON)."""
    import json

    from modem.linkbudget import LinkBudget, budget_at_elevation, terminal

    try:
        t = terminal(args.terminal, args.band)
        kw = {} if args.ka_db_per_tau is None else {"ka_db_per_tau": args.ka_db_per_tau}
        lb = LinkBudget.for_terminal(args.terminal, t.band, args.freq, args.power, args.aperture,
                                     args.direction, **kw)
        rate = args.symbol_rate if args.symbol_rate is not None else DEFAULT_RATE[t.band]
        b = budget_at_elevation(lb, args.elevation, args.tau, rate, args.altitude_km * 1e3, args.radome_db)
    except (ValueError, TypeError) as e:
        print(f"marslink budget: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"term": a, "value": v, "unit": u} for a, v, u in b.lines()], indent=1))
    else:
        print(b.table())
    return 0
