"""Automatic gain control: scale a complex sample stream to a target average power.

:class:`Agc` is a feed-forward AGC: an exponentially weighted estimate of the input power,
P[n] = P[n-1] + a[n] (|x[n]|^2 - P[n-1]), sets the amplitude gain g[n] = sqrt(target / P[n]) of
sample n. During the first ``time_constant`` samples a[n] = 1 / (n + 1) (the running mean of
everything seen so far, so there is no start-up transient), afterwards a = 1 / time_constant.
The gain has no loop dynamics (it cannot oscillate) and follows level changes with the time
constant given; a long time constant keeps the gain's own jitter (relative standard deviation of
the power estimate about 1 / sqrt(2 time_constant) for noise-like input) far below the noise of the
signal it scales.

Streaming: the state (power estimate, sample count) is carried across calls in float64 and every
sample goes through the same operations, so any chunking gives bit-identical output.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from modem.sync._checks import as_complex64, check_positive


@nb.njit(cache=True, nogil=True)
def _agc_kernel(x, out, state, alpha, target, floor):  # pragma: no cover - compiled
    """State = [power estimate, samples seen]; out[i] = x[i] sqrt(target / max(P, floor))."""
    p = state[0]
    n = state[1]
    for i in range(x.size):
        v = x[i]
        pw = np.float64(v.real) * v.real + np.float64(v.imag) * v.imag
        a = 1.0 / (n + 1.0)
        if a < alpha:
            a = alpha
        p += a * (pw - p)
        n += 1.0
        g = np.float32(np.sqrt(target / max(p, floor)))
        out[i] = v * g
    state[0] = p
    state[1] = n


class Agc:
    """Streaming feed-forward automatic gain control (complex baseband).

    Parameters
    ----------
    target_power : float
        Average output power E|y|^2 the gain aims at, > 0 (1.0: unit power).
    time_constant : float
        Power-estimate time constant, samples, >= 1 (the AGC follows a level step with
        this time constant; the first ``time_constant`` samples use the running mean).
    max_gain_db : float
        Largest amplitude gain, dB (20 log10 g), > 0; caps the gain on silent input (zeros stay
        zeros).

    Examples
    --------
    >>> agc = Agc(time_constant=1000)
    >>> y = agc(0.01 * np.ones(5000, np.complex64))
    >>> float(abs(y[-1]))
    1.0

    Notes
    -----
    ``y = agc(x)`` returns as many complex64 samples as it gets; :meth:`reset` restarts the
    estimate. :attr:`gain` and :attr:`power` give the current state.
    """

    def __init__(self, target_power: float = 1.0, time_constant: float = 10_000.0,
                 max_gain_db: float = 120.0):  # fmt: skip
        self.target_power = check_positive(target_power, "target_power")
        self.time_constant = check_positive(time_constant, "time_constant", lo=1.0, closed=True)
        self.max_gain_db = check_positive(max_gain_db, "max_gain_db")
        self._alpha = 1.0 / self.time_constant
        self._floor = self.target_power * 10.0 ** (-self.max_gain_db / 10.0)
        self.reset()

    def reset(self) -> None:
        """Forget the power estimate (as at construction)."""
        self._state = np.zeros(2, dtype=np.float64)

    def set_state(self, power: float) -> None:
        """Continue from a known input power estimate (e.g. another AGC's :attr:`power`), > 0.

        The estimate then moves with the full time constant from the first sample on.
        """
        p = check_positive(power, "power")
        self._state = np.array([p, max(self.time_constant, 1.0)], dtype=np.float64)

    @property
    def power(self) -> float:
        """Current estimate of the input power E|x|^2 (0 before any input)."""
        return float(self._state[0])

    @property
    def gain(self) -> float:
        """Amplitude gain applied to the next sample (1.0 before any input)."""
        if self._state[1] == 0:
            return 1.0
        return float(np.sqrt(self.target_power / max(self._state[0], self._floor)))

    @property
    def samples_in(self) -> int:
        """Samples processed since construction or :meth:`reset`."""
        return int(self._state[1])

    def __call__(self, samples) -> np.ndarray:
        """Scale a chunk of samples.

        Parameters
        ----------
        samples : array_like of complex, shape (N,)

        Returns
        -------
        ndarray of complex64, shape (N,)

        Raises
        ------
        ValueError
            ``samples`` is not 1-D or holds NaN or inf (the message names the first bad index).
        """
        return self._run(as_complex64(samples, "samples", offset=self.samples_in))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """:meth:`__call__` on an array already checked (C-contiguous complex64, finite)."""
        out = np.empty_like(x)
        _agc_kernel(x, out, self._state, self._alpha, self.target_power, self._floor)
        return out
