"""Control-message anti-replay (flowgraphs/control_seq.py)."""

import numpy as np
import pytest

from flowgraphs.control_seq import MAX_SEQ, ControlRejected, ControlSequenceChecker


def reason_of(checker, *args):
    with pytest.raises(ControlRejected) as e:
        checker.check(*args)
    return e.value.reason


def test_in_order_accepted_replays_and_reorders_rejected_and_counted():
    c = ControlSequenceChecker()
    assert [c.check("acm", s) for s in range(5)] == [0] * 5
    assert reason_of(c, "acm", 4) == "replay"  # the last one again
    assert reason_of(c, "acm", 2) == "replay"  # an old one
    assert c.check("acm", 8) == 3  # 5, 6, 7 missed
    assert reason_of(c, "acm", 6) == "replay"  # arrives late: must not be applied after 8
    assert c.counters == dict(accepted=6, missed=3, replay=3, stale_epoch=0, too_many_senders=0, invalid=0)
    assert c.rejected == 3 and c.last("acm") == (0, 8)


def test_senders_are_independent():
    c = ControlSequenceChecker()
    c.check("acm", 10)
    c.check(b"key-of-tx", 10)  # bytes senders (CurveZMQ User-Id) are their own namespace
    assert c.check("tx", 1) == 0
    assert reason_of(c, "acm", 10) == "replay"
    assert c.check("tx", 2) == 0


def test_epochs_let_a_restarted_sender_in_and_keep_old_epochs_out():
    c = ControlSequenceChecker()
    for s in range(100):
        c.check("acm", s, epoch=1000)
    assert c.check("acm", 0, epoch=2000) == 0  # restarted: counts from 0 again in a new epoch
    assert reason_of(c, "acm", 99, 1000) == "stale_epoch"  # replay of the previous run's command
    assert reason_of(c, "acm", 0, 2000) == "replay"
    assert c.check("acm", 1, 2000) == 0


def test_forget_for_a_restart_without_epoch():
    c = ControlSequenceChecker()
    c.check("acm", 50)
    assert reason_of(c, "acm", 0) == "replay"
    c.forget("acm")
    assert c.check("acm", 0) == 0


def test_sender_table_is_bounded():
    c = ControlSequenceChecker(max_senders=3)
    for name in "abc":
        c.check(name, 0)
    assert reason_of(c, "d", 0) == "too_many_senders"
    assert c.check("a", 1) == 0  # known senders go on


@pytest.mark.parametrize(
    "args", [(None, 1), ("a", -1), ("a", MAX_SEQ + 1), ("a", 1.0), ("a", True), ("a", 1, -5), (3, 1)]
)
def test_invalid_messages_are_rejected_not_crashing(args):
    c = ControlSequenceChecker()
    assert reason_of(c, *args) == "invalid"
    assert c.counters["invalid"] == 1 and c.counters["accepted"] == 0


def test_random_stream_accepted_set_is_strictly_increasing_per_sender():
    """Random duplicates, reorders and jumps: the accepted messages of each sender always increase."""
    rng = np.random.default_rng(7)
    c = ControlSequenceChecker()
    accepted = {}
    offered = 0
    for _ in range(5000):
        sender = f"s{rng.integers(4)}"
        epoch = int(rng.integers(3))
        seq = int(rng.integers(200))
        offered += 1
        try:
            c.check(sender, seq, epoch)
        except ControlRejected:
            continue
        accepted.setdefault(sender, []).append((epoch, seq))
    for pairs in accepted.values():
        assert all(a < b for a, b in zip(pairs, pairs[1:], strict=False))
    assert c.counters["accepted"] + c.rejected == offered
    assert c.counters["accepted"] == sum(len(p) for p in accepted.values())
