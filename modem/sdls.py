"""Frame protection in the style of CCSDS Space Data Link Security (SDLS, CCSDS 355.0-B-2).

Bytes in, bytes out: :class:`FrameProtector` turns a user frame into a protected frame,
:class:`FrameVerifier` checks one and gives the user frame back, or raises
:class:`FrameRejected` with a reason and counts it. No sockets, files or threads here; the
key comes in as 32 bytes (``flowgraphs.keys.load_sdls_key`` reads a key file).

Protected frame (all fields big-endian, as CCSDS transmits them)::

    +---------+----------------------+------------------------------+-----------+
    | SPI (2) | sequence number (S)  | frame data (encrypted or not) | MAC (16)  |
    +---------+----------------------+------------------------------+-----------+
     security header (355.0-B-2 §4.1.1)                             security trailer (§4.1.2)

* SPI, security parameter index (16 bits, §4.1.1.2): names the security association (key,
  algorithm, sequence-number length, encryption on or off), all managed parameters agreed
  out of band, as SDLS intends; nothing but the SPI and the sequence number goes on the wire.
* Sequence number (``seq_bytes`` = S octets, 8 by default, §4.1.1.4): counts the frames of the
  association from 1, never repeats and never wraps. The receiver's anti-replay window uses it.
* No IV field (the 355.0-B-2 IV field length is a managed parameter and may be 0): the 96-bit
  AES-GCM nonce is built from the header, ``SPI (2) || 0x0000 || sequence number (8, the S
  octets zero-extended)``, so it is unique for as long as (key, SPI, sequence number) never
  repeats, which :class:`FrameProtector` enforces inside a process: it counts up and refuses
  to wrap (:class:`SequenceExhausted`). Across restarts a caller must resume the count past
  every number already used (the ``reserve`` hook persists a high-water mark) or change the
  key; two senders must never share one (key, SPI).
* MAC (16 octets, §4.1.2): the AES-256-GCM tag over the security header (and an optional
  caller header, e.g. the transfer-frame primary header kept in the clear) as additional
  authenticated data and the frame data. ``encrypt=False`` gives authentication only
  (GMAC: the data stays in the clear and is authenticated as AAD).

Overhead: 2 + S + 16 bytes per frame, 26 bytes with the default S = 8 (22 with S = 4). Against
DVB-S2 BBFRAME data fields: 7.0 % of the smallest (374 bytes, short QPSK 1/4), 1.3 % of a normal
QPSK 1/4 frame's 1 991 bytes, 0.36 % of the largest (7 264 bytes, normal 9/10). A Proximity-1
frame of at most 2 048 bytes pays at least 1.3 %.

Anti-replay (§4.2.2.3, "sequence number window"): the verifier keeps the highest sequence
number it has authenticated and a bitmap of the ``window`` numbers below it. A frame whose
number is already marked is a replay, one older than the window is too old; both are refused
before decryption. The window moves only after a frame authenticates, so forged frames
(however high their sequence number) cannot push genuine ones out.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  #: AES-256 key length, bytes
SPI_BYTES = 2  #: security parameter index field, bytes (355.0-B-2 §4.1.1.2)
MAC_BYTES = 16  #: AES-GCM tag in the security trailer, bytes
NONCE_BYTES = 12  #: AES-GCM nonce (96 bits, built from SPI and sequence number)
SEQ_BYTES_ALLOWED = (4, 6, 8)  #: sequence-number field lengths this module supports, bytes
DEFAULT_WINDOW = 1024  #: anti-replay window, frames

#: Rejection reasons of :class:`FrameRejected`, each with its counter in ``FrameVerifier.counters``.
REASONS = ("truncated", "bad_spi", "replay", "too_old", "auth_failed")


class FrameRejected(ValueError):
    """A protected frame that the verifier refused (nothing of it is delivered).

    Attributes
    ----------
    reason : str
        One of :data:`REASONS`: "truncated" (shorter than header + MAC), "bad_spi" (SPI of
        another association), "replay" (sequence number already accepted), "too_old" (below the
        anti-replay window), "auth_failed" (MAC does not verify: forged, corrupted or wrong key).
    seq : int or None
        The frame's sequence number, when the header could be read.
    """

    def __init__(self, reason: str, detail: str, seq: int | None = None):
        super().__init__(f"SDLS frame rejected ({reason}): {detail}")
        self.reason = reason
        self.seq = seq


class SequenceExhausted(RuntimeError):
    """The association has used every sequence number: rekey (a new key or SPI) to go on."""


def _check_key(key) -> AESGCM:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise TypeError(f"key must be {KEY_BYTES} bytes; got {type(key).__name__}")
    if len(key) != KEY_BYTES:  # the value itself is never shown
        raise ValueError(f"key must be {KEY_BYTES} bytes (AES-256); got {len(key)} bytes")
    return AESGCM(bytes(key))


def _check_int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in {lo}..{hi}; got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}; got {value}")
    return value


def _check_seq_bytes(seq_bytes) -> int:
    if isinstance(seq_bytes, bool) or seq_bytes not in SEQ_BYTES_ALLOWED:
        raise ValueError(f"seq_bytes must be one of {SEQ_BYTES_ALLOWED}; got {seq_bytes!r}")
    return int(seq_bytes)


def _as_bytes(data, name: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{name} must be bytes-like; got {type(data).__name__}")


def overhead_bytes(seq_bytes: int = 8) -> int:
    """Bytes a protected frame adds to the user frame: SPI + sequence number + MAC."""
    return SPI_BYTES + _check_seq_bytes(seq_bytes) + MAC_BYTES


def nonce(spi: int, seq: int) -> bytes:
    """The 96-bit AES-GCM nonce of frame ``seq`` of association ``spi``: SPI || 0x0000 || seq (8 bytes)."""
    return spi.to_bytes(2, "big") + b"\x00\x00" + seq.to_bytes(8, "big")


def parse_security_header(frame, seq_bytes: int = 8) -> tuple[int, int]:
    """Read (SPI, sequence number) from a protected frame without checking anything else.

    Raises
    ------
    FrameRejected
        reason "truncated" when the frame cannot hold the header and the MAC.
    """
    frame = _as_bytes(frame, "frame")
    s = _check_seq_bytes(seq_bytes)
    if len(frame) < SPI_BYTES + s + MAC_BYTES:
        raise FrameRejected(
            "truncated",
            f"frame is {len(frame)} bytes; a protected frame has at least "
            f"{SPI_BYTES + s + MAC_BYTES} (SPI {SPI_BYTES} + sequence number {s} + MAC {MAC_BYTES})",
        )
    spi = int.from_bytes(frame[:SPI_BYTES], "big")
    seq = int.from_bytes(frame[SPI_BYTES : SPI_BYTES + s], "big")
    return spi, seq


class FrameProtector:
    """Sender side of one security association: user frames in, protected frames out.

    Parameters
    ----------
    key : bytes
        32-byte AES-256 key. Kept only inside the cipher object; never shown in messages or repr.
    spi : int
        Security parameter index, 0..65535.
    seq_bytes : {4, 6, 8}
        Length of the sequence-number field, bytes (default 8: 2^64 - 1 frames per key).
    encrypt : bool
        True (default): AES-256-GCM authenticated encryption. False: authentication only (GMAC),
        the data travels in the clear.
    next_seq : int
        First sequence number to use, >= 1 (a restarted sender resumes past every number it used).
    reserve : callable or None
        ``reserve(upto)`` is called before the first frame and then whenever the count reaches
        the last reserved number, with ``upto`` = the new reservation (at most ``reserve_block``
        ahead). A caller persists ``upto`` there (durably, before returning) and, after a
        restart, passes ``next_seq = upto + 1`` of the last reservation it stored: sequence
        numbers, hence nonces, then never repeat under the key even after a crash.
    reserve_block : int
        Sequence numbers reserved per ``reserve`` call, >= 1.

    Attributes
    ----------
    frames_out : int
        Frames protected.
    bytes_in : int
        User bytes protected.
    """

    def __init__(
        self,
        key,
        spi: int,
        *,
        seq_bytes: int = 8,
        encrypt: bool = True,
        next_seq: int = 1,
        reserve=None,
        reserve_block: int = 1 << 16,
    ):
        self._aead = _check_key(key)
        self.spi = _check_int(spi, "spi", 0, 0xFFFF)
        self.seq_bytes = _check_seq_bytes(seq_bytes)
        self.max_seq = (1 << (8 * self.seq_bytes)) - 1
        self.encrypt = bool(encrypt)
        self._next = _check_int(next_seq, "next_seq", 1, self.max_seq)
        if reserve is not None and not callable(reserve):
            raise TypeError(f"reserve must be callable or None; got {type(reserve).__name__}")
        self._reserve = reserve
        self._block = _check_int(reserve_block, "reserve_block", 1, 1 << 62)
        self._reserved = self._next - 1  # highest number covered by a reservation
        self._spi_field = self.spi.to_bytes(SPI_BYTES, "big")
        self._nonce_prefix = self._spi_field + b"\x00\x00"
        self.frames_out = 0
        self.bytes_in = 0

    def __repr__(self) -> str:
        return (
            f"FrameProtector(spi={self.spi}, seq_bytes={self.seq_bytes}, encrypt={self.encrypt}, "
            f"next_seq={self._next})"
        )

    @property
    def overhead(self) -> int:
        """Bytes added per frame: 2 (SPI) + ``seq_bytes`` + 16 (MAC)."""
        return SPI_BYTES + self.seq_bytes + MAC_BYTES

    @property
    def next_seq(self) -> int:
        """Sequence number the next frame will carry."""
        return self._next

    @property
    def remaining(self) -> int:
        """Frames this association can still protect before it must be rekeyed."""
        return self.max_seq - self._next + 1

    def protect(self, data, header=b"") -> bytes:
        """Protect one user frame.

        Parameters
        ----------
        data : bytes-like
            The user frame (any length, 0 included).
        header : bytes-like
            Optional bytes sent in the clear outside the protected frame (e.g. a transfer-frame
            primary header) that the MAC covers too; the verifier must be given the same bytes.

        Returns
        -------
        bytes
            SPI || sequence number || data (encrypted unless ``encrypt=False``) || MAC;
            ``len(data) + overhead`` bytes.

        Raises
        ------
        SequenceExhausted
            When the sequence number would pass ``max_seq``; no frame is produced.
        """
        data = _as_bytes(data, "data")
        header = _as_bytes(header, "header")
        seq = self._next
        if seq > self.max_seq:
            raise SequenceExhausted(
                f"SPI {self.spi}: all {self.max_seq} sequence numbers of {self.seq_bytes} bytes are used; "
                "the sequence number never wraps (that would repeat AES-GCM nonces): use a new key"
            )
        if seq > self._reserved:
            upto = min(self._reserved + self._block, self.max_seq)
            if self._reserve is not None:
                self._reserve(upto)  # persisted before any number of the block is used
            self._reserved = upto
        sec_header = self._spi_field + seq.to_bytes(self.seq_bytes, "big")
        iv = self._nonce_prefix + seq.to_bytes(8, "big")
        if self.encrypt:
            body = self._aead.encrypt(iv, data, header + sec_header)
        else:
            body = data + self._aead.encrypt(iv, b"", header + sec_header + data)
        self._next = seq + 1
        self.frames_out += 1
        self.bytes_in += len(data)
        return sec_header + body


class FrameVerifier:
    """Receiver side of one security association: protected frames in, user frames out.

    Parameters
    ----------
    key : bytes
        32-byte AES-256 key (never shown).
    spi : int
        Security parameter index the frames must carry, 0..65535.
    seq_bytes : {4, 6, 8}
        Sequence-number field length, bytes; as the protector's.
    encrypt : bool
        As the protector's (True: AES-256-GCM, False: authentication only).
    window : int
        Anti-replay window, frames (1..2^20): sequence numbers more than ``window - 1`` below the
        highest authenticated one are refused as too old; inside the window each number is
        accepted once, in any order.
    floor : int
        Every sequence number <= ``floor`` is refused (e.g. the highest number a previous run of
        this receiver had accepted, restored after a restart).

    Attributes
    ----------
    counters : dict of str to int
        ``frames_in``, ``frames_ok``, ``bytes_out`` and one counter per rejection reason
        (:data:`REASONS`).
    """

    def __init__(
        self,
        key,
        spi: int,
        *,
        seq_bytes: int = 8,
        encrypt: bool = True,
        window: int = DEFAULT_WINDOW,
        floor: int = 0,
    ):
        self._aead = _check_key(key)
        self.spi = _check_int(spi, "spi", 0, 0xFFFF)
        self.seq_bytes = _check_seq_bytes(seq_bytes)
        self.encrypt = bool(encrypt)
        self.window = _check_int(window, "window", 1, 1 << 20)
        self._mask = (1 << self.window) - 1
        floor = _check_int(floor, "floor", 0, (1 << (8 * self.seq_bytes)) - 1)
        self._highest = floor
        self._seen = self._mask  # bit i: highest - i was accepted (or is at/below the floor)
        self._min_len = SPI_BYTES + self.seq_bytes + MAC_BYTES
        self._nonce_prefix = self.spi.to_bytes(SPI_BYTES, "big") + b"\x00\x00"
        self.counters = dict.fromkeys(("frames_in", "frames_ok", "bytes_out", *REASONS), 0)

    def __repr__(self) -> str:
        return (
            f"FrameVerifier(spi={self.spi}, seq_bytes={self.seq_bytes}, encrypt={self.encrypt}, "
            f"window={self.window}, highest_seq={self._highest})"
        )

    @property
    def overhead(self) -> int:
        """Bytes a protected frame carries beyond the user frame."""
        return self._min_len

    @property
    def highest_seq(self) -> int:
        """Highest sequence number authenticated so far (the floor before any)."""
        return self._highest

    @property
    def rejected(self) -> int:
        """Frames refused, all reasons together."""
        return sum(self.counters[r] for r in REASONS)

    def _reject(self, reason: str, detail: str, seq: int | None = None):
        self.counters[reason] += 1
        raise FrameRejected(reason, detail, seq)

    def verify(self, frame, header=b"") -> bytes:
        """Check one protected frame and return its user frame.

        Parameters
        ----------
        frame : bytes-like
            SPI || sequence number || data || MAC, as :meth:`FrameProtector.protect` made it.
        header : bytes-like
            The clear header given to ``protect``, if any.

        Returns
        -------
        bytes
            The user frame; only returned when the MAC verifies and the sequence number is new.

        Raises
        ------
        FrameRejected
            With ``reason`` in :data:`REASONS`; the matching counter is incremented and the
            anti-replay state is unchanged.
        """
        frame = _as_bytes(frame, "frame")
        header = _as_bytes(header, "header")
        self.counters["frames_in"] += 1
        n = len(frame)
        if n < self._min_len:
            self._reject(
                "truncated",
                f"frame is {n} bytes; a protected frame has at least {self._min_len} "
                f"(SPI {SPI_BYTES} + sequence number {self.seq_bytes} + MAC {MAC_BYTES})",
            )
        spi = int.from_bytes(frame[:SPI_BYTES], "big")
        if spi != self.spi:
            self._reject("bad_spi", f"SPI {spi}; this association is SPI {self.spi}")
        hlen = SPI_BYTES + self.seq_bytes
        seq = int.from_bytes(frame[SPI_BYTES:hlen], "big")
        age = self._highest - seq
        if age >= self.window:
            self._reject(
                "too_old",
                f"sequence number {seq} is below the anti-replay window "
                f"({self._highest - self.window + 1}..{self._highest} and above)",
                seq,
            )
        if age >= 0 and (self._seen >> age) & 1:
            self._reject("replay", f"sequence number {seq} was already accepted (or is <= the floor)", seq)
        iv = self._nonce_prefix + seq.to_bytes(8, "big")
        try:
            if self.encrypt:
                data = self._aead.decrypt(iv, frame[hlen:], header + frame[:hlen])
            else:
                data = frame[hlen:-MAC_BYTES]
                tag = self._aead.encrypt(iv, b"", header + frame[:hlen] + data)
                if not hmac.compare_digest(tag, frame[-MAC_BYTES:]):
                    raise InvalidTag
        except InvalidTag:
            self._reject("auth_failed", f"MAC does not verify (frame of {n} bytes, sequence {seq})", seq)
        if age < 0:  # a new highest number: slide the window up
            self._seen = ((self._seen << -age) | 1) & self._mask if -age < self.window else 1
            self._highest = seq
        else:
            self._seen |= 1 << age
        self.counters["frames_ok"] += 1
        self.counters["bytes_out"] += len(data)
        return data


__all__ = [
    "DEFAULT_WINDOW", "FrameProtector", "FrameRejected", "FrameVerifier", "KEY_BYTES", "MAC_BYTES",
    "NONCE_BYTES", "REASONS", "SEQ_BYTES_ALLOWED", "SPI_BYTES", "SequenceExhausted", "nonce",
    "overhead_bytes", "parse_security_header",
]
