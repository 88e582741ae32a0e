"""Throughput of the channel blocks (:mod:`modem.channel`) and of the storm_pass ScenarioChannel, one core.

Each block processes ``--samples`` complex64 samples at 2 MS/s settings (bench 1 Msym/s, 2 samples per
symbol) in chunks of ``--chunk``; the rate is samples per second, best of ``--repeats`` runs. Baselines
measured in the same run ("x base"): straightforward numpy versions of the same operation (AWGN:
``rng.standard_normal`` complex128 then a cast; carrier offset: ``np.exp(1j * phase)`` from a float64
phase ramp; clock offset: ``np.interp`` linear interpolation, which is less accurate; phase noise:
``scipy.signal.lfilter`` of the same pole-zero cascade as one rational filter in float64, section by
section). A PlutoSDR streams 2 MS/s for this bench setting: "x real time" >= 1 means the block keeps up.

Usage: ``.venv/bin/python benchmarks/channel_throughput.py [--samples 2000000] [--chunk 65536] [--repeats 5]``
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from _timing import best_time  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from scipy.signal import lfilter  # noqa: E402

from modem.channel import (  # noqa: E402
    Awgn,
    CarrierOffset,
    ClockDrift,
    ClockOffset,
    PhaseNoise,
    ScenarioChannel,
)

FS = 2e6


def run_chunks(block, x, chunk):
    for i in range(0, x.size, chunk):
        block(x[i : i + chunk])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    x = ((rng.standard_normal(a.samples) + 1j * rng.standard_normal(a.samples)) * 0.5).astype(np.complex64)
    n = x.size

    def base_awgn():
        r = np.random.default_rng(2)
        for i in range(0, n, a.chunk):
            m = min(a.chunk, n - i)
            (x[i : i + m] + 0.1 * (r.standard_normal(m) + 1j * r.standard_normal(m))).astype(np.complex64)

    def base_cfo():
        ph = 0.0
        for i in range(0, n, a.chunk):
            m = min(a.chunk, n - i)
            p = ph + 2 * np.pi * 1234.5 / FS * np.arange(m)
            (x[i : i + m] * np.exp(1j * p)).astype(np.complex64)
            ph = p[-1] + 2 * np.pi * 1234.5 / FS

    def base_clock():
        pos = np.arange(n) / (1 + 20e-6)
        np.interp(pos, np.arange(n), x.real) + 1j * np.interp(pos, np.arange(n), x.imag)

    pn = PhaseNoise.preset("tcxo", FS, seed=3)

    def base_pn():
        w = np.random.default_rng(3).standard_normal(n)
        for p, z in zip(pn._p, pn._z, strict=True):
            w = lfilter([1.0, -z], [1.0, -p], w)
        (x * np.exp(1j * pn._gain * w)).astype(np.complex64)

    cases = [
        ("Awgn", lambda: Awgn(10.0, 2, 0.5, seed=1), base_awgn),
        ("CarrierOffset (with ramp)", lambda: CarrierOffset(1234.5, FS, 50.0), base_cfo),
        ("ClockOffset (32 taps)", lambda: ClockOffset(20.0, sample_rate_hz=FS), base_clock),
        ("ClockDrift (32 taps)", lambda: ClockDrift(20.0, sample_rate_hz=FS, max_drift_samples=4096),
         base_clock),
        (f"PhaseNoise tcxo ({pn._p.size} sections)", lambda: PhaseNoise.preset("tcxo", FS, seed=3), base_pn),
        ("ScenarioChannel storm_pass x50",
         lambda: ScenarioChannel("storm_pass", symbol_rate_hz=1e6, samples_per_symbol=2, time_scale=50.0,
                                 seed=4),
         None),
    ]
    print(f"{n} samples in chunks of {a.chunk}, best of {a.repeats}; real time = {FS / 1e6:g} MS/s")
    print(f"{'block':<36} {'MS/s':>8} {'x real time':>12} {'base MS/s':>10} {'x base':>7}")
    for name, make, base in cases:
        blocks = [make() for _ in range(a.repeats + 1)]
        run_chunks(blocks[-1], x[: 10 * a.chunk], a.chunk)  # compile / warm up
        it = iter(blocks)
        t = best_time(lambda it=it: run_chunks(next(it), x, a.chunk), a.repeats)
        rate = n / t / 1e6
        if base is not None:
            tb = best_time(base, max(1, a.repeats // 2))
            brate = n / tb / 1e6
            print(f"{name:<36} {rate:8.1f} {rate / (FS / 1e6):12.1f} {brate:10.1f} {rate / brate:7.1f}")
        else:
            print(f"{name:<36} {rate:8.1f} {rate / (FS / 1e6):12.1f} {'-':>10} {'-':>7}")


if __name__ == "__main__":
    main()
