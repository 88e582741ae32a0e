"""Proximity-1 receiver throughput, one core, and the link's error-rate figures.

Speed (the issue's target: the receiver, synchronization and decoding, at least 10x faster than
real time at 2048 kbit/s on one core): a Prox-1 signal at 2048 kbit/s (convolutional: 4.096
Msymbol/s; LDPC: 4.224 Msymbol/s; 2 samples per symbol) with a 5 kHz carrier offset, a 20 ppm
clock offset and AWGN at Eb/N0 = 6 dB is pushed through :class:`modem.prox1.Receiver` (tracking
from a known carrier estimate, as after acquisition) in chunks of 2**18 samples; "x real time"
is the stream's duration over the processing time, best of ``--repeats``: CPU time of the
receiving thread (the figure that does not depend on what else the shared machine runs) and
wall time. The receiver's parts
are timed alone too: the demodulator (NCO, integrate-and-dump, timing and Costas loops), the
Viterbi decoder, the LDPC decoder.

Baselines, measured in the same run:
- scikit-commpy's Viterbi decoder (unquantized soft decisions) on a few hundred bits: the
  "x commpy" column is our decoder's bit rate over commpy's;
- the generic synchronization chain built from :class:`modem.sync.timing.TimingRecovery` (12-tap
  polyphase interpolator) and :class:`modem.sync.costas.CostasLoop` after an integrate-and-dump
  filter, on the same samples: "x generic" is the fused demodulator's sample rate over it.

Error rates (``--curves``): the convolutional code's BER on BPSK/AWGN against the union bound,
and the LDPC mode's codeword error rate from raw IQ at 16 kbit/s, with more bits than the CI
tests use.

Usage: ``.venv/bin/python benchmarks/prox1.py [--seconds 0.25] [--repeats 3] [--curves]``
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.special import erfc  # noqa: E402

from modem.channel import Awgn, CarrierOffset, Chain, ClockOffset  # noqa: E402
from modem.fec.conv import ViterbiDecoder, ViterbiStream, conv_encode  # noqa: E402
from modem.prox1 import Prox1Config, Receiver, Transmitter  # noqa: E402
from modem.prox1.coding import ChannelEncoder  # noqa: E402
from modem.prox1.decoders import LdpcStreamDecoder  # noqa: E402
from modem.prox1.demod import BpskDemodulator  # noqa: E402
from modem.prox1.modulation import NrzModulator  # noqa: E402
from modem.prox1.pltu import IdleSource  # noqa: E402
from modem.sync.costas import CostasLoop  # noqa: E402
from modem.sync.timing import TimingRecovery  # noqa: E402

CHUNK = 1 << 18
PUBLISHED_B = {10: 36, 12: 211, 14: 1404, 16: 11633, 18: 77433, 20: 502690, 22: 3322763, 24: 21292910,
               26: 134365911}  # fmt: skip


def signal(coding: str, rate: int, seconds: float, ebn0: float, seed: int):
    """(config, samples): a loaded Prox-1 transmission through CFO, clock offset and AWGN."""
    cfg = Prox1Config(rate, coding, min_sample_rate_hz=1.0)
    tx = Transmitter(cfg, frame_data_octets=2000, acquisition_bits=8192)
    rng = np.random.default_rng(seed)
    n = int(seconds * cfg.sample_rate)
    tx.push(rng.integers(0, 256, int(rate * seconds / 8) + 4096, dtype=np.uint8).tobytes())
    x = tx.samples(n)
    fs = cfg.sample_rate
    ch = Chain(
        CarrierOffset(5000.0, fs, phase_rad=0.3),
        ClockOffset(20.0, sample_rate_hz=fs, delay_samples=0.3),
        Awgn(cfg.esn0_from_ebn0(ebn0), samples_per_symbol=cfg.sps, seed=seed),
    )
    return cfg, ch(x)


def time_receiver(cfg, y, repeats: int) -> tuple[float, float, int]:
    """Best wall time and best CPU time (this thread) of the tracking receiver over y after a
    warm-up, and the frames it decoded."""
    warm = CHUNK * 2
    frames = [0]

    def run():
        rx = Receiver(cfg, frequency_hz=5000.0)
        rx.push_samples(y[:warm])
        t0, c0 = time.perf_counter(), time.thread_time()
        for i in range(warm, y.size, CHUNK):
            rx.push_samples(y[i : i + CHUNK])
        frames[0] = rx.frames_ok
        return time.perf_counter() - t0, time.thread_time() - c0

    runs = [run() for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), frames[0]


def best_cpu(fn, repeats: int) -> float:
    """Shortest CPU time (this thread) of ``repeats`` calls of fn()."""
    best = np.inf
    for _ in range(repeats):
        c0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - c0)
    return best


def commpy_viterbi_rate(n_bits: int = 400) -> float:
    """Bit rate of scikit-commpy's unquantized Viterbi decoder (CPU time)."""
    import commpy.channelcoding.convcode as cc

    rng = np.random.default_rng(1)
    trellis = cc.Trellis(np.array([6]), np.array([[0o171, 0o133]]), polynomial_format="Matlab")
    c = conv_encode(rng.integers(0, 2, n_bits).astype(np.uint8), invert_g2=False)
    y = (1 - 2.0 * c) + rng.normal(0, 0.6, c.size)
    t = best_cpu(lambda: cc.viterbi_decode(-y, trellis, tb_depth=35, decoding_type="unquantized"), 1)
    return n_bits / t


def speed(seconds: float, repeats: int) -> None:
    load = os.getloadavg()[0]
    print(f"== receiver throughput at 2048 kbit/s, one core ({seconds:g} s of signal, best of {repeats}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs)")  # fmt: skip
    print("   x real time: signal duration / processing time; CPU = this thread's CPU time (robust to")
    print("   other processes taking the core), wall = elapsed time")
    print(f"{'coding':8} {'sample rate':>12} {'x rt (CPU)':>11} {'x rt (wall)':>12} {'Msample/s CPU':>14} "
          f"{'frames':>7}")  # fmt: skip
    for coding in ("conv", "ldpc"):
        cfg, y = signal(coding, 2_048_000, seconds + 2 * CHUNK / (2 * 4.224e6), 6.0, seed=3)
        n = y.size - 2 * CHUNK
        dur = n / cfg.sample_rate
        t_wall, t_cpu, frames = time_receiver(cfg, y, repeats)
        print(f"{coding:8} {cfg.sample_rate / 1e6:8.3f} MHz {dur / t_cpu:11.1f} {dur / t_wall:12.1f} "
              f"{n / t_cpu / 1e6:14.1f} {frames:7d}")  # fmt: skip

    print("\n== parts (CPU time, same signals), and the same-run baselines")
    cfg, y = signal("conv", 2_048_000, seconds, 6.0, seed=4)
    fs = cfg.sample_rate
    kw = dict(frequency=5000.0 / fs, carrier_bandwidth=2e-4, timing_bandwidth=2e-4, max_frequency=0.01)
    t_dem = best_cpu(lambda: BpskDemodulator(2, **kw).process(y, positions=False), repeats)
    sym = BpskDemodulator(2, **kw)(y)

    def generic(v=y):
        mf = (v[1:] + v[:-1]) * 0.5  # integrate and dump over 2 samples
        tr = TimingRecovery(2, loop_bandwidth=2e-4, rolloff=1.0)
        CostasLoop(2, loop_bandwidth=2e-4, frequency=2 * 5000.0 / fs)(tr(mf))

    generic(y[:4096])  # compile / load the kernels outside the timing
    t_gen = best_cpu(generic, 1)
    print(
        f"demodulator (fused NCO, I&D, timing, Costas): {y.size / t_dem / 1e6:7.1f} Msample/s = "
        f"{y.size / fs / t_dem:6.1f} x real time; generic chain (TimingRecovery + CostasLoop): "
        f"{y.size / t_gen / 1e6:6.1f} Msample/s; x generic {t_gen / t_dem:5.1f}"
    )
    llr = sym.real.astype(np.float32)
    t_vit = best_cpu(lambda: (lambda v: (v(llr), v.flush()))(ViterbiStream()), repeats)
    bits = llr.size // 2
    base = commpy_viterbi_rate()
    rt = bits / 2.048e6 / t_vit
    print(
        f"Viterbi (streaming, int16 SIMD): {bits / t_vit / 1e6:7.1f} Mbit/s = {rt:6.1f} x real time at 2048 "
        f"kbit/s; commpy: {base / 1e3:.2f} kbit/s; x commpy {bits / t_vit / base:,.0f}"
    )
    f32 = ViterbiDecoder(metric="float32")
    blocks = llr[: llr.size // 8192 * 8192].reshape(-1, 8192)
    f32.decode(blocks[:1])  # compile / load the kernels outside the timing
    t_f32 = best_cpu(lambda: f32.decode(blocks), 1)
    t_i16 = best_cpu(lambda: ViterbiDecoder().decode(blocks), repeats)
    print(
        f"Viterbi blocks: int16 SIMD {blocks.size / 2 / t_i16 / 1e6:6.1f} Mbit/s, float32 lanes "
        f"{blocks.size / 2 / t_f32 / 1e6:6.1f} Mbit/s (x {t_f32 / t_i16:.1f})"
    )
    cfg_l, yl = signal("ldpc", 2_048_000, seconds, 6.0, seed=5)
    syml = BpskDemodulator(2, **dict(kw, frequency=5000.0 / cfg_l.sample_rate))(yl)
    t_ldpc = best_cpu(lambda: LdpcStreamDecoder()(syml), repeats)
    nbits = syml.size / 2112 * 1024
    print(
        f"LDPC stream decoder (CSM sync, LLRs, AR4JA int8 SIMD): {nbits / t_ldpc / 1e6:6.1f} Mbit/s = "
        f"{nbits / 2.048e6 / t_ldpc:6.1f} x real time at 2048 kbit/s"
    )


def union_bound(ebn0_db: float) -> float:
    g = 10 ** (ebn0_db / 10)
    return float(sum(b * 0.5 * erfc(np.sqrt(d * 0.5 * g)) for d, b in PUBLISHED_B.items()))


def curves() -> None:
    print("\n== convolutional code, soft Viterbi, BPSK/AWGN (terminated blocks of 65536 bits)")
    print(f"{'Eb/N0':>6} {'bits':>10} {'errors':>7} {'BER':>10} {'union bound':>12} {'UB +0.3 dB':>11}")
    rng = np.random.default_rng(2026)
    dec = ViterbiDecoder()
    for ebn0, blocks in ((3.0, 64), (3.5, 128), (4.0, 256), (4.4, 512), (4.6, 1024)):
        errs = bits = 0
        for _ in range(0, blocks, 32):
            u = rng.integers(0, 2, (32, 1 << 16), dtype=np.uint8)
            c = conv_encode(u, terminate=True)
            sigma = np.sqrt(10 ** (-(ebn0 - 10 * np.log10(2)) / 10) / 2)
            y = (1.0 - 2.0 * c).astype(np.float32) + rng.standard_normal(
                c.shape, dtype=np.float32
            ) * np.float32(sigma)
            errs += int(np.sum(dec.decode(y, terminated=True) != u))
            bits += u.size
        print(f"{ebn0:6.1f} {bits:10d} {errs:7d} {errs / bits:10.2e} {union_bound(ebn0):12.2e} "
              f"{union_bound(ebn0 + 0.3):11.2e}")  # fmt: skip

    print("\n== LDPC (2048,1024) + CSM from raw IQ, 16 kbit/s, CFO -6 kHz + 50 Hz/s (256 s), 20 ppm, delay")
    cfg = Prox1Config(16_000, "ldpc")
    for ebn0 in (1.8, 2.0, 2.2):
        ncw = 4000
        info = rng.integers(0, 2, (ncw, 1024), dtype=np.uint8)
        stream = np.concatenate([IdleSource()(8 * 1024), info.reshape(-1), IdleSource()(4 * 1024)])
        x = NrzModulator(cfg.sps)(ChannelEncoder("ldpc")(stream))
        fs = cfg.sample_rate
        ch = Chain(
            CarrierOffset(-6000.0, fs, rate_hz_per_s=50.0, phase_rad=1.0),
            ClockOffset(20.0, sample_rate_hz=fs, delay_samples=0.37),
            Awgn(cfg.esn0_from_ebn0(ebn0), samples_per_symbol=cfg.sps, seed=int(ebn0 * 10)),
        )
        rx = Receiver(cfg)
        out: list = []
        rx.on_bits = lambda b, lock, out=out: out.append(b)
        y = ch(x)
        for i in range(0, y.size, 1 << 18):
            rx.push_samples(y[i : i + (1 << 18)])
        d = np.concatenate(out)
        # a codeword counts as received when one of the decoded 1024-bit blocks equals it (robust
        # to a re-acquisition, which shifts the decoded stream)
        got = {np.packbits(b).tobytes() for b in d[: d.size // 1024 * 1024].reshape(-1, 1024)}
        errors = sum(np.packbits(b).tobytes() not in got for b in info)
        print(f"Eb/N0 {ebn0:.1f} dB: {errors} / {ncw} codewords wrong or lost, FER {errors / ncw:.2e}, "
              f"acquisitions {rx.locks}, decoder did not converge on {rx._decoder.failed}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.25, help="seconds of signal per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--curves", action="store_true", help="also the BER / FER measurements (minutes)")
    args = ap.parse_args()
    speed(args.seconds, args.repeats)
    if args.curves:
        curves()


if __name__ == "__main__":
    main()
