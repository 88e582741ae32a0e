"""Fuzzing every parser that takes bytes from outside: a short hypothesis pass (CI).

Each target is a function of one byte string (as libFuzzer/atheris drive them) that builds a
structured input from the bytes (:class:`Reader`), feeds it to the parser and checks
properties. A target passes an input when it either accepts it or raises one of the target's
documented error types with a non-empty message; anything else (another exception, a failed
property, a hang) is a bug. ``benchmarks/fuzz.py`` runs the same targets for 10^5 inputs and
more, with atheris (coverage-guided) when it is installed.

Targets: BBHEADER parsing, the BB deframer (arbitrary frames, and a TS link with losses and
bit errors), PLHEADER/PLS decoding and PL deframing, the symbol-level DVB-S2 receiver, SDLS
frame verification, control-message anti-replay, key files, the ZAP handler, the ZeroMQ wire
formats (``flowgraphs/wire.py``: messages, gr-zeromq IQ with tags, PMT), Proximity-1 PLTUs,
user frames in the generic stream, flowgraph TOML files and SigMF recordings.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraphs.control_seq import ControlRejected, ControlSequenceChecker
from flowgraphs.keys import KeyFileError, load_curve_keypair, load_curve_public, load_sdls_key
from modem.dvbs2.bbframe import BBDeframer, BBHeader, TsFramer, bb_scramble
from modem.dvbs2.link import LinkConfig, Receiver, Transmitter
from modem.dvbs2.modcod import K_BCH_VALUES
from modem.dvbs2.plframe import FRAMES, decode_plheader, deframe
from modem.fec.crc import crc8
from modem.sdls import FrameProtector, FrameRejected, FrameVerifier

K_BCH = sorted(K_BCH_VALUES)
SDLS_KEY = bytes(range(32))


class Reader:
    """Takes typed values from the front of a fuzz input; past its end every value is 0."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def int(self, nbytes: int) -> int:
        b = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return int.from_bytes(b, "little")

    def bit(self) -> bool:
        return bool(self.int(1) & 1)

    def bytes(self, n: int) -> bytes:
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def rest(self) -> bytes:
        b = self.data[self.pos :]
        self.pos = len(self.data)
        return b

    @property
    def left(self) -> int:
        return max(len(self.data) - self.pos, 0)


def tile(b: bytes, n: int) -> bytes:
    """``n`` bytes repeating ``b`` (zeros if ``b`` is empty)."""
    if not b:
        return bytes(n)
    return (b * (n // len(b) + 1))[:n]


@dataclass(frozen=True)
class Target:
    """A fuzz target: ``run(data)`` accepts or raises one of ``expected``; ``seeds()`` starts a corpus."""

    name: str
    run: object
    expected: tuple
    seeds: object


def check_input(target: Target, data: bytes) -> str | None:
    """Run one input; return None if accepted, the error text if rejected as documented."""
    try:
        target.run(data)
    except target.expected as e:
        text = str(e)
        assert len(text) >= 10, f"{target.name}: unclear error {type(e).__name__}({text!r})"
        return text
    return None


# ---------------------------------------------------------------------------------------------
# DVB-S2 BBHEADER and BB deframer


def fuzz_bbheader(data: bytes) -> None:
    r = Reader(data)
    op = r.int(1) % 3
    if op == 0:  # raw bytes of any length
        raw = r.rest()
        hdr, ok = BBHeader.from_bytes(raw)
        assert ok == (crc8(raw[:9]) == raw[9])
        if ok:
            assert hdr.to_bytes() == raw
    elif op == 1:  # any 72 header bits with a correct CRC: must parse and round-trip
        body = tile(r.bytes(9), 9)
        raw = body + bytes([crc8(body)])
        hdr, ok = BBHeader.from_bytes(raw)
        assert ok and hdr.to_bytes() == raw
        assert np.array_equal(hdr.pack(), np.unpackbits(np.frombuffer(raw, np.uint8)))
    else:  # bit arrays of any length and values
        modulus = 2 + r.int(1) % 2  # 3: values 2 appear and must be refused
        bits = np.frombuffer(r.rest(), np.uint8) % modulus
        hdr, ok = BBHeader.unpack(bits)
        assert bits.size == 80 and bits.max(initial=0) <= 1


def seeds_bbheader() -> list[bytes]:
    h = BBHeader(ts_gs=1, upl=0, dfl=3192, sync=0, syncd=0).to_bytes()
    return [b"\x00" + h, b"\x01" + h[:9], b"\x02" + np.unpackbits(np.frombuffer(h, np.uint8)).tobytes()]


def fuzz_bbdeframer(data: bytes) -> None:
    """Any well-shaped BBFRAMEs (headers plausible or not, CRC right or wrong): no exception."""
    r = Reader(data)
    mode = "ts" if r.bit() else "gs"
    d = BBDeframer(mode, scrambled=r.bit(), keep_bad=r.bit())
    outs = []
    for _ in range(1 + r.int(1) % 6):
        op = r.int(1) % 8
        if op == 0:
            outs.append(d.lost("fuzz"))
            continue
        k = K_BCH[r.int(1) % len(K_BCH)]
        if op <= 4:  # plausible fields for the mode, lengths fuzzed
            ts = mode == "ts"
            dfl = r.int(2) % (k - 80 + 1)
            if op <= 3:
                dfl -= dfl % 8
            syncd = r.int(2) if r.bit() else (8 * r.int(1)) % max(dfl, 8)
            hdr = BBHeader(ts_gs=0b11 if ts else 0b01, upl=1504 if ts else 0, dfl=dfl, sync=0x47 if ts else 0,
                           syncd=syncd)  # fmt: skip
            body = hdr.to_bytes()[:9]
        else:
            body = tile(r.bytes(9), 9)
        crc = crc8(body) if op <= 3 or r.bit() else r.int(1)
        field = tile(r.bytes(r.int(2)), (k - 80) // 8)
        bits = np.unpackbits(np.frombuffer(body + bytes([crc]) + field, np.uint8))
        if d.scrambled:
            bits = bb_scramble(bits)
        n = 1 + (op == 7)
        outs.append(d.push(np.tile(bits, (n, 1)), ok=r.int(1) % 5 != 0))
    outs.append(d.flush())
    out = b"".join(outs)
    assert d.bytes_out == len(out)
    if mode == "ts":
        assert len(out) % 188 == 0 and set(out[::188]) <= {0x47}, "TS output is not whole packets"


def seeds_bbdeframer() -> list[bytes]:
    return [bytes([m, 0, 0, 2, 1, 10, 0x90, 0x06, 0, 5, 20, 0, 0x47]) + bytes(range(200)) for m in range(4)]


def fuzz_ts_link(data: bytes) -> None:
    """TS through the framer, then lost frames, failed FEC and single bit errors per frame.

    Property: with keep_bad False, the delivered packets are an in-order subsequence of the sent
    ones (CRC-8 catches every single bit error), and nothing is invented.
    """
    r = Reader(data)
    npk = 1 + r.int(1) % 40
    payload = tile(r.bytes(64), 187 * npk)
    packets = [b"\x47" + payload[i * 187 : (i + 1) * 187] for i in range(npk)]
    packets = [bytes([0x47, i & 0xFF]) + p[2:] for i, p in enumerate(packets)]  # distinct packets
    framer = TsFramer()
    framer.push(b"".join(packets))
    framer.flush()
    d = BBDeframer("ts")
    out = []
    for _ in range(200):
        k = K_BCH[r.int(1) % len(K_BCH)]
        f = framer.next_frame(k)
        if f is None:
            break
        fate = r.int(1) % 6
        if fate == 0:
            out.append(d.lost("fuzz"))
        elif fate == 1:
            out.append(d.push(f, ok=False))
        elif fate == 2:
            g = f.copy()
            g[r.int(2) % g.size] ^= 1
            out.append(d.push(g))
        else:
            out.append(d.push(f))
    out.append(d.flush())
    got = b"".join(out)
    assert len(got) % 188 == 0
    it = iter(packets)
    for i in range(0, len(got), 188):
        p = got[i : i + 188]
        assert any(p == q for q in it), f"delivered packet {i // 188} was not sent (or is out of order)"


def seeds_ts_link() -> list[bytes]:
    return [bytes([20]) + bytes(range(64)) + bytes([3, 3, 3, 3, 7, 2, 9, 4] * 8)]


# ---------------------------------------------------------------------------------------------
# PLHEADER / PLS and PL deframing


def _symbols(raw: bytes) -> np.ndarray:
    raw = raw[: len(raw) // 8 * 8]
    with np.errstate(invalid="ignore", over="ignore"):
        x = np.frombuffer(raw, "<f4").astype(np.float64)
        x = np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6).clip(-1e6, 1e6)
    return (x[0::2] + 1j * x[1::2]).astype(np.complex64)


@cache
def _plheaders() -> np.ndarray:
    """Every PLHEADER, word w = MODCOD << 2 | TYPE for w in 0..127 (reserved MODCODs included)."""
    from modem.dvbs2.plframe import _plheader_cached  # the public plheader() refuses MODCOD 29-31

    return np.stack([_plheader_cached(w) for w in range(128)])


def fuzz_plheader(data: bytes) -> None:
    r = Reader(data)
    op = r.int(1) % 3
    if op == 0:  # arbitrary finite symbols, any length
        info = decode_plheader(_symbols(r.rest()))
        assert 0 <= info.modcod <= 31 and info.frame in FRAMES and np.isfinite(info.metric)
    elif op == 1:  # a true header with a small perturbation: must decode to its word
        w = r.int(1) % 128
        y = _plheaders()[w].astype(np.complex128)
        idx = np.frombuffer(tile(r.bytes(4), 4), np.uint8) % 90
        y[idx] *= -1  # up to 4 symbols flipped: within the PLS code's correction
        info = decode_plheader(y)
        assert (info.modcod << 2 | FRAMES.index(info.frame) << 1 | info.pilots) == w
    else:  # PL deframing of a header followed by any number of symbols
        w = r.int(1) % 128
        n = r.int(2) % 40000
        y = np.concatenate([_plheaders()[w], np.resize(_symbols(r.rest()) + 0.5, n)])
        out = deframe(y, n=r.int(1) % 16)
        assert out.length <= y.size and out.header.modcod == w >> 2


def seeds_plheader() -> list[bytes]:
    return [b"\x00" + np.ones(180, "<f4").tobytes(), bytes([1, 4 * 7 + 1, 3, 40, 80, 89]),
            bytes([2, 5, 0x40, 0x1F, 0])]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# symbol-level DVB-S2 receiver


@cache
def _receiver_parts():
    """Real PLFRAMEs (short QPSK 1/4 with pilots, a dummy frame) and a warmed-up receiver per config."""
    tx = Transmitter(LinkConfig(frame="short", pilots=True))
    tx.push(bytes(range(256)) * 3)
    tx.flush()
    frame = tx.frames(["QPSK 1/4"])
    dummy = tx.frames(["QPSK 1/4"])  # no data left: a dummy PLFRAME
    rxs = {}
    for fs in ("short", "normal"):
        rx = Receiver(LinkConfig(frame=fs))
        rx.push(frame)  # compile and cache the decoder once
        rxs[fs] = rx
    return frame, dummy, rxs


def fuzz_receiver(data: bytes) -> None:
    """Noise, headers of every PLS word (reserved ones too), real and cut frames, any chunking.

    Whole data frames (which reach the LDPC decoder, ~0.2 s a call at present) are rare; cut
    frames, dummy frames, headers and noise are the common case.
    """
    frame, dummy, rxs = _receiver_parts()
    r = Reader(data)
    rx = rxs["short" if r.bit() else "normal"]
    decoders = rx._decoders
    rx.reset()
    rx._decoders = decoders  # keep the LDPC decoders built so far (construction is the slow part)
    rng = np.random.default_rng(r.int(4))
    parts, pushed = [], 0
    for _ in range(1 + r.int(1) % 8):
        op = r.int(1) % 5
        if op == 0:
            noise = rng.normal(size=(r.int(2) % 1500, 2)) @ [1, 1j] * (r.int(1) / 64)
            parts.append(noise.astype(np.complex64))
        elif op == 1:
            parts.append(_plheaders()[r.int(1) % 128].astype(np.complex64))
        elif op == 2:
            src = frame if r.bit() else dummy
            whole = r.int(1) == 0 if src is frame else r.bit()
            cut = src if whole else src[: r.int(2) % src.size]
            parts.append((cut * np.exp(1j * r.int(1) / 40.0)).astype(np.complex64))
        elif op == 3:
            parts.append(_symbols(r.bytes(r.int(1) * 8)))
        else:
            chunk = np.concatenate(parts) if parts else np.zeros(0, np.complex64)
            data_out, reports = rx.push(chunk)
            assert isinstance(data_out, bytes) and all(rep.index >= 0 for rep in reports)
            pushed += chunk.size
            parts = []
    chunk = np.concatenate(parts) if parts else np.zeros(0, np.complex64)
    rx.push(chunk)
    rx.flush()
    assert rx.stats.symbols_in == pushed + chunk.size


def seeds_receiver() -> list[bytes]:
    return [bytes([0, 0, 0, 0, 0, 4, 2, 1, 2, 0x40, 0x1F, 0, 4, 1, 5, 4]),
            bytes([1, 9, 9, 9, 9, 3, 0, 0, 1, 2, 7])]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# SDLS frame verification


def fuzz_sdls(data: bytes) -> None:
    r = Reader(data)
    op = r.int(1) % 3
    v = FrameVerifier(SDLS_KEY, 5, window=1 + r.int(1))
    if op == 0:  # bytes from nowhere: never authentic
        v.verify(r.rest())
        raise AssertionError("a frame not made with the key was accepted")
    p = FrameProtector(SDLS_KEY, 5, next_seq=1 + r.int(2))
    if op == 2:
        frames = [p.protect(bytes([i]) * 10) for i in range(1 + r.int(1) % 8)]
    else:
        frames = [p.protect(tile(r.bytes(r.int(1) % 32), r.int(1))) for _ in range(1 + r.int(1) % 8)]
    if op == 1:  # one frame edited (bytes changed, cut or extended): refused unless unchanged
        f = bytearray(frames[r.int(1) % len(frames)])
        for _ in range(r.int(1) % 4):
            what, pos, val = r.int(1) % 3, r.int(2), r.int(1)
            if what == 0 and f:
                f[pos % len(f)] ^= val or 1
            elif what == 1:
                del f[pos % (len(f) + 1) :]
            else:
                f[pos % (len(f) + 1) : pos % (len(f) + 1)] = bytes([val])
        f = bytes(f)
        try:
            out = v.verify(f)
        except FrameRejected as e:
            assert f not in frames or e.reason in ("replay", "too_old")
            return
        assert f in frames and out is not None
        return
    # op 2: a stream with duplicates and reordering: every frame delivered at most once,
    # everything accepted is genuine, every refusal is counted
    order = [r.int(1) % len(frames) for _ in range(r.int(1) % 32)]
    delivered = []
    for i in order:
        first = i not in delivered
        try:
            v.verify(frames[i])
            delivered.append(i)
        except FrameRejected as e:
            assert e.reason == "too_old" if first else e.reason in ("replay", "too_old")
    assert len(delivered) == len(set(delivered))
    assert v.counters["frames_ok"] + v.rejected == v.counters["frames_in"] == len(order)


def seeds_sdls() -> list[bytes]:
    f = FrameProtector(SDLS_KEY, 5).protect(b"seed frame")
    forged = f[:10] + bytes(len(f) - 10)  # a plausible header, no key
    return [b"\x00\x10" + forged, bytes([1, 64, 0, 1, 8, 20, 3, 0, 2, 5, 1, 0, 9, 0]),
            bytes([2, 8, 0, 0, 4, 12, 0, 1, 2, 1, 0, 3, 4, 4, 2, 0, 1, 3])]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# control-message anti-replay


def fuzz_control_seq(data: bytes) -> None:
    r = Reader(data)
    c = ControlSequenceChecker(max_senders=1 + r.int(1) % 8)
    accepted: dict = {}
    offered = 0
    while r.left:
        kind = r.int(1)
        sender = f"s{kind % 11}" if kind % 3 else bytes([kind])
        epoch, seq = r.int(1) % 4, r.int(2) - (kind == 255)  # -1 now and then: invalid
        offered += 1
        try:
            c.check(sender, seq, epoch)
        except ControlRejected as e:
            assert e.reason in ("replay", "stale_epoch", "too_many_senders", "invalid") and str(e)
            continue
        prev = accepted.get(sender)
        assert prev is None or (epoch, seq) > prev
        accepted[sender] = (epoch, seq)
    assert c.counters["accepted"] + c.rejected == offered
    assert len(accepted) <= c.max_senders


def seeds_control_seq() -> list[bytes]:
    return [bytes([4, 1, 0, 1, 0, 1, 0, 2, 0, 1, 0, 1, 0, 4, 2, 3, 0])]


# ---------------------------------------------------------------------------------------------
# key files


def fuzz_keyfiles(data: bytes) -> None:
    """Any file content: a key of the right size, or KeyFileError naming the file."""
    with tempfile.TemporaryDirectory() as d:
        for suffix, load, size in ((".sdls", load_sdls_key, 32), (".key_secret", load_curve_keypair, None),
                                   (".key", load_curve_public, 40)):  # fmt: skip
            path = os.path.join(d, "k" + suffix)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.close(fd)
            try:
                key = load(path)
            except KeyFileError as e:
                assert path in str(e)
                continue
            if size is not None:
                assert len(key) == size
            else:
                import zmq

                assert zmq.curve_public(key.secret) == key.public


def seeds_keyfiles() -> list[bytes]:
    import zmq

    pub, sec = zmq.curve_keypair()
    return [b"# c\n" + bytes(range(32)).hex().encode() + b"\n",
            b'curve\n    public-key = "' + pub + b'"\n    secret-key = "' + sec + b'"\n']  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the ZAP handler (real sockets)


@cache
def _zap():
    import zmq

    from flowgraphs.curve import CurveAuthenticator

    ctx = zmq.Context()
    auth = CurveAuthenticator(ctx).start()
    pub, _ = zmq.curve_keypair()
    auth.allow("fuzz", [pub])
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect("inproc://zeromq.zap.01")
    return zmq, auth, req, zmq.utils.z85.decode(pub)


def fuzz_zap(data: bytes) -> None:
    """Any ZAP request: answered at once, and 200 only for CURVE with the allowed key."""
    zmq, auth, req, allowed_raw = _zap()
    r = Reader(data)
    n = r.int(1) % 9
    parts = [r.bytes(r.int(1) % 48) for _ in range(n)]
    if n >= 7 and r.bit():
        parts[0], parts[2], parts[5] = b"1.0", b"fuzz", b"CURVE"
        if r.bit():
            parts[6] = allowed_raw
    if not parts:
        parts = [b""]
    req.send_multipart(parts)
    assert req.poll(2000), "the ZAP handler did not answer"
    reply = req.recv_multipart()
    assert len(reply) == 6 and reply[0] == b"1.0"
    granted = len(parts) == 7 and parts[0] == b"1.0" and parts[2] == b"fuzz" and parts[5] == b"CURVE" and (
        parts[6] == allowed_raw
    )
    assert (reply[2] == b"200") == granted and reply[2] in (b"200", b"400", b"500")
    assert auth.running


def seeds_zap() -> list[bytes]:
    return [bytes([7, 1, 1, 0, 0, 0, 0, 0, 1, 1])]


# ---------------------------------------------------------------------------------------------
# ZeroMQ wire formats (flowgraphs/wire.py)


def fuzz_wire(data: bytes) -> None:
    from flowgraphs import wire

    r = Reader(data)
    op = r.int(1) % 4
    if op == 0:
        raw = r.rest()
        m = wire.decode_message(raw, max_bytes=1 << 16)
        if m.kind != wire.KIND_JSON:
            assert wire.encode_message(m.kind, m.body, sender=m.sender, epoch=m.epoch, seq=m.seq) == raw
    elif op == 1:  # a valid header and CRC around a fuzzed body (reaches the JSON parser)
        kind = r.int(1) % 4
        body = r.rest()
        import struct
        import zlib

        head = struct.pack("<4sBBHIIQI", b"MLNK", 1, kind, 0, 1, 0, 0, len(body))
        crc = zlib.crc32(body, zlib.crc32(head))
        wire.decode_message(head + struct.pack("<I", crc) + body)
    elif op == 2:
        chunk = wire.decode_iq(r.rest(), tagged=True, max_samples=1 << 16)
        assert chunk.samples.dtype == np.complex64 and np.isfinite(chunk.samples).all()
    else:
        wire.pmt_deserialize(r.rest())


def seeds_wire() -> list[bytes]:
    from flowgraphs import wire

    m = wire.encode_message(wire.KIND_JSON, {"modcod": "QPSK 1/2", "esn0_db": 3.5}, sender=1, epoch=0, seq=7)
    b = wire.encode_message(wire.KIND_BYTES, b"payload", sender=2, epoch=1, seq=8)
    tags = [wire.Tag(0, "rx_freq", 2.4e9), wire.Tag(3, "frame", {"modcod": 4, "ok": True})]
    iq = wire.encode_iq(np.ones(8, np.complex64), offset=100, tags=tags)
    return [b"\x00" + m, b"\x00" + b, b"\x01\x01" + b'{"a": [1, 2.5, null]}', b"\x02" + iq,
            b"\x03" + wire.pmt_serialize([1, "x", {"k": (1.5, None)}]),
            # found by reading the parser, kept as regression inputs: a PMT dict keyed by a vector,
            # a JSON integer of 5000 digits, JSON nested 100 000 deep
            b"\x03" + bytes([9, 7, 8, 0, 0, 0, 0, 6, 6]),
            b"\x01\x01" + b'{"a":' + b"1" * 5000 + b"}",
            b"\x01\x01" + b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Proximity-1 PLTUs (modem/prox1/pltu.py)


def fuzz_pltu(data: bytes) -> None:
    """A bitstream of PLTUs and idle bits, some inverted, some with one bit error, cut anywhere.

    Property: every PLTU reported ok is a frame that was sent, intact (CRC-32 catches every
    single bit error), and the deframer never raises on 0/1 bits.
    """
    from modem.prox1.pltu import IdleSource, PltuDeframer, pltu_bits, v3_frame

    r = Reader(data)
    idle = IdleSource()
    sent, parts = [], []
    for i in range(1 + r.int(1) % 6):
        data_field = tile(r.bytes(r.int(1) % 16), r.int(2) % 300)
        frame = v3_frame(data_field, sequence=i, spacecraft_id=r.int(2) % 1024)
        sent.append(frame)
        b = pltu_bits(frame)
        if r.int(1) % 4 == 0:
            b = b.copy()
            b[r.int(2) % b.size] ^= 1
        if r.bit():
            b = 1 - b
        parts += [idle(r.int(1)), b]
    if r.bit():  # raw fuzz bits appended
        parts.append(np.unpackbits(np.frombuffer(r.bytes(r.int(1)), np.uint8)))
    stream = np.concatenate(parts)
    d = PltuDeframer(max_errors=r.int(1) % 5)
    cuts = sorted({int(c) % (stream.size + 1) for c in np.frombuffer(tile(r.bytes(6), 6), np.uint16)})
    got = []
    for a, b in zip([0, *cuts], [*cuts, stream.size], strict=True):
        got += d(stream[a:b])
    for p in got:
        if p.ok:
            assert p.frame in sent, "a PLTU with a correct CRC holds a frame that was not sent"
    assert d.good == sum(p.ok for p in got) and d.bad == sum(not p.ok for p in got)
    assert d.bits_in == stream.size


def seeds_pltu() -> list[bytes]:
    return [bytes([3, 4, 0x41, 0x42, 0x43, 0x44, 40, 0, 7, 0, 1, 9, 0, 0, 20, 1, 0, 0, 0, 0, 0, 0, 0, 0])]


# ---------------------------------------------------------------------------------------------
# user frames in the generic stream (flowgraphs/userframes.py)


def fuzz_userframes(data: bytes) -> None:
    """User frames with gaps, single bit errors, false sync markers and any chunking.

    Property: every frame the parser returns was sent, unchanged.
    """
    from flowgraphs.userframes import SYNC, UserFrameParser, encode_user_frame

    r = Reader(data)
    sent, stream = [], bytearray()
    offset = 0
    for seq in range(1 + r.int(1) % 8):
        payload = tile(r.bytes(r.int(1) % 8), 1 + r.int(2) % 600)
        f = bytearray(encode_user_frame(seq, offset, payload))
        offset += len(payload)
        sent.append((seq, offset - len(payload), payload))
        fate = r.int(1) % 6
        if fate == 0:
            del f[r.int(2) % len(f) :]  # cut by a lost BBFRAME
        elif fate == 1:
            f[r.int(2) % len(f)] ^= 1 << (r.int(1) % 8)
        elif fate == 2:
            f[0:0] = SYNC + r.bytes(r.int(1) % 30)  # a false marker before the frame
        stream += f
    stream += r.rest()
    p = UserFrameParser(max_payload=1 + r.int(2))
    cuts = sorted({int(c) % (len(stream) + 1) for c in np.frombuffer(tile(r.bytes(6), 6), np.uint16)})
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        for uf in p(bytes(stream[a:b])):
            assert (uf.seq, uf.offset, uf.payload) in sent, "the parser returned a frame that was not sent"


def seeds_userframes() -> list[bytes]:
    return [bytes([4, 3, 1, 2, 3, 100, 0, 5]) + bytes([2, 0x55, 10, 0, 1]) * 4]


# ---------------------------------------------------------------------------------------------
# flowgraph files (flowgraphs/graph.py)


_GRAPH_PALETTE = [None, True, 0, -1, 1e308, float("nan"), "", "x", "src.out", "rx.iq", "tcp://127.0.0.1:1",
                  "ipc:///tmp/x", [], ["tx"], [1, 2], {}, {"type": "tx"}, {"type": "nonexistent"},
                  {"from": "src.out"}, 2**70, "QPSK 1/2", "inproc", "process"]  # fmt: skip


@cache
def _graph_table() -> dict:
    import tomllib

    from flowgraphs.graph import graph_path

    return tomllib.loads(graph_path("awgn_loopback").read_text())


def _paths(t, prefix=()):
    if isinstance(t, dict):
        for k, v in t.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(t, list):
        for i, v in enumerate(t):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def fuzz_graph(data: bytes) -> None:
    """Flowgraph tables with keys changed, removed or added, and arbitrary TOML text."""
    import copy

    from flowgraphs.graph import load_graph

    r = Reader(data)
    if r.bit():  # TOML text (valid or not) from a file, as a user gives it
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "g.toml")
            with open(path, "wb") as f:
                f.write(r.rest())
            load_graph(path)
        return
    table = copy.deepcopy(_graph_table())
    for _ in range(1 + r.int(1) % 4):
        paths = list(_paths(table))
        if not paths:
            break
        path = paths[r.int(2) % len(paths)]
        parent = table
        for k in path[:-1]:
            parent = parent[k]
        op, value = r.int(1) % 3, copy.deepcopy(_GRAPH_PALETTE[r.int(1) % len(_GRAPH_PALETTE)])
        if op == 0:
            del parent[path[-1]]
        elif op == 1:
            parent[path[-1]] = value
        elif isinstance(parent, dict):
            parent[f"k{r.int(1)}"] = value
    overrides = [f"{k}={v}" for k, v in [("ch.esn0_db", r.int(1) - 100), ("link.seed", "x")][: r.int(1) % 3]]
    load_graph(table, overrides)


def seeds_graph() -> list[bytes]:
    from flowgraphs.graph import graph_path

    return [b"\x01" + graph_path("awgn_loopback").read_bytes(), bytes([0, 1, 0, 5, 1, 3, 0]),
            bytes([0, 2, 7, 0, 0, 0, 3, 1, 1, 4, 2])]  # fmt: skip


def _graph_expected():
    from flowgraphs.stage import ConfigError

    return (ConfigError,)


# ---------------------------------------------------------------------------------------------
# SigMF recordings (hw/captures.py)


_SIGMF_FIELDS = ["core:datatype", "core:sample_rate", "core:num_channels", "core:trailing_bytes",
                 "core:sha512", "marslink:sample_count", "core:version", "core:extensions", "core:hw"]
_SIGMF_PALETTE = [None, True, 0, -1, 1.5, 2**64, "cf32_le", "ci16_le", "ri16_le", "cu8", "ci8", "xxx",
                  "", [], {}, [{"name": "marslink"}], 1e9, float("inf")]  # fmt: skip


@cache
def _sigmf_seed() -> tuple[dict, bytes]:
    import json

    from hw.captures import FrameAnnotation, write_capture

    with tempfile.TemporaryDirectory() as d:
        frames = [FrameAnnotation(start=2, length=8, modcod="QPSK 1/2", crc_ok=True, esn0_db=3.0, frame=0)]
        write_capture(os.path.join(d, "c"), np.arange(32, dtype=np.complex64), 1e6, 2.4e9, frames=frames)
        meta = json.loads(open(os.path.join(d, "c.sigmf-meta")).read())
        data = open(os.path.join(d, "c.sigmf-data"), "rb").read()
    return meta, data


def fuzz_sigmf(data: bytes) -> None:
    """SigMF metadata with fields changed (global, capture, annotation) and data files cut or grown."""
    import copy
    import json

    from hw.captures import open_capture

    meta0, raw = _sigmf_seed()
    r = Reader(data)
    if r.int(1) % 4 == 0:
        text = r.rest()  # arbitrary metadata bytes
    else:
        meta = copy.deepcopy(meta0)
        for _ in range(1 + r.int(1) % 4):
            where = r.int(1) % 3
            obj = meta["global"] if where == 0 else (meta["captures"] or [{}])[0] if where == 1 else (
                meta["annotations"] or [{}])[0]
            keys = _SIGMF_FIELDS + list(obj)
            key = keys[r.int(1) % len(keys)]
            if r.int(1) % 4 == 0:
                obj.pop(key, None)
            else:
                obj[key] = _SIGMF_PALETTE[r.int(1) % len(_SIGMF_PALETTE)]
        text = json.dumps(meta).encode()
        cut = r.int(1) % 4
        raw = raw[: len(raw) - cut] if r.bit() else raw + bytes(cut)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "c.sigmf-meta"), "wb") as f:
            f.write(text)
        with open(os.path.join(d, "c.sigmf-data"), "wb") as f:
            f.write(raw)
        cap = open_capture(os.path.join(d, "c"), verify=r.bit())
        x = cap.read()
        assert x.ndim == 1 and len(x) == len(cap)


def seeds_sigmf() -> list[bytes]:
    return [bytes([1, 0, 0, 1, 1, 6]), bytes([2, 1, 2, 0, 3, 2, 1, 5]), bytes([0]) + b'{"global": {}}']


def _sigmf_expected():
    from hw.captures import CaptureError

    return (CaptureError,)


def _wire_expected():
    from flowgraphs.wire import WireError

    return (WireError,)


TARGETS = {
    t.name: t
    for t in [
        Target("bbheader", fuzz_bbheader, (ValueError, TypeError), seeds_bbheader),
        Target("bbdeframer", fuzz_bbdeframer, (), seeds_bbdeframer),
        Target("ts_link", fuzz_ts_link, (), seeds_ts_link),
        Target("plheader", fuzz_plheader, (ValueError,), seeds_plheader),
        Target("receiver", fuzz_receiver, (), seeds_receiver),
        Target("sdls", fuzz_sdls, (FrameRejected,), seeds_sdls),
        Target("control_seq", fuzz_control_seq, (), seeds_control_seq),
        Target("keyfiles", fuzz_keyfiles, (), seeds_keyfiles),
        Target("zap", fuzz_zap, (), seeds_zap),
        Target("wire", fuzz_wire, _wire_expected(), seeds_wire),
        Target("pltu", fuzz_pltu, (), seeds_pltu),
        Target("userframes", fuzz_userframes, (), seeds_userframes),
        Target("graph", fuzz_graph, _graph_expected(), seeds_graph),
        Target("sigmf", fuzz_sigmf, _sigmf_expected(), seeds_sigmf),
    ]
}


# ---------------------------------------------------------------------------------------------
# the CI pass


def mutated(seeds: list[bytes]):
    """Seeds with a few byte edits, or plain random bytes."""
    edits = st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255), st.integers(0, 2)), max_size=6)

    def apply(args):
        seed, ops = args
        b = bytearray(seed)
        for pos, val, what in ops:
            if what == 0 and b:
                b[pos % len(b)] = val
            elif what == 1:
                b.insert(pos % (len(b) + 1), val)
            elif b:
                del b[pos % len(b)]
        return bytes(b)

    return st.one_of(st.binary(max_size=512), st.tuples(st.sampled_from(seeds), edits).map(apply))


CI_EXAMPLES = {"receiver": 40, "keyfiles": 100, "ts_link": 120, "graph": 150, "sigmf": 150}


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_short_pass(name):
    target = TARGETS[name]
    seeds = target.seeds()
    for s in seeds:  # every seed is accepted or cleanly refused
        check_input(target, s)

    @settings(max_examples=CI_EXAMPLES.get(name, 250), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(mutated(seeds))
    def run(data):
        check_input(target, data)

    run()


def test_targets_detect_a_broken_parser():
    """The harness itself can fail: an undocumented exception or a false property is reported."""

    def crashes(data):
        raise IndexError("out of range")

    with pytest.raises(IndexError):
        check_input(Target("t", crashes, (ValueError,), list), b"x")

    def terse(data):
        raise ValueError("bad")

    with pytest.raises(AssertionError, match="unclear error"):
        check_input(Target("t", terse, (ValueError,), list), b"x")
    text = check_input(TARGETS["sdls"], b"\x00\x10" + b"\x00" * 10)
    assert text.startswith("SDLS frame rejected (truncated)")
