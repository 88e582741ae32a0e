"""Proximity-1 transfer frames and PLTUs (CCSDS 211.0-B §3.2, 211.2-B §3.2 - §3.3).

A PLTU (Proximity Link Transmission Unit, 211.2-B §3.2.2) is the 24-bit attached sync marker
ASM = FAF320 (hex, §3.2.3.2), one Version-3 transfer frame of 5 .. 2048 octets, and a 32-bit
CRC over the frame (§3.2.5, Annex C; :func:`modem.fec.crc.crc32_prox1`). Between PLTUs, and
before the first one (acquisition) and after the last one (tail), the sender fills the
bitstream with the idle pattern: the 32-bit PN word 352EF853 (hex) repeated (§3.3.2.2).

The Version-3 frame header (211.0-B §3.2.2) is five octets: version '10' (2 bits), QoS
indicator (1; 0 = sequence controlled, 1 = expedited), PDU type (1; 0 = user data), data field
construction ID (2), spacecraft ID (10), physical channel ID (1), port ID (3), source-or-
destination ID (1), frame length (11 bits: octets in the frame minus one) and frame sequence
number (8). The C&S sublayer reads the frame length field to find the CRC.

Bits are uint8 0/1, most significant bit of each octet first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from modem.fec.crc import crc32_prox1

#: Attached sync marker (211.2-B §3.2.3.2), 24 bits.
ASM = 0xFAF320
ASM_BITS = 24
#: Idle pattern (211.2-B §3.3.2.2), 32 bits, repeated.
IDLE_WORD = 0x352EF853
#: Transfer frame length limits, octets (header 5 + data field 0 .. 2043).
HEADER_OCTETS = 5
MIN_FRAME_OCTETS, MAX_FRAME_OCTETS = HEADER_OCTETS, 2048
MAX_DATA_OCTETS = MAX_FRAME_OCTETS - HEADER_OCTETS
CRC_OCTETS = 4
#: Version-3 transfer frame version number (binary '10').
V3_VERSION = 2


def int_to_bits(value: int, width: int) -> np.ndarray:
    """The ``width`` bits of ``value``, most significant first, as uint8 0/1."""
    return ((value >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


ASM_BITS_ARRAY = int_to_bits(ASM, ASM_BITS)
IDLE_BITS = int_to_bits(IDLE_WORD, 32)


@dataclass(frozen=True)
class V3Header:
    """Fields of a Version-3 transfer frame header (211.0-B §3.2.2).

    Attributes
    ----------
    frame_octets : int
        Octets in the whole frame, 5 .. 2048 (sent as frame length = octets - 1).
    sequence : int
        Frame sequence number, 0 .. 255.
    spacecraft_id : int
        0 .. 1023.
    qos : int
        0 = sequence controlled, 1 = expedited.
    pdu_type : int
        0 = user data, 1 = protocol data (directives).
    dfc_id : int
        Data field construction ID, 0 .. 3.
    pcid, port, source_dest : int
        Physical channel ID (0/1), port ID (0 .. 7), source-or-destination ID (0/1).
    version : int
        Transfer frame version number (2 = binary '10' for Version 3).
    """

    frame_octets: int
    sequence: int = 0
    spacecraft_id: int = 0
    qos: int = 1
    pdu_type: int = 0
    dfc_id: int = 3
    pcid: int = 0
    port: int = 0
    source_dest: int = 0
    version: int = V3_VERSION

    def __post_init__(self):
        for name, lo, hi in (
            ("frame_octets", MIN_FRAME_OCTETS, MAX_FRAME_OCTETS),
            ("sequence", 0, 255),
            ("spacecraft_id", 0, 1023),
            ("qos", 0, 1),
            ("pdu_type", 0, 1),
            ("dfc_id", 0, 3),
            ("pcid", 0, 1),
            ("port", 0, 7),
            ("source_dest", 0, 1),
            ("version", 0, 3),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}; got {v!r}")

    def to_bytes(self) -> bytes:
        """The five header octets."""
        w = self.version
        for value, width in (
            (self.qos, 1), (self.pdu_type, 1), (self.dfc_id, 2), (self.spacecraft_id, 10),
            (self.pcid, 1), (self.port, 3), (self.source_dest, 1), (self.frame_octets - 1, 11),
            (self.sequence, 8),
        ):  # fmt: skip
            w = (w << width) | int(value)
        return w.to_bytes(HEADER_OCTETS, "big")

    @classmethod
    def from_bytes(cls, header) -> V3Header:
        """Parse five header octets (raises ValueError for fields out of range)."""
        b = bytes(header)
        if len(b) != HEADER_OCTETS:
            raise ValueError(f"header must be {HEADER_OCTETS} octets; got {len(b)}")
        w = int.from_bytes(b, "big")
        fields = {}
        pos = 40
        for name, width in (
            ("version", 2), ("qos", 1), ("pdu_type", 1), ("dfc_id", 2), ("spacecraft_id", 10),
            ("pcid", 1), ("port", 3), ("source_dest", 1), ("frame_octets", 11), ("sequence", 8),
        ):  # fmt: skip
            pos -= width
            fields[name] = (w >> pos) & ((1 << width) - 1)
        fields["frame_octets"] += 1
        return cls(**fields)


def v3_frame(data, sequence: int = 0, **fields) -> bytes:
    """A Version-3 transfer frame: header (with the frame length filled in) + ``data``.

    Parameters
    ----------
    data : bytes-like
        The data field, 0 .. 2043 octets.
    sequence : int
        Frame sequence number, 0 .. 255.
    **fields
        Other :class:`V3Header` fields (spacecraft_id, qos, port, ...).

    Returns
    -------
    bytes
        5 + len(data) octets.
    """
    d = bytes(data)
    if len(d) > MAX_DATA_OCTETS:
        raise ValueError(
            f"data field must be 0..{MAX_DATA_OCTETS} octets (frame up to {MAX_FRAME_OCTETS}); got {len(d)}"
        )
    return V3Header(frame_octets=HEADER_OCTETS + len(d), sequence=sequence, **fields).to_bytes() + d


def check_frame(frame) -> bytes:
    """Return ``frame`` as bytes if it is a valid transfer frame for a PLTU.

    Raises ValueError naming the problem: length outside 5 .. 2048 octets, or a frame length
    field that disagrees with the length.
    """
    f = bytes(frame)
    if not MIN_FRAME_OCTETS <= len(f) <= MAX_FRAME_OCTETS:
        raise ValueError(
            f"transfer frame must be {MIN_FRAME_OCTETS}..{MAX_FRAME_OCTETS} octets; got {len(f)}"
        )
    declared = (((f[2] & 0x07) << 8) | f[3]) + 1
    if declared != len(f):
        raise ValueError(
            f"frame length field says {declared} octets but the frame has {len(f)} (field = octets - 1)"
        )
    return f


def pltu_bits(frame) -> np.ndarray:
    """The PLTU of one transfer frame as bits: ASM, frame, CRC-32 (211.2-B §3.2).

    Parameters
    ----------
    frame : bytes-like
        A transfer frame of 5 .. 2048 octets whose frame length field matches its length.

    Returns
    -------
    ndarray of uint8, shape (24 + 8 (len(frame) + 4),)
    """
    f = check_frame(frame)
    crc = crc32_prox1(f).to_bytes(CRC_OCTETS, "big")
    body = np.unpackbits(np.frombuffer(f + crc, dtype=np.uint8))
    return np.concatenate([ASM_BITS_ARRAY, body])


def pltu_length_bits(frame_octets: int) -> int:
    """Bits in the PLTU of a frame of ``frame_octets`` octets."""
    return ASM_BITS + 8 * (frame_octets + CRC_OCTETS)


class IdleSource:
    """The idle pattern as a stream of bits, continuing the 32-bit word across calls."""

    def __init__(self):
        self._phase = 0

    def reset(self) -> None:
        """Restart at the first bit of the idle word."""
        self._phase = 0

    def __call__(self, n: int) -> np.ndarray:
        """The next ``n`` idle bits (uint8)."""
        if n < 0:
            raise ValueError(f"n must be >= 0 bits; got {n}")
        idx = (self._phase + np.arange(n)) % 32
        self._phase = (self._phase + n) % 32
        return IDLE_BITS[idx]


@nb.njit(cache=True, nogil=True)
def _find_asm_kernel(bits, start, pattern, width, max_errors):
    """First position p >= start where bits[p:p+width] matches pattern or its complement.

    At most max_errors differences; returns (p, inverted) or (-1, 0).
    """
    mask = (np.int64(1) << width) - 1
    inv = pattern ^ mask
    reg = np.int64(0)
    n = bits.shape[0]
    lo = max(start, 0)
    for i in range(lo, n):
        reg = ((reg << 1) | np.int64(bits[i])) & mask
        p = i - width + 1
        if p < lo:
            continue
        d0 = 0
        x = reg ^ pattern
        while x:
            x &= x - 1
            d0 += 1
        if d0 <= max_errors:
            return p, 0
        d1 = 0
        x = reg ^ inv
        while x:
            x &= x - 1
            d1 += 1
        if d1 <= max_errors:
            return p, 1
    return -1, 0


def find_asm(bits: np.ndarray, start: int = 0, max_errors: int = 0) -> tuple[int, bool]:
    """First ASM (or complemented ASM) at or after ``start`` in a bit array.

    Parameters
    ----------
    bits : ndarray of uint8, shape (n,)
    start : int
        First candidate position.
    max_errors : int
        Largest number of differing bits accepted, 0 .. 4 (the idle pattern stays at least
        5 bits away from the ASM and its complement in every alignment).

    Returns
    -------
    (int, bool)
        Position of the marker's first bit (-1 if none) and whether it was complemented.
    """
    if not 0 <= max_errors <= 4:
        raise ValueError(f"max_errors must be in 0..4 bits; got {max_errors}")
    p, inv = _find_asm_kernel(
        np.ascontiguousarray(bits, dtype=np.uint8), int(start), ASM, ASM_BITS, max_errors
    )
    return int(p), bool(inv)


@dataclass
class DeframedPltu:
    """One PLTU found in a bitstream by :class:`PltuDeframer`.

    Attributes
    ----------
    frame : bytes
        The transfer frame (header and data field); empty when the header was unreadable.
    ok : bool
        CRC-32 correct: only then is the frame good data.
    inverted : bool
        The marker (and so the frame) arrived complemented (BPSK phase ambiguity).
    bit_position : int
        Stream position of the ASM's first bit (bits since the deframer's start).
    bits : int
        Length of the PLTU in the stream, bits (the ASM alone if the header was unreadable).
    header : V3Header or None
        The parsed header (None when unreadable).
    problem : str
        "" if ok; else "crc" or "header".
    """

    frame: bytes
    ok: bool
    inverted: bool
    bit_position: int
    bits: int
    header: V3Header | None
    problem: str = ""


class PltuDeframer:
    """Finds PLTUs in a bitstream and checks their CRC (receive side of 211.2-B §3.6).

    Streaming: ``pltus = deframer(bits)`` returns the PLTUs completed by these bits; bits of a
    PLTU not yet complete are kept for the next call. Each ASM is searched for in both
    polarities: a complemented ASM means the frame bits are complemented too (BPSK phase
    ambiguity after a transparent code), which is undone before the CRC.

    Parameters
    ----------
    max_errors : int
        ASM bits that may differ, 0 .. 4 (default 1).
    version : int or None
        Transfer frame version accepted (2 = Version 3, the default); None accepts any
        (e.g. Version-4 frames, whose length field is elsewhere, are then not supported).

    Attributes
    ----------
    bits_in : int
        Bits received so far.
    good, bad : int
        PLTUs with a correct CRC, and PLTUs reported bad (CRC or unreadable header).
    """

    def __init__(self, max_errors: int = 1, version: int | None = V3_VERSION):
        if not 0 <= max_errors <= 4:
            raise ValueError(f"max_errors must be in 0..4 bits; got {max_errors}")
        self.max_errors = int(max_errors)
        self.version = version
        self.reset()

    def reset(self) -> None:
        """Forget buffered bits and counters."""
        self._buf = np.zeros(0, dtype=np.uint8)
        self._base = 0  # stream position of self._buf[0]
        self._search = 0  # next position (relative to buffer) to search from
        self.bits_in = 0
        self.good = 0
        self.bad = 0

    def __call__(self, bits) -> list[DeframedPltu]:
        """Push bits (uint8 0/1, any count); return the PLTUs completed so far, in order."""
        b = np.asarray(bits, dtype=np.uint8)
        if b.ndim != 1:
            raise ValueError(f"bits must be 1-D; got shape {b.shape}")
        self.bits_in += b.size
        self._buf = np.concatenate([self._buf, b]) if self._buf.size else b.copy()
        out: list[DeframedPltu] = []
        pos = self._search
        n = self._buf.size
        while True:
            p, inverted = find_asm(self._buf, pos, self.max_errors)
            if p < 0:
                pos = max(pos, n - ASM_BITS + 1)
                break
            hdr_end = p + ASM_BITS + 8 * HEADER_OCTETS
            if hdr_end > n:
                pos = p
                break
            hbits = self._buf[p + ASM_BITS : hdr_end] ^ np.uint8(inverted)
            header_bytes = np.packbits(hbits).tobytes()
            try:
                header = V3Header.from_bytes(header_bytes)
            except ValueError:  # frame length field below 5 octets
                header = None
            if header is None or (self.version is not None and header.version != self.version):
                # not a frame this deframer reads: a false marker in data, or a damaged header
                out.append(DeframedPltu(b"", False, inverted, self._base + p, ASM_BITS, None, "header"))
                self.bad += 1
                pos = p + ASM_BITS
                continue
            total = pltu_length_bits(header.frame_octets)
            if p + total > n:
                pos = p
                break
            body = self._buf[p + ASM_BITS : p + total] ^ np.uint8(inverted)
            octets = np.packbits(body).tobytes()
            frame, crc = octets[: header.frame_octets], octets[header.frame_octets :]
            ok = crc32_prox1(frame) == int.from_bytes(crc, "big")
            out.append(DeframedPltu(frame, ok, inverted, self._base + p, total, header, "" if ok else "crc"))
            if ok:
                self.good += 1
                pos = p + total
            else:
                self.bad += 1
                pos = p + ASM_BITS  # the length may be wrong: look for the next marker inside
        keep = max(0, min(pos, n))
        self._buf = self._buf[keep:].copy()
        self._base += keep
        self._search = pos - keep
        return out
