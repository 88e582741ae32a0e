"""Proximity-1 transmitter: user data or transfer frames in, BPSK samples out.

The transmitter keeps a queue of transfer frames. Each call of :meth:`Transmitter.samples`
produces exactly the requested number of samples: the bitstream continues with the next
queued frame's PLTU (ASM, frame, CRC-32; 211.2-B §3.2) or, when the queue is empty, with the
idle pattern (§3.3.2.2); it starts with ``acquisition_bits`` of idle pattern (the acquisition
sequence the receiver locks onto). The bitstream goes through the coding sublayer
(:class:`~modem.prox1.coding.ChannelEncoder`) and rectangular-pulse BPSK
(:class:`~modem.prox1.modulation.NrzModulator`). With LDPC coding the bitstream is produced in
whole 1024-bit blocks, the last one completed with idle pattern.

:meth:`Transmitter.push` cuts user bytes into Version-3 frames of at most ``frame_data_octets``
octets of data with consecutive frame sequence numbers (mod 256); :meth:`push_frame` queues a
ready-made transfer frame (checked: 5 .. 2048 octets, length field consistent).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from modem.prox1.coding import ChannelEncoder, block_bits, symbols_per_bit
from modem.prox1.config import Prox1Config
from modem.prox1.modulation import NrzModulator
from modem.prox1.pltu import MAX_DATA_OCTETS, IdleSource, check_frame, pltu_bits, v3_frame


@dataclass
class SentFrame:
    """Where a transfer frame went in the bitstream (for tests and link accounting).

    Attributes
    ----------
    frame : bytes
        The transfer frame.
    bit_position : int
        Bitstream index of the first bit of its ASM.
    symbol_position : int
        Channel symbol index where its PLTU's coding block starts (exact for uncoded and
        conv: the first symbol of the ASM; LDPC: the first symbol of the codeblock holding the
        ASM's first bit).
    """

    frame: bytes
    bit_position: int
    symbol_position: int


class Transmitter:
    """Proximity-1 transmitter (PLTUs, idle, coding, BPSK NRZ-L).

    Parameters
    ----------
    config : Prox1Config
    frame_data_octets : int
        Largest data field of the frames :meth:`push` builds, 1 .. 2043 octets.
    spacecraft_id : int
        Spacecraft ID of those frames, 0 .. 1023.
    acquisition_bits : int, optional
        Idle bits sent before the first PLTU, >= 0 (default: enough for 0.5 s or 4096 bits,
        whichever is more, capped at 2**20).
    amplitude : float
        Sample magnitude.

    Attributes
    ----------
    frames_sent, bytes_sent : int
        Frames (and their data-field octets) whose PLTU has been fully put into the bitstream.
    bits_out, samples_out : int
        Bitstream bits and samples produced.
    sent : list of SentFrame
        Every frame sent, in order (cleared by :meth:`clear_sent`).
    """

    def __init__(
        self,
        config: Prox1Config,
        frame_data_octets: int = 1024,
        spacecraft_id: int = 0,
        acquisition_bits: int | None = None,
        amplitude: float = 1.0,
    ):
        if not isinstance(config, Prox1Config):
            raise TypeError(f"config must be a Prox1Config; got {type(config).__name__}")
        if isinstance(frame_data_octets, bool) or not 1 <= int(frame_data_octets) <= MAX_DATA_OCTETS:
            raise ValueError(f"frame_data_octets must be in 1..{MAX_DATA_OCTETS}; got {frame_data_octets!r}")
        if acquisition_bits is None:
            acquisition_bits = min(1 << 20, max(4096, config.data_rate // 2))
        if int(acquisition_bits) < 0:
            raise ValueError(f"acquisition_bits must be >= 0; got {acquisition_bits!r}")
        self.config = config
        self.frame_data_octets = int(frame_data_octets)
        self.spacecraft_id = int(spacecraft_id)
        self.acquisition_bits = int(acquisition_bits)
        self._encoder = ChannelEncoder(config.coding)
        self._mod = NrzModulator(config.sps, amplitude)
        self._block = block_bits(config.coding)
        self._spb = symbols_per_bit(config.coding)
        self._queue: deque[bytes] = deque()
        self._idle = IdleSource()
        self._seq = 0
        self._pending = np.zeros(0, dtype=np.complex64)  # samples made but not yet returned
        self._acq_left = self.acquisition_bits
        self.frames_sent = 0
        self.bytes_sent = 0
        self.bits_out = 0
        self.samples_out = 0
        self.sent: list[SentFrame] = []

    # -- input

    @property
    def queued_frames(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)

    @property
    def queued_octets(self) -> int:
        """Data-field octets waiting to be sent."""
        return sum(len(f) - 5 for f in self._queue)

    def push(self, data) -> int:
        """Queue user bytes as Version-3 frames of up to ``frame_data_octets`` data octets.

        Returns
        -------
        int
            Frames queued.
        """
        d = bytes(data)
        n = 0
        for i in range(0, len(d), self.frame_data_octets):
            self._queue.append(
                v3_frame(
                    d[i : i + self.frame_data_octets], sequence=self._seq, spacecraft_id=self.spacecraft_id
                )
            )
            self._seq = (self._seq + 1) & 0xFF
            n += 1
        return n

    def push_frame(self, frame) -> None:
        """Queue one transfer frame (5 .. 2048 octets, length field consistent; ValueError else)."""
        self._queue.append(check_frame(frame))

    def clear_sent(self) -> None:
        """Forget the :attr:`sent` log."""
        self.sent.clear()

    # -- output

    def bits(self, n: int) -> np.ndarray:
        """At least ``n`` further bitstream bits.

        Idle (acquisition sequence, or no frame queued) and PLTUs; a PLTU that starts is always
        completed, so the result may be longer.
        """
        out = []
        have = 0
        while have < n:
            if self._acq_left > 0:
                k = min(self._acq_left, n - have)
                out.append(self._idle(k))
                self._acq_left -= k
                have += k
                continue
            if self._queue:
                frame = self._queue.popleft()
                bits = pltu_bits(frame)
                pos = self.bits_out + have
                sym = pos * self._spb
                if self.config.coding == "ldpc":
                    sym = (pos // 1024) * 2112
                self.sent.append(SentFrame(frame, pos, int(sym)))
                self.frames_sent += 1
                self.bytes_sent += len(frame) - 5
                out.append(bits)
                have += bits.size
                continue
            k = n - have
            out.append(self._idle(k))
            have += k
        b = np.concatenate(out) if out else np.zeros(0, dtype=np.uint8)
        self.bits_out += b.size
        return b

    @property
    def pending_samples(self) -> int:
        """Samples already made (the rest of the last PLTU or coding block) not yet returned."""
        return int(self._pending.size)

    def drain(self) -> np.ndarray:
        """Return the samples already made and not yet returned (a clean end before a switch)."""
        out = self._pending
        self._pending = np.zeros(0, dtype=np.complex64)
        self.samples_out += out.size
        return out

    def samples(self, n: int) -> np.ndarray:
        """Exactly ``n`` complex64 samples continuing the transmission."""
        if n < 0:
            raise ValueError(f"n must be >= 0 samples; got {n}")
        parts = [self._pending] if self._pending.size else []
        have = self._pending.size
        sps = self.config.sps
        while have < n:
            need_sym = -(-(n - have) // sps)
            need_bits = int(-(-need_sym // self._spb))
            need_bits = -(-need_bits // self._block) * self._block
            bits = self.bits(need_bits)
            if bits.size % self._block:  # a PLTU overran the block: complete it with idle
                fill = self._block - bits.size % self._block
                bits = np.concatenate([bits, self._idle(fill)])
                self.bits_out += fill
            x = self._mod(self._encoder(bits))
            parts.append(x)
            have += x.size
        allx = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.zeros(0, np.complex64))
        self._pending = allx[n:].copy()
        self.samples_out += n
        return allx[:n]
