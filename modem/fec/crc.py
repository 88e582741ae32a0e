"""Cyclic redundancy checks: DVB-S2 CRC-8 (EN 302 307-1 §5.1.4) and Proximity-1 CRC-32 (CCSDS 211.2-B).

Both are plain, non-reflected CRCs: message bits enter most significant bit first, the register
starts at zero and the remainder is used as is (no final inversion), i.e. the CRC is
``x^r * u(x) mod g(x)``. Appending the CRC (MSB first) to the message therefore gives a word whose
CRC is zero.

============  ====================================  ==========  =====  =======================
name          g(x)                                  poly (hex)  init   check ("123456789")
============  ====================================  ==========  =====  =======================
CRC-8 DVB-S2  x^8 + x^7 + x^6 + x^4 + x^2 + 1         0xD5      0      0xBC
CRC-32 Prox-1 x^32 + x^23 + x^21 + x^11 + x^2 + 1     0x00A00805  0      0x51693C0C
============  ====================================  ==========  =====  =======================

The CRC-8 protects the BBHEADER (first 72 bits, §5.1.6) and each packetized-stream user packet
(§5.1.4); the CRC-32 is the Proximity-1 frame check (CCSDS 211.2-B, Annex C), also the optional
32-bit FECF of USLP issue 1. Byte strings go through 256-entry tables in numba kernels;
:func:`crc8_rows` does many equal-length packets at once.
"""

from __future__ import annotations

import numba as nb
import numpy as np

CRC8_POLY = 0xD5  # x^8 + x^7 + x^6 + x^4 + x^2 + 1, x^8 implicit
CRC32_PROX1_POLY = 0x00A00805  # x^32 + x^23 + x^21 + x^11 + x^2 + 1, x^32 implicit


def _make_table(poly: int, width: int, dtype) -> np.ndarray:
    """table[b] = register after clocking byte b (MSB first) into a zero register."""
    top, mask = 1 << (width - 1), (1 << width) - 1
    out = np.empty(256, dtype=dtype)
    for b in range(256):
        r = b << (width - 8)
        for _ in range(8):
            r = ((r << 1) ^ poly) & mask if r & top else (r << 1) & mask
        out[b] = r
    return out


_T8 = _make_table(CRC8_POLY, 8, np.uint8)
_T32 = _make_table(CRC32_PROX1_POLY, 32, np.uint32)


@nb.njit(cache=True, nogil=True)
def _crc8_kernel(data, table, init):
    r = np.int64(init)
    for i in range(data.shape[0]):
        r = np.int64(table[(r ^ np.int64(data[i])) & 0xFF])
    return r


@nb.njit(cache=True, nogil=True)
def _crc8_rows_kernel(data, table, out):
    for j in range(data.shape[0]):
        r = np.int64(0)
        for i in range(data.shape[1]):
            r = np.int64(table[(r ^ np.int64(data[j, i])) & 0xFF])
        out[j] = r


@nb.njit(cache=True, nogil=True)
def _crc32_kernel(data, table, init):
    r = np.int64(init)  # int64 arithmetic, masked: numba widens uint32 shifts
    for i in range(data.shape[0]):
        idx = ((r >> 24) ^ np.int64(data[i])) & 0xFF
        r = ((r << 8) & 0xFFFFFFFF) ^ np.int64(table[idx])
    return r


def _as_bytes(data, name: str) -> np.ndarray:
    """View bytes / bytearray / memoryview / integer array as a 1-D uint8 array."""
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(data, dtype=np.uint8)
    a = np.asarray(data)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D bytes; got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name} must be bytes or an integer array; got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"{name} must hold byte values 0..255")
        a = a.astype(np.uint8)
    return np.ascontiguousarray(a)


def _as_bits(bits, name: str) -> np.ndarray:
    a = np.asarray(bits)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D bit array; got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise TypeError(f"{name} must hold integer bits 0/1; got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ValueError(f"{name} must hold only bits 0 and 1")
    return a.astype(np.uint8)


def crc8(data, init: int = 0) -> int:
    """CRC-8 of EN 302 307-1 §5.1.4 over a byte string, bits MSB first.

    Parameters
    ----------
    data : bytes-like or 1-D integer array of bytes
    init : int
        Register state to start from: 0 (the standard), or a previous result to continue a
        computation over concatenated chunks.

    Returns
    -------
    int
        The remainder, 0..255.
    """
    if not 0 <= init <= 0xFF:
        raise ValueError(f"init must be in 0..255; got {init}")
    return int(_crc8_kernel(_as_bytes(data, "data"), _T8, init))


def crc8_rows(packets) -> np.ndarray:
    """CRC-8 (§5.1.4) of each row of a (n, L) byte array, e.g. the 187 data bytes of TS packets.

    Returns
    -------
    ndarray of uint8, shape (n,)
    """
    a = np.asarray(packets)
    if a.ndim != 2:
        raise ValueError(f"packets must have shape (n, length); got {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"packets must be a uint8 array; got dtype {a.dtype}")
    out = np.empty(a.shape[0], dtype=np.uint8)
    _crc8_rows_kernel(np.ascontiguousarray(a), _T8, out)
    return out


def crc8_bits(bits) -> int:
    """CRC-8 (§5.1.4) over any number of bits, first bit = highest power (e.g. the 72 BBHEADER bits).

    Returns
    -------
    int
        The remainder, 0..255; its MSB is sent first.
    """
    b = _as_bits(bits, "bits")
    nfull = b.size // 8 * 8
    r = crc8(np.packbits(b[:nfull]))
    for bit in b[nfull:]:
        fb = ((r >> 7) & 1) ^ int(bit)
        r = (r << 1) & 0xFF
        if fb:
            r ^= CRC8_POLY
    return r


def crc32_prox1(data, init: int = 0) -> int:
    """CRC-32 of CCSDS Proximity-1 (211.2-B Annex C) over a byte string.

    g(x) = x^32 + x^23 + x^21 + x^11 + x^2 + 1, register preset to zero, MSB first, no final
    inversion; the 4-byte result is sent MSB first after the frame.

    Parameters
    ----------
    data : bytes-like or 1-D integer array of bytes
    init : int
        0, or a previous result to continue over concatenated chunks.

    Returns
    -------
    int
        0 .. 2**32 - 1.
    """
    if not 0 <= init <= 0xFFFFFFFF:
        raise ValueError(f"init must be in 0..2**32-1; got {init}")
    return int(_crc32_kernel(_as_bytes(data, "data"), _T32, init))
