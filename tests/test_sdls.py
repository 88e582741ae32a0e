"""SDLS-style frame protection (modem/sdls.py): round trips, layout, anti-replay, forgeries."""

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modem.sdls import (
    MAC_BYTES,
    REASONS,
    FrameProtector,
    FrameRejected,
    FrameVerifier,
    SequenceExhausted,
    nonce,
    overhead_bytes,
    parse_security_header,
)

RNG = np.random.default_rng(20240909)
KEY = RNG.bytes(32)
OTHER_KEY = RNG.bytes(32)


def pair(**kw):
    vkw = {k: v for k, v in kw.items() if k in ("seq_bytes", "encrypt", "window", "floor")}
    pkw = {k: v for k, v in kw.items() if k not in ("window", "floor")}
    return FrameProtector(KEY, 7, **pkw), FrameVerifier(KEY, 7, **vkw)


def rejected(verifier, frame, reason, header=b""):
    with pytest.raises(FrameRejected) as e:
        verifier.verify(frame, header)
    assert e.value.reason == reason, str(e.value)
    return e.value


@pytest.mark.parametrize("seq_bytes", [4, 6, 8])
@pytest.mark.parametrize("encrypt", [True, False])
def test_round_trip_any_length_and_exact_overhead(seq_bytes, encrypt):
    p, v = pair(seq_bytes=seq_bytes, encrypt=encrypt)
    assert p.overhead == v.overhead == overhead_bytes(seq_bytes) == 2 + seq_bytes + 16
    for n in [0, 1, 15, 16, 17, 374, 1991, 7264]:
        data = RNG.bytes(n)
        frame = p.protect(data, header=b"\x01\x02")
        assert len(frame) == n + 2 + seq_bytes + 16
        assert v.verify(frame, header=b"\x01\x02") == data
    assert v.counters["frames_ok"] == p.frames_out == 8
    assert v.counters["bytes_out"] == p.bytes_in == sum([0, 1, 15, 16, 17, 374, 1991, 7264])
    assert v.rejected == 0


def test_wire_layout_matches_the_documented_nonce_and_aad():
    """Decrypt with AES-GCM directly from the documented layout (SPI, seq, data, MAC; nonce; AAD)."""
    p = FrameProtector(KEY, 0x1234, next_seq=0x0102030405)
    data = b"science data from Jezero"
    frame = p.protect(data, header=b"HDR")
    spi, seq = parse_security_header(frame)
    assert (spi, seq) == (0x1234, 0x0102030405)
    assert frame[:10] == bytes.fromhex("1234") + (0x0102030405).to_bytes(8, "big")
    assert nonce(spi, seq) == bytes.fromhex("12340000") + (0x0102030405).to_bytes(8, "big")
    assert AESGCM(KEY).decrypt(nonce(spi, seq), frame[10:], b"HDR" + frame[:10]) == data
    assert data not in frame  # encrypted


def test_authentication_only_keeps_data_in_clear_and_still_rejects_changes():
    p, v = pair(encrypt=False)
    data = b"housekeeping telemetry, in the clear"
    frame = p.protect(data)
    assert frame[10:-MAC_BYTES] == data
    tampered = frame[:12] + bytes([frame[12] ^ 0x20]) + frame[13:]
    rejected(v, tampered, "auth_failed")
    assert v.verify(frame) == data


def test_every_single_bit_flip_is_refused_counted_and_leaves_the_link_working():
    p, v = pair()
    v.verify(p.protect(b"first"))  # seq 1 accepted: seq 1 is now a replay
    frame = p.protect(b"a protected frame of user data")  # seq 2
    reasons = {}
    for bit in range(8 * len(frame)):
        bad = bytearray(frame)
        bad[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(FrameRejected) as e:
            v.verify(bytes(bad))
        reasons[e.value.reason] = reasons.get(e.value.reason, 0) + 1
    # SPI bits -> bad_spi (16); sequence number 2 -> 0 is a replay (0 is the initial floor),
    # every other sequence number is new but changes the nonce, so the MAC fails, as it does
    # for every data and MAC bit
    assert reasons["bad_spi"] == 16
    assert reasons["replay"] == 1
    assert reasons["auth_failed"] == 8 * len(frame) - 17
    assert sum(reasons.values()) == 8 * len(frame) == v.rejected
    assert v.counters["frames_ok"] == 1
    assert v.verify(frame) == b"a protected frame of user data"  # the genuine frame still passes


def test_truncated_frames_every_length():
    p, v = pair()
    frame = p.protect(b"xyz")
    for n in range(len(frame)):
        cut = frame[:n]
        reason = "truncated" if n < 26 else "auth_failed"
        rejected(v, cut, reason)
    assert v.counters["truncated"] == 26 and v.counters["auth_failed"] == len(frame) - 26
    assert v.verify(frame) == b"xyz"


def test_replay_and_window():
    p, v = pair(window=64)
    frames = [p.protect(bytes([i])) for i in range(200)]
    order = RNG.permutation(60)  # reordered inside the window: all accepted once
    for i in order:
        assert v.verify(frames[i]) == bytes([i])
    for i in order:
        rejected(v, frames[i], "replay")
    for i in range(60, 200):
        v.verify(frames[i])
    assert v.highest_seq == 200
    rejected(v, frames[135], "too_old")  # seq 136 = highest - 64: just below the window
    rejected(v, frames[136], "replay")  # seq 137 = highest - 63: the window's oldest number
    c = v.counters
    assert (c["frames_ok"], c["replay"], c["too_old"]) == (200, 61, 1)


def test_gaps_are_accepted_and_late_frames_fill_them():
    p, v = pair(window=16)
    frames = [p.protect(bytes([i])) for i in range(40)]
    v.verify(frames[0])
    v.verify(frames[30])  # jump of 30 > window: everything below 16 is now too old
    rejected(v, frames[10], "too_old")
    assert v.verify(frames[20]) == bytes([20])  # seq 21 in 16..31: late but new
    rejected(v, frames[20], "replay")


def test_forged_high_sequence_number_does_not_move_the_window():
    p, v = pair(window=32)
    forger = FrameProtector(OTHER_KEY, 7, next_seq=10**9)
    rejected(v, forger.protect(b"SET MODCOD 28"), "auth_failed")
    assert v.highest_seq == 0
    assert v.verify(p.protect(b"genuine")) == b"genuine"


def test_wrong_key_wrong_header_wrong_spi_wrong_mode():
    p, v = pair()
    frame = p.protect(b"payload", header=b"\x0f\xf0")
    rejected(FrameVerifier(OTHER_KEY, 7), frame, "auth_failed", header=b"\x0f\xf0")
    rejected(v, frame, "auth_failed", header=b"\x0f\xf1")
    rejected(FrameVerifier(KEY, 8), frame, "bad_spi", header=b"\x0f\xf0")
    rejected(FrameVerifier(KEY, 7, encrypt=False), frame, "auth_failed", header=b"\x0f\xf0")
    assert v.verify(frame, header=b"\x0f\xf0") == b"payload"


def test_same_key_different_spi_gives_different_ciphertext():
    a = FrameProtector(KEY, 1).protect(b"\x00" * 32)
    b = FrameProtector(KEY, 2).protect(b"\x00" * 32)
    assert a[2:10] == b[2:10] and a[10:] != b[10:]


def test_floor_refuses_everything_at_or_below_it():
    p = FrameProtector(KEY, 7)
    frames = [p.protect(b"x") for _ in range(10)]
    v = FrameVerifier(KEY, 7, floor=5, window=100)
    for f in frames[:5]:
        rejected(v, f, "replay")
    for f in frames[5:]:
        assert v.verify(f) == b"x"


def test_sequence_number_never_wraps():
    p = FrameProtector(KEY, 7, seq_bytes=4, next_seq=2**32 - 2)
    v = FrameVerifier(KEY, 7, seq_bytes=4)
    assert p.remaining == 2
    v.verify(p.protect(b"a"))
    v.verify(p.protect(b"b"))
    with pytest.raises(SequenceExhausted, match="never wraps"):
        p.protect(b"c")
    assert p.frames_out == 2 and p.next_seq == 2**32


def test_reserve_hook_persists_ahead_so_a_restart_never_reuses_a_nonce():
    stored = []
    p = FrameProtector(KEY, 7, reserve=stored.append, reserve_block=10)
    seqs = [parse_security_header(p.protect(b"."))[1] for _ in range(25)]
    assert seqs == list(range(1, 26))
    assert stored == [10, 20, 30]  # each reservation before its first number is used
    # crash after frame 25; the restarted sender resumes past the last reservation
    q = FrameProtector(KEY, 7, reserve=stored.append, reserve_block=10, next_seq=stored[-1] + 1)
    assert parse_security_header(q.protect(b"."))[1] == 31 and stored[-1] == 40


def test_reserve_failure_sends_nothing():
    def fail(upto):
        raise OSError("disk full")

    p = FrameProtector(KEY, 7, reserve=fail)
    with pytest.raises(OSError, match="disk full"):
        p.protect(b"x")
    assert p.frames_out == 0 and p.next_seq == 1


def test_huge_sequence_jump_is_cheap():
    v = FrameVerifier(KEY, 7)
    v.verify(FrameProtector(KEY, 7, next_seq=2**63).protect(b"x"))
    assert v.highest_seq == 2**63


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(key=b"short", spi=1), "key must be 32 bytes"),
        (dict(key=KEY, spi=70000), "spi must be in 0..65535"),
        (dict(key=KEY, spi=1, seq_bytes=3), "seq_bytes must be one of"),
        (dict(key=KEY, spi=1, next_seq=0), "next_seq must be in 1.."),
    ],
)
def test_argument_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FrameProtector(**kwargs)


def test_key_never_appears_in_errors_or_repr():
    secret = bytes(range(31))
    with pytest.raises(ValueError) as e:
        FrameVerifier(secret, 1)
    assert secret.hex() not in str(e.value) and repr(secret) not in str(e.value)
    p, v = FrameProtector(KEY, 1), FrameVerifier(KEY, 1)
    for text in (repr(p), repr(v), str(vars(p)), str(vars(v))):
        assert KEY.hex() not in text and repr(KEY) not in text
    assert set(REASONS) <= set(v.counters)


def test_type_errors():
    p, v = pair()
    with pytest.raises(TypeError, match="data must be bytes-like"):
        p.protect("text")
    with pytest.raises(TypeError, match="frame must be bytes-like"):
        v.verify(12)


def test_protected_frames_cross_the_dvbs2_link_and_tampering_is_caught():
    """Protected frames in the DVB-S2 generic stream (short QPSK 1/2 frames, noiseless symbols):
    every frame verifies after the link; a byte changed after the receiver is refused."""
    from modem.dvbs2.link import LinkConfig, Receiver, Transmitter

    cfg = LinkConfig(frame="short", pilots=True)
    p, v = pair()
    user = [RNG.bytes(500) for _ in range(8)]
    stream = b"".join(p.protect(u) for u in user)
    tx = Transmitter(cfg)
    tx.push(stream)
    tx.flush()
    data, reports = Receiver(cfg).push(tx.frames(["QPSK 1/2"] * tx.frames_needed("QPSK 1/2")))
    assert all(r.ok for r in reports) and data == stream
    size = 500 + p.overhead
    got = [v.verify(data[i * size : (i + 1) * size]) for i in range(8)]
    assert got == user
    tampered = bytearray(data[:size])
    tampered[100] ^= 0x01
    rejected(FrameVerifier(KEY, 7), bytes(tampered), "auth_failed")


def test_protected_proximity1_frames_header_in_clear_and_authenticated():
    """Proximity-1: the Version-3 header stays in the clear (the C&S sublayer reads its length)
    and is covered by the MAC; the data field is SDLS-protected. Frames cross the PLTU layer
    (ASM, CRC-32) intact; a frame re-addressed in its header (another spacecraft id, CRC-32
    recomputed by the attacker) fails authentication."""
    import numpy as np

    from modem.prox1.pltu import PltuDeframer, V3Header, pltu_bits, v3_frame

    p, v = pair()
    frames, user = [], []
    for i in range(4):
        u = RNG.bytes(300 + 50 * i)
        header = v3_frame(b"\x00" * (len(u) + p.overhead), sequence=i, spacecraft_id=42)[:5]
        body = p.protect(u, header=header)
        frames.append(v3_frame(body, sequence=i, spacecraft_id=42))
        user.append(u)
    bits = np.concatenate([pltu_bits(f) for f in frames])
    got = [d for d in PltuDeframer()(bits) if d.ok]
    assert [d.frame for d in got] == frames
    assert [v.verify(d.frame[5:], header=d.frame[:5]) for d in got] == user
    # re-addressed: same body under another spacecraft id, with a valid PLTU around it
    hdr = V3Header.from_bytes(frames[0][:5])
    forged = v3_frame(frames[0][5:], sequence=hdr.sequence, spacecraft_id=43)
    (d,) = [d for d in PltuDeframer()(pltu_bits(forged)) if d.ok]
    rejected(FrameVerifier(KEY, 7), d.frame[5:], "auth_failed", header=d.frame[:5])
