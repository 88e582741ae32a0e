"""Proximity-1 framing and coding sublayer: V3 headers, PLTUs, idle, deframer, LDPC codeblocks.

References: CCSDS 211.0-B §3.2 (Version-3 frame header), 211.2-B §3.2 (PLTU: ASM FAF320, CRC-32
over the frame), §3.3.2.2 (idle pattern 352EF853), §3.4 (coding; LDPC CSM 034776C7272895B0);
the CRC-32's check value is in tests of modem.fec.crc.
"""

from __future__ import annotations

import numpy as np
import pytest

from modem.fec.crc import crc32_prox1
from modem.prox1.coding import CSM_BITS, LDPC_BLOCK_SYMBOLS, ChannelEncoder, ldpc_code, ldpc_randomizer
from modem.prox1.pltu import (
    ASM_BITS_ARRAY,
    IDLE_BITS,
    IdleSource,
    PltuDeframer,
    V3Header,
    check_frame,
    find_asm,
    pltu_bits,
    v3_frame,
)


def bits_to_int(b) -> int:
    return int("".join(str(int(v)) for v in b), 2)


def test_constants_from_the_standard():
    assert bits_to_int(ASM_BITS_ARRAY) == 0xFAF320 and ASM_BITS_ARRAY.size == 24
    assert bits_to_int(IDLE_BITS) == 0x352EF853
    assert bits_to_int(CSM_BITS) == 0x034776C7272895B0 and CSM_BITS.size == 64


def test_v3_header_round_trip_and_layout():
    h = V3Header(frame_octets=1029, sequence=200, spacecraft_id=0x2A5, qos=0, pdu_type=1, dfc_id=2,
                 pcid=1, port=5, source_dest=1)  # fmt: skip
    b = h.to_bytes()
    w = int.from_bytes(b, "big")
    assert w >> 38 == 0b10  # version 3
    assert (w >> 8) & 0x7FF == 1028  # frame length field = octets - 1
    assert w & 0xFF == 200
    assert (w >> 24) & 0x3FF == 0x2A5
    assert V3Header.from_bytes(b) == h


def test_frame_limits():
    assert len(v3_frame(b"x" * 2043)) == 2048
    with pytest.raises(ValueError, match="2043"):
        v3_frame(b"x" * 2044)
    with pytest.raises(ValueError, match="5..2048 octets"):
        check_frame(b"\x80" * 2049)
    with pytest.raises(ValueError, match="5..2048 octets"):
        pltu_bits(b"\x80\x00\x00\x03")
    bad = bytearray(v3_frame(b"abc"))
    bad[3] ^= 1
    with pytest.raises(ValueError, match="frame length field"):
        pltu_bits(bytes(bad))
    with pytest.raises(ValueError, match="sequence"):
        V3Header(frame_octets=10, sequence=256)


def test_pltu_layout_and_crc():
    f = v3_frame(b"hello Mars", sequence=7)
    b = pltu_bits(f)
    assert b.size == 24 + 8 * (len(f) + 4)
    assert np.array_equal(b[:24], ASM_BITS_ARRAY)
    body = np.packbits(b[24:]).tobytes()
    assert body[: len(f)] == f
    assert int.from_bytes(body[len(f) :], "big") == crc32_prox1(f)
    assert crc32_prox1(body) == 0  # the CRC appended MSB first makes the remainder zero


def test_idle_pattern_never_looks_like_the_marker():
    """In every alignment, and straddling into an ASM, the idle pattern stays >= 5 bits from the
    ASM and its complement, so searching with up to 4 errors cannot lock onto idle."""
    stream = np.concatenate([IdleSource()(200), ASM_BITS_ARRAY])
    for start in range(0, 200):
        w = stream[start : start + 24]
        d = int(np.sum(w != ASM_BITS_ARRAY))
        assert min(d, 24 - d) >= 5
    p, inv = find_asm(stream, 0, max_errors=4)
    assert (p, inv) == (200, False)


def make_stream(frames, rng, gap=(0, 300)):
    parts = [IdleSource()(100)]
    idle = IdleSource()
    for f in frames:
        parts.append(pltu_bits(f))
        parts.append(idle(int(rng.integers(*gap))))
    return np.concatenate(parts)


def test_deframer_finds_frames_in_any_chunking_and_polarity():
    rng = np.random.default_rng(1)
    frames = [v3_frame(rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes(), sequence=i)
              for i in range(30)]  # fmt: skip
    stream = make_stream(frames, rng)
    for inverted in (False, True):
        s = stream ^ np.uint8(inverted)
        d = PltuDeframer()
        one = d(s)
        assert [p.frame for p in one] == frames
        assert all(p.ok and p.inverted == inverted for p in one)
        d2 = PltuDeframer()
        out, i = [], 0
        while i < s.size:
            k = int(rng.integers(1, 3000))
            out += d2(s[i : i + k])
            i += k
        assert [(p.frame, p.bit_position) for p in out] == [(p.frame, p.bit_position) for p in one]
        assert d2.good == 30 and d2.bad == 0


def test_crc_failure_reported_not_delivered():
    rng = np.random.default_rng(2)
    frames = [v3_frame(bytes(100 * [i]), sequence=i) for i in range(5)]
    stream = make_stream(frames, rng, gap=(40, 41))
    pos = [p for p in range(stream.size - 24) if np.array_equal(stream[p : p + 24], ASM_BITS_ARRAY)]
    stream[pos[2] + 24 + 8 * 50] ^= 1  # one bit of frame 2's data field
    stream[pos[4] + 2] ^= 1  # one ASM bit of frame 4: still found (1 error allowed)
    res = PltuDeframer()(stream)
    assert [p.ok for p in res] == [True, True, False, True, True]
    assert res[2].problem == "crc" and res[2].header.sequence == 2
    assert [p.frame for p in res if p.ok] == [frames[i] for i in (0, 1, 3, 4)]


def test_ldpc_codeblocks():
    """CSM, then the AR4JA codeword XORed with the randomizer (FF 39 9E 5A ..., period 255)."""
    r = ldpc_randomizer()
    assert np.packbits(r[:32]).tobytes().hex() == "ff399e5a"
    assert np.array_equal(r[:255], r[255:510])
    rng = np.random.default_rng(3)
    info = rng.integers(0, 2, 3 * 1024, dtype=np.uint8)
    out = ChannelEncoder("ldpc")(info).reshape(3, LDPC_BLOCK_SYMBOLS)
    assert np.array_equal(out[:, :64], np.tile(CSM_BITS, (3, 1)))
    cw = out[:, 64:] ^ r
    assert np.array_equal(cw, ldpc_code().encode(info.reshape(3, 1024)))
    assert np.array_equal(cw[:, :1024], info.reshape(3, 1024))
    with pytest.raises(ValueError, match="1024"):
        ChannelEncoder("ldpc")(info[:1000])


def test_conv_coding_is_continuous():
    rng = np.random.default_rng(4)
    b = rng.integers(0, 2, 1000, dtype=np.uint8)
    enc = ChannelEncoder("conv")
    whole = ChannelEncoder("conv")(b)
    assert np.array_equal(np.concatenate([enc(b[:333]), enc(b[333:])]), whole)
    assert whole.size == 2000
    with pytest.raises(ValueError, match="coding"):
        ChannelEncoder("turbo")
