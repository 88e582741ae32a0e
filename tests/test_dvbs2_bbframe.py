"""DVB-S2 MODCOD table, CRCs, BBHEADER, BB scrambling and BBFRAME framers/deframers.

References: ETSI EN 302 307-1 §5.1 (mode adaptation), §5.2 (stream adaptation), §5.5 (PL framing);
CCSDS 211.2-B Annex C (Proximity-1 CRC-32). Independent slow references are written out below.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modem.dvbs2.bbframe import (
    SYNCD_NONE,
    TS_GS_GENERIC_CONTINUOUS,
    TS_GS_TRANSPORT,
    BBDeframer,
    BBHeader,
    GsFramer,
    TsFramer,
    bb_scramble,
    bb_scrambling_sequence,
    rolloff_code,
)
from modem.dvbs2.modcod import (
    DUMMY_PLFRAME_SYMBOLS,
    FRAMES,
    K_BCH_VALUES,
    MODCODS,
    frame_spec,
    modcod,
)
from modem.fec.bch import dvbs2_bch
from modem.fec.crc import crc8, crc8_bits, crc8_rows, crc32_prox1
from modem.fec.dvbs2_ldpc import dvbs2_code

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


# ---------------------------------------------------------------------------------------------
# independent references


def _crc_longdiv(bits, poly_with_top: int, width: int) -> int:
    """x^width * u(x) mod g(x) by schoolbook division on a Python int, u MSB first."""
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    v <<= width
    for shift in range(v.bit_length() - 1, width - 1, -1):
        if v >> shift & 1:
            v ^= poly_with_top << (shift - width)
    return v


def _bytes_to_bits(b: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(b, np.uint8))


def _ts_packets(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 256, (n, 188), dtype=np.uint8)
    p[:, 0] = 0x47
    return p


def _run(framer, deframer, chunks, ks, flush_after=()):
    """Push chunks, pulling frames (sizes cycling through ks) after each; flush at the end.

    Returns the deframer output and the list of (unscrambled) frames sent.
    """
    out, sent, i = [], [], 0

    def pull():
        nonlocal i
        while (f := framer.next_frame(ks[i % len(ks)])) is not None:
            i += 1
            sent.append(f)
            out.append(deframer.push(f))

    for j, c in enumerate(chunks):
        framer.push(c)
        pull()
        if j in flush_after:
            framer.flush()
            pull()
    framer.flush()
    pull()
    out.append(deframer.flush())
    return b"".join(out), sent


def _chunk(data: bytes, cuts) -> list[bytes]:
    cuts = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


# ---------------------------------------------------------------------------------------------
# MODCOD table and PLFRAME geometry


def test_modcod_table_and_lookup():
    assert len(MODCODS) == 28 and [m.index for m in MODCODS] == list(range(1, 29))
    assert modcod(4) is modcod("QPSK 1/2") is modcod("qpsk-1/2") is modcod(" Qpsk_1/2 ") is MODCODS[3]
    assert modcod("32apsk 9/10").index == 28 and modcod(28).gamma2 == pytest.approx(4.3)
    assert modcod(1).gamma1 is None and modcod(1).gamma2 is None
    assert modcod(18).gamma1 == pytest.approx(3.15) and modcod(18).gamma2 is None
    assert modcod(11).frames == ("normal",) and modcod(10).frames == FRAMES
    assert [m.bits_per_symbol for m in (modcod(1), modcod(12), modcod(18), modcod(24))] == [2, 3, 4, 5]
    assert modcod(13).name == "8PSK 2/3"
    with pytest.raises(dataclasses.FrozenInstanceError):
        modcod(1).rate = "1/2"


def test_modcod_errors():
    msg = r"unknown MODCOD 'QPSK 7/8'; valid: indices 1\.\.28 or names QPSK 1/4"
    with pytest.raises(ValueError, match=msg):
        modcod("QPSK 7/8")
    with pytest.raises(ValueError, match="unknown MODCOD index 29"):
        modcod(29)
    with pytest.raises(ValueError, match="DUMMY PLFRAME"):
        modcod(0)
    assert DUMMY_PLFRAME_SYMBOLS == 3330
    with pytest.raises(TypeError):
        modcod(True)
    with pytest.raises(ValueError, match=r"^MODCOD QPSK 9/10 has no short frame; allowed: 'normal'$"):
        frame_spec("QPSK 9/10", "short")
    with pytest.raises(ValueError, match="frame must be one of"):
        frame_spec(4, "medium")


@pytest.mark.parametrize(
    "name, frame, slots, blocks, total",
    [
        ("QPSK 1/2", "normal", 360, 22, 33282),
        ("8PSK 3/5", "normal", 240, 14, 22194),  # 240 slots: the 15th block would follow the last slot
        ("16APSK 2/3", "normal", 180, 11, 16686),
        ("32APSK 3/4", "normal", 144, 8, 13338),  # 144 = 9 * 16: 8 blocks, not 9
        ("QPSK 1/4", "short", 90, 5, 8370),
        ("32APSK 8/9", "short", 36, 2, 3402),
    ],
)
def test_frame_spec_pilot_geometry(name, frame, slots, blocks, total):
    s = frame_spec(name, frame, pilots=True)
    assert (s.slots, s.pilot_blocks, s.plframe_symbols) == (slots, blocks, total)
    assert s.pilot_blocks == (s.slots - 1) // 16 and s.pilot_symbols == 36 * blocks
    s0 = frame_spec(name, frame, pilots=False)
    assert s0.pilot_blocks == 0 and s0.plframe_symbols == 90 + 90 * slots
    assert s.payload_symbols == s.n_ldpc // s.modcod.bits_per_symbol == 90 * slots


def test_frame_spec_eta_matches_table_13():
    # Table 13 efficiencies are (K_bch - 80) / PLFRAME symbols: they pin the pilot-block count.
    for m in MODCODS:
        assert frame_spec(m, "normal", False).eta == pytest.approx(m.eta_no_pilots, abs=2e-6)
        assert frame_spec(m, "normal", True).eta == pytest.approx(m.eta_pilots, abs=2e-6)


def test_frame_spec_consistent_with_fec():
    for m in MODCODS:
        for frame in m.frames:
            s = frame_spec(m, frame)
            bch, ldpc = dvbs2_bch(frame, m.rate), dvbs2_code(frame, m.rate)
            assert (s.k_bch, s.k_ldpc, s.bch_t) == (bch.k, bch.n, bch.t)
            assert (s.n_ldpc, s.k_ldpc) == (ldpc.n, ldpc.k)
            assert s.data_field_bits == s.k_bch - 80 and s.data_field_bits % 8 == 0
            assert s.k_bch in K_BCH_VALUES
    assert frame_spec(4, "short", True).pls_code == (4 << 2) | 0b11
    assert frame_spec(28, "normal", False).pls_code == 28 << 2


# ---------------------------------------------------------------------------------------------
# CRCs


def test_crc8_known_values():
    # CRC catalogue "CRC-8/DVB-S2": poly 0xD5, init 0, no reflection, check("123456789") = 0xBC.
    assert crc8(b"123456789") == 0xBC
    # Derivable: the message "00000001" is u(x) = 1, so the CRC is x^8 mod g(x) = g(x) - x^8 = 0xD5.
    assert crc8(b"\x01") == 0xD5
    assert crc8(b"") == 0 and crc8(bytes(50)) == 0


def test_crc8_against_long_division_and_properties():
    rng = np.random.default_rng(7)
    for n in (1, 2, 9, 187, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        c = crc8(data)
        assert c == _crc_longdiv(_bytes_to_bits(data), 0x1D5, 8)
        assert crc8(data + bytes([c])) == 0  # codeword: remainder zero
        assert crc8(data[n // 2:], init=crc8(data[: n // 2])) == c  # chunked
    for nbits in (1, 7, 13, 72, 75):
        bits = rng.integers(0, 2, nbits, dtype=np.uint8)
        assert crc8_bits(bits) == _crc_longdiv(bits, 0x1D5, 8)
    p = rng.integers(0, 256, (40, 187), dtype=np.uint8)
    assert list(crc8_rows(p)) == [crc8(row) for row in p]
    with pytest.raises(ValueError, match="data must be 1-D"):
        crc8(p)
    with pytest.raises(ValueError, match="bits must hold only bits 0 and 1"):
        crc8_bits([0, 2])


def test_crc32_prox1_known_values():
    # G(x) = x^32 + x^23 + x^21 + x^11 + x^2 + 1, register preset 0, no final XOR (211.2-B Annex C).
    assert crc32_prox1(b"\x01") == 0x00A00805  # x^32 mod G(x), derivable by hand
    # Test vector of Yamcs (org.yamcs.tctm.ccsds.error.Crc32Test, ProximityCrc32): 12 34 56 78.
    assert crc32_prox1(bytes([0x12, 0x34, 0x56, 0x78])) == 0x34D74CB3
    assert crc32_prox1(b"123456789") == 0x51693C0C
    rng = np.random.default_rng(8)
    for n in (1, 5, 64, 1115):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        c = crc32_prox1(data)
        assert c == _crc_longdiv(_bytes_to_bits(data), (1 << 32) | 0x00A00805, 32)
        assert crc32_prox1(data + c.to_bytes(4, "big")) == 0
        assert crc32_prox1(np.frombuffer(data, np.uint8)[3:], init=crc32_prox1(data[:3])) == c
    big = rng.integers(0, 256, 1 << 20, dtype=np.uint8)
    assert crc32_prox1(big) == crc32_prox1(big.tobytes())


# ---------------------------------------------------------------------------------------------
# BBHEADER


def test_bbheader_layout():
    h = BBHeader(ts_gs=0b11, sis_mis=1, ccm_acm=0, issyi=1, npd=0, ro=0b10, matype2=0xA5,
                 upl=1504, dfl=32128, sync=0x47, syncd=0x1234)
    bits = h.pack()
    assert bits.shape == (80,) and bits.dtype == np.uint8

    def val(a, b):
        return int("".join(map(str, bits[a:b])), 2)

    assert [val(0, 2), val(2, 3), val(3, 4), val(4, 5), val(5, 6), val(6, 8)] == [3, 1, 0, 1, 0, 2]
    assert val(8, 16) == 0xA5 and val(16, 32) == 1504 and val(32, 48) == 32128
    assert val(48, 56) == 0x47 and val(56, 72) == 0x1234
    assert val(72, 80) == crc8_bits(bits[:72]) == _crc_longdiv(bits[:72], 0x1D5, 8)
    assert h.to_bytes()[:2] == bytes([0b11101010, 0xA5]) and h.rolloff == 0.20


@SETTINGS
@given(st.tuples(*(st.integers(0, (1 << w) - 1) for w in (2, 1, 1, 1, 1, 2, 8, 16, 16, 8, 16))))
def test_bbheader_round_trip(values):
    names = ("ts_gs", "sis_mis", "ccm_acm", "issyi", "npd", "ro", "matype2", "upl", "dfl", "sync", "syncd")
    h = BBHeader(**dict(zip(names, values, strict=True)))
    back, ok = BBHeader.unpack(h.pack())
    assert ok and back == h
    assert BBHeader.from_bytes(h.to_bytes()) == (h, True)


def test_bbheader_errors_and_crc_detection():
    h = BBHeader(upl=1504, dfl=800, sync=0x47)
    bits = h.pack()
    for i in range(80):  # every single-bit error is detected
        b = bits.copy()
        b[i] ^= 1
        assert BBHeader.unpack(b)[1] is False
    with pytest.raises(ValueError, match=r"BBHeader\.upl must fit in 16 bits"):
        BBHeader(upl=70000)
    with pytest.raises(ValueError, match=r"BBHeader\.ro must fit in 2 bits"):
        BBHeader(ro=4)
    with pytest.raises(ValueError, match=r"bits must have shape \(80,\)"):
        BBHeader.unpack(bits[:72])
    with pytest.raises(ValueError, match="only bits 0 and 1"):
        BBHeader.unpack(bits * 3)
    assert [rolloff_code(a) for a in (0.35, 0.25, 0.20)] == [0b00, 0b01, 0b10]
    with pytest.raises(ValueError, match="rolloff must be one of"):
        rolloff_code(0.15)


# ---------------------------------------------------------------------------------------------
# BB scrambling


def _lfsr_reference(n: int) -> list[int]:
    cells = [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # cells 1..15, loaded "100101010000000"
    out = []
    for _ in range(n):
        o = cells[13] ^ cells[14]  # taps x^14, x^15
        out.append(o)
        cells = [o] + cells[:-1]
    return out


def test_bb_scrambler_sequence():
    seq = bb_scrambling_sequence(58192)
    # By hand from the register: the ones in cells 8, 6, 4 reach cells 14/15 from step 6 on:
    # 0000 0011 1111 0110 -> bytes 0x03 0xF6.
    assert list(seq[:16]) == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0]
    assert list(seq[:2000]) == _lfsr_reference(2000)
    assert np.array_equal(seq[32767:], seq[: 58192 - 32767])  # m-sequence, period 2^15 - 1
    assert not seq.flags.writeable


def test_bb_scramble_involution():
    rng = np.random.default_rng(3)
    f = rng.integers(0, 2, (3, 7032), dtype=np.uint8)
    s = bb_scramble(f)
    assert s.shape == f.shape and not np.array_equal(s, f)
    assert np.array_equal(bb_scramble(s), f)
    assert np.array_equal(s[1], f[1] ^ bb_scrambling_sequence(7032))
    assert np.array_equal(bb_scramble(np.zeros(3072, np.uint8)), bb_scrambling_sequence(3072))


# ---------------------------------------------------------------------------------------------
# framers and deframers: round trips


ROUND_TRIP = settings(max_examples=40, deadline=None, derandomize=True)


@ROUND_TRIP
@given(
    size=st.integers(0, 30000),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 30000), max_size=8),
    ks=st.lists(st.sampled_from(K_BCH_VALUES), min_size=2, max_size=6),
    flush_after=st.sets(st.integers(0, 8), max_size=2),
)
def test_gs_round_trip(size, seed, cuts, ks, flush_after):
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    framer, deframer = GsFramer(), BBDeframer("gs")
    out, sent = _run(framer, deframer, _chunk(data, cuts), ks, flush_after)
    assert out == data
    assert deframer.events == [] and deframer.frames_ok == len(sent) == framer.frames_out
    assert framer.bytes_in == framer.bytes_out == deframer.bytes_out == len(data)


@ROUND_TRIP
@given(
    npk=st.integers(0, 150),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 150 * 188), max_size=6),
    packet_cuts=st.lists(st.integers(0, 150), max_size=3),
    ks=st.lists(st.sampled_from(K_BCH_VALUES), min_size=2, max_size=6),
    flush_after=st.sets(st.integers(0, 9), max_size=3),
)
def test_ts_round_trip(npk, seed, cuts, packet_cuts, ks, flush_after):
    data = _ts_packets(npk, seed).tobytes()
    chunks = _chunk(data, cuts + [188 * c for c in packet_cuts])
    ends = np.cumsum([len(c) for c in chunks])
    flush_after = {j for j in flush_after if j < len(chunks) and ends[j] % 188 == 0}  # packet boundary
    framer, deframer = TsFramer(), BBDeframer("ts")
    out, sent = _run(framer, deframer, chunks, ks, flush_after)
    assert out == data
    assert deframer.events == [] and deframer.packets_ok == npk
    assert framer.bytes_in == framer.bytes_out == deframer.bytes_out == len(data)
    assert framer.packets_in == npk and deframer.frames_ok == len(sent)


def test_round_trip_unscrambled_and_batches():
    data = _ts_packets(300, 1).tobytes()
    framer, deframer = TsFramer(scramble=False), BBDeframer("ts", scrambled=False)
    framer.push(data)
    frames = framer.next_frames(16008)
    assert frames.shape == (300 * 188 // 1991, 16008)
    assert BBHeader.unpack(frames[0, :80]) == (BBHeader(upl=1504, dfl=15928, sync=0x47, syncd=0), True)
    framer.flush()
    rest = framer.next_frames(frame_spec("QPSK 1/4", "normal"), max_frames=100)
    assert framer.next_frames(16008).shape == (0, 16008)
    out = deframer.push(frames, ok=np.ones(len(frames), bool)) + deframer.push(rest) + deframer.flush()
    assert out == data


# ---------------------------------------------------------------------------------------------
# TS mode adaptation details (§5.1.4-§5.1.6)


def test_ts_frames_sync_crc_and_syncd():
    pk = _ts_packets(80, 2)
    framer = TsFramer(scramble=False, ccm=True, rolloff=0.25)
    framer.push(pk)
    k = 7032  # 869-byte data field: packets straddle frames
    cap = (k - 80) // 8
    stream = b""
    for j in range(10):
        f = framer.next_frame(k)
        h, ok = BBHeader.unpack(f[:80])
        assert ok and (h.ts_gs, h.sis_mis, h.ccm_acm, h.ro) == (TS_GS_TRANSPORT, 1, 1, 0b01)
        assert (h.upl, h.sync, h.dfl) == (1504, 0x47, 8 * cap)  # full data field, no padding
        start = j * cap
        first = -(-start // 188) * 188  # first UP starting at or after this field
        assert h.syncd == 8 * (first - start)
        field = np.packbits(f[80:80 + h.dfl]).tobytes()
        assert field[h.syncd // 8] == (crc8(pk[first // 188 - 1, 1:]) if first else 0)
        stream += field
    up = np.frombuffer(stream[: 188 * 40], np.uint8).reshape(40, 188)
    assert up[0, 0] == 0x00  # no previous UP: CRC register's initial state
    assert list(up[1:, 0]) == [crc8(p[1:]) for p in pk[:39]]  # §5.1.4: CRC of the previous UP
    assert np.array_equal(up[:, 1:], pk[:40, 1:])
    assert framer.padding_bits == 0


def test_ts_flush_padding_and_final_crc():
    framer = TsFramer(scramble=False)
    framer.push(_ts_packets(3, 4))  # 564 bytes
    assert framer.next_frame(58192) is None  # not enough data, not flushing
    framer.push(_ts_packets(30, 5))
    f1 = framer.next_frame(3072)  # bytes 0..373: UP 0 starts at 0
    f2 = framer.next_frame(3072)  # bytes 374..747: UP 2 starts at 376 -> SYNCD 16 bits
    assert BBHeader.unpack(f1[:80])[0].syncd == 0 and BBHeader.unpack(f2[:80])[0].syncd == 16
    framer.flush()
    frames = []
    while (f := framer.next_frame(58192)) is not None:
        frames.append(f)
    assert len(frames) == 1
    h = BBHeader.unpack(frames[0][:80])[0]
    assert h.dfl == 8 * (33 * 188 - 748 + 1)  # the rest, plus the CRC-8 of the last packet
    tail = np.packbits(frames[0][80:80 + h.dfl]).tobytes()
    assert tail[-1] == crc8(_ts_packets(30, 5)[-1, 1:])
    assert not frames[0][80 + h.dfl:].any()  # zero padding (§5.2.1)
    assert framer.padding_bits == 58192 - 80 - h.dfl
    assert framer.bytes_out == framer.bytes_in == 33 * 188 and framer.frames_out == 3
    assert framer.next_frame(3072) is None  # drained; flush does not stick
    # a packet pushed after the flush continues the UP whose sync position (CRC byte) went out
    framer.push(_ts_packets(1, 6))
    framer.flush()
    h = BBHeader.unpack(framer.next_frame(3072)[:80])[0]
    assert h.dfl == 8 * 188 and h.syncd == 8 * 187  # 187 data bytes, then the next UP's CRC byte
    framer.flush()  # nothing new: no second CRC byte
    assert framer.next_frame(3072) is None


def test_gs_header():
    g = GsFramer(scramble=False, ccm=True, rolloff=0.20)
    g.push(b"\x00")
    assert g.next_frame(3072) is None
    g.flush()
    h, ok = BBHeader.unpack(g.next_frame(3072)[:80])
    assert ok
    assert h == BBHeader(ts_gs=TS_GS_GENERIC_CONTINUOUS, ccm_acm=1, ro=0b10, upl=0, dfl=8, sync=0, syncd=0)
    g.push(bytes(2000))
    assert g.next_frame(3072) is not None and g.next_frame(58192) is None


def _hand_frame(syncd: int, field: bytes, k: int = 3072) -> np.ndarray:
    h = BBHeader(ts_gs=TS_GS_TRANSPORT, upl=1504, dfl=8 * len(field), sync=0x47, syncd=syncd)
    f = np.zeros(k, np.uint8)
    f[:80] = h.pack()
    f[80:80 + 8 * len(field)] = _bytes_to_bits(field)
    return bb_scramble(f)


def test_ts_deframer_resync_on_syncd():
    # Receiver joins mid-stream: a field with no UP start (SYNCD = 0xFFFF) is skipped, then the
    # first UP start given by SYNCD is used; its sync position holds the CRC of an unseen UP.
    pk = _ts_packets(2, 20)
    d = BBDeframer("ts")
    assert d.push(_hand_frame(SYNCD_NONE, bytes(100))) == b""
    field = bytes(20) + bytes([0x5A]) + pk[0, 1:].tobytes() + bytes([crc8(pk[0, 1:])]) + pk[1, 1:60].tobytes()
    assert d.push(_hand_frame(8 * 20, field)) == pk[0].tobytes()
    assert [(e.kind, e.nbytes) for e in d.events] == [("resync_skip", 100), ("resync_skip", 20)]
    # in step now: a SYNCD that contradicts the packet count is reported and resynchronized on
    rest = pk[1, 60:].tobytes() + bytes([crc8(pk[1, 1:])])
    assert d.push(_hand_frame(8 * (len(rest) - 1), rest)) == pk[1].tobytes()
    assert d.push(_hand_frame(8 * 5, bytes(30))) == b""
    assert [e.kind for e in d.events[2:]] == ["sync_mismatch", "resync_skip"]


# ---------------------------------------------------------------------------------------------
# input errors


def test_ts_input_errors():
    framer = TsFramer()
    pk = _ts_packets(5, 14)
    bad = pk.copy()
    bad[3, 0] = 0x48
    framer.push(pk[:1])
    msg = r"TS packet 4 \(stream byte 752\) must start with the sync byte 0x47"
    with pytest.raises(ValueError, match=msg):
        framer.push(bad)
    assert framer.packets_in == 1 and framer.bytes_in == 188  # rejected call left no trace
    with pytest.raises(ValueError, match=r"packets must have shape \(n, 188\)"):
        framer.push(np.zeros((2, 187), np.uint8))
    with pytest.raises(ValueError, match="must start with the sync byte"):
        framer.push(b"\x12" + bytes(10))  # the next packet's first byte is checked at once
    framer.push(pk[1:].tobytes()[:100])
    with pytest.raises(ValueError, match="ends inside a packet: 100 of 188 bytes"):
        framer.flush()
    with pytest.raises(ValueError, match="k_bch must be a DVB-S2 K_bch"):
        GsFramer().next_frame(1000)
    with pytest.raises(TypeError, match="data must be bytes or a uint8 array"):
        GsFramer().push(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="frames must be K_bch bits long"):
        BBDeframer("gs").push(np.zeros(1000, np.uint8))
    with pytest.raises(ValueError, match=r"ok must be a bool or have shape \(2,\)"):
        BBDeframer("gs").push(np.zeros((2, 3072), np.uint8), ok=[True])
    with pytest.raises(ValueError, match="mode must be one of"):
        BBDeframer("gse")


# ---------------------------------------------------------------------------------------------
# losses and corruption on the receive side


def _frames_for(framer, data, ks):
    framer.push(data)
    framer.flush()
    frames, i = [], 0
    while (f := framer.next_frame(ks[i % len(ks)])) is not None:
        frames.append(f)
        i += 1
    return frames


def test_gs_lost_frame_reported_and_rest_intact():
    data = np.random.default_rng(15).integers(0, 256, 6000, dtype=np.uint8).tobytes()
    frames = _frames_for(GsFramer(), data, [3072, 7032])  # 374, 869, 374, ... bytes
    d = BBDeframer("gs")
    out = b"".join(d.push(f, ok=(i != 2)) for i, f in enumerate(frames))
    a = 374 + 869
    assert out == data[:a] + data[a + 374:]
    (ev,) = d.events
    assert (ev.frame, ev.kind, ev.out_offset, ev.max_nbytes) == (2, "fec_fail", a, 374)
    assert d.frames_lost == 1 and d.frames_ok == len(frames) - 1
    # a corrupted header: same report, as header_crc
    bad = frames[2].copy()
    bad[40] ^= 1
    d = BBDeframer("gs")
    out = b"".join(d.push(f) for f in [*frames[:2], bad, *frames[3:]])
    assert out == data[:a] + data[a + 374:] and [e.kind for e in d.events] == ["header_crc"]
    # frames of another mode are rejected, not misread
    d = BBDeframer("gs")
    ts = _frames_for(TsFramer(), _ts_packets(4, 16).tobytes(), [3072])
    assert d.push(ts[0]) == b"" and d.events[0].kind == "header_invalid"
    assert "TS/GS = 0b11" in d.events[0].detail


@pytest.mark.parametrize("how", ["fec", "header"])
def test_ts_lost_frame_resyncs_via_syncd(how):
    npk = 60
    pk = _ts_packets(npk, 17)
    data = pk.tobytes()
    frames = _frames_for(TsFramer(), data, [7032, 3072, 12432])
    lost = 3
    d = BBDeframer("ts")
    out = b""
    for i, f in enumerate(frames):
        if i == lost and how == "header":
            f = f.copy()
            f[5] ^= 1
        out += d.push(f, ok=not (i == lost and how == "fec"))
    out += d.flush()
    # Data fields: 869, 374, 1544 bytes, then frame 3 = stream bytes [2787, 3656) is lost.
    # Packets 0..13 are checked by CRC bytes before 2787; packet 14 ([2632, 2820)) is cut after
    # 155 bytes. Frame 4 = [3656, 4030): the first UP start is 3760 = 20 * 188, SYNCD = 104 bytes.
    assert out == pk[:14].tobytes() + pk[20:].tobytes()
    lost_kind = "fec_fail" if how == "fec" else "header_crc"
    got = [(e.frame, e.kind, e.out_offset, e.nbytes, e.max_nbytes) for e in d.events]
    assert got == [
        (3, "packet_truncated", 14 * 188, 155, None),
        (3, lost_kind, 14 * 188, None, 869),
        (4, "resync_skip", 14 * 188, 104, None),
    ]
    assert d.packets_ok == npk - 6 and d.packets_unverified == 1 and d.frames_lost == 1


def test_ts_bad_packet_crc_dropped_or_kept():
    pk = _ts_packets(30, 18)
    frames = _frames_for(TsFramer(scramble=False), pk.tobytes(), [14232])
    # corrupt one data byte of packet 3 (bytes 3*188 + 50 of the stream) behind the FEC's back
    f0 = frames[0].copy()
    f0[80 + 8 * (3 * 188 + 50) + 2] ^= 1
    for keep in (False, True):
        d = BBDeframer("ts", scrambled=False, keep_bad=keep)
        out = d.push(f0) + b"".join(d.push(f) for f in frames[1:]) + d.flush()
        (ev,) = d.events
        assert (ev.kind, ev.out_offset, ev.nbytes, ev.kept) == ("packet_crc", 3 * 188, 188, keep)
        assert d.packets_bad == 1 and d.packets_ok == 29
        if keep:
            assert len(out) == 30 * 188
            assert out[:3 * 188] == pk[:3].tobytes() and out[4 * 188:] == pk[4:].tobytes()
            assert out[3 * 188: 4 * 188] != pk[3].tobytes()
        else:
            assert out == pk[:3].tobytes() + pk[4:].tobytes()


def test_ts_last_packet_unchecked_without_flush():
    pk = _ts_packets(10, 19)
    framer = TsFramer()
    framer.push(pk[:1])
    assert framer.next_frame(3072) is None  # 188 < 374 bytes
    framer.push(pk[1:])
    frames = framer.next_frames(3072)  # 5 frames, 1870 of 1880 bytes; no flush, no final CRC
    assert frames.shape == (5, 3072)
    d = BBDeframer("ts")
    assert d.push(frames) == pk[:9].tobytes()  # packet 9 incomplete
    assert d.flush() == b""
    (ev,) = d.events
    assert (ev.kind, ev.nbytes, ev.out_offset) == ("packet_truncated", 1870 - 9 * 188, 9 * 188)
    # 1769 + 1991 bytes = 20 packets exactly: the last one is complete but its CRC never comes
    pk = _ts_packets(20, 21)
    for keep in (False, True):
        framer = TsFramer()
        framer.push(pk)
        d = BBDeframer("ts", keep_bad=keep)
        out = d.push(framer.next_frame(14232)) + d.push(framer.next_frame(16008))
        assert out == pk[:19].tobytes()
        assert d.flush() == (pk[19].tobytes() if keep else b"")
        (ev,) = d.events
        assert (ev.kind, ev.nbytes, ev.kept, ev.out_offset) == ("packet_unverified", 188, keep, 19 * 188)
