"""Soak: the main job's flowgraph (storm_pass) for many minutes; memory, lost bytes, steadiness.

Runs ``flowgraphs/graphs/storm_pass.toml`` (every stage its own process, ZeroMQ between them)
at its full rate for ``--minutes`` of wall time and samples, every ``--sample-s`` seconds, each
stage's resident memory (``VmRSS`` from ``/proc/PID/status``) and the run's counters (symbols
sent by the tx, bytes delivered by the sink). Then the run is stopped and it prints:

* memory growth per stage, %: mean RSS over the last fifth of the run against the mean over the
  fifth after the warm-up (the first ``--warmup`` fraction, when numba caches load and queues
  fill); target: every stage within 10 %;
* bytes lost: the run's own accounting (offered - delivered - held in the tx queue and at the
  sink, from the monitor's report); target 0, and the run's problems (none);
* throughput steadiness: the processing rate (tx symbols per wall second) per ``--window-s``
  window: coefficient of variation and min / median; the delivered data rate per window
  is printed too (it follows the ACM's MODCOD along the pass, so it is not expected to be flat).

The shipped graph runs one 693 s pass in 35 s of stream (time scale 20); the runtime has no
scenario loop, so the soak stretches the one pass over the soak's length instead (the time scale
is chosen so that the pass lasts ``--minutes`` x ``--speed`` seconds of stream) and scales the
scenario-time parameters with it (ACM feedback delay, trend window, tx drain time, progress
window), which keeps every delay the same in stream samples as in the shipped job. Results:
JSON in ``benchmarks/out/soak.json``.

Usage: ``.venv/bin/python benchmarks/soak.py [--minutes 30] [--sample-s 5] [--speed 1.0]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowgraphs.graph import Runner, load_graph  # noqa: E402
from flowgraphs.timebase import scenario_span  # noqa: E402

SHIPPED_SCALE = 20.0


def rss_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid``, bytes (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def overrides(minutes: float, speed: float) -> list[str]:
    """``--set`` items that stretch the pass over the soak and keep stream-sample delays."""
    start, duration = scenario_span("storm_pass")
    scale = duration / (minutes * 60.0 * speed)
    k = scale / SHIPPED_SCALE
    return [
        f"link.time_scale={scale!r}",
        f"acm.feedback_delay_s={2.0 * k!r}",
        f"acm.predict_s={10.0 * k!r}",
        f"tx.drain_s={5.0 * k!r}",
        f"mon.window_s={20.0 * k!r}",
        "mon.plots=false",
    ]


def growth(values: list[float], warmup: float) -> float | None:
    """Mean of the last fifth against the mean of the fifth after ``warmup`` (fraction), %."""
    n = len(values)
    if n < 10:
        return None
    i0 = int(n * warmup)
    span = max(1, (n - i0) // 5)
    early = statistics.fmean(values[i0 : i0 + span])
    late = statistics.fmean(values[-span:])
    return 100.0 * (late - early) / early


def main(argv=None) -> int:
    """Run the soak and print the three results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="wall minutes to run")
    ap.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--window-s", type=float, default=30.0, help="throughput window, wall seconds")
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of the run left out as warm-up")
    ap.add_argument(
        "--speed", type=float, default=1.0,
        help="stream seconds per wall second expected (sets how far the pass is stretched)",
    )  # fmt: skip
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "soak.json"))
    args = ap.parse_args(argv)

    sets = overrides(args.minutes, args.speed)
    graph = load_graph("storm_pass", sets)
    runner = Runner(graph, mode="process")
    samples: list[dict] = []
    t0 = time.monotonic()
    next_at = [t0]

    def hook(r):
        now = time.monotonic()
        if now < next_at[0]:
            return
        next_at[0] = now + args.sample_s
        row = {"t": now - t0, "rss": {}, "restarts": {n: rec.restarts for n, rec in r.records.items()}}
        for name in r.records:
            pid = r.pid(name)
            row["rss"][name] = rss_bytes(pid) if pid else None
        tx = (r.records["tx"].stats or {}).get("counters", {})
        sink = (r.records["sink"].stats or {}).get("counters", {})
        row["symbols"] = int(tx.get("symbols", 0))
        row["delivered"] = int(sink.get("delivered_bytes", 0))
        samples.append(row)

    runner.kill_hook = hook
    timer = threading.Timer(args.minutes * 60.0, runner.stop)
    timer.daemon = True
    timer.start()
    print(f"soak: storm_pass for {args.minutes:g} min, " + " ".join(f"--set {s}" for s in sets), flush=True)
    res = runner.run()
    timer.cancel()

    report = res.summary("mon").get("report", {})
    b = report.get("bytes", {})
    print(f"run ended: {res.reason}, {res.wall_s:.0f} s wall, status {res.status}, problems {res.problems}")
    print("\nmemory (RSS, MiB): first sample after warm-up -> last; growth = last fifth vs first fifth")
    mem = {}
    for name in runner.records:
        vals = [s["rss"][name] / 2**20 for s in samples if s["rss"].get(name)]
        g = growth(vals, args.warmup)
        mem[name] = {"growth_pct": g, "first_mib": vals[0] if vals else None, "last_mib": vals[-1] if vals else None,
                     "peak_mib": max(vals) if vals else None}  # fmt: skip
        gtxt = f"{g:+6.1f} %" if g is not None else "   n/a"
        if vals:
            i0 = int(len(vals) * args.warmup)
            print(f"  {name:<6} {vals[i0]:8.1f} -> {vals[-1]:8.1f}  peak {max(vals):8.1f}  growth {gtxt}")
    worst = max((abs(m["growth_pct"]) for m in mem.values() if m["growth_pct"] is not None), default=None)

    print("\nthroughput per window")
    rates, data_rates = [], []
    i = 0
    while i < len(samples):
        j = i
        while j + 1 < len(samples) and samples[j + 1]["t"] - samples[i]["t"] < args.window_s:
            j += 1
        if j + 1 < len(samples):
            a, z = samples[i], samples[j + 1]
            dt = z["t"] - a["t"]
            if a["t"] >= args.warmup * args.minutes * 60.0:
                rates.append((z["symbols"] - a["symbols"]) / dt / 1e6)
                data_rates.append((z["delivered"] - a["delivered"]) * 8 / dt / 1e6)
        i = j + 1
    steady = {}
    if len(rates) >= 2:
        med = statistics.median(rates)
        cv = statistics.pstdev(rates) / statistics.fmean(rates) if statistics.fmean(rates) > 0 else float("nan")
        steady = {"msym_per_s_windows": rates, "cv": cv, "min_over_median": min(rates) / med if med else None,
                  "delivered_mbit_per_s_windows": data_rates}  # fmt: skip
        print(f"  processing: {len(rates)} windows of {args.window_s:g} s, median {med:.3f} Msym/s, "
              f"min {min(rates):.3f}, max {max(rates):.3f}, CV {100 * cv:.1f} %")  # fmt: skip
        print(f"  delivered:  median {statistics.median(data_rates):.3f} Mbit/s, min {min(data_rates):.3f}, "
              f"max {max(data_rates):.3f} (follows the MODCOD along the pass)")  # fmt: skip
    else:
        print("  too few samples for windows")

    lost = b.get("lost")
    print("\nresult")
    print(f"  memory growth, worst stage: {worst:.1f} % (target <= 10 %)" if worst is not None else "  memory: n/a")
    print(f"  bytes offered {b.get('offered', 0):,}, delivered {b.get('delivered', 0):,}, held in tx "
          f"{b.get('held_tx_queue', 0):,}, at sink {b.get('held_sink', 0):,}: lost {lost} (target 0)")  # fmt: skip
    if steady:
        print(f"  processing-rate steadiness: CV {100 * steady['cv']:.1f} %, min/median "
              f"{steady['min_over_median']:.2f}")  # fmt: skip
    out = {"minutes": args.minutes, "overrides": sets, "reason": res.reason, "status": res.status,
           "problems": res.problems, "wall_s": res.wall_s, "bytes": b, "memory": mem, "steadiness": steady,
           "restarts": {n: r.restarts for n, r in res.stages.items()}, "samples": samples}  # fmt: skip
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, default=float)
    print(f"  samples and results: {args.out}")
    ok = res.reason in ("stopped", "done") and not res.problems and lost == 0 and (worst is None or worst <= 10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
