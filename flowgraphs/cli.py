"""The ``marslink`` command line: list the FEC codes and run the benchmarks.

Examples
--------
marslink --version
marslink codes                 # aligned table of every LDPC code
marslink codes ar4ja --json    # machine-readable, only names starting with "ar4ja"
marslink bench ldpc -- --help  # arguments after "--" go to benchmarks/ldpc_throughput.py
marslink sweep --quick         # MODCOD threshold table: arguments go to benchmarks/thresholds.py
marslink sweep --help          # the sweep's own options
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

from modem import __version__

# Repository root when running from a source checkout (or an editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_SCRIPTS = {"ldpc": "benchmarks/ldpc_throughput.py", "bch": "benchmarks/bch_throughput.py"}
SWEEP_SCRIPT = "benchmarks/thresholds.py"

# (heading, key in LdpcCode.describe(), format)
CODE_COLUMNS = [
    ("name", "name", "{}"),
    ("n", "n", "{}"),
    ("k", "k", "{}"),
    ("rate", "rate", "{}"),
    ("k/n", "k/n", "{:.4f}"),
    ("checks", "checks", "{}"),
    ("edges", "edges", "{}"),
    ("punctured", "punctured", "{}"),
    ("zero fill", "zero_fill", "{}"),
]


def format_table(rows: list[dict]) -> str:
    """Format ``describe()`` dicts as an aligned text table: names left, numbers right."""
    cells = [[head for head, _, _ in CODE_COLUMNS]]
    cells += [[fmt.format(row[key]) for _, key, fmt in CODE_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(CODE_COLUMNS))]
    lines = []
    for line in cells:
        first = line[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
    return "\n".join(lines)


def cmd_codes(args: argparse.Namespace) -> int:
    """List the registered LDPC codes whose names start with ``args.prefix``."""
    from modem.fec.codes import code_names, get_code

    names = [name for name in code_names() if name.startswith(args.prefix)]
    if not names:
        print(f"marslink codes: no code name starts with {args.prefix!r}", file=sys.stderr)
        return 1
    rows = [get_code(name).describe() for name in names]
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def run_script(command: str, path: str, args: list[str]) -> int:
    """Run a script of the source tree's ``benchmarks/`` with ``args`` (a leading "--" dropped)."""
    script = REPO_ROOT / path
    if not script.is_file():
        print(
            f"marslink {command}: {script} not found; the benchmarks live in the source tree, "
            "so run this from a git checkout installed with ./install.sh (pip install -e .)",
            file=sys.stderr,
        )
        return 2
    extra = args[1:] if args[:1] == ["--"] else args
    return subprocess.call([sys.executable, str(script), *extra], cwd=REPO_ROOT)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a benchmark script from the source tree, passing the extra arguments on."""
    return run_script("bench", BENCH_SCRIPTS[args.which], args.args)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the MODCOD threshold sweep (benchmarks/thresholds.py), passing every argument on."""
    return run_script("sweep", SWEEP_SCRIPT, args.args)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``marslink`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="marslink", description="marslink: Mars surface-to-orbiter SDR modem and PHY testbed."
    )
    parser.add_argument("--version", action="version", version=f"marslink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    codes = sub.add_parser("codes", help="list every LDPC code marslink knows")
    codes.add_argument("prefix", nargs="?", default="", help="only codes whose name starts with this")
    codes.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    codes.set_defaults(func=cmd_codes)

    bench = sub.add_parser("bench", help="run a FEC throughput benchmark from benchmarks/")
    bench.add_argument("which", choices=sorted(BENCH_SCRIPTS), help="which benchmark")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark script")
    bench.set_defaults(func=cmd_bench)

    sweep = sub.add_parser(
        "sweep",
        add_help=False,  # --help goes to the script, which lists its options
        help="measure the Es/N0 at FER 1e-2 of every DVB-S2 MODCOD (benchmarks/thresholds.py)",
    )
    sweep.add_argument("args", nargs=argparse.REMAINDER, help="arguments for benchmarks/thresholds.py")
    sweep.set_defaults(func=cmd_sweep)

    for module in command_modules():
        module.register(sub)
    return parser


def command_modules() -> list:
    """The modules of ``flowgraphs.commands`` (sorted by name), each with a ``register(sub)``."""
    from flowgraphs import commands

    found = pkgutil.iter_modules(commands.__path__)
    names = sorted(info.name for info in found if not info.name.startswith("_"))
    return [importlib.import_module(f"flowgraphs.commands.{name}") for name in names]


def main(argv: list[str] | None = None) -> int:
    """Run the ``marslink`` command; return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "sweep":  # everything after "sweep" goes to the script, options included
        args.args = argv[argv.index("sweep") + 1 :]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
