"""Replay speed of the shipped captures and streaming throughput of the virtual Pluto.

Replay: every recording in ``captures/`` is replayed into the DVB-S2 receiver
(:func:`hw.capture_decode.replay_decode`: SigMF read, ``Receiver.push_samples``, LDPC, BCH,
deframing), best of ``--repeats``: "cold" as ``marslink replay`` does it (a new receiver,
which builds its LDPC codes and BCH tables), "steady" with a warm receiver fed the recording
again in chunks of 2^17 samples. Target: at least the capture's own sample rate ("x real time"
>= 1; the baseline is the recording's duration). ``--ldpc-dispatch-fix`` also times it with the LDPC
decoder's numba kernel called through a wrapper that fixes its ``kernel`` argument as a
compile-time constant (see the report: the kernel's ``literally`` dispatch costs about 0.15 s
per decode call; this shows what the replay reaches without that overhead; nothing is changed
on disk).

Virtual Pluto: pyadi-iio (``adi.Pluto``) over the system libiio pushes TX buffers and reads RX
buffers in two threads against a :class:`hw.virtual_pluto.VirtualPluto` on 127.0.0.1, paced in
real time at each ``--rates`` value for ``--seconds``: the achieved TX and RX sample rates
(baseline: the configured rate, "x rate") and the TX underflow / RX overflow samples the
virtual radio counted. Target: 5 MS/s both ways with no gap. Then the same unpaced (as fast as
the client reads).

Usage: ``.venv/bin/python benchmarks/replay.py [--repeats 3] [--rates 5e6 10e6 20e6] [--seconds 3]``
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


def replay_rows(repeats: int) -> list[dict]:
    """Per capture: cold replays as ``marslink replay`` does them, and a warm receiver's steady speed."""
    from hw.capture_decode import link_config, replay_decode
    from hw.captures import open_capture
    from modem.dvbs2.link import Receiver

    rows = []
    for meta in sorted((ROOT / "captures").glob("*.sigmf-meta")):
        cap = open_capture(meta)
        replay_decode(cap)  # first use in this process: numba caches, decoder tables
        dur = cap.info.duration_s
        row = {"capture": meta.name[: -len(".sigmf-meta")], "samples": len(cap),
               "rate_hz": cap.sample_rate_hz, "duration_s": dur}  # fmt: skip
        t = best_time(lambda c=cap: replay_decode(c), repeats)
        row["cold"] = {"wall_s": t, "x_real_time": dur / t}
        x = cap.read()
        rx = Receiver(link_config(cap))
        rx.push_samples(x)  # every code and decoder built

        def steady(rx=rx, x=x):
            for k in range(0, x.size, 1 << 17):
                rx.push_samples(x[k : k + (1 << 17)])

        t = best_time(steady, repeats)
        row["steady"] = {"wall_s": t, "x_real_time": dur / t}
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


def patch_ldpc_dispatch() -> None:
    """Call the LDPC kernel through njit wrappers with a constant kernel (process-local, for timing)."""
    import numba as nb

    from modem.fec import _ldpc_kernels as k

    orig = k._decode_frames
    simd, portable = k.SIMD, k.PORTABLE

    @nb.njit(nogil=True)
    def _simd(a, b, c, d, e, f, g, h, i, j, l, m, n, o, kernel, p, q, r, s, t, u, v):  # noqa: E741
        return orig(a, b, c, d, e, f, g, h, i, j, l, m, n, o, simd, p, q, r, s, t, u, v)

    @nb.njit(nogil=True)
    def _portable(a, b, c, d, e, f, g, h, i, j, l, m, n, o, kernel, p, q, r, s, t, u, v):  # noqa: E741
        return orig(a, b, c, d, e, f, g, h, i, j, l, m, n, o, portable, p, q, r, s, t, u, v)

    def dispatch(*args):
        return (_simd if args[14] == simd else _portable)(*args)

    k._decode_frames = dispatch


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
    ap.add_argument("--ldpc-dispatch-fix", action="store_true", help="also time the replay with the wrapper")
    ap.add_argument("--skip-pluto", action="store_true")
    a = ap.parse_args()
    out: dict = {}

    overhead = ldpc_call_overhead()
    out["ldpc_decode_call_s"] = overhead
    print(f"LDPC decode call on one converged short frame: {overhead * 1e3:.1f} ms")
    print(f"\nreplay and decode (best of {a.repeats}): cold = marslink replay (new receiver), steady = warm")
    print(f"{'capture':24s} {'samples':>8s} {'MS/s':>5s} {'dur s':>6s}  {'cold':>16s}  {'steady':>16s}")

    def show(rows):
        for r in rows:
            c, w = r["cold"], r["steady"]
            print(f"{r['capture']:24s} {r['samples']:8d} {r['rate_hz'] / 1e6:5.2f} {r['duration_s']:6.3f}  "
                  f"{c['wall_s']:6.2f} s {c['x_real_time']:5.2f}x  "
                  f"{w['wall_s']:6.2f} s {w['x_real_time']:5.2f}x")  # fmt: skip

    out["replay"] = replay_rows(a.repeats)
    show(out["replay"])
    if a.ldpc_dispatch_fix:
        patch_ldpc_dispatch()
        out["ldpc_decode_call_s_fixed"] = ldpc_call_overhead()
        print(f"\nwith the dispatch wrapper: {out['ldpc_decode_call_s_fixed'] * 1e3:.2f} ms per decode call")
        out["replay_dispatch_fix"] = replay_rows(a.repeats)
        show(out["replay_dispatch_fix"])

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
