"""DVB-S2 link facades: :class:`Transmitter` (bytes -> complex baseband) and :class:`Receiver`.

The transmitter chains mode and stream adaptation (BBFRAMEs, :mod:`modem.dvbs2.bbframe`),
BCH and LDPC encoding (:mod:`modem.fec`), bit interleaving and mapping
(:mod:`modem.dvbs2.mapping`), PL framing (:mod:`modem.dvbs2.plframe`) and RRC pulse
shaping (:mod:`modem.dvbs2.pulse`). The MODCOD may change on every PLFRAME (ACM); with
no data waiting it sends dummy PLFRAMEs.

The receiver here works on symbol-aligned input (one complex value per symbol,
starting at a PLHEADER, carrier phase and timing known up to a constant complex gain):
PLHEADER decoding, PL descrambling, pilot removal, data-aided gain and Es/N0
estimation, max-log demapping, deinterleaving, LDPC then BCH decoding (frames of the
same code are decoded together, as one batch), BB descrambling and stream reassembly.
Synchronization from raw IQ is :mod:`modem.sync`'s job *(planned)*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modem.checks import check_choice
from modem.dvbs2.bbframe import BBDeframer, BBHeader, GsFramer, TsFramer, bb_descramble
from modem.dvbs2.mapping import deinterleave, demap_maxlog, interleave, map_bits
from modem.dvbs2.modcod import FRAMES, Modcod, frame_spec, modcod
from modem.dvbs2.plframe import (
    PILOT_SYMBOL,
    PLHEADER_LENGTH,
    PlFramer,
    decode_plheader,
    deframe,
    plheader,
)
from modem.dvbs2.pulse import ROLLOFFS, MatchedFilter, PulseShaper
from modem.fec.bch import dvbs2_bch
from modem.fec.dvbs2_ldpc import dvbs2_code
from modem.fec.ldpc_decoder import LdpcDecoder

STREAMS = ("gs", "ts")


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
        Receiver: maximum layered LDPC iterations per frame.
    """

    frame: str = "normal"
    pilots: bool = True
    gold_code: int = 0
    stream: str = "gs"
    rolloff: float = 0.35
    sps: int = 2
    span: int = 16
    ldpc_iterations: int = 50

    def __post_init__(self):
        check_choice(self.frame, "frame", FRAMES)
        check_choice(self.stream, "stream", STREAMS)
        check_choice(self.rolloff, "rolloff", ROLLOFFS)
        if not 0 <= int(self.gold_code) <= 262141:
            raise ValueError(f"gold_code must be in 0..262141; got {self.gold_code}")
        if not 2 <= int(self.sps) <= 64:
            raise ValueError(f"sps must be in 2..64 samples per symbol; got {self.sps}")
        if not (4 <= int(self.span) <= 128 and self.span % 2 == 0):
            raise ValueError(f"span must be an even number of symbols in 4..128; got {self.span}")
        if not 1 <= int(self.ldpc_iterations) <= 1000:
            raise ValueError(f"ldpc_iterations must be in 1..1000; got {self.ldpc_iterations}")


def _resolve_modcod(mc, frame: str) -> Modcod:
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
    """

    def __init__(self, config: LinkConfig | None = None):
        self.config = config or LinkConfig()
        c = self.config
        framer_cls = TsFramer if c.stream == "ts" else GsFramer
        self.framer = framer_cls(ccm=False, rolloff=c.rolloff, scramble=True)
        self.plframer = PlFramer(c.gold_code)
        self.shaper = PulseShaper(c.rolloff, c.sps, c.span)
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
        """Queue user bytes (any chunking); TS mode takes whole 188-byte packets across calls."""
        self.framer.push(data)

    def flush(self) -> None:
        """Send everything queued: the last frame is padded (§5.2.1) instead of waiting for more."""
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
            a dummy PLFRAME (3330 symbols).

        Returns
        -------
        ndarray of complex64
            Unit-energy symbols (PLHEADER, scrambled payload and pilots), frame after frame.
        """
        c = self.config
        out = []
        run: list[Modcod] = []
        for mc in modcods:
            m = _resolve_modcod(mc, c.frame)
            if run and m != run[0]:
                out.extend(self._encode_run(run[0], len(run)))
                run = []
            run.append(m)
        if run:
            out.extend(self._encode_run(run[0], len(run)))
        if not out:
            return np.zeros(0, dtype=np.complex64)
        return np.concatenate(out)

    def _encode_run(self, m: Modcod, count: int) -> list[np.ndarray]:
        """Encode up to ``count`` frames of one MODCOD in one batch; dummies where data runs out."""
        c = self.config
        spec = frame_spec(m, c.frame, c.pilots)
        bb = self.framer.next_frames(spec.k_bch, max_frames=count)
        frames = []
        if bb.shape[0]:
            bch = dvbs2_bch(c.frame, m.rate).encode(bb)
            fec = dvbs2_code(c.frame, m.rate).encode(bch)
            symbols = map_bits(interleave(fec, m.modulation, m.rate), m.modulation, m.rate)
            frames = [self.plframer(m.index, c.frame, c.pilots, s) for s in symbols]
        dummies = count - len(frames)
        frames += [self.plframer.dummy() for _ in range(dummies)]
        self.frames_out += count
        self.dummy_frames += dummies
        return frames

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
        self.push(data)
        self.flush()
        symbols = self.frames([mc] * self.frames_needed(mc))
        return np.concatenate([self.modulate(symbols), self.modulate_flush()])


@dataclass
class FrameReport:
    """What the receiver found in one PLFRAME.

    Attributes
    ----------
    index : int
        Frame number in the stream (0, 1, ...).
    start : int
        Symbol index of the PLHEADER in the receiver's input stream.
    modcod : int
        PLS MODCOD, 1..28, or 0 for a dummy PLFRAME.
    name : str
        "QPSK 1/2" etc., "dummy".
    frame : str
    pilots : bool
    plheader_metric : float
        PLS correlation / 64 (1.0 for a noiseless header).
    esn0_db : float
        Es/N0 estimate from the PLHEADER and pilots (data-aided), dB.
    ldpc_iterations : int
        Layered iterations used (0 for dummy frames).
    ldpc_converged : bool
    bch_corrected : int
        Bit errors corrected by BCH; -1 where BCH decoding failed.
    crc_ok : bool
        BBHEADER CRC-8 check.
    ok : bool
        The frame's data was delivered (LDPC converged or BCH corrected, and header CRC good).
    """

    index: int
    start: int
    modcod: int
    name: str
    frame: str
    pilots: bool
    plheader_metric: float
    esn0_db: float
    ldpc_iterations: int = 0
    ldpc_converged: bool = False
    bch_corrected: int = 0
    crc_ok: bool = False
    ok: bool = False


@dataclass
class _Pending:
    report: FrameReport
    payload: np.ndarray
    noise_var: float


@dataclass
class ReceiverStats:
    """Running totals of a :class:`Receiver`."""

    frames: int = 0
    dummy_frames: int = 0
    frames_ok: int = 0
    frames_failed: int = 0
    bytes_out: int = 0
    symbols_in: int = 0
    symbols_dropped: int = 0
    by_modcod: dict = field(default_factory=dict)


class Receiver:
    """DVB-S2 receiver for symbol-aligned input: symbols in, bytes and per-frame reports out.

    Parameters
    ----------
    config : LinkConfig
        Must match the transmitter's (frame size, pilots, gold code, stream mode, roll-off).
    workers : int
        LDPC decoder threads.

    Notes
    -----
    :meth:`push` takes symbols in chunks of any size; frames complete across chunks. A frame
    whose data cannot be recovered is reported (``ok`` False) and the stream deframer
    accounts for the lost bytes (:attr:`deframer` events), never passing bad data on.
    """

    def __init__(self, config: LinkConfig | None = None, workers: int = 1):
        self.config = config or LinkConfig()
        c = self.config
        self.deframer = BBDeframer(c.stream, scrambled=True)
        self.matched_filter = MatchedFilter(c.rolloff, c.sps, c.span)
        self.workers = int(workers)
        self.stats = ReceiverStats()
        self._buf = np.zeros(0, dtype=np.complex64)
        self._pos_abs = 0  # stream index of self._buf[0]
        self._mf_skip = c.span * c.sps  # matched-filter output samples before symbol 0's peak
        self._decoders: dict[tuple[str, str], LdpcDecoder] = {}

    def reset(self) -> None:
        """Forget buffered symbols, stream state and totals."""
        self.__init__(self.config, self.workers)

    def push_samples(self, samples) -> tuple[bytes, list[FrameReport]]:
        """Matched filter and pick one sample per symbol (timing known: as :meth:`Transmitter.transmit`).

        The first symbol's pulse must be centred at sample ``span * sps // 2`` of the stream.
        """
        y = self.matched_filter(np.asarray(samples, dtype=np.complex64))
        c = self.config
        start = self._mf_skip
        if start >= y.size:
            self._mf_skip = start - y.size
            return self.push(y[:0])
        picked = y[start :: c.sps]
        # the symbol grid continues into the next chunk
        self._mf_skip = start + picked.size * c.sps - y.size
        return self.push(picked)

    def push(self, symbols) -> tuple[bytes, list[FrameReport]]:
        """Decode every complete PLFRAME in the buffered symbols.

        Parameters
        ----------
        symbols : array_like of complex, shape (N,)
            Symbol-aligned samples continuing the stream; the first ever symbol is a PLHEADER.

        Returns
        -------
        (bytes, list of FrameReport)
            User bytes completed by these frames, in order, and one report per frame.
        """
        x = np.asarray(symbols)
        if x.ndim != 1:
            raise ValueError(f"symbols must be 1-D; got shape {x.shape}")
        if x.size and not np.all(np.isfinite(x)):
            i = int(np.flatnonzero(~np.isfinite(x))[0])
            raise ValueError(f"symbols must be finite; got {x[i]} at index {i}")
        self.stats.symbols_in += x.size
        self._buf = np.concatenate([self._buf, x.astype(np.complex64, copy=False)])
        pending = self._split_frames()
        return self._decode(pending)

    def _split_frames(self) -> list[_Pending]:
        c = self.config
        out = []
        pos = 0
        while self._buf.size - pos >= PLHEADER_LENGTH:
            head = decode_plheader(self._buf[pos : pos + PLHEADER_LENGTH])
            if head.modcod == 0:
                length = PLHEADER_LENGTH + 36 * 90
            else:
                try:
                    spec = frame_spec(head.modcod, head.frame, head.pilots)
                except ValueError:  # a PLS code no frame can have (e.g. short 9/10): skip the header
                    self.stats.symbols_dropped += PLHEADER_LENGTH
                    pos += PLHEADER_LENGTH
                    continue
                length = spec.plframe_symbols
            if self._buf.size - pos < length:
                break
            d = deframe(self._buf[pos : pos + length], n=c.gold_code)
            gain, noise_var = _estimate_gain_noise(self._buf[pos : pos + PLHEADER_LENGTH], head, d.pilots)
            esn0 = 10 * np.log10(max(abs(gain) ** 2, 1e-30) / max(noise_var, 1e-30))
            name = "dummy" if head.modcod == 0 else modcod(head.modcod).name
            rep = FrameReport(
                index=self.stats.frames, start=self._pos_abs + pos, modcod=head.modcod, name=name,
                frame=head.frame, pilots=head.pilots, plheader_metric=float(head.metric), esn0_db=float(esn0),
            )  # fmt: skip
            self.stats.frames += 1
            payload = d.payload / gain if gain != 0 else d.payload
            out.append(_Pending(rep, payload.astype(np.complex64), noise_var / max(abs(gain) ** 2, 1e-30)))
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

    def _decode(self, pending: list[_Pending]) -> tuple[bytes, list[FrameReport]]:
        data_frames = [p for p in pending if p.report.modcod != 0]
        for p in pending:
            if p.report.modcod == 0:
                self.stats.dummy_frames += 1
        bbframes: dict[int, np.ndarray] = {}
        groups: dict[tuple[int, str], list[int]] = {}
        for i, p in enumerate(data_frames):
            groups.setdefault((p.report.modcod, p.report.frame), []).append(i)
        for (mc, frame), idx in groups.items():
            m = modcod(mc)
            payload = np.stack([data_frames[i].payload for i in idx])
            nv = np.array([data_frames[i].noise_var for i in idx], dtype=np.float32)
            llr = deinterleave(demap_maxlog(payload, nv, m.modulation, m.rate), m.modulation, m.rate)
            res = self._decoder(frame, m.rate).decode(llr)
            bch = dvbs2_bch(frame, m.rate).decode(res.info)
            for j, i in enumerate(idx):
                rep = data_frames[i].report
                rep.ldpc_iterations = int(res.iterations[j])
                rep.ldpc_converged = bool(res.converged[j])
                rep.bch_corrected = int(bch.corrected[j])
                header_bits = bb_descramble(bch.message[j])[:80]
                _, rep.crc_ok = BBHeader.unpack(header_bits)
                rep.ok = bool(bch.ok[j] and rep.crc_ok)
                bbframes[i] = bch.message[j]
        out = []
        for i, p in enumerate(data_frames):
            rep = p.report
            out.append(self.deframer.push(bbframes[i], ok=rep.ok))
            self.stats.frames_ok += rep.ok
            self.stats.frames_failed += not rep.ok
            self.stats.by_modcod[rep.name] = self.stats.by_modcod.get(rep.name, 0) + 1
        data = b"".join(out)
        self.stats.bytes_out += len(data)
        return data, [p.report for p in pending]

    def flush(self) -> bytes:
        """End of stream: the deframer's last word (TS: an unchecked last packet is reported)."""
        data = self.deframer.flush()
        self.stats.bytes_out += len(data)
        return data


def _estimate_gain_noise(header_rx: np.ndarray, head, pilots_rx: np.ndarray) -> tuple[complex, float]:
    """Data-aided complex gain and noise variance from the PLHEADER and the (descrambled) pilots.

    The known symbols are the decoded PLHEADER (pi/2-BPSK) and pilot blocks of (1+j)/sqrt(2).
    Returns (gain h, noise variance E|y - h s|^2), per complex symbol.
    """
    ref = plheader(head.modcod, head.frame, head.pilots) if head.modcod else plheader(0, "normal", False)
    y = header_rx
    r = ref
    if pilots_rx.size:
        y = np.concatenate([y, pilots_rx.ravel()])
        r = np.concatenate([r, np.full(pilots_rx.size, PILOT_SYMBOL)])
    h = np.vdot(r, y) / np.vdot(r, r)
    noise = float(np.mean(np.abs(y - h * r) ** 2))
    # unbiased: one complex parameter fitted from len(y) observations
    noise *= y.size / max(y.size - 1, 1)
    return complex(h), noise
