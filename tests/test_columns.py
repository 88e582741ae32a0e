"""Bounded-memory record columns (flowgraphs/columns.py): what goes in comes back, in order."""

import numpy as np
import pytest

from flowgraphs.columns import Column, NameColumn
from flowgraphs.report import RunRecorder


def test_column_spills_to_disk_and_gives_back_every_value_in_order(tmp_path):
    rng = np.random.default_rng(7)
    v = rng.normal(size=10_000)
    v[123] = np.nan
    c = Column(str(tmp_path / "c.f64"), chunk=256)
    for x in v:
        c.append(x)
    assert len(c) == v.size
    assert c._buf.size == 256 and c._n <= 256  # memory bounded by the chunk
    np.testing.assert_array_equal(c.values(), v)  # (NaN compares equal here)
    assert c[-1] == v[-1] and c[-128] == v[-128]
    assert np.array_equal(c.recent(), v[-c._n :]) and c._n >= 128
    assert c.total == pytest.approx(np.nansum(v))
    with pytest.raises(IndexError, match="values in memory"):
        c[-300]
    c.close()
    assert not (tmp_path / "c.f64").exists()


def test_name_column_round_trip(tmp_path):
    names = ["QPSK 1/2", "dummy", "32APSK 9/10"] * 500 + ["8PSK 3/5"]
    c = NameColumn(str(tmp_path / "n.f64"), chunk=64)
    for n in names:
        c.append(n)
    assert c.values().tolist() == names and list(c) == names and c[-1] == "8PSK 3/5"


def test_recorder_memory_stays_flat_and_the_tables_are_whole(tmp_path):
    rec = RunRecorder(str(tmp_path / "rec"))
    n = 3 * 2**15
    for i in range(n):
        rec.add("tx.frames", {"offset": i, "symbols": 33282, "t_s": i / 10, "modcod": "QPSK 1/2"})
        f = {"offset": i, "modcod": 11, "ok": i % 1000 != 0, "name": "QPSK 1/2"}
        rec.add("rx.frames", {"frames": [f]})
    tx, rx = rec.arrays("tx"), rec.arrays("rx")
    assert np.array_equal(tx["offset"], np.arange(n)) and tx["symbols"].sum() == 33282 * n
    assert rec.tx_modcod.values().size == n and rx["ok"].sum() == n - ((n - 1) // 1000 + 1)
    assert rec.frames_failed == (n - 1) // 1000 + 1
    assert all(c._buf.size <= 2**15 for c in rec.tx.values())
    assert rec.progress(type("TB", (), {"start_s": 0, "duration_s": 0})(), 1.0, 1.0)["symbols"] == 33282 * n
    rec.close()
    assert not (tmp_path / "rec").exists()
