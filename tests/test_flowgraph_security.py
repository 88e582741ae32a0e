"""Authenticated stages (CurveZMQ) and control anti-replay on real multi-process flowgraph runs.

The graph is the DVB-S2 loopback of ``tests/test_zero_loss.py`` (PRBS source, tx, AWGN, rx,
verifying sink, ACM, monitor; short frames, real LDPC decoding between real processes). Attacks
are started from the runner's supervision loop once part of the data is delivered, so they
land in the middle of the transfer; the sink's report must still show every byte delivered.
"""

import copy
import threading
import time

import zmq

from flowgraphs.curve import generate_keypair, make_curve_client
from flowgraphs.graph import Runner, check_graph

TOTAL = 100_000
GRAPH = {
    "graph": {"name": "secure_loop"},
    "link": {"symbol_rate_hz": 2.5e6, "samples_per_symbol": 2, "seed": 12, "frame": "short"},
    "run": {"until": ["tx"], "wall_limit_s": 45.0},
    "stages": {
        "src": {"type": "source", "pattern": "prbs", "total_bytes": TOTAL},
        "tx": {"type": "tx", "modcod": "QPSK 1/2"},
        "ch": {"type": "channel", "model": "awgn", "esn0_db": 6.0},
        "rx": {"type": "rx"},
        "sink": {"type": "sink"},
        "acm": {"type": "acm", "feedback_delay_s": 0.02, "margin_db": 0.3},
        "mon": {"type": "monitor", "plots": False},
    },
    "connect": [
        {"from": "src.out", "to": "tx.data"},
        {"from": "tx.iq", "to": "ch.in"},
        {"from": "ch.out", "to": "rx.iq"},
        {"from": "rx.frames", "to": "sink.frames"},
    ],
}


def _delivered(runner) -> int:
    stats = runner.records["sink"].stats or {}
    return int(stats.get("counters", {}).get("delivered_bytes", 0))


def _run(table, attack, at_fraction=0.3):
    """Run ``table`` in process mode; ``attack(runner)`` starts in a thread at ``at_fraction``."""
    runner = Runner(check_graph(table), mode="process")
    total = table["stages"]["src"]["total_bytes"]
    box = {}

    def hook(r):
        if "thread" not in box and _delivered(r) >= at_fraction * total:
            box["thread"] = threading.Thread(target=lambda: box.update(attack(r) or {}), daemon=True)
            box["thread"].start()

    runner.kill_hook = hook
    res = runner.run()
    if "thread" in box:
        box["thread"].join(10)
    return res, box


def _assert_no_loss(res, context="", total=TOTAL):
    b = res.summary("mon").get("report", {}).get("bytes", {})
    sink = res.summary("sink")
    where = f"{context}; reason {res.reason!r}, status {res.status}, problems {res.problems}; bytes {b}"
    assert res.reason == "done" and res.status == 0 and not res.problems, where
    assert sink.get("delivered_bytes") == total and sink.get("corrupt") == 0, where
    assert b.get("offered") == b.get("delivered") == total and b.get("lost") == 0, where


def test_curve_over_tcp_delivers_everything_and_refuses_unknown_peers():
    """Over tcp:// every link and the bus run CurveZMQ (the default for tcp). Mid-run, four
    peers try the rx stage's frame output and the bus: a plaintext PULL, a CURVE client with a
    key nobody was given, a plaintext SUB on the bus and a CURVE PUB with an unknown key. Each is
    refused and counted, none receives a byte, and the sink still gets every byte."""
    t = copy.deepcopy(GRAPH)
    t["run"]["transport"] = "tcp"
    t["stages"]["src"]["total_bytes"] = 6 * TOTAL  # the attack (1.5 s) lands mid-run

    def attack(r):
        ctx = zmq.Context()
        rx_out = r._specs["rx"].outputs["frames"][0]
        evil = generate_keypair("evil")
        plain = ctx.socket(zmq.PULL)
        plain.connect(rx_out.address)
        forged = ctx.socket(zmq.PULL)
        make_curve_client(forged, evil, r.keyring.public("rx"))
        forged.connect(rx_out.address)
        spy = ctx.socket(zmq.SUB)
        spy.subscribe(b"")
        spy.connect(r._specs["tx"].bus_sub)
        inject = ctx.socket(zmq.PUB)
        make_curve_client(inject, evil, r.keyring.bus_key)
        inject.connect(r._specs["tx"].bus_pub)
        got = 0
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            inject.send_multipart([b"acm.cmd", b"MLNK not a real command"])
            for s in (plain, forged, spy):
                while s.poll(0):
                    s.recv_multipart()
                    got += 1
            time.sleep(0.05)
        for s in (plain, forged, spy, inject):
            s.close(linger=0)
        ctx.term()
        return {"received": got, "rx_endpoint": rx_out.address}

    res, box = _run(t, attack, at_fraction=0.1)
    _assert_no_loss(res, f"attack {box}", total=6 * TOTAL)
    assert box.get("received") == 0, box
    assert box["rx_endpoint"].startswith("tcp://"), box
    sec = {n: (r.summary or {}).get("security", {}) for n, r in res.stages.items()}
    assert all(sec[n].get("curve_links", 0) >= 1 for n in ("src", "tx", "ch", "rx", "sink")), sec
    rx = sec["rx"]
    assert rx["refused_protocol"] >= 1 and rx["refused_unknown_key"] >= 1, rx
    assert rx["accepted"] >= 1, rx  # the sink
    bus = res.bus_security
    assert bus["curve"] and bus["refused"] >= 2 and bus["accepted"] >= len(GRAPH["stages"]), bus


def test_ipc_links_run_without_curve_by_default():
    """On ipc:// (one machine) CurveZMQ is off by default; ``[security] curve = true`` turns it on
    for the links and the bus as well, and the run still delivers every byte (thread mode: every
    stage's sockets in one context, served by one ZAP handler)."""
    from flowgraphs.graph import bus_uses_curve, link_uses_curve

    g = check_graph(GRAPH)
    assert not link_uses_curve(g, g.links[0], "ipc:///tmp/x") and not bus_uses_curve(g, "ipc")
    assert link_uses_curve(g, g.links[0], "tcp://127.0.0.1:5555") and bus_uses_curve(g, "tcp")
    t = copy.deepcopy(GRAPH)
    t["security"] = {"curve": True}
    res = Runner(check_graph(t), mode="thread").run()
    _assert_no_loss(res)
    sec = {n: (r.summary or {}).get("security", {}) for n, r in res.stages.items()}
    assert sec["rx"]["curve_links"] == 2 and sec["rx"]["accepted"] >= 1, sec
    assert res.bus_security["curve"] and res.bus_security["refused"] == 0, res.bus_security


def test_replayed_acm_command_is_rejected_and_counted():
    """An attacker on the bus (ipc, no CurveZMQ: someone with access to the run folder) records
    ACM commands and acknowledgments and plays them back three times each. The transmitter
    refuses every replay (sequence numbers per sender and topic), counts it, and the run loses
    nothing."""

    def attack(r):
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.subscribe(b"acm.")
        sub.connect(r._specs["tx"].bus_sub)
        recorded = []
        t_end = time.monotonic() + 5.0
        while len(recorded) < 4 and time.monotonic() < t_end:
            if sub.poll(100):
                recorded.append(sub.recv_multipart())
        pub = ctx.socket(zmq.PUB)
        pub.connect(r._specs["tx"].bus_pub)
        time.sleep(0.5)  # the proxy's subscriptions reach the new publisher
        for _ in range(3):
            for parts in recorded:
                pub.send_multipart(parts)
        time.sleep(0.3)
        for s in (sub, pub):
            s.close(linger=0)
        ctx.term()
        return {"recorded": len(recorded), "topics": sorted({p[0].decode() for p in recorded})}

    t = copy.deepcopy(GRAPH)
    t["stages"]["src"]["total_bytes"] = 8 * TOTAL  # long enough for the replays to land mid-run
    res, box = _run(t, attack, at_fraction=0.05)
    _assert_no_loss(res, f"attack {box}", total=8 * TOTAL)
    assert box.get("recorded") == 4, box
    control = (res.stages["tx"].summary or {}).get("control", {})
    assert control.get("replay") == 3 * 4, control
    assert control.get("accepted", 0) > 10, control


def _frames_message(writer, frames, rx_offset=0):
    """A sink input message (rx offset, then user frames) from (seq, offset, payload, flags)."""
    import struct

    from flowgraphs import wire
    from flowgraphs.userframes import encode_user_frame

    body = struct.pack("<Q", rx_offset) + b"".join(encode_user_frame(*f) for f in frames)
    return writer.encode(wire.KIND_FRAMES, body)


def test_sdls_over_the_acm_loop_refuses_forged_replayed_and_truncated_frames(tmp_path):
    """``[security] sdls_key_file``: the tx protects every user frame (AES-256-GCM, 26 bytes), the
    sink verifies it. Mid-run an attacker pushes into the sink's input: three replays (the real
    key, SDLS sequence numbers the transmitter already used), two frames under a wrong key, one
    genuine-key frame with a flipped bit, one truncated and one unprotected frame, all with
    payloads that match the source (so only SDLS can tell). Each is refused and counted by
    reason, none is delivered, and every genuine byte arrives."""
    import os

    from flowgraphs import keys, wire
    from flowgraphs.stages.source import make_pattern
    from flowgraphs.userframes import FLAG_SDLS, sdls_aad
    from modem.sdls import FrameProtector

    key_file = keys.create_sdls_key("loop", tmp_path)
    key = keys.load_sdls_key(key_file)
    t = copy.deepcopy(GRAPH)
    t["security"] = {"sdls_key_file": str(key_file)}
    t["stages"]["src"]["total_bytes"] = 4 * TOTAL  # the attack lands mid-run
    t["connect"][3]["bind"] = "to"  # the sink binds its input: the attacker can connect to it
    pattern = make_pattern(check_graph(GRAPH).stages["src"][1], check_graph(GRAPH).link)
    n = 4068

    def attack(r):
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.connect(r._specs["sink"].inputs["frames"].address)
        writer = wire.MessageWriter("intruder")
        frames = []

        def protected(protector, seq):
            return protector.protect(pattern.read(n * seq, n), sdls_aad(seq, n * seq))

        replay = FrameProtector(key, 1, next_seq=1)
        for seq in (1000, 1001, 1002):  # SDLS seq 1..3 again, over user frames far ahead
            frames.append((seq, n * seq, protected(replay, seq), FLAG_SDLS))
        wrong = FrameProtector(os.urandom(32), 1, next_seq=10**6)
        for seq in (1003, 1004):
            frames.append((seq, n * seq, protected(wrong, seq), FLAG_SDLS))
        flipped = bytearray(protected(FrameProtector(key, 1, next_seq=10**6), 1005))
        flipped[40] ^= 0x01
        frames.append((1005, n * 1005, bytes(flipped), FLAG_SDLS))
        frames.append((1006, n * 1006, bytes(12), FLAG_SDLS))  # shorter than SPI + seq + MAC
        frames.append((1007, n * 1007, pattern.read(n * 1007, n), 0))  # not protected at all
        push.send(_frames_message(writer, frames))
        time.sleep(0.5)
        push.close(linger=1000)
        ctx.term()
        return {"sent": len(frames)}

    res, box = _run(t, attack, at_fraction=0.1)
    _assert_no_loss(res, f"attack {box}", total=4 * TOTAL)
    sink = res.summary("sink")
    sd = sink["sdls"]
    assert box.get("sent") == 8, f"the attack did not run mid-transfer: {box}"
    assert sd["replay"] + sd["too_old"] == 3 and sd["truncated"] == 1, sd
    # three forged, one unprotected (its first bytes are taken for an SPI, or it fails the MAC)
    assert sd["auth_failed"] >= 3 and sd["auth_failed"] + sd["bad_spi"] == 4, sd
    assert sd["frames_ok"] >= sink["delivered_frames"] and sink["held_frames"] == 0, (sd, sink)
    tx = res.summary("tx")["sdls"]
    assert tx["overhead_bytes_per_frame"] == 26 and tx["frames_protected"] >= sd["frames_ok"], tx
    assert tx["frames_protected"] < 4096 and tx["next_seq"] == tx["frames_protected"] + 1, tx
    # the sequence numbers belong to the key: a second protector under it starts past the reservation
    assert (tmp_path / "loop.sdls.txseq").stat().st_mode & 0o077 == 0


def test_sdls_sequence_numbers_never_repeat_across_runs_under_one_key(tmp_path):
    """The tx reserves SDLS sequence numbers next to the key before using them, and the sink keeps
    the top of its window there: a second run under the same key starts above every number of
    the first, and the second run's verifier refuses the first run's frames as replays."""
    from flowgraphs import keys
    from flowgraphs.frame_security import RESERVE_BLOCK, make_protector, make_verifier, save_receiver_floor
    from flowgraphs.stage import StageSpec
    from modem.sdls import FrameRejected

    key_file = keys.create_sdls_key("runs", tmp_path)
    spec = StageSpec(name="tx", type="tx", security={"sdls_key_file": str(key_file), "sdls_spi": 7})
    first = make_protector(spec, 4068)
    old = [first.protect(b"frame %d" % i) for i in range(5)]
    rx1 = make_verifier(spec)
    assert [rx1.verify(f) for f in old] == [b"frame %d" % i for i in range(5)]
    save_receiver_floor(spec, rx1.highest_seq)
    second = make_protector(spec, 4068)
    assert second.next_seq == RESERVE_BLOCK + 1, second
    rx2 = make_verifier(spec)
    for f in old:
        try:
            rx2.verify(f)
        except FrameRejected as e:
            assert e.reason == "replay", e
        else:
            raise AssertionError("a frame of the first run was accepted by the second")
    assert rx2.verify(second.protect(b"new")) == b"new"
    assert rx2.counters["replay"] == 5


def test_key_dir_pairs_from_marslink_keys_and_a_missing_pair_is_a_clear_error(tmp_path):
    """``[security] key_dir``: the stages use the pairs ``marslink keys create NAME`` made (thread
    mode over tcp: one context, one ZAP handler for all the stages); a stage without a pair is
    refused before anything starts, with the command that makes one."""
    import pytest

    from flowgraphs.cli import main
    from flowgraphs.keys import load_curve_public
    from flowgraphs.stage import ConfigError

    t = copy.deepcopy(GRAPH)
    t["run"]["transport"] = "tcp"
    t["security"] = {"key_dir": str(tmp_path)}
    for name in list(GRAPH["stages"])[:-1]:
        assert main(["keys", "create", name, "--dir", str(tmp_path)]) == 0
    with pytest.raises(ConfigError, match=r"stage 'mon'.*marslink keys create mon --dir"):
        Runner(check_graph(t), mode="thread").run()
    assert main(["keys", "create", "mon", "--dir", str(tmp_path)]) == 0
    runner = Runner(check_graph(t), mode="thread")
    res = runner.run()
    _assert_no_loss(res)
    assert runner.keyring.public("rx") == load_curve_public("rx", tmp_path).decode()
    assert runner._specs["rx"].outputs["frames"][0].security["allowed"] == [runner.keyring.public("sink")]
    assert res.stages["rx"].summary["security"]["accepted"] >= 1, res.stages["rx"].summary["security"]
