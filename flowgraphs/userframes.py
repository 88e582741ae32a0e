"""User frames: how marslink numbers user data inside the DVB-S2 generic stream.

The transmitter cuts user bytes into frames and sends them back to back in the continuous
generic stream (CCSDS 131.3 carries CADUs the same way). A lost BBFRAME leaves a gap in the
receiver's byte stream; the parser finds the next frame by its sync marker and accepts only
frames whose CRC-32 holds, so a frame is delivered whole and correct or not at all.

====== ====== ===============================================================
bytes  type   field
====== ====== ===============================================================
4      bytes  sync marker 0x1ACFFC1D (the CCSDS attached sync marker)
1      u8     version (1)
1      u8     flags: bit 0 set when the payload is SDLS-protected (see below)
2      u16    payload length L, bytes (1 .. 65535)
8      u64    sequence number (per transmitter, from 0; retransmissions repeat it)
8      u64    offset of the payload's first byte in the user byte stream
L      bytes  payload
4      u32    CRC-32 (zlib) of everything after the sync marker up to the payload's end
====== ====== ===============================================================

All integers little-endian; the overhead is :data:`OVERHEAD_BYTES` = 28 bytes per frame.

With SDLS frame protection (``[security] sdls_key_file``) the payload field holds the protected
payload (:mod:`modem.sdls`: SPI, sequence number, ciphertext, MAC; 26 bytes more) and flag bit 0
is set; the MAC also covers the frame's sequence number and offset (:func:`sdls_aad`), so a
protected payload cannot be moved to another place in the stream.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SYNC = bytes.fromhex("1ACFFC1D")
VERSION = 1
_HEAD = struct.Struct("<4sBBHQQ")
HEADER_BYTES = _HEAD.size  # 24
OVERHEAD_BYTES = HEADER_BYTES + 4
MAX_PAYLOAD = 0xFFFF
FLAG_SDLS = 0x01  #: the payload is an SDLS-protected frame


@dataclass(frozen=True)
class UserFrame:
    """One decoded user frame: sequence number, stream offset and payload bytes."""

    seq: int
    offset: int
    payload: bytes
    flags: int = 0


def sdls_aad(seq: int, offset: int) -> bytes:
    """Bytes the SDLS MAC covers besides the protected payload: the frame's seq and offset (16)."""
    return struct.pack("<QQ", seq, offset)


def encode_user_frame(seq: int, offset: int, payload, flags: int = 0) -> bytes:
    """Serialize one user frame (see the module notes).

    Raises
    ------
    ValueError
        Payload empty or longer than 65535 bytes; seq or offset outside 0..2**64-1.
    """
    p = bytes(payload)
    if not 1 <= len(p) <= MAX_PAYLOAD:
        raise ValueError(f"payload must be 1..{MAX_PAYLOAD} bytes; got {len(p)}")
    for name, v in (("seq", seq), ("offset", offset)):
        if not 0 <= v < 1 << 64:
            raise ValueError(f"{name} must be in 0..2**64-1; got {v}")
    if not 0 <= flags <= 0xFF:
        raise ValueError(f"flags must be in 0..255; got {flags}")
    head = _HEAD.pack(SYNC, VERSION, flags, len(p), seq, offset)
    crc = zlib.crc32(p, zlib.crc32(head[4:]))
    return head + p + struct.pack("<I", crc)


class UserFrameParser:
    """Streaming user-frame parser over a byte stream with gaps (lost BBFRAMEs).

    ``frames = parser(data)`` takes the next bytes and returns the user frames they complete;
    bytes may come in any chunking. Bytes that belong to no valid frame (around a gap, or a
    false sync marker) are counted in :attr:`skipped_bytes`; frames whose CRC fails in
    :attr:`crc_failures`.

    Parameters
    ----------
    max_payload : int
        Frames announcing a longer payload are taken for false sync markers.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = int(max_payload)
        self._buf = bytearray()
        self.frames = 0  #: valid frames returned
        self.payload_bytes = 0  #: their payload bytes
        self.skipped_bytes = 0  #: bytes outside any valid frame
        self.crc_failures = 0  #: candidate frames (sync marker, sane header) with a bad CRC

    def reset(self) -> None:
        """Forget buffered bytes (counters are kept)."""
        self.skipped_bytes += len(self._buf)
        self._buf.clear()

    @staticmethod
    def _crc_ok(buf, i: int, end: int) -> bool:
        (crc,) = struct.unpack_from("<I", buf, end - 4)
        with memoryview(buf) as mv:
            return zlib.crc32(mv[i + 4 : end - 4]) == crc

    def _valid_frame_after(self, buf, start: int, n: int) -> int | None:
        """Position of the first complete frame with a good CRC at or after ``start``, or None."""
        j = buf.find(SYNC, start)
        while 0 <= j and n - j >= HEADER_BYTES:
            _, version, _flags, length, _, _ = _HEAD.unpack_from(buf, j)
            end = j + HEADER_BYTES + length + 4
            if (
                version == VERSION
                and 1 <= length <= self.max_payload
                and end <= n
                and self._crc_ok(buf, j, end)
            ):
                return j
            j = buf.find(SYNC, j + 1)
        return None

    def __call__(self, data) -> list[UserFrame]:
        """Parse ``data`` (bytes-like) following the bytes already seen."""
        buf = self._buf
        buf += data
        out = []
        pos = 0
        n = len(buf)
        while True:
            i = buf.find(SYNC, pos)
            if i < 0:
                keep = max(pos, n - (len(SYNC) - 1))  # a marker may straddle the next chunk
                self.skipped_bytes += keep - pos
                pos = keep
                break
            self.skipped_bytes += i - pos
            pos = i
            if n - i < HEADER_BYTES:
                break
            _, version, flags, length, seq, offset = _HEAD.unpack_from(buf, i)
            if version != VERSION or not 1 <= length <= self.max_payload:
                self.skipped_bytes += 1
                pos = i + 1
                continue
            end = i + HEADER_BYTES + length + 4
            if end > n:
                # incomplete: wait for the rest, unless a whole valid frame starts inside it (then
                # this was a false marker, or a frame cut by a gap: valid frames never overlap)
                j = self._valid_frame_after(buf, i + 1, n)
                if j is None:
                    break
                self.skipped_bytes += j - i
                pos = j
                continue
            if self._crc_ok(buf, i, end):
                payload = bytes(memoryview(buf)[i + HEADER_BYTES : end - 4])
                out.append(UserFrame(seq, offset, payload, flags))
                self.frames += 1
                self.payload_bytes += length
                pos = end
            else:
                self.crc_failures += 1
                self.skipped_bytes += 1
                pos = i + 1
        del buf[:pos]
        return out
