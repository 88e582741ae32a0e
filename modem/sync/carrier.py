"""Carrier phase and frequency tracking from blocks of known symbols (PLHEADERs, pilot blocks).

:class:`PhaseTracker` is a Kalman filter on the carrier's total phase, modelled as
theta(k) (rad) at symbol k with frequency omega (rad/symbol) and frequency rate alpha
(rad/symbol^2), driven by white noise (phase noise, frequency random walk, Doppler-rate changes):
state x = [theta, omega, alpha], x(k + d) = F(d) x(k) + w,
F(d) = [[1, d, d^2/2], [0, 1, d], [0, 0, 1]], with the process noise of continuous-time white
noise on each derivative (spectral densities ``q_phase`` rad^2/symbol, ``q_freq``
rad^2/symbol^3, ``q_rate`` rad^2/symbol^5).

A measurement is a block of N known symbols s_k received as y_k = A exp(j(theta(k) - phi_fe(k)))
s_k + n_k, where phi_fe(k) is the phase the receiver's front end has already removed (its
numerically controlled oscillator). The block is correlated with the references after removing the
predicted phase, c = sum_k y_k conj(s_k) exp(-j(theta_pred(k) - phi_fe(k))), and angle(c), wrapped
to (-pi, pi], is the innovation of theta at the block's centre, with variance N0 / (2 N A^2) (from
the current Es/N0). Because the innovation is wrapped, the prediction between blocks must be
within +-pi: the frequency must be known to better than 1 / (2 x block spacing) cycles/symbol
before tracking starts (see :func:`refine_frequency_mpsk`).

:meth:`PhaseTracker.smooth` runs the filter over the blocks of one PLFRAME (its PLHEADER and
pilot blocks) and then a Rauch-Tung-Striebel smoother back over them (one numba kernel), so each
symbol's phase can be interpolated between smoothed estimates on both sides (:func:`derotate`).
The filtered state after the last block carries on to the next frame.

Also here: :func:`derotate` (remove a piecewise-quadratic phase), :func:`refine_frequency_mpsk`
(M-th power frequency estimate) and :func:`dd_pll` (decision-directed phase-locked loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np


def transition(d: float) -> np.ndarray:
    """State transition F(d) over d symbols."""
    return np.array([[1.0, d, 0.5 * d * d], [0.0, 1.0, d], [0.0, 0.0, 1.0]])


def process_noise(d: float, q_phase: float, q_freq: float, q_rate: float) -> np.ndarray:
    """Covariance of the process noise accumulated over d symbols (continuous white-noise model)."""
    d = abs(d)
    q = np.zeros((3, 3))
    q[0, 0] += q_phase * d
    q[:2, :2] += q_freq * np.array([[d**3 / 3, d**2 / 2], [d**2 / 2, d]])
    q += q_rate * np.array(
        [[d**5 / 20, d**4 / 8, d**3 / 6], [d**4 / 8, d**3 / 3, d**2 / 2], [d**3 / 6, d**2 / 2, d]]
    )
    return q


@dataclass
class Block:
    """One block of known symbols for :meth:`PhaseTracker.smooth`.

    Attributes
    ----------
    start : int
        Symbol index (in the tracker's symbol count) of the block's first symbol.
    y : ndarray of complex64, shape (N,)
        Received symbols (after the front end's rotation).
    ref : ndarray of complex, shape (N,)
        Transmitted symbols.
    phi_fe : ndarray of float64, shape (N,)
        Phase the front end removed from each symbol, rad.
    """

    start: int
    y: np.ndarray
    ref: np.ndarray
    phi_fe: np.ndarray

    @property
    def centre(self) -> float:
        """Symbol index of the block's centre."""
        return self.start + 0.5 * (self.y.size - 1)


@dataclass
class BlockResult:
    """Per-block output of :meth:`PhaseTracker.smooth`."""

    centre: float  #: symbol index of the block centre
    theta: float  #: smoothed total phase at the centre, rad
    omega: float  #: smoothed frequency, rad/symbol
    corr: complex  #: correlation with the references after removing the filtered prediction
    innovation: float  #: wrapped phase innovation, rad


class PhaseTracker:
    """Kalman filter and per-frame smoother of the carrier phase (see module doc).

    Parameters
    ----------
    q_phase : float
        Phase random-walk intensity, rad^2 per symbol (oscillator phase noise), >= 0.
    q_freq : float
        Frequency random-walk intensity, rad^2/symbol^3, >= 0.
    q_rate : float
        Frequency-rate random-walk intensity, rad^2/symbol^5, >= 0 (Doppler-rate changes).
    """

    def __init__(self, q_phase: float = 2e-6, q_freq: float = 1e-13, q_rate: float = 1e-24):
        self.q = (float(q_phase), float(q_freq), float(q_rate))
        self.x = np.zeros(3)
        self.P = np.diag([1e4, 1.0, 1e-12])
        self.k = 0.0  # symbol index of the state
        self.started = False

    def start(self, k: float, theta: float, omega: float, var_theta: float, var_omega: float,
              alpha: float = 0.0, var_alpha: float = 4e-13) -> None:  # fmt: skip
        """(Re)start at symbol k with the given estimates and variances (rad, rad/symbol)."""
        self.x = np.array([theta, omega, alpha], dtype=np.float64)
        self.P = np.diag([var_theta, var_omega, var_alpha]).astype(np.float64)
        self.k = float(k)
        self.started = True

    @property
    def omega(self) -> float:
        """Current frequency estimate, rad/symbol (total: front end + residual)."""
        return float(self.x[1])

    def predict_phase(self, k) -> np.ndarray:
        """Predicted total phase at symbol(s) k (rad), from the current state."""
        d = np.asarray(k, dtype=np.float64) - self.k
        return self.x[0] + self.x[1] * d + 0.5 * self.x[2] * d * d

    def _predict(self, d: float) -> tuple[np.ndarray, np.ndarray]:
        f = transition(d)
        return f @ self.x, f @ self.P @ f.T + process_noise(d, *self.q)

    def smooth(
        self, blocks: list[Block], noise_var: float
    ) -> tuple[list[BlockResult], np.ndarray, np.ndarray]:
        """Filter the blocks in order, then smooth back over them and the current state.

        Parameters
        ----------
        blocks : list of Block
            Known-symbol blocks after the current state's position, in increasing symbol order
            (for a PLFRAME: its pilot blocks and the next PLHEADER; its own PLHEADER is the
            current state, measured as the previous frame's last block or at :meth:`start`).
        noise_var : float
            Noise variance relative to the squared amplitude (N0 / A^2), for the measurement
            variances.

        Returns
        -------
        results : list of BlockResult
            One per block (filtered correlations and innovations, smoothed phase).
        centres, thetas : ndarray of float64, shape (len(blocks) + 1,)
            The current state's position and the block centres, with the smoothed phases there.
        """
        nb_ = len(blocks)
        off = np.zeros(nb_ + 1, np.int64)
        for i, b in enumerate(blocks):
            off[i + 1] = off[i] + b.y.size
        if nb_:
            y_all = np.concatenate([b.y for b in blocks]).astype(np.complex64, copy=False)
            r_all = np.concatenate([b.ref for b in blocks]).astype(np.complex64, copy=False)
            p_all = np.concatenate([b.phi_fe for b in blocks]).astype(np.float64, copy=False)
        else:
            y_all = np.zeros(0, np.complex64)
            r_all = np.zeros(0, np.complex64)
            p_all = np.zeros(0, np.float64)
        cen = np.array([b.centre for b in blocks], dtype=np.float64)
        return self._run(cen, off[:-1], off[:-1], np.diff(off), y_all, r_all, p_all, noise_var)

    def smooth_frame(self, y, phi, k0: int, starts, lens, roff, refs, noise_var: float):
        """:meth:`smooth` for blocks given as positions in one frame's arrays (no copies).

        Block i is y[starts[i] : starts[i] + lens[i]] (front-end phases from phi, symbol index
        k0 + starts[i] onwards) against refs[roff[i] : roff[i] + lens[i]].
        """
        starts = np.ascontiguousarray(starts, np.int64)
        lens = np.ascontiguousarray(lens, np.int64)
        cen = k0 + starts + 0.5 * (lens - 1)
        return self._run(cen, starts, np.ascontiguousarray(roff, np.int64), lens,
                         np.ascontiguousarray(y, np.complex64), np.ascontiguousarray(refs, np.complex64),
                         np.ascontiguousarray(phi, np.float64), noise_var)  # fmt: skip

    def _run(self, cen, ystart, roff, lens, y_all, r_all, p_all, noise_var):
        nb_ = cen.size
        xs = np.empty((nb_ + 1, 3))
        corr = np.empty(nb_, np.complex128)
        innov = np.empty(nb_)
        xf = np.empty(3)
        pf = np.empty((3, 3))
        _kf_kernel(self.x, self.P, self.k, cen, ystart, roff, lens, y_all, r_all, p_all,
                   np.array(self.q, dtype=np.float64), max(noise_var, 1e-8) / 2.0, xs, corr, innov, xf,
                   pf)  # fmt: skip
        centres = np.concatenate([[self.k], cen])
        if nb_:
            self.x, self.P, self.k = xf, pf, float(cen[-1])
        res = [BlockResult(float(cen[i]), float(xs[i + 1, 0]), float(xs[i + 1, 1]), complex(corr[i]),
                           float(innov[i])) for i in range(nb_)]  # fmt: skip
        self.smoothed_alpha = xs[:, 2].copy()  #: per returned centre, rad/symbol^2
        self.smoothed_omega = xs[:, 1].copy()  #: per returned centre, rad/symbol
        return res, centres, xs[:, 0].copy()


@nb.njit(cache=True, nogil=True)
def _kf_kernel(x0, p0, k0, cen, ystart, roff, lens, y_all, r_all, p_all, q, r_scale, xs, corr, innov, xf,
               pf):  # pragma: no cover  # fmt: skip
    """Forward Kalman filter over the blocks, then the Rauch-Tung-Striebel pass (see PhaseTracker).

    Block i is y_all[ystart[i] + j] (front-end phase p_all[ystart[i] + j]) against the reference
    r_all[roff[i] + j], j < lens[i], centred at symbol cen[i]. xs[0] is the smoothed start state
    (at k0), xs[i + 1] that at block i; xf, pf the filtered state after the last block.
    """
    nb_ = cen.size
    xf_all = np.empty((nb_ + 1, 3))
    pf_all = np.empty((nb_ + 1, 3, 3))
    xp_all = np.empty((nb_ + 1, 3))
    pp_all = np.empty((nb_ + 1, 3, 3))
    dd = np.zeros(nb_ + 1)
    xf_all[0] = x0
    pf_all[0] = p0
    x = x0.copy()
    pm = p0.copy()
    k = k0
    f = np.zeros((3, 3))
    qm = np.zeros((3, 3))
    tmp = np.zeros((3, 3))
    for i in range(nb_):
        d = cen[i] - k
        ad = abs(d)
        f[0, 0] = 1.0
        f[0, 1] = d
        f[0, 2] = 0.5 * d * d
        f[1, 1] = 1.0
        f[1, 2] = d
        f[2, 2] = 1.0
        qm[:, :] = 0.0
        qm[0, 0] = q[0] * ad + q[1] * ad**3 / 3 + q[2] * ad**5 / 20
        qm[0, 1] = qm[1, 0] = q[1] * ad**2 / 2 + q[2] * ad**4 / 8
        qm[1, 1] = q[1] * ad + q[2] * ad**3 / 3
        qm[0, 2] = qm[2, 0] = q[2] * ad**3 / 6
        qm[1, 2] = qm[2, 1] = q[2] * ad**2 / 2
        qm[2, 2] = q[2] * ad
        xp = np.zeros(3)
        for r in range(3):
            for c in range(3):
                xp[r] += f[r, c] * x[c]
        for r in range(3):
            for c in range(3):
                acc = 0.0
                for m in range(3):
                    acc += f[r, m] * pm[m, c]
                tmp[r, c] = acc
        pp = np.empty((3, 3))
        for r in range(3):
            for c in range(3):
                acc = 0.0
                for m in range(3):
                    acc += tmp[r, m] * f[c, m]
                pp[r, c] = acc + qm[r, c]
        # measurement: the block's correlation after removing the predicted phase
        n = lens[i]
        half = 0.5 * (n - 1)
        acc_c = 0j
        for j in range(n):
            u = j - half
            a = xp[0] + xp[1] * u + 0.5 * xp[2] * u * u - p_all[ystart[i] + j]
            v = y_all[ystart[i] + j]
            rr = r_all[roff[i] + j]
            z = complex(v.real * rr.real + v.imag * rr.imag, v.imag * rr.real - v.real * rr.imag)
            acc_c += z * complex(math.cos(a), -math.sin(a))
        corr[i] = acc_c
        e = math.atan2(acc_c.imag, acc_c.real)
        innov[i] = e
        s = pp[0, 0] + r_scale / n
        g0 = pp[0, 0] / s
        g1 = pp[1, 0] / s
        g2 = pp[2, 0] / s
        x = np.empty(3)
        x[0] = xp[0] + g0 * e
        x[1] = xp[1] + g1 * e
        x[2] = xp[2] + g2 * e
        pm = np.empty((3, 3))
        gg = (g0, g1, g2)
        for r in range(3):
            for c in range(3):
                pm[r, c] = pp[r, c] - gg[r] * pp[0, c]
        for r in range(3):
            for c in range(r + 1, 3):
                m_ = 0.5 * (pm[r, c] + pm[c, r])
                pm[r, c] = m_
                pm[c, r] = m_
        xp_all[i + 1] = xp
        pp_all[i + 1] = pp
        xf_all[i + 1] = x
        pf_all[i + 1] = pm
        dd[i + 1] = d
        k = cen[i]
    xf[:] = x
    pf[:, :] = pm
    # Rauch-Tung-Striebel
    xs[nb_] = xf_all[nb_]
    for i in range(nb_ - 1, -1, -1):
        d = dd[i + 1]
        f[:, :] = 0.0
        f[0, 0] = 1.0
        f[0, 1] = d
        f[0, 2] = 0.5 * d * d
        f[1, 1] = 1.0
        f[1, 2] = d
        f[2, 2] = 1.0
        inv = _inv3(pp_all[i + 1])
        if inv[0, 0] != inv[0, 0]:  # singular: keep the filtered state
            xs[i] = xf_all[i]
            continue
        # g = P_f F^T P_p^-1
        for r in range(3):
            for c in range(3):
                acc = 0.0
                for m in range(3):
                    acc += pf_all[i][r, m] * f[c, m]
                tmp[r, c] = acc
        g = np.empty((3, 3))
        for r in range(3):
            for c in range(3):
                acc = 0.0
                for m in range(3):
                    acc += tmp[r, m] * inv[m, c]
                g[r, c] = acc
        for r in range(3):
            acc = 0.0
            for c in range(3):
                acc += g[r, c] * (xs[i + 1, c] - xp_all[i + 1, c])
            xs[i, r] = xf_all[i, r] + acc


@nb.njit(cache=True, nogil=True)
def _inv3(a):  # pragma: no cover - compiled
    """Inverse of a 3 x 3 matrix by cofactors (NaN if singular)."""
    out = np.empty((3, 3))
    c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    c01 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
    c02 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    det = a[0, 0] * c00 + a[0, 1] * c01 + a[0, 2] * c02
    if det == 0.0 or det != det:
        out[:, :] = np.nan
        return out
    inv = 1.0 / det
    out[0, 0] = c00 * inv
    out[1, 0] = c01 * inv
    out[2, 0] = c02 * inv
    out[0, 1] = (a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]) * inv
    out[1, 1] = (a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]) * inv
    out[2, 1] = (a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]) * inv
    out[0, 2] = (a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]) * inv
    out[1, 2] = (a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]) * inv
    out[2, 2] = (a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]) * inv
    return out


@nb.njit(cache=True, nogil=True)
def _derotate_kernel(y, k0, centres, phases, curv, out):  # pragma: no cover - compiled
    """out[i] = y[i] exp(-j c(k0 + i)) with c through (centres, phases).

    Between anchors a and b, c(k) = phases[a] + s (k - ca) + curv[a] (k - ca) (k - cb) / 2 (s the
    chord slope), so c hits both anchors; linear beyond the first and last anchor. Exact cos/sin
    at each piece start and every 256 symbols, a second-order phasor recursion in between.
    """
    n = y.size
    m = centres.size
    i = 0
    seg = 0
    while i < n:
        k = k0 + i
        while seg < m - 2 and k >= centres[seg + 1]:
            seg += 1
        if m == 1:
            a_ = phases[0]
            ca = centres[0]
            slope = 0.0
            c2 = 0.0
            end = n
        else:
            ca = centres[seg]
            cb = centres[seg + 1]
            slope = (phases[seg + 1] - phases[seg]) / (cb - ca)
            inside = ca <= k < cb
            c2 = 0.5 * curv[seg] if inside else 0.0
            # c(k) = phases[seg] + (slope - c2 (cb - ca)) (k - ca) + c2 (k - ca)^2
            slope = slope - c2 * (cb - ca)
            a_ = phases[seg]
            if k < ca:
                end = min(n, int(math.ceil(ca - k0)))
            elif seg < m - 2 or k < cb:
                end = min(n, int(math.ceil(cb - k0)))
            else:
                end = n
            if end <= i:
                end = i + 1
        j = 0
        while i < end:
            if j % 256 == 0:  # exact phasor, step and step ratio at k
                d = k0 + i - ca
                ph = a_ + slope * d + c2 * d * d
                pr = math.cos(ph)
                pi_ = -math.sin(ph)
                st = slope + c2 * (2.0 * d + 1.0)  # c(k+1) - c(k)
                sr = math.cos(st)
                si = -math.sin(st)
                rr = math.cos(2.0 * c2)
                ri = -math.sin(2.0 * c2)
            v = y[i]
            out[i] = complex(v.real * pr - v.imag * pi_, v.real * pi_ + v.imag * pr)
            t = pr * sr - pi_ * si
            pi_ = pr * si + pi_ * sr
            pr = t
            t = sr * rr - si * ri
            si = sr * ri + si * rr
            sr = t
            i += 1
            j += 1


def derotate(y: np.ndarray, k0: int, centres: np.ndarray, phases: np.ndarray, curvature=None) -> np.ndarray:
    """Remove a piecewise-quadratic phase from symbols.

    Parameters
    ----------
    y : ndarray of complex64, shape (N,)
        Symbols k0 .. k0 + N - 1.
    k0 : int
        Symbol index of y[0].
    centres, phases : ndarray of float64, shape (M,)
        Anchor symbol indices (increasing) and the phase to remove there, rad.
    curvature : ndarray of float64, shape (M,), optional
        Second derivative of the phase (rad/symbol^2) between anchor i and i + 1: a quadratic
        through both anchors (a frequency ramp); default 0 (linear interpolation). Beyond the
        first and last anchor the phase continues linearly.

    Returns
    -------
    ndarray of complex64, shape (N,)
    """
    out = np.empty(y.size, np.complex64)
    c = np.zeros(len(centres)) if curvature is None else np.ascontiguousarray(curvature, np.float64)
    _derotate_kernel(np.ascontiguousarray(y, np.complex64), float(k0),
                     np.ascontiguousarray(centres, np.float64), np.ascontiguousarray(phases, np.float64), c,
                     out)  # fmt: skip
    return out


def refine_frequency_mpsk(y: np.ndarray, order: int, f0: float, span: float, oversample: int = 4) -> float:
    """Frequency of an M-PSK burst from its M-th power (non data aided), near f0.

    All symbols of a QPSK (order 4) or 8PSK (order 8) PLFRAME, its π/2-BPSK PLHEADER and pilots
    included, have s^M of one phase, so y^M is a tone at M f plus noise; its periodogram peak
    within f0 +- span is located by a zero-padded FFT and parabolic interpolation.

    Parameters
    ----------
    y : ndarray of complex, shape (N,)
        Symbols (front-end rotation removed or not: f is what remains in y).
    order : int
        M (4 or 8).
    f0, span : float
        Search centre and half-width, cycles per symbol (span < 1 / (2 M)).
    oversample : int
        FFT length / N (rounded up to a power of two).

    Returns
    -------
    float
        Frequency estimate, cycles per symbol.
    """
    z = y.astype(np.complex128)
    z = z**order / np.maximum(np.abs(z), 1e-30) ** (order - 1)  # |y^M| / |y|^(M-1) = |y|
    k = np.arange(z.size)
    z *= np.exp(-2j * np.pi * order * f0 * k)
    nfft = 1 << int(math.ceil(math.log2(max(z.size * oversample, 16))))
    spec = np.abs(np.fft.fft(z, nfft)) ** 2
    fr = np.fft.fftfreq(nfft)  # in cycles/symbol of the M-th power
    sel = np.flatnonzero(np.abs(fr) <= order * span)
    i = int(sel[np.argmax(spec[sel])])
    p0, p1, p2 = spec[(i - 1) % nfft], spec[i], spec[(i + 1) % nfft]
    den = p0 - 2 * p1 + p2
    delta = 0.5 * (p0 - p2) / den if den < 0 else 0.0
    return f0 + (fr[i] + delta / nfft) / order


@nb.njit(cache=True, nogil=True)
def _dd_pll_kernel(y, pts, theta0, omega0, k1, k2, out):  # pragma: no cover - compiled
    th = theta0
    w = omega0
    for i in range(y.size):
        out[i] = th
        c = math.cos(th)
        s = math.sin(th)
        v = y[i]
        rr = v.real * c + v.imag * s  # y exp(-j th)
        ri = v.imag * c - v.real * s
        best = 1e300
        dr = 0.0
        di = 0.0
        for m in range(pts.size):
            er = rr - pts[m].real
            ei = ri - pts[m].imag
            d2 = er * er + ei * ei
            if d2 < best:
                best = d2
                dr = pts[m].real
                di = pts[m].imag
        mag = dr * dr + di * di
        e = (ri * dr - rr * di) / mag if mag > 0 else 0.0  # Im(r conj(d)) / |d|^2
        w += k2 * e
        th += w + k1 * e
    return w


def dd_pll(y: np.ndarray, points: np.ndarray, theta0: float, omega0: float, bandwidth: float,
           damping: float = 1 / math.sqrt(2)) -> np.ndarray:  # fmt: skip
    """Decision-directed second-order phase-locked loop over unit-amplitude symbols.

    The constellation must map onto itself under rotations by multiples of pi/2 (every DVB-S2
    constellation does), so the PL-scrambled symbols can be decided without descrambling.

    Parameters
    ----------
    y : ndarray of complex, shape (N,)
        Symbols scaled to unit average energy.
    points : ndarray of complex, shape (M,)
        Constellation points.
    theta0, omega0 : float
        Phase at y[0] (rad) and frequency (rad/symbol) to start from.
    bandwidth : float
        Loop noise bandwidth B_n T.
    damping : float

    Returns
    -------
    phases : ndarray of float64, shape (N,)
        The phase removed from each symbol, rad.
    omega : float
        The loop's frequency at the end, rad/symbol.
    """
    from modem.sync.timing import loop_gains

    k1, k2 = loop_gains(bandwidth, damping)
    out = np.empty(y.size)
    w = _dd_pll_kernel(np.ascontiguousarray(y, np.complex64), np.ascontiguousarray(points, np.complex128),
                       float(theta0), float(omega0), k1, k2, out)  # fmt: skip
    return out, float(w)
