"""DVB-S2 mode and stream adaptation: BBHEADER, BBFRAME framers and deframers, BB scrambling.

ETSI EN 302 307-1 §5.1 (mode adaptation) and §5.2 (stream adaptation), single input stream.

A BBFRAME is K_bch bits: the 80-bit BBHEADER (§5.1.6), a data field of DFL bits (§5.1.5,
DFL <= K_bch - 80), zero padding up to K_bch (§5.2.1), the whole XORed with the BB scrambling
PRBS (§5.2.2). With ACM the MODCOD, hence K_bch, may change from one frame to the next, so the
framers are asked for one frame at a time with its K_bch.

Two input formats are supported:

* Transport stream (``TsFramer``, TS/GS = 11): 188-byte packets starting with the sync byte 0x47,
  UPL = 1504 bits, SYNC = 0x47. Per §5.1.4 the sync byte of each user packet (UP) is replaced by
  the CRC-8 of the 187 data bytes of the *previous* UP; the first UP of the stream carries 0x00,
  the CRC-8 register's initial state (no previous UP). SYNCD is the distance in bits from the start
  of the data field to the first UP that starts in it (0xFFFF: none starts). UPs straddle
  BBFRAMEs; the data field is always filled to K_bch - 80 bits, padding is used only by ``flush``.
  At a flush the CRC-8 of the last UP is sent as well, as the first byte (sync position) of the
  next UP, so that the receiver can check the last packet; packets pushed later continue that UP.
* Continuous generic stream (``GsFramer``, TS/GS = 01, UPL = 0, SYNC = 0x00, SYNCD = 0): raw bytes
  of any alignment, as CCSDS 131.3 uses DVB-S2 for CCSDS transfer frames: a continuous stream of
  CADUs (ASM + frame) fills the data fields, and the receiver finds frame boundaries with the ASM.

``BBDeframer`` undoes both. It takes BBFRAMEs as the BCH decoder delivers them (still scrambled,
unless ``scrambled=False``) with the decoder's ``ok`` flag, and returns user bytes in order.
Every frame it cannot use, every skipped byte and every TS packet it cannot vouch for is recorded
as a :class:`DeframerEvent`; TS packets whose CRC-8 fails are dropped (or kept and reported, with
``keep_bad=True``), never passed on as good.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from modem.checks import check_choice
from modem.dvbs2.modcod import BBHEADER_BITS, K_BCH_VALUES, FrameSpec
from modem.fec.crc import crc8, crc8_rows

# MATYPE-1 TS/GS codes (§5.1.6, Table 3)
TS_GS_GENERIC_PACKETIZED = 0b00
TS_GS_GENERIC_CONTINUOUS = 0b01
TS_GS_TRANSPORT = 0b11
#: Roll-off factor -> RO code (§5.1.6); 0b11 is reserved.
ROLLOFF_CODES = {0.35: 0b00, 0.25: 0b01, 0.20: 0b10}
_ROLLOFFS = {v: k for k, v in ROLLOFF_CODES.items()}

TS_PACKET_BYTES = 188
TS_SYNC_BYTE = 0x47
TS_UPL_BITS = 8 * TS_PACKET_BYTES  # 1504
SYNCD_NONE = 0xFFFF  # no UP starts in the data field (§5.1.6)

_HEADER_FIELDS = (  # (name, width in bits), transmission order, 72 bits before the CRC-8
    ("ts_gs", 2), ("sis_mis", 1), ("ccm_acm", 1), ("issyi", 1), ("npd", 1), ("ro", 2),
    ("matype2", 8), ("upl", 16), ("dfl", 16), ("sync", 8), ("syncd", 16),
)


# ---------------------------------------------------------------------------------------------
# BBHEADER


@dataclass(frozen=True)
class BBHeader:
    """BBHEADER of EN 302 307-1 §5.1.6: MATYPE (2 bytes), UPL, DFL, SYNC, SYNCD, CRC-8 = 80 bits.

    Attributes
    ----------
    ts_gs : int
        Input format, 2 bits: 0b11 transport stream, 0b00 generic packetized, 0b01 generic
        continuous.
    sis_mis : int
        1 = single input stream, 0 = multiple.
    ccm_acm : int
        1 = CCM, 0 = ACM/VCM.
    issyi : int
        1 = input stream synchronization indicator active.
    npd : int
        1 = null-packet deletion active.
    ro : int
        Roll-off code, 2 bits: 0b00 = 0.35, 0b01 = 0.25, 0b10 = 0.20 (0b11 reserved); see
        :func:`rolloff_code`.
    matype2 : int
        MATYPE-2 byte: input stream identifier with MIS, else reserved (0).
    upl : int
        User packet length, bits (1504 for TS, 0 for continuous streams).
    dfl : int
        Data field length, bits (0 .. K_bch - 80).
    sync : int
        Copy of the user packet sync byte (0x47 for TS; 0 for continuous streams).
    syncd : int
        Bits from the start of the data field to the first UP starting in it; 0xFFFF if none.
    """

    ts_gs: int = TS_GS_TRANSPORT
    sis_mis: int = 1
    ccm_acm: int = 0
    issyi: int = 0
    npd: int = 0
    ro: int = 0b00
    matype2: int = 0
    upl: int = 0
    dfl: int = 0
    sync: int = 0
    syncd: int = 0

    def __post_init__(self):
        for name, width in _HEADER_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool | np.bool_):
                v = int(v)
            if not isinstance(v, int | np.integer):
                raise TypeError(f"BBHeader.{name} must be an int; got {type(v).__name__}")
            if not 0 <= v < (1 << width):
                raise ValueError(f"BBHeader.{name} must fit in {width} bits (0..{(1 << width) - 1}); got {v}")
            object.__setattr__(self, name, int(v))

    @property
    def rolloff(self) -> float | None:
        """Roll-off factor, or None for the reserved code 0b11."""
        return _ROLLOFFS.get(self.ro)

    def _body(self) -> bytes:
        v = 0
        for name, width in _HEADER_FIELDS:
            v = (v << width) | getattr(self, name)
        return v.to_bytes(9, "big")

    def to_bytes(self) -> bytes:
        """The 10 header bytes, CRC-8 (§5.1.4) of the first 9 last."""
        body = self._body()
        return body + bytes([crc8(body)])

    def pack(self) -> np.ndarray:
        """The 80 header bits, MSB of MATYPE-1 first, as uint8 0/1."""
        return np.unpackbits(np.frombuffer(self.to_bytes(), dtype=np.uint8))

    @classmethod
    def unpack(cls, bits) -> tuple[BBHeader, bool]:
        """Parse 80 header bits.

        Parameters
        ----------
        bits : array_like of 0/1, shape (80,)

        Returns
        -------
        header : BBHeader
            Fields as received (meaningless when the CRC fails).
        crc_ok : bool
            True when the CRC-8 over the first 72 bits matches the last 8.
        """
        b = np.asarray(bits)
        if b.shape != (BBHEADER_BITS,):
            raise ValueError(f"bits must have shape ({BBHEADER_BITS},); got {b.shape}")
        if not (np.issubdtype(b.dtype, np.integer) or b.dtype == np.bool_):
            raise TypeError(f"bits must hold integer bits 0/1; got dtype {b.dtype}")
        if b.min() < 0 or b.max() > 1:
            raise ValueError("bits must hold only bits 0 and 1")
        return cls.from_bytes(np.packbits(b.astype(np.uint8)).tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[BBHeader, bool]:
        """Parse the 10 header bytes; see :meth:`unpack`."""
        if len(data) != BBHEADER_BITS // 8:
            raise ValueError(f"data must be {BBHEADER_BITS // 8} bytes; got {len(data)}")
        v = int.from_bytes(data[:9], "big")
        values = {}
        shift = 72
        for name, width in _HEADER_FIELDS:
            shift -= width
            values[name] = (v >> shift) & ((1 << width) - 1)
        return cls(**values), crc8(data[:9]) == data[9]


def rolloff_code(alpha: float) -> int:
    """RO code of a roll-off factor: 0.35 -> 0b00, 0.25 -> 0b01, 0.20 -> 0b10 (§5.1.6)."""
    for a, code in ROLLOFF_CODES.items():
        if abs(alpha - a) < 1e-9:
            return code
    check_choice(alpha, "rolloff", ROLLOFF_CODES)
    raise AssertionError  # unreachable


# ---------------------------------------------------------------------------------------------
# BB scrambling (§5.2.2)


@cache
def _prbs() -> np.ndarray:
    """PRBS 1 + x^14 + x^15 from "100101010000000", long enough for any BBFRAME (read-only)."""
    n = max(K_BCH_VALUES)
    init = [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # register cells 1..15
    # Cell k at step i holds output o[i - k]; o[i] = cell14 xor cell15 = o[i-14] xor o[i-15].
    x = np.zeros(15 + n, dtype=np.uint8)
    x[:15] = init[::-1]  # x[15 + i] = o[i]; x[15 - k] = initial content of cell k
    for s in range(15, 15 + n, 14):
        e = min(s + 14, 15 + n)
        x[s:e] = x[s - 14:e - 14] ^ x[s - 15:e - 15]
    out = x[15:]
    out.flags.writeable = False
    return out


@cache
def _prbs_bytes(k: int) -> np.ndarray:
    """The first k bits of the PRBS packed MSB first (k a multiple of 8), read-only."""
    out = np.packbits(_prbs()[:k])
    out.flags.writeable = False
    return out


def bb_scrambling_sequence(length: int) -> np.ndarray:
    """The first ``length`` bits of the BB scrambling PRBS (§5.2.2), uint8 0/1, read-only.

    The generator 1 + x^14 + x^15 is reloaded with "100101010000000" at the start of every
    BBFRAME, so the sequence for a K_bch-bit frame is this prefix.
    """
    seq = _prbs()
    if not 0 <= length <= seq.size:
        raise ValueError(f"length must be in 0..{seq.size}; got {length}")
    return seq[:length]


def bb_scramble(bits) -> np.ndarray:
    """Scramble (or descramble: the same XOR) whole BBFRAMEs (§5.2.2).

    Parameters
    ----------
    bits : array_like of 0/1, shape (K_bch,) or (batch, K_bch)

    Returns
    -------
    ndarray of uint8, same shape
    """
    a = np.asarray(bits)
    if a.ndim not in (1, 2):
        raise ValueError(f"bits must have shape (K_bch,) or (batch, K_bch); got {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise TypeError(f"bits must hold integer bits 0/1; got dtype {a.dtype}")
    return np.bitwise_xor(a.astype(np.uint8, copy=False), bb_scrambling_sequence(a.shape[-1]))


bb_descramble = bb_scramble


def _k_bch(k_bch) -> int:
    if isinstance(k_bch, FrameSpec):
        return k_bch.k_bch
    if isinstance(k_bch, bool) or not isinstance(k_bch, int | np.integer):
        raise TypeError(f"k_bch must be an int or a FrameSpec; got {type(k_bch).__name__}")
    if int(k_bch) not in K_BCH_VALUES:
        raise ValueError(f"k_bch must be a DVB-S2 K_bch ({', '.join(map(str, K_BCH_VALUES))}); got {k_bch}")
    return int(k_bch)


def _as_byte_string(data, name: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    a = np.asarray(data)
    if a.dtype != np.uint8:
        raise TypeError(f"{name} must be bytes or a uint8 array; got dtype {a.dtype}")
    return a.tobytes()


# ---------------------------------------------------------------------------------------------
# framers


class _Framer:
    """Shared machinery: a byte queue of mode-adapted data cut into BBFRAMEs on demand."""

    _ts_gs: int

    def __init__(self, *, ccm: bool = False, rolloff: float = 0.35, scramble: bool = True):
        self._ro = rolloff_code(rolloff)
        self._ccm = int(bool(ccm))
        self._scramble = bool(scramble)
        self._tx = bytearray()  # mode-adapted stream; self._tx[self._pos:] not yet framed
        self._pos = 0
        self._tx_abs = 0  # stream position of self._tx[self._pos]
        self._flush_upto = 0  # stream position up to which data goes out even in a short frame
        self.bytes_in = 0  #: user bytes pushed
        self.frames_out = 0  #: BBFRAMEs produced
        self.padding_bits = 0  #: padding bits sent (§5.2.1)
        self._hcache: dict[tuple[int, int], np.ndarray] = {}  # (DFL, SYNCD) -> header bytes

    @property
    def bytes_out(self) -> int:
        """User bytes placed in data fields so far."""
        return self._tx_abs

    @property
    def pending_bytes(self) -> int:
        """Mode-adapted bytes queued but not yet in a BBFRAME."""
        return len(self._tx) - self._pos

    def _header(self, dfl: int, start: int, n: int) -> BBHeader:
        raise NotImplementedError

    def flush(self) -> None:
        """Send everything pushed so far: the next frames may be short, the last one padded."""
        self._flush_upto = self._tx_abs + self.pending_bytes

    def next_frame(self, k_bch) -> np.ndarray | None:
        """Return the next BBFRAME, or None.

        Parameters
        ----------
        k_bch : int or FrameSpec
            BBFRAME length K_bch of the MODCOD / frame size chosen for this frame, bits.

        Returns
        -------
        ndarray of uint8, shape (k_bch,), or None
            Header, data field and padding, scrambled (§5.2.2) unless ``scramble=False``.
            None when fewer than (k_bch - 80) / 8 bytes are queued and nothing is being flushed.
        """
        frames = self.next_frames(k_bch, max_frames=1)
        return frames[0] if frames.shape[0] else None

    def next_frames(self, k_bch, max_frames: int | None = None) -> np.ndarray:
        """Return as many BBFRAMEs of one size as available (at most ``max_frames``).

        Each is what :meth:`next_frame` would return; the frames are built together, in the
        byte domain (header, data, padding and BB scrambling), and unpacked to bits once.

        Returns
        -------
        ndarray of uint8, shape (n, k_bch), n >= 0
        """
        k = _k_bch(k_bch)
        cap = (k - BBHEADER_BITS) // 8
        limit = np.inf if max_frames is None else int(max_frames)
        sizes = []  # data bytes of each frame
        avail = self.pending_bytes
        pos_abs = self._tx_abs
        while len(sizes) < limit:
            if avail >= cap:
                n = cap
            elif avail and pos_abs < self._flush_upto:
                n = avail
            else:
                break
            sizes.append(n)
            avail -= n
            pos_abs += n
        nf = len(sizes)
        kb = k // 8  # every K_bch is a multiple of 8
        buf = np.zeros((nf, kb), dtype=np.uint8)
        hb = BBHEADER_BITS // 8
        data = np.frombuffer(self._tx, np.uint8, pos_abs - self._tx_abs, self._pos)
        full = sizes.count(cap) if nf else 0  # full frames come first
        if full:
            buf[:full, hb : hb + cap] = data[: full * cap].reshape(full, cap)
        start = self._tx_abs
        for i, n in enumerate(sizes):
            buf[i, :hb] = self._header_bytes(8 * n, start, n)
            if i >= full:
                buf[i, hb : hb + n] = data[start - self._tx_abs : start - self._tx_abs + n]
            start += n
        del data  # release the export of the bytearray before it may be resized
        if self._scramble:
            buf ^= _prbs_bytes(k)
        used = pos_abs - self._tx_abs
        self._pos += used
        self._tx_abs = pos_abs
        if self._pos > 1 << 16 and 2 * self._pos > len(self._tx):  # compact, amortized O(1) per byte
            del self._tx[: self._pos]
            self._pos = 0
        self.frames_out += nf
        self.padding_bits += nf * (k - BBHEADER_BITS) - 8 * used
        return np.unpackbits(buf, axis=1)

    def _header_bytes(self, dfl: int, start: int, n: int) -> np.ndarray:
        """The 10 BBHEADER bytes of :meth:`_header` (cached: a frame's header depends on few fields)."""
        key = (dfl, self._syncd(start, n))
        hb = self._hcache.get(key)
        if hb is None:
            hb = np.frombuffer(self._header(dfl, start, n).to_bytes(), np.uint8)
            if len(self._hcache) < 4096:
                self._hcache[key] = hb
        return hb

    def _syncd(self, start: int, n: int) -> int:
        return 0

    def _matype(self) -> dict:
        return dict(ts_gs=self._ts_gs, sis_mis=1, ccm_acm=self._ccm, issyi=0, npd=0, ro=self._ro, matype2=0)


class GsFramer(_Framer):
    """Continuous generic stream framer (TS/GS = 01, UPL = 0; EN 302 307-1 §5.1, CCSDS 131.3).

    Bytes of any alignment (e.g. CADUs) fill the data fields back to back; SYNC = 0, SYNCD = 0.

    Parameters
    ----------
    ccm : bool
        CCM/ACM bit: False (default) signals ACM.
    rolloff : {0.35, 0.25, 0.20}
    scramble : bool
        Apply BB scrambling to the frames (default True).

    Attributes
    ----------
    bytes_in, bytes_out : int
        User bytes pushed / placed in data fields.
    frames_out, padding_bits : int
        BBFRAMEs produced; padding bits among them (only frames cut short by a flush have any).
    """

    _ts_gs = TS_GS_GENERIC_CONTINUOUS

    def push(self, data) -> None:
        """Queue user bytes (bytes-like or 1-D uint8 array)."""
        b = _as_byte_string(data, "data")
        self._tx += b
        self.bytes_in += len(b)

    def _header(self, dfl: int, start: int, n: int) -> BBHeader:
        return BBHeader(**self._matype(), upl=0, dfl=dfl, sync=0, syncd=0)


class TsFramer(_Framer):
    """Transport stream framer (TS/GS = 11, UPL = 1504, SYNC = 0x47; EN 302 307-1 §5.1.4-§5.1.6).

    Parameters
    ----------
    ccm : bool
        CCM/ACM bit: False (default) signals ACM.
    rolloff : {0.35, 0.25, 0.20}
    scramble : bool
        Apply BB scrambling to the frames (default True).

    Attributes
    ----------
    bytes_in, bytes_out : int
        TS bytes pushed / placed in data fields (sync bytes counted, as the CRC-8 takes their place).
    packets_in : int
        Complete TS packets pushed.
    frames_out, padding_bits : int
        BBFRAMEs produced; padding bits among them (only frames cut short by a flush have any).
    """

    _ts_gs = TS_GS_TRANSPORT

    def __init__(self, *, ccm: bool = False, rolloff: float = 0.35, scramble: bool = True):
        super().__init__(ccm=ccm, rolloff=rolloff, scramble=scramble)
        self._inbuf = b""  # incomplete packet
        self._last_crc = 0  # CRC-8 of the last UP (0: the register's initial state)
        self._slot_sent = False  # the next UP's sync position already went out (at a flush)
        self.packets_in = 0  #: TS packets pushed

    def push(self, data) -> None:
        """Queue TS bytes: bytes-like or 1-D uint8 array in any chunking, or (n, 188) packets.

        Raises
        ------
        ValueError
            If a packet does not start with 0x47 (packet number and stream offset named), or a
            2-D array is not (n, 188). Nothing of a rejected call is queued.
        """
        shape = np.shape(data) if isinstance(data, np.ndarray) else None
        if shape is not None and (len(shape) > 2 or len(shape) == 2 and shape[1] != TS_PACKET_BYTES):
            raise ValueError(f"packets must have shape (n, {TS_PACKET_BYTES}); got {data.shape}")
        new = _as_byte_string(data, "data")
        buf = self._inbuf + new
        n = len(buf) // TS_PACKET_BYTES
        heads = np.frombuffer(buf, np.uint8)[::TS_PACKET_BYTES]
        bad = np.flatnonzero(heads != TS_SYNC_BYTE)
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                f"TS packet {self.packets_in + j} (stream byte {(self.packets_in + j) * TS_PACKET_BYTES}) "
                f"must start with the sync byte 0x47; got 0x{int(heads[j]):02X} "
                f"(TS packets are {TS_PACKET_BYTES} bytes)"
            )
        if n:
            pk = np.frombuffer(buf, np.uint8, n * TS_PACKET_BYTES).reshape(n, TS_PACKET_BYTES)
            crc = crc8_rows(pk[:, 1:])
            up = pk.copy()
            up[0, 0] = self._last_crc
            up[1:, 0] = crc[:-1]
            self._last_crc = int(crc[-1])
            b = up.tobytes()
            if self._slot_sent:
                b = b[1:]
                self._slot_sent = False
            self._tx += b
        self._inbuf = buf[n * TS_PACKET_BYTES:]
        self.packets_in += n
        self.bytes_in += len(new)

    def flush(self) -> None:
        """Send all complete packets pushed so far, plus the CRC-8 of the last one (§5.1.4).

        Raises
        ------
        ValueError
            If the stream stops inside a packet.
        """
        if self._inbuf:
            raise ValueError(
                f"TS stream ends inside a packet: {len(self._inbuf)} of {TS_PACKET_BYTES} bytes; "
                f"TS packets must be {TS_PACKET_BYTES} bytes"
            )
        if self.packets_in and not self._slot_sent:
            self._tx.append(self._last_crc)
            self._slot_sent = True
        super().flush()

    @property
    def bytes_out(self) -> int:
        """TS bytes placed in data fields so far (a final CRC byte, sent at a flush, not counted)."""
        return min(self._tx_abs, TS_PACKET_BYTES * self.packets_in)

    def _syncd(self, start: int, n: int) -> int:
        first = -(-start // TS_PACKET_BYTES) * TS_PACKET_BYTES  # UPs start every 188 stream bytes
        return 8 * (first - start) if first < start + n else SYNCD_NONE

    def _header(self, dfl: int, start: int, n: int) -> BBHeader:
        syncd = self._syncd(start, n)
        return BBHeader(**self._matype(), upl=TS_UPL_BITS, dfl=dfl, sync=TS_SYNC_BYTE, syncd=syncd)


# ---------------------------------------------------------------------------------------------
# deframer


@dataclass(frozen=True)
class DeframerEvent:
    """Something the deframer could not deliver as good data.

    Attributes
    ----------
    frame : int
        Index (0-based, in push order) of the BBFRAME being processed when it was found.
    kind : str
        "fec_fail" (decoder flag false), "header_crc", "header_invalid" (field inconsistent with
        the mode or K_bch), "sync_mismatch" (SYNCD disagrees with the packet alignment),
        "resync_skip" (bytes before the first UP after a loss), "frame_lost" (a frame that never
        arrived, see :meth:`BBDeframer.lost`), "packet_crc" (TS packet CRC-8
        fails), "packet_unverified" (complete TS packet whose CRC-8 was lost),
        "packet_truncated" (TS packet cut by a loss).
    out_offset : int
        Position in the output byte stream where the data is missing (or where a kept bad packet
        starts).
    nbytes : int or None
        User bytes lost or in question, when known.
    max_nbytes : int or None
        Upper bound of the user bytes lost, when only that is known (a lost frame's data field).
    kept : bool
        True if the bytes in question were nevertheless passed on (``keep_bad=True``).
    detail : str
    """

    frame: int
    kind: str
    out_offset: int
    nbytes: int | None = None
    max_nbytes: int | None = None
    kept: bool = False
    detail: str = ""


class BBDeframer:
    """Receive side of mode and stream adaptation (EN 302 307-1 §5.1, §5.2): BBFRAMEs to bytes.

    Parameters
    ----------
    mode : {"ts", "gs"}
        Transport stream (checks and strips the CRC-8 of every packet, restores 0x47) or
        continuous generic stream.
    scrambled : bool
        True (default): frames are as the BCH decoder outputs them, still BB-scrambled; the
        deframer descrambles. False: frames already descrambled.
    keep_bad : bool
        TS mode: also pass on packets whose CRC-8 fails or could not be checked (each still
        reported, with ``kept=True``). Default False: such packets are dropped and reported.

    Attributes
    ----------
    events : list of DeframerEvent
    frames_in, frames_ok, frames_lost, bytes_out : int
    packets_ok, packets_bad, packets_unverified : int
        TS mode packet counts (bad = CRC-8 failure, unverified = CRC lost or packet truncated).
    """

    def __init__(self, mode: str = "ts", *, scrambled: bool = True, keep_bad: bool = False):
        self.mode = check_choice(mode, "mode", ("ts", "gs"))
        self.scrambled = bool(scrambled)
        self.keep_bad = bool(keep_bad)
        self.events: list[DeframerEvent] = []
        self.frames_in = self.frames_ok = self.frames_lost = self.bytes_out = 0
        self.packets_ok = self.packets_bad = self.packets_unverified = 0
        self._buf = bytearray()  # TS: from the sync position of the oldest unchecked UP
        self._in_sync = False
        self._out: list[bytes] = []

    # -- public

    def push(self, frames, ok=True) -> bytes:
        """Process BBFRAMEs and return the user bytes they complete, in order.

        Parameters
        ----------
        frames : array_like of 0/1, shape (K_bch,) or (n, K_bch)
            One frame, or n frames of one size; frames of different sizes (ACM) go in separate
            calls.
        ok : bool or array_like of bool, shape (n,)
            FEC success flag of each frame; frames with ok False are discarded and reported.

        Returns
        -------
        bytes
        """
        a = np.asarray(frames)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise ValueError(f"frames must have shape (K_bch,) or (n, K_bch); got {np.shape(frames)}")
        k = a.shape[1]
        if k not in K_BCH_VALUES:
            raise ValueError(f"frames must be K_bch bits long ({', '.join(map(str, K_BCH_VALUES))}); got {k}")
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise TypeError(f"frames must hold integer bits 0/1; got dtype {a.dtype}")
        okv = np.asarray(ok, dtype=bool)
        if okv.ndim == 0:
            okv = np.full(a.shape[0], bool(okv))
        if okv.shape != (a.shape[0],):
            raise ValueError(f"ok must be a bool or have shape ({a.shape[0]},); got {okv.shape}")
        bits = bb_descramble(a) if self.scrambled else a.astype(np.uint8, copy=False)
        for i in range(a.shape[0]):
            self._frame(bits[i], bool(okv[i]))
        return self._take()

    def lost(self, detail: str = "", kind: str = "frame_lost") -> bytes:
        """Record a BBFRAME that never arrived (e.g. its PLHEADER could not be read).

        The frame counts as pushed and lost, like a frame pushed with ``ok=False``; its size is
        unknown (the event's ``max_nbytes`` is None). In TS mode the packet in progress is given
        up and the deframer resynchronizes on the next good frame's SYNCD.

        Returns
        -------
        bytes
            Always empty (kept for symmetry with :meth:`push`).
        """
        idx = self.frames_in
        self.frames_in += 1
        self._lose(idx, kind, None, detail)
        return self._take()

    def flush(self) -> bytes:
        """End of stream: report (and with ``keep_bad`` return) a TS packet left incomplete or unchecked.

        After a transmitter flush (:meth:`TsFramer.flush`) nothing is pending and the deframer
        stays in step, so the stream may go on; otherwise the pending packet is given up.
        """
        if self.mode == "ts" and self._in_sync and len(self._buf) > 1:
            self._drop_buffer(max(self.frames_in - 1, 0), "end of stream")
            self._in_sync = False
        return self._take()

    # -- internals

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        self.bytes_out += len(out)
        return out

    def _emit(self, b: bytes) -> None:
        self._out.append(b)

    @property
    def _out_pos(self) -> int:
        return self.bytes_out + sum(len(b) for b in self._out)

    def _event(self, frame: int, kind: str, **kw) -> None:
        self.events.append(DeframerEvent(frame=frame, kind=kind, out_offset=self._out_pos, **kw))

    def _frame(self, bits: np.ndarray, ok: bool) -> None:
        idx = self.frames_in
        self.frames_in += 1
        k = bits.size
        cap = (k - BBHEADER_BITS) // 8
        if not ok:
            return self._lose(idx, "fec_fail", cap, "FEC decoder flagged the frame")
        hdr, crc_ok = BBHeader.unpack(bits[:BBHEADER_BITS])
        if not crc_ok:
            return self._lose(idx, "header_crc", cap, "BBHEADER CRC-8 mismatch")
        problem = self._check(hdr, k)
        if problem:
            return self._lose(idx, "header_invalid", cap, problem)
        self.frames_ok += 1
        data = np.packbits(bits[BBHEADER_BITS:BBHEADER_BITS + hdr.dfl]).tobytes()
        if self.mode == "gs":
            self._emit(data)
        else:
            self._ts_data(idx, hdr, data)

    def _check(self, h: BBHeader, k: int) -> str | None:
        want = TS_GS_TRANSPORT if self.mode == "ts" else TS_GS_GENERIC_CONTINUOUS
        if h.ts_gs != want:
            return f"TS/GS = 0b{h.ts_gs:02b}, expected 0b{want:02b} for mode {self.mode!r}"
        if h.dfl > k - BBHEADER_BITS or h.dfl % 8:
            return f"DFL = {h.dfl} bits: must be a multiple of 8 and at most K_bch - 80 = {k - BBHEADER_BITS}"
        if self.mode == "gs":
            return None if h.upl == 0 else f"UPL = {h.upl}, expected 0 for a continuous stream"
        if h.upl != TS_UPL_BITS or h.sync != TS_SYNC_BYTE:
            return f"UPL = {h.upl}, SYNC = 0x{h.sync:02X}; expected {TS_UPL_BITS} and 0x47 for TS"
        if h.syncd != SYNCD_NONE and (h.syncd % 8 or h.syncd >= h.dfl):
            return f"SYNCD = {h.syncd} bits: must be a multiple of 8 below DFL = {h.dfl}, or 0xFFFF"
        return None

    def _lose(self, idx: int, kind: str, cap: int | None, detail: str) -> None:
        self.frames_lost += 1
        if self.mode == "ts" and self._in_sync:
            self._drop_buffer(idx, "frame lost")
            self._in_sync = False
        self._event(idx, kind, max_nbytes=cap, detail=detail)

    def _drop_buffer(self, idx: int, why: str) -> None:
        """Give up on the TS packet in the buffer: complete but unchecked, or partial."""
        n = len(self._buf)
        if n == TS_PACKET_BYTES:
            self.packets_unverified += 1
            self._event(idx, "packet_unverified", nbytes=n, kept=self.keep_bad,
                        detail=f"{why}: CRC-8 of a complete packet not received")
            if self.keep_bad:
                self._emit(bytes([TS_SYNC_BYTE]) + bytes(self._buf[1:]))
        elif n > 1:  # 1 byte = only the sync position (CRC of the previous UP) of the next UP
            self.packets_unverified += 1
            self._event(idx, "packet_truncated", nbytes=n,
                        detail=f"{why}: {n} of {TS_PACKET_BYTES} packet bytes received")
        self._buf = bytearray()

    def _ts_data(self, idx: int, h: BBHeader, data: bytes) -> None:
        if self._in_sync:
            pos = (TS_PACKET_BYTES - len(self._buf)) % TS_PACKET_BYTES  # next UP start in this field
            want = 8 * pos if 8 * pos < h.dfl else SYNCD_NONE
            if h.syncd != want:
                self._event(idx, "sync_mismatch", detail=f"SYNCD = {h.syncd}, packet alignment gives {want}")
                self._drop_buffer(idx, "sync mismatch")
                self._in_sync = False
        if not self._in_sync:
            skip = len(data) if h.syncd == SYNCD_NONE else h.syncd // 8
            if skip:
                self._event(idx, "resync_skip", nbytes=skip, detail="bytes before the first packet start")
            if h.syncd == SYNCD_NONE:
                return
            self._buf = bytearray(data[skip:])  # its first byte is the CRC of a packet we lack
            self._in_sync = True
        else:
            self._buf += data
        self._ts_packets(idx)

    def _ts_packets(self, idx: int) -> None:
        """Check and emit every UP whose 188 bytes and following CRC byte are in the buffer."""
        buf = self._buf
        r = (len(buf) - 1) // TS_PACKET_BYTES if buf else 0
        if r <= 0:
            return
        raw = np.frombuffer(buf, np.uint8)
        up = raw[: r * TS_PACKET_BYTES].reshape(r, TS_PACKET_BYTES).copy()
        good = crc8_rows(up[:, 1:]) == raw[TS_PACKET_BYTES:(r + 1) * TS_PACKET_BYTES:TS_PACKET_BYTES]
        del raw  # release the export of the bytearray before resizing it
        up[:, 0] = TS_SYNC_BYTE
        if good.all():
            self._emit(up.tobytes())
            self.packets_ok += r
        else:
            for i in range(r):
                if good[i]:
                    self.packets_ok += 1
                    self._emit(up[i].tobytes())
                    continue
                self.packets_bad += 1
                self._event(idx, "packet_crc", nbytes=TS_PACKET_BYTES, kept=self.keep_bad,
                            detail="TS packet CRC-8 mismatch")
                if self.keep_bad:
                    self._emit(up[i].tobytes())
        del buf[: r * TS_PACKET_BYTES]


__all__ = [
    "BBDeframer", "BBHeader", "DeframerEvent", "GsFramer", "ROLLOFF_CODES", "SYNCD_NONE",
    "TS_GS_GENERIC_CONTINUOUS", "TS_GS_GENERIC_PACKETIZED", "TS_GS_TRANSPORT", "TS_PACKET_BYTES",
    "TS_SYNC_BYTE", "TS_UPL_BITS", "TsFramer", "bb_descramble", "bb_scramble", "bb_scrambling_sequence",
    "rolloff_code",
]
