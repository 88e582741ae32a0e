"""BPSK NRZ-L demodulator front end: carrier NCO, integrate-and-dump, timing and Costas loops.

:class:`BpskDemodulator` turns raw complex samples of a rectangular-pulse BPSK signal (any
integer number of samples per symbol, >= 2) into one complex value per symbol, carrier and
timing corrected. Everything runs in one numba loop over the samples:

* a numerically controlled oscillator (a 32-bit phase accumulator and a 4096-point sine table)
  removes the carrier offset; the frequency starts at the coarse estimate of the acquisition
  (:mod:`modem.prox1.acquisition`);
* the matched filter of a rectangular pulse: the running sum of the last ``sps`` samples
  (integrate-and-dump), divided by ``sps``;
* symbol timing: the strobe instant t_k is a real sample index; the matched filter output at
  t_k is interpolated linearly between the two neighbouring samples, which is exact for the
  integral of a piecewise-constant signal (the matched filter output of NRZ pulses is a
  triangle: linear between its corners, unlike the band-limited pulses a sinc interpolator
  such as :class:`modem.sync.timing.TimingRecovery` assumes). A Gardner detector, normalized
  by its S-curve slope for triangle pulses (-1.5 A^2 per symbol of timing error), drives a
  second-order loop that also estimates the clock offset;
* carrier: a decision-directed Costas detector (Im(y) sign(Re(y)), as
  :func:`modem.sync.costas.phase_error`) on each strobe, normalized by the running amplitude,
  drives a second-order loop whose phase and frequency updates go straight into the NCO.

Loop updates come once per group of L symbols (L * B_L <= 0.05, at most 128: at 2048 kbit/s
the timing loop's 2e-4 of the symbol rate gives L = 128; at the lowest rates, wide loops,
L = 1), with the group's summed errors: within a group the NCO and the timing step are fixed,
so the per-sample work has no feedback chain. At 2 samples per symbol (2048 kbit/s) the
matched filter and the interpolation fold into one expression of four derotated samples
(:func:`_interpolate2_fixed`), and a group's loop errors and statistics are vectorized sums
(:func:`_group_sums`).

Streaming: state is carried across calls and the group schedule depends only on the symbol
count, so any chunking of the input gives identical output; the input is itself processed in
blocks of :data:`BLOCK` samples (the derotated-sample buffers stay in the cache), each checked for
non-finite values just before it is demodulated when asked to (no separate pass over the input).
The BPSK phase ambiguity (pi) remains: the frame or codeword markers resolve it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from modem.sync.costas import loop_gains

# state vector layout (float64); the NCO phase is a 32-bit fraction of a turn
(
    _PHASE,
    _W,
    _ACC_RE,
    _ACC_IM,
    _N,
    _T,
    _NU,
    _PREV_RE,
    _PREV_IM,
    _HAVE_PREV,
    _AMP,
    _LOCK,
    _NSYM,
    _POWER,
    _INV_A,
) = range(15)
_STATE_LEN = 15
# parameter vector layout (float64)
_KC1, _KC2, _KT1, _KT2, _MAX_NU, _ALPHA, _MAX_DW, _AKC1, _AKC2, _AKT1, _AKT2, _PULL, _LT, _LP = range(14)
#: NCO table: 4096 points per turn (phase error below 0.8 mrad).
_NCO_BITS = 12
_NCO_COS = np.cos(2 * np.pi * np.arange(1 << _NCO_BITS) / (1 << _NCO_BITS)).astype(np.float32)
_NCO_SIN = np.sin(2 * np.pi * np.arange(1 << _NCO_BITS) / (1 << _NCO_BITS)).astype(np.float32)
#: Samples per call of the kernel (its derotated-sample buffers stay in the cache), at least
#: the samples kept from one call to the next.
BLOCK = 8192
#: Longest group of symbols between loop updates.
MAX_GROUP = 128
#: A group lasts at most this many loop time constants: L * B_L <= GROUP_BL.
GROUP_BL = 0.05


@nb.njit(cache=True, nogil=True)
def _derotate(x, phase, inc, z_re, z_im):
    """z[k] = x[k] exp(-2 pi j ph_k / 2**32), ph_k = phase + k inc (mod 2**32), k < len(z_re).

    x : float32 (2 n,)  samples as interleaved (re, im). The phasor comes from the NCO table
    at the top 12 bits of the 32-bit phase: a function of the phase alone, so of the sample
    index whatever the chunking. (A polynomial sine and cosine measured slower here than
    the table lookups, which stay in the L1 cache.)
    """
    mask32 = np.int64(0xFFFFFFFF)
    for k in range(z_re.shape[0]):
        ph = (phase + k * inc) & mask32
        idx = (ph >> 20) & 4095
        c = _NCO_COS[idx]
        sn = _NCO_SIN[idx]
        xr = x[2 * k]
        xi = x[2 * k + 1]
        z_re[k] = xr * c + xi * sn
        z_im[k] = xi * c - xr * sn


@nb.njit(cache=True, nogil=True)
def _interpolate2(z_re, z_im, off, t, step, lg, gyr, gyi, gmr, gmi):
    """Strobes (gy) and mid-points (gm) of lg symbols at sps = 2, each with its own fraction.

    t : sample index (real) of the first strobe, at buffer index floor(t) + off; step :
    samples per symbol (the fraction is computed from t alone, so it does not depend on how
    the input was chunked). The matched filter output m[i] = (z[i] + z[i-1]) / 2 interpolated
    linearly at i + mu is ((1 - mu) z[i-1] + z[i] + mu z[i+1]) / 2; the mid-point is the same
    one sample earlier.
    """
    h = np.float32(0.5)
    for j in range(lg):
        tj = t + j * step
        kj = np.int64(math.floor(tj))
        mu = np.float32(tj - kj)
        nu = np.float32(1.0) - mu
        i = kj + off
        gyr[j] = h * (nu * z_re[i - 1] + z_re[i] + mu * z_re[i + 1])
        gyi[j] = h * (nu * z_im[i - 1] + z_im[i] + mu * z_im[i + 1])
        gmr[j] = h * (nu * z_re[i - 2] + z_re[i - 1] + mu * z_re[i])
        gmi[j] = h * (nu * z_im[i - 2] + z_im[i - 1] + mu * z_im[i])


@nb.njit(cache=True, nogil=True)
def _interpolate2_fixed(z_re, z_im, k0, mu, lg, gyr, gyi, gmr, gmi):
    """As :func:`_interpolate2` with one fraction mu for the whole group (the common case).

    Strobe j at buffer index k0 + 2 j + mu. Real and imaginary parts in separate loops over a
    slice of the group's samples: loops LLVM vectorizes.
    """
    h = np.float32(0.5)
    mu = np.float32(mu)
    nu = np.float32(1.0) - mu
    zr = z_re[k0 - 2 : k0 + 2 * lg]
    zi = z_im[k0 - 2 : k0 + 2 * lg]
    for j in range(lg):
        i = 2 * j + 2
        gyr[j] = h * (nu * zr[i - 1] + zr[i] + mu * zr[i + 1])
        gmr[j] = h * (nu * zr[i - 2] + zr[i - 1] + mu * zr[i])
    for j in range(lg):
        i = 2 * j + 2
        gyi[j] = h * (nu * zi[i - 1] + zi[i] + mu * zi[i + 1])
        gmi[j] = h * (nu * zi[i - 2] + zi[i - 1] + mu * zi[i])


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _group_sums(gyr, gyi, gmr, gmi, lg, prev_re, prev_im, have_prev):
    """Summed loop errors and statistics of a group of lg symbols (gy strobes, gm mid-points).

    Returns (Gardner error sum, Costas error sum, sum |Re y|, sum (Re^2 - Im^2), sum |y|^2).
    The sums may be reassociated (vectorized): they depend only on the group's values, so any
    chunking of the input still gives identical results.
    """
    se_t = 0.0
    if have_prev:
        se_t = (prev_re - gyr[0]) * gmr[0] + (prev_im - gyi[0]) * gmi[0]
    for j in range(1, lg):
        se_t += np.float64(gyr[j - 1] - gyr[j]) * gmr[j] + np.float64(gyi[j - 1] - gyi[j]) * gmi[j]
    se_c = 0.0
    s_abs = 0.0
    s_lock = 0.0
    s_pow = 0.0
    for j in range(lg):
        yr = np.float64(gyr[j])
        yi = np.float64(gyi[j])
        se_c += yi * math.copysign(1.0, yr)  # decision-directed BPSK Costas error
        s_abs += abs(yr)
        s_lock += yr * yr - yi * yi
        s_pow += yr * yr + yi * yi
    return se_t, se_c, s_abs, s_lock, s_pow


@nb.njit(cache=True, nogil=True)
def _demod_kernel(x, sps, keep, z_re, z_im, m_re, m_im, st, prm, out_sym, out_pos, out_freq):
    """Process samples x; returns the number of symbols written to out_sym / out_pos / out_freq.

    z_*, m_* : float32 (keep + len(x),)  derotated samples and matched filter outputs; entry i
        is absolute sample n_base - keep + i (n_base: the index of x[0]); the first ``keep``
        entries hold the previous call's last samples, and the last ``keep`` are left for the
        next call.

    Symbols are taken in groups of L (prm[_LP] while pulling in, prm[_LT] after); the loops
    are updated once per group with the group's summed errors (per-symbol gains), so the
    samples of a group are derotated and the group's strobes interpolated with fixed loop
    parameters: loops of independent iterations, no per-sample feedback chain.
    """
    mask32 = np.int64(0xFFFFFFFF)
    to_units = 4294967296.0 / (2.0 * math.pi)
    inv_two_pi = 1.0 / (2.0 * math.pi)
    phase = np.int64(st[_PHASE])
    w = st[_W]
    inc = np.int64(w * to_units)
    acc_re = st[_ACC_RE]
    acc_im = st[_ACC_IM]
    n_base = np.int64(st[_N])
    t = st[_T]
    nu = st[_NU]
    prev_re = st[_PREV_RE]
    prev_im = st[_PREV_IM]
    have_prev = st[_HAVE_PREV] != 0.0
    amp = st[_AMP]
    lock = st[_LOCK]
    power = st[_POWER]
    inv_a = st[_INV_A]
    nsym = np.int64(st[_NSYM])
    max_nu = prm[_MAX_NU]
    alpha = prm[_ALPHA]
    max_dw = prm[_MAX_DW]
    pull = np.int64(prm[_PULL])
    inv_sps = np.float32(1.0 / sps)
    want_pos = out_pos.shape[0] > 0
    nx = x.shape[0] // 2  # x: the samples as interleaved float32 (re, im)
    off = keep - n_base  # buffer index of absolute sample n: n + off
    n_end = n_base + nx
    n_done = n_base
    count = 0
    lg_track = np.int64(prm[_LT])
    lg_pull = np.int64(prm[_LP])
    a_track = 1.0 - (1.0 - alpha) ** lg_track
    a_pull = 1.0 - (1.0 - alpha) ** lg_pull
    gyr = np.empty(MAX_GROUP, dtype=np.float32)
    gyi = np.empty(MAX_GROUP, dtype=np.float32)
    gmr = np.empty(MAX_GROUP, dtype=np.float32)
    gmi = np.empty(MAX_GROUP, dtype=np.float32)
    while True:
        if nsym < pull:
            lg = min(np.int64(prm[_LP]), pull - nsym)
            kc1 = prm[_AKC1]
            kc2 = prm[_AKC2]
            kt1 = prm[_AKT1]
            kt2 = prm[_AKT2]
        else:
            lg = np.int64(prm[_LT])
            kc1 = prm[_KC1]
            kc2 = prm[_KC2]
            kt1 = prm[_KT1]
            kt2 = prm[_KT2]
        step = sps * (1.0 + nu)
        n_need = np.int64(math.floor(t + (lg - 1) * step)) + 1  # last sample the group needs
        upto = min(n_need + 1, n_end)
        if upto > n_done:
            # derotate with the NCO as it stands (independent per sample)
            i0 = n_done + off
            cnt = upto - n_done
            j0 = 2 * (n_done - n_base)
            _derotate(x[j0 : j0 + 2 * cnt], phase, inc, z_re[i0 : i0 + cnt], z_im[i0 : i0 + cnt])
            phase = (phase + cnt * inc) & mask32
            # integrate and dump over sps samples (sps = 2: folded into the interpolation below)
            if sps != 2:
                for k in range(cnt):
                    i = i0 + k
                    acc_re += np.float64(z_re[i]) - np.float64(z_re[i - sps])
                    acc_im += np.float64(z_im[i]) - np.float64(z_im[i - sps])
                    m_re[i] = acc_re * inv_sps
                    m_im[i] = acc_im * inv_sps
            n_done = upto
        if n_need >= n_end:
            break  # the group's samples have not all arrived
        # the group's strobes and mid-points (linear interpolation of the matched filter); the
        # mid-point is taken sps/2 samples before the strobe with the strobe's fraction, i.e.
        # (sps/2) nu samples off the exact half period: at most 0.0025 symbol, nothing for a
        # timing detector, and one interpolation position instead of two
        hs = sps // 2
        kt = np.int64(math.floor(t))
        frac = t - kt
        drift = (lg - 1) * (step - sps)  # how far the strobes' fraction moves over the group
        fixed = -0.02 < drift < 0.02 and 0.0 <= frac + drift < 1.0
        f_out = np.float32(w * inv_two_pi)
        if sps == 2 and fixed:
            _interpolate2_fixed(z_re, z_im, kt + off, frac + 0.5 * drift, lg, gyr, gyi, gmr, gmi)
        elif sps == 2:
            # matched filter m[i] = (z[i] + z[i-1]) / 2 and its interpolation in one step:
            # y = (1 - mu) m[i] + mu m[i+1] = ((1 - mu) z[i-1] + z[i] + mu z[i+1]) / 2, and the
            # mid-point the same one sample earlier
            _interpolate2(z_re, z_im, off, t, step, lg, gyr, gyi, gmr, gmi)
        elif fixed:
            # the fraction is the same for the whole group (to 0.01 sample): fixed-stride
            # interpolation, no per-symbol rounding
            mu = np.float32(frac + 0.5 * drift)
            i0 = kt + off
            for j in range(lg):
                i = i0 + j * sps
                a0 = m_re[i]
                b0 = m_im[i]
                gyr[j] = a0 + mu * (m_re[i + 1] - a0)
                gyi[j] = b0 + mu * (m_im[i + 1] - b0)
                a1 = m_re[i - hs]
                b1 = m_im[i - hs]
                gmr[j] = a1 + mu * (m_re[i - hs + 1] - a1)
                gmi[j] = b1 + mu * (m_im[i - hs + 1] - b1)
        else:
            for j in range(lg):
                tj = t + j * step
                k0 = np.int64(math.floor(tj))
                mu = np.float32(tj - k0)
                i = k0 + off
                a0 = m_re[i]
                b0 = m_im[i]
                gyr[j] = a0 + mu * (m_re[i + 1] - a0)
                gyi[j] = b0 + mu * (m_im[i + 1] - b0)
                i -= hs
                a1 = m_re[i]
                b1 = m_im[i]
                gmr[j] = a1 + mu * (m_re[i + 1] - a1)
                gmi[j] = b1 + mu * (m_im[i + 1] - b1)
        se_t, se_c, s_abs, s_lock, s_pow = _group_sums(gyr, gyi, gmr, gmi, lg, prev_re, prev_im, have_prev)
        if count + lg > out_sym.shape[0] or count + lg > out_freq.shape[0]:
            raise ValueError("demodulator output buffers too small")
        for j in range(lg):
            out_sym[count + j] = complex(gyr[j], gyi[j])
            out_freq[count + j] = f_out
        if want_pos:
            for j in range(lg):
                out_pos[count + j] = t + j * step
        prev_re = np.float64(gyr[lg - 1])
        prev_im = np.float64(gyi[lg - 1])
        have_prev = True
        count += lg
        nsym += lg
        # amplitude and lock estimates (exponential averages, lg symbols at once)
        if lg == lg_track:
            a_l = a_track
        elif lg == lg_pull:
            a_l = a_pull
        else:
            a_l = 1.0 - (1.0 - alpha) ** lg
        amp += a_l * (s_abs / lg - amp)
        lock += a_l * (s_lock / lg - lock)
        power += a_l * (s_pow / lg - power)
        inv_a = 1.0 / (amp if amp > 1e-30 else 1e-30)
        # timing loop (Gardner, normalized by its slope -1.5 A^2; positive = late)
        e_t = se_t * (-inv_a * inv_a / 1.5)
        nu -= kt2 * e_t
        if nu > max_nu:
            nu = max_nu
        elif nu < -max_nu:
            nu = -max_nu
        adj = kt1 * e_t
        if adj > 0.5:
            adj = 0.5
        elif adj < -0.5:
            adj = -0.5
        t += lg * step - sps * adj
        # carrier loop (Costas): frequency and phase of the NCO for the samples to come
        e_c = se_c * inv_a
        w += kc2 * e_c / sps
        if w > max_dw:
            w = max_dw
        elif w < -max_dw:
            w = -max_dw
        inc = np.int64(w * to_units)
        phase = (phase + np.int64(kc1 * e_c * to_units)) & mask32
    st[_PHASE] = phase
    st[_W] = w
    st[_ACC_RE] = acc_re
    st[_ACC_IM] = acc_im
    st[_N] = n_end
    st[_T] = t
    st[_NU] = nu
    st[_PREV_RE] = prev_re
    st[_PREV_IM] = prev_im
    st[_HAVE_PREV] = 1.0 if have_prev else 0.0
    st[_AMP] = amp
    st[_LOCK] = lock
    st[_POWER] = power
    st[_INV_A] = inv_a
    st[_NSYM] = nsym
    return count


@nb.njit(cache=True, nogil=True)
def _demod_blocks(x, sps, keep, work, st, prm, out_sym, out_pos, out_freq, check):
    """:func:`_demod_kernel` over x in blocks of at most work.shape[1] - keep samples.

    work : float32 (4, keep + block)  z_re, z_im, m_re, m_im: the previous samples' last
        ``keep`` entries, then room for a block (small buffers that stay in the cache; the
        kernel gives the same output for any split of its input).
    check : bool
        Check each block for non-finite values just before demodulating it (while it is in
        the cache: no separate pass over the input).

    Returns the symbol count, or -1 - i for a non-finite sample i (the blocks before it are
    demodulated: the caller restores the state).
    """
    n = x.shape[0] // 2
    block = work.shape[1] - keep
    u = x.view(np.uint32)
    count = 0
    for lo in range(0, n, block):
        m = min(block, n - lo)
        if check:
            bad = _first_nonfinite_bits(u, 2 * lo, 2 * (lo + m))
            if bad >= 0:
                return -1 - bad // 2
        e = keep + m
        count += _demod_kernel(
            x[2 * lo : 2 * (lo + m)], sps, keep, work[0][:e], work[1][:e], work[2][:e], work[3][:e], st, prm,
            out_sym[count:], out_pos[count:], out_freq[count:],
        )  # fmt: skip
        for r in range(4):
            row = work[r]
            for i in range(keep):  # ascending: safe when the ranges overlap (m < keep)
                row[i] = row[m + i]
    return count


@nb.njit(cache=True, nogil=True)
def _first_nonfinite_bits(u, lo, hi):
    """Index of the first non-finite float32 among u[lo:hi] (their bits as uint32), or -1.

    Non-finite = all exponent bits set; an OR of integer flags first (vectorized).
    """
    exp = np.uint32(0x7F800000)
    bad = False
    for i in range(lo, hi):
        bad |= (u[i] & exp) == exp
    if not bad:
        return -1
    for i in range(lo, hi):
        if (u[i] & exp) == exp:
            return i
    return -1


def first_nonfinite(x: np.ndarray) -> int:
    """Index of the first sample of x with a non-finite part, or -1.

    Parameters
    ----------
    x : ndarray of complex64, shape (n,), C-contiguous

    Returns
    -------
    int
        Sample index, or -1 when every sample is finite.
    """
    if not x.size or _all_finite(x.view(np.float32)):
        return -1
    return int(np.flatnonzero(~np.isfinite(x))[0])


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _all_finite(v) -> bool:
    """Whether every value of v is finite.

    v * 0 is 0 for finite v and NaN otherwise, and a sum of those is 0 only when all are (one
    vectorized pass, no temporary array).
    """
    acc = np.float32(0.0)
    zero = np.float32(0.0)
    for i in range(v.shape[0]):
        acc += v[i] * zero
    return acc == 0.0


class DemodOutput(NamedTuple):
    """Output of :meth:`BpskDemodulator.process` (see there)."""

    symbols: np.ndarray
    positions: np.ndarray
    frequencies: np.ndarray


class BpskDemodulator:
    """Streaming BPSK NRZ-L demodulator: raw samples in, carrier- and timing-corrected symbols out.

    Parameters
    ----------
    sps : int
        Nominal samples per symbol of the input, 2 .. 65536.
    frequency : float
        Initial carrier frequency offset, cycles per sample (from the coarse acquisition).
    carrier_bandwidth : float
        Costas loop noise bandwidth B_L T while tracking, normalized to the symbol rate,
        (0, 0.1].
    timing_bandwidth : float
        Timing loop noise bandwidth while tracking, normalized to the symbol rate, (0, 0.1].
        The matched filter output of NRZ pulses is a triangle, so a timing error of tau
        symbols costs a fraction |tau| of the amplitude (not tau^2 as for band-limited
        pulses): keep it narrow (default 2e-4: about 0.02 symbol rms jitter at Es/N0 = -1 dB).
    pull_in : int
        Symbols after (re)start during which both loops run ``pull_in_factor`` times wider
        (faster pull-in), 0 .. 2**31.
    pull_in_factor : float
        Bandwidth factor during pull-in, [1, 100] (capped at 0.1 of the symbol rate).
    damping : float
        Damping of both loops, (0, 4].
    max_clock_offset : float
        Largest clock offset (fraction) the timing loop may settle on, (0, 0.05].
    max_frequency : float
        Limit of the carrier frequency estimate, +- cycles per sample, (0, 0.5): the search
        range with some margin (a loop wandering in noise stays inside it).
    amplitude : float
        Initial estimate of the symbol amplitude (> 0).
    smoothing : float
        Weight of each symbol in the running amplitude and lock estimates, (0, 1].

    Attributes
    ----------
    samples_in, symbols_out : int
        Counters since construction or :meth:`reset`.
    """

    def __init__(
        self,
        sps: int,
        frequency: float = 0.0,
        carrier_bandwidth: float = 0.005,
        timing_bandwidth: float = 2e-4,
        pull_in: int = 4096,
        pull_in_factor: float = 8.0,
        damping: float = 0.707,
        max_clock_offset: float = 0.005,
        max_frequency: float = 0.25,
        amplitude: float = 1.0,
        smoothing: float = 1.0 / 256,
    ):
        if isinstance(sps, bool) or not isinstance(sps, int | np.integer) or not 2 <= sps <= 65536:
            raise ValueError(f"sps must be an integer in 2..65536 samples per symbol; got {sps!r}")
        for name, value, hi in (
            ("carrier_bandwidth", carrier_bandwidth, 0.1),
            ("timing_bandwidth", timing_bandwidth, 0.1),
            ("damping", damping, 4.0),
            ("max_clock_offset", max_clock_offset, 0.05),
            ("max_frequency", max_frequency, 0.4999),
            ("smoothing", smoothing, 1.0),
        ):
            if not 0 < value <= hi:
                raise ValueError(f"{name} must be in (0, {hi}]; got {value!r}")
        if not abs(frequency) <= max_frequency:
            raise ValueError(
                f"frequency must be within +-max_frequency = {max_frequency} cycles per sample; "
                f"got {frequency!r}"
            )
        if (
            isinstance(pull_in, bool)
            or not isinstance(pull_in, int | np.integer)
            or not 0 <= pull_in <= 2**31
        ):
            raise ValueError(f"pull_in must be an integer in 0..2**31 symbols; got {pull_in!r}")
        if not 1 <= pull_in_factor <= 100:
            raise ValueError(f"pull_in_factor must be in [1, 100]; got {pull_in_factor!r}")
        if not amplitude > 0:
            raise ValueError(f"amplitude must be > 0; got {amplitude!r}")
        self.sps = int(sps)
        kc1, kc2 = loop_gains(carrier_bandwidth, damping)
        kt1, kt2 = loop_gains(timing_bandwidth, damping)
        wide_c = min(0.1, carrier_bandwidth * pull_in_factor)
        wide_t = min(0.1, timing_bandwidth * pull_in_factor)
        akc1, akc2 = loop_gains(wide_c, damping)
        akt1, akt2 = loop_gains(wide_t, damping)
        self.group = int(min(MAX_GROUP, max(1, GROUP_BL // max(carrier_bandwidth, timing_bandwidth))))
        self.pull_group = int(min(MAX_GROUP, max(1, GROUP_BL // max(wide_c, wide_t))))
        self._prm = np.array(
            [kc1, kc2, kt1, kt2, max_clock_offset, smoothing, 2 * np.pi * max_frequency,
             akc1, akc2, akt1, akt2, float(pull_in), float(self.group), float(self.pull_group)],
            dtype=np.float64,
        )  # fmt: skip
        self._init = (float(frequency), float(amplitude))
        # samples kept from one call to the next: a group's span plus a symbol and the boxcar
        self._keep = int(math.ceil((MAX_GROUP + 2) * self.sps * (1 + max_clock_offset))) + self.sps + 8
        self.reset()

    def reset(self, frequency: float | None = None) -> None:
        """Restart at sample 0 (optionally with a new initial frequency, cycles per sample)."""
        f, amp = self._init
        if frequency is not None:
            fmax = self._prm[_MAX_DW] / (2 * np.pi)
            if not abs(frequency) <= fmax:
                raise ValueError(
                    f"frequency must be within +-max_frequency = {fmax:g} cycles per sample; "
                    f"got {frequency!r}"
                )
            f = float(frequency)
        w = 2 * np.pi * f
        st = np.zeros(_STATE_LEN, dtype=np.float64)
        st[_W] = w
        st[_T] = self.sps - 1.0  # first full integrate-and-dump window
        st[_AMP] = amp
        st[_INV_A] = 1.0 / amp
        self._state = st
        # z_re, z_im, m_re, m_im: the last ``keep`` samples, then room for a block
        self._work = np.zeros((4, self._keep + max(BLOCK, self._keep)), dtype=np.float32)
        self.symbols_out = 0

    def repull(self) -> None:
        """Pull in again.

        Forget the clock offset estimate and run both loops wide for the next ``pull_in``
        symbols (carrier frequency and phase are kept): for a receiver that finds its symbols
        unusable after a fade, during which the loops wandered in noise.
        """
        self._state[_NU] = 0.0
        self._state[_NSYM] = 0.0

    @property
    def samples_in(self) -> int:
        """Samples processed since the last reset."""
        return int(self._state[_N])

    @property
    def frequency(self) -> float:
        """Carrier frequency estimate, cycles per sample."""
        return float(self._state[_W] / (2 * np.pi))

    @property
    def clock_offset(self) -> float:
        """Clock offset estimate: receiver samples per symbol / nominal - 1."""
        return float(self._state[_NU])

    @property
    def amplitude(self) -> float:
        """Running estimate of |Re| of the symbols (the amplitude at high SNR)."""
        return float(self._state[_AMP])

    @property
    def lock(self) -> float:
        """Lock indicator: running mean of Re(y^2) over the running mean of |y|^2.

        About Es/N0 / (1 + Es/N0) when locked, near 0 unlocked.
        """
        p = self._state[_POWER]
        return float(self._state[_LOCK] / p) if p > 0 else 0.0

    @property
    def next_position(self) -> float:
        """Sample index (since reset) of the next strobe instant."""
        return float(self._state[_T])

    def process(self, samples, positions: bool = True) -> DemodOutput:
        """Symbols, their strobe instants and the carrier frequency for the next samples.

        Parameters
        ----------
        samples : array_like of complex, shape (n,)
            Raw samples, finite.
        positions : bool
            Return the strobe instants (False: an empty positions array, a little faster).

        Returns
        -------
        DemodOutput
            symbols (complex64: matched filter output / sps, carrier corrected), positions
            (float64: sample index since reset of each strobe instant) and frequencies
            (float32: the NCO frequency at each strobe, cycles per sample).
        """
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"samples must be 1-D; got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.complex64)
        i = first_nonfinite(x)
        if i >= 0:
            raise ValueError(
                f"samples must be finite; got {x[i]} at index {i} (stream sample {self.samples_in + i})"
            )
        return self._process(x, positions)

    def capacity(self, n: int) -> int:
        """Most symbols that n more samples can give (the size of the output buffers)."""
        # a group of L strobes advances by at least L (1 - max clock offset) - 0.5 symbols;
        # plus the symbols of samples kept from earlier calls and a group that ends short (the
        # kernel refuses to write past the buffers in any case)
        lmin = min(self.group, self.pull_group)
        return int(n / (self.sps * (1.0 - self._prm[_MAX_NU] - 0.5 / lmin))) + 4 * MAX_GROUP + 16

    def _process(self, x: np.ndarray, positions: bool) -> DemodOutput:
        """:meth:`process` for input already checked: complex64, 1-D, C-contiguous, finite."""
        cap = self.capacity(x.size)
        sym = np.empty(cap, dtype=np.complex64)
        pos = np.empty(cap if positions else 0, dtype=np.float64)
        freq = np.empty(cap, dtype=np.float32)
        k = self._process_into(x, sym, freq, pos)
        return DemodOutput(sym[:k], pos[:k] if positions else pos, freq[:k])

    def _process_into(
        self,
        x: np.ndarray,
        sym: np.ndarray,
        freq: np.ndarray,
        pos: np.ndarray | None = None,
        check: bool = False,
    ) -> int:
        """Symbols of x (complex64, 1-D, C-contiguous) written in place; returns their count.

        sym (complex64) and freq (float32) hold at least :meth:`capacity` (x.size) values; pos
        (float64) as many, or None (no positions). x must be finite, unless ``check``: then a
        non-finite sample i gives -1 - i and leaves the demodulator as it was.
        """
        cap = self.capacity(x.size)
        if sym.size < cap or freq.size < cap or (pos is not None and pos.size and pos.size < cap):
            raise ValueError(f"output buffers must hold capacity({x.size}) = {cap} symbols")
        if pos is None:
            pos = np.empty(0, dtype=np.float64)
        keep = self._keep
        if check:
            saved = (self._state.copy(), self._work[:, :keep].copy())
        xf = x.view(np.float32)
        k = _demod_blocks(xf, self.sps, keep, self._work, self._state, self._prm, sym, pos, freq, check)
        if k < 0:
            self._state[:] = saved[0]
            self._work[:, :keep] = saved[1]
            return k
        self.symbols_out += k
        return k

    def __call__(self, samples) -> np.ndarray:
        """Symbols for the next chunk of samples (see :meth:`process`)."""
        return self.process(samples).symbols
