"""Numerically controlled oscillator: remove a carrier frequency offset from a sample stream.

:class:`Rotator` multiplies sample n (absolute index in the stream) by exp(-j phi(n)) with
phi(n) = phi_ref + 2 pi f (n - n_ref): a phase-continuous frequency shift whose frequency can be
changed between calls (the phase stays continuous at the change). The phase is kept in float64;
within blocks of 64 samples, aligned to absolute multiples of 64, the phasor is advanced by
complex multiplication from an exact cos/sin at the block start, so any chunking of the input
gives bit-identical output.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from modem.sync._checks import as_complex64

_BLOCK = 64
MAX_LAWS = 64  #: frequency settings remembered by :meth:`Rotator.phase_history`


@nb.njit(cache=True, nogil=True)
def _rotate_kernel(x, out, n0, f, phi_ref, n_ref):  # pragma: no cover - compiled
    n = x.size
    w = -2.0 * math.pi * f
    sr = math.cos(w)
    si = math.sin(w)
    i = 0
    while i < n:
        a = n0 + i  # absolute index
        blk = a - a % _BLOCK
        end = min(n, i + (blk + _BLOCK - a))
        ph = phi_ref + 2.0 * math.pi * f * (blk - n_ref)
        pr = math.cos(ph)
        pi_ = -math.sin(ph)
        for _ in range(a - blk):  # advance from the block start, as an aligned chunk would
            t = pr * sr - pi_ * si
            pi_ = pr * si + pi_ * sr
            pr = t
        for j in range(i, end):
            v = x[j]
            out[j] = complex(v.real * pr - v.imag * pi_, v.real * pi_ + v.imag * pr)
            t = pr * sr - pi_ * si
            pi_ = pr * si + pi_ * sr
            pr = t
        i = end


class Rotator:
    """Streaming frequency shifter: y[n] = x[n] exp(-j (phi_ref + 2 pi f (n - n_ref))).

    Parameters
    ----------
    frequency : float
        Frequency to remove, cycles per sample, in [-0.5, 0.5].
    phase : float
        Phase removed from the first sample, rad.
    first_sample : int
        Absolute stream index of the first sample this rotator will get.
    """

    def __init__(self, frequency: float = 0.0, phase: float = 0.0, first_sample: int = 0):
        self._n = int(first_sample)
        self._n_ref = int(first_sample)
        self._phi_ref = float(phase)
        self._f = 0.0
        self._laws: list[tuple[int, float, int, float]] = []  # (first sample, phi_ref, n_ref, f)
        self.frequency = frequency

    @property
    def frequency(self) -> float:
        """Frequency removed, cycles per sample; setting it keeps the phase continuous."""
        return self._f

    @frequency.setter
    def frequency(self, f: float) -> None:
        if not isinstance(f, int | float | np.integer | np.floating) or not -0.5 <= float(f) <= 0.5:
            raise ValueError(f"frequency must be in [-0.5, 0.5] cycles per sample; got {f!r}")
        self._phi_ref = self.phase_at(self._n)
        self._n_ref = self._n
        self._f = float(f)
        if self._laws and self._laws[-1][0] == self._n:
            self._laws.pop()
        self._laws.append((self._n, self._phi_ref, self._n_ref, self._f))
        del self._laws[:-MAX_LAWS]

    @property
    def next_sample(self) -> int:
        """Absolute index of the next input sample."""
        return self._n

    def phase_at(self, n) -> np.ndarray | float:
        """Phase removed at absolute (possibly fractional) sample index n with the current frequency, rad."""
        return self._phi_ref + 2.0 * math.pi * self._f * (np.asarray(n, dtype=np.float64) - self._n_ref)

    def phase_history(self, n) -> np.ndarray:
        """Phase removed at sample indices n (float, any order), rad.

        Each with the frequency that was in force there (the last :data:`MAX_LAWS` frequency
        settings are kept).
        """
        n = np.asarray(n, dtype=np.float64)
        if n.size and n.min() >= self._laws[-1][0]:  # all under the current law
            return self._phi_ref + (2.0 * math.pi * self._f) * (n - self._n_ref)
        starts = np.array([law[0] for law in self._laws], dtype=np.float64)
        i = np.clip(np.searchsorted(starts, n, side="right") - 1, 0, len(self._laws) - 1)
        table = np.array([law[1:] for law in self._laws], dtype=np.float64)  # phi_ref, n_ref, f
        return table[i, 0] + 2.0 * math.pi * table[i, 2] * (n - table[i, 1])

    def changes(self, lo: float, hi: float) -> list[int]:
        """Sample indices in (lo, hi] where the frequency was changed."""
        return [law[0] for law in self._laws[1:] if lo < law[0] <= hi]

    def reference(self) -> tuple[float, int, float]:
        """(phi_ref, n_ref, f): the current phase law phi(n) = phi_ref + 2 pi f (n - n_ref)."""
        return self._phi_ref, self._n_ref, self._f

    def __call__(self, samples) -> np.ndarray:
        """Shift a chunk of samples (complex64 out, same length)."""
        return self._run(as_complex64(samples, "samples", offset=self._n))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """:meth:`__call__` on an array already checked (C-contiguous complex64, finite)."""
        out = np.empty_like(x)
        if x.size:
            _rotate_kernel(x, out, self._n, self._f, self._phi_ref, self._n_ref)
        self._n += x.size
        return out
