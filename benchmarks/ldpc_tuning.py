"""Per-code tuning of the int8 LDPC decoder: (scale, offset, limit) with the lowest FER-1e-2 Es/N0.

Writes ``modem/fec/data/ldpc_tuning.csv``, which :class:`modem.fec.ldpc_decoder.LdpcDecoder`
reads for the settings its caller leaves at None.

Method, for each of the 21 DVB-S2 codes, on every MODCOD that uses it (52 MODCOD / frame
combinations), AWGN, ideal synchronization, at most 50 layered iterations (the Receiver's
default), the chain of :mod:`modem.dvbs2.awgn_sim` (BCH included):

1. ``grid``: the Es/N0 where FER crosses 1e-2 (:func:`modem.dvbs2.awgn_sim.find_threshold`,
   steps of 0.1 dB down to 0.025 dB) for every setting of the grid: scale 2, 3, 4 steps per
   LLR, offset 0, 1, 2 steps, limit 31 or 47 steps (both keep the APP range +-127 more than
   one bit above the message limit). 200 normal / 800 short frames at each fine point.
2. ``refine``: the three best settings of the grid and the untuned default (scale 2,
   offset 0.5, limit 31) again with 600 normal / 2400 short frames at each fine point and
   steps down to 0.0125 dB.
3. ``write``: the setting with the least regret (its largest excess, over the code's MODCODs,
   over the best threshold any setting reached on that MODCOD) is chosen; within 0.01 dB of
   it the default, then the setting leaving the fewest "stuck" frames (LDPC unconverged but
   BCH-correct), then the lower limit. The QPSK MODCOD alone is not enough: the setting best
   there (scale 3, offset 2 steps, limit 31) costs 8PSK 3/5 0.2 dB.
4. ``verify``: the chosen setting on every MODCOD of the code: 64 frames at its threshold
   (from ``modem/dvbs2/data/measured_thresholds.csv`` where present, else the QEF Es/N0) +
   8 dB all decode; and noiseless LLRs of +-30 with one sign flipped per frame decode (8 frames).
5. ``iters`` (a study, not used by ``write``): the chosen setting on each code's QPSK MODCOD at
   50, 100 and 200 iterations, and the float32 decoder at 50.

All settings of a MODCOD see the same frames and noise at the same Es/N0 (common random
numbers: the generator of each point is seeded from the MODCOD and the Es/N0), so their
differences are measured with much less noise than each threshold alone.

Stages 1-2 take about 2 core-hours (they were run on 16 cores); they run in ``--procs``
processes, writing one JSON line per finished task to ``OUT/<stage>.jsonl`` as they go (a rerun
skips finished tasks).

    python benchmarks/ldpc_tuning.py grid --procs 16 --out benchmarks/out/tuning
    python benchmarks/ldpc_tuning.py refine --procs 16 --out benchmarks/out/tuning
    python benchmarks/ldpc_tuning.py write --out benchmarks/out/tuning   # -> the CSV
    python benchmarks/ldpc_tuning.py verify
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from modem.dvbs2.awgn_sim import find_threshold, make_decoder, simulate_frames
from modem.dvbs2.modcod import MODCODS, modcod
from modem.fec.dvbs2_ldpc import dvbs2_code
from modem.fec.ldpc_decoder import DEFAULT_SETTINGS, LdpcDecoder, tuned_settings

REPO = Path(__file__).resolve().parent.parent
CSV_PATH = REPO / "modem" / "fec" / "data" / "ldpc_tuning.csv"
THRESHOLDS_CSV = REPO / "modem" / "dvbs2" / "data" / "measured_thresholds.csv"
RATES = ("1/4", "1/3", "2/5", "1/2", "3/5", "2/3", "3/4", "4/5", "5/6", "8/9", "9/10")
CODES = [(f, r) for f in ("normal", "short") for r in RATES if not (f == "short" and r == "9/10")]
#: (scale, offset steps, limit)
GRID = [(s, o, lim) for s in (2, 3, 4) for o in (0, 1, 2) for lim in (31, 47)]
DEFAULT = (2, 1, 31)
MAX_ITER = 50
FRAMES = {"grid": {"normal": 200, "short": 800}, "refine": {"normal": 600, "short": 2400}}
LOWEST = {"grid": 0.025, "refine": 0.0125}
REFINE_TOP = 3
TIE_DB = 0.01


def code_name(frame: str, rate: str) -> str:
    return f"dvbs2-{frame}-{rate}"


def qpsk(rate: str):
    return modcod(f"QPSK {rate}")


def point_rng(seed: int, frame: str, name: str):
    """Generator factory: one fixed stream per (MODCOD, frame, Es/N0), shared by every setting."""
    tag = zlib.crc32(f"{name} {frame}".encode())

    def make(esn0_db: float) -> np.random.Generator:
        return np.random.default_rng([seed, tag, int(round(esn0_db * 10000)) + 10**6])

    return make


def run_task(task: dict) -> dict:
    frame, rate, (scale, steps, limit) = task["frame"], task["rate"], task["setting"]
    m = modcod(task.get("modcod", f"QPSK {rate}"))
    dec = make_decoder(
        m,
        frame,
        max_iter=task.get("max_iter", MAX_ITER),
        workers=1,
        dtype=task.get("dtype", "int8"),
        scale=float(scale),
        offset=steps / scale,
        limit=int(limit),
    )
    start = m.esn0_qef_db + (0.5 if frame == "short" else 0.0)
    t0 = time.perf_counter()
    res = find_threshold(
        m,
        frame,
        point_rng(task["seed"], frame, m.name),
        dec,
        target=1e-2,
        start_db=start,
        max_frames=task["frames"],
        min_errors=30,
        lowest_fine_db=task["lowest"],
    )
    return {
        **task,
        "esn0_db": res["esn0_db"],
        "lo": res["lo"],
        "hi": res["hi"],
        "points": [(s, x, c["frames"], c["frame_errors"], c["iterations"]) for s, x, c in res["points"]],
        "seconds": time.perf_counter() - t0,
    }


def load(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def norm(t: dict) -> dict:
    """Fill the fields older result lines lack (QPSK MODCOD, 50 iterations, int8)."""
    return {"modcod": f"QPSK {t['rate']}", "max_iter": MAX_ITER, "dtype": "int8", **t}


def key(t: dict) -> tuple:
    t = norm(t)
    return (t["frame"], t["modcod"], tuple(t["setting"]), t["max_iter"], t["dtype"])


def code_modcods(frame: str, rate: str) -> list[str]:
    """Names of the MODCODs that use the code of this frame size and rate."""
    return [m.name for m in MODCODS if m.rate == rate and frame in m.frames]


def warm_up() -> None:
    """Compile every kernel once in the parent, so forked workers start compiled."""
    simulate_frames(
        "QPSK 1/2", "short", 3.0, 2, np.random.default_rng(0), make_decoder("QPSK 1/2", "short", workers=1)
    )
    simulate_frames(
        "8PSK 3/5", "short", 8.0, 2, np.random.default_rng(0), make_decoder("8PSK 3/5", "short", workers=1)
    )


def run_stage(stage: str, tasks: list[dict], out: Path, procs: int) -> None:
    path = out / f"{stage}.jsonl"
    done = {key(t) for t in load(path)}
    todo = [t for t in tasks if key(t) not in done]
    # the slowest first (normal, low rate), so that the pool's tail is short
    todo.sort(key=lambda t: (t.get("dtype") != "float32", t["frame"] != "normal", RATES.index(t["rate"])))
    print(f"{stage}: {len(todo)} tasks ({len(done)} done before), {procs} processes", flush=True)
    warm_up()
    t0 = time.perf_counter()
    with path.open("a") as fh, mp.get_context("fork").Pool(procs) as pool:
        for r in pool.imap_unordered(run_task, todo):
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            s, o, lim = r["setting"]
            print(
                f"{time.perf_counter() - t0:7.0f}s {r['frame']:6s} {r['modcod']:12s} scale {s} "
                f"offset {o} limit {lim}: {r['esn0_db']:+.3f} dB ({r['seconds']:.0f}s)",
                flush=True,
            )


def table(results: list[dict]) -> dict[tuple[str, str], dict[tuple, dict[str, float]]]:
    """{(frame, rate): {setting: {modcod: threshold dB}}} for 50-iteration int8 results."""
    out: dict = {}
    for r in map(norm, results):
        if r["max_iter"] != MAX_ITER or r["dtype"] != "int8":
            continue
        code = out.setdefault((r["frame"], r["rate"]), {})
        code.setdefault(tuple(r["setting"]), {})[r["modcod"]] = r["esn0_db"]
    return out


def ranked(frame: str, rate: str, by_setting: dict[tuple, dict[str, float]]) -> list[tuple[float, tuple]]:
    """Settings measured on every MODCOD of the code, by regret: the largest excess, over the
    MODCODs, of the setting's threshold above the best threshold any setting reached there."""
    names = code_modcods(frame, rate)
    full = {s: v for s, v in by_setting.items() if all(n in v for n in names)}
    if not full:
        return []
    best = {n: min(v[n] for v in full.values()) for n in names}
    regret = [(max(v[n] - best[n] for n in names), s) for s, v in full.items()]
    return sorted(regret)


def stuck(results: list[dict]) -> dict[tuple, int]:
    """{(frame, rate, setting): frames at the bracketing points that the LDPC decoder left
    unconverged although BCH then delivered them intact (stuck parity bits: they cost
    ``max_iter`` iterations each and show that the messages saturate too early)}."""
    out: dict = {}
    for r in map(norm, results):
        k = (r["frame"], r["rate"], tuple(r["setting"]))
        n = sum(r[p]["ldpc_unconverged"] - r[p]["frame_errors"] for p in ("lo", "hi"))
        out[k] = out.get(k, 0) + max(0, n)
    return out


def choose(frame: str, rate: str, by_setting: dict[tuple, dict[str, float]], stuck_: dict) -> tuple:
    """Lowest regret; within TIE_DB of it prefer the default, then the fewest stuck frames
    (:func:`stuck`), then the lower limit, then the lower scale."""
    rk = ranked(frame, rate, by_setting)
    near = [s for reg, s in rk if reg <= rk[0][0] + TIE_DB]
    return min(near, key=lambda s: (s != DEFAULT, stuck_.get((frame, rate, s), 0), s[2], s[0]))


def cmd_grid(args) -> None:
    tasks = [
        {
            "frame": f,
            "rate": r,
            "modcod": m,
            "setting": list(s),
            "seed": args.seed,
            "max_iter": MAX_ITER,
            "dtype": "int8",
            "frames": FRAMES["grid"][f],
            "lowest": LOWEST["grid"],
        }
        for f, r in selected(args)
        for m in code_modcods(f, r)
        for s in GRID
    ]
    run_stage("grid", tasks, args.out, args.procs)


def cmd_refine(args) -> None:
    grid = table(load(args.out / "grid.jsonl"))
    tasks = []
    for f, r in selected(args):
        rk = ranked(f, r, grid.get((f, r), {}))
        if not rk:
            continue
        for s in dict.fromkeys([*(s for _, s in rk[:REFINE_TOP]), DEFAULT]):
            for m in code_modcods(f, r):
                tasks.append(
                    {
                        "frame": f,
                        "rate": r,
                        "modcod": m,
                        "setting": list(s),
                        "seed": args.seed + 1,
                        "max_iter": MAX_ITER,
                        "dtype": "int8",
                        "frames": FRAMES["refine"][f],
                        "lowest": LOWEST["refine"],
                    }
                )
    run_stage("refine", tasks, args.out, args.procs)


def tuned_tuple(frame: str, rate: str) -> tuple[int, int, int]:
    """(scale, offset steps, limit) that LdpcDecoder uses for this code now."""
    st = tuned_settings().get(code_name(frame, rate), DEFAULT_SETTINGS)
    return (int(st.scale), int(round(st.offset * st.scale)), int(st.limit))


def cmd_iters(args) -> None:
    """Tuned setting on each code's QPSK MODCOD: int8 at 50, 100, 200 iterations; float32 at 50."""
    tasks = []
    for f, r in selected(args):
        for dtype, iters in (("float32", 50), ("int8", 50), ("int8", 100), ("int8", 200)):
            tasks.append(
                {
                    "frame": f,
                    "rate": r,
                    "setting": list(tuned_tuple(f, r)),
                    "seed": args.seed + 2,
                    "max_iter": iters,
                    "dtype": dtype,
                    "frames": FRAMES["refine"][f],
                    "lowest": LOWEST["refine"],
                }
            )
    run_stage("iters", tasks, args.out, args.procs)


def cmd_write(args) -> None:
    refine_rows = load(args.out / "refine.jsonl")
    refine, stuck_ = table(refine_rows), stuck(refine_rows)
    grid = table(load(args.out / "grid.jsonl"))
    lines = [
        "# Per-code settings of the int8 LDPC decoder: modem.fec.ldpc_decoder.LdpcDecoder uses them for",
        "# the arguments its caller leaves at None. Written by benchmarks/ldpc_tuning.py (see there).",
        "# scale: quantization steps per LLR; offset: min-sum offset in LLR (offset_steps / scale);",
        "# limit: message magnitude in steps. Chosen from a grid of 18 (scale 2/3/4, offset 0/1/2 steps,",
        "# limit 31/47) by the Es/N0 at FER 1e-2 of every MODCOD using the code (AWGN, ideal sync,",
        "# max-log demapper, BCH after LDPC, at most 50 layered iterations, frames_per_point frames at",
        "# each point of the final comparison, the same frames and noise for every setting): the setting",
        "# whose threshold exceeds the best one reached on any of those MODCODs by the least.",
        "# gain_*_db: threshold with the default setting (scale 2, offset 0.5, limit 31) minus threshold",
        "# with this one, dB (positive: the tuned decoder needs less Es/N0), on the code's QPSK MODCOD",
        "# and the least / largest over all its MODCODs. regret_db: the chosen setting's largest loss",
        "# against the best setting of each MODCOD; settings within 0.01 dB of the least regret count as",
        "# equal, and then the default wins, then the one with the fewest frames the LDPC decoder left",
        "# unconverged although BCH delivered them (stuck_frames, summed over the MODCODs' two",
        "# bracketing points: stuck parity bits of saturated messages, e.g. limit 31 at scale 4 on the",
        "# low rates), then the lower limit. grid_rank: its rank by regret in the grid search.",
        "code,scale,offset,limit,offset_steps,gain_qpsk_db,gain_min_db,gain_max_db,modcods,regret_db,"
        "stuck_frames,frames_per_point,grid_rank",
    ]
    for f, r in CODES:
        by = refine.get((f, r), {})
        if not ranked(f, r, by) or DEFAULT not in by:
            continue
        best = choose(f, r, by, stuck_)
        rk = dict((s, reg) for reg, s in ranked(f, r, by))
        gains = {n: by[DEFAULT][n] - by[best][n] for n in code_modcods(f, r)}
        grank = [s for _, s in ranked(f, r, grid.get((f, r), {}))]
        s, o, lim = best
        lines.append(
            f"{code_name(f, r)},{s},{o / s:.6g},{lim},{o},{gains[f'QPSK {r}']:.3f},{min(gains.values()):.3f},"
            f"{max(gains.values()):.3f},{len(gains)},{rk[best]:.3f},{stuck_.get((f, r, best), 0)},"
            f"{FRAMES['refine'][f]},"
            f"{grank.index(best) + 1 if best in grank else ''}"
        )
    path = Path(args.csv)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")
    print(path.read_text())


def thresholds_by_combo() -> dict[tuple[int, str], float]:
    import csv

    if not THRESHOLDS_CSV.is_file():
        return {}
    rows = [line for line in THRESHOLDS_CSV.read_text().splitlines() if line and not line.startswith("#")]
    return {(int(r["pls_modcod"]), r["frame"]): float(r["esn0_fer1e2_db"]) for r in csv.DictReader(rows)}


def cmd_verify(args) -> int:
    """Chosen (or default) settings: high-SNR frames all decode; one confidently wrong bit is fixed."""
    measured = thresholds_by_combo()
    tuned = tuned_settings()
    bad = 0
    for f, r in selected(args):
        code = dvbs2_code(f, r)
        st = tuned.get(code.name, DEFAULT_SETTINGS)
        dec = LdpcDecoder(code, max_iter=MAX_ITER, workers=2)
        # one confidently wrong bit (as tests/test_ldpc.py)
        rng = np.random.default_rng(5)
        cw = code.encode(rng.integers(0, 2, (8, code.k), dtype=np.uint8))
        llr = np.where(cw == 0, 30.0, -30.0).astype(np.float32)
        llr[np.arange(8), rng.integers(0, code.n, 8)] *= -1
        res = dec.decode(llr)
        flip_ok = bool(np.all(res.converged) and np.array_equal(res.bits, cw))
        worst = []
        for m in MODCODS:
            if m.rate != r or f not in m.frames:
                continue
            base = measured.get((m.index, f), m.esn0_qef_db + (0.5 if f == "short" else 0.0))
            c = simulate_frames(m, f, base + 8.0, 64, np.random.default_rng(args.seed), dec)
            worst.append((m.name, round(base + 8.0, 2), c["frame_errors"], c["ldpc_unconverged"]))
        ok = flip_ok and all(w[2] == 0 and w[3] == 0 for w in worst)
        bad += not ok
        print(
            f"{code.name:18s} scale {st.scale:g} offset {st.offset:g} limit {st.limit}: "
            f"one wrong bit {'ok' if flip_ok else 'FAILED'}; +8 dB: "
            + ", ".join(f"{n} @{x} {e}/64" for n, x, e, _ in worst)
            + ("" if ok else "  <-- FAILED"),
            flush=True,
        )
    return 1 if bad else 0


def selected(args) -> list[tuple[str, str]]:
    out = []
    for f, r in CODES:
        if args.frame not in ("both", f):
            continue
        if args.rates and r not in args.rates:
            continue
        out.append((f, r))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("grid", "refine", "write", "verify", "iters"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "tuning")
    parser.add_argument("--csv", default=str(CSV_PATH), help="table written by 'write'")
    parser.add_argument("--procs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--frame", choices=("normal", "short", "both"), default="both")
    parser.add_argument("--rates", nargs="*", help="only these rates, e.g. 1/4 9/10")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "grid":
        cmd_grid(args)
    elif args.stage == "refine":
        cmd_refine(args)
    elif args.stage == "iters":
        cmd_iters(args)
    elif args.stage == "write":
        cmd_write(args)
    else:
        return cmd_verify(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
