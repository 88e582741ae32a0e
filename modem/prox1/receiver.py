"""Proximity-1 receiver: raw complex samples in, transfer frames and per-frame reports out.

Two states:

* **acquire**: samples are collected until the coarse carrier search
  (:func:`~modem.prox1.acquisition.coarse_frequency` on x^2, sized by
  :func:`~modem.prox1.acquisition.acquisition_plan` for +-``max_offset_hz`` and the coding's
  threshold Es/N0) has enough; if it finds a carrier, the demodulator starts at its estimate
  on those same samples (nothing is lost), else the older half is dropped and the search goes
  on with new samples.
* **track**: :class:`~modem.prox1.demod.BpskDemodulator` (NCO, integrate-and-dump, timing and
  Costas loops) gives symbols, the coding's decoder (:mod:`modem.prox1.decoders`) gives the
  bitstream, :class:`~modem.prox1.pltu.PltuDeframer` finds the PLTUs and checks their CRC. When
  the decoder finds no code alignment or CSM, the loops pull in again (wide, from the current
  frequency: after a fade they may have wandered in the noise); when it loses its
  synchronization for good (no code alignment / no CSM; uncoded: no
  valid PLTU for 2^16 bits while the carrier loop is unlocked), the receiver searches again.

Every PLTU found gets a :class:`FrameReport`: its CRC result (a frame with a bad CRC is
reported and never delivered), frame sequence number, the data-aided Es/N0 and Eb/N0 over its
bits (from the decoder's re-encoded decisions), the carrier offset estimate and the phase
ambiguity. Loop bandwidths follow the symbol rate: the carrier loop keeps at least 40 Hz of
noise bandwidth, enough to follow a 100 Hz/s Doppler rate with a lag under 0.1 rad.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from modem.prox1.acquisition import acquisition_plan, coarse_frequency
from modem.prox1.coding import LDPC_K
from modem.prox1.config import Prox1Config
from modem.prox1.decoders import ConvDecoder, LdpcStreamDecoder, QualityRecord, UncodedDecoder
from modem.prox1.demod import BpskDemodulator, first_nonfinite
from modem.prox1.pltu import HEADER_OCTETS, PltuDeframer

#: Es/N0 (dB) at which the carrier search must still work, per coding (about the coding's
#: threshold: conv 4.4 dB Eb/N0, LDPC 2 dB Eb/N0 with the CSM, uncoded 9.6 dB).
ACQUISITION_ESN0_DB = {"uncoded": 8.0, "conv": 1.0, "ldpc": -1.5}


@dataclass
class FrameReport:
    """What the receiver found for one PLTU.

    Attributes
    ----------
    ok : bool
        CRC-32 correct; only then is the frame delivered.
    problem : str
        "" when ok, "crc" (bad CRC) or "header" (marker found but the header is not a
        Version-3 header).
    sequence : int or None
        Frame sequence number from the header (None when unreadable).
    frame_octets : int
        Frame length from the header, octets (0 when unreadable).
    esn0_db, ebn0_db : float
        Data-aided Es/N0 per channel symbol and Eb/N0 per bitstream bit over the PLTU, dB.
    cfo_hz : float
        Carrier offset estimate of the demodulator, averaged over the PLTU's symbols, Hz.
    inverted : bool
        The PLTU arrived complemented (BPSK phase ambiguity, resolved).
    bit_position : int
        Bitstream index of the ASM since the current lock began.
    lock : int
        Lock number (1 for the first acquisition, +1 for each re-acquisition).
    """

    ok: bool
    problem: str
    sequence: int | None
    frame_octets: int
    esn0_db: float
    ebn0_db: float
    cfo_hz: float
    inverted: bool
    bit_position: int
    lock: int

    @property
    def data_octets(self) -> int:
        """Data-field octets of the frame (0 when unreadable)."""
        return max(0, self.frame_octets - HEADER_OCTETS)


class Receiver:
    """Proximity-1 receiver for one :class:`Prox1Config`.

    Parameters
    ----------
    config : Prox1Config
    ldpc_iterations : int
        Maximum LDPC iterations per codeword (LDPC coding), 1 .. 1000.
    acquisition_esn0_db : float, optional
        Es/N0 the carrier search is sized for (default :data:`ACQUISITION_ESN0_DB`).
    asm_errors : int
        ASM bits that may differ, 0 .. 4.
    frequency_hz : float, optional
        A known carrier offset (e.g. from the previous data rate of the same pass), Hz: the
        receiver starts tracking at it without the FFT search (searching only after a loss).
    carrier_loop_hz : float
        Smallest noise bandwidth of the carrier loop, Hz (> 0): it follows Doppler rates up to
        about (B_L / 20)^2 * 1000 Hz/s with a lag under 0.1 rad (40 Hz: 100 Hz/s).

    Attributes
    ----------
    state : str
        "acquire" or "track".
    locks : int
        Acquisitions so far.
    samples_in : int
        Samples received.
    frames_ok, frames_bad : int
        PLTUs with good CRC, and PLTUs reported bad.
    on_bits : callable or None
        If set, called with each array of decoded bitstream bits (uint8) as it is decided,
        together with the lock number: ``on_bits(bits, lock)`` (for measurements).
    """

    def __init__(
        self,
        config: Prox1Config,
        ldpc_iterations: int = 50,
        acquisition_esn0_db: float | None = None,
        asm_errors: int = 1,
        frequency_hz: float | None = None,
        carrier_loop_hz: float = 40.0,
    ):
        if not isinstance(config, Prox1Config):
            raise TypeError(f"config must be a Prox1Config; got {type(config).__name__}")
        self.config = config
        self._fs = config.sample_rate  # Hz (a property computed with fractions: read once)
        self._sps = config.sps
        self.ldpc_iterations = int(ldpc_iterations)
        self.asm_errors = int(asm_errors)
        self.on_bits = None
        esn0 = (
            ACQUISITION_ESN0_DB[config.coding] if acquisition_esn0_db is None else float(acquisition_esn0_db)
        )
        self._plan = acquisition_plan(config.sample_rate, config.symbol_rate, config.max_offset_hz, esn0)
        d, seg, m = self._plan
        self.acquisition_samples = d * seg * m
        if not carrier_loop_hz > 0:
            raise ValueError(f"carrier_loop_hz must be > 0 Hz; got {carrier_loop_hz!r}")
        if frequency_hz is not None and not abs(frequency_hz) <= config.max_offset_hz:
            raise ValueError(
                f"frequency_hz must be within +-max_offset_hz = {config.max_offset_hz:g} Hz; "
                f"got {frequency_hz!r}"
            )
        rs = config.symbol_rate
        self.carrier_bandwidth = float(min(0.05, max(2e-4, carrier_loop_hz / rs)))
        self.timing_bandwidth = 2e-4
        self.initial_frequency_hz = frequency_hz
        self.reset()

    def reset(self) -> None:
        """Back to carrier search, counters cleared."""
        self.state = "acquire"
        self._acq = np.zeros(0, dtype=np.complex64)
        self._demod: BpskDemodulator | None = None
        self._decoder = None
        self._deframer = PltuDeframer(max_errors=self.asm_errors)
        self._quality: deque[QualityRecord] = deque()
        self._since_good = 0
        self.locks = 0
        self.samples_in = 0
        self.frames_ok = 0
        self.frames_bad = 0
        self.cfo_hz = math.nan
        if self.initial_frequency_hz is not None:
            self._start_tracking(self.initial_frequency_hz)

    def _new_decoder(self):
        coding = self.config.coding
        if coding == "conv":
            # batch Viterbi blocks at high rates (SIMD lanes filled), keeping the decoding
            # latency near 50 ms: 25 blocks of 4096 bits at 2048 kbit/s, 1 block up to 80 kbit/s
            return ConvDecoder(min_batch=int(min(32, max(1, self.config.data_rate // 81920))))
        if coding == "ldpc":
            return LdpcStreamDecoder(max_iter=self.ldpc_iterations)
        return UncodedDecoder()

    @property
    def frequency_hz(self) -> float:
        """Current carrier offset estimate, Hz (NaN before the first acquisition)."""
        if self._demod is None:
            return self.cfo_hz
        return self._demod.frequency * self._fs

    def push_samples(self, samples) -> tuple[list[bytes], list[FrameReport]]:
        """Process the next chunk of samples.

        Parameters
        ----------
        samples : array_like of complex, shape (n,)
            Raw samples at ``config.sample_rate``, finite (a NaN names its stream index).

        Returns
        -------
        frames : list of bytes
            Transfer frames with a correct CRC, in order.
        reports : list of FrameReport
            One per PLTU found (good or bad), in order.
        """
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"samples must be 1-D; got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.complex64)
        frames: list[bytes] = []
        reports: list[FrameReport] = []
        if self.state == "track":
            # the demodulator checks the samples block by block as it reads them (no separate
            # pass), and raises before anything changes
            self._track(x, frames, reports, check=True)
            self.samples_in += x.size
            if self._lost():
                self.state = "acquire"
                self._demod = None
            return frames, reports
        i = first_nonfinite(x)
        if i >= 0:
            raise ValueError(self._nonfinite_message(x, i))
        self.samples_in += x.size
        while x.size:
            if self.state == "acquire":
                x = self._acquire(x)
                continue
            self._track(x, frames, reports)
            x = x[:0]
            if self._lost():
                self.state = "acquire"
                self._demod = None
        return frames, reports

    def _nonfinite_message(self, x: np.ndarray, i: int) -> str:
        return f"samples must be finite; got {x[i]} at index {i} (stream sample {self.samples_in + i})"

    # -- acquisition

    def _acquire(self, x: np.ndarray) -> np.ndarray:
        """Add samples to the search buffer.

        Returns the samples left over (after a lock: the buffered samples, to be tracked; else
        nothing).
        """
        need = self.acquisition_samples
        take = min(x.size, need - self._acq.size)
        self._acq = np.concatenate([self._acq, x[:take]])
        rest = x[take:]
        if self._acq.size < need:
            return rest
        d, seg, _ = self._plan
        est = coarse_frequency(self._acq, self._fs, self.config.max_offset_hz, d, seg)
        if not est.detected():
            half = self._acq.size // 2
            self._acq = self._acq[half:]
            return rest
        self._start_tracking(est.frequency_hz)
        buffered = self._acq
        self._acq = np.zeros(0, dtype=np.complex64)
        return np.concatenate([buffered, rest])

    def _start_tracking(self, frequency_hz: float) -> None:
        fs = self._fs
        self.cfo_hz = frequency_hz
        self._demod = BpskDemodulator(
            self._sps,
            frequency=frequency_hz / fs,
            carrier_bandwidth=self.carrier_bandwidth,
            timing_bandwidth=self.timing_bandwidth,
            max_frequency=min(0.45, 1.5 * self.config.max_offset_hz / fs),
        )
        self._decoder = self._new_decoder()
        self._deframer = PltuDeframer(max_errors=self.asm_errors)
        self._quality.clear()
        self._since_good = 0
        self.locks += 1
        self.state = "track"

    def _lost(self) -> bool:
        if self._decoder.lost:
            return True
        if self.config.coding == "uncoded":
            return self._since_good > 1 << 16 and self._demod.lock < 0.3
        return False

    # -- tracking

    def _track(
        self, x: np.ndarray, frames: list[bytes], reports: list[FrameReport], check: bool = False
    ) -> None:
        # the demodulator writes its symbols straight into the decoder's buffers (no copy)
        sym, frq = self._decoder.reserve(self._demod.capacity(x.size))
        k = self._demod._process_into(x, sym, frq, check=check)  # unchecked: x checked by push_samples
        if k < 0:
            raise ValueError(self._nonfinite_message(x, -1 - k))
        fails = self._decoder.sync_failures
        chunk = self._decoder.push_reserved(k)
        if self._decoder.sync_failures != fails:
            self._demod.repull()  # the symbols are unusable: let the loops pull in again
        self._quality.extend(chunk.quality)
        if self.on_bits is not None and chunk.bits.size:
            self.on_bits(chunk.bits, self.locks)
        pltus = self._deframer(chunk.bits)
        self._since_good += chunk.bits.size
        fs = self._fs
        self.cfo_hz = self._demod.frequency * fs
        for p in pltus:
            esn0, freq = self._quality_over(p.bit_position, p.bit_position + p.bits)
            cfo = freq * fs
            rep = FrameReport(
                ok=p.ok,
                problem=p.problem,
                sequence=None if p.header is None else p.header.sequence,
                frame_octets=0 if p.header is None else p.header.frame_octets,
                esn0_db=esn0,
                ebn0_db=self.config.ebn0_from_esn0(esn0) if math.isfinite(esn0) else esn0,
                cfo_hz=cfo,
                inverted=p.inverted,
                bit_position=p.bit_position,
                lock=self.locks,
            )
            reports.append(rep)
            if p.ok:
                frames.append(p.frame)
                self.frames_ok += 1
                self._since_good = 0
            else:
                self.frames_bad += 1
        # forget quality records the deframer can no longer need
        horizon = self._deframer.bits_in - 8 * 4096 - LDPC_K
        while self._quality and self._quality[0].bit_end < horizon:
            self._quality.popleft()

    def _quality_over(self, start: int, end: int) -> tuple[float, float]:
        """(Es/N0 dB, mean carrier frequency in cycles per sample) over bitstream bits [start, end)."""
        sig = noise = freq = 0.0
        count = 0
        for q in self._quality:
            if q.bit_end <= start or q.bit_start >= end:
                continue
            sig += q.signal
            noise += q.noise
            freq += q.frequency
            count += q.symbols
        if noise <= 0 or count == 0:
            return math.nan, math.nan
        return 10 * math.log10(max(sig, 1e-300) / noise), freq / count
