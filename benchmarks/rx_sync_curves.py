"""Frame error rates of the DVB-S2 receiver from raw IQ, against the ideal-sync thresholds.

For each MODCOD (normal frames) a stream of ``--frames`` PLFRAMEs goes through modem.channel
(clock offset 100 ppm, carrier offset 10 % of the symbol rate, TCXO phase noise at 5 Msample/s,
AWGN) into ``Receiver.push_samples`` (chunks of 2^20 samples, LDPC batches of 64, 2 workers);
the receiver starts a third into the first frame. At each Es/N0 offset from the measured
ideal-sync FER-1e-2 threshold (``modem/dvbs2/data/measured_thresholds.csv``) the frame error
rate is counted over the frames after the first lock (a frame in error: not delivered, or its
header lost), and the Es/N0 where FER = 1e-2 with synchronization is interpolated (log FER,
linear in dB) between the bracketing offsets: the synchronization loss is its distance to the
ideal-sync threshold. Also, per stream: frames before the first lock (acquisition), and the
reported Es/N0's error.

``--pilotless`` runs QPSK and 8PSK without pilots instead (the documented loss of the M-th
power carrier recovery). ``--noise N`` runs N million symbols of white noise and counts frames
and locks (false lock), with the candidate rates of each detection stage. ``--esn0`` measures
the per-frame Es/N0 estimate (header and pilots, before decoding) from -3 to 18 dB.

Usage: ``.venv/bin/python benchmarks/rx_sync_curves.py [--frames 100] [--offsets 0,0.3]
[--modcods "QPSK 1/4,8PSK 3/5"] [--pilotless] [--noise 5] [--esn0]``
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from modem.channel import Awgn, CarrierOffset, Chain, ClockOffset, PhaseNoise
from modem.dvbs2.link import LinkConfig, Receiver, Transmitter
from modem.dvbs2.modcod import MODCODS, frame_spec, modcod
from modem.sync.dvbs2 import Dvbs2Synchronizer

FS = 5e6
SPS = 2
ROOT = Path(__file__).resolve().parents[1]
CHUNK_FRAMES = 24  # frames generated at a time (memory)


def thresholds() -> dict[tuple[int, str], float]:
    rows = [r for r in (ROOT / "modem/dvbs2/data/measured_thresholds.csv").read_text().splitlines()
            if not r.startswith("#")]  # fmt: skip
    return {(int(r["pls_modcod"]), r["frame"]): float(r["esn0_fer1e2_db"]) for r in csv.DictReader(rows)}


def run_stream(mc: int, esn0: float, frames: int, pilots: bool, seed: int) -> dict:
    """Frames of one MODCOD through the impaired channel into a receiver; counts."""
    rng = np.random.default_rng(seed)
    cfg = LinkConfig(frame="normal", pilots=pilots, sps=SPS)
    spec = frame_spec(mc, "normal", pilots)
    tx = Transmitter(cfg)
    ch = Chain(ClockOffset(100.0, sample_rate_hz=FS, delay_samples=rng.uniform(0, 4)),
               CarrierOffset(0.1 * FS / SPS, FS, phase_rad=rng.uniform(0, 6.3)),
               PhaseNoise.preset("tcxo", FS, seed=seed), Awgn(esn0, SPS, 0.5, seed=seed + 1))  # fmt: skip
    rx = Receiver(cfg, workers=2, batch_frames=64)
    reps = []
    left = frames + 1
    first = True
    while left > 0:
        n = min(CHUNK_FRAMES, left)
        tx.push(rng.bytes(n * spec.data_field_bits // 8))
        y = ch(tx.modulate(tx.frames([mc] * n)))
        if first:
            y = y[spec.plframe_symbols * SPS // 3 :]
            first = False
        left -= n
        for i in range(0, y.size, 1 << 20):
            reps += rx.push_samples(y[i : i + (1 << 20)])[1]
    tx.flush()
    y = np.concatenate([ch(tx.modulate_flush()), ch.flush()])
    reps += rx.push_samples(y)[1]
    rx.flush()
    reps += rx.flush_reports
    data = [r for r in reps if r.modcod > 0 or r.modcod < 0]
    return {
        "frames": len(data), "errors": sum(not r.ok for r in data), "lost": sum(r.modcod < 0 for r in data),
        "expected": frames, "esn0": [r.esn0_db for r in data if r.ok], "locks": rx.stats.locks,
    }  # fmt: skip


def fer_curves(args, th) -> None:
    names = [m.strip() for m in args.modcods.split(",")] if args.modcods else [m.name for m in MODCODS]
    if args.pilotless:
        names = [n for n in names if modcod(n).modulation in ("QPSK", "8PSK")]
    offsets = [float(o) for o in args.offsets.split(",")]
    pil = "off" if args.pilotless else "on"
    print(
        f"FER with synchronization, normal frames, pilots {pil}, CFO 10 % Rs, 100 ppm, TCXO, "
        f"{args.frames} frames per point; offsets from the ideal-sync FER-1e-2 Es/N0"
    )
    print(f"{'MODCOD':12s} {'ideal':>7s}  " + "  ".join(f"{o:+5.2f}: FER (err/frames)" for o in offsets)
          + "   sync thr  loss dB  Es/N0 err")  # fmt: skip
    for k, name in enumerate(names):
        m = modcod(name)
        ideal = th[(m.index, "normal")]
        cells, pts = [], []
        esn0_err = []
        t0 = time.time()
        for j, off in enumerate(offsets):
            r = run_stream(m.index, ideal + off, args.frames, not args.pilotless, seed=1000 * k + 17 * j + 1)
            missing = max(r["expected"] - r["frames"], 0)  # frames never reported (acquisition)
            errors = r["errors"] + missing
            total = r["frames"] + missing
            fer = errors / max(total, 1)
            cells.append(f"{fer:8.4f} ({errors:3d}/{total:3d})")
            pts.append((ideal + off, fer, total))
            esn0_err += [e - (ideal + off) for e in r["esn0"]]
        thr = _interp_threshold(pts)
        loss = thr - ideal if thr == thr else float("nan")
        e = np.array(esn0_err) if esn0_err else np.zeros(1)
        print(f"{name:12s} {ideal:7.3f}  " + "  ".join(cells) + f"   {thr:7.3f}  {loss:+6.3f}  "
              f"{e.mean():+.3f}+-{e.std():.3f}  ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip


def _interp_threshold(pts) -> float:
    """Es/N0 where FER = 1e-2, log-linear between the bracketing points (zero errors count 0.5)."""
    pts = sorted(pts)
    lf = [np.log10(max(f, 0.5 / max(n, 1))) for _, f, n in pts]
    for (e0, _, _), (e1, _, _), a, b in zip(pts[:-1], pts[1:], lf[:-1], lf[1:], strict=True):
        if a >= -2 >= b and a != b:
            return e0 + (a + 2) / (a - b) * (e1 - e0)
    if lf[0] < -2:
        return float("-inf")  # below every point measured: at most the lowest offset
    return float("nan")


def noise_run(args) -> None:
    """False lock: white noise in, no frame out; per-stage candidate rates."""
    from modem.sync import dvbs2 as sd

    counts = {"examined": 0, "candidates": 0}
    orig_examine = sd.Dvbs2Synchronizer._examine

    def examine(self, p, f0, with_pilots):
        counts["examined"] += 1
        c = orig_examine(self, p, f0, with_pilots)
        counts["candidates"] += c is not None
        return c

    sd.Dvbs2Synchronizer._examine = examine
    rng = np.random.default_rng(7)
    s = Dvbs2Synchronizer()
    n_sym = int(args.noise * 1e6)
    frames = 0
    t0 = time.time()
    for _ in range(0, 2 * n_sym, 1 << 20):
        x = (rng.standard_normal(1 << 20) + 1j * rng.standard_normal(1 << 20)).astype(np.complex64)
        frames += len(s(x))
    sym = s.samples_in / SPS
    print(f"noise: {sym / 1e6:.1f} M symbols, {frames} frames/losses reported, {s.restarts} locks; "
          f"positions tested coherently {counts['examined']} ({counts['examined'] / sym:.2e} per symbol), "
          f"candidates awaiting a second header {counts['candidates']} ({counts['candidates'] / sym:.2e} per "
          f"symbol); {sym / (time.time() - t0) / 1e6:.2f} M symbols/s")  # fmt: skip
    sd.Dvbs2Synchronizer._examine = orig_examine


def esn0_run(args) -> None:
    """Per-frame Es/N0 from the header and pilots (the synchronizer's), against the channel's."""
    print("Es/N0 estimate per frame (PLHEADER + pilots, before decoding), normal frames, pilots, CFO 10 %, "
          "100 ppm, TCXO")  # fmt: skip
    for esn0, name in ((-3.0, "QPSK 1/4"), (0.0, "QPSK 1/3"), (3.0, "QPSK 1/2"), (6.0, "QPSK 5/6"),
                       (10.0, "8PSK 3/4"), (14.0, "16APSK 8/9"), (18.0, "32APSK 9/10")):  # fmt: skip
        m = modcod(name)
        rng = np.random.default_rng(int(esn0 * 10) + 100)
        cfg = LinkConfig(frame="normal", pilots=True)
        spec = frame_spec(m.index, "normal", True)
        tx = Transmitter(cfg)
        tx.push(rng.bytes((args.frames + 1) * spec.data_field_bits // 8))
        tx.flush()
        iq = np.concatenate([tx.modulate(tx.frames([m.index] * (args.frames + 1))), tx.modulate_flush()])
        ch = Chain(ClockOffset(100.0, sample_rate_hz=FS), CarrierOffset(0.1 * FS / SPS, FS),
                   PhaseNoise.preset("tcxo", FS, seed=3), Awgn(esn0, SPS, 0.5, seed=4))  # fmt: skip
        y = np.concatenate([ch(iq), ch.flush()])[spec.plframe_symbols * SPS // 3 :]
        ev = [e.esn0_db - esn0 for e in Dvbs2Synchronizer()(y) if e.kind == "frame"]
        e = np.array(ev)
        print(f"  {esn0:5.1f} dB {name:12s} frames {e.size:4d}: error mean {e.mean():+.3f} dB, "
              f"std {e.std():.3f}, "
              f"max |error| {np.abs(e).max():.3f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100, help="frames per point")
    ap.add_argument("--offsets", default="0,0.3", help="Es/N0 offsets from the ideal-sync threshold, dB")
    ap.add_argument("--modcods", default="", help="comma-separated MODCOD names (default: all 28)")
    ap.add_argument("--pilotless", action="store_true", help="QPSK and 8PSK without pilots")
    ap.add_argument(
        "--noise", type=float, default=0.0, help="million symbols of noise for the false-lock run"
    )
    ap.add_argument("--esn0", action="store_true", help="Es/N0 estimator accuracy")
    args = ap.parse_args()
    if args.noise:
        noise_run(args)
    if args.esn0:
        esn0_run(args)
    if not (args.noise or args.esn0) or args.modcods:
        fer_curves(args, thresholds())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
