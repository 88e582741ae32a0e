"""DVB-S2 receiver from raw IQ (Receiver.push_samples, modem/sync): the acceptance of issue 4.

Impairments come from modem.channel (ClockOffset, CarrierOffset with a Doppler ramp, the "tcxo"
PhaseNoise preset, Awgn); Es/N0 is per symbol after the matched filter (the channel's
convention with the transmitter's sample power). Every stream starts at a random point inside a
PLFRAME (the receiver has to find the first header on its own) and every check is on the bytes
delivered and on the per-frame reports. Fixed seeds. The full FER curves are in
``benchmarks/rx_sync_curves.py``; here a few frames per case (each must decode).

Independent transmitter: GNU Radio's gr-dtv DVB-S2 chain with GNU Radio's own RRC filter at 2
samples per symbol, run by /usr/bin/python3 (tests/gr/grdtv_dvbs2_iq.py).
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from modem.channel import Awgn, CarrierOffset, Chain, ClockOffset, PhaseNoise
from modem.dvbs2.link import LinkConfig, Receiver, Transmitter
from modem.dvbs2.modcod import MODCODS, frame_spec, modcod

FS = 5e6  # sample rate the channel's phase noise and Doppler rate refer to, samples/s
SPS = 2
GR_PYTHON = "/usr/bin/python3"
GR_SCRIPT = Path(__file__).resolve().parent / "gr" / "grdtv_dvbs2_iq.py"


def thresholds() -> dict[tuple[int, str], float]:
    """Measured ideal-sync Es/N0 (dB) at FER 1e-2, from modem/dvbs2/data/measured_thresholds.csv."""
    path = Path(__file__).resolve().parents[1] / "modem" / "dvbs2" / "data" / "measured_thresholds.csv"
    rows = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return {(int(r["pls_modcod"]), r["frame"]): float(r["esn0_fer1e2_db"]) for r in csv.DictReader(rows)}


THRESHOLDS = thresholds()


def impaired(iq, esn0_db, seed, cfo=0.1, ppm=100.0, rate_hz_s=0.0, phase_noise="tcxo", start=None):
    """iq through clock offset, carrier offset (cfo: fraction of the symbol rate), phase noise and
    AWGN; cut at a random point of the first ``start`` samples (the receiver starts there)."""
    rng = np.random.default_rng(seed)
    blocks = [
        ClockOffset(ppm, sample_rate_hz=FS, delay_samples=rng.uniform(0, 4)),
        CarrierOffset(cfo * FS / SPS, FS, rate_hz_per_s=rate_hz_s, phase_rad=rng.uniform(0, 2 * np.pi)),
    ]
    if phase_noise:
        blocks.append(PhaseNoise.preset(phase_noise, FS, seed=seed + 1))
    blocks.append(Awgn(esn0_db, SPS, float(np.mean(np.abs(iq) ** 2)), seed=seed + 2))
    ch = Chain(*blocks)
    y = np.concatenate([ch(iq), ch.flush()])
    cut = int(rng.integers(0, start)) if start else 0
    return y[cut:]


def stream(cfg, modcods, seed, lead=True):
    """Frames of ``modcods`` (the first one only partly received when ``lead``) as shaped IQ.

    Returns (iq, payload bytes of the complete frames, number of samples of the lead frame)."""
    rng = np.random.default_rng(seed)
    caps = [frame_spec(m, cfg.frame, cfg.pilots).data_field_bits // 8 for m in modcods]
    data = rng.bytes(sum(caps))
    tx = Transmitter(cfg)
    tx.push(data)
    tx.flush()
    sym = tx.frames(modcods)
    iq = np.concatenate([tx.modulate(sym), tx.modulate_flush()])
    return (
        iq,
        data[caps[0] :] if lead else data,
        frame_spec(modcods[0], cfg.frame, cfg.pilots).plframe_symbols * SPS,
    )


def receive(cfg, y, chunks=None, **kw):
    rx = Receiver(cfg, **kw)
    out, reps = [], []
    for part in [y] if chunks is None else np.split(y, chunks):
        b, r = rx.push_samples(part)
        out.append(b)
        reps += r
    out.append(rx.flush())
    return b"".join(out), reps + rx.flush_reports, rx


def check_stream_tail(got: bytes, sent: bytes):
    """The lead frame was cut: its bytes are missing; everything after it must be exact."""
    assert len(got) >= len(sent) and got.endswith(sent), (len(got), len(sent))


# ---------------------------------------------------------------------------------------------
# every MODCOD at the ideal-sync threshold + 0.3 dB


@pytest.mark.parametrize("mc", [m.index for m in MODCODS], ids=[m.name for m in MODCODS])
def test_every_modcod_decodes_at_threshold_plus_0p3_db_with_impairments(mc):
    """Normal frames with pilots at the measured ideal-sync FER-1e-2 Es/N0 + 0.3 dB, carrier
    offset 10 % of the symbol rate, clock offset 100 ppm, TCXO phase noise, a start at a random
    point of a frame: the 3 complete frames after it all decode (FER at these points over
    hundreds of frames: benchmarks/rx_sync_curves.py)."""
    cfg = LinkConfig(frame="normal", pilots=True)
    iq, sent, lead = stream(cfg, [mc] * 4, seed=100 + mc)
    y = impaired(iq, THRESHOLDS[(mc, "normal")] + 0.3, seed=200 + mc, start=lead - 2000)
    got, reps, rx = receive(cfg, y, batch_frames=8)
    assert [r.modcod for r in reps] == [mc] * 3 and all(r.ok for r in reps), [
        (r.name, r.detail) for r in reps
    ]
    check_stream_tail(got, sent)
    assert all(r.cfo_norm == pytest.approx(0.1, abs=2e-4) for r in reps)
    assert all(r.clock_offset_ppm == pytest.approx(100, abs=30) for r in reps)
    assert rx.stats.locks == 1 and rx.stats.headers_lost == 0


def test_qpsk_1_4_locks_and_decodes_at_minus_2_35_db():
    """The standard's QPSK 1/4 threshold (EN 302 307-1 Table 13), CFO 10 %, 100 ppm, TCXO."""
    cfg = LinkConfig(frame="normal", pilots=True)
    iq, sent, lead = stream(cfg, [1] * 4, seed=11)
    got, reps, rx = receive(cfg, impaired(iq, -2.35, seed=12, start=lead), np.arange(1, 40) * 10_000)
    assert [r.name for r in reps] == ["QPSK 1/4"] * 3 and all(r.ok for r in reps)
    check_stream_tail(got, sent)
    assert all(abs(r.esn0_db + 2.35) < 0.3 for r in reps)


def test_acm_every_frame_a_new_modcod_across_all_28_at_threshold_plus_0p5_db():
    """All 28 MODCODs in a shuffled order, one frame each, each at its own threshold + 0.5 dB
    (the AWGN level changes at every frame boundary), CFO 10 %, 100 ppm, TCXO: every frame
    decodes, the bytes come out exactly, the reports follow the MODCOD sequence."""
    rng = np.random.default_rng(21)
    order = [int(i) for i in rng.permutation(np.arange(1, 29))]
    modcods = [order[-1], *order]  # a lead frame the receiver only hears the end of
    cfg = LinkConfig(frame="normal", pilots=True)
    caps = [frame_spec(m, "normal", True).data_field_bits // 8 for m in modcods]
    data = rng.bytes(sum(caps))
    tx = Transmitter(cfg)
    tx.push(data)
    tx.flush()
    pre = Chain(ClockOffset(100, sample_rate_hz=FS, delay_samples=1.3), CarrierOffset(0.1 * FS / SPS, FS),
                PhaseNoise.preset("tcxo", FS, seed=22))  # fmt: skip
    awgn = Awgn(0.0, SPS, 0.5, seed=23)
    parts = []
    for m in modcods:
        awgn.esn0_db = THRESHOLDS[(m, "normal")] + 0.5
        parts.append(awgn(pre(tx.modulate(tx.frames([m])))))
    awgn.esn0_db = 10.0
    parts.append(awgn(np.concatenate([pre(tx.modulate_flush()), pre.flush()])))
    y = np.concatenate(parts)[frame_spec(modcods[0], "normal", True).plframe_symbols * SPS - 3000 :]
    got, reps, _ = receive(cfg, y, batch_frames=32)
    assert [r.modcod for r in reps] == order and all(r.ok for r in reps), [
        (r.name, r.detail) for r in reps if not r.ok
    ]
    check_stream_tail(got, data[caps[0] :])


# ---------------------------------------------------------------------------------------------
# GNU Radio's transmitter


GR_CASES = [
    (name, frame)
    for frame in ("normal", "short")
    for name in ("QPSK 1/2", "8PSK 3/5", "16APSK 3/4", "32APSK 4/5")
]


@pytest.fixture(scope="module")
def grdtv_iq(tmp_path_factory):
    """IQ of gr-dtv + GNU Radio's RRC for the 8 cases, 3 PLFRAMEs each, and the TS packets sent."""
    tmp = tmp_path_factory.mktemp("grdtv_iq")
    rng = np.random.default_rng(31)
    cases, packets = [], []
    for i, (name, frame) in enumerate(GR_CASES):
        m = modcod(name)
        n = 3 * frame_spec(m, frame, True).data_field_bits // (188 * 8) + 2
        p = rng.integers(0, 256, (n, 188), dtype=np.uint8)
        p[:, 0] = 0x47
        (tmp / f"{i}.ts").write_bytes(p.tobytes())
        packets.append(p)
        files = {"input": str(tmp / f"{i}.ts"), "output": str(tmp / f"{i}.cf32")}
        cases.append(
            {**files, "frames": 3, "frame": frame, "rate": m.rate, "modulation": m.modulation, "pilots": "on"}
        )
    (tmp / "cases.json").write_text(json.dumps(cases))
    try:
        res = subprocess.run([GR_PYTHON, str(GR_SCRIPT), "--batch", str(tmp / "cases.json")],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    except FileNotFoundError:
        pytest.fail(f"{GR_PYTHON} not found: the gr-dtv tests need GNU Radio 3.10 (./install.sh --all)")
    assert res.returncode == 0, (
        f"gr-dtv failed (./install.sh --all installs GNU Radio):\n{res.stderr[-2000:]}"
    )
    return [np.fromfile(tmp / f"{i}.cf32", np.complex64) for i in range(len(GR_CASES))], packets


@pytest.mark.parametrize("case", range(len(GR_CASES)), ids=[f"{n} {f}" for n, f in GR_CASES])
def test_grdtv_iq_with_cfo_timing_offset_and_noise_decodes_to_the_ts_packets_sent(grdtv_iq, case):
    """gr-dtv's frames (its BBHEADER is TS mode), shaped by GNU Radio, then 1 234 samples of
    noise before them, a carrier offset of -7 % of the symbol rate, a clock offset of -150 ppm
    with a fractional delay and AWGN at the ideal threshold + 1 dB: the receiver returns exactly
    the TS packets of the frames, in order (the last, partly filled one is truncated by gr-dtv's
    frame count, so a prefix)."""
    iqs, packets = grdtv_iq
    name, frame = GR_CASES[case]
    m = modcod(name)
    iq = np.concatenate([np.zeros(1234, np.complex64), iqs[case]])
    p = float(np.mean(np.abs(iqs[case]) ** 2))
    ch = Chain(ClockOffset(-150.0, delay_samples=0.37), CarrierOffset(-0.07 / SPS, 1.0, phase_rad=1.0),
               Awgn(THRESHOLDS[(m.index, frame)] + 1.0, SPS, p, seed=40 + case))  # fmt: skip
    y = np.concatenate([ch(iq), ch.flush()])
    got, reps, rx = receive(LinkConfig(frame=frame, pilots=True, stream="ts"), y)
    assert [r.name for r in reps] == [name] * 3 and all(r.ok for r in reps), [
        (r.name, r.detail) for r in reps
    ]
    sent = packets[case]
    rows = np.frombuffer(got, np.uint8).reshape(-1, 188)
    cap = 3 * frame_spec(m, frame, True).data_field_bits // (188 * 8)  # whole packets in 3 frames
    assert cap - 1 <= rows.shape[0] <= cap + 1 and np.array_equal(rows, sent[: rows.shape[0]])


# ---------------------------------------------------------------------------------------------
# what must not produce frames


def test_noise_alone_gives_no_frame_over_a_million_symbols():
    """False lock: 2.2 million samples (1.1 million symbols) of white noise: no report at all, no
    lock. (Rates per stage: tests/test_sync_plheader.py; the long run: benchmarks/rx_sync_curves.py.)"""
    cfg = LinkConfig()
    rng = np.random.default_rng(51)
    rx = Receiver(cfg)
    reps = []
    for _ in range(11):
        x = (rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)).astype(np.complex64)
        reps += rx.push_samples(x * 0.3)[1]
    assert rx.flush() == b"" and reps == [] and rx.stats.locks == 0 and rx.flush_reports == []


def test_cw_tone_with_and_without_noise_gives_no_frame():
    cfg = LinkConfig()
    n = np.arange(400_000)
    for f, snr in ((0.013, None), (-0.21, 10.0), (0.0, None)):
        x = np.exp(2j * np.pi * f * n).astype(np.complex64)
        if snr is not None:
            x = Awgn(snr, 1, 1.0, seed=52)(x)
        got, reps, rx = receive(cfg, x, np.arange(1, 8) * 50_000)
        assert got == b"" and reps == [] and rx.stats.locks == 0


def test_truncated_frame_is_reported_lost_at_flush():
    """Two frames, the stream stops in the middle of the second: the first decodes; flush records
    the second as lost (the deframer's event), and nothing crashes."""
    cfg = LinkConfig(frame="short")
    iq, sent, _ = stream(cfg, ["QPSK 1/2", "QPSK 1/2"], seed=53, lead=False)
    y = impaired(iq, 6.0, seed=54)[: int(0.75 * iq.size)]
    got, reps, rx = receive(cfg, y)
    cap = frame_spec("QPSK 1/2", "short", True).data_field_bits // 8
    assert [r.ok for r in reps] == [True] and got == sent[:cap]
    assert [e.kind for e in rx.deframer.events] == ["frame_lost"]
    assert rx.stats.samples_dropped > 0


def test_a_lone_apsk_frame_at_the_end_of_the_stream_decodes_at_flush():
    """A first 16APSK frame waits for the next frame's header and pilots (its frequency alias):
    with no next frame it comes out of flush, decided on its own data, not lost."""
    cfg = LinkConfig()
    iq, sent, lead = stream(cfg, ["16APSK 3/4", "16APSK 3/4"], seed=68)
    y = impaired(iq, 13.0, seed=69, start=lead)
    rx = Receiver(cfg)
    data, reps = rx.push_samples(y)
    assert data == b"" and reps == [] and rx.synchronizer.pending_start_sample() is not None
    data += rx.flush()
    assert [r.name for r in rx.flush_reports] == ["16APSK 3/4"] and rx.flush_reports[0].ok
    assert rx.deframer.frames_lost == 0
    check_stream_tail(data, sent)


def test_non_finite_samples_raise_naming_the_stream_index_and_nothing_is_kept():
    rx = Receiver(LinkConfig())
    rx.push_samples(np.zeros(1000, np.complex64))
    bad = np.zeros(50, np.complex64)
    bad[17] = np.inf
    with pytest.raises(
        ValueError, match=r"samples must be finite; got \(inf\+0j\) at index 17 \(stream sample 1017\)"
    ):
        rx.push_samples(bad)
    bad[17] = complex(0, np.nan)
    with pytest.raises(ValueError, match=r"at index 17 \(stream sample 1017\)"):
        rx.push_samples(bad)
    assert rx.stats.samples_in == 1000 and rx.synchronizer.samples_in == 1000
    with pytest.raises(RuntimeError, match=r"already takes samples"):
        rx.push(np.zeros(10, np.complex64))


# ---------------------------------------------------------------------------------------------
# streaming


def test_chunking_one_sample_to_millions_gives_identical_output():
    """Short frames, ACM (QPSK 1/2, 16APSK 3/4, 8PSK 3/5), impairments and a Doppler ramp: the
    same reports (every field, bit for bit) and bytes whether the samples come in one call, in
    single samples (the first 3000), or in random chunks."""
    cfg = LinkConfig(frame="short")
    iq, sent, lead = stream(cfg, ["QPSK 1/2", "QPSK 1/2", "16APSK 3/4", "8PSK 3/5", "QPSK 1/2"], seed=61)
    y = impaired(iq, 12.0, seed=62, rate_hz_s=2e4, start=lead)
    ref_out, ref_reps, _ = receive(cfg, y)
    assert len(ref_reps) == 4 and all(r.ok for r in ref_reps)
    check_stream_tail(ref_out, sent)
    rng = np.random.default_rng(63)
    cuts = [
        np.arange(1, 3001),  # one sample at a time, then the rest in one call
        np.cumsum(rng.integers(1, 20_000, 60)),
        np.sort(rng.integers(0, y.size, 7)),
    ]
    for c in cuts:
        out, reps, _ = receive(cfg, y, c[c < y.size])
        assert out == ref_out and reps == ref_reps


def test_pipelined_receiver_gives_the_serial_output_one_batch_later():
    """pipeline=True (decoding in a background thread): the same bytes and reports, bit for bit,
    as the serial receiver, over random chunks and batch sizes; each batch comes out with the call
    that completes the next one (or with flush)."""
    cfg = LinkConfig(frame="short")
    iq, sent, lead = stream(cfg, ["QPSK 1/2", "8PSK 3/5", "QPSK 1/2", "16APSK 3/4", "QPSK 1/2"], seed=64)
    y = impaired(iq, 12.0, seed=65, start=lead)
    ref_out, ref_reps, _ = receive(cfg, y)
    assert len(ref_reps) == 4 and all(r.ok for r in ref_reps)
    check_stream_tail(ref_out, sent)
    cuts = np.cumsum(np.random.default_rng(66).integers(1, 30_000, 40))
    cuts = cuts[cuts < y.size]
    for batch in (1, 2):
        serial, piped = Receiver(cfg, batch_frames=batch), Receiver(cfg, batch_frames=batch, pipeline=True)
        calls = {"serial": [], "piped": []}
        for part in np.split(y, cuts):
            for key, rx in (("serial", serial), ("piped", piped)):
                calls[key].append(rx.push_samples(part))
        for key, rx in (("serial", serial), ("piped", piped)):
            calls[key].append((rx.flush(), rx.flush_reports))
        out = {k: b"".join(c[0] for c in v) for k, v in calls.items()}
        reps = {k: [r for c in v for r in c[1]] for k, v in calls.items()}
        assert out["piped"] == out["serial"] == ref_out and reps["piped"] == reps["serial"] == ref_reps
        # each batch comes out with the serial receiver's next batch, the last one at flush
        busy = [i for i, c in enumerate(calls["serial"]) if c[1]]
        later = [i for i, c in enumerate(calls["piped"]) if c[1]]
        assert len(busy) >= 2 and later == sorted({*busy[1:], len(calls["piped"]) - 1}), (batch, busy, later)
        assert piped._executor is None  # flush stopped the background thread


@pytest.mark.parametrize("modulation, rate", [("QPSK", "1/2"), ("8PSK", "3/5"), ("8PSK", "3/4"),
                                             ("16APSK", "3/4"), ("32APSK", "9/10")])  # fmt: skip
def test_demap_deinterleave_equals_demapping_then_deinterleaving(modulation, rate):
    """The receiver's one-pass demapper (LLRs written in code word order) against the two steps."""
    from modem.dvbs2.mapping import BITS_PER_SYMBOL, deinterleave, demap_deinterleave, demap_maxlog

    rng = np.random.default_rng(67)
    n = 16200 // BITS_PER_SYMBOL[modulation]
    y = ((rng.standard_normal((3, n)) + 1j * rng.standard_normal((3, n))) / 1.5).astype(np.complex64)
    nv = np.array([0.1, 0.5, 2.0])
    ref = deinterleave(demap_maxlog(y, nv, modulation, rate), modulation, rate)
    got = demap_deinterleave(y, nv, modulation, rate)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and np.array_equal(got, ref)


# ---------------------------------------------------------------------------------------------
# without pilots, Es/N0, Doppler, frequency range


@pytest.mark.parametrize("name, margin", [("QPSK 1/4", 1.0), ("QPSK 1/2", 0.6), ("8PSK 3/5", 0.6),
                                          ("8PSK 9/10", 0.6)])  # fmt: skip
def test_pilotless_qpsk_and_8psk_decode_near_threshold(name, margin):
    """Frames without pilots: carrier phase from the M-th power of the data; every frame decodes
    at threshold + 0.6 dB (QPSK 1/4: + 1.0 dB, where finding a header without pilots in the
    acquisition at -1.8 dB is the limit); the loss curves are in benchmarks/rx_sync_curves.py."""
    m = modcod(name)
    cfg = LinkConfig(frame="normal", pilots=False)
    iq, sent, lead = stream(cfg, [m.index] * 4, seed=70 + m.index)
    y = impaired(iq, THRESHOLDS[(m.index, "normal")] + margin, seed=80 + m.index, start=lead - 2000)
    got, reps, _ = receive(cfg, y, batch_frames=8)
    assert [r.name for r in reps] == [name] * 3 and all(r.ok for r in reps)
    check_stream_tail(got, sent)


def test_esn0_estimate_within_0p3_db_from_minus_3_to_18_db():
    """Per frame, from the PLHEADER and pilots alone (what the demapper uses; reports of frames
    that did not decode carry it) and as reported after decoding: within 0.3 dB of the channel's
    Es/N0 for every frame, at -3, 3, 10 and 18 dB (normal frames, pilots; 3 frames each)."""
    cfg = LinkConfig(frame="normal", pilots=True)
    for esn0, name in ((-3.0, "QPSK 1/4"), (3.0, "QPSK 1/2"), (10.0, "8PSK 3/4"), (18.0, "32APSK 9/10")):
        m = modcod(name)
        iq, _, lead = stream(cfg, [m.index] * 4, seed=90 + int(esn0))
        y = impaired(iq, esn0, seed=95 + int(esn0), start=lead - 2000)
        rx = Receiver(cfg)
        events = rx._sync if False else None  # noqa: F841  (the synchronizer is created by push_samples)
        _, reps = rx.push_samples(y)
        rx.flush()
        pre = [r.esn0_db for r in reps if not (r.ldpc_converged and r.bch_corrected == 0)]
        assert len(reps) == 3 and all(abs(r.esn0_db - esn0) < 0.3 for r in reps), (
            esn0,
            [r.esn0_db for r in reps],
        )
        del pre
    # the header + pilot estimate on its own (before the decoder's refinement)
    from modem.sync.dvbs2 import Dvbs2Synchronizer

    for esn0, name in ((-3.0, "QPSK 1/4"), (18.0, "32APSK 9/10")):
        m = modcod(name)
        iq, _, lead = stream(cfg, [m.index] * 4, seed=90 + int(esn0))
        y = impaired(iq, esn0, seed=95 + int(esn0), start=lead - 2000)
        frames = [e for e in Dvbs2Synchronizer()(y) if e.kind == "frame"]
        assert len(frames) == 3 and all(abs(e.esn0_db - esn0) < 0.3 for e in frames), [
            e.esn0_db for e in frames
        ]


def test_doppler_ramp_is_followed_and_the_front_end_retuned():
    """QPSK 1/2 short frames at threshold + 0.5 dB with a ramp of 200 kHz/s at 5 Msample/s
    (3.2e-8 cycles/symbol^2, far steeper than a low-Mars-orbit pass: 2.8 kHz/s at Ka band): the
    offset moves from -5 % to about -3.3 % of the symbol rate over the stream; every frame
    decodes and the reported offsets follow the ramp."""
    cfg = LinkConfig(frame="short", pilots=True)
    m = modcod("QPSK 1/2")
    iq, sent, lead = stream(cfg, [m.index] * 40, seed=101)
    y = impaired(iq, THRESHOLDS[(m.index, "short")] + 0.5, seed=102, cfo=-0.05, rate_hz_s=2e5, start=lead)
    got, reps, rx = receive(cfg, y, np.arange(1, 20) * 40_000, batch_frames=16)
    assert len(reps) == 39 and all(r.ok for r in reps)
    check_stream_tail(got, sent)
    t = np.array([r.start_sample for r in reps]) / FS
    expect = -0.05 + 2e5 * t / (FS / SPS)
    assert np.max(np.abs(np.array([r.cfo_norm for r in reps]) - expect)) < 2e-4
    assert len(rx.synchronizer._fe.rotator.changes(0, y.size)) >= 2  # the matched filter followed


@pytest.mark.parametrize("cfo, ppm", [(0.2, -200.0), (-0.2, 200.0)])
def test_acquisition_over_plus_minus_20_percent_and_200_ppm(cfo, ppm):
    cfg = LinkConfig(frame="short", pilots=True)
    m = modcod("8PSK 2/3")
    iq, sent, lead = stream(cfg, [m.index] * 5, seed=111)
    y = impaired(iq, THRESHOLDS[(m.index, "short")] + 1.0, seed=112, cfo=cfo, ppm=ppm, start=lead)
    got, reps, _ = receive(cfg, y)
    assert len(reps) == 4 and all(r.ok for r in reps)
    check_stream_tail(got, sent)
    assert all(r.cfo_norm == pytest.approx(cfo, abs=3e-4) for r in reps)
