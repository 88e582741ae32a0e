"""DVB-S2 synchronizer: raw complex baseband in, carrier-corrected PLFRAMEs out.

:class:`Dvbs2Synchronizer` takes samples at ``sps`` samples per symbol with an unknown start,
symbol-clock offset, carrier frequency offset (up to +-30 % of the symbol rate searched), drifting
phase and level, and returns each PLFRAME's symbols with the carrier removed, its PLS word, Es/N0
estimate and carrier frequency. Two states:

**Acquire.** A :class:`~modem.sync.frontend.FrontEnd` (AGC, rotator, polyphase matched filter at
the instants of a Gardner timing loop; no carrier correction, or the last one known) gives
symbols. :class:`~modem.sync.plheader.DifferentialDetector` scores every position without
knowing the carrier, in blocks of :data:`SCAN_BLOCK` positions; positions above
:data:`DIFF_PILOT_THRESHOLD` (pilot-aided metric) or :data:`DIFF_HEADER_THRESHOLD` (header-only
metric) are tested coherently (:class:`~modem.sync.plheader.HeaderDetector`: the 108 possible
PLS words x a frequency grid around the differential estimate). A candidate above
:data:`STRONG_THRESHOLD` locks at once; one above :data:`GLRT_THRESHOLD` (or, with pilots, the
header-plus-pilot-blocks metric above :data:`GLRT_PILOT_THRESHOLD`) needs a second PLHEADER
exactly one frame length later (+-2 symbols, :data:`VERIFY_THRESHOLD`). At a lock the receiver
looks back one frame for an earlier header (its own word must give that distance) and starts a
new front end a few symbols before the earliest header found, with the frequency removed before
the matched filter and the symbol grid (a line fitted through the old loop's instants) carried
over; the buffered samples are processed again from there, so no frame before the lock is lost.

**Locked.** At each expected header position (+-2 symbols: a timing slip) the coherent test
confirms the PLS word (below :data:`LOST_THRESHOLD`, even over a wider frequency range, the lock
is lost: a "lost" event, back to acquisition). A frame is processed as soon as its last symbol
is in: its known blocks (PLHEADER, pilot blocks; a dummy frame's whole body) feed a Kalman
filter on the carrier phase, frequency and frequency rate
(:class:`~modem.sync.carrier.PhaseTracker`), smoothed back over the frame; each symbol's phase
is interpolated between the smoothed block phases (a quadratic through both, with the rate).
Before the first frame the frequency is refined to far better than the +-1/2952 cycles/symbol
the pilot spacing allows: from the M-th power of the symbols for QPSK (M = 4) and 8PSK (8), over
more frames when one is not conclusive (:func:`_mth_power_peak`), from the header and pilot
blocks otherwise. Frames without pilots take their phase from the M-th power of their data
(QPSK, 8PSK) or a decision-directed loop (APSK: not supported at their thresholds). APSK frames
have their level's drift across the frame divided out. Es/N0: from the PLHEADER and pilots after
the phase correction, refined with the frame's data (expectation-maximization for QPSK below
2 dB, M2M4 for 8PSK and QPSK above, hard decisions mapped through the constellation's decision
error curve for APSK; :func:`_refine_noise`; with ``refine=False`` left to the consumer, see
:func:`refine_noise`). Once locked the front end's frequency follows the
tracker's (at fixed sample indices, :data:`RETUNE_SAMPLES`), so the matched filter stays centred
through a Doppler ramp.

Every decision depends only on the samples, never on how they were chunked, so the output is
the same, bit for bit, for any chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numba as nb
import numpy as np
from scipy.stats import gamma as gamma_dist

from modem.dvbs2.mapping import constellation, modcod_parameters
from modem.dvbs2.modcod import DUMMY_PLFRAME_SYMBOLS, FRAMES, frame_spec
from modem.dvbs2.plframe import PILOT_SYMBOL, PLHEADER_LENGTH, scrambling_sequence
from modem.sync._checks import as_complex64, check_int, check_positive
from modem.sync.carrier import PhaseTracker, dd_pll, derotate
from modem.sync.frontend import FrontEnd
from modem.sync.plheader import (
    DIFF_SPAN,
    PILOT_BLOCK,
    PILOT_OFFSETS,
    DifferentialDetector,
    HeaderDetector,
    HeaderMatch,
)

#: Differential pilot-aided metric that makes a position a candidate (noise exceeds it at about
#: 1e-3 of the positions; a PLFRAME with pilots at Es/N0 = -2.35 dB at 97 %).
DIFF_PILOT_THRESHOLD = 0.058
#: Differential header-only metric that makes a position a candidate (noise: about 1e-5).
DIFF_HEADER_THRESHOLD = 0.2
#: Coherent header metric (0..1) a candidate needs on its own (noise over the search grid:
#: about 1e-6 above it; a header at -2.35 dB: mean 0.38).
GLRT_THRESHOLD = 0.22
#: Coherent metric over the header and the first two pilot blocks, for a PLS word with pilots.
GLRT_PILOT_THRESHOLD = 0.17
#: Coherent header metric that locks at once, without a second header (noise, a CW tone or a
#: header below about 0 dB Es/N0 stay far below it).
STRONG_THRESHOLD = 0.5
#: Coherent header metric of the second header that confirms a candidate.
VERIFY_THRESHOLD = 0.15
#: Coherent header metric below which a locked receiver declares the lock lost.
LOST_THRESHOLD = 0.12
#: Frequency range searched during acquisition, cycles per symbol (+-).
ACQUIRE_RANGE = 0.3
#: Symbols between the restart point of the front end and the first header after locking.
RESTART_MARGIN = 768
#: After a restart the timing loop keeps the acquisition's bandwidth for RESTART_MARGIN + this
#: many symbols before narrowing to ``locked_timing_bandwidth``: the old loop's grid may be off
#: (its matched filter off-centre by a large carrier offset, its clock estimate still settling),
#: and a narrow loop would take frames to pull the clock estimate in.
SETTLE_SYMBOLS = 8192
#: Time constant of the AGC once locked, samples: slow, so that the level stays nearly constant
#: within a frame; what drift remains is divided out per frame from the known blocks.
LOCKED_AGC_TIME_CONSTANT = 1 << 20
#: Span of the receiver's matched filter, symbols (the transmitter's, if shorter): an RRC cut to 10
#: symbols leaves the end-to-end pulse's intersymbol interference below -44 dB for every roll-off.
MATCHED_SPAN = 10
#: Once locked, the front end's frequency may change every so many input samples (at absolute
#: multiples of it, so that the output does not depend on the chunking).
RETUNE_SAMPLES = 1 << 16
#: Smallest frequency step of a retune, cycles per symbol.
RETUNE_STEP = 2e-3
#: Symbols a front end's timing loop is given to pull in before its instants define a grid.
PULL_IN_SYMBOLS = 2048
#: Symbols kept before the acquisition scan for the look-back at a lock (the longest PLFRAME).
LOOKBACK_SYMBOLS = 33282 + 90
#: Frames the look-back goes back at most.
MAX_LOOKBACK_FRAMES = 1
#: Largest frequency rate looked for at the first frame, cycles/symbol^2 (a Doppler ramp; 1e-8 is
#: 62 kHz/s at 2.5 Msymbol/s, twenty times a low-Mars-orbit pass at Ka band).
MAX_RATE = 1e-8
#: Significance of the M-th power periodogram's peak (see :func:`_mth_power_peak`: 1 is what
#: noise alone reaches with probability 1e-3) that makes a first frequency estimate conclusive.
INIT_RELIABLE = 1.5
#: Most symbols the first frequency estimate may wait for (two of the longest PLFRAMEs).
INIT_MAX_SYMBOLS = 2 * 33282
#: Data symbols a first APSK frame's frequency alias is decided on without the next frame.
ALIAS_SYMBOLS = 2048
#: Data symbols of an APSK frame used for its Es/N0 (hard decisions, see _apsk_noise).
APSK_NOISE_SYMBOLS = 16384
#: QPSK frames use expectation-maximization for their Es/N0 below this N0/Es (2 dB), M2M4 above
#: (as good there, a fraction of the work).
QPSK_EM_BELOW = 10**-0.2
#: Most expectation-maximization iterations of a QPSK frame's Es/N0 (see _em_bpsk).
EM_ITERATIONS = 30
#: Largest symbol slip looked for at an expected header position (+-).
SLIP = 2
#: Symbols of the next PLFRAME a first APSK frame waits for (its header and first two pilot
#: blocks: they decide the frequency alias, see _resolve_alias).
NEXT_FRAME_SPAN = PILOT_OFFSETS[1] + PILOT_BLOCK + SLIP
#: Positions scanned per block in acquisition (blocks aligned to multiples of it).
SCAN_BLOCK = 2048
_GRID_STEP = 1.0 / 270.0  # coherent search frequency step, cycles/symbol (a third of 1/90)


@dataclass
class SyncedFrame:
    """One PLFRAME out of the synchronizer (or a loss, ``kind`` "lost").

    Attributes
    ----------
    kind : {"frame", "lost"}
    start_sample : int
        Input sample index at the centre of the PLHEADER's first symbol ("lost": of the position
        where a header was expected).
    word : int
        PLS word (MODCOD << 2 | short << 1 | pilots); -1 for "lost".
    metric : float
        Coherent header metric, 0..1.
    symbols : ndarray of complex64 or None
        The whole PLFRAME (header first) with the carrier phase removed; divide by ``gain`` for
        unit-energy symbols.
    gain : complex
        Least-squares amplitude of the header and pilots after the phase correction.
    noise_var : float
        Noise variance relative to |gain|^2 (N0 / Es, for the demapper), from the PLHEADER and
        pilots refined with the frame's data (:func:`_refine_noise`).
    esn0_db : float
        -10 log10(noise_var), dB (a dummy frame: from its header and whole body).
    cfo_norm : float
        Carrier frequency offset at the frame's PLHEADER, cycles per symbol (fraction of the
        symbol rate).
    clock_offset : float
        Timing loop's clock offset estimate (fraction).
    detail : str
        Why a loss was declared ("" for frames).
    refined : bool
        ``noise_var`` and ``esn0_db`` are refined with the frame's data (see
        :func:`refine_noise`); False: from the PLHEADER and pilots alone (a synchronizer made with
        ``refine=False`` leaves the refinement to its consumer).
    """

    kind: str
    start_sample: int
    word: int
    metric: float
    symbols: np.ndarray | None = None
    gain: complex = 0j
    noise_var: float = 1.0
    esn0_db: float = float("nan")
    cfo_norm: float = 0.0
    clock_offset: float = 0.0
    detail: str = ""
    refined: bool = True

    @property
    def modcod(self) -> int:
        """MODCOD field (0: dummy), -1 for a loss."""
        return self.word >> 2 if self.word >= 0 else -1

    @property
    def frame(self) -> str:
        """"normal" or "short"."""
        return FRAMES[(self.word >> 1) & 1] if self.word >= 0 else "normal"

    @property
    def pilots(self) -> bool:
        """Pilots flag of the PLS word."""
        return bool(self.word & 1) if self.word >= 0 else False


@lru_cache(maxsize=128)
def frame_length(word: int) -> int:
    """PLFRAME length in symbols for PLS word ``word``."""
    mc = word >> 2
    if mc == 0:
        return DUMMY_PLFRAME_SYMBOLS
    return frame_spec(mc, FRAMES[(word >> 1) & 1], bool(word & 1)).plframe_symbols


@lru_cache(maxsize=1)
def _frame_lengths() -> tuple[int, ...]:
    """Every PLFRAME length a valid PLS word gives, in symbols (sorted)."""
    from modem.sync.plheader import word_valid

    return tuple(sorted({frame_length(w) for w in range(128) if word_valid(w)}))


@lru_cache(maxsize=512)
def _known_blocks(word: int, gold_code: int) -> tuple[tuple[int, np.ndarray], ...]:
    """(offset in the PLFRAME, reference symbols) of each known block after the PLHEADER."""
    c = scrambling_sequence(gold_code)
    mc = word >> 2
    out = []
    if mc == 0:  # dummy: 36 slots of scrambled (1+j)/sqrt(2)
        for s in range(36):
            body = np.arange(90 * s, 90 * (s + 1))
            out.append((PLHEADER_LENGTH + 90 * s, (PILOT_SYMBOL * c[body]).astype(np.complex64)))
    elif word & 1:
        slots = frame_spec(mc, FRAMES[(word >> 1) & 1], True).slots
        for i in range((slots - 1) // 16):
            body = np.arange(PILOT_BLOCK) + (i + 1) * 1440 + i * PILOT_BLOCK
            out.append((PLHEADER_LENGTH + int(body[0]), (PILOT_SYMBOL * c[body]).astype(np.complex64)))
    for _, r in out:
        r.setflags(write=False)
    return tuple(out)


@lru_cache(maxsize=16)
def _pilot_refs(gold_code: int) -> tuple[tuple[int, np.ndarray], ...]:
    """The first two pilot blocks (frame offset, scrambled symbols), also a dummy frame's body there."""
    c = scrambling_sequence(gold_code)
    out = []
    for off in PILOT_OFFSETS:
        body = off - PLHEADER_LENGTH
        r = (PILOT_SYMBOL * c[body : body + PILOT_BLOCK]).astype(np.complex64)
        r.setflags(write=False)
        out.append((off, r))
    return tuple(out)


@lru_cache(maxsize=512)
def _block_table(word: int, gold_code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The PLHEADER and the known blocks of a PLFRAME as arrays: (starts, lens, ref offsets, refs)."""
    from modem.sync.plheader import HeaderDetector

    blocks = [(0, HeaderDetector.reference(word).astype(np.complex64)), *_known_blocks(word, gold_code)]
    starts = np.array([o for o, _ in blocks], np.int64)
    lens = np.array([r.size for _, r in blocks], np.int64)
    roff = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    refs = np.concatenate([r for _, r in blocks]).astype(np.complex64)
    for a in (starts, lens, roff, refs):
        a.setflags(write=False)
    return starts, lens, roff, refs


@nb.njit(cache=True, nogil=True)
def _block_stats(y, starts, lens, roff, refs, corr, power):  # pragma: no cover - compiled
    """Per block: corr = sum y conj(ref), power = sum |y|^2."""
    for i in range(starts.size):
        c = 0j
        pw = 0.0
        for j in range(lens[i]):
            v = y[starts[i] + j]
            r = refs[roff[i] + j]
            c += complex(v.real * r.real + v.imag * r.imag, v.imag * r.real - v.real * r.imag)
            pw += v.real * v.real + v.imag * v.imag
        corr[i] = c
        power[i] = pw


def block_stats(y: np.ndarray, table) -> tuple[np.ndarray, np.ndarray]:
    """(corr, power) of each known block of a frame (see :func:`_block_table`)."""
    starts, lens, roff, refs = table
    corr = np.empty(starts.size, np.complex128)
    power = np.empty(starts.size)
    _block_stats(y, starts, lens, roff, refs, corr, power)
    return corr, power


@nb.njit(cache=True, nogil=True)
def _moments(y):  # pragma: no cover - compiled
    """(mean |y|^2, mean |y|^4)."""
    m2 = 0.0
    m4 = 0.0
    for i in range(y.size):
        p = y[i].real * y[i].real + y[i].imag * y[i].imag
        m2 += p
        m4 += p * p
    return m2 / y.size, m4 / y.size


@lru_cache(maxsize=32)
def _psk_order(word: int) -> int:
    """M for the M-th power frequency estimate (4 QPSK, 8 8PSK), 0 for APSK and dummy frames."""
    mc = word >> 2
    if mc == 0:
        return 4  # a dummy body is (1+j)/sqrt(2) rotated by multiples of pi/2
    mod = modcod_parameters(mc)[0]
    return {"QPSK": 4, "8PSK": 8}.get(mod, 0)


@lru_cache(maxsize=32)
def _points(word: int) -> np.ndarray:
    mc = word >> 2
    mod, rate, _, _ = modcod_parameters(mc)
    pts, _ = constellation(mod, rate)
    return np.ascontiguousarray(pts, dtype=np.complex64)


class _Buffer:
    """Growable arrays indexed by an absolute counter (amortized append, drop from the front)."""

    def __init__(self, dtypes: tuple, base: int = 0):
        self._dtypes = dtypes
        self._arrays = [np.empty(1024, dt) for dt in dtypes]
        self._lo = 0  # index of the first valid element in the arrays
        self._hi = 0
        self.base = base  # absolute index of element _lo

    @property
    def end(self) -> int:
        """Absolute index one past the last element."""
        return self.base + self._hi - self._lo

    def append(self, *parts) -> None:
        """Append one array per column (equal lengths)."""
        n = parts[0].size
        if n == 0:
            return
        if self._hi + n > self._arrays[0].size:
            live = self._hi - self._lo
            if 2 * (live + n) <= self._arrays[0].size:  # room enough: move the live part to the front
                for a in self._arrays:
                    a[:live] = a[self._lo : self._hi].copy()
            else:  # (new memory costs page faults: only when the live part has grown)
                cap = max(2 * (live + n), 1024)
                new = [np.empty(cap, dt) for dt in self._dtypes]
                for a, b in zip(new, self._arrays, strict=True):
                    a[:live] = b[self._lo : self._hi]
                self._arrays = new
            self._lo, self._hi = 0, live
        for a, p in zip(self._arrays, parts, strict=True):
            a[self._hi : self._hi + n] = p
        self._hi += n

    def get(self, col: int, a: int, b: int) -> np.ndarray:
        """Column ``col`` for absolute indices a .. b-1 (a view)."""
        lo = self._lo + a - self.base
        return self._arrays[col][lo : lo + (b - a)]

    def drop_before(self, a: int) -> None:
        """Forget elements below absolute index a."""
        k = min(max(a - self.base, 0), self._hi - self._lo)
        self._lo += k
        self.base += k


@dataclass
class _Candidate:
    pos: int  # symbol index of the header
    word: int
    freq: float  # cycles/symbol, in the current front end's output
    metric: float
    strong: bool = False  # needs no second header


class Dvbs2Synchronizer:
    """DVB-S2 receiver synchronization from raw IQ (see module doc).

    Parameters
    ----------
    rolloff : float
        RRC roll-off (0.35, 0.25, 0.20).
    sps : int
        Samples per symbol, >= 2.
    span : int
        Matched filter length in symbols (even).
    gold_code : int
        PL scrambling code number.
    timing_bandwidth : float
        Timing loop noise bandwidth B_n T while acquiring (pull-in).
    locked_timing_bandwidth : float
        Timing loop noise bandwidth B_n T once locked (the loop starts from the acquisition's
        symbol grid and only tracks: narrower, fewer slips at low SNR).
    q_phase, q_freq, q_rate : float
        Carrier tracker process noise (see :class:`~modem.sync.carrier.PhaseTracker`).
    dd_bandwidth : float
        Loop bandwidth B_n T of the decision-directed phase loop used in frames without pilots.
    refine : bool
        Refine each frame's Es/N0 with its data before returning it (see :func:`refine_noise`);
        False leaves that to the consumer (``SyncedFrame.refined`` False).

    Attributes
    ----------
    locked : bool
    samples_in : int
    samples_before_lock : int
        Input samples before the first PLHEADER of the first lock (not part of any frame).
    restarts : int
        Front-end restarts (one per lock).
    """

    def __init__(
        self,
        rolloff: float = 0.35,
        sps: int = 2,
        span: int = 16,
        gold_code: int = 0,
        timing_bandwidth: float = 2e-3,
        locked_timing_bandwidth: float = 5e-4,
        q_phase: float = 2e-6,
        q_freq: float = 1e-13,
        q_rate: float = 1e-24,
        dd_bandwidth: float = 2e-3,
        refine: bool = True,
    ):
        self.rolloff = rolloff
        self.refine = bool(refine)
        self.sps = check_int(sps, "sps", 2, 64)
        self.span = check_int(span, "span", 2, 128)
        self._mf_span = min(self.span, MATCHED_SPAN)
        self.gold_code = int(gold_code)
        self.timing_bandwidth = check_positive(timing_bandwidth, "timing_bandwidth", hi=0.05)
        self.locked_timing_bandwidth = check_positive(
            locked_timing_bandwidth, "locked_timing_bandwidth", hi=0.05
        )
        self.dd_bandwidth = check_positive(dd_bandwidth, "dd_bandwidth", hi=0.1)
        self._q = (q_phase, q_freq, q_rate)
        self._diff = DifferentialDetector(self.gold_code)
        self._glrt = HeaderDetector()
        self.reset()

    def reset(self) -> None:
        """Forget everything (as at construction)."""
        self.samples_in = 0
        self.samples_before_lock = 0
        self.restarts = 0
        self._raw = _Buffer((np.complex64,))
        self._start_fe(FrontEnd(self.rolloff, self.sps, self._mf_span, self.timing_bandwidth))
        self._clock = 0.0
        self._omega_fe = 0.0
        self._enter_acquire()
        self._ever_locked = False
        self._ending = False

    # -- public

    def flush(self) -> list[SyncedFrame]:
        """End of stream: the frames that waited only for later samples that will not come.

        A first APSK frame waits for the next frame's header and pilots to resolve its frequency
        alias (see :func:`_resolve_alias`); at the end of the stream it is decided on its own data
        symbols instead. The synchronizer stays as it is otherwise (an incomplete frame stays
        pending: :meth:`pending_start_sample`).
        """
        out: list[SyncedFrame] = []
        self._ending = True
        try:
            self._run(out)
        finally:
            self._ending = False
        return out

    @property
    def locked(self) -> bool:
        """True while frames are being tracked."""
        return self._mode == "locked"

    def __call__(self, samples) -> list[SyncedFrame]:
        """Process a chunk of samples; returns the frames (and losses) completed by it.

        Parameters
        ----------
        samples : array_like of complex, shape (N,)
            Raw complex baseband at ``sps`` samples per symbol, continuing the stream.

        Raises
        ------
        ValueError
            Not 1-D, or a NaN or inf sample (the message names its index in the call and in the
            stream); nothing of the call is kept then.
        """
        return self._push(as_complex64(samples, "samples", offset=self.samples_in))

    def _push(self, x: np.ndarray) -> list[SyncedFrame]:
        """:meth:`__call__` on an array already checked (C-contiguous complex64, finite)."""
        self.samples_in += x.size
        self._raw.append(x)
        out: list[SyncedFrame] = []
        while True:
            start = self._fe.next_sample
            end = self._raw.end
            # in pieces: once locked, retune points; before, the search can lock (and restart the front
            # end) without the front end running far ahead for nothing
            end = min(end, (start // RETUNE_SAMPLES + 1) * RETUNE_SAMPLES)
            if end > start:
                sym, pos, phi = self._fe(self._raw.get(0, start, end))
                self._sym.append(sym, pos, phi)
            restart = self._run(out)
            if restart is not None:
                self._start_fe(restart)
                continue
            if self._mode == "locked" and self._fe.next_sample % RETUNE_SAMPLES == 0:
                self._retune()
            if self._fe.next_sample >= self._raw.end:
                break
        self._trim_raw()
        return out

    def _retune(self) -> None:
        """Move the front end's frequency onto the tracker's (at a retune point, once locked).

        The matched filter then stays centred on the signal through a Doppler ramp; only steps
        above :data:`RETUNE_STEP` of the symbol rate are made.
        """
        if not self._tracker.started:
            return
        per = self.sps * (1.0 + self._clock)
        f = self._tracker.omega / (2 * math.pi)  # cycles per symbol, total
        if abs(f - self._fe.frequency * per) > RETUNE_STEP:
            self._fe.rotator.frequency = float(np.clip(f / per, -0.5, 0.5))

    def pending_start_sample(self) -> int | None:
        """Input sample index of a PLFRAME that has started and is not complete yet, or None.

        Started: locked, with its whole PLHEADER in.
        """
        if self._mode != "locked" or self._sym.end < self._cursor + PLHEADER_LENGTH:
            return None
        return int(round(float(self._sym.get(1, self._cursor, self._cursor + 1)[0])))

    # -- state

    def _start_fe(self, fe: FrontEnd) -> None:
        self._fe = fe
        self._sym = _Buffer((np.complex64, np.float64, np.float64))
        self._fe_first_symbol = 0  # symbol index of the front end's first symbol

    def _enter_acquire(self, scan_from: int | None = None) -> None:
        self._mode = "acquire"
        self._hdr = None
        self._scan_min = self._sym.base if scan_from is None else scan_from
        self._scan_next = self._scan_min - self._scan_min % SCAN_BLOCK
        self._cands: list[_Candidate] = []

    def _trim_raw(self) -> None:
        """Keep the raw samples a restart could need: from the oldest buffered symbol on."""
        if self._sym.end > self._sym.base:
            oldest = float(self._sym.get(1, self._sym.base, self._sym.base + 1)[0])
        else:
            oldest = float(self._fe.next_sample)
        margin = (RESTART_MARGIN + 8) * self.sps * 1.01 + 2 * self.span * self.sps + 16
        self._raw.drop_before(min(int(oldest - margin), self._fe.next_sample))

    def _run(self, out: list[SyncedFrame]) -> FrontEnd | None:
        while True:
            if self._mode == "acquire":
                restart = self._acquire()
                if restart is not None:
                    return restart
                return None
            if not self._track(out):
                return None

    # -- acquisition

    def _acquire(self) -> FrontEnd | None:
        """Scan block after block, verifying candidates in stream order as soon as they can be.

        The first one confirmed locks (later blocks are not scanned).
        """
        while True:
            restart = self._verify()
            if restart is not None:
                return restart
            if self._scan_next + SCAN_BLOCK - 1 + DIFF_SPAN > self._sym.end:
                break
            self._scan_block()
        # forget symbols no candidate or scan can still need
        keep = min([self._scan_next] + [c.pos for c in self._cands])
        self._sym.drop_before(keep - LOOKBACK_SYMBOLS)  # earlier frames, for the look-back at a lock
        return None

    def _scan_block(self) -> None:
        """Differential metrics over the next SCAN_BLOCK positions; coherent test of the hits.

        Blocks are aligned to multiples of SCAN_BLOCK, so the metrics' rounding never depends on
        where a call ended.
        """
        b0 = self._scan_next
        y = self._sym.get(0, b0, b0 + SCAN_BLOCK + DIFF_SPAN - 1)
        met_h, met_p, sums = self._diff.scan(y)
        hit = np.flatnonzero((met_p >= DIFF_PILOT_THRESHOLD) | (met_h >= DIFF_HEADER_THRESHOLD))
        for i in hit:
            p = b0 + int(i)
            if p < self._scan_min:
                continue
            with_pilots = bool(met_p[i] >= DIFF_PILOT_THRESHOLD)
            f0 = self._diff.frequency(sums[i], with_pilots)
            cand = self._examine(p, f0, with_pilots)
            if cand is not None:
                self._cands.append(cand)
        self._scan_next = b0 + SCAN_BLOCK

    def _verify(self) -> FrontEnd | None:
        """Candidates in stream order: a strong one locks at once, the others once confirmed.

        The confirmation is a second header one frame length later (without it: dropped).
        """
        while self._cands:
            c = self._cands[0]
            if c.strong:
                return self._lock(c)
            length = frame_length(c.word)
            if self._sym.end < c.pos + length + SLIP + PLHEADER_LENGTH:
                return None
            for d in range(-SLIP, SLIP + 1):
                y = self._sym.get(0, c.pos + length + d, c.pos + length + d + PLHEADER_LENGTH)
                if self._glrt.glrt(y, c.freq + _GRID_STEP * np.arange(-2, 3)).metric >= VERIFY_THRESHOLD:
                    return self._lock(c)
            self._cands.pop(0)
        return None

    def _examine(self, p: int, f0: float, with_pilots: bool) -> _Candidate | None:
        """Coherent test of a candidate position (frequency grid around f0)."""
        half = 0.08 if with_pilots else 0.16
        f0 = min(max(f0, -ACQUIRE_RANGE), ACQUIRE_RANGE)
        lo = max(f0 - half, -ACQUIRE_RANGE)
        hi = min(f0 + half, ACQUIRE_RANGE)
        grid = np.arange(lo, hi + 1e-12, _GRID_STEP)
        y = self._sym.get(0, p, p + PLHEADER_LENGTH)
        metric, words, corrs = self._glrt.grid(y, grid)
        i = int(np.argmax(metric))
        if metric[i] >= 0.8 * GLRT_THRESHOLD:  # (between grid points it can be up to 10 % higher)
            m = self._glrt.glrt(y, grid)
            if m.metric >= GLRT_THRESHOLD:
                return _Candidate(p, m.word, m.freq, m.metric, m.metric >= STRONG_THRESHOLD)
        word = int(words[i])
        if (word & 1 or word >> 2 == 0) and metric[i] >= 0.5 * GLRT_PILOT_THRESHOLD:
            # the header's correlation at the grid frequency, plus the two pilot blocks'
            f = float(grid[i])
            num = abs(corrs[i]) ** 2
            den = PLHEADER_LENGTH * float(np.sum(np.abs(y.astype(np.complex128)) ** 2))
            for off, ref in _pilot_refs(self.gold_code):
                yb = self._sym.get(0, p + off, p + off + ref.size).astype(np.complex128)
                k = np.arange(off, off + ref.size) - 0.5 * (PLHEADER_LENGTH - 1)
                num += abs(np.sum(yb * np.conj(ref) * np.exp(-2j * np.pi * f * k))) ** 2
                den += ref.size * float(np.sum(np.abs(yb) ** 2))
            if den > 0 and num / den >= GLRT_PILOT_THRESHOLD:
                m = self._glrt.glrt(y, grid)
                return _Candidate(p, m.word, m.freq, m.metric)
        return None

    def _lookback(self, c: _Candidate) -> int:
        """Symbols from the earliest PLHEADER found before candidate c to c (0: none).

        Going back frame by frame: a header at p - L (+-2 symbols for slips of the timing loop,
        which may not have converged at the start of a stream) whose own PLS word gives the
        frame length L exactly, at the candidate's frequency.
        """
        back = 0
        p = c.pos
        self._lookback_word = c.word
        freqs = c.freq + _GRID_STEP * np.arange(-1, 2)
        for _ in range(MAX_LOOKBACK_FRAMES):
            best = None
            for length in _frame_lengths():
                for d in range(-SLIP, SLIP + 1):
                    q = p - length + d
                    if q < self._sym.base:
                        continue
                    m = self._glrt.glrt(self._sym.get(0, q, q + PLHEADER_LENGTH), freqs)
                    if m.metric >= VERIFY_THRESHOLD and frame_length(m.word) == length:
                        if best is None or m.metric > best[1]:
                            best = (q, m.metric, length, m.word)
            if best is None:
                break
            p = best[0]
            back += best[2]
            self._lookback_word = best[3]
        return back

    def _lock(self, c: _Candidate) -> FrontEnd:
        """Start a new front end a little before candidate c, with its frequency removed."""
        fe = self._fe
        # earlier frames: headers exactly one frame length apart before the candidate
        back = self._lookback(c)
        # the symbol grid: a straight line through the old front end's instants, from the earliest
        # header found (past the loop's pull-in at the front end's start) to the end of the
        # verified frame, or over the symbols after an unverified strong header; evaluated at the
        # candidate (inside the fit) and moved back by whole frames (their lengths are exact, a
        # slip of the old loop's does not matter)
        length = frame_length(c.word)
        end = c.pos + (DIFF_SPAN if c.strong else length)
        lo = max(c.pos - back, self._sym.base, self._fe_first_symbol + PULL_IN_SYMBOLS)
        lo = max(min(lo, end - 1024), self._sym.base)  # at least 1024 symbols
        k = np.arange(lo, end)
        t = self._sym.get(1, int(k[0]), int(k[-1]) + 1)
        kc = k - k.mean()
        per = float(np.dot(kc, t - t.mean()) / np.dot(kc, kc))
        pos = float(t.mean() + per * (c.pos - k.mean())) - back * per
        clock = min(max(per / self.sps - 1.0, -0.004), 0.004)
        f_new = fe.frequency + c.freq / per
        start = pos - RESTART_MARGIN * per
        n0 = int(math.floor(start)) - fe.delay - 2 * self.sps - 8
        if n0 < self._raw.base:  # only at the start of the stream (the margin keeps enough otherwise):
            n0 = self._raw.base  # the filter takes the samples before it as zeros, as they were
            if start < n0:  # first instant: the earliest one of the grid at or after n0
                start = pos - math.floor((pos - n0) / per) * per
        # input power over the verified frame, for the new AGC (not the old AGC's state: that
        # depends on how far the old front end has run, i.e. on the chunking)
        a = max(int(pos), self._raw.base)
        seg = self._raw.get(0, a, max(int(t[-1]), a + 1))
        power = float(np.mean(np.abs(seg.astype(np.complex128)) ** 2)) if seg.size else 1.0
        ys = self._sym.get(0, int(k[0]), int(k[-1]) + 1).astype(np.complex128)
        sym_power = float(np.mean(ys.real**2 + ys.imag**2))
        new = FrontEnd(
            self.rolloff, self.sps, self._mf_span, self.locked_timing_bandwidth,
            frequency=float(np.clip(f_new, -0.5, 0.5)),
            first_sample=n0, position=start, clock_offset=clock, agc_power=max(power, 1e-30),
            agc_time_constant=LOCKED_AGC_TIME_CONSTANT,
            timing_power=max(sym_power, 1e-30), settle_symbols=RESTART_MARGIN + SETTLE_SYMBOLS,
            settle_bandwidth=self.timing_bandwidth,
        )  # fmt: skip
        if not self._ever_locked:
            self.samples_before_lock = int(round(pos))
        self._ever_locked = True
        self.restarts += 1
        self._mode = "locked"
        self._cursor = int(round((pos - start) / per))  # the header, counted from the first instant
        self._first = True
        self._tracker = PhaseTracker(*self._q)
        self._noise_rel = 1.0
        self._hdr = None
        self._init = None
        self._init_span = 0
        self._lock_word = self._lookback_word  # the first header's word, known since acquisition
        self._clock = clock
        self._omega_fe = 2 * math.pi * new.frequency * per
        return new

    # -- tracking

    def _find_header(self, pos: int, slip: int, freq: float, grid: int = 0) -> tuple[int, object] | None:
        """Best header within pos +- slip (coherent test at freq, +-grid steps)."""
        best = None
        freqs = freq + _GRID_STEP * np.arange(-grid, grid + 1)
        for d in range(-slip, slip + 1):  # the grid at each position, then refine the best only
            p = pos + d
            if p < self._sym.base or p + PLHEADER_LENGTH > self._sym.end:  # not (all) received yet
                continue
            m = float(self._glrt.grid(self._sym.get(0, p, p + PLHEADER_LENGTH), freqs)[0].max())
            if best is None or m > best[1]:
                best = (p, m)
        if best is None:
            return None
        p = best[0]
        return p, self._glrt.glrt(self._sym.get(0, p, p + PLHEADER_LENGTH), freqs)

    def _find_word(self, pos: int, slip: int, word: int):
        """The header of a known PLS word within pos +- slip (after a lock: the acquisition's word).

        Its frequency is searched over +-3 grid steps and refined.
        """
        best = None
        freqs = _GRID_STEP * np.arange(-3, 4)
        for d in range(-slip, slip + 1):
            p = pos + d
            if p < self._sym.base or p + PLHEADER_LENGTH > self._sym.end:  # not (all) received yet
                continue
            y = self._sym.get(0, p, p + PLHEADER_LENGTH)
            pw = [abs(self._glrt.correlate(y, word, f)) ** 2 for f in freqs]
            i = int(np.argmax(pw))
            if best is None or pw[i] > best[0]:
                best = (pw[i], p, float(freqs[i]))
        if best is None:
            return None
        _, p, f = best
        y = self._sym.get(0, p, p + PLHEADER_LENGTH)
        f = self._glrt._refine(y, word, f, _GRID_STEP)
        corr = self._glrt.correlate(y, word, f)
        energy = float(np.sum(np.abs(y.astype(np.complex128)) ** 2))
        metric = abs(corr) ** 2 / (PLHEADER_LENGTH * energy) if energy > 0 else 0.0
        return p, HeaderMatch(word, float(metric), f, float(np.angle(corr)), abs(corr) / PLHEADER_LENGTH)

    def _residual_freq(self, k: int) -> float:
        """Tracker frequency minus the front end's around symbol k, cycles/symbol (0 before tracking).

        The front end's rotation per symbol is read from the phases of the symbols k .. k + 89
        when they are in (a retune may have changed it since the last frame).
        """
        if not self._tracker.started:
            return 0.0
        omega_fe = self._omega_fe
        if self._sym.base <= k and k + PLHEADER_LENGTH <= self._sym.end:
            phi = self._sym.get(2, k, k + PLHEADER_LENGTH)
            omega_fe = float(phi[-1] - phi[0]) / (PLHEADER_LENGTH - 1)
        return (self._tracker.omega - omega_fe) / (2 * math.pi)

    def _track(self, out: list[SyncedFrame]) -> bool:
        """Process the frame at the cursor once its symbols are in; False: wait for more."""
        first = self._first
        slip = SLIP + 1 if first else SLIP
        c = self._cursor
        if self._hdr is None or self._hdr[0] != c:
            if self._sym.end < c + slip + PLHEADER_LENGTH:
                return False
            if first and self._lock_word is not None:  # the word acquisition found: only where and
                found = self._find_word(c, slip, self._lock_word)  # at which frequency exactly
            else:
                found = self._find_header(c, slip, self._residual_freq(c), grid=3 if first else 0)
            if not first and (found is None or found[1].metric < LOST_THRESHOLD):
                # the tracker may have lost the carrier: look wider before giving up, and start the
                # tracker again from this header if that finds it
                wide = self._find_header(c, slip, self._residual_freq(c), grid=8)
                if wide is not None and wide[1].metric >= VERIFY_THRESHOLD:
                    found = wide
                    self._first = first = True
                    self._tracker = PhaseTracker(*self._q)
                    self._init, self._init_span = None, 0
            if found is None or found[1].metric < LOST_THRESHOLD or not _word_ok(found[1].word):
                metric = found[1].metric if found else 0.0
                detail = f"PLHEADER not found at the expected position (metric {metric:.3f})"
                out.append(self._lost(c, detail))
                return True
            self._hdr = (c, found)
        p, m = self._hdr[1]
        length = frame_length(m.word)
        if self._sym.end < p + length:
            return False
        while first and self._init is None:
            span = self._init_span
            self._init = self._initial_frequency(p, m, length)
            if self._init is None and (self._init_span == span or self._sym.end < p + self._init_span):
                return False  # the M-th power needs the next frames too
        out.append(self._frame(p, m, length))
        self._first = False
        self._lock_word = None
        self._hdr = None
        self._cursor = p + length
        keep = self._cursor - SLIP - 1
        self._sym.drop_before(keep - keep % SCAN_BLOCK)  # a search after a loss starts on a block
        return True

    def _initial_frequency(self, p: int, m, length: int) -> tuple[float, float] | None:
        """Residual frequency at the first header and its rate, or None while more symbols are needed.

        Cycles/symbol and cycles/symbol^2.
        QPSK and 8PSK: the M-th power of the frame's symbols (and, when that is not conclusive, of
        the following frames' headers, pilots and data of a compatible modulation, up to
        :data:`INIT_MAX_SYMBOLS`), which is free of the pilots' ambiguity (their spacing allows
        only +-1/2952 cycles/symbol). Otherwise the header and pilot blocks.
        """
        order = _psk_order(m.word)
        if not order:
            if m.word >> 2 and len(_known_blocks(m.word, self.gold_code)) >= 3 and not self._ending:
                if self._sym.end < p + length + NEXT_FRAME_SPAN:
                    return None  # the next frame's header and first pilots decide the alias
            return self._first_frequency(p, m, length)
        span_end = p + max(length, self._init_span)
        if self._ending:  # (end of stream: what there is)
            span_end = min(span_end, max(self._sym.end, p + length))
        if self._sym.end < span_end:
            return None
        # the frames within the window, header after header
        z = np.zeros(span_end - p, np.complex128)
        q, word, n_used = p, m.word, 0
        while True:
            ln = frame_length(word)
            if q + ln > span_end:
                break
            y = self._sym.get(0, q, q + ln).astype(np.complex128)
            use = np.zeros(ln, bool)
            use[:PLHEADER_LENGTH] = True
            for off, r in _known_blocks(word, self.gold_code):
                use[off : off + r.size] = True
            mc = word >> 2
            mod = modcod_parameters(mc)[0] if mc else "QPSK"  # a dummy body is QPSK-like
            if mod == "QPSK" or (order == 8 and mod == "8PSK"):
                use[:] = True
            z[q - p : q - p + ln] = np.where(use, y**order / np.maximum(np.abs(y), 1e-30) ** (order - 2), 0)
            n_used += ln
            nxt = self._find_header(q + ln, SLIP, m.freq, grid=3)
            if nxt is None or nxt[1].metric < VERIFY_THRESHOLD or not _word_ok(nxt[1].word):
                break
            q, word = nxt[0], nxt[1].word
        z = z[:n_used]
        # search +-5 sigma of the header's estimate (Cramer-Rao bound of a 90-symbol tone at the
        # header's SNR), at least +-3e-4 cycles/symbol
        snr = max(m.metric / max(1.0 - m.metric, 1e-3), 1e-3)
        span = float(np.clip(5 * 4.6e-4 / math.sqrt(snr), 3e-4, 4e-3))
        f_all, ratio = _mth_power_peak(z, order, m.freq, span)
        more = self._init_span < INIT_MAX_SYMBOLS and not self._ending
        if ratio < INIT_RELIABLE and more and q + frame_length(word) > span_end:
            self._init_span = min(2 * max(self._init_span, length), INIT_MAX_SYMBOLS)
            return None
        span = max(2e-4, MAX_RATE * z.size)
        half = z.size // 2
        f1, r1 = _mth_power_peak(z[:half], order, f_all, span)
        f2, r2 = _mth_power_peak(z[half:], order, f_all, span)
        if min(r1, r2) < INIT_RELIABLE:
            return f_all + 0.0 * f1, 0.0
        rate = float(np.clip((f2 - f1) / (z.size - half), -MAX_RATE, MAX_RATE))
        tc = 0.5 * (PLHEADER_LENGTH - 1)
        return f_all + rate * (tc - 0.5 * (z.size - 1)), rate

    def _lost(self, c: int, detail: str) -> SyncedFrame:
        pos = self._sym.get(1, c, c + 1)
        start = int(round(float(pos[0]))) if pos.size else self._fe.next_sample
        ev = SyncedFrame("lost", start, -1, 0.0, detail=detail, clock_offset=self._clock)
        self._hdr = None
        self._enter_acquire(scan_from=c + 1)
        return ev

    def _frame(self, p: int, m, length: int) -> SyncedFrame:
        """Carrier correction, gain and Es/N0 of the frame at p (header match m)."""
        y = self._sym.get(0, p, p + length)
        phi = self._sym.get(2, p, p + length)
        tpos = self._sym.get(1, p, p + length)
        pos = tpos[:1]
        # the front end's rotation per symbol and the symbol period over this frame (from the
        # symbols themselves: the same whatever the chunking)
        self._omega_fe = float(phi[-1] - phi[0]) / (length - 1)
        self._clock = float(tpos[-1] - tpos[0]) / ((length - 1) * self.sps) - 1.0
        table = _block_table(m.word, self.gold_code)  # header first, then pilots (or dummy body)
        starts, lens, roff, refs = table
        has_blocks = starts.size > 1
        tr = self._tracker
        centre = p + 0.5 * (PLHEADER_LENGTH - 1)
        # this frame's noise (for the tracker's measurement weights), from its own known blocks:
        # the Es/N0 may change from frame to frame (ACM)
        corr, power = block_stats(y, table)
        self._noise_rel = _noise_from_blocks(corr, power, lens)
        first_block = 0  # the header is this frame's first measurement ...
        if self._first or not tr.started:
            first_block = 1  # ... unless the tracker starts there
            f_res, rate = self._init if self._init is not None else self._first_frequency(p, m, length)
            self._init = None
            hc = self._glrt.correlate(y[:PLHEADER_LENGTH], m.word, f_res)
            omega = 2 * math.pi * f_res + self._omega_fe
            phi_c = float(np.interp(centre - p, np.arange(PLHEADER_LENGTH), phi[:PLHEADER_LENGTH]))
            var_theta = self._noise_rel / (2 * PLHEADER_LENGTH)
            # (APSK with pilots: refined on its pilots, see _resolve_alias)
            precise = _psk_order(m.word) or (m.word >> 2 and starts.size >= 4)
            var_omega = (2 * math.pi * (2e-5 if precise else 2e-4)) ** 2
            if not has_blocks:  # no pilots: no frequency rate (see _pilotless_mpsk)
                rate = 0.0
            tr.start(centre, float(np.angle(hc)) + phi_c, omega, var_theta, var_omega, 2 * math.pi * rate,
                     4e-13 if has_blocks else 1e-24)  # fmt: skip
        sel = slice(first_block, None)
        cfo = tr.omega / (2 * math.pi)
        if not has_blocks and m.word >> 2:  # no pilots: from the data
            if first_block == 0:
                tr.smooth_frame(y, phi, p, starts[:1], lens[:1], roff[:1], refs, self._noise_rel)
            if _psk_order(m.word):
                ycorr = self._pilotless_mpsk(p, y, phi, m, tr, _psk_order(m.word))
            else:
                ycorr = self._pilotless(p, y, phi, m, tr, centre)
        else:
            _, centres, thetas = tr.smooth_frame(y, phi, p, starts[sel], lens[sel], roff[sel], refs,
                                                 self._noise_rel)  # fmt: skip
            inside = centres >= p  # the smoothed state before this frame is not needed here
            centres, thetas, curv = centres[inside], thetas[inside], tr.smoothed_alpha[inside]
            om = tr.smoothed_omega[inside]
            cfo = float(om[0]) / (2 * math.pi)  # at the header
            # anchors at the frame's first and last symbol, from the smoothed state of the nearest
            # block (its frequency and rate, not the chord of the neighbouring segment)
            d0 = p - centres[0]
            d1 = p + length - 1 - centres[-1]
            centres = np.concatenate([[p], centres, [p + length - 1]])
            thetas = np.concatenate([[thetas[0] + om[0] * d0 + 0.5 * curv[0] * d0 * d0], thetas,
                                     [thetas[-1] + om[-1] * d1 + 0.5 * curv[-1] * d1 * d1]])  # fmt: skip
            curv = np.concatenate([[curv[0]], curv, [curv[-1]]])
            ycorr = self._derotate(y, p, phi, tpos, centres, thetas, curv)
            if m.word >> 2 and not _psk_order(m.word):  # APSK: the rings need the level right
                ycorr = _level(ycorr, table, block_stats(ycorr, table), self._noise_rel)
        # gain and noise from the header and the known blocks (|ref| = 1), after the correction
        corr, power = block_stats(ycorr, table)
        n = int(lens.sum())
        gain = complex(corr.sum()) / n
        noise = max(float(power.sum()) - abs(gain) ** 2 * n, 0.0) / max(n - 1, 1)
        g2 = abs(gain) ** 2
        noise_rel = max(noise / g2, 1e-7) if g2 > 0 else 1.0
        ev = SyncedFrame(
            "frame", int(round(float(pos[0]))), m.word, m.metric, ycorr, gain, noise_rel,
            float(-10 * np.log10(noise_rel)), cfo, self._clock, refined=False,
        )  # fmt: skip
        # (the refined estimate is not used for tracking: the next frame starts from its own blocks)
        return refine_noise(ev) if self.refine else ev

    def _derotate(self, y, p, phi, tpos, centres, thetas, curv) -> np.ndarray:
        """Remove the tracked phase minus the front end's from the frame's symbols.

        The front end's phase is linear in the symbol index between its frequency changes, so the
        frame is cut there: within a piece the correction is the piecewise-quadratic total phase
        minus that piece's linear law, exact at every anchor.
        """
        cuts = [int(np.searchsorted(tpos, n)) for n in self._fe.rotator.changes(tpos[0], tpos[-1])]
        bounds = [0, *[c for c in cuts if 0 < c < y.size], y.size]
        out = np.empty_like(y)
        k = np.arange(y.size)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if b - a < 2:
                lin = np.full(centres.size, float(phi[a]))
            else:  # the piece's law, evaluated (extrapolated) at every anchor
                slope = (float(phi[b - 1]) - float(phi[a])) / (b - 1 - a)
                lin = float(phi[a]) + slope * (centres - p - a)
            out[a:b] = derotate(y[a:b], p + a, centres, thetas - lin, curv)
        del k
        return out

    def _first_frequency(self, p: int, m, length: int) -> tuple[float, float]:
        """Residual frequency at the header centre and its rate, for a first APSK or dummy frame.

        Cycles/symbol and cycles/symbol^2, well inside the pilot spacing: the header and pilot
        blocks, non-coherently over blocks, over the frame and over each half of it (the two
        halves give a Doppler rate). (QPSK and 8PSK: :meth:`_initial_frequency`.)
        """
        f_hdr = m.freq
        y = self._sym.get(0, p, p + length)
        half = length // 2
        blocks = [(0, self._glrt.reference(m.word))] + list(_known_blocks(m.word, self.gold_code))
        f_all = _block_frequency(y, blocks, f_hdr, 0.004)
        first = [b for b in blocks if b[0] + b[1].size <= half]
        second = [b for b in blocks if b[0] >= half]
        if len(first) < 2 or len(second) < 2:
            return f_all, 0.0
        span = max(2e-4, MAX_RATE * length)
        f1 = _block_frequency(y, first, f_all, span)
        f2 = _block_frequency(y, second, f_all, span)
        t1 = float(np.mean([o + 0.5 * r.size for o, r in first]))
        t2 = float(np.mean([o + 0.5 * r.size for o, r in second]))
        rate = float(np.clip((f2 - f1) / (t2 - t1), -MAX_RATE, MAX_RATE))
        tc = 0.5 * (PLHEADER_LENGTH - 1)
        f_hdr = f_all + rate * (tc - 0.5 * (t1 + t2))
        if m.word >> 2 and len(blocks) >= 4:
            nxt = self._next_frame_blocks(p, length, m.freq)
            if nxt:
                y = self._sym.get(0, p, min(self._sym.end, p + length + NEXT_FRAME_SPAN))
            return _resolve_alias(y, blocks + nxt, _points(m.word), f_all, length)
        return f_hdr, rate

    def _next_frame_blocks(self, p: int, length: int, freq: float) -> list:
        """The next PLFRAME's header and first two pilot blocks, at offsets from p, if found."""
        q0 = p + length
        if self._sym.end < q0 + SLIP + PLHEADER_LENGTH:
            return []
        nxt = self._find_header(q0, SLIP, freq, grid=3)
        if nxt is None or nxt[1].metric < VERIFY_THRESHOLD or not _word_ok(nxt[1].word):
            return []
        q, w = nxt[0], nxt[1].word
        out = [(q - p, self._glrt.reference(w))]
        for off, r in _known_blocks(w, self.gold_code)[:2]:
            if q + off + r.size <= self._sym.end:
                out.append((q - p + off, r))
        return out

    def _pilotless_mpsk(self, p, y, phi, m, tr, order) -> np.ndarray:
        """Phase of a QPSK or 8PSK frame without pilots, from its M-th power (non data aided).

        The tracker's prediction (from the header on) is removed first; what is left is a slow
        phase wander, estimated over windows of W symbols as angle(sum y^M / |y|^(M-1)) / M,
        unwrapped from window to window (ambiguity 2 pi / M) starting at the header, and
        interpolated linearly between window centres. W grows as the M-th power's SNR falls
        (about 20 / SNR_M symbols, 128 .. 4096). The tracker continues from the frame's end.
        """
        n = y.size
        k = np.arange(n, dtype=np.float64)
        pred = tr.predict_phase(p + k) - phi[:n]
        u = y.astype(np.complex128) * np.exp(-1j * pred)
        hdr_res = float(np.angle(np.sum(u[:PLHEADER_LENGTH] * np.conj(self._glrt.reference(m.word)))))
        body = u[PLHEADER_LENGTH:]
        z = body**order / np.maximum(np.abs(body), 1e-30) ** (order - 1)
        ref = np.pi if order == 4 else 0.0  # angle of s^M: -1 for QPSK (and pi/2-BPSK), +1 for 8PSK
        mz = z.mean()
        rho = abs(mz) ** 2 / max(float(np.mean(np.abs(z) ** 2)) - abs(mz) ** 2, 1e-30)
        w = int(np.clip(2 ** math.ceil(math.log2(max(20.0 / max(rho, 1e-6), 1.0))), 128, 4096))
        nwin = max(1, body.size // w)
        edges = np.linspace(0, body.size, nwin + 1).astype(int)
        cen = [0.5 * (PLHEADER_LENGTH - 1)]
        est = [hdr_res]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            e = (float(np.angle(np.sum(z[a:b]))) - ref) / order
            step = 2 * np.pi / order
            guess = est[-1] if len(est) < 3 else 2 * est[-1] - est[-2]  # the drift continued
            e += step * round((guess - e) / step)
            cen.append(PLHEADER_LENGTH + 0.5 * (a + b - 1))
            est.append(e)
        cen = np.array(cen)
        est = np.array(est)
        corr = np.interp(k, cen, est)
        out = (u * np.exp(-1j * corr)).astype(np.complex64)
        # continue the tracker from the frame's last symbol: the phase there and the frequency
        # the windows' drift adds (least squares over the frame)
        slope = float(np.polyfit(cen, est, 1)[0]) if cen.size >= 3 else 0.0
        k_end = p + n - 1
        theta_end = float(tr.predict_phase(k_end) + corr[-1])
        var_w = self._noise_rel / max(rho, 1e-6) / (order**2 * 2 * w) + 1e-6
        # no frequency rate without pilots: the headers alone cannot tell it from noise
        tr.start(k_end, theta_end, tr.omega + float(tr.x[2]) * (k_end - tr.k) + slope, var_w,
                 (2 * math.pi * 2e-6) ** 2, 0.0, 1e-24)  # fmt: skip
        return out

    def _pilotless(self, p, y, phi, m, tr, centre) -> np.ndarray:
        """Phase of a frame without pilots: decision-directed loop from the header on."""
        hdr = y[:PLHEADER_LENGTH]
        k = np.arange(y.size) + p
        theta_fe = phi[: y.size]
        # start: the tracker's state at the header centre, as a residual to the front end's phase
        theta0 = float(tr.predict_phase(centre) - np.interp(centre - p, np.arange(theta_fe.size), theta_fe))
        omega_fe = self._omega_fe
        omega0 = tr.omega - omega_fe
        gain, _ = _fit(hdr * np.exp(-1j * (theta0 + omega0 * (k[:PLHEADER_LENGTH] - centre))),
                       self._glrt.reference(m.word))  # fmt: skip
        amp = abs(gain) if abs(gain) > 0 else 1.0
        body = y[PLHEADER_LENGTH:] / np.complex64(amp)
        start = theta0 + omega0 * (PLHEADER_LENGTH - 0.5 * (PLHEADER_LENGTH - 1))
        th, w_end = dd_pll(body, _points(m.word), start, omega0, self.dd_bandwidth)
        out = np.empty_like(y)
        out[:PLHEADER_LENGTH] = hdr * np.exp(-1j * (theta0 + omega0 * (k[:PLHEADER_LENGTH] - centre))).astype(
            np.complex64
        )
        out[PLHEADER_LENGTH:] = y[PLHEADER_LENGTH:] * np.exp(-1j * th).astype(np.complex64)
        # hand the loop's end state to the tracker (total phase at the last symbol)
        k_end = p + y.size - 1
        theta_end = float(th[-1] + theta_fe[y.size - 1])
        tr.start(k_end, theta_end, omega_fe + w_end,
                 self._noise_rel / 64 + 0.05, (2 * math.pi * 2e-5) ** 2)  # fmt: skip
        return out


def _word_ok(word: int) -> bool:
    from modem.sync.plheader import word_valid

    return word_valid(word)


def refine_noise(frame: SyncedFrame) -> SyncedFrame:
    """Refine a frame's ``noise_var`` and ``esn0_db`` with its data symbols, in place (once).

    What a synchronizer made with ``refine=True`` (the default) does to every frame before it
    returns it; with ``refine=False`` the consumer calls this where it suits it (the receiver's
    decoding thread). Returns ``frame``.
    """
    if frame.kind == "frame" and not frame.refined:
        frame.noise_var = _refine_noise(frame.symbols, frame.word, frame.gain, frame.noise_var)
        frame.esn0_db = float(-10 * np.log10(frame.noise_var))
        frame.refined = True
    return frame


def _refine_noise(y: np.ndarray, word: int, gain: complex, noise_rel: float) -> float:
    """N0 / Es of a frame from all its symbols, where that beats the header and pilots alone.

    QPSK frames below 2 dB (every symbol of the frame, header and pilots too, is a QPSK point):
    the maximum likelihood amplitude and noise of the I and Q components as BPSK, the data's
    signs unknown, the header's and pilots' known, by expectation-maximization
    (:func:`_em_bpsk`, from the header-and-pilot estimate, over every symbol). 8PSK frames and
    QPSK above 2 dB: the second- and fourth-moment estimator (M2M4, Es = sqrt(2 M2^2 - M4),
    N0 = M2 - Es), free of phase and decisions. APSK frames: hard decisions on up to
    :data:`APSK_NOISE_SYMBOLS` data symbols, their mean squared error (which symbol errors bias
    low) mapped back to the Es/N0 that gives it (:func:`_decision_table`, this constellation's),
    the amplitude from the symbols' mean power (Es + N0); see :func:`_apsk_noise`. An estimate
    more than 3 dB from the header-and-pilot one is not believed (a broken frame);
    ``noise_rel`` is returned then.
    """
    mc = word >> 2
    if mc == 0:
        return noise_rel
    if _psk_order(word) == 4 and abs(gain) > 0 and noise_rel > QPSK_EM_BELOW:
        data = _data_index(word)
        z = y[data] * np.complex64(np.conj(gain) / abs(gain))
        n_known = y.size - data.size
        known_m2 = float(np.sum(np.abs(y) ** 2)) - float(np.sum(np.abs(z) ** 2))
        # the header and pilots: sum over their I and Q of sign * x = sqrt(2) Re(sum z conj(ref))
        known_sum = math.sqrt(2.0) * abs(gain) * n_known
        a0, s0 = abs(gain) / math.sqrt(2.0), max(noise_rel, 1e-6) * abs(gain) ** 2 / 2
        a, s2 = _em_bpsk(z.view(np.float32), known_sum, known_m2, 2 * n_known, a0, s0)
        est = s2 / (a * a) if a > 0 else 0.0
    elif _psk_order(word):  # 8PSK, and QPSK above 2 dB
        m2, m4 = _moments(y)
        es2 = 2 * m2 * m2 - m4
        if es2 <= 0:
            return noise_rel
        es = math.sqrt(es2)
        est = (m2 - es) / es
    elif abs(gain) > 0:
        est = _apsk_noise(y, word, gain, noise_rel)
    else:
        return noise_rel
    if est > 0 and abs(math.log10(est / noise_rel)) < 0.3:  # within 3 dB of the pilots' estimate
        return max(est, 1e-7)
    return noise_rel


def _apsk_noise(y: np.ndarray, word: int, gain: complex, noise_rel: float) -> float:
    """N0 / Es of an APSK frame from hard decisions on its data symbols, unbiased.

    z = y / gain (the header and pilots' gain and phase). With the decisions p(z) fixed, the
    mean squared error at amplitude A, mean |z / A - p|^2 = Y / A^2 - 2 R / A + P (Y, R, P:
    means of |z|^2, Re(z conj p), |p|^2), must equal g(N0 / A^2), the constellation's decision
    error at that noise (:func:`_decision_table`), while Y = A^2 + N0: a fixed point in
    rho = N0 / A^2 (4 iterations from the pilots' estimate).
    """
    data = _data_index(word)
    idx = data[:: max(1, -(-data.size // APSK_NOISE_SYMBOLS))]
    z = np.ascontiguousarray(y[idx]) * np.complex64(1.0 / gain)
    pts = _points(word)
    cells, half = _decision_cells(word >> 2)
    yy, rr, pp = _decision_stats(z, pts, cells, half)
    grid, log_g = _decision_table(word >> 2)
    rho = max(noise_rel, 1e-7)
    for _ in range(4):
        amp = math.sqrt(yy / (1.0 + rho))
        mse = yy / (amp * amp) - 2 * rr / amp + pp
        if mse <= 0:
            return noise_rel
        rho = 10 ** (-float(np.interp(-math.log(mse), -log_g, grid)) / 10)
    return rho


@lru_cache(maxsize=64)
def _data_index(word: int) -> np.ndarray:
    """Positions of a PLFRAME's data symbols (not header, not pilots)."""
    data = np.ones(frame_length(word), bool)
    data[:PLHEADER_LENGTH] = False
    for off, r in _known_blocks(word, 0):  # pilot positions (the same for any scrambling code)
        data[off : off + r.size] = False
    out = np.flatnonzero(data)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=32)
def _decision_table(mc: int) -> tuple[np.ndarray, np.ndarray]:
    """(Es/N0 grid in dB, log of the mean squared hard-decision error there) of a constellation.

    The error of z = s + n against its nearest point, s uniform over the constellation (unit
    mean power), n complex Gaussian; over a fixed set of 32768 noise samples (the same at
    every grid point, so the curve is smooth and monotonic), -6 .. 36 dB in 1 dB steps.
    """
    pts = _points(mc << 2)
    cells, half = _decision_cells(mc)
    rng = np.random.default_rng(20240607)
    ns = 32768
    sym = np.ascontiguousarray(np.resize(pts, ns))
    w = ((rng.standard_normal(ns) + 1j * rng.standard_normal(ns)) / math.sqrt(2.0)).astype(np.complex64)
    grid = np.arange(-6.0, 36.5, 1.0)
    log_g = np.empty(grid.size)
    for i, r in enumerate(grid):
        z = sym + np.complex64(10 ** (-r / 20)) * w
        yy, rr, pp = _decision_stats(z, pts, cells, half)
        log_g[i] = math.log(max(yy - 2 * rr + pp, 1e-300))
    grid.setflags(write=False)
    log_g.setflags(write=False)
    return grid, log_g


#: Cells per axis of the nearest-point lookup (see _decision_cells).
DECISION_CELLS = 256


@lru_cache(maxsize=32)
def _decision_cells(mc: int) -> tuple[np.ndarray, float]:
    """Nearest-point lookup of a constellation: (cells, half width of the square covered).

    A DECISION_CELLS^2 grid over the square +-half: cell (i, j) holds the index of the point
    nearest to all four of its corners, or -1 where they differ (the decision regions are convex,
    so a cell whose corners agree lies inside one region: the lookup is exact).
    """
    pts = _points(mc << 2).astype(np.complex128)
    half = 1.6 * float(np.max(np.abs(pts)))
    edges = np.linspace(-half, half, DECISION_CELLS + 1)
    corners = edges[None, :] + 1j * edges[:, None]  # [row = imag, col = real]
    near = np.argmin(np.abs(corners[..., None] - pts) ** 2, axis=-1)
    c00 = near[:-1, :-1]
    same = (c00 == near[1:, :-1]) & (c00 == near[:-1, 1:]) & (c00 == near[1:, 1:])
    cells = np.where(same, c00, -1).astype(np.int8)
    cells.setflags(write=False)
    return cells, half


@nb.njit(cache=True, nogil=True)
def _decision_stats(z, pts, cells, half):  # pragma: no cover - compiled
    """Means of |z|^2, Re(z conj p) and |p|^2, p the constellation point nearest z.

    The nearest point from the lookup ``cells`` (see :func:`_decision_cells`) where it is
    decided, by search otherwise.
    """
    n = z.size
    m = cells.shape[0]
    scale = m / (2.0 * half)
    yy = 0.0
    rr = 0.0
    pp = 0.0
    for i in range(n):
        v = z[i]
        kb = -1
        cx = (v.real + half) * scale
        cy = (v.imag + half) * scale
        if 0.0 <= cx < m and 0.0 <= cy < m:
            kb = cells[int(cy), int(cx)]
        if kb < 0:
            best = np.inf
            for k in range(pts.size):
                dr = v.real - pts[k].real
                di = v.imag - pts[k].imag
                d = dr * dr + di * di
                if d < best:
                    best = d
                    kb = k
        q = pts[kb]
        yy += v.real * v.real + v.imag * v.imag
        rr += v.real * q.real + v.imag * q.imag
        pp += q.real * q.real + q.imag * q.imag
    return yy / n, rr / n, pp / n


@nb.njit(cache=True, nogil=True)
def _em_bpsk(x, known_sum, known_m2, n_known, a, s2):  # pragma: no cover - compiled
    """ML amplitude a and noise variance s2 of x = +-a + n, some signs known, by EM.

    x: the samples of unknown sign; of the n_known samples of known sign, the sum of sign * x
    (``known_sum``) and of x^2 (``known_m2``). On a histogram of |x| (1024 bins up to
    a + 8 sqrt(s2) of the starting values; beyond, where tanh is 1, exact sums): one pass over
    the samples, then up to :data:`EM_ITERATIONS` iterations a <- (known_sum + sum
    x tanh(a x / s2)) / N, s2 <- mean(x^2) - a^2 (N all samples), until a changes by less than
    1e-7 of itself.
    """
    n = x.size + n_known
    nbins = 1024
    top = a + 8.0 * math.sqrt(max(s2, 0.0))
    if not top > 0.0:
        return a, s2
    w = top / nbins
    h = np.zeros(nbins)
    m2 = known_m2
    tail = known_sum  # plus the sum of |x| beyond the histogram
    for i in range(x.size):
        v = abs(float(x[i]))
        m2 += v * v
        j = int(v / w)
        if j < nbins:
            h[j] += 1.0
        else:
            tail += v
    m2 /= n
    centre = (np.arange(nbins) + 0.5) * w
    for _ in range(EM_ITERATIONS):
        if s2 <= 0.0 or a <= 0.0:
            break
        c = a / s2
        acc = tail
        for j in range(nbins):
            if h[j] > 0.0:
                acc += h[j] * centre[j] * math.tanh(c * centre[j])
        a_new = acc / n
        s2 = max(m2 - a_new * a_new, 1e-12 * m2)
        done = abs(a_new - a) <= 1e-7 * a
        a = a_new
        if done:
            break
    return a, s2


def _level(y: np.ndarray, table, stats, noise_rel: float) -> np.ndarray:
    """Divide out the amplitude's drift across a frame (AGC transients, fading).

    Each known block's amplitude (|sum y conj(s)| / N, its noise bias removed; from ``stats`` =
    :func:`block_stats`) is fitted with a quadratic in time over the frame (a straight line with
    fewer than 6 blocks, nothing with fewer than 3; weighted least squares, weights the block
    lengths), normalized to its mean over the frame; y is divided by it (unless it falls below
    0.2 somewhere: a broken fit). (:func:`_level_kernel`.)
    """
    starts, lens, _, _ = table
    if starts.size < 3:
        return y
    corr, power = stats
    out = np.empty_like(y)
    ok = _level_kernel(y, starts, lens, corr, power, noise_rel, 2 if starts.size >= 6 else 1, out)
    return out if ok else y


@nb.njit(cache=True, nogil=True)
def _level_kernel(y, starts, lens, corr, power, noise_rel, deg, out):  # pragma: no cover - compiled
    """:func:`_level`: the fit (normal equations, in x = (t - mean t) / N) and the division.

    Returns False (``out`` not written) where the normalized fit falls to 0.2 or below.
    """
    nb_ = starts.size
    n = y.size
    t = np.empty(nb_)
    for b in range(nb_):
        t[b] = starts[b] + 0.5 * (lens[b] - 1)
    tm = np.mean(t)
    m = np.zeros((3, 3))
    v = np.zeros(3)
    for b in range(nb_):
        c = abs(corr[b]) / lens[b]
        a2 = c * c - power[b] / lens[b] * noise_rel / (1.0 + noise_rel) / lens[b]  # E|c/N|^2 = A^2 + N0/N
        a = math.sqrt(max(a2, 1e-30))
        x = (t[b] - tm) / n
        w = float(lens[b])
        p = np.array([1.0, x, x * x])
        for i in range(deg + 1):
            v[i] += w * p[i] * a
            for j in range(deg + 1):
                m[i, j] += w * p[i] * p[j]
    c = np.zeros(3)
    c[: deg + 1] = np.linalg.solve(m[: deg + 1, : deg + 1], v[: deg + 1])
    # the fit's mean over the frame's symbols (sums of x and x^2 over i = 0 .. n-1 in closed
    # form) and its minimum (at the ends or the vertex), then the division
    s1 = n * (n - 1) / 2.0
    s2 = (n - 1) * n * (2 * n - 1) / 6.0
    mx = (s1 - n * tm) / (n * n)
    mx2 = (s2 - 2 * tm * s1 + n * tm * tm) / (n * n * n)
    mean = c[0] + c[1] * mx + c[2] * mx2
    xa = -tm / n
    xb = (n - 1 - tm) / n
    lo = min(c[0] + xa * (c[1] + xa * c[2]), c[0] + xb * (c[1] + xb * c[2]))
    if c[2] > 0:
        xv = -c[1] / (2 * c[2])
        if xa < xv < xb:
            lo = min(lo, c[0] + xv * (c[1] + xv * c[2]))
    if not (mean > 0 and lo > 0.2 * mean):
        return False
    for i in range(n):
        x = (i - tm) / n
        out[i] = y[i] * np.float32(mean / (c[0] + x * (c[1] + x * c[2])))
    return True


def _noise_from_blocks(corr: np.ndarray, power: np.ndarray, lens: np.ndarray) -> float:
    """N0 / A^2 from known blocks without their phases (each block coherent on its own).

    With c_b = sum y conj(s) over block b (N_b symbols, |s| = 1) and P_b = sum |y|^2:
    sum |c_b|^2 / N_b = A^2 N + B N0 and sum P_b = (A^2 + N0) N (N symbols, B blocks).
    """
    s1 = float(np.sum((corr.real**2 + corr.imag**2) / lens))
    s2 = float(np.sum(power))
    n = int(lens.sum())
    b = lens.size
    n0 = max((s2 - s1) / max(n - b, 1), 0.0)
    a2 = s2 / n - n0
    return float(np.clip(n0 / a2, 1e-4, 1e3)) if a2 > 0 else 1e3


def _fit(y: np.ndarray, r: np.ndarray) -> tuple[complex, float]:
    """Least-squares gain h of y = h r + n and the unbiased noise variance (float64)."""
    y = y.astype(np.complex128)
    r = r.astype(np.complex128)
    h = np.sum(np.conj(r) * y) / np.sum(np.abs(r) ** 2)
    e = y - h * r
    return complex(h), float(np.sum(e.real**2 + e.imag**2)) / max(y.size - 1, 1)


def _block_frequency(y: np.ndarray, blocks, f0: float, span: float, points: int = 161) -> float:
    """Frequency (cycles/symbol) maximizing the sum over known blocks of |correlation|^2, near f0.

    (:func:`_block_scores` on the grid f0 +- span, then a parabola through the best point.)
    """
    grid = f0 + np.linspace(-span, span, points)
    d = np.concatenate([y[off : off + r.size] * np.conj(r) for off, r in blocks]).astype(np.complex128)
    lens = np.array([r.size for _, r in blocks], np.int64)
    score = np.zeros(grid.size)
    _block_scores(d, lens, grid, score)
    i = int(np.argmax(score))
    if 0 < i < grid.size - 1:
        den = score[i - 1] - 2 * score[i] + score[i + 1]
        if den < 0:
            return float(grid[i] + 0.5 * (score[i - 1] - score[i + 1]) / den * (grid[1] - grid[0]))
    return float(grid[i])


@nb.njit(cache=True, nogil=True)
def _block_scores(d, lens, grid, score):  # pragma: no cover - compiled
    """score[g] = sum over blocks of |sum_k d_k exp(-j 2 pi grid[g] (k - centre))|^2.

    d: the blocks' y conj(ref), concatenated (lengths ``lens``).
    """
    for g in range(grid.size):
        w = -2.0 * np.pi * grid[g]
        rot = complex(math.cos(w), math.sin(w))
        acc = 0.0
        o = 0
        for b in range(lens.size):
            n = lens[b]
            h = -0.5 * (n - 1) * w
            ph = complex(math.cos(h), math.sin(h))
            c = 0j
            for k in range(n):
                c += d[o + k] * ph
                ph *= rot
            acc += c.real * c.real + c.imag * c.imag
            o += n
        score[g] = acc


def _resolve_alias(y: np.ndarray, blocks, pts: np.ndarray, f: float, length: int) -> tuple[float, float]:
    """The pilots' alias of a first APSK frame's frequency, then its frequency and rate, refined.

    Header and pilot blocks taken one by one (non-coherently) give the frequency to a few 1e-4
    cycles/symbol, not well enough to pick among the aliases the pilot spacing allows
    (f + k / 1476 cycles/symbol: the same phase at every pilot block of a frame). Candidates
    f + j / (4 * 1476), j = -6 .. 6 (one within 1/8 of the spacing, where the phase moves less
    than pi/4 from block to block): for each, every block's phase is measured and unwrapped in
    order. With the next frame's header and pilots among the blocks (offsets beyond ``length``),
    whose grid is shifted against this frame's, a wrong alias puts a step into those phases:
    the candidate whose phases a parabola fits best (the coherent sum after the fit) wins.
    Without them, the candidate whose data symbols lie nearest to the constellation (mean
    squared distance to the nearest point, phase interpolated between blocks, on up to
    :data:`ALIAS_SYMBOLS` of them) wins, a weaker test. The winner's frequency and rate come from
    a parabola through its unwrapped block phases, weighted by block length (a straight line with
    fewer than 6 blocks). (Frequency at the header centre in cycles/symbol, rate in
    cycles/symbol^2.)
    """
    n = y.size
    tc = 0.5 * (PLHEADER_LENGTH - 1)
    k = np.arange(n, dtype=np.float64) - tc
    cen = np.array([off + 0.5 * (r.size - 1) for off, r in blocks])
    lens = np.array([float(r.size) for _, r in blocks])
    t = cen - tc
    two_frames = bool(np.any(cen > length))
    idx = np.zeros(0, np.int64)
    if not two_frames:
        data = np.ones(min(n, length), bool)
        for off, r in blocks:
            data[off : off + r.size] = False
        idx = np.flatnonzero(data)
        idx = idx[:: max(1, idx.size // ALIAS_SYMBOLS)]
    y = y.astype(np.complex128)
    pilot_period = PILOT_BLOCK + 1440
    deg = 2 if cen.size >= 6 else 1
    best = (-np.inf, f, None)
    for a in range(-6, 7):
        fk = f + a / (4 * pilot_period)
        u = y * np.exp(-2j * np.pi * fk * k)
        c = np.array([np.sum(u[off : off + r.size] * np.conj(r)) for off, r in blocks])
        th = np.unwrap(np.angle(c))
        if two_frames:
            fit = np.polyval(np.polyfit(t, th, deg, w=np.sqrt(lens)), t)
            metric = float(np.sum(np.abs(c) * np.cos(th - fit)))
        else:
            amp = float(np.sum(np.abs(c)) / np.sum(lens))
            if amp <= 0 or idx.size == 0:
                continue
            v = u[idx] * np.exp(-1j * np.interp(idx, cen, th)) / amp
            metric = -float(np.mean(np.min(np.abs(v[:, None] - pts[None, :]) ** 2, axis=1)))
        if metric > best[0]:
            best = (metric, fk, th)
    _, fk, th = best
    if th is None:
        return f, 0.0
    if deg == 2:
        c2, c1, _ = np.polyfit(t, th, 2, w=np.sqrt(lens))
        rate = float(np.clip(c2 / np.pi, -MAX_RATE, MAX_RATE))  # theta = 2 pi (f t + rate t^2 / 2)
        return float(fk + c1 / (2 * np.pi)), rate
    return float(fk + np.polyfit(t, th, 1, w=np.sqrt(lens))[0] / (2 * np.pi)), 0.0


def _mth_power_peak(
    z: np.ndarray, order: int, f0: float, span: float, seg: int = 8192
) -> tuple[float, float]:
    """Frequency of the tone at M f in z near f0, and its significance.

    z holds M-th powers (zeros where unusable); the frequency (cycles/symbol) is searched within
    f0 +- span. The significance is the peak-to-average ratio over the search window
    (segments of ``seg`` symbols, periodograms summed) divided by the ratio noise alone reaches
    with probability 1e-3 (above 1: a tone).
    """
    n = z.size
    seg = min(seg, n)
    zz = z * np.exp(-2j * np.pi * order * f0 * np.arange(n))
    nfft = 1 << int(math.ceil(math.log2(4 * seg)))
    spec = np.zeros(nfft)
    for a in range(0, n - seg + 1, seg):
        spec += np.abs(np.fft.fft(zz[a : a + seg], nfft)) ** 2
    if n % seg and n > seg:  # the rest, aligned to the end
        spec += np.abs(np.fft.fft(zz[n - seg :], nfft)) ** 2
    fr = np.fft.fftfreq(nfft)
    sel = np.flatnonzero(np.abs(fr) <= order * span)
    i = int(sel[np.argmax(spec[sel])])
    p0, p1, p2 = spec[(i - 1) % nfft], spec[i], spec[(i + 1) % nfft]
    den = p0 - 2 * p1 + p2
    delta = 0.5 * (p0 - p2) / den if den < 0 else 0.0
    away = sel[np.abs(sel - i) > 8]
    ratio = float(p1 / max(np.mean(spec[away]), 1e-300)) if away.size else float("inf")
    # the ratio noise alone exceeds with probability 1e-3 over the window (the sum of nseg
    # periodograms of noise is Gamma(nseg)-distributed; bins 4x zero padded)
    nseg = max(n // seg + (1 if n % seg and n > seg else 0), 1)
    bins = max(sel.size * seg / nfft, 1.0)
    limit = float(gamma_dist.isf(1e-3 / bins, a=nseg, scale=1.0 / nseg))
    return f0 + (fr[i] + delta / nfft) / order, ratio / limit
