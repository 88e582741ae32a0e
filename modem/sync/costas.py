"""Costas carrier loop for BPSK and QPSK at one sample per symbol.

A decision-directed Costas loop: each symbol is rotated by the loop's phase, the phase detector
gives e = sign(Re y) Im y (BPSK) or sign(Re y) Im y - sign(Im y) Re y (QPSK), divided by a
running estimate of the symbol amplitude so the loop gain does not depend on the signal
level, and a proportional-integral loop filter updates phase and frequency (a second-order
type-II loop: it tracks a constant frequency offset with zero steady-state phase error and a
frequency ramp with a constant one).

Loop constants from the noise bandwidth B_L (normalized to the symbol rate) and damping zeta,
with theta = B_L / (zeta + 1 / (4 zeta)): k1 = 4 zeta theta / (1 + 2 zeta theta + theta^2),
k2 = 4 theta^2 / (1 + 2 zeta theta + theta^2) (unit detector and NCO gains).

The loop leaves a phase ambiguity of a multiple of pi (BPSK) or pi/2 (QPSK): frame markers
resolve it downstream.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

ORDERS = (2, 4)


def loop_gains(loop_bandwidth: float, damping: float) -> tuple[float, float]:
    """Proportional and integral gains (k1, k2) of a second-order loop (see module notes)."""
    theta = loop_bandwidth / (damping + 0.25 / damping)
    d = 1.0 + 2.0 * damping * theta + theta * theta
    return 4.0 * damping * theta / d, 4.0 * theta * theta / d


@nb.njit(cache=True, nogil=True, inline="always")
def phase_error(yr, yi, order):
    """Decision-directed Costas phase error of a symbol yr + j yi (order 2: BPSK, 4: QPSK).

    In rad times the symbol amplitude; callable from other numba kernels.
    """
    if order == 2:
        return yi * math.copysign(1.0, yr)  # branchless sign(Re) Im
    return yi * math.copysign(1.0, yr) - yr * math.copysign(1.0, yi)


@nb.njit(cache=True, nogil=True)
def _costas_kernel(x, order, k1, k2, state, out):
    """state: [phase (rad), freq (rad/symbol), amplitude, lock, amp_alpha, lock_alpha, max_freq]."""
    phase = state[0]
    freq = state[1]
    amp = state[2]
    lock = state[3]
    a_amp = state[4]
    a_lock = state[5]
    fmax = state[6]
    two_pi = 2.0 * np.pi
    for i in range(x.shape[0]):
        c = np.cos(phase)
        s = np.sin(phase)
        xr = x[i].real
        xi = x[i].imag
        yr = xr * c + xi * s
        yi = xi * c - xr * s
        out[i] = complex(yr, yi)
        e = phase_error(yr, yi, order)
        if order == 2:
            mag = abs(yr)
            p = yr * yr - yi * yi
        else:
            mag = 0.5 * (abs(yr) + abs(yi))
            p = 4.0 * yr * yr * yi * yi - (yr * yr - yi * yi) ** 2  # -Re(y^4): QPSK sits at pi/4
        amp += a_amp * (mag - amp)
        pw = yr * yr + yi * yi
        if order == 4:
            pw = pw * pw
        if pw > 0:
            lock += a_lock * (p / pw - lock)
        if amp > 0:
            e /= amp
        freq += k2 * e
        if freq > fmax:
            freq = fmax
        elif freq < -fmax:
            freq = -fmax
        phase += freq + k1 * e
        if phase > np.pi:
            phase -= two_pi
        elif phase < -np.pi:
            phase += two_pi
    state[0] = phase
    state[1] = freq
    state[2] = amp
    state[3] = lock


class CostasLoop:
    """Streaming Costas loop on symbols (one complex sample per symbol).

    Parameters
    ----------
    order : {2, 4}
        2 for BPSK, 4 for QPSK.
    loop_bandwidth : float
        Noise bandwidth B_L normalized to the symbol rate, (0, 0.2].
    damping : float
        Damping factor zeta, (0, 4].
    frequency : float
        Initial frequency estimate, cycles per symbol, |f| < 0.5 / order.
    max_frequency : float
        Limit of the frequency integrator, cycles per symbol, (0, 0.5 / order].
    amplitude : float
        Initial symbol amplitude estimate (> 0); tracked with time constant 1 / ``smoothing``.
    smoothing : float
        Weight of each new symbol in the amplitude and lock estimates, (0, 1].

    Attributes
    ----------
    phase : float
        Current phase correction, rad.
    frequency : float
        Current frequency correction, cycles per symbol.
    lock : float
        Lock indicator: running mean of cos(order * phase error) (QPSK: of the constellation at
        pi/4, the points the detector locks to), 1 when locked without noise, near 0 when
        unlocked; at Es/N0 = 0 dB about 0.3 (BPSK) when locked.
    """

    def __init__(
        self,
        order: int = 2,
        loop_bandwidth: float = 0.005,
        damping: float = 0.707,
        frequency: float = 0.0,
        max_frequency: float | None = None,
        amplitude: float = 1.0,
        smoothing: float = 0.01,
    ):
        if order not in ORDERS:
            raise ValueError(f"order must be 2 (BPSK) or 4 (QPSK); got {order!r}")
        if not 0 < loop_bandwidth <= 0.2:
            raise ValueError(f"loop_bandwidth must be in (0, 0.2] of the symbol rate; got {loop_bandwidth}")
        if not 0 < damping <= 4:
            raise ValueError(f"damping must be in (0, 4]; got {damping}")
        limit = 0.5 / order
        max_frequency = limit if max_frequency is None else max_frequency
        if not 0 < max_frequency <= limit:
            raise ValueError(f"max_frequency must be in (0, {limit}] cycles per symbol; got {max_frequency}")
        if not abs(frequency) < limit:
            raise ValueError(f"frequency must be within +-{limit} cycles per symbol; got {frequency}")
        if not amplitude > 0:
            raise ValueError(f"amplitude must be > 0; got {amplitude}")
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1]; got {smoothing}")
        self.order = int(order)
        self.loop_bandwidth = float(loop_bandwidth)
        self.damping = float(damping)
        self.k1, self.k2 = loop_gains(self.loop_bandwidth, self.damping)
        self._init = (float(frequency), float(max_frequency), float(amplitude), float(smoothing))
        self.reset()

    def reset(self) -> None:
        """Back to the initial frequency, zero phase, initial amplitude, lock 0."""
        f, fmax, amp, sm = self._init
        self._state = np.array([0.0, 2 * np.pi * f, amp, 0.0, sm, sm, 2 * np.pi * fmax], dtype=np.float64)

    @property
    def phase(self) -> float:
        """Phase correction, rad."""
        return float(self._state[0])

    @property
    def frequency(self) -> float:
        """Frequency correction, cycles per symbol."""
        return float(self._state[1] / (2 * np.pi))

    @frequency.setter
    def frequency(self, value: float) -> None:
        limit = self._state[6] / (2 * np.pi)
        if not abs(value) <= limit:
            raise ValueError(f"frequency must be within +-{limit} cycles per symbol; got {value}")
        self._state[1] = 2 * np.pi * float(value)

    @property
    def amplitude(self) -> float:
        """Running estimate of the symbol amplitude."""
        return float(self._state[2])

    @property
    def lock(self) -> float:
        """Lock indicator (see class notes)."""
        return float(self._state[3])

    def rotate(self, radians: float) -> None:
        """Add ``radians`` to the phase correction (e.g. to undo a known phase step)."""
        self._state[0] = (self._state[0] + radians + np.pi) % (2 * np.pi) - np.pi

    def __call__(self, symbols) -> np.ndarray:
        """Correct the carrier of the next symbols.

        Parameters
        ----------
        symbols : array_like of complex, shape (n,)
            One sample per symbol, finite.

        Returns
        -------
        ndarray of complex64, shape (n,)
        """
        x = np.asarray(symbols)
        if x.ndim != 1:
            raise ValueError(f"symbols must be 1-D; got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.complex64)
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.isfinite(x))[0])
            raise ValueError(f"symbols must be finite; got {x[bad]} at index {bad}")
        out = np.empty_like(x)
        _costas_kernel(x, self.order, self.k1, self.k2, self._state, out)
        return out
