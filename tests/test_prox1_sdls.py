"""SDLS frame protection over Proximity-1: the prox1_eva flowgraph with
``--set security.sdls_key_file=KEY`` protects every user frame in the prox1_tx stage
(AES-256-GCM, 26 bytes per frame) and the sink verifies every one before delivering it.
"""

from __future__ import annotations

import pytest

from flowgraphs import keys
from flowgraphs.graph import Runner, load_graph
from flowgraphs.stage import ConfigError


def test_prox1_pass_with_sdls_delivers_every_byte_verified(tmp_path):
    """A shortened eva_uhf pass (new data for 200 scenario seconds at 24 kbit/s, then up to 400 s
    to resend lost frames) with SDLS on:
    every byte offered arrives in order and verified against the source, every delivered frame
    passed authentication at the sink, none was refused, and the tx protected at least as many
    frames as the sink accepted (retransmissions are protected again, under new sequence
    numbers)."""
    key_file = keys.create_sdls_key("prox1", tmp_path)
    g = load_graph(
        "prox1_eva",
        [
            f"security.sdls_key_file={key_file}",
            "link.duration_s=200.0",
            "tx.drain_s=400.0",  # a frame lost near the end is sent again (rto_min_s 80)
            "adr.max_rate=64000",  # the short pass ends before the top; the full pass test climbs
            "tx.feedback_timeout_s=5.0",  # wall s: before the first lock no feedback comes
            "run.wall_limit_s=120.0",
        ],
    )
    res = Runner(g, mode="thread").run()
    assert res.status == 0 and res.reason == "done"
    tx, sink = res.summary("tx"), res.summary("sink")
    assert tx["bytes_offered"] > 4_000
    assert sink["delivered_bytes"] == tx["bytes_offered"] == tx["bytes_acked"], (tx, sink, res.summary("rx"))
    assert tx["held_bytes"] == 0 and sink["held_bytes"] == 0
    assert sink["corrupt"] == 0 and sink["offset_errors"] == 0 and sink["verified"]
    sd, ts = sink["sdls"], tx["sdls"]
    assert sd["rejected"] == 0 and sd["unflagged"] == 0, sd
    assert sd["frames_ok"] >= sink["delivered_frames"] > 0, (sd, sink)
    assert ts["overhead_bytes_per_frame"] == 26
    assert ts["frames_protected"] >= sd["frames_ok"] and ts["next_seq"] == ts["frames_protected"] + 1, ts
    assert (tmp_path / "prox1.sdls.txseq").stat().st_mode & 0o077 == 0


def test_prox1_sdls_payload_must_leave_room_for_the_overhead(tmp_path):
    """2015 payload bytes fill a Version-3 data field: with SDLS's 26 bytes at most 1989."""
    from types import SimpleNamespace

    from flowgraphs.stage import StageSpec
    from flowgraphs.stages.prox1_tx import Prox1Tx

    key_file = keys.create_sdls_key("big", tmp_path)
    spec = StageSpec(name="tx", type="prox1_tx", security={"sdls_key_file": str(key_file)})
    stage = SimpleNamespace(spec=spec, p=SimpleNamespace(payload_bytes=1989))
    Prox1Tx._setup_sdls(stage)
    assert stage.protector is not None and stage.protector.overhead == 26
    stage.p.payload_bytes = 1990
    with pytest.raises(ConfigError, match="payload_bytes.*1989"):
        Prox1Tx._setup_sdls(stage)
    spec = StageSpec(name="tx", type="prox1_tx", security={})
    stage = SimpleNamespace(spec=spec, p=SimpleNamespace(payload_bytes=2015))
    Prox1Tx._setup_sdls(stage)
    assert stage.protector is None
