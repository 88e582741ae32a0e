"""The ``marslink`` command line: list the FEC codes and run the benchmarks.

Examples
--------
marslink --version
marslink codes                 # aligned table of every LDPC code
marslink codes ar4ja --json    # machine-readable, only names starting with "ar4ja"
marslink bench ldpc -- --help  # arguments after "--" go to benchmarks/ldpc_throughput.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from modem import __version__

# Repository root when running from a source checkout (or an editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_SCRIPTS = {"ldpc": "benchmarks/ldpc_throughput.py", "bch": "benchmarks/bch_throughput.py"}

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


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a benchmark script from the source tree, passing the extra arguments on."""
    script = REPO_ROOT / BENCH_SCRIPTS[args.which]
    if not script.is_file():
        print(
            f"marslink bench: {script} not found; the benchmarks live in the source tree, "
            "so run this from a git checkout installed with ./install.sh (pip install -e .)",
            file=sys.stderr,
        )
        return 2
    extra = args.args[1:] if args.args[:1] == ["--"] else args.args
    return subprocess.call([sys.executable, str(script), *extra], cwd=REPO_ROOT)


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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``marslink`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
