"""Wire formats of the ZeroMQ links: gr-zeromq IQ messages, PMT values, control messages, user frames.

The byte strings marked "GNU Radio 3.10.5" were produced on this machine by GNU Radio itself
(``pmt.serialize_str`` and a ``zeromq.push_sink`` with ``pass_tags=True``); the live cross-checks
run in tests/test_grzmq_interop.py.
"""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowgraphs import wire
from flowgraphs.userframes import OVERHEAD_BYTES, SYNC, UserFrameParser, encode_user_frame
from flowgraphs.wire import Pair, Symbol, Tag, UInt64, WireError

# pmt.serialize_str(...) in GNU Radio 3.10.5 (this machine's /usr/bin/python3)
GR_PMT = [
    (True, "00"),
    (False, "01"),
    (Symbol("abc"), "020003616263"),
    (5, "0300000005"),
    (-5, "03fffffffb"),
    (1 << 40, "0d0000010000000000"),
    (-(1 << 31), "0380000000"),
    (1 << 31, "0d0000000080000000"),
    (UInt64(7), "0b0000000000000007"),
    (1.5, "043ff8000000000000"),
    (1 + 2j, "053ff00000000000004000000000000000"),
    (None, "06"),
    (Pair(Symbol("a"), 1), "07020001610300000001"),
    ([3, 3], "080000000203000000030300000003"),
    ((1, Symbol("x")), "0c00000002030000000102000178"),
    ({Symbol("b"): 2.0, Symbol("a"): 1}, "090702000162044000000000000000090702000161030000000106"),
    ({Symbol("x"): [1, 2]}, "09070200017808000000020300000001030000000206"),
    (np.array([1, 2, 3], np.uint8), "0a00000000030100010203"),
    (np.array([1, 2], np.int16), "0a0300000002010000010002"),
    (np.array([1.0, 2.0], np.float32), "0a080000000201003f80000040000000"),
    (np.array([1, 2], np.complex64), "0a0a0000000201003f800000000000004000000000000000"),
    (np.array([1, 2], np.float64), "0a090000000201003ff00000000000004000000000000000"),
]

# zeromq.push_sink(gr.sizeof_gr_complex, 1, addr, 100, pass_tags=True) fed by a vector_source_c of
# [i - 1j * i for i in range(10)] with tags (3, rx_freq, 2.4e9, srcid "src") and (5, n, 7): one message
GR_TAGGED_MESSAGE = bytes.fromhex(
    "f05f0100000000000000000200000000000000030000000000000002000772785f667265710441e1e1a30000000002"
    "000373726305000000000000000200016e03000000070100000000000000000000803f000080bf00000040000000c0"
    "00004040000040c000008040000080c00000a0400000a0c00000c0400000c0c00000e0400000e0c000000041000000"
    "c100001041000010c1"
)
GR_SAMPLES = np.array([i - 1j * i for i in range(10)], np.complex64)


@pytest.mark.parametrize(("value", "hexstr"), GR_PMT)
def test_pmt_matches_gnuradio(value, hexstr):
    assert wire.pmt_serialize(value).hex() == hexstr
    back, pos = wire.pmt_deserialize(bytes.fromhex(hexstr))
    assert pos == len(hexstr) // 2
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    else:
        assert back == value


def test_pmt_plain_strings_are_symbols():
    assert wire.pmt_serialize("abc") == wire.pmt_serialize(Symbol("abc"))
    assert wire.pmt_serialize({"k": 2.0}) == wire.pmt_serialize({Symbol("k"): 2.0})


@pytest.mark.parametrize("bad", ["", "02", "020005616263", "0a0c00000001010000", "ff", "08ffffffff", "0907"])
def test_pmt_malformed(bad):
    with pytest.raises(WireError) as e:
        wire.pmt_deserialize(bytes.fromhex(bad))
    assert e.value.reason == "malformed"


def test_pmt_unserializable():
    with pytest.raises(TypeError, match="no PMT equivalent"):
        wire.pmt_serialize(object())


def test_decode_gnuradio_tagged_message():
    chunk = wire.decode_iq(GR_TAGGED_MESSAGE, tagged=True)
    assert chunk.offset == 0
    assert np.array_equal(chunk.samples, GR_SAMPLES)
    assert chunk.tags == [Tag(3, "rx_freq", 2.4e9, Symbol("src")), Tag(5, "n", 7, False)]


def test_encode_matches_gnuradio_tagged_message():
    tags = [Tag(3, "rx_freq", 2.4e9, Symbol("src")), Tag(5, "n", 7, False)]
    assert wire.encode_iq(GR_SAMPLES, offset=0, tags=tags) == GR_TAGGED_MESSAGE


def test_untagged_is_raw_little_endian_complex64():
    x = (np.arange(6) + 1j * np.arange(6)[::-1]).astype(np.complex64)
    raw = wire.encode_iq(x)
    assert raw == x.astype("<c8").tobytes() and len(raw) == 48
    assert struct.unpack("<2f", raw[8:16]) == (1.0, 4.0)
    chunk = wire.decode_iq(raw, tagged=False)
    assert chunk.offset is None and chunk.tags == [] and np.array_equal(chunk.samples, x)


def test_tagged_round_trip_offset_and_tags():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    tags = [
        Tag(123_456_789_012 + 5, "plframe", 4),
        Tag(123_456_789_012, "meta", {"modcod": "QPSK 1/2", "ok": True}),
    ]
    chunk = wire.decode_iq(wire.encode_iq(x, offset=123_456_789_012, tags=tags), tagged=True)
    assert chunk.offset == 123_456_789_012
    assert np.array_equal(chunk.samples, x)
    assert chunk.tags[0] == tags[0]
    assert chunk.tags[1].value == {Symbol("modcod"): Symbol("QPSK 1/2"), Symbol("ok"): True}


@pytest.mark.parametrize(
    ("msg", "tagged", "reason", "text"),
    [
        (b"\x00" * 12, True, "malformed", "shorter than the tag header"),
        (struct.pack("<HBQQ", 0x1234, 1, 0, 0), True, "malformed", "magic 0x1234"),
        (struct.pack("<HBQQ", 0x5FF0, 2, 0, 0), True, "malformed", "version 2"),
        (struct.pack("<HBQQ", 0x5FF0, 1, 0, 5), True, "malformed", "announces 5 tags"),
        (b"\x00" * 12, False, "malformed", "not a whole number of complex64"),
        (struct.pack("<HBQQ", 0x5FF0, 1, 0, 0) + b"\x00" * 9, True, "malformed", "not a whole number"),
    ],
)
def test_iq_malformed(msg, tagged, reason, text):
    with pytest.raises(WireError) as e:
        wire.decode_iq(msg, tagged=tagged)
    assert e.value.reason == reason and text in str(e.value)


def test_iq_nan_names_the_sample():
    x = np.ones(10, np.complex64)
    x[7] = complex(1.0, np.nan)
    with pytest.raises(WireError, match="IQ sample 7 of the message is not finite"):
        wire.decode_iq(wire.encode_iq(x, offset=0), tagged=True)


def test_iq_oversized():
    with pytest.raises(WireError) as e:
        wire.decode_iq(wire.encode_iq(np.zeros(101, np.complex64)), tagged=False, max_samples=100)
    assert e.value.reason == "oversized"
    assert (
        wire.decode_iq(
            wire.encode_iq(np.zeros(100, np.complex64)), tagged=False, max_samples=100
        ).samples.size
        == 100
    )


def test_message_round_trip_and_header_layout():
    body = {"modcod": "QPSK 1/2", "esn0_db": 3.5, "nan": float("nan"), "list": [1, 2]}
    raw = wire.encode_message(wire.KIND_JSON, body, sender=0xDEADBEEF, epoch=3, seq=42)
    assert raw[:4] == b"MLNK" and raw[4] == 1 and raw[5] == wire.KIND_JSON
    assert struct.unpack_from("<IIQI", raw, 8) == (0xDEADBEEF, 3, 42, len(raw) - 32)
    (crc,) = struct.unpack_from("<I", raw, 28)
    assert crc == zlib.crc32(raw[32:], zlib.crc32(raw[:28]))
    m = wire.decode_message(raw)
    assert (m.kind, m.sender, m.epoch, m.seq) == (wire.KIND_JSON, 0xDEADBEEF, 3, 42)
    assert m.body == {"modcod": "QPSK 1/2", "esn0_db": 3.5, "nan": None, "list": [1, 2]}
    b = wire.decode_message(
        wire.encode_message(wire.KIND_BYTES, b"\x00\x01payload", sender=1, epoch=0, seq=0)
    )
    assert b.body == b"\x00\x01payload"


def _msg(**kw):
    return bytearray(wire.encode_message(wire.KIND_JSON, {"a": 1}, sender=1, epoch=0, seq=kw.get("seq", 0)))


def _recrc(m: bytearray) -> bytes:
    m[28:32] = struct.pack("<I", zlib.crc32(bytes(m[32:]), zlib.crc32(bytes(m[:28]))))
    return bytes(m)


@pytest.mark.parametrize(
    ("mutate", "reason", "text"),
    [
        (lambda m: bytes(m[:20]), "malformed", "shorter than the 32-byte header"),
        (lambda m: b"XLNK" + bytes(m[4:]), "malformed", "magic"),
        (lambda m: _recrc(m[:4] + b"\x02" + m[5:]), "malformed", "version 2"),
        (lambda m: _recrc(m[:5] + b"\x09" + m[6:]), "malformed", "unknown message kind 9"),
        (lambda m: bytes(m) + b"x", "malformed", "body length field"),
        (lambda m: bytes(m[:-1]) + bytes([m[-1] ^ 1]), "malformed", "CRC-32 mismatch"),
        (
            lambda m: _recrc(
                bytearray(wire.encode_message(wire.KIND_BYTES, b"[1]", sender=1, epoch=0, seq=0)[:5])
                + bytes([wire.KIND_JSON])
                + wire.encode_message(wire.KIND_BYTES, b"[1]", sender=1, epoch=0, seq=0)[6:]
            ),
            "malformed",
            "must be an object",
        ),
        (
            lambda m: _recrc(
                bytearray(wire.encode_message(wire.KIND_BYTES, b"{bad", sender=1, epoch=0, seq=0)[:5])
                + bytes([wire.KIND_JSON])
                + wire.encode_message(wire.KIND_BYTES, b"{bad", sender=1, epoch=0, seq=0)[6:]
            ),
            "malformed",
            "does not parse",
        ),
    ],
)
def test_message_malformed(mutate, reason, text):
    with pytest.raises(WireError) as e:
        wire.decode_message(mutate(_msg()))
    assert e.value.reason == reason and text in str(e.value)


def test_message_oversized():
    raw = wire.encode_message(wire.KIND_BYTES, bytes(1000), sender=1, epoch=0, seq=0)
    with pytest.raises(WireError) as e:
        wire.decode_message(raw, max_bytes=1000)
    assert e.value.reason == "oversized"
    assert wire.decode_message(raw, max_bytes=len(raw)).body == bytes(1000)


def test_sequence_check():
    chk = wire.SequenceCheck()
    w = wire.MessageWriter("rx")
    msgs = [wire.decode_message(w.encode(wire.KIND_JSON, {"i": i})) for i in range(6)]
    for i in (0, 1, 3):
        chk.check(msgs[i])
    assert chk.stats.missing == 1  # seq 2 skipped
    for i, why in ((3, "out_of_order"), (2, "out_of_order"), (0, "out_of_order")):
        with pytest.raises(WireError) as e:
            chk.check(msgs[i])
        assert e.value.reason == why
    chk.check(msgs[5])
    assert chk.stats.missing == 2
    # the sender restarts: a new epoch numbers from 0 again; the old epoch is then stale
    w2 = wire.MessageWriter("rx", epoch=1)
    chk.check(wire.decode_message(w2.encode(wire.KIND_JSON, {})))
    assert chk.stats.restarts == 1
    with pytest.raises(WireError) as e:
        chk.check(msgs[4])
    assert e.value.reason == "stale_epoch"
    other = wire.decode_message(wire.MessageWriter("sink").encode(wire.KIND_JSON, {}))
    chk.check(other)  # senders are numbered independently
    assert chk.stats.accepted == 6


def test_offset_check():
    chk = wire.OffsetCheck()
    mk = lambda off, n: wire.IqChunk(off, np.zeros(n, np.complex64))  # noqa: E731
    assert chk.check(mk(0, 100)) == 0
    assert chk.check(mk(100, 50)) == 0
    assert chk.check(mk(200, 10)) == 50  # 150..199 never arrived
    assert chk.stats.missing == 50
    with pytest.raises(WireError) as e:
        chk.check(mk(205, 10))
    assert e.value.reason == "out_of_order"
    assert chk.check(mk(0, 10)) == 0  # a sender that restarted
    assert chk.stats.restarts == 1
    raw = wire.OffsetCheck()
    c1, c2 = wire.IqChunk(None, np.zeros(7, np.complex64)), wire.IqChunk(None, np.zeros(5, np.complex64))
    raw.check(c1)
    raw.check(c2)
    assert (c1.offset, c2.offset) == (0, 7)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parsers_refuse_garbage_cleanly(data):
    for f in (
        lambda: wire.decode_message(data),
        lambda: wire.decode_iq(data, tagged=True),
        lambda: wire.decode_iq(data, tagged=False),
        lambda: wire.pmt_deserialize(data),
    ):
        try:
            f()
        except WireError:
            pass


# ---------------------------------------------------------------------------------------------
# user frames


def test_user_frame_layout():
    f = encode_user_frame(7, 1 << 40, b"hello")
    assert len(f) == 5 + OVERHEAD_BYTES
    assert f[:4] == SYNC == bytes.fromhex("1ACFFC1D")
    assert struct.unpack_from("<BBHQQ", f, 4) == (1, 0, 5, 7, 1 << 40)
    assert f[24:29] == b"hello"
    assert struct.unpack_from("<I", f, 29)[0] == zlib.crc32(f[4:29])
    with pytest.raises(ValueError, match="payload must be 1..65535 bytes"):
        encode_user_frame(0, 0, b"")


def test_user_frames_any_chunking_and_gaps():
    rng = np.random.default_rng(5)
    payloads = [rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes() for _ in range(60)]
    stream = b"".join(encode_user_frame(i, 1000 * i, p) for i, p in enumerate(payloads))
    # random chunking gives every frame
    p = UserFrameParser()
    cuts = np.sort(rng.integers(0, len(stream), 40))
    got = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(stream)], strict=True):
        got += p(stream[a:b])
    assert [(f.seq, f.payload) for f in got] == list(enumerate(payloads))
    assert p.skipped_bytes == 0 and p.crc_failures == 0
    # cut three holes (lost BBFRAMEs): exactly the frames touching a hole disappear, the rest come whole
    bounds = np.cumsum([0] + [len(x) + OVERHEAD_BYTES for x in payloads])
    holes = [(5000, 9000), (40000, 40001), (60000, 70000)]
    damaged = bytearray()
    last = 0
    for a, b in holes:
        damaged += stream[last:a]
        last = b
    damaged += stream[last:]
    hit = {i for i in range(60) for a, b in holes if bounds[i] < b and bounds[i + 1] > a}
    p2 = UserFrameParser()
    out = []
    for k in range(0, len(damaged), 777):
        out += p2(damaged[k : k + 777])
    assert [f.seq for f in out] == [i for i in range(60) if i not in hit]
    assert all(f.payload == payloads[f.seq] for f in out)


def test_user_frame_false_sync_in_payload():
    payload = SYNC + bytes(50) + SYNC
    stream = (
        b"junk"
        + encode_user_frame(1, 0, payload)
        + SYNC
        + b"\x01\x00\xff\xff"
        + encode_user_frame(2, 58, b"x")
    )
    frames = UserFrameParser()(stream)
    assert [(f.seq, f.payload) for f in frames] == [(1, payload), (2, b"x")]


def _valid_message(body: bytes, kind: int = wire.KIND_JSON) -> bytes:
    """A message with a correct header and CRC around ``body`` (reaches the body's parser)."""
    head = struct.pack("<4sBBHIIQI", b"MLNK", 1, kind, 0, 1, 0, 0, len(body))
    return head + struct.pack("<I", zlib.crc32(body, zlib.crc32(head))) + body


def _tagged_with_key(key: bytes) -> bytes:
    """A gr-zeromq tagged IQ message with one tag whose serialized key is ``key``."""
    head = struct.pack("<HBQQ", wire.GR_TAG_MAGIC, wire.GR_TAG_VERSION, 0, 1) + struct.pack("<Q", 0)
    return head + key + wire.pmt_serialize(1) + wire.pmt_serialize(False) + bytes(8)


@pytest.mark.parametrize(
    "parse, text",
    [  # found by the fuzzer: each raised TypeError, ValueError or RecursionError before
        (lambda: wire.pmt_deserialize(bytes([9, 7, 8, 0, 0, 0, 0, 6, 6])), "PMT dict key of type list"),
        (lambda: wire.decode_message(_valid_message(b'{"a":' + b"1" * 5000 + b"}")), "ValueError"),
        (
            lambda: wire.decode_message(_valid_message(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")),
            "RecursionError",
        ),
        (lambda: wire.decode_iq(_tagged_with_key(bytes([9, 7, 8, 0, 0, 0, 0, 6, 6])), True), "PMT dict key"),
    ],
)
def test_decoders_raise_only_wire_errors(parse, text):
    with pytest.raises(wire.WireError, match=text) as e:
        parse()
    assert e.value.reason == "malformed"
