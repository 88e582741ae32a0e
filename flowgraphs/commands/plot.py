"""``marslink plot``: ``plot scenario NAME [-o DIR]`` (a scenario) or ``plot FILE [-o DIR]`` (a capture)."""

from __future__ import annotations

import sys


def register(sub) -> None:
    """Add the ``plot`` subcommand."""
    p = sub.add_parser(
        "plot",
        help="plot a scenario (plot scenario NAME) or a capture file (plot FILE)",
        description="'marslink plot scenario NAME' writes a PNG of the scenario's Es/N0, elevation, "
        "Doppler and dust optical depth against time; 'marslink plot FILE' plots a capture.",
    )
    p.add_argument("target", help="'scenario', or a capture file")
    p.add_argument("name", nargs="?", help="scenario name or .toml path (after 'scenario')")
    p.add_argument("-o", "--out", default="out", help="output folder (default: %(default)s)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args) -> int:
    """Dispatch to the scenario plot or to the capture plots."""
    if args.target == "scenario":
        if not args.name:
            print("marslink plot scenario: give a scenario name or .toml path", file=sys.stderr)
            return 2
        from flowgraphs.scenario_plot import plot_scenario
        from modem.channel.scenario import ScenarioError, load_scenario

        try:
            sc = load_scenario(args.name)
        except ScenarioError as e:
            print(f"marslink plot: {e}", file=sys.stderr)
            return 2
        print(plot_scenario(sc, args.out))
        return 0
    if args.name:
        print(f"marslink plot: unexpected argument {args.name!r} after a capture file", file=sys.stderr)
        return 2
    try:
        from hw.capture_plots import plot_capture
    except ImportError as e:
        print(f"marslink plot: capture plotting is not available (hw.capture_plots: {e})", file=sys.stderr)
        return 2
    try:
        paths = plot_capture(args.target, args.out)
    except (OSError, ValueError) as e:  # hw.captures.CaptureError is a ValueError
        print(f"marslink plot: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
