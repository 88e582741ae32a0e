"""DVB-S2 link facades: :class:`Transmitter` (bytes -> complex baseband) and :class:`Receiver`.

The transmitter chains mode and stream adaptation (BBFRAMEs, :mod:`modem.dvbs2.bbframe`),
BCH and LDPC encoding (:mod:`modem.fec`), bit interleaving and mapping
(:mod:`modem.dvbs2.mapping`), PL framing (:mod:`modem.dvbs2.plframe`) and RRC pulse
shaping (:mod:`modem.dvbs2.pulse`). The MODCOD may change on every PLFRAME (ACM); with
no data waiting it sends dummy PLFRAMEs. Frames of one MODCOD in a row are encoded as a
batch; on one core every MODCOD runs at more than 100 Msample/s at 2 samples per symbol
(``benchmarks/tx_throughput.py``).

The receiver here works on symbol-aligned input (one complex value per symbol,
starting at a PLHEADER, timing known, carrier known up to a constant complex gain of any
phase): non-coherent (GLRT) PLHEADER detection over the 128 PLS words, PL descrambling,
pilot removal, data-aided gain and Es/N0 estimation, max-log demapping, deinterleaving,
LDPC then BCH decoding (frames of the same code are decoded together, as one batch), BB
descrambling and stream reassembly. An unreadable or impossible PLHEADER is reported as a
lost frame and the receiver searches for the next one.

:meth:`Receiver.push_samples` takes raw complex baseband instead (unknown start, symbol-clock
offset, carrier frequency and phase, level): :class:`modem.sync.dvbs2.Dvbs2Synchronizer` finds
and tracks the PLFRAMEs and hands each one, carrier corrected, to the same decoding chain. With
``pipeline=True`` the decoding (Es/N0 refinement, demapping straight into code word order,
LDPC, BCH) runs in a background thread while the caller's thread synchronizes the next batch:
two cores (``benchmarks/rx_realtime.py``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import numba as nb
import numpy as np

from modem.checks import check_choice
from modem.dvbs2.bbframe import BBDeframer, BBHeader, GsFramer, TsFramer, bb_descramble
from modem.dvbs2.mapping import demap_deinterleave
from modem.dvbs2.modcod import DUMMY_PLFRAME_SYMBOLS, FRAMES, Modcod, frame_spec, modcod
from modem.dvbs2.plframe import PILOT_SYMBOL, PLHEADER_LENGTH, PlFramer, deframe, plheader
from modem.dvbs2.pulse import ROLLOFFS, PulseShaper
from modem.fec.bch import dvbs2_bch
from modem.fec.dvbs2_ldpc import dvbs2_code
from modem.fec.ldpc_decoder import LdpcDecoder

STREAMS = ("gs", "ts")
SOF_LENGTH = 26  #: PLHEADER start-of-frame symbols (§5.5.2.1)


def _check_int(value, name: str, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer ({what}); got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi} ({what}); got {value}")
    return int(value)


@dataclass(frozen=True)
class LinkConfig:
    """Configuration shared by a :class:`Transmitter` and its :class:`Receiver`.

    Attributes
    ----------
    frame : {"normal", "short"}
        FECFRAME size: 64800 or 16200 bits.
    pilots : bool
        Pilot blocks (36 symbols every 16 slots, §5.5.3).
    gold_code : int
        PL scrambling code number n, 0 .. 262141 (§5.5.4).
    stream : {"gs", "ts"}
        "gs": continuous generic stream of raw bytes (CCSDS transfer frames or any bytes, as
        CCSDS 131.3 carries them); "ts": MPEG transport stream of 188-byte packets.
    rolloff : {0.35, 0.25, 0.20}
        RRC roll-off (§5.6); also signalled in the BBHEADER.
    sps : int
        Samples per symbol of the shaped signal, 2 .. 64.
    span : int
        RRC filter length in symbols (even), 4 .. 128.
    ldpc_iterations : int
        Receiver: maximum layered LDPC iterations per frame, 1 .. 1000.
    symbol_rate_hz : float
        Symbol rate, symbols/s (> 0); only converts frequencies to Hz in reports
        (:attr:`FrameReport.cfo_hz`). The default 1.0 makes ``cfo_hz`` equal ``cfo_norm``.

    Raises
    ------
    ValueError, TypeError
        For any value out of range or of the wrong type; the message names the field.
    """

    frame: str = "normal"
    pilots: bool = True
    gold_code: int = 0
    stream: str = "gs"
    rolloff: float = 0.35
    sps: int = 2
    span: int = 16
    ldpc_iterations: int = 50
    symbol_rate_hz: float = 1.0

    def __post_init__(self):
        check_choice(self.frame, "frame", FRAMES)
        check_choice(self.stream, "stream", STREAMS)
        check_choice(self.rolloff, "rolloff", ROLLOFFS)
        if not isinstance(self.pilots, bool | np.bool_):
            raise TypeError(f"pilots must be True or False; got {self.pilots!r}")
        object.__setattr__(self, "pilots", bool(self.pilots))
        for name, lo, hi, what in (
            ("gold_code", 0, 262141, "PL scrambling code number"),
            ("sps", 2, 64, "samples per symbol"),
            ("span", 4, 128, "RRC length in symbols, even"),
            ("ldpc_iterations", 1, 1000, "maximum LDPC iterations"),
        ):
            object.__setattr__(self, name, _check_int(getattr(self, name), name, lo, hi, what))
        if self.span % 2:
            raise ValueError(f"span must be an even number of symbols in 4..128; got {self.span}")
        r = self.symbol_rate_hz
        number = isinstance(r, int | float | np.integer | np.floating) and not isinstance(r, bool)
        if not number or not 0 < r < 1e12:
            raise ValueError(f"symbol_rate_hz must be a number in (0, 1e12) symbols/s; got {r!r}")
        object.__setattr__(self, "symbol_rate_hz", float(r))


def _resolve_modcod(mc, frame: str) -> Modcod:
    if isinstance(mc, np.integer):
        mc = int(mc)
    m = modcod(mc)
    frame_spec(m, frame)  # raises for impossible combinations (short 9/10)
    return m


class Transmitter:
    """DVB-S2 transmitter: user bytes in, PLFRAME symbols or shaped complex baseband out.

    Parameters
    ----------
    config : LinkConfig

    Examples
    --------
    >>> tx = Transmitter(LinkConfig(frame="short"))
    >>> tx.push(b"hello Mars" * 100)
    >>> tx.flush()
    >>> iq = tx.modulate(tx.frames(["QPSK 1/2"] * tx.frames_needed("QPSK 1/2")))

    Attributes
    ----------
    frames_out, dummy_frames : int
        PLFRAMEs produced, of which dummy frames.

    Notes
    -----
    Frames of one MODCOD in a row are encoded as one batch: BBFRAMEs built in the byte
    domain (:meth:`GsFramer.next_frames`), BCH, the LDPC encoder's kernel, then bit
    interleaving, mapping, pilot insertion and PL scrambling fused in one pass
    (:meth:`PlFramer.frame_codewords`) straight into the output array.
    """

    def __init__(self, config: LinkConfig | None = None):
        if config is not None and not isinstance(config, LinkConfig):
            raise TypeError(f"config must be a LinkConfig; got {type(config).__name__}")
        self.config = config or LinkConfig()
        c = self.config
        framer_cls = TsFramer if c.stream == "ts" else GsFramer
        self.framer = framer_cls(ccm=False, rolloff=c.rolloff, scramble=True)
        self.plframer = PlFramer(c.gold_code)
        self.shaper = PulseShaper(c.rolloff, c.sps, c.span)
        self._dummy = self.plframer.dummy()
        self.frames_out = 0
        self.dummy_frames = 0

    @property
    def bytes_in(self) -> int:
        """User bytes pushed."""
        return self.framer.bytes_in

    @property
    def pending_bytes(self) -> int:
        """Bytes queued and not yet in a frame."""
        return self.framer.pending_bytes

    def push(self, data) -> None:
        """Queue user bytes (any chunking); TS mode takes whole 188-byte packets across calls.

        Raises
        ------
        TypeError
            ``data`` is not bytes-like or a uint8 array.
        ValueError
            TS mode: a packet does not start with 0x47 (nothing of the call is queued).
        """
        self.framer.push(data)

    def flush(self) -> None:
        """Send everything queued: the last frame is padded (§5.2.1) instead of waiting for more.

        Raises
        ------
        ValueError
            TS mode: the data ends inside a 188-byte packet.
        """
        self.framer.flush()

    def frames_needed(self, mc) -> int:
        """Frames of MODCOD ``mc`` that the queued (flushed) data fills, at most."""
        spec = frame_spec(_resolve_modcod(mc, self.config.frame), self.config.frame, self.config.pilots)
        return -(-self.pending_bytes * 8 // spec.data_field_bits)

    def frames(self, modcods) -> np.ndarray:
        """PLFRAME symbols for a sequence of MODCODs, one per frame (ACM), concatenated.

        Parameters
        ----------
        modcods : sequence of int, str or Modcod
            The MODCOD of each successive PLFRAME. A frame for which no data is ready becomes
            a dummy PLFRAME (3330 symbols). Every entry is checked before any data is taken.

        Returns
        -------
        ndarray of complex64
            Unit-energy symbols (PLHEADER, scrambled payload and pilots), frame after frame.

        Raises
        ------
        TypeError
            ``modcods`` is a single MODCOD rather than a sequence.
        ValueError
            An unknown MODCOD, or one without this frame size (rate 9/10 has no short frame).
        """
        if isinstance(modcods, str | bytes | int | np.integer | Modcod) or not hasattr(modcods, "__iter__"):
            raise TypeError(f"modcods must be a sequence of MODCODs, one per frame; got {modcods!r}")
        c = self.config
        runs: list[list] = []  # [Modcod, frames in a row]
        for mc in modcods:
            m = _resolve_modcod(mc, c.frame)
            if runs and runs[-1][0] == m:
                runs[-1][1] += 1
            else:
                runs.append([m, 1])
        parts = [self._encode_run(m, count) for m, count in runs]
        total = sum(cw.shape[0] * spec.plframe_symbols + dum * self._dummy.size for spec, cw, dum in parts)
        out = np.empty(total, dtype=np.complex64)
        pos = 0
        for spec, cw, dummies in parts:
            nd = cw.shape[0]
            if nd:
                seg = out[pos : pos + nd * spec.plframe_symbols].reshape(nd, spec.plframe_symbols)
                self.plframer.frame_codewords(spec.modcod.index, c.frame, c.pilots, cw, out=seg)
                pos += seg.size
            for _ in range(dummies):
                out[pos : pos + self._dummy.size] = self._dummy
                pos += self._dummy.size
        return out

    def _encode_run(self, m: Modcod, count: int):
        """BBFRAMEs, BCH and LDPC for up to ``count`` frames of one MODCOD; dummies where data runs out.

        Returns (FrameSpec, codewords uint8 (frames, n_ldpc), number of dummy frames).
        """
        c = self.config
        spec = frame_spec(m, c.frame, c.pilots)
        bb = self.framer.next_frames(spec.k_bch, max_frames=count)
        if bb.shape[0]:
            bch = dvbs2_bch(c.frame, m.rate).encode(bb)
            # the DVB-S2 code's column vector is the codeword: its encoder kernel directly
            cw = dvbs2_code(c.frame, m.rate).encoder(bch)
        else:
            cw = np.zeros((0, spec.n_ldpc), dtype=np.uint8)
        dummies = count - cw.shape[0]
        self.frames_out += count
        self.dummy_frames += dummies
        return spec, cw, dummies

    def modulate(self, symbols) -> np.ndarray:
        """RRC pulse shaping, streaming: ``sps`` complex64 samples per symbol (state kept between calls)."""
        return self.shaper(symbols)

    def modulate_flush(self) -> np.ndarray:
        """The pulse shaper's tail after the last symbols (``span * sps - sps + 1`` samples)."""
        return self.shaper.flush()

    def transmit(self, data, mc) -> np.ndarray:
        """Convenience: all of ``data`` (plus anything queued) at one MODCOD, shaped, with the filter tail.

        Returns complex64 samples: ``sps`` per symbol, the first symbol's pulse centred at
        sample ``span * sps // 2``.
        """
        _resolve_modcod(mc, self.config.frame)  # check before queuing anything
        self.push(data)
        self.flush()
        symbols = self.frames([mc] * self.frames_needed(mc))
        return np.concatenate([self.modulate(symbols), self.modulate_flush()])


#: Header metric (see :func:`_detect_header`) needed where a PLHEADER is expected.
HEADER_THRESHOLD = 0.15
#: Header metric needed when searching for a PLHEADER after a loss (many positions are tried).
ACQUIRE_THRESHOLD = 0.2
_SOF_THRESHOLD = 0.1  # search: SOF-only metric that makes a position worth a full header test
_MAX_ESN0 = 1e7  # Es/N0 estimates are capped at 70 dB (a noiseless channel has N0 = 0)


@dataclass
class FrameReport:
    """What the receiver found in one PLFRAME.

    Attributes
    ----------
    index : int
        Frame number in the stream (0, 1, ...), lost frames included.
    start : int
        Symbol index of the PLHEADER in the receiver's input stream. For raw samples
        (:meth:`Receiver.push_samples`): round((start_sample - span * sps / 2) / sps), the index of
        the symbol whose pulse is centred at ``start_sample`` when symbol m is centred at sample
        m sps + span sps / 2 (how :meth:`Transmitter.transmit` lays them out).
    modcod : int
        PLS MODCOD, 1..28, 0 for a dummy PLFRAME, -1 for a frame whose PLHEADER could not be
        used (``name`` "lost").
    name : str
        "QPSK 1/2" etc., "dummy" or "lost".
    frame : str
    pilots : bool
    plheader_metric : float
        |correlation with the best PLHEADER|^2 / (90 x header energy), 0..1: 1.0 for a noiseless
        header, about (Es/N0) / (1 + Es/N0) in noise, ~0.05 for a header made of noise.
    esn0_db : float
        Es/N0 estimate, dB, at most 70: for a data frame decoded without any correction, fitted
        over the whole PLFRAME re-modulated from the decoded codeword; otherwise data-aided from
        the PLHEADER and pilots (and a dummy frame's body). The demapper always uses the
        latter. NaN for a lost frame.
    symbols : int
        PLFRAME length in symbols (0 for a lost frame: unknown).
    ldpc_iterations : int
        Layered iterations used (0 for dummy frames).
    ldpc_converged : bool
    bch_corrected : int
        Bit errors corrected by BCH; -1 where BCH decoding failed.
    crc_ok : bool
        BBHEADER CRC-8 check (False for dummy and lost frames: they have no BBHEADER).
    ok : bool
        Nothing was lost: the frame's data was delivered (BCH decoded, header CRC good, and
        accepted by the deframer), or it is a dummy frame.
    detail : str
        Why a frame was not ok ("" otherwise).
    start_sample : int
        Raw samples: input sample index of the centre of the PLHEADER's first symbol (of where
        a header was expected, for a lost frame); symbols: equal to ``start``.
    cfo_norm : float
        Raw samples: carrier frequency offset tracked at the frame, cycles per symbol (a
        fraction of the symbol rate); 0.0 for symbol input (no carrier tracking there).
    cfo_hz : float
        ``cfo_norm`` times :attr:`LinkConfig.symbol_rate_hz`, Hz.
    clock_offset_ppm : float
        Raw samples: the timing loop's sample-clock offset estimate, ppm (positive: more samples
        per symbol than nominal); 0.0 for symbol input.
    """

    index: int
    start: int
    modcod: int
    name: str
    frame: str
    pilots: bool
    plheader_metric: float
    esn0_db: float
    symbols: int = 0
    ldpc_iterations: int = 0
    ldpc_converged: bool = False
    bch_corrected: int = 0
    crc_ok: bool = False
    ok: bool = False
    detail: str = ""
    start_sample: int = 0
    cfo_norm: float = 0.0
    cfo_hz: float = 0.0
    clock_offset_ppm: float = 0.0


@dataclass
class _Pending:
    report: FrameReport
    payload: np.ndarray | None  # descrambled XFECFRAME symbols divided by the gain
    noise_var: float  # relative to the gain, for the demapper
    symbols: np.ndarray | None = None  # the received PLFRAME
    event: object = None  # the synchronizer's frame, until _prepare has used it


@dataclass
class ReceiverStats:
    """Running totals of a :class:`Receiver`.

    ``frames`` counts every report (data, dummy and lost frames); ``frames_ok`` and
    ``frames_failed`` the data frames; ``headers_lost`` the frames whose PLHEADER could not be
    used; ``symbols_dropped`` the symbols skipped while searching for the next PLHEADER (and, at
    :meth:`Receiver.flush`, those of an incomplete last frame).

    Raw samples (:meth:`Receiver.push_samples`): ``samples_in`` input samples;
    ``samples_before_lock`` those before the first PLHEADER found (not part of any frame);
    ``samples_dropped`` those between a lost PLHEADER and the next one found, and at
    :meth:`Receiver.flush` those after the last complete frame; ``locks`` acquisitions.
    """

    frames: int = 0
    dummy_frames: int = 0
    frames_ok: int = 0
    frames_failed: int = 0
    headers_lost: int = 0
    bytes_out: int = 0
    symbols_in: int = 0
    symbols_dropped: int = 0
    by_modcod: dict = field(default_factory=dict)
    samples_in: int = 0
    samples_before_lock: int = 0
    samples_dropped: int = 0
    locks: int = 0


@cache
def _header_refs() -> tuple[np.ndarray, np.ndarray]:
    """Every PLHEADER (SOF + PLS code word w, w = MODCOD << 2 | TYPE), (128, 90), and their conjugates."""
    refs = np.stack([plheader(w >> 2, FRAMES[(w >> 1) & 1], bool(w & 1)) for w in range(128)]).astype(
        np.complex128
    )
    conj = np.conj(refs)
    refs.setflags(write=False)
    conj.setflags(write=False)
    return refs, conj


def _detect_header(y: np.ndarray) -> tuple[int, float]:
    """Non-coherent ML (GLRT) detection of the PLHEADER in 90 symbols with an unknown complex gain.

    Returns (w, metric): the best 7-bit PLS word and |r_w^H y|^2 / (|r_w|^2 |y|^2) in 0..1. The
    SOF is part of every candidate, so the sign of the PLS code (normal vs short frames) is
    resolved whatever the carrier phase. Elementwise products and numpy sums (pairwise, no BLAS)
    make the result independent of memory alignment, hence of the input chunking.
    """
    yy = y.astype(np.complex128)
    corr = np.sum(_header_refs()[1] * yy[None, :], axis=1)
    power = corr.real**2 + corr.imag**2
    w = int(np.argmax(power))
    energy = float(np.sum(yy.real**2 + yy.imag**2))
    metric = float(power[w] / (PLHEADER_LENGTH * energy)) if energy > 0 else 0.0
    return w, metric


def _word_problem(w: int) -> str | None:
    """Why PLS word w cannot start a PLFRAME, or None."""
    mc, frame, pilots = w >> 2, FRAMES[(w >> 1) & 1], bool(w & 1)
    if mc == 0:
        return None
    if mc > 28:
        return f"PLS code with reserved MODCOD {mc}"
    try:
        frame_spec(mc, frame, pilots)
    except ValueError as e:
        return f"PLS code of an impossible frame: {e}"
    return None


@cache
def _word_valid() -> np.ndarray:
    return np.array([_word_problem(w) is None for w in range(128)])


class Receiver:
    """DVB-S2 receiver: symbols or raw samples in, bytes and per-frame reports out.

    Parameters
    ----------
    config : LinkConfig
        Must match the transmitter's gold code, stream mode, roll-off and samples per symbol;
        frame size and pilots are read from each PLHEADER.
    workers : int
        LDPC decoder threads, >= 1.
    batch_frames : int
        Data frames held back until this many are waiting, then decoded together (the LDPC
        decoder works on 64 frames at once: one frame alone costs about as much as a batch of
        dozens). 1 (default): every call decodes the frames it completes. Held frames come out
        with a later call, :meth:`drain` or :meth:`flush`.
    sync : dict, optional
        Keyword arguments for the raw-IQ synchronizer
        (:class:`modem.sync.dvbs2.Dvbs2Synchronizer`: ``timing_bandwidth``, ``q_phase``, ...).
    pipeline : bool
        Decode (demapping, LDPC, BCH, Es/N0 refinement) in a background thread while the calling
        thread synchronizes the next samples: the receiver then uses two cores. A batch is
        decoded while the next one is synchronized and comes out with the call that completes
        the next one (or with :meth:`drain` or :meth:`flush`): one batch more latency. The bytes
        and reports, concatenated over the calls, are those of ``pipeline=False`` (default: every
        call returns what it decoded itself). :meth:`flush` or :meth:`close` stops the thread.

    Notes
    -----
    :meth:`push` takes symbols in chunks of any size; frames complete across chunks, and the
    bytes and reports do not depend on the chunking. The input is symbol-aligned and starts at a
    PLHEADER, up to a constant complex gain (any phase): the PLHEADER is detected
    non-coherently over its 128 possible words and the gain is then estimated from the header
    and pilots.

    :meth:`push_samples` takes raw samples at ``config.sps`` samples per symbol instead, with an
    unknown start, clock offset, carrier frequency (up to +-25 % of the symbol rate), phase and
    level, in chunks of any size (one sample to millions, identical output however chunked). A
    receiver takes either symbols or samples, not both.

    Nothing is lost silently. A frame whose data cannot be recovered is reported (``ok``
    False) and the stream deframer accounts for the lost bytes (:attr:`deframer` events). A
    PLHEADER that is not recognized (metric below :data:`HEADER_THRESHOLD`) or that signals an
    impossible frame (a reserved MODCOD, a short rate-9/10 frame) gives a "lost" report, is
    recorded as a lost frame by the deframer, and the receiver searches the following symbols
    for the next PLHEADER (SOF correlation, then the full header test against
    :data:`ACQUIRE_THRESHOLD`), counting the skipped symbols in ``stats.symbols_dropped``. From
    raw samples, a PLHEADER missing where a locked receiver expects it gives a "lost" report in
    the same way, then the synchronizer acquires again (``stats.samples_dropped``).
    """

    def __init__(self, config: LinkConfig | None = None, workers: int = 1, batch_frames: int = 1,
                 sync: dict | None = None, pipeline: bool = False):  # fmt: skip
        if config is not None and not isinstance(config, LinkConfig):
            raise TypeError(f"config must be a LinkConfig; got {type(config).__name__}")
        self.config = config or LinkConfig()
        self.workers = _check_int(workers, "workers", 1, 1024, "LDPC decoder threads")
        self.batch_frames = _check_int(batch_frames, "batch_frames", 1, 4096, "frames per decoder batch")
        if sync is not None and not isinstance(sync, dict):
            raise TypeError(f"sync must be a dict of synchronizer options; got {type(sync).__name__}")
        self._sync_options = dict(sync or {})
        if not isinstance(pipeline, bool | np.bool_):
            raise TypeError(f"pipeline must be True or False; got {pipeline!r}")
        self.pipeline = bool(pipeline)
        self._inflight: list[tuple[list[_Pending], Future]] = []  # batches decoding in the background
        self._executor: ThreadPoolExecutor | None = None
        c = self.config
        self.deframer = BBDeframer(c.stream, scrambled=True)
        self._plframer = PlFramer(c.gold_code)  # re-modulates decoded frames for the Es/N0 estimate
        self.stats = ReceiverStats()
        self._buf = np.zeros(0, dtype=np.complex64)
        self._pos_abs = 0  # stream index of self._buf[0]
        self._searching = False  # a PLHEADER was unusable: look for the next one
        self._scanned_abs = 0  # search: stream positions below this were already tried
        self._decoders: dict[tuple[str, str], LdpcDecoder] = {}
        self._input: str | None = None  # "symbols" or "samples" once the first input came
        self._sync = None  # the raw-IQ synchronizer, created by the first push_samples
        self._held: list[_Pending] = []  # frames waiting for a decoder batch
        self._lost_at: int | None = None  # sample index of the last loss (samples_dropped)
        self.flush_reports: list[FrameReport] = []  #: reports of the frames :meth:`flush` decoded

    def reset(self) -> None:
        """Forget buffered symbols, stream state and totals (batches still decoding are dropped)."""
        for _, fut in self._inflight:
            fut.cancel()
        self.close()
        self.__init__(self.config, self.workers, self.batch_frames, self._sync_options or None, self.pipeline)

    def close(self) -> None:
        """Stop the background decoding thread (``pipeline``), after the batches it has started."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def synchronizer(self):
        """The raw-IQ synchronizer (:class:`modem.sync.dvbs2.Dvbs2Synchronizer`).

        None before the first :meth:`push_samples`.
        """
        return self._sync

    def _use(self, kind: str) -> None:
        if self._input is None:
            self._input = kind
        elif self._input != kind:
            other = "push" if kind == "samples" else "push_samples"
            raise RuntimeError(
                f"this Receiver already takes {self._input} ({other}); use a new Receiver (or reset()) "
                f"for {kind}"
            )

    def push_samples(self, samples) -> tuple[bytes, list[FrameReport]]:
        """Synchronize and decode raw complex baseband samples.

        Parameters
        ----------
        samples : array_like of complex, shape (N,)
            Raw complex baseband at ``config.sps`` samples per symbol, continuing the stream, with
            unknown timing, clock offset, carrier frequency and phase and level.

        Returns
        -------
        (bytes, list of FrameReport)
            As :meth:`push`; ``start_sample``, ``cfo_norm``, ``cfo_hz`` and ``clock_offset_ppm``
            filled in.

        Raises
        ------
        ValueError, TypeError
            ``samples`` not 1-D, not numeric, or holding NaN or inf (the message gives the index
            in the call and in the stream); nothing of the call is kept.
        RuntimeError
            This receiver was given symbols (:meth:`push`) before.
        """
        from modem.sync._checks import as_complex64

        x = as_complex64(samples, "samples", offset=self.stats.samples_in)
        self._use("samples")
        c = self.config
        if self._sync is None:
            from modem.sync.dvbs2 import Dvbs2Synchronizer

            opts = {"refine": False, **self._sync_options}  # refined at decoding (see _prepare)
            self._sync = Dvbs2Synchronizer(c.rolloff, c.sps, c.span, c.gold_code, **opts)
        events = self._sync._push(x)
        self.stats.samples_in += x.size
        self.stats.locks = self._sync.restarts
        return self._emit([self._from_sync(ev) for ev in events])

    def _from_sync(self, ev) -> _Pending:
        """A synchronizer event as a pending frame for the decoder."""
        c = self.config
        start = int(round((ev.start_sample - c.span * c.sps / 2) / c.sps))
        ppm = 1e6 * ev.clock_offset
        if self.stats.locks and not self.stats.samples_before_lock and self.stats.frames == 0:
            self.stats.samples_before_lock = self._sync.samples_before_lock
        if ev.kind == "lost":
            rep = FrameReport(
                index=self.stats.frames, start=start, modcod=-1, name="lost", frame=c.frame, pilots=c.pilots,
                plheader_metric=float(ev.metric), esn0_db=float("nan"), detail=ev.detail,
                start_sample=ev.start_sample, clock_offset_ppm=ppm,
            )  # fmt: skip
            self.stats.frames += 1
            self.stats.headers_lost += 1
            self._lost_at = ev.start_sample
            return _Pending(rep, None, 0.0)
        if self._lost_at is not None:
            self.stats.samples_dropped += max(ev.start_sample - self._lost_at, 0)
            self._lost_at = None
        mc, frame, pilots = ev.modcod, ev.frame, ev.pilots
        rep = FrameReport(
            index=self.stats.frames, start=start, modcod=mc, name=modcod(mc).name if mc else "dummy",
            frame=frame, pilots=pilots, plheader_metric=float(ev.metric), esn0_db=float("nan"),
            symbols=int(ev.symbols.size), start_sample=ev.start_sample, cfo_norm=float(ev.cfo_norm),
            cfo_hz=float(ev.cfo_norm * c.symbol_rate_hz), clock_offset_ppm=ppm,
        )  # fmt: skip
        self.stats.frames += 1
        return _Pending(rep, None, 0.0, ev.symbols, ev)  # the rest at decoding (see _prepare)

    def _prepare(self, p: _Pending) -> None:
        """A synchronized frame's Es/N0 (refined with its data) and descrambled payload.

        Deferred from :meth:`_from_sync` to the decoding (the background thread with
        ``pipeline``): the synchronizer's thread does only what the next frames depend on.
        """
        ev, p.event = p.event, None
        if ev is None:
            return
        from modem.sync.dvbs2 import refine_noise

        p.noise_var = max(float(refine_noise(ev).noise_var), 1.0 / _MAX_ESN0)
        p.report.esn0_db = float(-10 * np.log10(p.noise_var))
        if ev.modcod:
            d = deframe(ev.symbols, ev.modcod, ev.frame, ev.pilots, n=self.config.gold_code)
            g = ev.gain
            p.payload = (d.payload / np.complex64(g)).astype(np.complex64) if abs(g) > 0 else d.payload

    def push(self, symbols) -> tuple[bytes, list[FrameReport]]:
        """Decode every complete PLFRAME in the buffered symbols.

        Parameters
        ----------
        symbols : array_like of complex, shape (N,)
            Symbol-aligned samples continuing the stream; the first ever symbol is a PLHEADER.

        Returns
        -------
        (bytes, list of FrameReport)
            User bytes completed by these frames, in order, and one report per frame (with
            ``batch_frames`` > 1: per frame decoded by this call).

        Raises
        ------
        ValueError, TypeError
            ``symbols`` not 1-D, not numeric, or not finite (nothing is buffered then).
        RuntimeError
            This receiver was given raw samples (:meth:`push_samples`) before.
        """
        x = _check_input(symbols, "symbols")
        self._use("symbols")
        self.stats.symbols_in += x.size
        self._buf = np.concatenate([self._buf, x])
        pending = self._split_frames()
        for p in pending:
            p.report.start_sample = p.report.start
        return self._emit(pending)

    def _emit(self, pending: list[_Pending]) -> tuple[bytes, list[FrameReport]]:
        """Decode the held frames and ``pending`` now, or hold them for a bigger batch.

        With ``pipeline``: a batch due now goes to the background thread, and the one before it
        (decoded while the calls since synchronized) is delivered.
        """
        self._held += pending
        due = not (self.batch_frames > 1 and sum(p.report.modcod > 0 for p in self._held) < self.batch_frames)
        if not due:
            return b"", []
        if not self.pipeline:
            return self.drain()
        if not self._held:
            return b"", []
        data, reports = self._collect()
        held, self._held = self._held, []
        self._inflight.append((held, self._submit(held)))
        return data, reports

    def drain(self) -> tuple[bytes, list[FrameReport]]:
        """Decode the frames held for a batch now (see ``batch_frames``); bytes and reports.

        With ``pipeline``: also waits for the batches decoding in the background.
        """
        data, reports = self._collect()
        held, self._held = self._held, []
        if held:
            d, r = self._deliver(held, self._decode_frames(held))
            data, reports = data + d, reports + r
        return data, reports

    def _submit(self, held: list[_Pending]) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dvbs2-decode")
        return self._executor.submit(self._decode_frames, held)

    def _collect(self) -> tuple[bytes, list[FrameReport]]:
        """Deliver the batches submitted to the background thread, in order (waiting for them)."""
        data, reports = b"", []
        while self._inflight:
            held, fut = self._inflight[0]
            bbframes = fut.result()
            self._inflight.pop(0)
            d, r = self._deliver(held, bbframes)
            data, reports = data + d, reports + r
        return data, reports

    # -- framing

    def _lost_report(self, pos: int, metric: float, detail: str) -> _Pending:
        rep = FrameReport(
            index=self.stats.frames, start=self._pos_abs + pos, modcod=-1, name="lost",
            frame=self.config.frame, pilots=self.config.pilots, plheader_metric=metric,
            esn0_db=float("nan"), detail=detail,
        )  # fmt: skip
        self.stats.frames += 1
        self.stats.headers_lost += 1
        return _Pending(rep, None, 0.0)

    def _search(self, pos: int) -> int | None:
        """First position >= pos (buffer index) holding a credible PLHEADER of a possible frame, or None."""
        buf = self._buf
        start = max(pos, self._scanned_abs - self._pos_abs)
        end = buf.size - PLHEADER_LENGTH + 1  # positions with a whole header in the buffer
        if end <= start:
            return None
        refs, conj = _header_refs()
        y = buf[start : end + PLHEADER_LENGTH - 1].astype(np.complex128)
        sof = refs[0, :SOF_LENGTH]
        c = np.correlate(y, sof, "valid")[: end - start]  # sum_i y[p + i] conj(sof[i])
        p2 = y.real**2 + y.imag**2
        e_sof = np.convolve(p2, np.ones(SOF_LENGTH), "valid")[: end - start]  # window energies
        e_hdr = np.convolve(p2, np.ones(PLHEADER_LENGTH), "valid")[: end - start]
        cand = np.flatnonzero(np.abs(c) ** 2 >= _SOF_THRESHOLD * SOF_LENGTH * np.maximum(e_sof, 1e-300))
        valid = _word_valid()
        for lo in range(0, cand.size, 256):
            p = cand[lo : lo + 256]
            power = np.abs(y[p[:, None] + np.arange(PLHEADER_LENGTH)] @ conj.T) ** 2  # (candidates, 128)
            w = np.argmax(power, axis=1)
            metric = power[np.arange(p.size), w] / (PLHEADER_LENGTH * np.maximum(e_hdr[p], 1e-300))
            hit = np.flatnonzero((metric >= ACQUIRE_THRESHOLD) & valid[w])
            if hit.size:
                return start + int(p[hit[0]])
        self._scanned_abs = self._pos_abs + end
        return None

    def _split_frames(self) -> list[_Pending]:
        c = self.config
        out = []
        pos = 0
        while True:
            if self._searching:
                found = self._search(pos)
                if found is None:  # keep the last 89 symbols: a header may start there
                    keep = max(pos, self._buf.size - (PLHEADER_LENGTH - 1))
                    self.stats.symbols_dropped += keep - pos
                    pos = keep
                    break
                self.stats.symbols_dropped += found - pos
                pos = found
                self._searching = False
            if self._buf.size - pos < PLHEADER_LENGTH:
                break
            hdr = self._buf[pos : pos + PLHEADER_LENGTH]
            w, metric = _detect_header(hdr)
            problem = None
            if metric < HEADER_THRESHOLD:
                problem = f"PLHEADER not recognized (metric {metric:.3f} < {HEADER_THRESHOLD})"
            else:
                problem = _word_problem(w)
            if problem is not None:
                out.append(self._lost_report(pos, metric, problem))
                self._searching = True
                self._scanned_abs = self._pos_abs + pos + 1
                self.stats.symbols_dropped += 1
                pos += 1
                continue
            mc, frame, pilots = w >> 2, FRAMES[(w >> 1) & 1], bool(w & 1)
            length = frame_spec(mc, frame, pilots).plframe_symbols if mc else DUMMY_PLFRAME_SYMBOLS
            if self._buf.size - pos < length:
                break
            d = deframe(self._buf[pos : pos + length], mc, frame, pilots, n=c.gold_code)
            known = d.pilots.ravel() if mc else d.payload  # a dummy body is all pilot symbols
            gain, noise_var = _estimate_gain_noise(hdr, plheader(mc, frame, pilots), known)
            g2 = abs(gain) ** 2
            noise_rel = max(noise_var / g2, 1.0 / _MAX_ESN0) if g2 > 0 else 1.0
            rep = FrameReport(
                index=self.stats.frames, start=self._pos_abs + pos, modcod=mc,
                name=modcod(mc).name if mc else "dummy", frame=frame, pilots=pilots,
                plheader_metric=metric, esn0_db=float(-10 * np.log10(noise_rel)), symbols=length,
            )  # fmt: skip
            self.stats.frames += 1
            payload = None
            if mc:
                payload = (d.payload / np.complex64(gain)).astype(np.complex64) if g2 > 0 else d.payload
            out.append(_Pending(rep, payload, noise_rel, self._buf[pos : pos + length]))
            pos += length
        self._buf = self._buf[pos:].copy()
        self._pos_abs += pos
        return out

    def _decoder(self, frame: str, rate: str) -> LdpcDecoder:
        key = (frame, rate)
        if key not in self._decoders:
            self._decoders[key] = LdpcDecoder(
                dvbs2_code(frame, rate), max_iter=self.config.ldpc_iterations, workers=self.workers
            )
        return self._decoders[key]

    def _decode_frames(self, pending: list[_Pending]) -> dict[int, tuple[np.ndarray, bool]]:
        """Demap, LDPC- and BCH-decode the data frames (those of one code together).

        Fills their reports' decoder fields and refined Es/N0; returns {index in pending:
        (BBFRAME bits, BCH ok)}. Touches nothing but ``pending``, the decoders and the PL framer
        (it runs in the background thread with ``pipeline``).
        """
        bbframes: dict[int, tuple[np.ndarray, bool]] = {}
        groups: dict[tuple[int, str, bool], list[int]] = {}
        for i, p in enumerate(pending):
            self._prepare(p)
            if p.report.modcod > 0:
                groups.setdefault((p.report.modcod, p.report.frame, p.report.pilots), []).append(i)
        for (mc, frame, _), idx in groups.items():
            m = modcod(mc)
            payload = np.stack([pending[i].payload for i in idx])
            nv = np.array([pending[i].noise_var for i in idx], dtype=np.float32)
            llr = demap_deinterleave(payload, nv, m.modulation, m.rate)  # (code word order)
            res = self._decoder(frame, m.rate).decode(llr)
            bch = dvbs2_bch(frame, m.rate).decode(res.info)
            self._refine_esn0([pending[i] for i in idx], res, bch)
            for j, i in enumerate(idx):
                rep = pending[i].report
                rep.ldpc_iterations = int(res.iterations[j])
                rep.ldpc_converged = bool(res.converged[j])
                rep.bch_corrected = int(bch.corrected[j])
                _, rep.crc_ok = BBHeader.unpack(bb_descramble(bch.message[j, :80]))
                bbframes[i] = (bch.message[j], bool(bch.ok[j]))
        return bbframes

    def _deliver(self, pending: list[_Pending], bbframes) -> tuple[bytes, list[FrameReport]]:
        """Hand decoded frames (and lost ones) to the deframer in order; bytes and reports."""
        out = []
        for i, p in enumerate(pending):
            rep = p.report
            if rep.modcod < 0:
                out.append(self.deframer.lost(rep.detail))
                continue
            if rep.modcod == 0:
                rep.ok = True
                self.stats.dummy_frames += 1
                continue
            bits, bch_ok = bbframes[i]
            lost_before = self.deframer.frames_lost
            out.append(self.deframer.push(bits, ok=bch_ok))
            rep.ok = self.deframer.frames_lost == lost_before
            if not rep.ok:
                ev = self.deframer.events[-1] if self.deframer.events else None
                rep.detail = f"{ev.kind}: {ev.detail}" if ev else "frame lost"
            self.stats.frames_ok += rep.ok
            self.stats.frames_failed += not rep.ok
            self.stats.by_modcod[rep.name] = self.stats.by_modcod.get(rep.name, 0) + 1
        data = b"".join(out)
        self.stats.bytes_out += len(data)
        return data, [p.report for p in pending]

    def _refine_esn0(self, frames: list[_Pending], res, bch) -> None:
        """Decision-aided Es/N0 over the whole PLFRAME for frames decoded without any correction.

        ``frames`` share MODCOD, frame size and pilots; ``res`` and ``bch`` are their decoder
        results.

        The decoded codeword is re-modulated (interleaving, mapping, pilots, scrambling) and the
        gain and noise are fitted over every symbol of the received frame, instead of the
        PLHEADER and pilots alone (~30 times more symbols for a normal frame).
        """
        sel = [j for j in range(len(frames)) if res.converged[j] and bch.corrected[j] == 0]
        if not sel:
            return
        rep = frames[0].report
        ref = self._plframer.frame_codewords(rep.modcod, rep.frame, rep.pilots, res.bits[sel])
        for j, r in zip(sel, ref, strict=True):
            gain, noise = _fit_gain_noise(frames[j].symbols, r)
            g2 = abs(gain) ** 2
            if g2 > 0:
                frames[j].report.esn0_db = float(-10 * np.log10(max(noise / g2, 1.0 / _MAX_ESN0)))

    def flush(self) -> bytes:
        """End of stream: held frames decoded, then the deframer's last word.

        TS mode: an unchecked last packet is reported.
        The reports of the held frames go to :attr:`flush_reports`. Symbols still buffered are
        dropped (``stats.symbols_dropped``); if they hold the start of a frame (a whole PLHEADER
        and not searching), the deframer records that frame as lost. From raw samples: a frame
        whose PLHEADER was found but whose end never came is recorded as lost the same way.
        """
        if self._input == "samples" and self._sync is not None:  # frames waiting for samples to come
            self._held += [self._from_sync(ev) for ev in self._sync.flush()]
        data, self.flush_reports = self.drain()
        self.close()  # (a later push starts the background thread again)
        if self._input == "samples" and self._sync is not None:
            start = self._sync.pending_start_sample()
            if start is not None:
                self.deframer.lost("stream ended inside a PLFRAME")
                self.stats.samples_dropped += max(self.stats.samples_in - start, 0)
        if self._buf.size >= PLHEADER_LENGTH and not self._searching:
            self.deframer.lost("stream ended inside a PLFRAME")
        self.stats.symbols_dropped += self._buf.size
        self._pos_abs += self._buf.size
        self._buf = np.zeros(0, dtype=np.complex64)
        tail = self.deframer.flush()
        self.stats.bytes_out += len(tail)
        return data + tail


def _check_input(x, name: str) -> np.ndarray:
    """``x`` as a 1-D complex64 array; a clear error naming ``name`` otherwise."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.timedelta64)):
        raise TypeError(f"{name} must be complex (or real) numbers; got dtype {a.dtype}")
    a = a.astype(np.complex64, copy=False)
    if a.size and not np.all(np.isfinite(a)):
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(f"{name} must be finite; got {a[i]} at index {i}")
    return a


def _estimate_gain_noise(
    header_rx: np.ndarray, header_ref: np.ndarray, known_rx: np.ndarray
) -> tuple[complex, float]:
    """Data-aided complex gain and noise variance from the PLHEADER and known body symbols.

    Parameters
    ----------
    header_rx, header_ref : ndarray of complex, shape (90,)
        Received and transmitted PLHEADER.
    known_rx : ndarray of complex
        Descrambled pilot symbols (or a dummy frame's body), all sent as (1+j)/sqrt(2).

    Returns
    -------
    (h, N0)
        Gain h (least squares) and noise variance E|y - h s|^2 per complex symbol (unbiased:
        one complex parameter fitted). Computed in float64 with sequential sums, independent
        of memory alignment (see :func:`_fit_gain_noise`).
    """
    y = np.concatenate([header_rx, known_rx])
    r = np.concatenate([header_ref, np.full(known_rx.size, PILOT_SYMBOL)])
    return _fit_gain_noise(y, r)


def _fit_gain_noise(y: np.ndarray, r: np.ndarray) -> tuple[complex, float]:
    """Least-squares gain h of y = h r + n and the unbiased noise variance E|n|^2.

    In float64 over one pass (:func:`_fit_sums`, sequential sums: independent of memory
    alignment); |y - h r|^2 summed as sum |y|^2 - |h|^2 sum |r|^2 (h the least-squares gain).
    """
    syy, srr, c = _fit_sums(np.ascontiguousarray(y, np.complex64), np.ascontiguousarray(r, np.complex64))
    if srr <= 0:
        return 0j, syy / max(y.size - 1, 1)
    h = c / srr
    noise = max(syy - abs(h) ** 2 * srr, 0.0) / max(y.size - 1, 1)
    return complex(h), float(noise)


@nb.njit(cache=True, nogil=True)
def _fit_sums(y, r):  # pragma: no cover - compiled
    """(sum |y|^2, sum |r|^2, sum y conj(r)) in float64."""
    syy = 0.0
    srr = 0.0
    cr = 0.0
    ci = 0.0
    for i in range(y.size):
        yr = np.float64(y[i].real)
        yi = np.float64(y[i].imag)
        rr = np.float64(r[i].real)
        ri = np.float64(r[i].imag)
        syy += yr * yr + yi * yi
        srr += rr * rr + ri * ri
        cr += yr * rr + yi * ri
        ci += yi * rr - yr * ri
    return syy, srr, complex(cr, ci)
