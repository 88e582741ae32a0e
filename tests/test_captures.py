"""SigMF recordings: the shipped captures decode to their payloads; writing, reading, importing, errors."""

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from flowgraphs.cli import main as marslink
from hw.capture_decode import frame_table, link_fields, replay_decode
from hw.captures import (
    CaptureError,
    CaptureWriter,
    FrameAnnotation,
    capture_paths,
    import_raw,
    open_capture,
    write_capture,
)
from modem.dvbs2.link import LinkConfig, Transmitter

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def _generators():
    spec = importlib.util.spec_from_file_location("make_captures", CAPTURES / "make_captures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_captures_are_small():
    sizes = [p.stat().st_size for p in CAPTURES.glob("*.sigmf-*")]
    assert len(sizes) == 4 and sum(sizes) < 5_000_000


def test_grdtv_capture_decodes_to_the_transport_stream_sent():
    gen = _generators()
    cap = open_capture(CAPTURES / "grdtv_8psk35_short")
    info = cap.info
    assert info.datatype == "ci16_le" and info.sample_rate_hz == 2e6 and info.center_freq_hz == 2.4e9
    assert "gr-dtv" in info.hardware
    result = replay_decode(cap)
    sent = gen.ts_payload(gen.GRDTV["packets"], gen.GRDTV["seed"])
    assert len(result.data) == info.global_fields["marslink:payload_bytes"] == 75 * 188
    assert result.data == sent[: len(result.data)]
    assert hashlib.sha256(result.data).hexdigest() == info.global_fields["marslink:payload_sha256"]
    assert [r.name for r in result.reports] == ["8PSK 3/5"] * 12 and result.frames_lost == 0
    # the channel was AWGN at Es/N0 12 dB: the receiver's estimates agree
    assert abs(np.mean([r.esn0_db for r in result.reports]) - 12.0) < 0.5
    assert [(f.start, f.modcod, f.crc_ok) for f in info.frames] == [
        (r.start * 2, r.name, True) for r in result.reports
    ]


def test_acm_storm_pass_decodes_and_follows_the_channel():
    gen = _generators()
    cap = open_capture(CAPTURES / "acm_storm_pass.sigmf-meta")
    result = replay_decode(cap)
    sent = gen.gs_payload(200_000, gen.ACM["seed"])
    assert len(result.data) == cap.info.global_fields["marslink:payload_bytes"] > 30_000
    assert result.data == sent[: len(result.data)]
    data = [r for r in result.reports if r.modcod > 0]
    assert data and all(r.ok for r in data)  # every data frame delivered
    assert len({r.name for r in data}) >= 8  # ACM across the ladder: QPSK up to 32APSK and down
    # the relay sets at the end: frames sent after that are lost, reported, and only those
    truth = {a["core:sample_start"]: a.get("marslink:true_esn0_db") for a in cap.info.annotations}
    bad = [r for r in result.reports if not r.ok]
    assert bad and all(r.start > data[-1].start and truth[r.start * 2] is None for r in bad)
    err = [r.esn0_db - truth[r.start * 2] for r in data]
    assert abs(np.mean(err)) < 0.3 and np.max(np.abs(err)) < 1.5
    table = frame_table(result)
    assert "32APSK" in table and f"{len(result.reports)} frames: {len(result.reports) - len(bad)} ok" in table


def _frame_rows(result):
    return [(r.index, r.start, r.name, r.ok, r.ldpc_iterations, f"{r.esn0_db:.4f}") for r in result.reports]


def test_replay_gives_the_same_frames_however_chunked_pipelined_or_warm():
    """The fast replay (long chunks, decoding in the receiver's background thread) and a receiver
    whose decoders are already built give exactly the frames of a plain one-chunk-at-a-time replay."""
    from hw.capture_decode import FAST_CHUNK, PACED_CHUNK, link_config
    from modem.dvbs2.link import Receiver

    cap = open_capture(CAPTURES / "acm_storm_pass.sigmf-meta")
    plain = replay_decode(cap, chunk=PACED_CHUNK // 2 + 123, pipeline=False)
    assert plain.frames_ok >= 30
    fast = replay_decode(cap)  # FAST_CHUNK, pipeline
    assert FAST_CHUNK > PACED_CHUNK and fast.samples == len(cap) == plain.samples
    assert fast.data == plain.data and _frame_rows(fast) == _frame_rows(plain)
    built = Receiver(link_config(cap), pipeline=True)
    replay_decode(cap, receiver=built)
    warm = Receiver(link_config(cap), pipeline=True)
    warm._decoders = built._decoders  # a receiver that decoded these codes before
    again = replay_decode(cap, receiver=warm, chunk=1 << 20)
    assert again.data == plain.data and _frame_rows(again) == _frame_rows(plain)


@pytest.mark.parametrize("datatype", ["cf32_le", "ci16_le"])
def test_write_read_round_trip(tmp_path, datatype):
    rng = np.random.default_rng(5)
    x = ((rng.uniform(-1, 1, 5000) + 1j * rng.uniform(-1, 1, 5000)) * 0.9).astype(np.complex64)
    frames = [
        FrameAnnotation(100, 2000, "QPSK 1/2", True, 4.25, 0),
        FrameAnnotation(2100, 900, "lost", False),
    ]
    info = write_capture(
        tmp_path / "rt",
        x,
        1.5e6,
        435e6,
        datatype=datatype,
        hardware="hw",
        description="d",
        frames=frames,
        extra={"dvbs2": {"frame": "short"}},
    )
    assert info.sample_count == 5000 and info.sample_rate_hz == 1.5e6 and info.center_freq_hz == 435e6
    assert info.frames == frames and info.global_fields["marslink:dvbs2"] == {"frame": "short"}
    got = open_capture(tmp_path / "rt.sigmf-data").read()
    if datatype == "cf32_le":
        np.testing.assert_array_equal(got, x)
    else:
        assert np.max(np.abs(got.real - x.real)) <= 0.5 / 32768 + 1e-9
        assert np.max(np.abs(got.imag - x.imag)) <= 0.5 / 32768 + 1e-9
    meta = json.loads((tmp_path / "rt.sigmf-meta").read_text())
    assert meta["global"]["core:datatype"] == datatype and len(meta["global"]["core:sha512"]) == 128
    assert meta["captures"][0]["core:frequency"] == 435e6 and "core:datetime" in meta["captures"][0]


def test_ci16_counts_clipping_and_writes_refuse_nan(tmp_path):
    with CaptureWriter(tmp_path / "c", 1e6, 1e9, datatype="ci16_le") as w:
        w.write(np.array([0.5, 1.5, -2j, 0.1], dtype=np.complex64))
        with pytest.raises(ValueError, match=r"finite; got \(nan\+0j\) at sample 1"):
            w.write(np.array([0, np.nan, 0]))
    assert w.clipped == 2 and open_capture(tmp_path / "c").info.sample_count == 4
    with pytest.raises(FileExistsError, match="c.sigmf-meta exists"):
        CaptureWriter(tmp_path / "c", 1e6, 1e9)


def test_chunks_and_paced_replay(tmp_path):
    x = np.arange(10_000).astype(np.complex64)
    cap = open_capture(write_capture(tmp_path / "p", x, 1e4, 1e9).meta_path)
    parts = list(cap.chunks(3000))
    assert [p[0] for p in parts] == [0, 3000, 6000, 9000]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), x)
    now = [0.0]
    waits = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    list(cap.replay(2500, realtime=True, speed=2.0, clock=lambda: now[0], sleep=sleep))
    assert waits == pytest.approx([0.125, 0.125, 0.125])  # 2500 samples at 2 x 10 kS/s


def _corrupt(tmp_path, name="bad"):
    write_capture(tmp_path / name, np.ones(100, dtype=np.complex64), 1e6, 1e9)
    return capture_paths(tmp_path / name)


def test_errors_name_the_file_and_the_field(tmp_path):
    meta, data = _corrupt(tmp_path)
    with pytest.raises(CaptureError, match="nothing.sigmf-meta: metadata file missing"):
        open_capture(tmp_path / "nothing")

    data.rename(tmp_path / "moved")
    with pytest.raises(CaptureError, match="bad.sigmf-data: data file missing"):
        open_capture(meta)
    (tmp_path / "moved").rename(data)

    raw = data.read_bytes()
    data.write_bytes(raw[:-3])
    with pytest.raises(CaptureError, match=r"bad.sigmf-data: truncated: 797 bytes .* 8-byte cf32_le samples"):
        open_capture(meta)
    data.write_bytes(raw[:-80])
    with pytest.raises(
        CaptureError, match="holds 90 samples but marslink:sample_count .* says 100 .truncated"
    ):
        open_capture(meta)
    data.write_bytes(raw)

    flipped = bytearray(raw)
    flipped[40] ^= 1
    data.write_bytes(bytes(flipped))
    with pytest.raises(CaptureError, match="bad.sigmf-data: checksum mismatch.*core:sha512"):
        open_capture(meta)
    assert open_capture(meta, verify=False).info.sample_count == 100
    data.write_bytes(raw)

    doc = json.loads(meta.read_text())
    doc["global"]["core:datatype"] = "ci12_le"
    meta.write_text(json.dumps(doc))
    with pytest.raises(CaptureError, match="bad.sigmf-meta: (core:datatype 'ci12_le'|not valid SigMF)"):
        open_capture(meta)
    doc["global"]["core:datatype"] = "rf32_le"
    meta.write_text(json.dumps(doc))
    with pytest.raises(CaptureError, match="core:datatype 'rf32_le' is not a complex type"):
        open_capture(meta)
    doc["global"]["core:datatype"] = "cf32_le"
    del doc["global"]["core:sample_rate"]
    meta.write_text(json.dumps(doc))
    with pytest.raises(CaptureError, match="bad.sigmf-meta: core:sample_rate missing"):
        open_capture(meta)


def test_nan_samples_in_a_recording_name_the_sample(tmp_path):
    x = np.ones(1000, dtype=np.complex64)
    x[777] = np.nan + 0j
    meta, data = capture_paths(tmp_path / "n")
    with CaptureWriter(tmp_path / "n", 1e6, 1e9) as w:
        w._append(x, x.size)  # bypass the writer's own check: a foreign file with a NaN
    cap = open_capture(meta)
    with pytest.raises(CaptureError, match=r"n.sigmf-data: sample 777 is \(?nan"):
        cap.read()
    np.testing.assert_array_equal(cap.read(0, 700), x[:700])


def test_import_raw_files(tmp_path):
    words = np.array([[100, -200], [2047, -2048], [0, 5]], dtype="<i2")
    words.tofile(tmp_path / "rx.cs16")
    info = import_raw(tmp_path / "rx.cs16", tmp_path / "imp", 2e6, 435e6)
    assert info.datatype == "ci16_le" and info.sample_count == 3 and info.center_freq_hz == 435e6
    np.testing.assert_array_equal(
        open_capture(info.meta_path).read(), (words[:, 0] + 1j * words[:, 1]) / 2048
    )
    info = import_raw(tmp_path / "rx.cs16", tmp_path / "imp3", 2e6, 435e6, full_scale=3000)
    assert info.datatype == "cf32_le"
    np.testing.assert_allclose(
        open_capture(info.meta_path).read(), (words[:, 0] + 1j * words[:, 1]) / 3000, rtol=1e-6
    )

    z = (np.arange(6) - 2j).astype(np.complex64)
    z.tofile(tmp_path / "a.cfile")
    info = import_raw(tmp_path / "a.cfile", tmp_path / "imp2", 1e6, 1e9)
    np.testing.assert_array_equal(open_capture(info.meta_path).read(), z)

    (tmp_path / "x.bin").write_bytes(b"\0" * 16)
    with pytest.raises(CaptureError, match="x.bin: unknown raw format '.bin'"):
        import_raw(tmp_path / "x.bin", tmp_path / "i4", 1e6, 1e9)
    (tmp_path / "t.cs16").write_bytes(b"\0" * 6)
    with pytest.raises(CaptureError, match="t.cs16: truncated: 6 bytes"):
        import_raw(tmp_path / "t.cs16", tmp_path / "i5", 1e6, 1e9)
    z[4] = np.nan
    z.tofile(tmp_path / "nan.cf32")
    with pytest.raises(CaptureError, match="nan.cf32: sample 4 is"):
        import_raw(tmp_path / "nan.cf32", tmp_path / "i6", 1e6, 1e9)
    assert not (tmp_path / "i6.sigmf-data").exists()  # nothing half-written is left


def test_replay_and_record_commands(tmp_path, capsys):
    cfg = LinkConfig(frame="short", pilots=False, sps=4)
    payload = bytes(range(256)) * 4
    iq = Transmitter(cfg).transmit(payload, "QPSK 2/3")
    write_capture(tmp_path / "s", iq, 4e6, 2.4e9, extra={"dvbs2": link_fields(cfg)})
    assert marslink(["replay", str(tmp_path / "s"), "--out", str(tmp_path / "out.bin")]) == 0
    out = capsys.readouterr().out
    assert "QPSK 2/3" in out and "1 frames: 1 ok, 0 lost" in out
    assert (tmp_path / "out.bin").read_bytes() == payload
    # wrong link settings on the command line: nothing decodes, and the exit status says so
    assert marslink(["replay", str(tmp_path / "s"), "--sps", "2"]) == 1
    assert marslink(["replay", str(tmp_path / "missing")]) == 2
    assert "metadata file missing" in capsys.readouterr().err

    (np.arange(8, dtype="<i2")).tofile(tmp_path / "r.cs16")
    assert (
        marslink(["record", str(tmp_path / "imp"), "--import", str(tmp_path / "r.cs16"), "--rate", "1e6"])
        == 0
    )
    assert open_capture(tmp_path / "imp").info.center_freq_hz == 2.4e9


def test_record_from_a_virtual_pluto(tmp_path, capsys):
    from hw.virtual_pluto import VirtualPluto

    with VirtualPluto(port=0) as vp:
        assert (
            marslink(
                [
                    "record",
                    str(tmp_path / "rec"),
                    "--uri",
                    vp.uri,
                    "--rate",
                    "1e6",
                    "--seconds",
                    "0.05",
                    "--link",
                    "uhf",
                    "--gain",
                    "30",
                ]
            )
            == 0
        )
    info = open_capture(tmp_path / "rec").info
    assert info.sample_count == 50_000 and info.center_freq_hz == 435e6 and info.datatype == "ci16_le"
    assert "ADALM-PLUTO" in info.hardware and "recorded 50000 samples" in capsys.readouterr().out


def test_plot_capture_writes_four_pngs(tmp_path):
    from hw.capture_plots import plot_capture

    cfg = LinkConfig(frame="short")
    iq = Transmitter(cfg).transmit(b"plots" * 200, "8PSK 2/3")
    rng = np.random.default_rng(2)
    noisy = iq + (rng.normal(size=iq.size) + 1j * rng.normal(size=iq.size)) * 0.05
    write_capture(tmp_path / "pl", noisy.astype(np.complex64), 2e6, 2.4e9, extra={"dvbs2": link_fields(cfg)})
    paths = plot_capture(tmp_path / "pl", tmp_path / "png")
    assert [p.name for p in paths] == [
        "pl_spectrum.png",
        "pl_waterfall.png",
        "pl_constellation.png",
        "pl_eye.png",
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
