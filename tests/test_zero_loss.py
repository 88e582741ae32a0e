"""Zero loss under faults: whole flowgraph runs in process mode, with stages killed and stalled.

Every run is the DVB-S2 loopback (PRBS source, tx, AWGN channel, rx, verifying sink, ACM,
monitor; short frames to keep it quick) with real LDPC decoding between real processes. The
sink's report is the source of truth: every byte the source offered must be delivered, in
order, checked against the source pattern, or reported lost with its count. Faults are
triggered from the runner's supervision loop at given fractions of the delivered bytes, so
they land in the middle of the data whatever the machine's speed.
"""

import copy
import os
import signal
import struct
import threading
import time

import pytest
import zmq

from flowgraphs import wire
from flowgraphs.graph import Runner, check_graph
from flowgraphs.userframes import encode_user_frame

TOTAL = 100_000
STAGES = ["src", "tx", "ch", "rx", "sink", "acm", "mon"]
#: Stages that hold no state a restart loses. The tx (its transmit queue) and the sink (its
#: delivered offset and held frames, already acknowledged) restore theirs from the journal in
#: the run folder (flowgraphs/journal.py).
RESTARTABLE = ["src", "ch", "rx", "acm", "mon"]
GRAPH = {
    "graph": {"name": "zero_loss"},
    "link": {"symbol_rate_hz": 2.5e6, "samples_per_symbol": 2, "seed": 11, "frame": "short"},
    "run": {"until": ["tx"], "wall_limit_s": 45.0, "max_restarts": 3},
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


def delivered(runner) -> int:
    stats = runner.records["sink"].stats or {}
    return int(stats.get("counters", {}).get("delivered_bytes", 0))


def run_with_faults(plan, total=TOTAL, spacing_s=0.0, wall_limit_s=None, security=None, **stage_changes):
    """Run the graph; ``plan`` is [(fraction of total delivered, stage, "kill"|"stop"|"cont"|...)].

    A fault waits at least ``spacing_s`` after the previous one (and until the previous victim
    runs again), so that kills land one after the other rather than in one burst.

    Returns (RunResult, list of (fraction, stage, action, seconds since start) actually done).
    """
    t = copy.deepcopy(GRAPH)
    t["stages"]["src"]["total_bytes"] = total
    if wall_limit_s is not None:
        t["run"]["wall_limit_s"] = wall_limit_s
    if security:
        t["security"] = security
    for key, value in stage_changes.items():
        stage, _, param = key.partition("__")
        t["stages"][stage][param] = value
    runner = Runner(check_graph(t), mode="process")
    todo = sorted(plan, key=lambda p: p[0])
    done = []
    t0 = time.monotonic()

    def hook(r):
        while todo and delivered(r) >= todo[0][0] * total:
            if done and spacing_s:
                too_soon = time.monotonic() - t0 - done[-1][3] < spacing_s
                if too_soon or (done[-1][2] == "kill" and r.pid(done[-1][1]) is None):
                    return
            frac, stage, action = todo[0]
            if action == "sleep":  # hold the stage's action for a moment (a stall of the test's making)
                time.sleep(stage)
            else:
                pid = r.pid(stage)
                if pid is None:
                    return  # (re)starting: try again on the next tick
                sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "cont": signal.SIGCONT}[action]
                os.kill(pid, sig)
            done.append((frac, stage, action, round(time.monotonic() - t0, 1)))
            todo.pop(0)

    runner.kill_hook = hook
    res = runner.run()
    return res, done


def assert_no_loss(res, total=TOTAL, context=""):
    rep = res.summary("mon").get("report", {})
    b = rep.get("bytes", {})
    sink = res.summary("sink")
    where = f"{context}; reason {res.reason!r}, status {res.status}; report bytes {b}; sink {sink}"
    assert res.reason == "done" and res.status == 0 and not res.problems, where
    assert sink.get("delivered_bytes") == total, where
    assert b.get("offered") == b.get("delivered") == total and b.get("lost") == 0, where
    assert b.get("verified") and b.get("corrupt_frames") == 0 and sink.get("offset_errors") == 0, where


def test_kill_9_each_stage_in_turn():
    """SIGKILL every stage once, one after the other, during the transfer, the tx and the sink
    (which restore their state from the run folder) included: nothing may be lost."""
    plan = [((i + 1) / (len(STAGES) + 2), stage, "kill") for i, stage in enumerate(STAGES)]
    res, done = run_with_faults(plan, total=20 * TOTAL, spacing_s=1.0, wall_limit_s=120.0)
    restarts = {n: r.restarts for n, r in res.stages.items()}
    bytes_ = res.summary("mon").get("report", {}).get("bytes")
    context = f"kills done {done}; restarts {restarts}; reason {res.reason!r}; report bytes {bytes_}"
    assert [d[1] for d in done] == STAGES, context
    assert all(restarts[s] == 1 for s in STAGES), context
    assert_no_loss(res, 20 * TOTAL, context)


@pytest.mark.parametrize("stage", sorted(set(STAGES) - set(RESTARTABLE)))
def test_kill_9_of_a_stateful_stage_loses_nothing(stage, tmp_path):
    """SIGKILL of the tx (its transmit queue, unacknowledged frames included, is rebuilt from its
    journal; the source is asked to resend from the last byte journaled) or of the sink (its
    delivered offset and the frames it held and acknowledged come back from its state). With
    SDLS on: the restarted tx never reuses a sequence number (no frame refused as a replay)."""
    from flowgraphs import keys
    from flowgraphs.frame_security import RESERVE_BLOCK

    key_file = keys.create_sdls_key("zero_loss", tmp_path)
    # the delivered count the runner sees lags by up to a stats period: 4 x TOTAL keeps the kill
    # well before the tx has everything acknowledged (and reported done)
    res, done = run_with_faults(
        [(0.3, stage, "kill")], total=4 * TOTAL, wall_limit_s=30.0, security={"sdls_key_file": str(key_file)}
    )
    context = f"kills done {done}; restarts {res.stages[stage].restarts}; problems {res.problems}"
    assert [d[1] for d in done] == [stage], context
    assert res.stages[stage].restarts == 1, context
    assert res.summary(stage).get("restored") is True, f"{context}; {stage} summary {res.summary(stage)}"
    assert_no_loss(res, 4 * TOTAL, context)
    sdls, tx_sdls = res.summary("sink")["sdls"], res.summary("tx")["sdls"]
    # (counted by the sink's last process: all frames when the tx was killed)
    assert sdls["rejected"] == 0 and sdls["frames_ok"] >= (4 * TOTAL // 4068 if stage == "tx" else 1), sdls
    if stage == "tx":  # the new process started past the block its predecessor had reserved
        assert tx_sdls["next_seq"] > RESERVE_BLOCK + 1, tx_sdls


def test_stalled_receiver_loses_nothing():
    """The rx process is frozen (SIGSTOP) for 3 s mid-run while the others go on, then resumed."""
    plan = [(0.3, "rx", "stop"), (0.3, 3.0, "sleep"), (0.3, "rx", "cont")]
    res, done = run_with_faults(plan, total=10 * TOTAL, wall_limit_s=90.0)
    assert [d[2] for d in done] == ["stop", "sleep", "cont"], done
    assert_no_loss(res, 10 * TOTAL, context=f"faults {done}")


def test_outage_longer_than_the_transmit_queue_spills_and_delivers():
    """A channel outage (0.45 s of stream, ~120 kB at the link's rate) longer than the transmit queue
    holds (70 kB): the source goes on into the tx's spill on disk (bounded by spill_bytes, here
    60 kB), and every byte is delivered once the channel returns."""
    profile = [[0.0, 8.0], [0.05, 8.0], [0.06, -10.0], [0.5, -10.0], [0.51, 8.0], [30.0, 8.0]]
    res, done = run_with_faults(
        [], ch__esn0_profile=profile, tx__queue_bytes=70_000, tx__spill_bytes=60_000, src__chunk_bytes=4096
    )
    tx = res.summary("tx")
    assert_no_loss(res, context=f"tx summary {tx}")
    assert tx["spilled_bytes"] > 0 and tx["spill_pending_bytes"] == 0, f"no spill reported by tx: {tx}"
    assert tx["spill_peak_bytes"] <= 60_000 + 4096, f"spill above its bound: {tx}"


def _sink_stage(ctx, addr):
    from flowgraphs.stage import Endpoint, StageSpec
    from flowgraphs.stages import stage_class

    g = check_graph(GRAPH)
    spec = StageSpec(name="sink", type="sink", params=dict(g.stages["sink"][1]), link=dict(g.link),
                     inputs={"frames": Endpoint(addr, bind=True)}, outputs={}, bus_pub="", bus_sub="",
                     peers={"src": {"type": "source", "params": g.stages["src"][1]}})  # fmt: skip
    st = stage_class("sink")(spec, context=ctx)
    th = threading.Thread(target=st.run, daemon=True)
    th.start()
    return st, th


def test_duplicate_and_reordered_frames_are_delivered_once_in_order():
    """User frames arrive duplicated (retransmissions, replayed messages) and out of order (a
    later frame before an earlier one): the sink delivers each byte once, in order, and counts."""
    from flowgraphs.graph import _free_tcp_port
    from flowgraphs.stages.source import make_pattern

    g = check_graph(GRAPH)
    pattern = make_pattern(g.stages["src"][1], g.link)
    ctx = zmq.Context()
    addr = f"tcp://127.0.0.1:{_free_tcp_port()}"
    sink, th = _sink_stage(ctx, addr)
    push = ctx.socket(zmq.PUSH)
    push.linger = 0
    push.connect(addr)
    writer = wire.MessageWriter("rx")
    size = 1000

    def frames(seqs):
        body = struct.pack("<Q", 0) + b"".join(
            encode_user_frame(s, size * s, pattern.read(size * s, size)) for s in seqs
        )
        return writer.encode(wire.KIND_FRAMES, body)

    # frame 2 overtakes 1; 5 overtakes 3 and 4; 0, 2, 4, 5 and 6 come twice (5 duplicates)
    for seqs in ([0], [2], [0, 1], [2], [5], [3, 4], [4, 5, 6], [6]):
        push.send(frames(seqs))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and getattr(sink, "delivered_bytes", 0) < 7 * size:
        time.sleep(0.05)
    time.sleep(0.2)
    sink.request_stop()
    th.join(10)
    push.close()
    ctx.term()
    s = sink.summary()
    assert s["delivered_bytes"] == 7 * size and s["delivered_frames"] == 7, s
    assert s["duplicates"] == 5 and s["corrupt"] == 0 and s["offset_errors"] == 0, s
    assert s["held_frames"] == 0, s
