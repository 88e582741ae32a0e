"""ACM policy, genie yardstick and the transmit queue (selective-repeat ARQ)."""

import math

import numpy as np
import pytest

from modem.acm import (
    AcmPolicy,
    TransmitQueue,
    best_option,
    genie_efficiency,
    measured_thresholds,
    modcod_ladder,
    shannon_bits_per_symbol,
)
from modem.dvbs2.modcod import frame_spec


def test_ladder_is_monotonic_and_drops_dominated():
    ladder = modcod_ladder("normal", pilots=True)
    thr = [o.threshold_db for o in ladder]
    eta = [o.eta for o in ladder]
    assert thr == sorted(thr) and len(set(thr)) == len(thr)
    assert all(b > a for a, b in zip(eta, eta[1:], strict=False))
    names = [o.name for o in ladder]
    assert names[0] == "QPSK 1/4" and names[-1] == "32APSK 9/10"
    # QPSK 8/9 needs more Es/N0 (6.13 dB) than 8PSK 3/5 (5.46 dB) for less throughput; 8PSK 5/6
    # more (9.26 dB) than 16APSK 2/3 (8.86 dB)
    assert "QPSK 8/9" not in names and "8PSK 5/6" not in names and "8PSK 3/5" in names
    table = measured_thresholds()
    for o in ladder:
        assert o.threshold_db == table[(o.name, "normal")]
        spec = frame_spec(o.name, "normal", True)
        assert o.eta == spec.eta and o.data_field_bytes == spec.data_field_bits // 8
    # every dropped MODCOD is dominated by a kept one: no more efficient for no lower threshold
    for (name, frame), t in table.items():
        if frame == "normal" and name not in names:
            e = frame_spec(name, "normal", True).eta
            assert any(o.threshold_db <= t and o.eta >= e for o in ladder), name


def test_ladder_restricted_and_errors():
    ladder = modcod_ladder("short", True, ["QPSK 1/2", "8PSK 3/5", "16APSK 2/3"])
    assert [o.name for o in ladder] == ["QPSK 1/2", "8PSK 3/5", "16APSK 2/3"]
    with pytest.raises(ValueError, match="no measured threshold for short"):
        modcod_ladder("short", True, ["QPSK 9/10"])
    with pytest.raises(ValueError, match="unknown MODCOD"):
        modcod_ladder("normal", True, ["QPSK 7/8"])
    with pytest.raises(ValueError, match="frame must be one of"):
        modcod_ladder("long")


def test_best_option_threshold_plus_margin():
    ladder = modcod_ladder()
    q12 = next(o for o in ladder if o.name == "QPSK 1/2")
    assert best_option(ladder, q12.threshold_db + 0.5, 0.5).name == "QPSK 1/2"
    assert best_option(ladder, q12.threshold_db + 0.5 - 1e-9, 0.5).name == "QPSK 2/5"
    assert best_option(ladder, ladder[0].threshold_db - 0.01, 0.0) is None
    assert best_option(ladder, 40.0, 0.5).name == "32APSK 9/10"
    assert best_option(ladder, float("nan"), 0.0) is None


def test_genie_efficiency_matches_best_option():
    ladder = modcod_ladder()
    x = np.random.default_rng(3).uniform(-6, 20, 500)
    for margin in (0.0, 0.7):
        want = [(best_option(ladder, v, margin).eta if best_option(ladder, v, margin) else 0.0) for v in x]
        assert np.array_equal(genie_efficiency(x, ladder, margin), want)


def test_shannon():
    assert shannon_bits_per_symbol(0.0) == pytest.approx(1.0)
    assert shannon_bits_per_symbol(10 * math.log10(3)) == pytest.approx(2.0)
    assert shannon_bits_per_symbol(-300.0) == pytest.approx(0.0)


def test_policy_hysteresis_and_immediate_downgrade():
    ladder = modcod_ladder()
    by = {o.name: o for o in ladder}
    p = AcmPolicy(ladder, margin_db=0.5, hysteresis_db=0.3)
    t = by["16APSK 3/4"].threshold_db + 0.5
    assert p.decide(t).name == "16APSK 3/4"
    up = by["16APSK 4/5"].threshold_db + 0.5
    assert p.decide(up + 0.29).name == "16APSK 3/4"  # not enough to move up
    assert p.decide(up + 0.31).name == "16APSK 4/5"
    assert p.decide(up + 0.01).name == "16APSK 4/5"  # inside the hysteresis band: stay
    assert p.decide(float("nan")).name == "16APSK 4/5"  # no estimate: keep
    assert p.decide(up - 0.01).name == "16APSK 3/4"  # below threshold + margin: down at once
    assert p.decide(ladder[0].threshold_db + 0.49) is None  # outage: hold the data
    assert p.decide(ladder[0].threshold_db + 0.5).name == "QPSK 1/4"  # from outage: no hysteresis


def test_policy_checks_arguments():
    with pytest.raises(ValueError, match="margin_db must be a number in"):
        AcmPolicy(modcod_ladder(), margin_db=-1)
    with pytest.raises(ValueError, match="ladder must hold at least one MODCOD"):
        AcmPolicy([])


def test_outer_loop_settles_at_target_fer():
    """Frames fail with a waterfall FER(m) = 10**(-2 - 4 m) (m: margin over threshold in dB).

    The outer loop must settle where FER(m) is about the target, 1e-2 here, so the observed error
    rate over 200k frames is 1e-2 within a factor 1.5 (about 2000 errors: 7 sigma is 0.16).
    """
    ladder = modcod_ladder()
    p = AcmPolicy(ladder, margin_db=0.0, hysteresis_db=0.0, olla_step_db=0.1, target_fer=1e-2)
    rng = np.random.default_rng(11)
    errors = 0
    n = 200_000
    for _ in range(n):
        m = p.extra_margin_db - 0.3  # the true channel is 0.3 dB worse than estimated
        fail = rng.random() < min(1.0, 10 ** (-2 - 4 * m))
        errors += fail
        p.frame_result(not fail)
    assert 1e-2 / 1.5 < errors / n < 1e-2 * 1.5
    assert p.extra_margin_db == pytest.approx(0.3, abs=0.2)


# ---------------------------------------------------------------------------------------------
# transmit queue


def test_queue_capacity_and_framing():
    q = TransmitQueue(capacity_bytes=10_000, payload_bytes=3000)
    assert q.offer(bytes(25_000)) == 10_000 and q.room == 0 and q.offer(b"x") == 0
    f = [q.next_frame(now=0) for _ in range(4)]
    assert [len(x.payload) for x in f] == [3000, 3000, 3000, 1000]
    assert [x.offset for x in f] == [0, 3000, 6000, 9000] and [x.seq for x in f] == [0, 1, 2, 3]
    assert q.next_frame(now=0) is None
    assert q.room == 0  # sent but unacknowledged bytes still count
    assert q.ack(2, now=1) == 6000 and q.room == 6000
    assert q.ack(4, now=1) == 4000 and q.empty


def test_queue_partial_frames_only_when_asked():
    q = TransmitQueue(capacity_bytes=10_000, payload_bytes=3000)
    q.offer(bytes(1000))
    assert q.next_frame(now=0, partial=False) is None
    assert len(q.next_frame(now=0, partial=True).payload) == 1000


def test_queue_loss_detected_by_later_delivery_and_resent_first():
    q = TransmitQueue(capacity_bytes=100_000, payload_bytes=100, rto_min=1e9)
    q.offer(bytes(1000))
    sent = [q.next_frame(now=i) for i in range(6)]  # seq 0..5
    assert [f.seq for f in sent] == list(range(6))
    q.ack(2, ranges=[(3, 5)], now=10)  # 2 and 5 missing; 5 may still be in flight
    assert q.resend_frames == 1  # only 2: sent before a delivered frame
    f = q.next_frame(now=11)
    assert (f.seq, f.sends) == (2, 2)
    assert q.next_frame(now=12).seq == 6  # then new data
    q.ack(3, ranges=[(3, 5), (6, 7)], now=20)  # 5 sent before 6, which arrived: lost
    assert q.next_frame(now=21).seq == 5
    assert q.stats.frames_retransmitted == 2 and q.stats.losses_detected == 2


def test_queue_timeout_resends_the_tail():
    q = TransmitQueue(capacity_bytes=10_000, payload_bytes=100, rto_min=50, rto_initial=50)
    q.offer(bytes(300))
    for t in range(3):
        q.next_frame(now=t)
    assert q.next_frame(now=49) is None  # nothing new, nothing timed out yet
    f = q.next_frame(now=50)
    assert f.seq == 0 and q.stats.timeouts == 1
    assert q.ack(3, now=60) == 300 and q.empty


def test_queue_ack_of_frame_waiting_for_resend_cancels_it():
    q = TransmitQueue(capacity_bytes=10_000, payload_bytes=100, rto_min=10, rto_initial=10)
    q.offer(bytes(200))
    q.next_frame(now=0)
    q.next_frame(now=0)
    assert q.next_frame(now=10).seq == 0  # timed out and resent
    q.ack(0, ranges=[(1, 2)], now=11)  # seq 1 timed out too but then arrives
    assert q.next_frame(now=11) is None and q.resend_frames == 0


def test_queue_delivers_everything_over_a_lossy_link():
    """Offered bytes arrive exactly once and in order over a link that loses 20 % of the frames,
    with acknowledgments delayed and themselves lost, and a receiver that vanishes for a while.

    The link keeps the order of transmissions (as the DVB-S2 stream does); the sink model delivers
    in order and acknowledges cumulatively with selective ranges, like the sink stage.
    """
    rng = np.random.default_rng(2026)
    q = TransmitQueue(capacity_bytes=50_000, payload_bytes=700, rto_min=40)
    data = rng.integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    offered = 0
    delivered = bytearray()
    held: dict[int, bytes] = {}
    next_seq = 0
    acks: list[tuple[int, int, list]] = []  # (arrival time, cum, ranges)
    in_flight: list[tuple[int, int, bytes]] = []  # (arrival time, seq, payload)
    for now in range(20_000):
        offered += q.offer(data[offered : offered + 5000])
        f = q.next_frame(now)
        if f is not None and rng.random() > 0.2 and not 3000 <= now < 3400:  # a dead receiver
            in_flight.append((now + 10, f.seq, f.payload))
        while in_flight and in_flight[0][0] <= now:
            _, seq, payload = in_flight.pop(0)
            if seq >= next_seq:
                held[seq] = payload
            while next_seq in held:
                delivered += held.pop(next_seq)
                next_seq += 1
            ranges = []
            for s in sorted(held):
                if ranges and ranges[-1][1] == s:
                    ranges[-1][1] = s + 1
                else:
                    ranges.append([s, s + 1])
            if rng.random() > 0.1:
                acks.append((now + 15, next_seq, ranges[:8]))
        while acks and acks[0][0] <= now:
            _, cum, ranges = acks.pop(0)
            q.ack(cum, ranges, now=now)
        if offered == len(data) and q.empty:
            break
    assert offered == len(data)
    assert bytes(delivered) == data
    assert q.empty and q.stats.bytes_acked == len(data)
    assert q.stats.frames_retransmitted > 0.2 * q.stats.frames_created


# ---------------------------------------------------------------------------------------------
# the channel truth the genie yardstick integrates (flowgraphs/stages/channel.py)


def _channel_stage(start_s: float):
    """A scenario channel stage (storm_pass) without sockets: what it sends and publishes is kept."""
    from flowgraphs.graph import check_graph
    from flowgraphs.stage import StageSpec
    from flowgraphs.stages.channel import Channel

    link = {"symbol_rate_hz": 2.5e6, "samples_per_symbol": 2, "scenario": "storm_pass", "time_scale": 20.0,
            "start_s": start_s}  # fmt: skip
    stages = {"ch": {"type": "channel", "model": "scenario"}}
    g = check_graph({"graph": {"name": "t"}, "link": link, "stages": stages}, "t")
    spec = StageSpec(name="ch", type="channel", params=g.stages["ch"][1], link=dict(g.link), inputs={},
                     outputs={}, bus_pub="", bus_sub="", peers={})  # fmt: skip
    st = Channel(spec)
    st.published, st.sent = [], []
    st.publish = lambda topic, body: st.published.append((topic, body))
    st.send_iq = lambda port, y, tags=(): st.sent.append(y) is None
    st.setup()
    return st


def test_channel_truth_is_what_it_applied_and_follows_the_timebase_after_a_restart():
    """The channel stage publishes the scenario's Es/N0 at each chunk's start (within one 1 ms
    update segment) and, when the stream starts again at offset 0 (a restarted transmitter: no
    gap is reported), applies the scenario from the timebase's start again, not from where it was."""
    from flowgraphs import wire
    from modem.channel import load_scenario

    st = _channel_stage(start_s=100.0)
    sc = load_scenario("storm_pass")
    n = 1 << 16
    x = np.full(n, np.sqrt(0.5), np.complex64)
    for k in [0, 1, 2, 3, 4, 0, 1, 2]:
        st.on_iq("in", wire.IqChunk(offset=k * n, samples=x, tags=[]), 0)
    truth = [b for topic, b in st.published if topic == "chan.truth"]
    assert [b["offset"] for b in truth] == [k * n for k in [0, 1, 2, 3, 4, 0, 1, 2]]
    for b in truth:
        assert b["t_s"] == pytest.approx(100.0 + 20.0 * b["offset"] / 5e6)
        # one update segment (1 ms of stream, 20 ms of pass) moves Es/N0 by far less than 0.01 dB
        assert b["esn0_db"] == pytest.approx(float(sc.esn0_db(b["t_s"])), abs=0.01)
    # the model runs on the timebase's clock: after the restart it is 3 chunks past t(0) = 100 s
    assert st.scenario_channel.scenario_time_s == pytest.approx(st.tb.t_s(3 * n), abs=1e-9)
    assert len(st.sent) == 8


def test_channel_truth_is_null_while_the_link_is_down():
    """Outside the pass the Es/N0 is null (JSON), never -inf."""
    from flowgraphs import wire

    st = _channel_stage(start_s=700.0)  # storm_pass ends at 692.7 s
    st.on_iq("in", wire.IqChunk(offset=0, samples=np.zeros(4096, np.complex64), tags=[]), 0)
    st.on_iq("in", wire.IqChunk(offset=4096, samples=np.zeros(4096, np.complex64), tags=[]), 0)
    truth = [b for topic, b in st.published if topic == "chan.truth"]
    assert len(truth) == 2 and all(b["esn0_db"] is None for b in truth)
