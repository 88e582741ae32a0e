"""Throughput of the channel blocks (:mod:`modem.channel`) against their previous implementation, one core.

Each block processes ``--samples`` complex64 samples in chunks of ``--chunk`` at 2 MS/s settings (bench
1 Msym/s, 2 samples per symbol; the ScenarioChannel also at the main job's 5 MS/s, 2.5 Msym/s and time
scale 10). Rates are samples per second of CPU time of this process (``time.process_time``: on a host
shared with other jobs this is the one-core figure; wall-clock rates, also printed, drop with the load),
best of ``--repeats`` fresh blocks, after a warm-up run that compiles or loads the numba kernels.

Baseline ("v1", measured in the same run, same blocks and settings): the implementation before the speed
work (commit 9bdd3b3), kept below in compact form with its kernels unchanged: AWGN from numpy's float32
``standard_normal`` with two passes; carrier offset with libm cos/sin per sample; the 32-tap clock
interpolator in float64 on interleaved complex samples; phase noise as the pole-zero cascade run section
by section over each chunk, then cos/sin per sample; the ScenarioChannel chaining those blocks segment by
segment. "x v1" is the CPU-time ratio, "x real time" the CPU rate over the stream's sample rate.

Usage: ``.venv/bin/python benchmarks/channel_throughput.py [--samples 2000000] [--chunk 65536] [--repeats 5]``
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402

from modem.channel import (  # noqa: E402
    Awgn,
    CarrierOffset,
    ClockDrift,
    ClockOffset,
    PhaseNoise,
    ScenarioChannel,
)
from modem.channel._block import check_iq  # noqa: E402
from modem.channel.clock_offset import _TABLE, MAX_PPM, TAPS  # noqa: E402

TWO_PI = 2.0 * math.pi

# ---------------------------------------------------------------------------------------------------------
# v1: the previous implementation (kernels as they were), the same-run baseline


@nb.njit(cache=True, nogil=True)
def _v1_rotate(x, out, phase, freq, rate):
    inc_rate = 0.5 * rate
    for n in range(x.size):
        c = math.cos(phase)
        s = math.sin(phase)
        v = x[n]
        out[n] = complex(v.real * c - v.imag * s, v.real * s + v.imag * c)
        phase += TWO_PI * (freq + inc_rate)
        freq += rate
        if phase >= math.pi or phase < -math.pi:
            phase -= TWO_PI * math.floor((phase + math.pi) / TWO_PI)
    return phase, freq


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _v1_resample(buf, base, ipos, mu, ppm, dppm, table, out, limit):
    taps = table.shape[1]
    phases = table.shape[0] - 1
    half = taps // 2
    last = base + buf.size - 1
    n = 0
    while n < out.size and ipos + half <= last and ipos < limit:
        s = ipos - half + 1 - base
        t = mu * phases
        j = int(t)
        w = t - j
        re = 0.0
        im = 0.0
        for k in range(taps):
            h = table[j, k] + w * (table[j + 1, k] - table[j, k])
            v = buf[s + k]
            re += h * v.real
            im += h * v.imag
        out[n] = complex(re, im)
        n += 1
        mu += 1.0 / (1.0 + ppm * 1e-6)
        f = math.floor(mu)
        ipos += int(f)
        mu -= f
        ppm += dppm
    return n, ipos, mu, ppm


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _v1_drift(buf, base, k0, d, ppm, dppm, max_d, latency, table, out):
    taps = table.shape[1]
    phases = table.shape[0] - 1
    half = taps // 2
    for i in range(out.size):
        fl = math.floor(d)
        mu = d - fl
        ipos = k0 + i - latency + int(fl)
        s = ipos - half + 1 - base
        t = mu * phases
        j = int(t)
        w = t - j
        re = 0.0
        im = 0.0
        for k in range(taps):
            h = table[j, k] + w * (table[j + 1, k] - table[j, k])
            v = buf[s + k]
            re += h * v.real
            im += h * v.imag
        out[i] = complex(re, im)
        d += 1.0 / (1.0 + ppm * 1e-6) - 1.0
        if d > max_d:
            d = max_d
        elif d < -max_d:
            d = -max_d
        ppm += dppm
    return d, ppm


@nb.njit(cache=True, nogil=True)
def _v1_cascade(w, p, z, xs, ys, gain, phase):
    for n in range(w.size):
        phase[n] = w[n]
    for k in range(p.size):
        xp = xs[k]
        yp = ys[k]
        pk = p[k]
        zk = z[k]
        for n in range(w.size):
            v = phase[n]
            y = v - zk * xp + pk * yp
            xp = v
            yp = y
            phase[n] = y
        xs[k] = xp
        ys[k] = yp
    for n in range(w.size):
        phase[n] *= gain


@nb.njit(cache=True, nogil=True)
def _v1_apply_phase(x, phase, out):
    for n in range(x.size):
        c = math.cos(phase[n])
        s = math.sin(phase[n])
        v = x[n]
        out[n] = complex(v.real * c - v.imag * s, v.real * s + v.imag * c)


class V1Awgn:
    def __init__(self, esn0_db, sps=1, power=1.0, seed=None):
        self.rng = np.random.default_rng(seed)
        self.sigma = np.float32(math.sqrt(power * sps / 10 ** (esn0_db / 10) / 2))

    def __call__(self, x):
        x = check_iq(x)
        noise = self.rng.standard_normal(2 * x.size, dtype=np.float32).view(np.complex64)
        noise *= self.sigma
        noise += x
        return noise


class V1CarrierOffset:
    def __init__(self, freq_hz, fs, rate_hz_per_s=0.0):
        self.fs, self.phase, self.freq, self.rate = fs, 0.0, freq_hz / fs, rate_hz_per_s / fs**2

    def __call__(self, x):
        return self._process(check_iq(x))

    def _process(self, x):
        out = np.empty_like(x)
        self.phase, self.freq = _v1_rotate(x, out, self.phase, self.freq, self.rate)
        return out


class V1ClockOffset:
    def __init__(self, ppm, fs):
        self.ppm, self.dppm = ppm, 0.0
        self.ipos, self.mu, self.base = 0, 0.0, -TAPS
        self.buf = np.zeros(TAPS, np.complex64)

    def __call__(self, x):
        buf = np.concatenate((self.buf, check_iq(x)))
        avail = self.base + buf.size - self.ipos
        grow = 1.0 + abs(self.ppm) * 1e-6
        out = np.empty(max(0, int(avail * grow / (1.0 - 1e-6 * MAX_PPM))) + 4, dtype=np.complex64)
        n, self.ipos, self.mu, self.ppm = _v1_resample(
            buf, self.base, self.ipos, self.mu, self.ppm, self.dppm, _TABLE, out, np.iinfo(np.int64).max)
        keep = min(max(self.ipos - TAPS // 2 + 1 - self.base, 0), buf.size)
        self.buf = buf[keep:].copy()
        self.base += keep
        return out[:n]


class V1ClockDrift:
    def __init__(self, ppm, fs, max_drift_samples):
        self.ppm, self.dppm, self.d, self.k = ppm, 0.0, 0.0, 0
        self.max_d = float(max_drift_samples)
        self.latency = max_drift_samples + TAPS // 2
        self.hist = np.zeros(2 * max_drift_samples + TAPS + 2, np.complex64)

    def __call__(self, x):
        return self._process(check_iq(x))

    def _process(self, x):
        buf = np.concatenate((self.hist, x))
        out = np.empty_like(x)
        self.d, self.ppm = _v1_drift(buf, self.k - self.hist.size, self.k, self.d, self.ppm, self.dppm,
                                     self.max_d, self.latency, _TABLE, out)
        self.hist = buf[buf.size - self.hist.size :].copy()
        self.k += x.size
        return out


class V1PhaseNoise:
    """The v1 generator on the same fitted cascade (warm-up skipped: it does not change the speed)."""

    def __init__(self, mask, fs, seed=None):
        self.pn = PhaseNoise(mask, fs, seed=seed)  # for the fitted poles, zeros and gain
        self.rng = np.random.default_rng(seed)
        self.xs = np.zeros(self.pn._p.size)
        self.ys = np.zeros(self.pn._p.size)

    def __call__(self, x):
        x = check_iq(x)
        w = self.rng.standard_normal(x.size)
        phase = np.empty(w.size)
        _v1_cascade(w, self.pn._p, self.pn._z, self.xs, self.ys, self.pn._gain, phase)
        out = np.empty_like(x)
        _v1_apply_phase(x, phase, out)
        return out


class V1ScenarioChannel(ScenarioChannel):
    """The v1 ScenarioChannel: the v1 blocks chained segment by segment, truth per 64 segments."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        fs = self.sample_rate_hz
        self.v1_cfo = V1CarrierOffset(0.0, fs)
        self.v1_pn = V1PhaseNoise(self.mask, fs, seed=5)
        self.v1_clock = V1ClockDrift(0.0, fs, self._clock.max_drift_samples)
        self.v1_awgn = V1Awgn(0.0, self.samples_per_symbol, self.signal_power, seed=6)
        self.v1_cache = None

    def _v1_block(self, b):
        if self.v1_cache is None or self.v1_cache[0] != b:
            segs = np.arange(b * 64, (b + 1) * 64)
            times = self._t0 + self.time_scale * (segs * self.update_samples) / self.sample_rate_hz
            tr = self.scenario.sample(times, self.link_name)
            gains = np.where(tr.visible, 10.0 ** (np.where(tr.visible, tr.esn0_db, 0.0) / 20.0), 0.0)
            self.v1_cache = (b, tr, gains.astype(np.float32))
        return self.v1_cache[1], self.v1_cache[2]

    def __call__(self, x):
        x = check_iq(x)
        n = x.size
        y = np.empty_like(x)
        u, pos, pieces = self.update_samples, 0, []
        while pos < n:
            s = (self._n + pos) // u
            end = min(n, (s + 1) * u - self._n)
            pieces.append((s, pos, end))
            pos = end
        fs, k = self.sample_rate_hz, self.k
        for s, a, b in pieces:
            tr, gains = self._v1_block(s // 64)
            j = s % 64
            if s != self._seg:
                self.v1_cfo.freq = float(np.clip(k * tr.cfo_hz[j], -0.499 * fs, 0.499 * fs)) / fs
                self.v1_cfo.rate = k * k * float(tr.cfo_rate_hz_per_s[j]) / fs**2
                self._seg = s
            y[a:b] = self.v1_cfo._process(x[a:b] * gains[j])
        y = self.v1_pn(y)
        out = np.empty_like(y)
        for s, a, b in pieces:
            tr, _ = self._v1_block(s // 64)
            self.v1_clock.ppm = float(np.clip(tr.clock_ppm[s % 64], -1e5, 1e5))
            out[a:b] = self.v1_clock._process(y[a:b])
        self._n += n
        return self.v1_awgn(out)


# ---------------------------------------------------------------------------------------------------------


def run_chunks(block, x, chunk):
    for i in range(0, x.size, chunk):
        block(x[i : i + chunk])


def best_of(make, x, chunk, repeats):
    """(best CPU s, best wall s) over ``repeats`` fresh blocks, after one warm-up run."""
    run_chunks(make(), x[: 4 * chunk], chunk)
    cpu = wall = math.inf
    for _ in range(repeats):
        block = make()
        t0, c0 = time.perf_counter(), time.process_time()
        run_chunks(block, x, chunk)
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - t0)
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    x = ((rng.standard_normal(a.samples) + 1j * rng.standard_normal(a.samples)) * 0.5).astype(np.complex64)
    n = x.size
    fs = 2e6
    tcxo = PhaseNoise.preset("tcxo", fs, seed=3)
    storm = dict(symbol_rate_hz=1e6, samples_per_symbol=2, time_scale=50.0, seed=4)
    main_job = dict(symbol_rate_hz=2.5e6, samples_per_symbol=2, time_scale=10.0, seed=4)
    cases = [
        ("Awgn", fs, lambda: Awgn(10.0, 2, 0.5, seed=1), lambda: V1Awgn(10.0, 2, 0.5, seed=1)),
        ("CarrierOffset (with ramp)", fs, lambda: CarrierOffset(1234.5, fs, 50.0),
         lambda: V1CarrierOffset(1234.5, fs, 50.0)),
        ("ClockOffset (32 taps)", fs, lambda: ClockOffset(20.0, sample_rate_hz=fs),
         lambda: V1ClockOffset(20.0, fs)),
        ("ClockDrift (32 taps)", fs, lambda: ClockDrift(20.0, sample_rate_hz=fs, max_drift_samples=4096),
         lambda: V1ClockDrift(20.0, fs, 4096)),
        (f"PhaseNoise tcxo ({tcxo._p.size} poles)", fs, lambda: PhaseNoise.preset("tcxo", fs, seed=3),
         lambda: V1PhaseNoise(tcxo.mask, fs, seed=3)),
        ("ScenarioChannel storm_pass x50 2 MS/s", fs, lambda: ScenarioChannel("storm_pass", **storm),
         lambda: V1ScenarioChannel("storm_pass", **storm)),
        ("ScenarioChannel storm_pass x10 5 MS/s", 5e6, lambda: ScenarioChannel("storm_pass", **main_job),
         lambda: V1ScenarioChannel("storm_pass", **main_job)),
    ]
    print(f"{n} samples in chunks of {a.chunk}, best of {a.repeats}; MS/s per CPU second of this process "
          f"(wall-clock MS/s in brackets)")
    head = ("block", "MS/s", "(wall)", "x real time", "v1 MS/s", "(wall)", "x v1")
    print("{:<40} {:>7} {:>8} {:>12} {:>8} {:>8} {:>6}".format(*head))
    for name, rate_hz, make, make_v1 in cases:
        cpu, wall = best_of(make, x, a.chunk, a.repeats)
        cpu1, wall1 = best_of(make_v1, x, a.chunk, max(1, a.repeats // 2))
        r, rw, r1, rw1 = n / cpu / 1e6, n / wall / 1e6, n / cpu1 / 1e6, n / wall1 / 1e6
        w0, w1 = f"({rw:.1f})", f"({rw1:.1f})"
        print(f"{name:<40} {r:7.1f} {w0:>8} {r / (rate_hz / 1e6):12.1f} {r1:8.1f} {w1:>8} {r / r1:6.1f}")


if __name__ == "__main__":
    main()
