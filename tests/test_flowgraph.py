"""Flowgraph files, their validation, and whole runs in the in-process (thread) mode.

The runs push real DVB-S2 frames (LDPC and all) through an AWGN channel between ZeroMQ stages
and check the physics and the accounting: the ACM picks the MODCOD the measured threshold table
says, the receiver's Es/N0 estimates match the channel, every byte offered arrives, in order and
checked against the source, and an outage costs time, not data.
"""

import copy
import struct
import threading
import time

import numpy as np
import pytest
import zmq

from flowgraphs import wire
from flowgraphs.graph import Runner, check_graph, describe, load_graph, stage_specs
from flowgraphs.stage import ConfigError, StageSpec
from flowgraphs.stages import stage_class, stage_types
from flowgraphs.userframes import encode_user_frame
from modem.acm import modcod_ladder

LOOPBACK = {
    "graph": {"name": "test_loopback"},
    "link": {"symbol_rate_hz": 2.5e6, "samples_per_symbol": 2, "seed": 7},
    "run": {"until": ["tx"], "wall_limit_s": 150.0},
    "stages": {
        "src": {"type": "source", "pattern": "prbs", "total_bytes": 600_000},
        "tx": {"type": "tx", "modcod": "QPSK 1/2"},
        "ch": {"type": "channel", "model": "awgn", "esn0_db": 6.0},
        "rx": {"type": "rx"},
        "sink": {"type": "sink"},
        "acm": {"type": "acm", "feedback_delay_s": 0.05, "margin_db": 0.3},
        "mon": {"type": "monitor", "plots": False},
    },
    "connect": [
        {"from": "src.out", "to": "tx.data"},
        {"from": "tx.iq", "to": "ch.in"},
        {"from": "ch.out", "to": "rx.iq"},
        {"from": "rx.frames", "to": "sink.frames"},
    ],
}


def table(**changes):
    t = copy.deepcopy(LOOPBACK)
    for key, value in changes.items():
        head, _, k = key.partition("__")
        if head in ("link", "run", "graph"):
            t[head][k] = value
        else:
            t["stages"][head][k] = value
    return t


# ---------------------------------------------------------------------------------------------
# validation


def test_registry_finds_stage_modules():
    types = stage_types()
    for t in ("source", "tx", "channel", "rx", "sink", "acm", "monitor"):
        assert t in types
        assert stage_class(t).TYPE == t
    with pytest.raises(ValueError, match="unknown stage type 'warp'"):
        stage_class("warp")


def test_shipped_graphs_load():
    for name in ("awgn_loopback", "storm_pass"):
        g = load_graph(name)
        assert "tx" in g.stages and g.links
        assert "->" in describe(g)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rx__ldpc_iteration": 5}, "stage 'rx': key 'ldpc_iteration': unknown; known keys: workers"),
        ({"acm__margin_db": -1.0}, "stage 'acm': key 'margin_db': must be in [0, 20] dB; got -1.0"),
        ({"acm__margin_db": "big"}, "stage 'acm': key 'margin_db': must be float; got 'big'"),
        ({"ch__model": "rician"}, "stage 'ch': key 'model': must be one of 'awgn', 'scenario', 'none'"),
        ({"tx__modcod": "QPSK 7/8"}, "stage 'tx': key 'modcod': unknown MODCOD 'QPSK 7/8'"),
        ({"acm__modcods": ["QPSK 9/10"], "link__frame": "short"}, "stage 'acm': key 'modcods': "),
        ({"ch__esn0_profile": [[0, 3], [0, 4]]}, "stage 'ch': key 'esn0_profile': must be"),
        ({"link__samples_per_symbol": 1}, "[link]: key 'samples_per_symbol': must be in [2, 64]; got 1"),
        ({"link__warp": 9}, "[link]: key 'warp': unknown"),
        ({"run__until": ["nobody"]}, "[run]: key 'until': no stage 'nobody'"),
        ({"run__transport": "udp"}, "[run]: key 'transport': must be one of 'ipc', 'tcp', 'inproc'"),
    ],
)
def test_validation_names_stage_and_key(changes, message):
    with pytest.raises(ConfigError) as e:
        check_graph(table(**changes), "test.toml")
    assert str(e.value).startswith("test.toml: ")
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("connect", "message"),
    [
        (
            {"from": "src.out", "to": "tx.nope"},
            "connect #5: key 'to': stage 'tx' (tx) has no input port 'nope'; its inputs: data",
        ),
        (
            {"from": "rx.iq", "to": "sink.frames"},
            "connect #5: key 'from': stage 'rx' (rx) has no output port 'iq'",
        ),
        ({"from": "ghost.out", "to": "tx.data"}, "connect #5: key 'from': no stage 'ghost'"),
        ({"from": "ch.out", "to": "sink.frames"}, "connect #5: ch.out gives iq but sink.frames takes frames"),
        ({"from": "src.out", "to": "tx.data"}, "connect #5: key 'to': input tx.data is already fed"),
        ({"to": "rx.iq"}, "connect #5: key 'endpoint': a link to the outside of the graph needs an endpoint"),
        ({"from": "tx", "to": "ch.in"}, "connect #5: key 'from': must be 'stage.port'"),
        ({"from": "tx.iq", "to": "ch.in", "bind": "both"}, "key 'bind': must be 'from' or 'to'"),
        ({"from": "tx.iq", "to": "ch.in", "colour": 1}, "connect #5: key 'colour': unknown"),
    ],
)
def test_link_validation(connect, message):
    t = table()
    t["connect"].append(connect)
    with pytest.raises(ConfigError) as e:
        check_graph(t, "g.toml")
    assert message in str(e.value)


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[stages.tx\ntype = 'tx'\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_graph(str(bad))
    with pytest.raises(ConfigError, match="no such flowgraph file, nor a shipped flowgraph"):
        load_graph(str(tmp_path / "missing.toml"))
    notype = tmp_path / "notype.toml"
    notype.write_text("[stages.tx]\nmodcod = 'QPSK 1/2'\n")
    with pytest.raises(ConfigError, match=r"notype.toml: stage 'tx': key 'type' is missing"):
        load_graph(str(notype))


def test_overrides():
    g = load_graph(
        "awgn_loopback",
        ["ch.esn0_db=3", "link.time_scale=20", "acm.modcods=['QPSK 1/2']", "tx.modcod=QPSK 1/4"],
    )
    assert g.stages["ch"][1]["esn0_db"] == 3.0
    assert g.link["time_scale"] == 20.0
    assert g.stages["acm"][1]["modcods"] == ["QPSK 1/2"]
    assert g.stages["tx"][1]["modcod"] == "QPSK 1/4"
    with pytest.raises(ConfigError, match="override 'nostage.x=1': no stage 'nostage'"):
        load_graph("awgn_loopback", ["nostage.x=1"])
    with pytest.raises(ConfigError, match="must look like stage.key=value"):
        load_graph("awgn_loopback", ["esn0_db"])


def test_specs_endpoints():
    g = check_graph(table())
    specs = stage_specs(g, "ipc", "/tmp/mlk-x", "", ("ipc:///tmp/mlk-x/bus-in", "ipc:///tmp/mlk-x/bus-out"))
    tx_out = specs["tx"].outputs["iq"][0]
    ch_in = specs["ch"].inputs["in"]
    assert tx_out.address == ch_in.address and tx_out.address.startswith("ipc:///tmp/mlk-x/")
    assert tx_out.bind and not ch_in.bind  # the sender binds, like gr-zeromq sinks
    again = StageSpec.from_json(specs["tx"].to_json())
    assert again == specs["tx"]


# ---------------------------------------------------------------------------------------------
# runs


def run_graph(t, mode="thread", **kw):
    g = check_graph(t, "test")
    r = Runner(g, mode=mode, **kw)
    return r, r.run()


def test_loopback_delivers_every_byte_and_acm_follows_the_table():
    """6 dB AWGN, margin 0.3 dB: the ACM must settle on 8PSK 3/5 (threshold 5.46 dB; QPSK 9/10
    needs 6.34 + 0.3), every byte of the 600 kB source must arrive verified, no frame may fail
    (0.5 dB above the FER-1e-2 threshold a normal frame fails with probability far below 1e-3),
    and the receiver's Es/N0 estimates must average 6.0 dB within 0.1 dB."""
    _, res = run_graph(table())
    assert res.status == 0 and res.reason == "done"
    rep = res.summary("mon")["report"]
    b = rep["bytes"]
    assert b["offered"] == b["delivered"] == 600_000
    assert b["lost"] == 0 and b["corrupt_frames"] == 0 and b["verified"]
    sink = res.summary("sink")
    assert sink["delivered_bytes"] == 600_000 and sink["offset_errors"] == 0
    f = rep["frames"]
    assert f["failed"] == 0 and f["unobserved"] == 0
    by = f["by_modcod"]
    assert max(by, key=lambda k: by[k]["sent"]) == "8PSK 3/5"
    assert set(by) <= {"QPSK 1/2", "8PSK 3/5"}  # the initial MODCOD until the first command
    assert abs(rep["esn0_error_db"]["mean"]) < 0.1
    best = [o for o in modcod_ladder() if o.threshold_db + 0.3 <= 6.0][-1]
    assert best.name == "8PSK 3/5"


def test_outage_holds_data_and_delivers_after():
    """The channel falls to -8 dB (below every MODCOD: PLHEADERs are barely readable) for 0.3 s
    and comes back. The transmitter must send only dummy frames during the outage, hold the data
    and deliver every byte once the link returns; frames in flight when it faded are resent."""
    t = table(
        ch__esn0_profile=[[0.0, 8.0], [0.15, 8.0], [0.16, -8.0], [0.45, -8.0], [0.46, 8.0], [5.0, 8.0]],
        src__total_bytes=700_000,
        acm__feedback_delay_s=0.02,
    )
    _, res = run_graph(t)
    assert res.status == 0
    rep = res.summary("mon")["report"]
    assert rep["bytes"]["offered"] == rep["bytes"]["delivered"] == 700_000
    assert rep["bytes"]["lost"] == 0
    assert rep["frames"]["dummy"] > 20  # the outage: carrier only
    assert res.summary("tx")["frames_retransmitted"] >= 1  # frames sent into the fade came again
    assert res.summary("acm")["switches"] >= 3  # up, down to nothing, up again


def _start_stage(stype, name, params, inputs, outputs, ctx, bus=("", "")):
    spec = StageSpec(
        name=name,
        type=stype,
        params=params,
        link=dict(check_graph(table()).link),
        inputs=inputs,
        outputs=outputs,
        bus_pub=bus[0],
        bus_sub=bus[1],
        peers={"src": {"type": "source", "params": check_graph(table()).stages["src"][1]}},
    )
    st = stage_class(stype)(spec, context=ctx)
    th = threading.Thread(target=st.run, daemon=True)
    th.start()
    return st, th


def test_stage_survives_malformed_oversized_and_out_of_order_messages():
    """A sink stage fed garbage, an oversized message and replayed / out-of-order messages counts
    each, refuses it, and keeps delivering the good frames that follow."""
    from flowgraphs.graph import _free_tcp_port
    from flowgraphs.stage import Endpoint
    from flowgraphs.stages.source import PrbsPattern

    ctx = zmq.Context()
    addr = f"tcp://127.0.0.1:{_free_tcp_port()}"
    g = check_graph(table())
    params = dict(g.stages["sink"][1])
    sink, th = _start_stage("sink", "sink", params, {"frames": Endpoint(addr, bind=True)}, {}, ctx)
    push = ctx.socket(zmq.PUSH)
    push.connect(addr)
    pat = PrbsPattern(7)
    w = wire.MessageWriter("rx")

    def frames_msg(seqs):
        body = struct.pack("<Q", 0) + b"".join(
            encode_user_frame(s, 1000 * s, pat.read(1000 * s, 1000)) for s in seqs
        )
        return w.encode(wire.KIND_FRAMES, body)

    good1 = frames_msg([0, 1])
    push.send(good1)
    push.send(b"garbage that is no message at all")
    push.send(good1[:-1] + bytes([good1[-1] ^ 0xFF]))  # CRC fails
    push.send(wire.encode_message(wire.KIND_BYTES, bytes(sink.MAX_MESSAGE_BYTES), sender=5, epoch=0, seq=0))
    push.send(good1)  # a replay: same sender, same sequence number
    push.send(frames_msg([2]))
    w.seq -= 2
    push.send(frames_msg([3]))  # out of order: a sequence number already used
    w.seq += 2
    push.send(frames_msg([3, 4]))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and getattr(sink, "delivered_bytes", 0) < 5000:
        time.sleep(0.05)
    time.sleep(0.2)
    sink.request_stop()
    th.join(10)
    push.close(linger=0)
    ctx.term()
    s = sink.wire_stats["frames"]
    assert sink.delivered_bytes == 5000  # frames 0..4, each verified against the source
    assert (s.malformed, s.oversized, s.out_of_order) == (2, 1, 2)
    assert s.accepted == 3 and s.missing == 1 and sink.corrupt == 0  # seq 0, 1, 3 (seq 2 never sent)


def test_runner_restarts_a_crashed_stage_thread():
    """In-process mode: a stage whose loop raises is restarted with a new epoch and the run
    completes without loss."""
    from flowgraphs.stages import rx as rx_module

    crashed = []
    original = rx_module.Rx._decode

    def flaky(self, run):
        if not crashed and self.frames_total >= 5:
            crashed.append(self.epoch)
            raise RuntimeError("injected fault")
        return original(self, run)

    rx_module.Rx._decode = flaky
    try:
        _, res = run_graph(table(src__total_bytes=400_000, acm__feedback_delay_s=0.02))
    finally:
        rx_module.Rx._decode = original
    assert crashed == [0]
    assert res.stages["rx"].restarts == 1 and res.stages["rx"].epoch == 1
    rep = res.summary("mon")["report"]
    assert rep["bytes"]["delivered"] == rep["bytes"]["offered"] == 400_000
    assert rep["bytes"]["lost"] == 0


def test_tags_carry_plframe_starts():
    """The tx stage tags each PLFRAME with its PLS MODCOD at the centre of its first symbol."""
    ctx = zmq.Context()
    from flowgraphs.graph import _free_tcp_port
    from flowgraphs.stage import Endpoint

    addr = f"tcp://127.0.0.1:{_free_tcp_port()}"
    params = dict(check_graph(table()).stages["tx"][1])
    tx, th = _start_stage("tx", "tx", params, {}, {"iq": [Endpoint(addr, bind=True)]}, ctx)
    pull = ctx.socket(zmq.PULL)
    pull.connect(addr)
    chunks = [wire.decode_iq(pull.recv(), tagged=True) for _ in range(3)]
    tx.request_stop()
    th.join(10)
    pull.close(linger=0)
    ctx.term()
    offset = 0
    for c in chunks:
        assert c.offset == offset
        assert len(c.tags) == 1 and c.tags[0].key == "plframe" and c.tags[0].offset == offset + 16
        assert c.tags[0].value == 0  # no data yet: dummy PLFRAMEs of 3330 symbols
        assert c.samples.size == 3330 * 2
        offset += c.samples.size
    assert np.isclose(np.mean(np.abs(chunks[1].samples) ** 2), 0.5, rtol=0.05)  # 1/sps per sample


# ---------------------------------------------------------------------------------------------
# regressions found by fuzzing (issue 9)


def test_non_utf8_flowgraph_file_names_the_file(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# caf\xe9\n[stages.tx]\ntype = 'tx'\n")
    with pytest.raises(ConfigError, match=r"latin1.toml: not UTF-8 text .*byte 5 is 0xE9"):
        load_graph(str(bad))


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("[run]\nuntil = [{}]\n[stages.tx]\ntype = 'tx'\n", [], "g.toml: [run]: key 'until': items must"),
        ("stages = [1, 2]\n", ["ch.esn0_db=3"], "g.toml: override 'ch.esn0_db=3': [stages] must be a table"),
        ("stages = 7\n", ["ch.esn0_db=3"], "[stages] must be a table; got 7"),
        ("link = -1\n", ["link.seed=3"], "g.toml: override 'link.seed=3': [link] must be a table; got -1"),
        ("run = 'x'\n", ["run.wall_limit_s=3"], "override 'run.wall_limit_s=3': [run] must be a table"),
        ("[stages]\nch = ['tx']\n", ["ch.esn0_db=3"], "g.toml: override 'ch.esn0_db=3': stage 'ch' must be"),
        ("[stages.3]\ntype = 'tx'\n", ["ch.esn0_db=3"], "no stage 'ch'; stages: 3"),
    ],
)
def test_malformed_tables_give_config_errors(tmp_path, text, overrides, message):
    """Tables of the wrong type under --set overrides, and non-string 'until' entries, raised
    TypeError; each must be a ConfigError naming the file, the table or stage and the key."""
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_graph(str(path), overrides)
    assert message in str(e.value)


def test_override_on_a_null_stages_table():
    """A parsed table (tests, tools) may hold None where a table belongs."""
    with pytest.raises(ConfigError, match=r"<table>: override 'ch.esn0_db=3': \[stages\] must be a table"):
        load_graph({"stages": None}, ["ch.esn0_db=3"])


def _bus_stage(ctx, stype="sink"):
    """A stage in a thread whose bus subscription is our XPUB (returns stage, thread, xpub)."""
    from flowgraphs.graph import _free_tcp_port
    from flowgraphs.stage import Endpoint

    xpub = ctx.socket(zmq.XPUB)
    bus = f"tcp://127.0.0.1:{_free_tcp_port()}"
    xpub.bind(bus)
    g = check_graph(table())
    if stype == "sink":
        ports = {"frames": Endpoint(f"tcp://127.0.0.1:{_free_tcp_port()}", bind=True)}, {}
    else:
        ports = {}, {"iq": [Endpoint(f"tcp://127.0.0.1:{_free_tcp_port()}", bind=True)]}
    st, th = _start_stage(stype, stype, dict(g.stages[stype if stype == "sink" else "tx"][1]), *ports, ctx,
                          bus=("", bus))  # fmt: skip
    want = {b"\x01ctl.stop", *(b"\x01" + t.encode() for t in st.SUBSCRIBE)}
    xpub.rcvtimeo = 20_000
    while want:  # wait until the stage's subscriptions arrived (no slow-joiner race)
        want.discard(xpub.recv())
    return st, th, xpub


def test_malformed_bus_messages_are_counted_and_never_stop_a_stage():
    """ctl.stop messages whose JSON body has a 5000-digit integer or 100 000 levels of nesting,
    a non-UTF-8 topic, a message of 3 parts, and feedback with fields of the wrong type used to
    kill the stage's thread (or the tx at its next frame); each is counted as malformed, the stage
    runs on, and a valid ctl.stop still stops it."""
    ctx = zmq.Context()
    w = wire.MessageWriter("attacker")

    def raw_json(body: bytes) -> bytes:
        head = struct.pack("<4sBBHIIQI", b"MLNK", 1, wire.KIND_JSON, 0, w.sender, 0, w.seq, len(body))
        w.seq += 1
        import zlib

        return head + struct.pack("<I", zlib.crc32(body, zlib.crc32(head))) + body

    for stype, feedback in (("sink", []), ("tx", [(b"acm.ack", {"apply_at": 0, "cum": "x"}),
                                                 (b"acm.ack", {"apply_at": 0, "cum": 1, "sack": [[1]]}),
                                                 (b"acm.cmd", {"apply_at": 0, "modcod": [1]})])):  # fmt: skip
        st, th, xpub = _bus_stage(ctx, stype)
        bad = [
            [b"ctl.stop", raw_json(b'{"target":' + b"1" * 5000 + b"}")],
            [b"ctl.stop", raw_json(b'{"target":' + b"[" * 100_000 + b"]" * 100_000 + b"}")],
            [b"ctl.stop", raw_json(b'{"target": ["*"]}')],  # not a name: ignored, not a stop
            [b"ctl.stop\xff", w.encode(wire.KIND_JSON, {"target": "*"})],
            [b"ctl.stop", b"x", b"y"],
        ] + [[t, w.encode(wire.KIND_JSON, body)] for t, body in feedback]
        for parts in bad:
            xpub.send_multipart(parts)
        stats = st.wire_stats["bus"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and stats.malformed < len(bad) - 1:
            time.sleep(0.05)
        time.sleep(0.5)  # the tx applies feedback in its next frames: let it run some
        assert th.is_alive() and not st.stopping, stype
        assert stats.malformed == len(bad) - 1 and stats.accepted == 1 + len(feedback) + 0, (stype, stats)
        xpub.send_multipart([b"ctl.stop", w.encode(wire.KIND_JSON, {"target": stype})])
        th.join(20)
        assert not th.is_alive(), stype
        xpub.close(linger=0)
    ctx.term()


def test_transmit_queue_smaller_than_a_source_chunk_delivers_everything():
    """queue_bytes accepts 4096 and up; the tx used to read its input only with 64 KiB of room,
    so with a smaller queue it never read and the run hung. 8 KiB queue, 64 KiB source chunks."""
    t = table(tx__queue_bytes=8192, src__total_bytes=150_000, run__wall_limit_s=90.0)
    _, res = run_graph(t)
    assert res.reason == "done" and res.status == 0, (res.reason, res.problems)
    b = res.summary("mon")["report"]["bytes"]
    assert b["offered"] == b["delivered"] == 150_000 and b["lost"] == 0, b
    assert res.summary("tx")["spill_pending_bytes"] == 0


def test_payload_larger_than_the_queue_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'tx': key 'payload_bytes': must not exceed queue_bytes \(4096\)"):
        check_graph(table(tx__queue_bytes=4096, tx__payload_bytes=5000), "g.toml")


def test_byte_accounts_count_a_frame_delivered_with_its_ack_in_flight_once():
    """Stopped with an acknowledgment on its way: the frame is delivered at the sink and still in
    the transmit queue; it must count once (delivered), not make the accounting negative; a frame
    held at both ends counts once (at the sink); a missing range is still lost."""
    from flowgraphs.report import byte_accounts

    tx = {"bytes_offered": 10_000, "held_bytes": 6_000, "held_ranges": [[4_000, 10_000]]}
    sink = {"delivered_bytes": 5_000, "held_bytes": 1_000, "held_ranges": [[6_000, 7_000]]}
    b = byte_accounts(tx, sink)
    assert b["acked_in_flight"] == 1_000 + 1_000  # 4000..5000 delivered, 6000..7000 at both ends
    assert (b["held_tx_queue"], b["held_sink"], b["lost"]) == (4_000, 1_000, 0)
    # plain counts, as an older stage reports them, would say -2000 lost
    assert byte_accounts({k: v for k, v in tx.items() if k != "held_ranges"}, sink)["lost"] == -2_000
    # a hole nobody holds (5000..6000 neither delivered nor held) is lost
    tx["held_ranges"], tx["held_bytes"] = [[4_000, 5_000], [6_000, 10_000]], 5_000
    assert byte_accounts(tx, sink)["lost"] == 1_000


def test_run_status_is_not_zero_on_loss_wall_limit_or_bad_accounting(tmp_path, capsys):
    """A run that loses bytes, or whose accounting does not add up, or that the wall-time limit
    stopped, must not report success (RunResult.status and the marslink run exit status)."""
    from flowgraphs.cli import main

    runner = Runner(check_graph(table()), mode="thread")
    for tx_held, want in ((100, []), (0, ["100 bytes lost"]), (200, ["inconsistent"])):
        runner.records["tx"].summary = {"summary": {"bytes_offered": 1000, "held_bytes": tx_held}}
        runner.records["sink"].summary = {"summary": {"delivered_bytes": 900, "held_bytes": 0}}
        got = runner._byte_problems()
        assert len(got) == len(want) and all(w in g for w, g in zip(want, got, strict=True)), got
    runner._ctx.term()
    # the wall-time limit stops a run that has more to do: status 1, said why, CLI exit 1
    code = main(["run", "awgn_loopback", "--in-process", "--no-progress", "--out", str(tmp_path),
                 "--set", "run.wall_limit_s=2", "--set", "mon.plots=false"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 1, out.err[-2000:]
    assert "RUN FAILED: wall-time limit of 2 s reached" in out.out, out.out
