"""Throughput of the DVB-S2 transmitter (:class:`modem.dvbs2.link.Transmitter`), one core.

For every MODCOD (normal frames, then short frames as a second table; pilots on, RRC roll-off
0.35, 2 samples per symbol, span 16 symbols, generic-stream mode) the data is pushed in advance
and each timed call produces ``--frames`` PLFRAMEs of that MODCOD and shapes them:
``tx.modulate(tx.frames([mc] * frames))``. The rate is complex output samples per second, best of
``--repeats`` calls. An ACM run (one frame of each MODCOD in turn, cycled) follows each table.

Target: 10 x the 5 Msample/s sustained USB rate of a PlutoSDR, i.e. 50 Msample/s for every
MODCOD ("x target" >= 1).

Baseline, measured in the same run ("x base"): a straightforward reference transmitter written
from the library's public pieces, frame by frame: ``GsFramer.next_frame``, BCH ``encode``, LDPC
``LdpcCode.encode`` (the same FEC, with its argument checks and column selection), numpy
interleaving (``mapping.interleave``) and mapping (``map_bits``), ``PlFramer`` (numpy pilot
insertion and scrambling, one frame at a time), ``np.concatenate``, and
``scipy.signal.upfirdn`` with the same float32 RRC taps for the shaping.

A per-stage breakdown for QPSK 1/2 normal frames shows where the time goes (ns per output
sample; stages as the Transmitter runs them, plus the unfused numpy equivalents for reference).

Usage: ``.venv/bin/python benchmarks/tx_throughput.py [--frames 8] [--short-frames 32] [--repeats 5]``
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from _timing import best_time  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from scipy.signal import upfirdn  # noqa: E402

from modem.dvbs2.bbframe import GsFramer  # noqa: E402
from modem.dvbs2.link import LinkConfig, Transmitter  # noqa: E402
from modem.dvbs2.mapping import interleave, map_bits  # noqa: E402
from modem.dvbs2.modcod import MODCODS, frame_spec  # noqa: E402
from modem.dvbs2.plframe import PlFramer  # noqa: E402
from modem.dvbs2.pulse import rrc_taps  # noqa: E402
from modem.fec.bch import dvbs2_bch  # noqa: E402
from modem.fec.dvbs2_ldpc import dvbs2_code  # noqa: E402

TARGET_MSPS = 50.0  # 10 x 5 Msample/s
CONFIG = dict(pilots=True, stream="gs", rolloff=0.35, sps=2, span=16)


def random_bytes(rng, n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


class ReferenceTx:
    """Straightforward frame-by-frame transmitter (the baseline): same FEC, numpy, upfirdn."""

    def __init__(self, frame: str):
        self.frame = frame
        self.framer = GsFramer(ccm=False, rolloff=CONFIG["rolloff"])
        self.plframer = PlFramer(0)
        self.taps = rrc_taps(CONFIG["rolloff"], CONFIG["sps"], CONFIG["span"]).astype(np.float32)

    def run(self, modcods) -> np.ndarray:
        out = []
        for m in modcods:
            spec = frame_spec(m, self.frame, True)
            bb = self.framer.next_frame(spec.k_bch)
            bch = dvbs2_bch(self.frame, m.rate).encode(bb)
            cw = dvbs2_code(self.frame, m.rate).encode(bch)
            sym = map_bits(interleave(cw, m.modulation, m.rate), m.modulation, m.rate)[0]
            out.append(self.plframer(m.index, self.frame, True, sym))
        return upfirdn(self.taps, np.concatenate(out), up=CONFIG["sps"]).astype(np.complex64)


def measure(frame: str, mods, frames: int, repeats: int, base_repeats: int, rng) -> list[tuple]:
    """Rows (name, Msample/s, baseline Msample/s) for runs of ``frames`` frames of each MODCOD."""
    rows = []
    for m in mods:
        spec = frame_spec(m, frame, True)
        fill = spec.data_field_bits // 8
        tx = Transmitter(LinkConfig(frame=frame, **CONFIG))
        tx.push(random_bytes(rng, fill * frames * (repeats + 1)))
        tx.modulate(tx.frames([m] * frames))  # warm up (numba cache load, tables)
        samples = []

        def call(tx=tx, m=m, samples=samples):
            samples.append(tx.modulate(tx.frames([m] * frames)).size)

        t = best_time(call, repeats)
        assert tx.dummy_frames == 0 and samples[-1] == frames * spec.plframe_symbols * CONFIG["sps"]
        ref = ReferenceTx(frame)
        nb = max(1, frames // 4)
        ref.framer.push(random_bytes(rng, fill * nb * (base_repeats + 1)))
        ref.run([m])
        t_ref = best_time(lambda ref=ref, m=m, nb=nb: ref.run([m] * nb), base_repeats)
        rows.append((m.name, samples[-1] / t / 1e6, nb * spec.plframe_symbols * CONFIG["sps"] / t_ref / 1e6))
    return rows


def measure_acm(frame: str, mods, cycles: int, repeats: int, base_repeats: int, rng) -> tuple:
    """One frame of each MODCOD in turn, ``cycles`` times per call: (Msample/s, baseline Msample/s)."""
    seq = list(mods) * cycles
    nbytes = sum(frame_spec(m, frame, True).data_field_bits // 8 for m in seq)
    n_samples = sum(frame_spec(m, frame, True).plframe_symbols for m in seq) * CONFIG["sps"]
    tx = Transmitter(LinkConfig(frame=frame, **CONFIG))
    tx.push(random_bytes(rng, nbytes * (repeats + 1)))
    tx.modulate(tx.frames(seq))
    t = best_time(lambda: tx.modulate(tx.frames(seq)), repeats)
    assert tx.dummy_frames == 0
    ref = ReferenceTx(frame)
    ref.framer.push(random_bytes(rng, nbytes // cycles * (base_repeats + 1)))
    t_ref = best_time(lambda: ref.run(list(mods)), base_repeats)
    return n_samples / t / 1e6, n_samples / cycles / t_ref / 1e6


def print_table(title: str, rows, acm) -> float:
    print(f"\n{title}")
    print(f"{'MODCOD':<13} {'Msample/s':>10} {'x target':>9} {'base':>8} {'x base':>7}")
    for name, msps, base in rows:
        print(f"{name:<13} {msps:>10.1f} {msps / TARGET_MSPS:>9.2f} {base:>8.1f} {msps / base:>7.1f}")
    worst = min(rows, key=lambda r: r[1])
    msps, base = acm
    print(f"{'ACM cycle':<13} {msps:>10.1f} {msps / TARGET_MSPS:>9.2f} {base:>8.1f} {msps / base:>7.1f}")
    print(f"slowest: {worst[0]} at {worst[1]:.1f} Msample/s = {worst[1] / TARGET_MSPS:.2f} x target")
    return min(worst[1], acm[0])


def stage_breakdown(frames: int, repeats: int, rng) -> None:
    """ns per output sample of each transmitter stage, QPSK 1/2 normal frames, pilots on."""
    frame, name = "normal", "QPSK 1/2"
    m = MODCODS[3]
    assert m.name == name
    spec = frame_spec(m, frame, True)
    tx = Transmitter(LinkConfig(frame=frame, **CONFIG))
    tx.push(random_bytes(rng, spec.data_field_bits // 8 * frames * (2 * repeats + 4)))  # framing, TX runs
    ns = frames * spec.plframe_symbols * CONFIG["sps"]
    bch_code, ldpc = dvbs2_bch(frame, m.rate), dvbs2_code(frame, m.rate)
    bb = tx.framer.next_frames(spec.k_bch, frames)
    bch = bch_code.encode(bb)
    cw = ldpc.encoder(bch)
    rows = [
        ("framing (BBFRAMEs)", best_time(lambda: tx.framer.next_frames(spec.k_bch, frames), repeats)),
        ("BCH encode", best_time(lambda: bch_code.encode(bb), repeats)),
        ("LDPC encode", best_time(lambda: ldpc.encoder(bch), repeats)),
    ]
    fused = getattr(tx.plframer, "frame_codewords", None)
    if fused is not None:
        fused(m.index, frame, True, cw)
        rows.append(
            (
                "interleave+map+PL framing (fused)",
                best_time(lambda: fused(m.index, frame, True, cw), repeats),
            )
        )
    sym = tx.frames([m] * frames)
    rows.append(("shaping (RRC)", best_time(lambda: tx.modulate(sym), repeats)))
    total = sum(t for _, t in rows)
    rows.append(("total of the stages", total))
    t_tx = best_time(lambda: tx.modulate(tx.frames([m] * frames)), repeats)
    assert tx.dummy_frames == 0
    rows.append(("Transmitter frames + modulate", t_tx))
    print(f"\nper-stage breakdown, {name} {frame}, pilots, {frames} frames per call (ns per output sample)")
    for label, t in rows:
        print(f"  {label:<36} {t / ns * 1e9:>7.2f} ns  {ns / t / 1e6:>9.1f} Msample/s")
    # the unfused numpy path, for reference
    il = interleave(cw, m.modulation, m.rate)
    mapped = map_bits(il, m.modulation, m.rate)
    taps = rrc_taps(CONFIG["rolloff"], CONFIG["sps"], CONFIG["span"]).astype(np.float32)
    pl, sps, idx = tx.plframer, CONFIG["sps"], m.index
    ref = [
        ("LDPC encode (LdpcCode.encode, checked)", best_time(lambda: ldpc.encode(bch), repeats)),
        ("interleave (numpy permutation)", best_time(lambda: interleave(cw, m.modulation, m.rate), repeats)),
        ("map (numpy table lookup)", best_time(lambda: map_bits(il, m.modulation, m.rate), repeats)),
        (
            "PL framing (PlFramer per frame)",
            best_time(lambda: [pl(idx, frame, True, x) for x in mapped], repeats),
        ),
        ("shaping (scipy upfirdn)", best_time(lambda: upfirdn(taps, sym, up=sps), max(1, repeats // 2))),
    ]
    print("  unfused / reference equivalents:")
    for label, t in ref:
        print(f"  {label:<36} {t / ns * 1e9:>7.2f} ns  {ns / t / 1e6:>9.1f} Msample/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8, help="normal frames per timed call")
    ap.add_argument("--short-frames", type=int, default=32, help="short frames per timed call")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls (best is kept)")
    ap.add_argument("--base-repeats", type=int, default=2, help="timed calls of the baseline")
    args = ap.parse_args()
    rng = np.random.default_rng(2024)
    print(
        f"DVB-S2 Transmitter throughput, one core: GS mode, pilots on, roll-off {CONFIG['rolloff']}, "
        f"{CONFIG['sps']} samples/symbol, RRC span {CONFIG['span']}; target {TARGET_MSPS:.0f} Msample/s "
        f"(10 x 5 Msample/s); best of {args.repeats}"
    )
    worst = []
    for frame, nf in (("normal", args.frames), ("short", args.short_frames)):
        mods = [m for m in MODCODS if frame in m.frames]
        rows = measure(frame, mods, nf, args.repeats, args.base_repeats, rng)
        acm = measure_acm(frame, mods, max(1, nf // 8), args.repeats, args.base_repeats, rng)
        title = f"{frame} frames: {nf} frames of one MODCOD per call; ACM: the {len(mods)} MODCODs in turn"
        worst.append(print_table(title, rows, acm))
    stage_breakdown(args.frames, args.repeats, rng)
    verdict = "meets" if min(worst) >= TARGET_MSPS else "MISSES"
    print(f"\nslowest of all: {min(worst):.1f} Msample/s: {verdict} the {TARGET_MSPS:.0f} Msample/s target")


if __name__ == "__main__":
    main()
