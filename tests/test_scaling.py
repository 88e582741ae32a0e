"""Bench scaling (modem/scaling.py) and ``marslink scale``: what is preserved, and the PlutoSDR limits."""

from __future__ import annotations

import math

import pytest

from modem.channel.phase_noise import integrated_phase_rms, preset_mask
from modem.scaling import LinkSide, scale_link


def test_ka_to_pluto_preserves_normalized_quantities():
    s = scale_link(27.5e9, 500e6)  # default bench: PlutoSDR 2.4 GHz, 1 Msym/s, 2 samples/symbol
    assert s.bench.carrier_hz == 2.4e9 and s.bench.symbol_rate_hz == 1e6 and s.bench.sample_rate_hz == 2e6
    assert s.k == pytest.approx(1 / 500)
    cfo, rate = 301e3, 2.8e3
    assert s.cfo_hz(cfo) / 1e6 == pytest.approx(cfo / 500e6)  # CFO / Rs
    assert s.doppler_rate_hz_per_s(rate) / 1e6**2 == pytest.approx(rate / 500e6**2)  # rate / Rs^2
    assert s.cfo_hz(cfo) == pytest.approx(602.0)
    assert s.time_s(1.0) == pytest.approx(500.0)
    # phase noise: offsets x k, levels - 10 log10 k; rms over the same fraction of Rs unchanged
    mission = ((1e3, -70.0), (1e5, -90.0), (1e7, -110.0))
    bench = s.phase_noise_mask(mission, min_offset_rs=0.0)
    assert bench[0] == pytest.approx((2.0, -70 + 10 * math.log10(500)))
    for lo, hi in ((1e-4, 1e-2), (1e-3, 0.5)):
        m = integrated_phase_rms(mission, lo * 500e6, hi * 500e6)
        b = integrated_phase_rms(bench, lo * 1e6, hi * 1e6)
        assert b == pytest.approx(m, rel=1e-6)


def test_phase_noise_points_below_1e4_rs_dropped_at_the_interpolated_level():
    s = scale_link(27.5e9, 500e6)
    mask = preset_mask("tcxo", 27.5e9)  # 10 Hz .. 1 MHz -> 0.02 Hz .. 2 kHz on the bench
    bench = s.phase_noise_mask(mask)
    assert bench[0][0] == pytest.approx(100.0)  # 1e-4 x 1 Msym/s
    assert all(f >= 100.0 for f, _ in bench)
    want = integrated_phase_rms(mask, 5e4, 2.5e8)
    assert integrated_phase_rms(bench, 100, 5e5) == pytest.approx(want, rel=1e-3)


def test_uhf_natively_keeps_the_symbol_rate():
    s = scale_link(401.585625e6, 256e3, bench="uhf")
    assert s.k == 1.0 and s.bench.carrier_hz == 435e6 and s.bench.samples_per_symbol == 4
    assert s.cfo_hz(4e3) == pytest.approx(4e3)


@pytest.mark.parametrize("kw, message", [
    ({"bench_carrier_hz": 300e6}, r"carrier_hz must be in \[325 MHz, 3.8 GHz\].*got 300 MHz"),
    ({"bench_carrier_hz": 5.8e9}, r"carrier_hz must be in \[325 MHz, 3.8 GHz\].*got 5800 MHz"),
    ({"bench_symbol_rate_hz": 200e3}, r"must be in \[521 kS/s, 61.44 MS/s\].*got 400 kS/s"),
    ({"bench_symbol_rate_hz": 40e6}, r"must be in \[521 kS/s, 61.44 MS/s\].*got 80000 kS/s"),
])
def test_pluto_limits_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        scale_link(27.5e9, 500e6, **kw)


def test_pluto_limits_edges_accepted_and_radio_none():
    scale_link(27.5e9, 500e6, bench_carrier_hz=325e6)
    scale_link(27.5e9, 500e6, bench_carrier_hz=3.8e9, bench_symbol_rate_hz=30.72e6)
    scale_link(27.5e9, 500e6, bench_symbol_rate_hz=260.5e3)  # 521 kS/s
    s = scale_link(27.5e9, 500e6, bench_carrier_hz=5.8e9, radio="none")
    assert s.bench.carrier_hz == 5.8e9
    with pytest.raises(ValueError, match="samples_per_symbol must be an integer"):
        LinkSide(2.4e9, 1e6, 0)


def test_marslink_scale_prints_both_sides(capsys):
    from flowgraphs import cli

    assert cli.main(["scale", "--esn0", "10"]) == 0
    out = capsys.readouterr().out
    assert "mission" in out and "bench (pluto)" in out
    row = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "602 Hz" in row["carrier offset"] and "301000 Hz" in row["carrier offset"]
    assert row["carrier offset / Rs"].split()[-1] == row["carrier offset / Rs"].split()[-2] == "6.0200e-04"
    assert row["Doppler rate / Rs^2"].split()[-1] == row["Doppler rate / Rs^2"].split()[-2]
    assert cli.main(["scale", "--bench-carrier", "5e9"]) == 2
    assert "3.8 GHz" in capsys.readouterr().err
    assert cli.main(["scale", "--scenario", "storm_pass"]) == 0
    assert "Es/N0 over the passes" in capsys.readouterr().out
