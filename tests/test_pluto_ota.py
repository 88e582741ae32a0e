"""flowgraphs/graphs/pluto_ota.toml end to end against a virtual Pluto, with recording and replay."""

import tomllib

import pytest

from flowgraphs.graph import GRAPHS_DIR, Runner, check_graph, load_graph
from flowgraphs.stage import ConfigError
from hw.capture_decode import replay_decode
from hw.captures import open_capture
from hw.virtual_pluto import VirtualPluto


def test_pluto_ota_loads_and_checks_the_sample_rate():
    g = load_graph("pluto_ota")
    assert g.stages["radio"][0] == "radio" and g.stages["radio"][1]["uri"] == "ip:192.168.2.1"
    with pytest.raises(ConfigError, match=r"a Pluto runs at 521e3..61.44e6"):
        load_graph("pluto_ota", ["link.symbol_rate_hz=100e3"])
    with pytest.raises(ConfigError, match="rx_pace"):
        load_graph("pluto_ota", ["radio.rx_pace=fast"])


def _ota_table(uri: str, record_to: str) -> dict:
    t = tomllib.loads((GRAPHS_DIR / "pluto_ota.toml").read_text())
    t["stages"]["radio"].update(uri=uri, rx_pace="tx")  # a virtual Pluto that runs as fast as it is read
    t["stages"]["src"]["total_bytes"] = 20_000
    t["stages"]["rec"] = {"type": "record", "path": record_to}
    t["connect"].append({"from": "radio.rx", "to": "rec.iq"})
    return t


def test_pluto_ota_end_to_end_through_a_virtual_pluto_then_replayed(tmp_path):
    rec = str(tmp_path / "ota")
    with VirtualPluto(port=0) as vp:
        res = Runner(check_graph(_ota_table(vp.uri, rec), "pluto_ota (test)"), mode="thread").run()
        served = vp.server.connections
    assert res.status == 0 and res.reason == "done"
    assert served >= 3  # pyadi-iio's context, its RX and TX buffers: libiio's own connections
    sink = res.summary("sink")
    assert sink["delivered_bytes"] == 20_000 and sink["verified"] and sink["corrupt"] == 0
    radio = res.summary("radio")
    assert radio["tx_underflows"] == radio["rx_overflows"] == 0 and radio["tx_clipped"] == 0
    assert radio["rx_samples"] > 20_000 * 8 / 2 * 2  # QPSK 1/2 at 2 samples/symbol, plus dummy frames
    rx = res.summary("rx")
    assert rx["data_frames_failed"] == 0 and rx["by_modcod"]

    # the recording of the radio's RX stream carries the receiver's frames and decodes again
    info = open_capture(rec).info
    assert info.sample_rate_hz == 600e3 and info.center_freq_hz == 2.4e9
    assert info.global_fields["marslink:dvbs2"]["frame"] == "short"
    assert sum(1 for f in info.frames if f.modcod != "dummy" and f.crc_ok) == sum(
        c[0] for c in rx["by_modcod"].values()
    )
    again = replay_decode(rec)
    data_frames = [r for r in again.reports if r.modcod > 0]
    assert data_frames and all(r.ok for r in data_frames)
    assert len(data_frames) == sum(c[0] for c in rx["by_modcod"].values())

    # and the replay stage plays it into a receiver: the same user bytes arrive
    t = {
        "graph": {"name": "replay"},
        "link": tomllib.loads((GRAPHS_DIR / "pluto_ota.toml").read_text())["link"],
        "run": {"until": ["play"]},
        "stages": {"play": {"type": "replay", "path": rec}, "rx": {"type": "rx"},
                   "sink": {"type": "sink", "verify": False, "output": str(tmp_path / "out.bin")}},
        "connect": [{"from": "play.iq", "to": "rx.iq"}, {"from": "rx.frames", "to": "sink.frames"}],
    }  # fmt: skip
    res2 = Runner(check_graph(t, "replay (test)"), mode="thread").run()
    assert res2.status == 0
    assert res2.summary("sink")["delivered_bytes"] == 20_000
    assert res2.summary("play")["samples"] == info.sample_count


def test_replay_stage_refuses_a_recording_at_another_rate(tmp_path):
    import numpy as np

    from hw.captures import write_capture

    write_capture(tmp_path / "r", np.zeros(100, np.complex64), 1e6, 2.4e9)  # the graph runs at 600 kS/s
    t = tomllib.loads((GRAPHS_DIR / "pluto_ota.toml").read_text())
    table = {
        "graph": {"name": "r"},
        "link": t["link"],
        "stages": {"play": {"type": "replay", "path": str(tmp_path / "r")}},
        "connect": [{"from": "play.iq", "endpoint": "tcp://127.0.0.1:5999"}],
    }
    with pytest.raises(
        ConfigError, match="recording is at 1e\\+06 samples/s but the flowgraph runs at 600000"
    ):
        check_graph(table, "t")
    table["stages"]["play"]["path"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="metadata file missing"):
        check_graph(table, "t")
