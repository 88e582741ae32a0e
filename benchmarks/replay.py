"""Replay speed of the shipped captures and streaming throughput of the virtual Pluto.

Replay: every recording in ``captures/`` is replayed into the DVB-S2 receiver
(:func:`hw.capture_decode.replay_decode`: SigMF read, ``Receiver.push_samples`` in chunks of
``FAST_CHUNK`` samples with the receiver's decode pipeline, LDPC, BCH, deframing, reports),
best of ``--repeats``. Timed: the replay loop alone (reading the samples, ``push_samples``, the
final flush). Not timed: numba's compilation / cache loading (one untimed replay first in the
process, as a receiver that is already running has them) and opening the recording. Two rows:
"cold" as ``marslink replay`` does it (a new receiver, which builds its LDPC decoders and their
work areas and the BCH tables during the replay), "warm" into a receiver that has decoded the
recording once already (decoders built), as a long-running receiver meets a recording.
Target: at least the capture's own sample rate ("x real time" >= 1; the baseline is the
recording's duration). ``--profile`` splits the warm replay's time (one thread, no pipeline)
into the synchronizer, LDPC, BCH, demapping and the rest.

Virtual Pluto: pyadi-iio (``adi.Pluto``) over the system libiio pushes TX buffers and reads RX
buffers in two threads against a :class:`hw.virtual_pluto.VirtualPluto` on 127.0.0.1, paced in
real time at each ``--rates`` value for ``--seconds``: the achieved TX and RX sample rates
(baseline: the configured rate, "x rate") and the TX underflow / RX overflow samples the
virtual radio counted. Target: 5 MS/s both ways with no gap. Then the same unpaced (as fast as
the client reads).

Usage: ``.venv/bin/python benchmarks/replay.py [--repeats 3] [--rates 5e6 10e6 20e6] [--seconds 3]
[--skip-pluto] [--profile]``
Writes ``benchmarks/out/replay.json``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np
from _timing import best_time  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    """(fn(), CPU seconds of this process, all threads, during the call)."""
    c0 = time.process_time()
    r = fn()
    return r, time.process_time() - c0


def best(runs, duration_s: float) -> dict:
    """Best wall and best CPU time of (ReplayResult, cpu_s) runs, and the real-time factors."""
    wall = min(r.elapsed_s for r, _ in runs)
    cpu = min(c for _, c in runs)
    return {
        "wall_s": wall,
        "x_real_time": duration_s / wall,
        "cpu_s": cpu,
        "x_real_time_cpu": duration_s / cpu,
    }


def replay_rows(repeats: int) -> list[dict]:
    """Per capture: cold replays as ``marslink replay`` does them, and warm ones (decoders built)."""
    from hw.capture_decode import link_config, replay_decode
    from hw.captures import open_capture
    from modem.dvbs2.link import Receiver

    rows = []
    for meta in sorted((ROOT / "captures").glob("*.sigmf-meta")):
        cap = open_capture(meta)
        first = replay_decode(cap)  # first use in this process: numba caches, tables (not timed)
        dur = cap.info.duration_s
        row = {"capture": meta.name[: -len(".sigmf-meta")], "samples": len(cap),
               "rate_hz": cap.sample_rate_hz, "duration_s": dur, "frames": len(first.reports),
               "bytes": len(first.data)}  # fmt: skip
        runs = [timed(lambda c=cap: replay_decode(c)) for _ in range(repeats)]
        row["cold"] = best(runs, dur)
        # warm: a new receiver (a new stream) that already holds the LDPC decoders of one that
        # decoded the recording, as a long-running receiver has them (``Receiver.reset`` drops
        # them today: a decoder's first call allocates its work areas, ~7 ms per short code)
        built = Receiver(link_config(cap), pipeline=True)
        replay_decode(cap, receiver=built)
        runs = []
        for _ in range(repeats):
            rx = Receiver(link_config(cap), pipeline=True)
            rx._decoders = built._decoders
            runs.append(timed(lambda c=cap, rx=rx: replay_decode(c, receiver=rx)))
        if any(r.data != first.data for r, _ in runs):
            raise RuntimeError(f"{row['capture']}: the warm receiver decoded other bytes than a new one")
        row["warm"] = best(runs, dur)
        rows.append(row)
    return rows


def replay_profile(repeats: int) -> list[dict]:
    """Per capture: where a warm replay's time goes (cProfile, one thread), s per replay."""
    import cProfile
    import pstats

    from hw.capture_decode import link_config, replay_decode
    from hw.captures import open_capture
    from modem.dvbs2.link import Receiver

    parts = {  # label: (file, function) whose cumulative time is that part
        "synchronizer (modem/sync)": ("modem/sync/dvbs2.py", "_push"),
        "LDPC decode": ("modem/fec/ldpc_decoder.py", "decode"),
        "BCH decode": ("modem/fec/bch.py", "decode"),
        "soft demapping": ("modem/dvbs2/mapping.py", "demap_deinterleave"),
        "Es/N0 refinement": ("modem/dvbs2/link.py", "_refine_esn0"),
    }
    rows = []
    for meta in sorted((ROOT / "captures").glob("*.sigmf-meta")):
        cap = open_capture(meta)
        built = Receiver(link_config(cap), pipeline=False)
        replay_decode(cap, receiver=built)
        receivers = [Receiver(link_config(cap), pipeline=False) for _ in range(repeats)]
        for rx in receivers:
            rx._decoders = built._decoders  # warm, as in replay_rows
        prof = cProfile.Profile()
        prof.enable()
        for rx in receivers:
            replay_decode(cap, receiver=rx)
        prof.disable()
        stats = pstats.Stats(prof).stats
        top = [
            v[3]
            for (f, _, fn), v in stats.items()
            if f.endswith("hw/capture_decode.py") and fn == "replay_decode"
        ]
        row = {"capture": meta.name[: -len(".sigmf-meta")], "total_s": sum(top) / repeats}
        for label, (frag, func) in parts.items():
            row[label] = (
                sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(frag) and fn == func) / repeats
            )
        row["rest"] = row["total_s"] - sum(row[k] for k in parts)
        rows.append(row)
    return rows


def ldpc_call_overhead() -> float:
    """Wall time of one LdpcDecoder.decode call on one frame that needs no iteration (s)."""
    from modem.fec.dvbs2_ldpc import dvbs2_code
    from modem.fec.ldpc_decoder import LdpcDecoder

    code = dvbs2_code("short", "1/2")
    dec = LdpcDecoder(code)
    llr = np.full((1, code.n), 8.0, np.float32)
    dec.decode(llr)
    return best_time(lambda: dec.decode(llr), 5)


def pluto_stream(
    rate: float, seconds: float, realtime: bool, buffer: int = 1 << 16, warmup: float = 0.5
) -> dict:
    """TX and RX through pyadi-iio at ``rate`` for ``seconds`` after ``warmup``: achieved rates and gaps."""
    import adi

    from hw.virtual_pluto import VirtualPluto

    with VirtualPluto(port=0, realtime=realtime) as vp:
        sdr = adi.Pluto(vp.uri)
        sdr.sample_rate = int(rate)
        sdr.rx_lo = sdr.tx_lo = 2_400_000_000
        sdr.gain_control_mode_chan0 = "manual"
        sdr.rx_hardwaregain_chan0 = 40
        sdr.rx_buffer_size = buffer
        x = np.exp(2j * np.pi * 0.01 * np.arange(buffer)) * 2**13
        count = {"tx": 0, "rx": 0}
        stop = time.perf_counter() + warmup + seconds
        errors = []

        def tx_loop():
            try:
                while time.perf_counter() < stop:
                    if not realtime and count["tx"] > count["rx"] + 8 * buffer:
                        time.sleep(0.0005)  # unpaced: stay a few buffers ahead of the reader
                        continue
                    sdr.tx(x)
                    count["tx"] += buffer
            except OSError as e:
                errors.append(f"tx: {e}")

        def rx_loop():
            try:
                while time.perf_counter() < stop:
                    count["rx"] += sdr.rx().size
            except OSError as e:
                errors.append(f"rx: {e}")

        threads = [threading.Thread(target=tx_loop), threading.Thread(target=rx_loop)]
        for t in threads:
            t.start()
        time.sleep(warmup)  # both loops running: measure the steady state from here
        t0 = time.perf_counter()
        c0 = dict(count)
        s0 = (vp.stats.tx_underflow_samples, vp.stats.rx_overflow_samples)
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        count = {k: count[k] - c0[k] for k in count}
        under = vp.stats.tx_underflow_samples - s0[0]
        over = vp.stats.rx_overflow_samples - s0[1]
        sdr.tx_destroy_buffer()
        sdr.rx_destroy_buffer()
        sdr = None  # drop the context before the server stops
    return {"rate_hz": rate, "realtime": realtime, "wall_s": wall, "tx_sps": count["tx"] / wall,
            "rx_sps": count["rx"] / wall, "tx_underflow_samples": under, "rx_overflow_samples": over,
            "errors": errors}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rates", type=float, nargs="+", default=[5e6, 10e6, 20e6])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--skip-pluto", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also split a warm replay's time by part")
    a = ap.parse_args()
    out: dict = {}

    from hw.capture_decode import FAST_CHUNK

    overhead = ldpc_call_overhead()
    out["ldpc_decode_call_s"] = overhead
    print(f"LDPC decode call on one converged short frame: {overhead * 1e3:.1f} ms")
    print(
        f"\nreplay and decode (best of {a.repeats}, chunks of {FAST_CHUNK} samples, decode pipeline): "
        "cold = marslink replay (new receiver), warm = decoders built; numba warm-up not timed"
    )
    print(f"{'capture':24s} {'samples':>8s} {'MS/s':>5s} {'dur s':>6s}  {'cold: wall':>16s} {'CPU':>14s}  "
          f"{'warm: wall':>16s} {'CPU':>14s}")  # fmt: skip
    out["replay"] = replay_rows(a.repeats)
    for r in out["replay"]:
        cols = "".join(
            f"  {x['wall_s']:6.3f} s {x['x_real_time']:5.2f}x {x['cpu_s']:6.3f} s {x['x_real_time_cpu']:5.2f}x"
            for x in (r["cold"], r["warm"])
        )
        print(f"{r['capture']:24s} {r['samples']:8d} {r['rate_hz'] / 1e6:5.2f} {r['duration_s']:6.3f}{cols}")
    print("  (x = recording duration / time; CPU = this process's CPU seconds, both threads: what the")
    print(
        "   replay costs whatever else runs on the machine; on idle cores the wall time is at most about that)"
    )
    if a.profile:
        out["replay_profile"] = replay_profile(a.repeats)
        print("\nwarm replay, one thread, cProfile (ms per replay; profiling adds overhead)")
        for r in out["replay_profile"]:
            print(f"  {r['capture']}: total {r['total_s'] * 1e3:.1f} ms")
            for k, v in r.items():
                if k not in ("capture", "total_s"):
                    print(f"    {k:40s} {v * 1e3:7.1f} ms  {100 * v / r['total_s']:5.1f} %")

    if not a.skip_pluto:
        print(f"\nvirtual Pluto through pyadi-iio, TX and RX threads, {a.seconds:g} s each")
        print(f"{'rate MS/s':>9s} {'paced':>6s} {'TX MS/s':>8s} {'RX MS/s':>8s} {'x rate':>7s} "
              f"{'underflow':>10s} {'overflow':>10s}")  # fmt: skip
        rows = []
        for rate in a.rates:
            rows.append(pluto_stream(rate, a.seconds, realtime=True))
        rows.append(pluto_stream(a.rates[0], a.seconds, realtime=False))
        for r in rows:
            x = min(r["tx_sps"], r["rx_sps"]) / r["rate_hz"]
            print(f"{r['rate_hz'] / 1e6:9.2f} {'yes' if r['realtime'] else 'no':>6s} "
                  f"{r['tx_sps'] / 1e6:8.2f} {r['rx_sps'] / 1e6:8.2f} {x:7.2f} "
                  f"{r['tx_underflow_samples']:10d} {r['rx_overflow_samples']:10d}"
                  + (f"  {r['errors']}" if r["errors"] else ""))  # fmt: skip
        out["virtual_pluto"] = rows
    dest = ROOT / "benchmarks" / "out"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "replay.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {dest / 'replay.json'}")


if __name__ == "__main__":
    main()
