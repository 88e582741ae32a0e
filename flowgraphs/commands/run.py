"""``marslink run [FLOWGRAPH]``: run a flowgraph, show its progress, print its summary.

Without an argument it runs the shipped storm-pass loopback (``flowgraphs/graphs/storm_pass.toml``):
a DVB-S2 ACM link through the Mars storm-pass channel scenario, every stage its own process.
"""

from __future__ import annotations

import sys
import time

DEFAULT_GRAPH = "storm_pass"


def register(sub) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run a flowgraph (default: the storm-pass ACM loopback) and summarize it",
        description="Run a flowgraph file (or a shipped flowgraph by name): every stage as a process "
        "connected by ZeroMQ, a progress bar, a summary table and plots in the output folder.",
    )
    p.add_argument(
        "flowgraph",
        nargs="?",
        default=DEFAULT_GRAPH,
        help=f"flowgraph TOML file or shipped name (default: {DEFAULT_GRAPH})",
    )
    p.add_argument("--out", default=None, help="output folder (default: out/<graph name>)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="STAGE.KEY=VALUE",
        help="override a parameter, e.g. --set acm.margin_db=0.5 or --set link.time_scale=20",
    )
    p.add_argument("--in-process", action="store_true", help="run the stages as threads of this process")
    p.add_argument("--quick", action="store_true", help="a short run: the first 120 s of the scenario")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="check the flowgraph and print it, run nothing")
    p.set_defaults(func=cmd_run)


class Progress:
    """One-line progress bar on stderr from the monitor's ``mon.progress`` messages."""

    def __init__(self, stream=sys.stderr, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.last = None
        self.t_draw = 0.0
        self.lines = 0

    def __call__(self, body) -> None:
        """Take a progress message (None: only redraw the clock)."""
        if body is not None:
            self.last = body
        now = time.monotonic()
        if self.last is None or now - self.t_draw < 0.2:
            return
        self.t_draw = now
        line = self.render(self.last)
        if self.enabled:
            self.stream.write("\r" + line[:160].ljust(160) + "\r")
            self.stream.flush()
        elif body is not None and now - getattr(self, "t_plain", 0.0) > 10:
            self.t_plain = now
            print(line, file=self.stream, flush=True)

    @staticmethod
    def render(b: dict) -> str:
        """The progress line of one message."""
        t = b.get("t_s")
        s0, s1 = b.get("start_s") or 0.0, b.get("end_s")
        if t is not None and s1:
            frac = min(max((t - s0) / max(s1 - s0, 1e-9), 0.0), 1.0)
            n = int(round(24 * frac))
            bar = f"[{'#' * n}{'.' * (24 - n)}] {100 * frac:5.1f}%  t={t:6.1f}/{s1:.0f} s"
        elif t is not None:
            bar = f"t={t:8.1f} s"
        else:
            bar = "starting..."
        est, tru = b.get("esn0_est_db"), b.get("esn0_true_db")
        parts = [bar, f"{b.get('modcod', '-'):<13}"]
        if est is not None or tru is not None:
            e = f"{est:5.1f}" if est is not None else "  n/a"
            r = f"{tru:5.1f}" if tru is not None else "  n/a"
            parts.append(f"Es/N0 {e} dB (true {r})")
        if b.get("throughput_bps") is not None:
            parts.append(f"{b['throughput_bps'] / 1e6:6.2f} Mbit/s")
        if b.get("msym_per_s") is not None:
            parts.append(f"{b['msym_per_s']:.2f} Msym/s")
        if b.get("frames_failed"):
            parts.append(f"{b['frames_failed']} failed")
        return "  ".join(parts)

    def close(self) -> None:
        """End the progress line."""
        if self.enabled and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()


def cmd_run(args) -> int:
    """Run the flowgraph; 0 when it ran to its end with nothing lost."""
    from pathlib import Path

    from flowgraphs.graph import Runner, describe, load_graph
    from flowgraphs.report import format_report
    from flowgraphs.stage import ConfigError

    overrides = list(args.overrides)
    if args.quick:
        overrides.insert(0, "link.duration_s=120.0")
    try:
        graph = load_graph(args.flowgraph, overrides)
    except ConfigError as e:
        print(f"marslink run: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(describe(graph))
        return 0
    out = Path(args.out) if args.out else Path("out") / graph.name
    print(f"marslink run: {graph.name}: {graph.description}", file=sys.stderr)
    print(f"marslink run: output folder {out}", file=sys.stderr)
    progress = Progress(enabled=not args.no_progress)

    def on_log(stage, level, text):
        if level in ("warning", "error"):
            progress.close() if progress.enabled else None
            print(f"marslink run: [{stage}] {level}: {text.rstrip()}", file=sys.stderr, flush=True)

    runner = Runner(
        graph,
        mode="thread" if args.in_process else "process",
        out_dir=out,
        on_progress=progress if not args.no_progress else None,
        on_log=on_log,
    )
    result = runner.run()
    progress.close()
    restarts = {n: r.restarts for n, r in result.stages.items() if r.restarts}
    mon = next((n for n, r in result.stages.items() if r.type == "monitor"), None)
    report = result.summary(mon).get("report") if mon else None
    if report:
        print(format_report(report, restarts, result.wall_s))
        files = result.summary(mon).get("files", [])
        if files:
            print("\n  files: " + ", ".join(files))
    else:
        for n, r in result.stages.items():
            print(f"  {n} ({r.type}): {(r.summary or {}).get('summary', 'no summary')}")
    if result.reason != "done":
        print(f"marslink run: stopped: {result.reason}", file=sys.stderr)
    lost = report["bytes"]["lost"] if report else 0
    if result.status == 0 and lost:
        return 1
    return result.status
