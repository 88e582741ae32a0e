"""The tx journal and the sink state (flowgraphs/journal.py): what a killed stage restores from."""

import numpy as np

from flowgraphs.journal import DataLog, MemoryLog, SinkState, TxJournal, restore_queue
from modem.acm import TransmitQueue


def test_data_log_keeps_any_chunking_across_segments_and_reopens(tmp_path):
    """Bytes appended in random chunks over many small segments read back identical, after a
    reopen too; trimming drops whole segments below the point only, never the last one."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    log = DataLog(tmp_path / "d", segment_bytes=4096)
    mem = MemoryLog()
    pos = 0
    while pos < len(data):
        n = int(rng.integers(1, 9000))
        log.append(data[pos : pos + n])
        mem.append(data[pos : pos + n])
        pos += n
    assert log.end == mem.end == len(data)
    for _ in range(50):
        a = int(rng.integers(0, len(data)))
        n = int(rng.integers(0, 10_000))
        assert log.read(a, n) == data[a : a + n] == mem.read(a, n)
    log.trim(10_000)
    assert log.base == 8192 and log.read(8192, 100) == data[8192:8292]
    log.close()
    again = DataLog(tmp_path / "d", segment_bytes=4096)
    assert (again.base, again.end) == (8192, len(data))
    assert again.read(20_000, 5000) == data[20_000:25_000]
    again.trim(len(data) + 10)
    assert again.end == len(data) and len(list((tmp_path / "d").glob("*.seg"))) == 1


def test_tx_journal_rebuilds_the_queue_of_a_killed_transmitter(tmp_path):
    """A queue with frames sent, some acknowledged, is journaled; a new queue restored from the
    journal holds exactly the unacknowledged frames (same seq, offset, bytes), sends them first,
    then continues with new frames where the old one stopped."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 256, 30_000, dtype=np.uint8).tobytes()
    j = TxJournal(tmp_path / "tx", restore=False, meta_limit=200)  # tiny: snapshots happen
    q = TransmitQueue(1 << 16, 1000, rto_min=1e9)
    j.data.append(data)
    q.offer(data[:20_000])
    sent = []
    for t in range(12):
        f = q.next_frame(t)
        j.frame(f.seq, f.offset, len(f.payload))
        sent.append(f)
    q.ack(5, [[7, 8]], now=12)
    j.ack(5)
    j.stream_offset(123_456)
    j.close()

    j2 = TxJournal(tmp_path / "tx", restore=True)
    assert j2.restored and j2.cum == 5 and j2.next_seq == 12 and j2.out_offset == 123_456
    q2 = TransmitQueue(1 << 16, 1000, rto_min=1e9)
    held = restore_queue(q2, j2)
    assert held == 7 * 1000 and q2.held_bytes == 7000
    assert q2.stats.bytes_offered == 12_000 and q2.stats.bytes_acked == 5000
    again = [q2.next_frame(100 + i) for i in range(7)]
    assert [(f.seq, f.offset, f.payload) for f in again] == [(f.seq, f.offset, f.payload) for f in sent[5:]]
    q2.offer(j2.data.read(12_000, 8000))
    f = q2.next_frame(200)
    assert (f.seq, f.offset, f.payload) == (12, 12_000, data[12_000:13_000])


def test_sink_state_restores_delivery_and_held_frames(tmp_path):
    """The sink's state and the frames it holds beyond a hole survive; frames the state says are
    delivered are dropped from the held log; a cut last record is ignored."""
    s = SinkState(tmp_path / "sink", restore=False)
    s.hold([(5, 5000, b"a" * 1000), (6, 6000, b"b" * 1000)])
    s.save({"next_seq": 3, "delivered_bytes": 3000}, {5: (5000, b"a"), 6: (6000, b"b")}, 2000)
    s.hold([(8, 8000, b"c" * 1000)])
    s.close()
    with open(tmp_path / "sink" / "held.log", "ab") as f:
        f.write(b"\x09" + bytes(10))  # a record cut by the kill
    r = SinkState(tmp_path / "sink", restore=True)
    assert r.state == {"next_seq": 3, "delivered_bytes": 3000}
    assert sorted(r.held) == [5, 6, 8] and r.held[8] == (8000, b"c" * 1000)
    r.save({"next_seq": 9, "delivered_bytes": 9000}, {}, 0)
    r.close()
    assert (tmp_path / "sink" / "held.log").stat().st_size == 0
    fresh = SinkState(tmp_path / "sink", restore=False)
    assert fresh.state is None and fresh.held == {}
    fresh.close()
