"""Long fuzzing runs of marslink's parsers: 10^5 inputs or more per target.

The targets are those of ``tests/test_fuzz.py`` (BBHEADER, BB deframer, a TS link with losses
and bit errors, PLHEADER/PLS decoding and PL deframing, the DVB-S2 receiver, SDLS
verification, control-message anti-replay, key files, the ZAP handler, the ZeroMQ wire
formats). Each input must be accepted or refused with the target's documented error type and
a message; anything else is a bug, reported with its input (hex) and traceback and saved under
``benchmarks/out/fuzz/``.

Engines (each target runs in its own process, ``--timeout`` seconds per input at most):

* ``mutate``: a seeded mutational fuzzer: the target's seeds, then inputs derived from the
  corpus by bit flips, byte changes, insertions, deletions, block copies and splices, plus
  random byte strings; inputs that a target accepts join the corpus (up to 2 000).
* ``atheris``: Google's coverage-guided libFuzzer for Python (``pip install atheris``), with
  the ``modem``, ``flowgraphs`` and ``hw`` modules instrumented, except those that use numba
  (numba cannot compile atheris' probes; their compiled kernels are fuzzed uninstrumented); its
  corpus is kept in ``benchmarks/out/fuzz/corpus/TARGET/``.

Usage::

    .venv/bin/python benchmarks/fuzz.py                          # every target, 10^5 inputs, both engines
    .venv/bin/python benchmarks/fuzz.py --targets sdls wire --runs 20000 --engine mutate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "fuzz"
sys.path.insert(0, str(ROOT / "tests"))  # the targets live in tests/test_fuzz.py
HANG_S = 2.0  # an input slower than this is reported as a (soft) hang


def load_targets():
    import test_fuzz

    return test_fuzz


# ---------------------------------------------------------------------------------------------
# the mutational engine (child process)


def mutate(rng, data: bytes, corpus: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(1 + int(rng.integers(0, 8))):
        op = int(rng.integers(0, 7))
        n = len(b)
        if op == 0 and n:
            i = int(rng.integers(0, n))
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1 and n:
            b[int(rng.integers(0, n))] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.integers(0, 256)]))
        elif op == 2:
            i = int(rng.integers(0, n + 1))
            b[i:i] = rng.bytes(int(rng.integers(1, 9)))
        elif op == 3 and n:
            i = int(rng.integers(0, n))
            del b[i : i + int(rng.integers(1, 17))]
        elif op == 4 and n:
            i, j = sorted(int(x) for x in rng.integers(0, n + 1, 2))
            k = int(rng.integers(0, n + 1))
            b[k:k] = b[i:j][:256]
        elif op == 5 and corpus:
            other = corpus[int(rng.integers(0, len(corpus)))]
            cut = int(rng.integers(0, len(b) + 1))
            b = b[:cut] + other[int(rng.integers(0, len(other) + 1)) :]
        elif op == 6 and n >= 2:
            i = int(rng.integers(0, n - 1))
            b[i : i + 2] = int(rng.integers(0, 1 << 16)).to_bytes(2, "little")
    return bytes(b[:8192])


def child_mutate(name: str, runs: int, seed: int, timeout: float) -> dict:
    import signal

    import numpy as np

    tf = load_targets()
    target = tf.TARGETS[name]
    rng = np.random.default_rng(seed)
    corpus = list(target.seeds())

    def alarm(signum, frame):
        raise TimeoutError(f"input took longer than {timeout} s")

    signal.signal(signal.SIGALRM, alarm)
    stats = dict(target=name, engine="mutate", seed=seed, runs=0, accepted=0, rejected=0, crashes=[],
                 crash_inputs=0, slow_inputs=0, max_input_s=0.0, messages={})  # fmt: skip
    t_start = time.perf_counter()
    for i in range(runs):
        if i < len(corpus):
            data = corpus[i]
        elif rng.random() < 0.15:
            data = rng.bytes(int(rng.integers(0, 1025)))
        else:
            data = mutate(rng, corpus[int(rng.integers(0, len(corpus)))], corpus)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            text = tf.check_input(target, data)
        except BaseException as e:  # noqa: BLE001 - everything else is a finding
            signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(e, KeyboardInterrupt):
                raise
            record_crash(stats, name, data, e)
            stats["runs"] += 1
            stats["crash_inputs"] += 1
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.perf_counter() - t0
        stats["runs"] += 1
        stats["max_input_s"] = max(stats["max_input_s"], dt)
        stats["slow_inputs"] += dt > HANG_S
        if text is None:
            stats["accepted"] += 1
            if len(corpus) < 2000 and rng.random() < 0.05:
                corpus.append(data)
        else:
            stats["rejected"] += 1
            key = text[:70]
            if key in stats["messages"] or len(stats["messages"]) < 12:
                stats["messages"][key] = stats["messages"].get(key, 0) + 1
    stats["elapsed_s"] = time.perf_counter() - t_start
    return stats


def record_crash(stats: dict, name: str, data: bytes, e: BaseException) -> None:
    """Keep one example (input saved under OUT, traceback) per exception type and raising line."""
    tb = "".join(traceback.format_exception(e))
    last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f"{os.path.relpath(last.filename, ROOT)}:{last.lineno}" if last else "?"
    sig = f"{type(e).__name__} at {where}"  # one bug per exception type and raising line
    if any(c["error"].startswith(sig) for c in stats["crashes"]):
        return
    sig += f": {str(e)[:120]}"
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"crash-{name}-{len(stats['crashes'])}.bin"
    path.write_bytes(data)
    stats["crashes"].append(dict(error=sig, input_hex=data.hex()[:400], file=str(path), traceback=tb[-2000:]))


# ---------------------------------------------------------------------------------------------
# atheris (child process)


def numba_modules() -> list[str]:
    """Modules that use numba: not instrumented (numba cannot compile atheris' probes)."""
    found = []
    for pkg in ("modem", "flowgraphs", "hw"):
        for path in (ROOT / pkg).rglob("*.py"):
            if "numba" in path.read_text(errors="replace"):
                mod = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                found.append(mod.removesuffix(".__init__"))
    return found


def child_atheris(name: str, runs: int, seed: int, timeout: float) -> None:
    import atheris

    with atheris.instrument_imports(include=["modem", "flowgraphs", "hw"], exclude=numba_modules()):
        tf = load_targets()
    target = tf.TARGETS[name]
    corpus = OUT / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(target.seeds()):
        (corpus / f"seed-{i}").write_bytes(s)
    counts = {"accepted": 0, "rejected": 0, "crash_inputs": 0, "crashes": []}
    stats_file = OUT / f"atheris-{name}.json"
    stats_file.unlink(missing_ok=True)

    def one_input(data: bytes) -> None:
        try:
            text = tf.check_input(target, data)
        except Exception as e:  # noqa: BLE001 - recorded (one per raising line) and fuzzing goes on
            before = len(counts["crashes"])
            record_crash(counts, name, data, e)
            counts["crash_inputs"] += 1
            if len(counts["crashes"]) > before:
                stats_file.write_text(json.dumps(counts))
            return
        counts["rejected" if text is not None else "accepted"] += 1
        if (counts["accepted"] + counts["rejected"]) % 1000 == 0:
            stats_file.write_text(json.dumps(counts))

    atheris.Setup(
        [sys.argv[0], f"-runs={runs}", f"-seed={seed}", f"-timeout={int(max(timeout, 1))}", "-max_len=4096",
         f"-artifact_prefix={OUT}/atheris-{name}-", "-print_final_stats=1", str(corpus)],
        one_input,
    )  # fmt: skip
    atheris.Fuzz()


# ---------------------------------------------------------------------------------------------
# parent


def run_target(engine: str, name: str, runs: int, seed: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, name, "--runs", str(runs), "--seed", str(seed),
           "--timeout", str(timeout)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if engine == "mutate":
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            return dict(target=name, engine=engine, runs=0, crashes=[dict(error="child failed",
                        traceback=proc.stderr[-3000:])], elapsed_s=wall)  # fmt: skip
        return json.loads(lines[-1])
    # atheris: libFuzzer writes its log to stderr
    log = proc.stderr
    done = [ln for ln in log.splitlines() if ln.startswith("Done ") and " runs " in ln]
    n = int(done[-1].split()[1]) if done else 0
    execs = [ln for ln in log.splitlines() if "stat::number_of_executed_units" in ln]
    if execs:
        n = max(n, int(execs[-1].split(":")[-1]))
    counts = {}
    stats_file = OUT / f"atheris-{name}.json"
    if stats_file.exists():
        counts = json.loads(stats_file.read_text())
    crashes = counts.pop("crashes", [])
    if proc.returncode != 0:
        marks = ("Uncaught Python exception", "ERROR: libFuzzer")
        first = next((ln for ln in log.splitlines() if any(m in ln for m in marks)), "atheris stopped")
        crashes.append(dict(error=first, traceback=log[-4000:]))
    cov = [ln for ln in log.splitlines() if ln.startswith("#") and "cov:" in ln]
    return dict(target=name, engine=engine, runs=n, crashes=crashes, elapsed_s=wall,
                coverage=cov[-1].split("cov:")[1].split()[0] if cov else "?", **counts)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", nargs="*", default=None, help="targets to run (default: all)")
    parser.add_argument("--runs", type=int, default=100_000, help="inputs per target and engine")
    parser.add_argument("--engine", choices=("mutate", "atheris", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it is a hang")
    parser.add_argument("--json", action="store_true", help="also print all results as one JSON line")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, name = args.child
        if engine == "mutate":
            print(json.dumps(child_mutate(name, args.runs, args.seed, args.timeout)))
        else:
            child_atheris(name, args.runs, args.seed, args.timeout)
        return 0

    names = args.targets or list(load_targets().TARGETS)
    engines = ["mutate", "atheris"] if args.engine == "both" else [args.engine]
    if "atheris" in engines:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed (.venv/bin/pip install atheris): mutate engine only")
            engines = [e for e in engines if e != "atheris"]
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"seed {args.seed}, {args.runs} inputs per target and engine, {args.timeout} s per input at most")
    print(f"{'target':<13}{'engine':<9}{'inputs':>9}{'accepted':>10}{'refused':>9}{'max s/input':>12}"
          f"{'wall s':>8}{'bugs':>6}{'bad inputs':>11}")  # fmt: skip
    results = []
    for name in names:
        for engine in engines:
            r = run_target(engine, name, args.runs, args.seed, args.timeout)
            results.append(r)
            mx = r.get("max_input_s")
            mx = f"{mx:.3f}" if mx is not None else "-"
            acc, rej = r.get("accepted", "?"), r.get("rejected", "?")
            print(f"{name:<13}{engine:<9}{r['runs']:>9}{acc:>10}{rej:>9}"
                  f"{mx:>12}{r['elapsed_s']:>8.0f}{len(r['crashes']):>6}{r.get('crash_inputs', '?'):>11}",
                  flush=True)  # fmt: skip
    bad = [(r, c) for r in results for c in r["crashes"]]
    for r, c in bad:
        print(f"\n=== {r['target']} ({r['engine']}): {c['error']}")
        if c.get("input_hex"):
            print(f"input (hex, first 200 bytes): {c['input_hex']}\nsaved: {c.get('file')}")
        print(c.get("traceback", ""))
    (OUT / "summary.json").write_text(json.dumps(results, indent=1))
    if args.json:
        print(json.dumps(results))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
