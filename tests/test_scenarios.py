"""Scenarios (modem/channel/scenario.py): the shipped files, truth derived from the link budget, bad files
rejected with file/key/range, and the ScenarioChannel streaming block."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from modem.channel import ScenarioChannel, load_scenario, parse_scenario, scenario_names
from modem.channel.scenario import SHIPPED, ScenarioError

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "modem" / "channel" / "scenarios"


def test_shipped_scenarios_load():
    assert set(SHIPPED) <= set(scenario_names())
    for name in SHIPPED:
        sc = load_scenario(name)
        assert sc.duration_s > 0 and sc.link_names
        t = np.linspace(sc.start_s, sc.start_s + sc.duration_s, 50)
        for link in sc.link_names:
            tr = sc.sample(t, link)
            assert tr.esn0_db.shape == t.shape
    assert load_scenario("rover_ka_uhf").link_names == ["ka", "uhf"]
    with pytest.raises(ScenarioError, match="scenario must be one of 'eva_uhf'"):
        load_scenario("dune")


def test_storm_pass_swings_over_the_acm_range():
    sc = load_scenario("storm_pass")
    t = np.linspace(0, sc.duration_s, 2001)
    tr = sc.sample(t)
    assert tr.visible.all()
    assert -5.0 < tr.esn0_db.min() < 0.0 and 14.0 < tr.esn0_db.max() < 18.0
    # storm onset: tau rises monotonically during the pass, dust loss at the end exceeds the start
    assert np.all(np.diff(tr.tau) >= 0) and tr.tau[-1] > 3 * tr.tau[0]
    assert tr.dust_db[-1] > tr.dust_db[0] + 3
    # Doppler antisymmetric about the pass midpoint (same elevation, opposite range rate)
    np.testing.assert_allclose(tr.doppler_hz, -tr.doppler_hz[::-1], atol=1e-6)
    np.testing.assert_allclose(tr.elevation_deg, tr.elevation_deg[::-1], atol=1e-9)
    # carrier offset = Doppler + oscillator ppm x carrier; clock offset = range rate / c - ppm
    np.testing.assert_allclose(tr.cfo_hz, tr.doppler_hz + tr.osc_ppm * 1e-6 * 27.5e9, rtol=1e-12)
    np.testing.assert_allclose(tr.clock_ppm, tr.range_rate_m_s / 299_792_458.0 * 1e6 - tr.osc_ppm, rtol=1e-12)
    at = sc.at(100.0)
    assert set(at) >= {"esn0_db", "cfo_hz", "doppler_rate_hz_per_s", "elevation_deg", "tau", "dust_db",
                       "phase_noise_rms_deg", "osc_ppm", "visible"}
    assert at["esn0_db"] == pytest.approx(float(sc.esn0_db(100.0)))


def test_esn0_comes_from_the_budget_not_a_curve():
    text = (SCENARIO_DIR / "storm_pass.toml").read_text()
    a = parse_scenario(text, "storm_pass.toml")
    b = parse_scenario(text.replace("tx_power_w = 5.0", "tx_power_w = 10.0"), "x.toml")
    c = parse_scenario(text.replace("symbol_rate_hz = 500e6", "symbol_rate_hz = 250e6"), "y.toml")
    t = np.linspace(0, a.duration_s, 101)
    np.testing.assert_allclose(b.esn0_db(t) - a.esn0_db(t), 10 * math.log10(2), atol=1e-9)
    np.testing.assert_allclose(c.esn0_db(t) - a.esn0_db(t), 10 * math.log10(2), atol=1e-9)
    d = parse_scenario(text.replace("ka_db_per_tau = 1.0", "ka_db_per_tau = 2.0"), "z.toml")
    np.testing.assert_allclose(a.esn0_db(t) - d.esn0_db(t), a.sample(t).dust_db, rtol=1e-9)


def test_global_storm_passes_and_outages():
    sc = load_scenario("global_storm_2018")
    w = sc.windows()
    assert len(w) == 14
    mid = [(a + b) / 2 for a, b in w]
    tr = sc.sample(np.array(mid))
    assert np.all(np.diff(tr.tau) >= 0) and tr.tau[-1] == pytest.approx(10.0)
    assert tr.esn0_db[0] - tr.esn0_db[-1] > 5  # the storm costs the link
    gap = (w[0][1] + w[1][0]) / 2
    down = sc.at(gap)
    assert not down["visible"] and down["esn0_db"] == -math.inf


def test_rover_uhf_hardly_sees_the_storm_ka_does():
    sc = load_scenario("rover_ka_uhf")
    t = np.linspace(0, sc.duration_s, 101)
    assert sc.sample(t, "uhf").dust_db.max() < 0.1
    assert sc.sample(t, "ka").dust_db.max() > 3.0


# ---------------------------------------------------------------------------------------------
# bad files: the error names the file, the key and the allowed range

MINIMAL = """
[scenario]
description = "x"
[geometry]
altitude_km = 400.0
[[link]]
name = "ka"
terminal = "fixed"
symbol_rate_hz = 1e6
"""


def test_minimal_file_uses_defaults(tmp_path):
    p = tmp_path / "mini.toml"
    p.write_text(MINIMAL)
    sc = load_scenario(p)
    assert sc.name == "mini" and sc.storm.peak_tau == pytest.approx(0.45)
    assert sc.oscillator.phase_noise == "tcxo"


@pytest.mark.parametrize("edit, message", [
    (("altitude_km = 400.0", "altitude_km = 400.0\naltitude = 3"),
     r"bad\.toml: unknown key \[geometry\] altitude; allowed keys: altitude_km"),
    (("altitude_km = 400.0", ""), r"bad\.toml: missing key \[geometry\] altitude_km .*in \[100, 20000\] km"),
    (("altitude_km = 400.0", "altitude_km = 50.0"),
     r"bad\.toml: \[geometry\] altitude_km must be in \[100, 20000\] km; got 50\.0"),
    (("symbol_rate_hz = 1e6", "symbol_rate_hz = 1e6\ntx_power_w = 50.0"),
     r"bad\.toml: \[\[link\]\] #1: fixed ka tx_power_w must be in \[5, 20\] W; got 50\.0"),
    (("terminal = \"fixed\"", "terminal = \"lander\""),
     r"bad\.toml: \[\[link\]\] #1 terminal must be one of 'eva', 'fixed', 'rover'; got 'lander'"),
    (("symbol_rate_hz = 1e6", "symbol_rate_hz = \"fast\""),
     r"bad\.toml: \[\[link\]\] #1 symbol_rate_hz must be a number in \[1000, 1e\+11\] symbols/s"),
    (("[geometry]", "[storm]\npeak_tau = 25.0\n[geometry]"),
     r"bad\.toml: \[storm\] peak_tau must be in \[0, 20\]; got 25\.0"),
    (("[geometry]", "[weather]\nwind = 3\n[geometry]"), r"bad\.toml: unknown table \[weather\]"),
    (("[geometry]", "[geometry]\nmin_elevation_deg = 30.0\nmax_elevation_deg = 20.0"),
     r"bad\.toml: \[geometry\] max_elevation_deg\[0\] must be in \(30, 90\] deg"),
    (("[geometry]", "[geometry]\npasses = 3\nmax_elevation_deg = [40.0, 50.0]"),
     r"bad\.toml: \[geometry\] max_elevation_deg must have 3 values"),
    (("terminal = \"fixed\"", "terminal = \"eva\"\nband = \"ka\""),
     r"bad\.toml: \[\[link\]\] #1 band must be one of 'uhf' for the eva terminal; got 'ka'"),
    (("[geometry]", "[radome]\ncleanings = [[1.0, 1.5]]\n[geometry]"),
     r"bad\.toml: \[radome\]: cleanings\[0\] fraction must be in \[0, 1\]"),
    (("[scenario]", "[scenario"), r"bad\.toml: not valid TOML"),
])
def test_bad_files_name_file_key_and_range(tmp_path, edit, message):
    p = tmp_path / "bad.toml"
    p.write_text(MINIMAL.replace(*edit, 1))
    with pytest.raises(ScenarioError, match=message):
        load_scenario(p)


def test_missing_table_and_duplicate_link(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(MINIMAL.split("[[link]]")[0])
    with pytest.raises(ScenarioError, match=r"bad\.toml: missing table \[link\]"):
        load_scenario(p)
    p.write_text(MINIMAL + MINIMAL.split("altitude_km = 400.0")[1])
    with pytest.raises(ScenarioError, match="name must be unique"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "none.toml")


# ---------------------------------------------------------------------------------------------
# ScenarioChannel

RS, SPS = 1e5, 2
FS = RS * SPS


def unit_signal(n):
    return np.full(n, 1 / math.sqrt(SPS), np.complex64)  # mean power 1/sps per sample, like the DVB-S2 TX


@pytest.mark.parametrize("update_s", [1e-3, 1e-4])  # 600 segments; 6000 (several truth blocks of 1024)
def test_scenario_channel_chunking_invariance_and_reset(update_s):
    def make():
        return ScenarioChannel("storm_pass", symbol_rate_hz=RS, samples_per_symbol=SPS, time_scale=600.0,
                               seed=7, update_s=update_s)

    rng = np.random.default_rng(2)
    x = ((rng.standard_normal(120_000) + 1j * rng.standard_normal(120_000)) * 0.5).astype(np.complex64)
    a = make()
    ref = a(x)
    assert ref.size == x.size and ref.dtype == np.complex64
    b = make()
    parts, i = [], 0
    while i < x.size:
        n = int(rng.choice([1, 17, 999, 2000, 4096, 10_000]))
        parts.append(b(x[i : i + n]))
        i += n
    assert np.array_equal(np.concatenate(parts), ref)
    a.reset()
    assert np.array_equal(a(x), ref)
    # 120,000 samples at 2e5 samples/s x 600 = 360 s of scenario
    assert a.scenario_time_s == pytest.approx(360.0)


def test_scenario_channel_equals_its_blocks_applied_segment_by_segment():
    """The fused kernels against the public blocks run one segment at a time (the slow reference):
    gain and carrier offset per segment, phase noise, the clock model per segment, then noise, with
    the same seeds (the channel spawns its noise and phase-noise seeds from its own)."""
    from modem.channel import Awgn, CarrierOffset, ClockDrift, PhaseNoise

    u, ts, seed = 1500, 400.0, 11
    ch = ScenarioChannel("storm_pass", symbol_rate_hz=RS, samples_per_symbol=SPS, time_scale=ts, seed=seed,
                         update_s=u / FS, start_s=100.0)
    rng = np.random.default_rng(8)
    n = 20 * u + 700
    x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 0.5).astype(np.complex64)
    got = np.concatenate([ch(x[:4000]), ch(x[4000:4001]), ch(x[4001:])])

    s_noise, s_pn = np.random.SeedSequence(seed).spawn(2)
    pn = PhaseNoise(ch.mask, FS, seed=s_pn)
    awgn = Awgn(0.0, samples_per_symbol=SPS, signal_power=1 / SPS, seed=s_noise)
    cfo = CarrierOffset(0.0, FS)
    clock = ClockDrift(0.0, sample_rate_hz=FS, max_drift_samples=ch.latency_samples - 16)
    k = ch.k
    y, ppms = [], []
    for a in range(0, n, u):
        tr = ch.scenario.at(100.0 + ts * a / FS)
        gain = 10 ** (tr["esn0_db"] / 20) if tr["visible"] else 0.0
        cfo.freq_hz = float(np.clip(k * tr["cfo_hz"], -0.499 * FS, 0.499 * FS))
        cfo.rate_hz_per_s = k * k * tr["cfo_rate_hz_per_s"]
        y.append(cfo(x[a : a + u] * np.float32(gain)))
        ppms.append(tr["clock_ppm"])
    y = pn(np.concatenate(y))
    parts = []
    for i, a in enumerate(range(0, n, u)):
        clock.ppm = ppms[i]
        parts.append(clock(y[a : a + u]))
    want = awgn(np.concatenate(parts))
    rms = np.sqrt(np.mean(np.abs(want) ** 2))
    assert np.max(np.abs(got - want)) < 1e-5 * rms  # float32 rounding of the two paths
    last = ch.scenario.at(100.0 + ts * 20 * u / FS)  # the last segment entered
    assert ch.truth["bench_cfo_hz"] == pytest.approx(k * last["cfo_hz"])


@pytest.mark.parametrize("t0", [346.0, 640.0])
def test_scenario_channel_esn0_matches_truth(t0):
    ch = ScenarioChannel("storm_pass", symbol_rate_hz=RS, samples_per_symbol=SPS, time_scale=1.0, seed=3,
                         start_s=t0, phase_noise=False, clock=False)
    n = 200_000  # 1 s of scenario: Es/N0 moves by < 0.1 dB
    y = ch(unit_signal(n))
    # noise N0 = 1 per sample; signal power a^2 / sps with Es/N0 = a^2
    measured = 10 * math.log10(SPS * (np.mean(np.abs(y.astype(np.complex128)) ** 2) - 1.0))
    truth = float(ch.esn0_db_at(t0 + 0.5))
    # power estimate sd: sqrt(2 / n) of the total -> < 0.02 dB at these Es/N0
    assert measured == pytest.approx(truth, abs=0.1), (measured, truth)


@pytest.mark.parametrize("doppler", ["physical", "continuous"])
def test_scenario_channel_carrier_offset_and_ramp(doppler):
    ts, u = 50.0, 2000
    ch = ScenarioChannel("storm_pass", symbol_rate_hz=RS, samples_per_symbol=SPS, time_scale=ts, seed=1,
                         phase_noise=False, clock=False, noise=False, doppler=doppler, update_s=u / FS)
    n = 20 * u  # 0.2 s of stream, 10 s of scenario, 20 segments
    y = ch(unit_signal(n)).astype(np.complex128)
    inst = np.angle(y[1:] * np.conj(y[:-1])) * FS / (2 * np.pi)  # Hz, sample by sample (+-3 mHz rounding)
    sc = ch.scenario
    k = RS / 500e6
    for seg in range(19):
        m = seg * u
        tr, nxt = sc.at(ts * m / FS), sc.at(ts * (m + u) / FS)
        # at each segment start the offset is re-anchored to k x the scenario's carrier offset
        assert inst[m] == pytest.approx(k * tr["cfo_hz"], abs=0.01)
        # inside: the ramp is k^2 r (physical) or time_scale k r (continuous); so at the next
        # anchor the frequency steps by what the ramp did not cover
        r = tr["cfo_rate_hz_per_s"]
        rate = k * k * r if doppler == "physical" else ts * k * r
        step = k * nxt["cfo_hz"] - (k * tr["cfo_hz"] + rate * u / FS)
        before, after = np.mean(inst[m + u - 60 : m + u - 1]), np.mean(inst[m + u : m + u + 59])
        assert after - before == pytest.approx(step + rate * 60 / FS, abs=0.01)
        if doppler == "continuous":
            assert abs(step) < 0.01  # the compressed ramp follows the trajectory
        else:  # the physical ramp is slower: steps of about (time_scale k - k^2) r u / f_s
            assert step == pytest.approx((ts * k - k * k) * r * u / FS, rel=0.05, abs=1e-3)
    r = sc.at(ts * 19 * u / FS)["cfo_rate_hz_per_s"]
    want = k * k * r if doppler == "physical" else ts * k * r
    assert ch.truth["bench_rate_hz_per_s"] == pytest.approx(want)
    assert ch.truth["bench_cfo_hz"] == pytest.approx(k * sc.at(ts * 19 * u / FS)["cfo_hz"])


def test_scenario_channel_link_down_is_noise_only_and_seek():
    sc = load_scenario("global_storm_2018")
    gap = (sc.windows()[0][1] + sc.windows()[1][0]) / 2
    ch = ScenarioChannel(sc, symbol_rate_hz=RS, samples_per_symbol=SPS, time_scale=1.0, seed=4, start_s=gap)
    y = ch(unit_signal(100_000))
    assert np.mean(np.abs(y) ** 2) == pytest.approx(1.0, rel=0.02)  # N0 = 1 per sample, no signal
    ch.seek(sc.windows()[1][0] + 300.0)
    assert ch.scenario_time_s == pytest.approx(sc.windows()[1][0] + 300.0)
    y = ch(unit_signal(100_000))
    assert np.mean(np.abs(y) ** 2) > 2.0
    assert ch.latency_samples > 16  # the clock model's delay
    with pytest.raises(ValueError, match="link must be one of 'ka'"):
        ScenarioChannel(sc, link="uhf")
    with pytest.raises(ValueError, match="doppler must be"):
        ScenarioChannel(sc, doppler="fast")


def test_marslink_plot_scenario_writes_png(tmp_path, capsys):
    from flowgraphs import cli

    assert cli.main(["plot", "scenario", "storm_pass", "-o", str(tmp_path)]) == 0
    png = tmp_path / "scenario_storm_pass.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert cli.main(["plot", "scenario"]) == 2
    assert cli.main(["plot", "scenario", "dune", "-o", str(tmp_path)]) == 2
    assert "scenario must be one of" in capsys.readouterr().err
