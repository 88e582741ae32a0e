"""Symbol timing recovery for linearly modulated signals: Gardner detector, polyphase interpolator.

:class:`TimingRecovery` takes a matched-filtered complex baseband stream at an integer number of
samples per symbol (>= 2) and returns one complex sample per symbol, taken at the estimated
symbol instants. It works for any PSK or APSK-like signal (BPSK, pi/2-BPSK, QPSK, 8PSK,
16APSK, 32APSK ...) because its timing error detector needs neither decisions nor the carrier
phase.

Loop (per symbol k, instants t_k in input samples):

* interpolation: y(t) at any real instant t by a polyphase bank of ``phases`` Kaiser-windowed sinc
  filters of ``taps`` taps each (the phase nearest to frac(t); 256 phases by default, so the
  instant is quantized to 1/256 sample);
* Gardner timing error detector (F. M. Gardner, IEEE Trans. Commun. 34(5), 1986):
  e_k = Re{(y(t_{k-1}) - y(t_k)) conj(y(t_k - T/2))}, divided by its S-curve slope at zero
  error for raised-cosine pulses of roll-off ``rolloff`` and unit symbol energy, so that e_k
  estimates the timing error in symbols (positive: sampling late);
* second-order loop (proportional + integral, standard gains for the noise bandwidth ``B_n T`` =
  ``loop_bandwidth`` and damping ``damping``), updated once per block of :data:`BLOCK` = 8
  symbols with the sum E of their errors (taken on every :data:`MID_EVERY`-th symbol, weighted
  accordingly; with ``rrc_span`` the mid-points use a matched filter cut to :data:`MID_SPAN`
  symbols): nu <- nu - K2 E, and the next block starts at
  t + 8 sps (1 + nu) - sps K1 E; within a block the instants are t + k sps (1 + nu). (The
  instants of a block do not depend on each other's interpolations, so the 16 interpolations of
  a block run in parallel on the CPU; the update delay of a few symbols is immaterial for
  B_n T <= 0.01.) nu estimates the clock offset, the receiver's sample
  period error as a fraction (+1e-4: the receiver takes 100 ppm more samples per symbol than
  nominal); it is clamped to +-``max_clock_offset``.

The loop's gains assume an input of about unit power (use :class:`~modem.sync.agc.Agc` in
front); at low SNR the signal's share of that power, and with it the effective bandwidth, is
smaller. A second-order loop follows a constant clock offset with no steady-state timing error.

Streaming: each symbol is produced as soon as the samples its interpolation needs have arrived
(``taps // 2`` samples past its instant, or half the matched filter with ``rrc_span``); the
state is carried across calls, so any chunking gives bit-identical symbols and positions.
Positions are absolute input sample indices (float64).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba as nb
import numpy as np

from modem.sync._checks import as_complex64, check_int, check_positive


@lru_cache(maxsize=16)
def interpolator_bank(taps: int = 12, phases: int = 256, beta: float = 6.0) -> np.ndarray:
    """Polyphase bank of Kaiser-windowed sinc fractional-delay interpolators.

    Parameters
    ----------
    taps : int
        Taps per phase, even, >= 4.
    phases : int
        Fractional positions per sample, >= 2.
    beta : float
        Kaiser window parameter.

    Returns
    -------
    ndarray of float32, shape (phases + 1, taps)
        Row p interpolates at mu = p / phases: y(n + mu) = sum_j bank[p, j] x[n - taps/2 + 1 + j].
        Each row sums to 1. Read-only, cached.
    """
    mu = np.arange(phases + 1)[:, None] / phases
    d = np.arange(taps)[None, :] - taps // 2 + 1  # sample offsets relative to n
    u = mu - d  # distance of the instant from each sample
    w = np.i0(beta * np.sqrt(np.clip(1.0 - (u / (taps / 2)) ** 2, 0.0, None))) / np.i0(beta)
    h = np.sinc(u) * w
    h /= h.sum(axis=1, keepdims=True)
    out = h.astype(np.float32)
    out.setflags(write=False)
    return out


def _raised_cosine(t: np.ndarray, rolloff: float) -> np.ndarray:
    """Raised-cosine pulse at t (symbols), p(0) = 1."""
    a = rolloff
    den = 1.0 - (2.0 * a * t) ** 2
    sing = np.abs(den) < 1e-10
    out = np.sinc(t) * np.cos(np.pi * a * t) / np.where(sing, 1.0, den)
    return np.where(sing, (np.pi / 4) * np.sinc(1.0 / (2.0 * a)), out)


@lru_cache(maxsize=64)
def gardner_slope(rolloff: float) -> float:
    """Slope dS/dtau at tau = 0 of the Gardner detector's S-curve (see module doc).

    For raised-cosine pulses of roll-off ``rolloff`` (the end-to-end pulse after a matched RRC
    filter), independent zero-mean symbols of unit energy, tau in symbols. Negative: sampling late
    gives a negative mean output.
    """
    m = np.arange(-60, 61)

    def s(tau):
        p = lambda t: _raised_cosine(t, rolloff)  # noqa: E731
        return float(np.sum((p(tau - 1 - m) - p(tau - m)) * p(tau - 0.5 - m)))

    h = 1e-4
    return (s(h) - s(-h)) / (2 * h)


def loop_gains(loop_bandwidth: float, damping: float) -> tuple[float, float]:
    """Proportional and integral gains (K1, K2) of a second-order loop with unit detector and NCO gain.

    theta = B_n T / (zeta + 1 / (4 zeta)); K1 = 4 zeta theta / D, K2 = 4 theta^2 / D with
    D = 1 + 2 zeta theta + theta^2 (the usual discrete-time PI loop design).
    """
    theta = loop_bandwidth / (damping + 1.0 / (4.0 * damping))
    d = 1.0 + 2.0 * damping * theta + theta * theta
    return 4.0 * damping * theta / d, 4.0 * theta * theta / d


#: Symbols per loop update: the instants of a block follow from the loop state at its start, so
#: the interpolations of a block do not wait for each other (the CPU overlaps them).
BLOCK = 8
#: Span of the matched filter at the detector's mid-points, symbols (with ``rrc_span``).
MID_SPAN = 8
#: The detector uses every MID_EVERY-th symbol (its error counted MID_EVERY times: the loop's gain
#: is unchanged). 2 halves the mid-points' cost but triples the clock estimate's jitter at 20 dB
#: (self-noise) and costs 0.2 dB of MER there: every symbol is used.
MID_EVERY = 1
#: Symbols the detector waits for before it drives the loop (its power normalization settles:
#: the stream may start with silence or a pulse ramping up).
WARM_UP = 64
#: Largest normalized detector output per symbol (4x the typical peak); a burst of large errors
#: (a gain step, an impulse) cannot wind the clock estimate off.
ERROR_CLIP = 4.0
#: Time constant of the detector's power normalization, symbols.
POWER_TIME_CONSTANT = 256.0


@lru_cache(maxsize=16)
def rrc_bank(rolloff: float, sps: int, span: int, phases: int = 256) -> np.ndarray:
    """Polyphase bank of the unit-energy RRC matched filter at fractional positions.

    Row p evaluates the filter centred at n + mu, mu = p / phases, from the samples
    n - D + 1 .. n + D (D = span * sps / 2): bank[p, j] = h((j - D + 1 - mu) / sps) / norm with h the
    RRC pulse (EN 302 307-1 §5.6) and norm the root energy of its taps at integer offsets
    (``modem.dvbs2.pulse.rrc_taps``), taps with |offset| >= D set to zero.

    Returns
    -------
    ndarray of float32, shape (phases + 1, 2 D)
    """
    from modem.dvbs2.pulse import rrc_taps

    d = span * sps // 2
    ref = rrc_taps(rolloff, sps, span)  # integer offsets -D .. D, unit energy
    norm = np.sqrt(np.sum(_rrc(np.arange(-d, d + 1) / sps, rolloff) ** 2))
    assert np.allclose(_rrc(np.arange(-d, d + 1) / sps, rolloff) / norm, ref)
    mu = np.arange(phases + 1)[:, None] / phases
    off = np.arange(2 * d)[None, :] - d + 1
    u = off - mu
    h = np.where(np.abs(u) < d, _rrc(u / sps, rolloff) / norm, 0.0)
    out = h.astype(np.float32)
    out.setflags(write=False)
    return out


def _rrc(t: np.ndarray, a: float) -> np.ndarray:
    """Root-raised-cosine pulse at t (symbols), unnormalized (same formula as modem.dvbs2.pulse)."""
    t = np.asarray(t, dtype=np.float64)
    out = np.empty_like(t)
    zero = np.isclose(t, 0.0)
    sing = np.isclose(np.abs(4.0 * a * t), 1.0)
    reg = ~(zero | sing)
    tr = t[reg]
    out[reg] = (np.sin(np.pi * tr * (1 - a)) + 4 * a * tr * np.cos(np.pi * tr * (1 + a))) / (
        np.pi * tr * (1 - (4 * a * tr) ** 2)
    )
    out[zero] = 1.0 - a + 4.0 * a / np.pi
    out[sing] = (a / np.sqrt(2.0)) * (
        (1 + 2 / np.pi) * np.sin(np.pi / (4 * a)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * a))
    )
    return out


@nb.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _interp(bf, j0, bank, ph, ntaps):  # pragma: no cover - compiled
    """sum_j bank[ph, j] x[j], j < ntaps, over complex samples stored as float32 pairs from bf[j0].

    (Reassociation lets the compiler vectorize the sums; their order depends only on ntaps, not
    on the data or its alignment, so the result is the same for any chunking.)
    """
    x = bf[j0 : j0 + 2 * ntaps]
    h = bank[ph]
    ar = np.float32(0.0)
    ai = np.float32(0.0)
    for j in range(ntaps):
        ar += h[j] * x[2 * j]
        ai += h[j] * x[2 * j + 1]
    return ar, ai


@nb.njit(cache=True, nogil=True)
def _timing_kernel(bf, base, bank, lo, ahead, mbank, mlo, sps, state, gains, inv_kd, max_dev, out_sym,
                   out_pos):  # pragma: no cover  # fmt: skip
    """Gardner loop over the samples bf (float32 re/im pairs; sample 0 is absolute index ``base``).

    A symbol at instant t (n = floor(t), mu = t - n) is interpolated from samples n + lo .. n + lo +
    ntaps - 1 with bank row round(mu * phases); it is produced once sample n + ahead is in. The
    mid-points between symbols (for the detector only) use mbank, from n + mlo on. The loop is
    updated after each block of BLOCK symbols. Returns the number of symbols written.

    state = [t0 (block start instant), nu, b (symbols done in the block), error sum,
             prev_re, prev_im, have_prev, power, symbols seen by the power average,
             symbols since reset]; gains = [k1, k2 while settling, k1, k2, settling symbols]
    """
    nph = bank.shape[0] - 1
    ntaps = bank.shape[1]
    mtaps = mbank.shape[1]
    last = base + bf.size // 2 - 1  # last absolute sample index available
    t0 = state[0]
    nu = state[1]
    b = int(state[2])
    esum = state[3]
    pr = np.float32(state[4])
    pi_ = np.float32(state[5])
    have_prev = state[6] != 0.0
    pw = state[7]
    seen = state[8]
    nsym = state[9]
    count = 0
    per = sps * (1.0 + nu)
    beta = 1.0 / POWER_TIME_CONSTANT
    while True:
        t = t0 + b * per
        n = int(math.floor(t))
        if n + ahead > last:
            break
        ph = int((t - n) * nph + 0.5)
        sr, si = _interp(bf, 2 * (n + lo - base), bank, ph, ntaps)
        if have_prev and seen >= WARM_UP and b % MID_EVERY == MID_EVERY - 1:
            tm = t - 0.5 * per
            m = int(math.floor(tm))
            mr, mi = _interp(bf, 2 * (m + mlo - base), mbank, int((tm - m) * nph + 0.5), mtaps)
            e = ((pr - sr) * mr + (pi_ - si) * mi) / max(pw, 1e-30)
            if e > ERROR_CLIP:
                e = ERROR_CLIP
            elif e < -ERROR_CLIP:
                e = -ERROR_CLIP
            esum += MID_EVERY * e
        a = beta if seen >= POWER_TIME_CONSTANT - 1.0 else 1.0 / (seen + 1.0)  # max(1 / (seen + 1), beta)
        pw += a * (sr * sr + si * si - pw)
        seen += 1.0
        out_sym[2 * count] = sr
        out_sym[2 * count + 1] = si
        out_pos[count] = t
        count += 1
        nsym += 1.0
        pr = sr
        pi_ = si
        have_prev = True
        b += 1
        if b == BLOCK:
            e = esum * inv_kd
            g = 0 if nsym <= gains[4] else 2  # (k1, k2) while settling, then the loop's own
            k1 = gains[g]
            k2 = gains[g + 1]
            nu -= k2 * e
            if nu > max_dev:
                nu = max_dev
            elif nu < -max_dev:
                nu = -max_dev
            t0 += BLOCK * per - sps * k1 * e
            per = sps * (1.0 + nu)
            b = 0
            esum = 0.0
    state[0] = t0
    state[1] = nu
    state[2] = b
    state[3] = esum
    state[4] = pr
    state[5] = pi_
    state[6] = 1.0 if have_prev else 0.0
    state[7] = pw
    state[8] = seen
    state[9] = nsym
    return count


class TimingRecovery:
    """Streaming symbol timing recovery (Gardner detector, second-order loop, polyphase interpolator).

    Parameters
    ----------
    samples_per_symbol : int
        Nominal samples per symbol of the input, >= 2.
    loop_bandwidth : float
        Loop noise bandwidth B_n T, normalized to the symbol rate, in (0, 0.1]. Narrower: less
        timing jitter at low SNR, slower pull-in (about 1 / (4 B_n T) symbols). The detector is
        normalized by the symbols' average power (signal plus noise), so the bandwidth holds at
        high SNR and shrinks by Es / (Es + N0) at low SNR, whatever the input level.
    damping : float
        Loop damping factor zeta, > 0 (1/sqrt(2): the usual choice).
    rolloff : float
        Roll-off of the raised-cosine pulse (transmit RRC and matched filter), in (0, 1]: sets the
        detector's normalization (its S-curve slope) and, with ``rrc_span``, the matched filter.
    max_clock_offset : float
        Largest clock offset the loop may settle on, as a fraction (0.005 = 5000 ppm), in (0, 0.1].
    rrc_span : int, optional
        None: the input is already matched filtered; the instants are interpolated with a
        Kaiser-windowed sinc of ``taps`` taps. An even number of symbols: the input is not
        filtered; the unit-energy RRC matched filter of that span (the transmitter's, see
        :func:`modem.dvbs2.pulse.rrc_taps`) is evaluated directly at each instant from the input
        samples (a polyphase matched filter: no separate filter, no interpolation error, and no
        look-ahead past the filter's own half length).
    taps : int
        Sinc interpolator taps per phase, even, 4..64 (12: interpolation error below -50 dB for
        signals confined to +-0.34 of the sample rate, e.g. roll-off 0.35 at 2 samples/symbol).
    phases : int
        Interpolator phases per sample, 2..4096 (the instants are rounded to 1/phases sample).

    Examples
    --------
    >>> tr = TimingRecovery(2, loop_bandwidth=0.005)
    >>> symbols = tr(matched_filter_output)          # doctest: +SKIP
    >>> tr.clock_offset_ppm, tr.next_position         # doctest: +SKIP

    Notes
    -----
    ``tr(samples)`` returns the symbols whose instants could be computed from the samples so far
    (complex64); :meth:`process` also returns each symbol's instant as an absolute input sample
    index (float64; with ``rrc_span``, the centre of the symbol's pulse in the input). The first
    symbol is taken at sample 0 (or where :meth:`reset` puts it); the loop then pulls the instants
    onto the symbol peaks.
    """

    def __init__(
        self,
        samples_per_symbol: int,
        loop_bandwidth: float = 0.005,
        damping: float = 1 / math.sqrt(2),
        rolloff: float = 0.35,
        max_clock_offset: float = 0.005,
        rrc_span: int | None = None,
        taps: int = 12,
        phases: int = 256,
    ):
        self.samples_per_symbol = check_int(samples_per_symbol, "samples_per_symbol", 2, 1024)
        self.loop_bandwidth = check_positive(loop_bandwidth, "loop_bandwidth", hi=0.1)
        self.damping = check_positive(damping, "damping", hi=100.0)
        self.rolloff = check_positive(rolloff, "rolloff", hi=1.0)
        self.max_clock_offset = check_positive(max_clock_offset, "max_clock_offset", hi=0.1)
        self.taps = check_int(taps, "taps", 4, 64)
        if self.taps % 2:
            raise ValueError(f"taps must be an even integer in 4..64; got {taps!r}")
        self.phases = check_int(phases, "phases", 2, 4096)
        if rrc_span is not None:
            rrc_span = check_int(rrc_span, "rrc_span", 2, 256)
            if rrc_span % 2:
                raise ValueError(f"rrc_span must be an even number of symbols; got {rrc_span!r}")
            half = rrc_span * self.samples_per_symbol // 2
            self._bank = rrc_bank(round(self.rolloff, 6), self.samples_per_symbol, rrc_span, self.phases)
            self._lo, self._ahead = -half + 1, half
        else:
            self._bank = interpolator_bank(self.taps, self.phases)
            self._lo, self._ahead = -self.taps // 2 + 1, self.taps // 2
        # mid-points (for the detector only): a matched filter cut to 8 symbols is plenty
        self._mbank, self._mlo = self._bank, self._lo
        if rrc_span is not None and rrc_span > MID_SPAN:
            self._mbank = rrc_bank(round(self.rolloff, 6), self.samples_per_symbol, MID_SPAN, self.phases)
            self._mlo = -MID_SPAN * self.samples_per_symbol // 2 + 1
        pad = -self._bank.shape[1] % 4  # taps in fours (vector friendly): leading zero taps
        if pad:
            self._bank = np.ascontiguousarray(np.pad(self._bank, ((0, 0), (pad, 0))))
            self._lo -= pad
        pad = -self._mbank.shape[1] % 4
        if pad:
            self._mbank = np.ascontiguousarray(np.pad(self._mbank, ((0, 0), (pad, 0))))
            self._mlo -= pad
        self.rrc_span = rrc_span
        self._k1, self._k2 = loop_gains(self.loop_bandwidth, self.damping)
        self._inv_kd = 1.0 / gardner_slope(round(self.rolloff, 6))
        self.reset()

    def reset(self, position: float = 0.0, clock_offset: float = 0.0, first_sample: int = 0,
              power: float | None = None, settle_symbols: int = 0,
              settle_bandwidth: float | None = None) -> None:  # fmt: skip
        """Restart the loop.

        Parameters
        ----------
        position : float
            Absolute input sample index of the first symbol instant, >= ``first_sample``.
        clock_offset : float
            Initial clock offset estimate (fraction, within +-``max_clock_offset``).
        first_sample : int
            Absolute index that the next input sample will have (0 for a new stream; a receiver
            that restarts mid-stream passes the index of the sample it will feed next). Samples
            before it are taken as zeros.
        power : float, optional
            Average power of the symbols (signal and noise) the detector is normalized by; by
            default estimated from the first symbols. A receiver that restarts a loop on a
            stream it already knows passes it, so the start (a signal ramping up from zeros, say)
            cannot throw the loop off.
        settle_symbols : int
            The first so many symbols use ``settle_bandwidth`` (a wider loop that settles
            quickly from an approximate start), the rest ``loop_bandwidth``.
        settle_bandwidth : float, optional
            Loop noise bandwidth while settling (default: ``loop_bandwidth``).
        """
        if not abs(clock_offset) <= self.max_clock_offset:
            raise ValueError(
                f"clock_offset must be within +-{self.max_clock_offset}; got {clock_offset!r}"
            )
        if not position >= first_sample:
            raise ValueError(f"position must be >= first_sample ({first_sample}); got {position!r}")
        n = self._bank.shape[1] + 2 * self.samples_per_symbol + 2
        self._buf = np.zeros(n, dtype=np.complex64)  # zeros before the first sample
        self._base = int(first_sample) - n  # absolute index of self._buf[0]
        self._state = np.zeros(10, dtype=np.float64)
        self._state[:2] = position, clock_offset
        if power is not None:
            self._state[7] = check_positive(power, "power")
            self._state[8] = POWER_TIME_CONSTANT
        self._first = int(first_sample)
        self._samples_in = 0
        self._symbols_out = 0
        k1s, k2s = self._k1, self._k2
        if settle_bandwidth is not None:
            k1s, k2s = loop_gains(check_positive(settle_bandwidth, "settle_bandwidth", hi=0.1), self.damping)
        settle = float(check_int(settle_symbols, "settle_symbols", 0))
        self._gains = np.array([k1s, k2s, self._k1, self._k2, settle])

    # -- state

    @property
    def clock_offset(self) -> float:
        """Estimated clock offset: receiver samples per symbol / nominal - 1."""
        return float(self._state[1])

    @property
    def clock_offset_ppm(self) -> float:
        """:attr:`clock_offset` in parts per million."""
        return 1e6 * self.clock_offset

    @property
    def period(self) -> float:
        """Current symbol period estimate, samples."""
        return self.samples_per_symbol * (1.0 + self.clock_offset)

    @property
    def next_position(self) -> float:
        """Absolute input sample index of the next symbol instant."""
        st = self._state
        return float(st[0] + st[2] * self.samples_per_symbol * (1.0 + st[1]))

    @property
    def samples_in(self) -> int:
        """Samples received since construction or :meth:`reset`."""
        return self._samples_in

    @property
    def symbols_out(self) -> int:
        """Symbols produced since construction or :meth:`reset`."""
        return self._symbols_out

    # -- processing

    def process(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """Symbols and their instants for a chunk of samples.

        Parameters
        ----------
        samples : array_like of complex, shape (N,)
            Samples continuing the stream.

        Returns
        -------
        symbols : ndarray of complex64, shape (K,)
        positions : ndarray of float64, shape (K,)
            Absolute input sample index of each symbol's instant.

        Raises
        ------
        ValueError
            ``samples`` not 1-D or not finite (the message names the sample index).
        """
        return self._process(as_complex64(samples, "samples", offset=self._first + self._samples_in))

    def _process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`process` on an array already checked (C-contiguous complex64, finite)."""
        self._samples_in += x.size
        buf = np.concatenate([self._buf, x]) if x.size else self._buf
        sps = self.samples_per_symbol
        cap = int(buf.size / (sps * (1.0 - self.max_clock_offset))) + 4
        sym = np.empty(cap, dtype=np.complex64)
        pos = np.empty(cap, dtype=np.float64)
        k = _timing_kernel(
            buf.view(np.float32), self._base, self._bank, self._lo, self._ahead, self._mbank, self._mlo,
            float(sps), self._state,
            self._gains, self._inv_kd, self.max_clock_offset, sym.view(np.float32), pos,
        )  # fmt: skip
        # keep what the next symbol's mid-point can still reach back to
        mid = self.next_position - 0.5 * sps * (1.0 + self.max_clock_offset) - 1.0
        keep_from = int(math.floor(mid)) + self._lo - 1
        cut = min(max(keep_from - self._base, 0), buf.size)
        self._buf = buf[cut:].copy()
        self._base += cut
        self._symbols_out += k
        return sym[:k], pos[:k]

    def __call__(self, samples) -> np.ndarray:
        """Symbols (complex64) for a chunk of samples; see :meth:`process`."""
        return self.process(samples)[0]

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: the symbols whose instants fall before the last input sample, then reset.

        The look-ahead the interpolator still lacks is filled with zeros.

        Returns
        -------
        symbols, positions
            As :meth:`process`.
        """
        end = self._first + self._samples_in
        sym, pos = self.process(np.zeros(self._ahead + 2, dtype=np.complex64))
        keep = pos < end
        self.reset()
        return sym[keep], pos[keep]
