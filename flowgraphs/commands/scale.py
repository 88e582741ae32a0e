"""``marslink scale``: map a mission link onto a bench radio (PlutoSDR, or UHF natively); print both."""

from __future__ import annotations

import sys


def register(sub) -> None:
    """Add the ``scale`` subcommand."""
    p = sub.add_parser(
        "scale",
        help="map a mission link (e.g. Ka 27.5 GHz, 500 Msym/s) to a bench link (PlutoSDR 2.4 GHz, 1 Msym/s)",
        description="Keep Es/N0, carrier offset / Rs, Doppler rate / Rs^2 and phase noise relative to Rs "
        "while moving a mission link to a bench radio's carrier and symbol rate; refuse settings "
        "outside a PlutoSDR's limits (LO 325 MHz-3.8 GHz, 521 kS/s-61.44 MS/s).",
    )
    p.add_argument("--scenario", help="take the mission link and its worst offsets from a scenario")
    p.add_argument("--link", help="scenario link (default its first)")
    p.add_argument("--mission-carrier", type=float, default=27.5e9, help="Hz (default %(default)g)")
    p.add_argument("--mission-symbol-rate", type=float, default=500e6, help="symbols/s (default %(default)g)")
    p.add_argument("--bench", choices=("pluto", "uhf"), default="pluto",
                   help="pluto: 2.4 GHz, 1 Msym/s, 2 sps (default); uhf: 435 MHz at the mission rate, 4 sps")
    p.add_argument("--bench-carrier", type=float, help="bench carrier, Hz")
    p.add_argument("--bench-symbol-rate", type=float, help="bench symbol rate, symbols/s")
    p.add_argument("--sps", type=int, help="bench samples per symbol")
    p.add_argument("--radio", choices=("pluto", "none"), default="pluto",
                   help="check the bench against a PlutoSDR's limits (default) or not")
    p.add_argument("--esn0", type=float, help="Es/N0 to show, dB")
    p.add_argument("--cfo", type=float, default=301e3,
                   help="mission carrier offset, Hz (default %(default)g)")
    p.add_argument("--doppler-rate", type=float, default=2.8e3,
                   help="mission Doppler rate, Hz/s (default %(default)g)")
    p.add_argument("--phase-noise", choices=("tcxo", "ocxo", "pluto"), default="tcxo",
                   help="mission oscillator phase-noise preset, at its carrier (default %(default)s)")
    p.set_defaults(func=cmd_scale)


def cmd_scale(args) -> int:
    """Print the mission and bench sides."""
    import numpy as np

    from modem.channel.phase_noise import preset_mask
    from modem.scaling import scale_link

    esn0, cfo, rate = args.esn0, args.cfo, args.doppler_rate
    carrier, rs, pn = args.mission_carrier, args.mission_symbol_rate, args.phase_noise
    try:
        if args.scenario:
            from modem.channel.scenario import load_scenario

            sc = load_scenario(args.scenario)
            lk = sc.link(args.link)
            carrier, rs = lk.carrier_hz, lk.symbol_rate_hz
            t = np.concatenate([np.linspace(a, b, 2001) for a, b in sc.windows()])
            tr = sc.sample(t, lk.name)
            i = int(np.argmax(np.abs(tr.cfo_hz)))
            cfo = float(tr.cfo_hz[i])
            rate = float(tr.cfo_rate_hz_per_s[int(np.argmax(np.abs(tr.cfo_rate_hz_per_s)))])
            esn0 = float(np.max(tr.esn0_db)) if esn0 is None else esn0
            pn = sc.oscillator.phase_noise
            lo, hi = np.min(tr.esn0_db), np.max(tr.esn0_db)
            print(f"scenario {sc.name}, link {lk.name}: largest carrier offset, largest Doppler rate, "
                  f"best Es/N0 (Es/N0 over the passes: {lo:.1f} .. {hi:.1f} dB)")
        s = scale_link(carrier, rs, args.bench, args.bench_carrier, args.bench_symbol_rate, args.sps,
                       args.radio)
    except (ValueError, TypeError) as e:
        print(f"marslink scale: {e}", file=sys.stderr)
        return 2
    mask = preset_mask(pn, carrier)
    print(s.table(esn0_db=esn0, cfo_hz=cfo, doppler_rate_hz_per_s=rate, mission_mask=mask))
    return 0
