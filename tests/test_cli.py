"""The marslink command line, run as a subprocess the way a user runs it."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowgraphs import cli
from modem import __version__

MARSLINK = [sys.executable, "-m", "flowgraphs.cli"]
CONSOLE_SCRIPT = Path(sys.executable).with_name("marslink")

needs_ccsds = pytest.mark.skipif(
    importlib.util.find_spec("modem.fec.ccsds_ldpc") is None,
    reason="modem.fec.ccsds_ldpc (AR4JA and C2 codes) is not written yet",
)


def run(*args, command=MARSLINK):
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def table_rows(stdout):
    """Split the codes table into {name: {heading: cell}}; headings may contain one space."""
    header, *lines = stdout.strip().splitlines()
    headings = [h.strip() for h in header.split("  ") if h.strip()]
    rows = {}
    for line in lines:
        cells = line.split()
        assert len(cells) == len(headings), line
        rows[cells[0]] = dict(zip(headings, cells, strict=True))
    return rows


def test_version():
    out = run("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"marslink {__version__}\n"
    assert out.stdout == "marslink 0.1.0\n"


@pytest.mark.skipif(
    not CONSOLE_SCRIPT.exists(), reason="marslink console script not installed (pip install -e .)"
)
def test_console_script_version():
    out = run("--version", command=[str(CONSOLE_SCRIPT)])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "marslink 0.1.0\n"


def test_codes_dvbs2_table():
    out = run("codes", "dvbs2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == [
        "name", "n", "k", "rate", "k/n", "checks", "edges", "punctured", "zero", "fill",
    ]  # fmt: skip
    rows = table_rows(out.stdout)
    assert sum(name.startswith("dvbs2-normal-") for name in rows) == 11
    assert sum(name.startswith("dvbs2-short-") for name in rows) == 10
    assert len(rows) == 21
    normal = rows["dvbs2-normal-1/2"]
    assert (normal["n"], normal["k"], normal["rate"], normal["k/n"]) == ("64800", "32400", "1/2", "0.5000")
    short = rows["dvbs2-short-1/2"]
    # The short "1/2" code really carries k = 7200 of n = 16200 (k/n = 4/9).
    assert (short["n"], short["k"], short["rate"], short["k/n"]) == ("16200", "7200", "1/2", "0.4444")
    assert all(row["punctured"] == "0" and row["zero fill"] == "0" for row in rows.values())


def test_codes_table_is_aligned():
    lines = run("codes", "dvbs2").stdout.splitlines()
    assert len({len(line) for line in lines}) == 1


@needs_ccsds
def test_codes_table_lists_all_31():
    out = run("codes")
    assert out.returncode == 0, out.stderr
    rows = table_rows(out.stdout)
    assert len(rows) == 31
    families = [name.split("-")[0] for name in rows]
    assert families.count("dvbs2") == 21
    assert families.count("ar4ja") == 9
    assert families.count("c2") == 1
    assert (rows["dvbs2-normal-1/2"]["n"], rows["dvbs2-normal-1/2"]["k"]) == ("64800", "32400")
    assert rows["dvbs2-short-1/2"]["k"] == "7200"
    assert (rows["ar4ja-1024-1/2"]["n"], rows["ar4ja-1024-1/2"]["k"]) == ("2048", "1024")
    assert (rows["c2"]["n"], rows["c2"]["k"]) == ("8160", "7136")


@needs_ccsds
def test_codes_json_all():
    out = run("codes", "--json")
    assert out.returncode == 0, out.stderr
    codes = {code["name"]: code for code in json.loads(out.stdout)}
    assert len(codes) == 31
    assert codes["ar4ja-1024-1/2"]["n"] == 2048
    assert codes["c2"]["k"] == 7136


def test_codes_json_dvbs2():
    out = run("codes", "dvbs2-short", "--json")
    assert out.returncode == 0, out.stderr
    codes = json.loads(out.stdout)
    assert len(codes) == 10
    short = next(code for code in codes if code["name"] == "dvbs2-short-1/2")
    assert (short["n"], short["k"], short["rate"]) == (16200, 7200, "1/2")
    assert short["k/n"] == pytest.approx(4 / 9)


def test_codes_unknown_prefix():
    out = run("codes", "turbo")
    assert out.returncode != 0
    assert "turbo" in out.stderr


def test_unknown_subcommand():
    out = run("frobnicate")
    assert out.returncode != 0
    assert "invalid choice" in out.stderr and "frobnicate" in out.stderr
    assert out.stdout == ""


def test_no_subcommand():
    out = run()
    assert out.returncode != 0
    assert "usage: marslink" in out.stderr


def test_bench_unknown_choice():
    out = run("bench", "turbo")
    assert out.returncode != 0
    assert "invalid choice" in out.stderr


def test_bench_missing_script(monkeypatch, tmp_path, capsys):
    # As when installed from a wheel, without the source tree's benchmarks/.
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    assert cli.main(["bench", "ldpc"]) != 0
    err = capsys.readouterr().err
    assert "ldpc_throughput.py not found" in err


def test_bench_runs_script_with_args(monkeypatch, tmp_path, capfd):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bch_throughput.py").write_text(
        "import sys\nprint('bench args', sys.argv[1:])\nsys.exit(3)\n"
    )
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    assert cli.main(["bench", "bch", "--frames", "2"]) == 3
    assert "bench args ['--frames', '2']" in capfd.readouterr().out


def test_sweep_help():
    # everything after "sweep" goes to benchmarks/thresholds.py, --help included: it lists its options
    out = run("sweep", "--help")
    assert out.returncode == 0, out.stderr
    for option in ("--quick", "--frame", "--modcods", "--seed", "--out"):
        assert option in out.stdout


def test_sweep_listed_in_help():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "sweep" in out.stdout


def test_sweep_runs_script_with_args(monkeypatch, tmp_path, capfd):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "thresholds.py").write_text(
        "import sys\nprint('sweep args', sys.argv[1:])\nsys.exit(4)\n"
    )
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    assert cli.main(["sweep", "--quick", "--modcods", "QPSK 1/2", "--frame", "short"]) == 4
    assert "sweep args ['--quick', '--modcods', 'QPSK 1/2', '--frame', 'short']" in capfd.readouterr().out
    assert cli.main(["sweep", "--", "--seed", "3"]) == 4  # bench style: a leading "--" is dropped
    assert "sweep args ['--seed', '3']" in capfd.readouterr().out


def test_sweep_missing_script(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    assert cli.main(["sweep", "--quick"]) != 0
    assert "thresholds.py not found" in capsys.readouterr().err


def test_other_commands_reject_unknown_options():
    out = run("codes", "--bogus")
    assert out.returncode != 0
    assert "unrecognized arguments: --bogus" in out.stderr
