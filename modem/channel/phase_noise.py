"""Oscillator phase noise from a mask of single-sideband levels L(f) in dBc/Hz, streaming.

Model
-----
The phase phi[n] (rad) is white Gaussian noise through a cascade of first-order pole-zero
sections, H(z) = g prod_k (1 - z_k z^-1) / (1 - p_k z^-1), whose two-sided PSD
g^2 |H(e^{j 2 pi f / f_s})|^2 / f_s (rad^2/Hz) is fitted to 10^(L(f)/10): for small phase
noise L(f) equals the two-sided phase PSD. The poles sit six per decade from a decade below
the mask's first offset up to f_s/2; the zeros and the gain are fitted by least squares on
the dB error (:func:`fit_mask`). A cascade of real poles and zeros follows any piecewise
slope of an oscillator's mask (0, -10, -20, -30 dB/decade...); the corners of a piecewise
mask are sharper than a rational spectrum can be, which leaves up to about 1.5 dB at a
corner (:attr:`PhaseNoise.fit_error_db`, measured per mask and rate).

The mask is interpolated linearly in log frequency between its points, flat above the last
one (the floor); below the first offset its first slope continues for one decade, then the
spectrum is flat (a stationary process: the slower wander of a real oscillator is left to
the frequency-offset models). Offsets above f_s/2 do not matter. One Gaussian draw per
sample: normal number n of the block's counter-based stream (:mod:`modem.channel._gauss`),
so the process does not depend on the chunking. The filter is warmed up at construction
(three time constants of its slowest pole, at most 2**22 samples) so the first samples are
already stationary; :meth:`PhaseNoise.reset` returns to that warmed-up state.

Parallel realization
--------------------
Run as a cascade, K sections cost K dependent multiply-adds per sample (36 at 2 MS/s for
the tcxo mask). The poles are real and distinct (six per decade), so the same H(z) is the
partial-fraction sum

    H(z) = g (c + sum_k r_k / (1 - p_k z^-1)),   r_k = prod_j (p_k - z_j) / (p_k prod_{j!=k} (p_k - p_j)),

c = prod_j z_j / p_j (:func:`parallel_form`): K independent one-pole filters of the same
white input, updated together as one vector operation per sample and summed. The residues
come from differences p_k - z_j (exact in floating point when close), and the sum loses
accuracy only if the branches cancel: :func:`parallel_form` reports the amplification
sum_k |r_k| std(y_k) / std(output) (about 10 for the presets, i.e. 1e-14 relative), and a
mask whose amplification exceeds 1e6 runs as the cascade instead (about 4 times slower; no
shipped mask comes near: steep or notched test masks stay below 400). The two realizations
agree to about 1e-11 relative (the tests compare both with scipy's lfilter of the sections);
the parallel filter is about 12 times faster than the section-by-section cascade of the
first implementation, the whole block (noise, filter, rotation) about 6 times
(benchmarks/channel_throughput.py).

Presets (:data:`PRESETS`) are oscillator masks at a stated carrier; :meth:`PhaseNoise.preset`
rescales them to another carrier by 20 log10(f_c / f_ref) (ideal frequency multiplication).
The values are representative of their class, not a quote from one data sheet:

- ``pluto``: the AD9361 fractional-N synthesizer of an ADALM-PLUTO at 2.4 GHz on its 40 MHz
  crystal; about 0.3 deg rms integrated from 100 Hz to 10 MHz.
- ``tcxo``: a 10 MHz TCXO of data-sheet class (-110 dBc/Hz at 10 Hz, -130 at 100 Hz, -145 at
  1 kHz, -150 at 10 kHz) multiplied to 2.4 GHz (+47.6 dB), synthesizer roll-off above 100 kHz.
- ``ocxo``: a 10 MHz oven oscillator (-130 dBc/Hz at 10 Hz, -150 at 100 Hz, -160 at 1 kHz,
  -165 at 10 kHz) multiplied to 2.4 GHz, the same synthesizer roll-off.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba as nb
import numpy as np
from scipy.optimize import least_squares

from modem.channel._block import Block, check_iq, check_real
from modem.channel._cis import apply_phase
from modem.channel._gauss import fill_normal, noise_key

#: name -> (carrier Hz the mask is given at, ((offset Hz, dBc/Hz), ...))
PRESETS: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    "pluto": (2.4e9, ((100.0, -80.0), (1e3, -92.0), (1e4, -100.0), (1e5, -104.0), (1e6, -125.0),
                      (1e7, -145.0))),
    "tcxo": (2.4e9, ((10.0, -62.4), (100.0, -82.4), (1e3, -97.4), (1e4, -102.4), (1e5, -108.0),
                     (1e6, -130.0))),
    "ocxo": (2.4e9, ((10.0, -82.4), (100.0, -102.4), (1e3, -112.4), (1e4, -117.4), (1e5, -120.0),
                     (1e6, -135.0))),
}
POLES_PER_DECADE = 6
MAX_WARMUP = 1 << 22


def check_mask(mask, name: str = "mask") -> tuple[tuple[float, float], ...]:
    """Validate a phase-noise mask: (offset Hz, dBc/Hz) pairs, offsets increasing and > 0.

    Returns
    -------
    tuple of (float, float)

    Raises
    ------
    ValueError, TypeError
        Empty, unsorted, non-positive offsets, levels outside -250 .. 0 dBc/Hz; the message
        names the point.
    """
    try:
        pts = [tuple(p) for p in mask]
    except TypeError:
        raise TypeError(f"{name} must be a list of (offset_hz, dBc_per_hz) pairs; got {mask!r}") from None
    if not pts:
        raise ValueError(f"{name} must hold at least one (offset_hz, dBc_per_hz) point; got none")
    out = []
    for i, p in enumerate(pts):
        if len(p) != 2:
            raise ValueError(f"{name}[{i}] must be a pair (offset_hz, dBc_per_hz); got {p!r}")
        f = check_real(p[0], f"{name}[{i}] offset", 0.0, 1e12, "Hz", lo_open=True)
        level = check_real(p[1], f"{name}[{i}] level", -250.0, 0.0, "dBc/Hz")
        if out and f <= out[-1][0]:
            raise ValueError(f"{name} offsets must increase; point {i} ({f:g} Hz) follows {out[-1][0]:g} Hz")
        out.append((f, level))
    return tuple(out)


def mask_db(mask, freqs_hz, extend: bool = False) -> np.ndarray:
    """L(f) in dBc/Hz at ``freqs_hz`` (> 0): linear in log frequency between the points.

    Flat above the last point (the floor). Below the first point: flat, or with ``extend``
    the first segment's slope continued for one decade, then flat (the model's shape).
    """
    m = np.asarray(mask, dtype=float)
    lf, lv = np.log10(m[:, 0]), m[:, 1]
    if extend and m.shape[0] >= 2:
        slope = (lv[1] - lv[0]) / (lf[1] - lf[0])
        lf = np.concatenate(([lf[0] - 1.0], lf))
        lv = np.concatenate(([lv[0] - slope], lv))
    return np.interp(np.log10(np.asarray(freqs_hz, dtype=float)), lf, lv)


def integrated_phase_rms(mask, f1_hz: float, f2_hz: float, points: int = 2000) -> float:
    """RMS phase (rad) of a mask integrated over both sidebands from ``f1_hz`` to ``f2_hz``.

    sigma^2 = 2 * integral of 10^(L(f)/10) df (trapezoids on a log grid).
    """
    f = np.geomspace(f1_hz, f2_hz, points)
    return float(math.sqrt(2.0 * np.trapezoid(10.0 ** (mask_db(mask, f) / 10.0), f)))


def _response_db(f, fs, p, z) -> np.ndarray:
    """10 log10 |H(e^{j 2 pi f / fs})|^2 of the cascade (without gain), dB."""
    c = np.cos(2.0 * np.pi * np.asarray(f, dtype=float) / fs)[:, None]
    num = 1.0 - 2.0 * z[None, :] * c + z[None, :] ** 2
    den = 1.0 - 2.0 * p[None, :] * c + p[None, :] ** 2
    return 10.0 * np.log10(num / den).sum(axis=1)


@lru_cache(maxsize=64)
def fit_mask(mask: tuple, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fit the pole-zero cascade to a mask at a sample rate (cached).

    Poles: :data:`POLES_PER_DECADE` per decade, fixed, from a decade below the first offset to
    f_s/2. Zeros: first placed where the running order (poles minus zeros below f) exceeds the
    mask's local slope / -20 dB per decade by more than one half, then moved by least squares
    (analytic Jacobian) to minimize the dB error on a log grid; the gain takes the mean error.

    Parameters
    ----------
    mask : tuple of (float, float)
        Validated mask (:func:`check_mask`).
    sample_rate_hz : float

    Returns
    -------
    poles, zeros : ndarray of float64
        Section poles p_k and zeros z_k (real, in [0, 1)).
    gain : float
        g, applied to the unit-variance white input.
    error_db : float
        Largest |fitted - model| over the grid from the first offset to 0.49 f_s, dB.
    """
    fs = float(sample_rate_hz)
    nyq = 0.49 * fs
    f_first = min(mask[0][0], nyq / 10.0)
    f0 = f_first / 10.0  # lowest pole: the model's flat region starts a decade below the mask
    n = max(1, math.ceil(POLES_PER_DECADE * math.log10(0.5 * fs / f0)))
    fp = np.geomspace(f0, 0.5 * fs, n)
    p = np.exp(-2.0 * np.pi * fp / fs)
    # initial zeros from the local slope (order = -slope / 20 dB per decade)
    u = np.arange(math.log10(f0 / 10.0), math.log10(10.0 * fs), 0.01)
    order = -np.gradient(mask_db(mask, np.minimum(10.0**u, nyq), extend=True), u) / 20.0
    zeros: list[float] = []
    k = 0
    for i in range(u.size):
        while k < n and fp[k] <= 10.0 ** u[i]:
            k += 1
        while len(zeros) < k and k - len(zeros) > order[i] + 0.5:
            zeros.append(10.0 ** u[i])
    zeros += [10.0 * fs] * (n - len(zeros))
    grid = np.geomspace(f0 / 10.0, nyq, max(50, int(30 * math.log10(nyq * 10.0 / f0))))
    target = mask_db(mask, grid, extend=True) + 10.0 * math.log10(fs)  # |g H|^2 = f_s 10^(L/10)
    c = np.cos(2.0 * np.pi * grid / fs)[:, None]
    den_db = 10.0 * np.log10(1.0 - 2.0 * p[None, :] * c + p[None, :] ** 2).sum(axis=1)

    def error(x):
        z = np.exp(-2.0 * np.pi * 10.0**x / fs)
        num = 1.0 - 2.0 * z[None, :] * c + z[None, :] ** 2
        r = 10.0 * np.log10(num).sum(axis=1) - den_db - target
        dz = z * (-2.0 * np.pi * math.log(10.0) * 10.0**x / fs)
        jac = (10.0 / math.log(10.0)) * (2.0 * z[None, :] - 2.0 * c) / num * dz[None, :]
        return r, jac

    def resid(x):
        r = error(x)[0]
        return r - r.mean()

    def jac(x):
        j = error(x)[1]
        return j - j.mean(axis=0, keepdims=True)

    lo, hi = math.log10(f0 / 100.0), math.log10(10.0 * fs)
    x0 = np.clip(np.log10(zeros), lo, hi)
    sol = least_squares(resid, x0, jac=jac, bounds=(lo, hi), xtol=1e-10, ftol=1e-10, max_nfev=200)
    z = np.exp(-2.0 * np.pi * 10.0**sol.x / fs)
    r = error(sol.x)[0]
    gain = 10.0 ** (-r.mean() / 20.0)
    inside = grid >= f_first
    return p, z, float(gain), float(np.max(np.abs(r - r.mean())[inside]))


MAX_AMPLIFICATION = 1e6  #: above this, :func:`parallel_form` is not used (module notes)


_SPAN = 512  # normals drawn ahead of the filter loop (a vectorized pass), samples


@nb.njit(cache=True, nogil=True)
def _cascade(key, n0, p, z, gain, s, out):  # pragma: no cover - compiled
    """out[n] = gain x cascade output for standard normal input n0 + n of ``key``, sample by sample.

    s (K + 1,) is the state, updated: s[0] the last input, s[1 + k] section k's last output.
    Section k: y[n] = v[n] - z_k v[n-1] + p_k y[n-1], v its input (the previous section's y).
    """
    w = np.empty(_SPAN)
    for a in range(0, out.size, _SPAN):
        m = min(_SPAN, out.size - a)
        fill_normal(key, n0 + a, w[:m])
        o = out[a : a + m]
        for n in range(m):
            v = w[n]
            xp = s[0]
            s[0] = v
            for k in range(p.size):
                y = v - z[k] * xp + p[k] * s[k + 1]
                xp = s[k + 1]
                s[k + 1] = y
                v = y
            o[n] = gain * v


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _parallel(key, n0, p, r, c, gain, y, out):  # pragma: no cover - compiled
    """out[n] = gain (c w[n] + sum_k r_k y_k[n]), y_k[n] = p_k y_k[n-1] + w[n], w[n] normal n0 + n.

    y (K,) holds the branch states across calls; the branch loop is one vector operation.
    """
    w = np.empty(_SPAN)
    for a in range(0, out.size, _SPAN):
        m = min(_SPAN, out.size - a)
        fill_normal(key, n0 + a, w[:m])
        o = out[a : a + m]
        for n in range(m):
            wn = w[n]
            acc = 0.0
            for k in range(p.size):
                yk = p[k] * y[k] + wn
                y[k] = yk
                acc += r[k] * yk
            o[n] = gain * (c * wn + acc)


def parallel_form(poles, zeros) -> tuple[np.ndarray, float, float]:
    """Partial fractions of prod_k (1 - z_k z^-1) / (1 - p_k z^-1) (distinct real poles in [0, 1)).

    Returns
    -------
    residues : ndarray of float64 (K,)
        r_k of the one-pole branches r_k / (1 - p_k z^-1).
    direct : float
        c, the direct (memoryless) term.
    amplification : float
        sum_k |r_k| std(y_k) / std(output) for white input: how much the branches cancel
        (the sum's relative rounding error is about 1e-16 times this); inf if they cancel
        completely.
    """
    p = np.asarray(poles, dtype=np.float64)
    z = np.asarray(zeros, dtype=np.float64)
    r = np.empty(p.size)
    for k in range(p.size):
        others = np.delete(p, k)
        r[k] = np.prod((p[k] - z) / p[k]) / np.prod((p[k] - others) / p[k])
    c = float(np.prod(z / p))
    var = c * c + 2.0 * c * float(r.sum()) + float(np.sum(np.outer(r, r) / (1.0 - np.outer(p, p))))
    spread = float(np.sum(np.abs(r) / np.sqrt(1.0 - p * p))) + abs(c)
    amp = spread / math.sqrt(var) if var > 0 and math.isfinite(var) else math.inf
    return r, c, amp


class PhaseNoise(Block):
    """Multiply a stream by exp(j phi[n]), phi a Gaussian phase-noise process following a mask.

    Parameters
    ----------
    mask : sequence of (float, float)
        (offset Hz, L dBc/Hz) points, offsets increasing; see the module notes.
    sample_rate_hz : float
        Sample rate, samples/s (> 0).
    seed : None, int, SeedSequence or Generator
        Noise source (:func:`modem.channel._gauss.noise_key`); :meth:`reset` rewinds it (and
        the filter) to the warmed-up state.

    Attributes
    ----------
    fit_error_db : float
        Largest error of the fitted PSD against the mask on the fit grid, dB.
    rms_rad : float
        RMS phase (rad) of the mask integrated over both sidebands from the first offset to
        f_s/2 (what the generated phase carries above that offset).
    amplification : float
        Cancellation factor of the parallel realization (:func:`parallel_form`).
    parallel : bool
        True: the parallel realization runs; False: the cascade (amplification above
        :data:`MAX_AMPLIFICATION`).
    """

    def __init__(self, mask, sample_rate_hz: float, seed=None):
        self.mask = check_mask(mask)
        self.sample_rate_hz = check_real(sample_rate_hz, "sample_rate_hz", 0.0, 1e12, "samples/s",
                                         lo_open=True)
        self._p, self._z, self._gain, self.fit_error_db = fit_mask(self.mask, self.sample_rate_hz)
        f_lo = min(self.mask[0][0], 0.49 * self.sample_rate_hz / 10.0)
        self.rms_rad = integrated_phase_rms(self.mask, f_lo, self.sample_rate_hz / 2)
        self._r, self._c, self.amplification = parallel_form(self._p, self._z)
        self.parallel = bool(self.amplification <= MAX_AMPLIFICATION)  #: realization used (module notes)
        key, entropy = noise_key(seed, stream=1)
        self._key = key
        self.seed = entropy  #: entropy that replays the process (None if a Generator was given)
        self._n = 0  # normals drawn so far (the counter of the noise key)
        self._y = np.zeros(self._p.size + (0 if self.parallel else 1))  # branch or cascade state
        # warm up: three time constants of the slowest pole
        tau = 1.0 / max(1.0 - float(self._p[0]), 1e-12)
        self.warmup_samples = min(int(3 * tau), MAX_WARMUP)  #: samples run through the filter at construction
        left = self.warmup_samples
        work = np.empty(min(left, 1 << 16))
        while left > 0:
            n = min(left, work.size)
            self._run(work[:n])
            left -= n
        self._start = self._y.copy()

    def _run(self, out: np.ndarray) -> None:
        if self.parallel:
            _parallel(self._key, self._n, self._p, self._r, self._c, self._gain, self._y, out)
        else:
            _cascade(self._key, self._n, self._p, self._z, self._gain, self._y, out)
        self._n += out.size

    @classmethod
    def preset(cls, name: str, sample_rate_hz: float, seed=None, carrier_hz: float | None = None):
        """A :class:`PhaseNoise` from a named mask (:data:`PRESETS`).

        Parameters
        ----------
        name : {"tcxo", "ocxo", "pluto"}
        sample_rate_hz : float
        seed : None, int, SeedSequence or Generator
        carrier_hz : float, optional
            Carrier the oscillator is multiplied to; the mask moves by 20 log10(carrier_hz /
            its own carrier). Default: the preset's own carrier (2.4 GHz).
        """
        return cls(preset_mask(name, carrier_hz), sample_rate_hz, seed)

    def generate(self, n: int) -> np.ndarray:
        """The next ``n`` phase samples (rad, float64), advancing the process."""
        out = np.empty(int(n))
        self._run(out)
        return out

    def __call__(self, x) -> np.ndarray:
        """Apply the next ``len(x)`` phase samples to ``x`` (complex64)."""
        x = check_iq(x)
        out = np.empty_like(x)
        apply_phase(x, self.generate(x.size), out)
        return out

    def reset(self) -> None:
        """Back to the warmed-up state after construction (same phase sequence again)."""
        self._y[:] = self._start
        self._n = self.warmup_samples


def preset_mask(name: str, carrier_hz: float | None = None) -> tuple[tuple[float, float], ...]:
    """The mask of a preset (:data:`PRESETS`), moved to ``carrier_hz`` if given."""
    if name not in PRESETS:
        raise ValueError(f"phase-noise preset must be one of {', '.join(map(repr, PRESETS))}; got {name!r}")
    ref, mask = PRESETS[name]
    if carrier_hz is None:
        return mask
    c = check_real(carrier_hz, "carrier_hz", 0.0, 1e12, "Hz", lo_open=True)
    shift = 20.0 * math.log10(c / ref)
    return tuple((f, min(level + shift, 0.0)) for f, level in mask)
