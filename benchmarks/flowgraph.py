"""End-to-end throughput of the DVB-S2 loopback through the ZeroMQ stages, and the main job's numbers.

Part 1, loopback speed. QPSK 1/2, normal frames with pilots, 2 samples per symbol, AWGN at the
measured FER-1e-2 threshold + 1 dB (0.934 + 1 dB): PRBS user bytes -> tx -> channel -> rx
(synchronization from raw IQ, LDPC, BCH) -> sink, every byte checked, acknowledgments through the
acm stage (fixed MODCOD). Three ways of running the very same chain:

* ``direct``: the DSP objects called in turn in one Python loop, no ZeroMQ (the baseline: what the
  stages' processing costs on one core, frames decoded in batches of ``--batch-frames``);
* ``threads``: the flowgraph runner in its in-process mode (one thread per stage, ipc:// links);
* ``processes``: the flowgraph runner as ``marslink run`` uses it (one process per stage).

The rate is PLFRAME symbols per second of wall time between 10 % and 90 % of the run's symbols
(process start-up and numba cache loading excluded), best of ``--repeats``. Target: >= 2.5 Msym/s
(5 Msample/s, a PlutoSDR's USB rate) and the ZeroMQ (processes) path within 10 % of ``direct``,
i.e. ``processes / direct >= 0.9``.

Part 2 (``--scenario``): runs the main job (``marslink run``, the storm-pass flowgraph) and prints
its summary: delivered throughput against the genie policy (target >= 95 %), bytes lost (target
0), FER after ACM (target <= 1e-3).

Part 3 (``--margin-check DIR``, after ``--scenario`` or on any ``marslink run`` output folder): is
the receiver's Es/N0 estimate, not the channel's true Es/N0, what the decoder meets? For the
MODCODs the run used most, the mean LDPC iterations of its frames against the mean iterations on
pure AWGN (symbol level: Transmitter -> noise -> Receiver.push, no synchronization loss) at the
run's mean estimated and mean true margin above the MODCOD's threshold. The decoder's own margin
tells which of the two the frames really had.

Usage: ``.venv/bin/python benchmarks/flowgraph.py [--symbols 4e6] [--repeats 2] [--scenario]
[--margin-check out/storm_pass] [--rx KEY=VALUE ...]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowgraphs.graph import Runner, check_graph  # noqa: E402
from flowgraphs.stages.source import PrbsPattern  # noqa: E402
from flowgraphs.userframes import UserFrameParser, encode_user_frame  # noqa: E402
from modem.acm import measured_thresholds  # noqa: E402

ESN0_DB = measured_thresholds()[("QPSK 1/2", "normal")] + 1.0
SYMBOL_RATE = 2.5e6
TARGET_MSYM = 2.5
QPSK12_SYMBOLS = 33282  # PLFRAME, normal, pilots
PAYLOAD = 4068


def graph_table(total_bytes: int, delay_s: float, rx: dict | None = None) -> dict:
    return {
        "graph": {"name": "bench_loopback"},
        "link": {"symbol_rate_hz": SYMBOL_RATE, "samples_per_symbol": 2, "seed": 5},
        "run": {"until": ["tx"], "wall_limit_s": 600.0},  # tx ends when every byte is acknowledged
        "stages": {
            "src": {"type": "source", "pattern": "prbs", "total_bytes": total_bytes},
            "tx": {"type": "tx", "modcod": "QPSK 1/2", "payload_bytes": PAYLOAD},
            "ch": {"type": "channel", "model": "awgn", "esn0_db": ESN0_DB, "spectrum_every_s": 0.0},
            "rx": {"type": "rx", "snapshot_symbols": 0, **(rx or {})},
            "sink": {"type": "sink", "expect_bytes": total_bytes},
            "acm": {"type": "acm", "policy": "fixed", "modcod": "QPSK 1/2", "feedback_delay_s": delay_s},
        },
        "connect": [
            {"from": "src.out", "to": "tx.data"},
            {"from": "tx.iq", "to": "ch.in"},
            {"from": "ch.out", "to": "rx.iq"},
            {"from": "rx.frames", "to": "sink.frames"},
        ],
    }


def run_graph(mode: str, total_bytes: int, delay_s: float, rx: dict | None = None) -> dict:
    """Rate between 10 % and 90 % of the run's symbols, from the tx stage's counters."""
    g = check_graph(graph_table(total_bytes, delay_s, rx), "bench")
    samples: list[tuple[float, float]] = []

    def hook(runner):
        st = runner.records["tx"].stats or {}
        n = st.get("counters", {}).get("symbols")
        if n is not None and (not samples or samples[-1][1] != n):
            samples.append((time.monotonic(), float(n)))

    r = Runner(g, mode={"threads": "thread", "processes": "process"}[mode])
    r.kill_hook = hook
    t0 = time.monotonic()
    res = r.run()
    wall = time.monotonic() - t0
    sink = res.summary("sink")
    t, n = np.array(samples).T if samples else (np.zeros(1), np.zeros(1))
    lo, hi = 0.1 * n[-1], 0.9 * n[-1]
    i, j = int(np.searchsorted(n, lo)), int(np.searchsorted(n, hi))
    rate = (n[j] - n[i]) / (t[j] - t[i]) if j > i and t[j] > t[i] else float("nan")
    return {
        "mode": mode,
        "msym_s": rate / 1e6,
        "wall_s": wall,
        "status": res.status,
        "reason": res.reason,
        "delivered": sink.get("delivered_bytes"),
        "corrupt": sink.get("corrupt"),
        "failed": res.summary("rx").get("data_frames_failed"),
        "resent": res.summary("tx").get("frames_retransmitted"),
    }


def run_direct(total_bytes: int, batch_frames: int) -> dict:
    """The same chain as plain calls in one loop: Transmitter, Awgn, Receiver, user frames, checks."""
    from modem.channel import Awgn
    from modem.dvbs2.link import LinkConfig, Receiver, Transmitter

    cfg = LinkConfig(frame="normal", pilots=True)
    tx, rx = Transmitter(cfg), Receiver(cfg)
    awgn = Awgn(ESN0_DB, samples_per_symbol=2, signal_power=0.5, seed=5)
    pat = PrbsPattern(5)
    parser = UserFrameParser()
    cap = 32208 // 8 - 10
    offset = seq = delivered = symbols = 0
    batch = []
    t0 = time.perf_counter()
    while delivered < total_bytes:
        while tx.pending_bytes < cap and offset < total_bytes:
            n = min(PAYLOAD, total_bytes - offset)
            tx.push(encode_user_frame(seq, offset, pat.read(offset, n)))
            offset += n
            seq += 1
        if offset >= total_bytes:
            tx.flush()
        sym = tx.frames(["QPSK 1/2"])
        symbols += sym.size
        batch.append(awgn(tx.modulate(sym)))
        if len(batch) >= batch_frames or offset >= total_bytes:
            data, _ = rx.push_samples(np.concatenate(batch))
            batch = []
            for f in parser(data):
                assert f.payload == pat.read(f.offset, len(f.payload))
                delivered += len(f.payload)
        if symbols > 12 * total_bytes:  # the last frame waits for the next header: keep going
            break
    wall = time.perf_counter() - t0
    return {"mode": "direct", "msym_s": symbols / wall / 1e6, "wall_s": wall, "delivered": delivered}


def awgn_iterations(name: str, esn0_db: float, frames: int, seed: int) -> float:
    """Mean LDPC iterations of ``frames`` normal frames (pilots) of ``name`` on AWGN at ``esn0_db``."""
    from modem.dvbs2.link import LinkConfig, Receiver, Transmitter

    cfg = LinkConfig(frame="normal", pilots=True)
    rng = np.random.default_rng(seed)
    tx, rx = Transmitter(cfg), Receiver(cfg)
    tx.push(rng.integers(0, 256, frames * 8200, dtype=np.uint8).tobytes())
    tx.flush()
    s = tx.frames([name] * frames)
    sigma = np.sqrt(10 ** (-esn0_db / 10) / 2)
    y = s + sigma * (rng.normal(size=s.size) + 1j * rng.normal(size=s.size))
    _, reps = rx.push(y.astype(np.complex64))
    return float(np.mean([r.ldpc_iterations for r in reps if r.modcod > 0]))


def margin_check(run_dir: str, top: int = 3, frames: int = 32) -> list[dict]:
    """Run's LDPC iterations per MODCOD against AWGN at its estimated and true margins (see Part 3)."""
    d = np.load(Path(run_dir) / "timeline.npz")
    thr = measured_thresholds()
    names, mc, est, iters = d["rx_name"], d["rx_modcod"], d["rx_esn0_db"], d["rx_iters"]
    k = np.searchsorted(d["truth_offset"], d["rx_offset"], side="right") - 1
    true = d["truth_esn0_db"][np.clip(k, 0, d["truth_offset"].size - 1)]
    ok = (mc > 0) & np.isfinite(est) & np.isfinite(true)
    used, counts = np.unique(names[ok], return_counts=True)
    rows = []
    for i, name in enumerate(used[np.argsort(-counts)][:top]):
        sel = ok & (names == name)
        t0 = thr[(str(name), "normal")]
        e_m, t_m = float(np.mean(est[sel])) - t0, float(np.mean(true[sel])) - t0
        rows.append(
            {
                "modcod": str(name),
                "frames": int(sel.sum()),
                "iters_run": float(np.mean(iters[sel])),
                "est_margin_db": e_m,
                "true_margin_db": t_m,
                "iters_awgn_at_est": awgn_iterations(str(name), t0 + e_m, frames, 10 + i),
                "iters_awgn_at_true": awgn_iterations(str(name), t0 + t_m, frames, 20 + i),
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=float, default=4e6, help="PLFRAME symbols per run (default 4e6)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--delay", type=float, default=0.3, help="acm feedback delay (s; the decoder batches within it)"
    )
    ap.add_argument("--batch-frames", type=int, default=24, help="direct path: frames per decoder call")
    ap.add_argument("--modes", default="direct,threads,processes", help='speed runs ("": none)')
    ap.add_argument(
        "--rx",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="rx stage parameter for the threads/processes runs (repeatable), e.g. pipeline=false",
    )
    ap.add_argument("--scenario", action="store_true", help="also run the main job and print its summary")
    ap.add_argument("--margin-check", metavar="DIR", help="decoder-margin check of a run's output folder")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "flowgraph"))
    a = ap.parse_args()
    rx = {}
    for kv in a.rx:
        k, _, v = kv.partition("=")
        rx[k] = json.loads(v) if v not in ("true", "false") else v == "true"
    frames = int(a.symbols / QPSK12_SYMBOLS)
    total = frames * (32208 // 8 - 10) * PAYLOAD // (PAYLOAD + 28)
    print(f"QPSK 1/2 normal frames, pilots, AWGN Es/N0 {ESN0_DB:.3f} dB (threshold + 1 dB), {frames} frames, "
          f"{total:,} user bytes per run, best of {a.repeats}")  # fmt: skip
    best: dict[str, dict] = {}
    for mode in filter(None, a.modes.split(",")):  # --modes "": no speed runs
        for _ in range(a.repeats):
            r = run_direct(total, a.batch_frames) if mode == "direct" else run_graph(mode, total, a.delay, rx)
            ok = r.get("delivered") == total or mode == "direct"
            print(f"  {mode:<10} {r['msym_s']:6.2f} Msym/s  wall {r['wall_s']:6.1f} s  " + json.dumps(
                {k: v for k, v in r.items() if k not in ("mode", "msym_s", "wall_s")}))  # fmt: skip
            if ok and (mode not in best or r["msym_s"] > best[mode]["msym_s"]):
                best[mode] = r
    print()
    base = best.get("direct", {}).get("msym_s")
    for mode, r in best.items():
        ratio = f"{r['msym_s'] / base:.2f} x direct" if base else ""
        verdict = "meets" if r["msym_s"] >= TARGET_MSYM else "below"
        print(
            f"  {mode:<10} {r['msym_s']:6.2f} Msym/s  {ratio:<14} {verdict} the {TARGET_MSYM} Msym/s target"
        )
    if base and "processes" in best:
        q = best["processes"]["msym_s"] / base
        print(f"  ZeroMQ processes / direct = {q:.2f} (target >= 0.90: {'met' if q >= 0.9 else 'not met'})")
    if a.scenario:
        print("\nmain job: marslink run (storm_pass)")
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "flowgraphs.cli", "run", "--no-progress", "--out", a.out]
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        print(p.stdout)
        print(f"  exit {p.returncode}, {time.monotonic() - t0:.0f} s wall")
        summary = Path(a.out) / "summary.json"
        if summary.is_file():
            rep = json.loads(summary.read_text())
            t, b, f = rep["throughput"], rep["bytes"], rep["frames"]

            def verdict(ok: bool) -> str:
                return "met" if ok else "not met"

            g = t["vs_genie"]
            print(f"  delivered / genie = {g:.3f} (target >= 0.95: {verdict(g >= 0.95)})")
            print(f"  bytes lost = {b['lost']} (target 0: {verdict(b['lost'] == 0)})")
            print(f"  FER after ACM = {f['fer']:.2e} (target <= 1e-3: {verdict(f['fer'] <= 1e-3)})")
    if a.margin_check:
        print(f"\ndecoder margin ({a.margin_check}): mean LDPC iterations, run vs AWGN at the run's margins")
        print(
            f"  {'MODCOD':12s} {'frames':>6s} {'run':>6s}  {'est. margin':>11s} {'AWGN':>6s}  {'true margin':>11s} {'AWGN':>6s}"
        )
        for r in margin_check(a.margin_check):
            print(f"  {r['modcod']:12s} {r['frames']:6d} {r['iters_run']:6.1f}  {r['est_margin_db']:+8.2f} dB "
                  f"{r['iters_awgn_at_est']:6.1f}  {r['true_margin_db']:+8.2f} dB {r['iters_awgn_at_true']:6.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
