"""Memoryless and phase impairments: complex gain, carrier offset with Doppler rate, chains.

:class:`CarrierOffset` keeps its phase and instantaneous frequency across calls in float64,
updated sample by sample in a numba kernel, so the rotation is phase continuous over any
chunking and over changes of frequency or rate between chunks; exp(j phase) is a vectorized
polynomial (:mod:`modem.channel._cis`, error below 3e-14).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from modem.channel._block import Block, check_iq, check_real
from modem.channel._cis import cis

TWO_PI = 2.0 * math.pi


class Gain(Block):
    """Multiply by a constant complex gain ``10**(gain_db/20) * exp(1j*phase_rad)``.

    Parameters
    ----------
    gain_db : float
        Power gain in dB, -300 .. 300 (negative: attenuation); settable between chunks.
    phase_rad : float
        Phase rotation in rad; settable between chunks.
    """

    def __init__(self, gain_db: float = 0.0, phase_rad: float = 0.0):
        self._gain_db = 0.0
        self._phase = 0.0
        self.gain_db = gain_db
        self.phase_rad = phase_rad

    @property
    def gain_db(self) -> float:
        """Power gain in dB."""
        return self._gain_db

    @gain_db.setter
    def gain_db(self, value: float) -> None:
        self._gain_db = check_real(value, "gain_db", -300.0, 300.0, "dB")
        self._update()

    @property
    def phase_rad(self) -> float:
        """Phase rotation in rad."""
        return self._phase

    @phase_rad.setter
    def phase_rad(self, value: float) -> None:
        self._phase = check_real(value, "phase_rad", -1e6, 1e6, "rad")
        self._update()

    def _update(self) -> None:
        self._g = np.complex64(10.0 ** (self._gain_db / 20.0) * np.exp(1j * self._phase))

    @property
    def gain(self) -> complex:
        """The complex amplitude gain applied."""
        return complex(self._g)

    def __call__(self, x) -> np.ndarray:
        """Return ``gain * x`` (complex64)."""
        return check_iq(x) * self._g


_SPAN = 512  # samples whose phases are computed before they are applied (kept in L1 cache)


@nb.njit(cache=True, nogil=True, inline="always")
def _rotate_span(x, out, a, b, gain, pn, phase, freq, rate, work):  # pragma: no cover - compiled
    """out[n] = gain x[n] exp(j (phase_n + pn[n])) for a <= n < b; pn empty: no phase noise.

    phase in rad, freq in cycles/sample, rate in cycles/sample^2. Exact quadratic phase:
    phase_{n+1} = phase_n + 2 pi (f_n + rate/2), f_{n+1} = f_n + rate, phase wrapped to
    [-pi, pi) every sample so that float64 keeps its precision on long runs. The recursion runs
    sample by sample (``work`` holds up to _SPAN phases), the rotation is a vector loop
    (:func:`modem.channel._cis.cis`). Returns (phase, freq) after sample b - 1.
    """
    inc = TWO_PI * 0.5 * rate
    for s0 in range(a, b, _SPAN):
        m = min(_SPAN, b - s0)
        w = work[:m]
        for i in range(m):
            w[i] = phase
            phase += TWO_PI * freq + inc
            freq += rate
            if phase >= math.pi or phase < -math.pi:
                phase -= TWO_PI * math.floor((phase + math.pi) / TWO_PI)
        if pn.size:
            p = pn[s0 : s0 + m]
            for i in range(m):
                w[i] += p[i]
        xs = x[s0 : s0 + m]  # slices: indices from 0, so the loop vectorizes
        ys = out[s0 : s0 + m]
        for i in range(m):
            c, s = cis(w[i])
            v = xs[i]
            ys[i] = complex(gain * (v.real * c - v.imag * s), gain * (v.real * s + v.imag * c))
    return phase, freq


@nb.njit(cache=True, nogil=True)
def _rotate(x, out, pn, phase, freq, rate):  # pragma: no cover - compiled
    """Rotate a whole chunk: out = x exp(j (phase_n + pn[n])); returns (phase, freq) after it."""
    work = np.empty(_SPAN)
    return _rotate_span(x, out, 0, x.size, 1.0, pn, phase, freq, rate, work)


_NO_PN = np.zeros(0)


class CarrierOffset(Block):
    """Phase-continuous carrier frequency offset with a linear frequency ramp (Doppler rate).

    Sample n (counted from construction or :meth:`reset`) is multiplied by exp(j phi_n) with
    phi(t) = phase_rad + 2 pi (freq_hz t + rate_hz_per_s t^2 / 2), t = n / sample_rate_hz.

    Parameters
    ----------
    freq_hz : float
        Frequency offset at the first sample, Hz, within +-sample_rate_hz/2.
    sample_rate_hz : float
        Sample rate of the stream, samples/s (> 0).
    rate_hz_per_s : float
        Rate of change of the offset, Hz/s (Doppler rate).
    phase_rad : float
        Phase at the first sample, rad.

    Notes
    -----
    :attr:`freq_hz` (the instantaneous offset, which moves with the ramp) and
    :attr:`rate_hz_per_s` may be set between chunks; the phase stays continuous. Phase and
    frequency are carried in float64 and the phase is wrapped every sample, so a run of 1e9
    samples keeps the phase to about 1e-7 rad.
    """

    def __init__(self, freq_hz: float, sample_rate_hz: float, rate_hz_per_s: float = 0.0,
                 phase_rad: float = 0.0):
        self.sample_rate_hz = check_real(sample_rate_hz, "sample_rate_hz", 0.0, 1e12, "samples/s",
                                         lo_open=True)
        self._init = (
            self._check_freq(freq_hz),
            check_real(rate_hz_per_s, "rate_hz_per_s", -1e15, 1e15, "Hz/s"),
            check_real(phase_rad, "phase_rad", -1e6, 1e6, "rad"),
        )
        self.reset()

    def _check_freq(self, value) -> float:
        half = self.sample_rate_hz / 2
        return check_real(value, "freq_hz", -half, half, "Hz (half the sample rate)")

    def reset(self) -> None:
        """Back to the frequency, rate and phase given at construction."""
        f, r, p = self._init
        self._freq = f / self.sample_rate_hz  # cycles/sample
        self._rate = r / self.sample_rate_hz**2  # cycles/sample^2
        self._phase = math.remainder(p, TWO_PI)

    @property
    def freq_hz(self) -> float:
        """Instantaneous frequency offset at the next sample, Hz."""
        return self._freq * self.sample_rate_hz

    @freq_hz.setter
    def freq_hz(self, value: float) -> None:
        self._freq = self._check_freq(value) / self.sample_rate_hz

    @property
    def rate_hz_per_s(self) -> float:
        """Frequency ramp, Hz/s."""
        return self._rate * self.sample_rate_hz**2

    @rate_hz_per_s.setter
    def rate_hz_per_s(self, value: float) -> None:
        self._rate = check_real(value, "rate_hz_per_s", -1e15, 1e15, "Hz/s") / self.sample_rate_hz**2

    @property
    def phase_rad(self) -> float:
        """Phase applied to the next sample, rad, in [-pi, pi)."""
        return self._phase

    def __call__(self, x) -> np.ndarray:
        """Rotate a chunk; returns complex64 of the same length."""
        return self._process(check_iq(x))

    def _process(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        self._phase, self._freq = _rotate(x, out, _NO_PN, self._phase, self._freq, self._rate)
        return out


class Chain(Block):
    """Blocks applied one after another; itself a block.

    Parameters
    ----------
    *blocks : Block
        Objects with ``__call__``, ``reset()`` and (optionally) ``flush()``, applied in order.

    Notes
    -----
    :meth:`flush` flushes the first block, passes what it held through the rest, then flushes
    the second, and so on, so no held-back sample is lost.
    """

    def __init__(self, *blocks):
        for i, b in enumerate(blocks):
            if not callable(b) or not hasattr(b, "reset"):
                raise TypeError(f"blocks[{i}] must be a channel block (callable with reset()); got {b!r}")
        self.blocks = list(blocks)

    def __call__(self, x) -> np.ndarray:
        """Run ``x`` through every block in order (complex64)."""
        y = check_iq(x)
        for b in self.blocks:
            y = b(y)
        return y

    def reset(self) -> None:
        """Reset every block."""
        for b in self.blocks:
            b.reset()

    def flush(self) -> np.ndarray:
        """Flush the blocks in order, each one's tail going through the blocks after it."""
        parts = []
        for i, b in enumerate(self.blocks):
            tail = b.flush() if hasattr(b, "flush") else np.zeros(0, np.complex64)
            for later in self.blocks[i + 1 :]:
                tail = later(tail)
            parts.append(np.asarray(tail, dtype=np.complex64))
        return np.concatenate(parts) if parts else np.zeros(0, np.complex64)
