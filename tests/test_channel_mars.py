"""Mars physics of modem/channel: pass geometry, free-space loss, Doppler, air mass, dust attenuation,
storm profiles, sky noise, radome dust and the local oscillator. Reference values are worked out
independently in the comments (or by brute-force integration / differentiation here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modem.channel.dust import (
    DUST_SCALE_HEIGHT_M,
    StormProfile,
    air_mass,
    band_db_per_tau,
    dust_attenuation_db,
    sky_noise_k,
    storm_preset,
)
from modem.channel.geometry import (
    MARS_GM,
    MARS_RADIUS_M,
    SOL_S,
    SPEED_OF_LIGHT,
    CircularPass,
    free_space_loss_db,
)
from modem.channel.oscillator import LocalOscillator
from modem.channel.radome import RadomeDust

# ---------------------------------------------------------------------------------------------
# geometry


def test_free_space_loss_values_of_the_issue():
    # 20 log10(4 pi d f / c): 174.0 dB at 400 km and 186.6 dB at 1696 km, 30 GHz
    assert free_space_loss_db(400e3, 30e9) == pytest.approx(174.0, abs=0.05)
    assert free_space_loss_db(1696e3, 30e9) == pytest.approx(186.6, abs=0.05)
    # +6.02 dB per doubling of distance or frequency
    doubled = free_space_loss_db(800e3, 30e9) - free_space_loss_db(400e3, 30e9)
    assert doubled == pytest.approx(6.0206, abs=1e-4)
    with pytest.raises(ValueError):
        free_space_loss_db(0.0, 30e9)


def overhead(min_el=0.0, alt=400e3):
    return CircularPass(alt, 90.0, min_el)


def test_orbit_and_horizon_geometry():
    p = overhead()
    r = MARS_RADIUS_M + 400e3
    assert p.speed_m_s == pytest.approx(math.sqrt(MARS_GM / r))
    assert p.speed_m_s == pytest.approx(3361.8, abs=0.1)
    s = p.state(np.array([0.0, p.duration_s / 2, p.duration_s]))
    # rise and set on the horizon at sqrt(r^2 - R^2) = 1694.6 km, zenith at the altitude
    horizon = math.sqrt(r * r - MARS_RADIUS_M**2)
    assert s.slant_range_m == pytest.approx([horizon, 400e3, horizon], rel=1e-9)
    assert s.elevation_deg == pytest.approx([0.0, 90.0, 0.0], abs=1e-6)
    # time above the horizon: 2 arccos(R / r) / omega
    assert p.duration_s == pytest.approx(2 * math.acos(MARS_RADIUS_M / r) / (p.speed_m_s / r), rel=1e-12)
    assert p.duration_s == pytest.approx(1045.2, abs=0.1)


def test_doppler_peaks_and_symmetry():
    p = overhead()
    t = np.linspace(0.0, p.duration_s, 200_001)
    s = p.state(t)
    d30 = s.doppler_hz(30e9)
    # peak range rate at the horizon: R v / r = 3006.9 m/s -> +-300.9 kHz at 30 GHz, +-4.03 kHz at 401.6 MHz
    v, r = p.speed_m_s, MARS_RADIUS_M + 400e3
    assert np.max(d30) == pytest.approx(30e9 * MARS_RADIUS_M * v / r / SPEED_OF_LIGHT, rel=1e-6)
    assert np.max(d30) == pytest.approx(301e3, rel=0.005)
    assert np.max(s.doppler_hz(401.585625e6)) == pytest.approx(4.03e3, rel=0.005)
    # antisymmetric about the midpoint: approaching then receding, zero overhead
    np.testing.assert_allclose(d30, -d30[::-1], atol=1e-6)
    assert d30[t.size // 2] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(s.elevation_deg, s.elevation_deg[::-1], atol=1e-9)
    # Doppler rate: the analytic one equals the numerical derivative of the Doppler
    rate = s.doppler_rate_hz_per_s(30e9)
    num = np.gradient(d30, t)
    np.testing.assert_allclose(rate[100:-100], num[100:-100], rtol=1e-4, atol=0.05)
    # peak at the zenith: f R v^2 / (c r h) = 2.53 kHz/s (the flat-surface v^2/h gives 2.83 kHz/s)
    peak = -np.min(rate)
    assert peak == pytest.approx(30e9 * MARS_RADIUS_M * v * v / (SPEED_OF_LIGHT * r * 400e3), rel=1e-6)
    assert 2.4e3 < peak < 2.9e3


def test_pass_with_lower_maximum_elevation():
    p = CircularPass(400e3, 50.0, 10.0)
    s = p.state(np.linspace(0, p.duration_s, 10_001))
    assert s.elevation_deg.max() == pytest.approx(50.0, abs=1e-3)
    assert s.elevation_deg[0] == pytest.approx(10.0, abs=1e-6)
    assert s.elevation_deg[-1] == pytest.approx(10.0, abs=1e-6)
    assert p.duration_s < CircularPass(400e3, 90.0, 10.0).duration_s
    assert s.visible.all()
    with pytest.raises(ValueError, match="max_elevation_deg must be in"):
        CircularPass(400e3, 5.0, 10.0)
    with pytest.raises(ValueError, match="altitude_m must be in"):
        CircularPass(50e3)


# ---------------------------------------------------------------------------------------------
# air mass, dust, sky noise


def air_mass_brute_force(el_deg, points=400_000):
    """Integral of exp(-h/H) ds / H along the ray, with a plain trapezoid on a fine uniform grid."""
    el = math.radians(el_deg)
    R, H = MARS_RADIUS_M, DUST_SCALE_HEIGHT_M
    s = np.linspace(0.0, 60.0 * H / max(math.sin(el), 0.02), points)
    h = np.sqrt(R * R + s * s + 2 * R * s * math.sin(el)) - R
    return float(np.trapezoid(np.exp(-h / H), s) / H)


def test_air_mass_zenith_30_deg_and_brute_force():
    assert float(air_mass(90.0)) == pytest.approx(1.0, abs=1e-3)
    assert float(air_mass(30.0)) == pytest.approx(2.0, abs=0.03)  # ~2 (1.98 over a sphere)
    for el in (90.0, 45.0, 30.0, 10.0, 3.0, 0.0):
        assert float(air_mass(el)) == pytest.approx(air_mass_brute_force(el), rel=2e-3), el
    # monotone in elevation, finite at the horizon (about sqrt(pi R / 2H) = 21.4)
    m = air_mass(np.linspace(0, 90, 91))
    assert np.all(np.diff(m) < 0)
    chapman = math.sqrt(math.pi * MARS_RADIUS_M / (2 * DUST_SCALE_HEIGHT_M))
    assert float(air_mass(0.0)) == pytest.approx(chapman, rel=0.01)
    with pytest.raises(ValueError, match="elevation_deg must be in"):
        air_mass(-1.0)


def test_dust_attenuation_bands_and_jpl_figure():
    # JPL: at least 3 dB at Ka for a large storm; the default gives 3 dB for tau 5 at the zenith (32 GHz)
    assert float(dust_attenuation_db(5.0, 90.0, "ka")) == pytest.approx(3.0, abs=0.01)
    # proportional to tau and to the air mass
    assert float(dust_attenuation_db(2.0, 30.0, "ka")) == pytest.approx(2 * 0.6 * float(air_mass(30.0)))
    # Rayleigh scaling with frequency: UHF negligible, X a quarter of Ka
    assert band_db_per_tau("uhf") == pytest.approx(0.6 * 401.585625e6 / 32e9)
    assert float(dust_attenuation_db(10.0, 30.0, "uhf")) < 0.2
    assert band_db_per_tau("x") / band_db_per_tau("ka") == pytest.approx(8.4 / 32)
    # pessimistic coefficient: a 10-20 dB swing for a global storm
    assert 10 < float(dust_attenuation_db(10.0, 60.0, "ka", ka_db_per_tau=1.5)) < 20
    with pytest.raises(ValueError, match="band must be one of"):
        dust_attenuation_db(1.0, 30.0, "s")
    with pytest.raises(ValueError, match="tau must be >= 0"):
        dust_attenuation_db(-1.0, 30.0)


def test_sky_noise_rises_with_the_storm():
    assert float(sky_noise_k(0.0, "ka")) == pytest.approx(5.0)
    assert float(sky_noise_k(0.0, "uhf")) == pytest.approx(55.0)
    # 3 dB of dust at 210 K: half the clear sky plus half the dust temperature
    assert float(sky_noise_k(10 * math.log10(2), "ka")) == pytest.approx(2.5 + 105.0)
    t = sky_noise_k(np.linspace(0, 20, 50), "ka")
    assert np.all(np.diff(t) > 0) and t[-1] < 210.0


# ---------------------------------------------------------------------------------------------
# storm profiles


def test_storm_rise_monotone_plateau_and_decay():
    s = storm_preset("global_2018", onset_s=0.0)
    t = np.linspace(-SOL_S, 7 * SOL_S, 5001)
    tau = s.tau(t)
    assert np.all(np.diff(tau) >= 0)  # monotone rise
    assert tau[0] == pytest.approx(0.6) and tau[-1] == pytest.approx(10.0)
    # about 20 sols at the peak, then e-folding decay of 40 sols toward the background
    assert float(s.tau(26.9 * SOL_S)) == pytest.approx(10.0)
    excess = float(s.tau((27 + 40) * SOL_S)) - 0.6
    assert excess == pytest.approx(9.4 / math.e, rel=1e-9)
    assert np.all(np.diff(s.tau(np.linspace(27, 200, 500) * SOL_S)) < 0)


def test_storm_presets_ranges():
    clear = storm_preset("clear").tau(np.linspace(0, 10 * SOL_S, 100))
    assert np.all((clear >= 0.3) & (clear <= 0.6))
    reg = storm_preset("regional")
    t = np.linspace(0, 10 * SOL_S, 10_001)
    tau = reg.tau(t)
    assert tau.max() == pytest.approx(1.5)
    above = t[tau > 1.0]
    assert 1 * SOL_S <= above[-1] - above[0] <= 7 * SOL_S  # 1-2 for 1-7 sols
    with pytest.raises(ValueError, match="peak_tau must be in"):
        StormProfile(background_tau=2.0, peak_tau=1.0)
    with pytest.raises(ValueError, match="storm preset must be one of"):
        storm_preset("haboob")


# ---------------------------------------------------------------------------------------------
# radome, oscillator


def test_radome_accumulation_and_cleaning():
    r = RadomeDust(rate_db_per_sol=0.01, initial_db=0.1, cleanings=[(10 * SOL_S, 0.5)])
    assert float(r.loss_db(0.0)) == pytest.approx(0.1)
    assert float(r.loss_db(5 * SOL_S)) == pytest.approx(0.15)
    assert float(r.loss_db(10 * SOL_S)) == pytest.approx(0.2)  # just before the cleaning
    assert float(r.loss_db(10 * SOL_S + 1e-3)) == pytest.approx(0.1, abs=1e-6)
    assert float(r.loss_db(20 * SOL_S)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"cleanings\[0\] fraction must be in"):
        RadomeDust(cleanings=[(1.0, 2.0)])


def test_oscillator_diurnal_drift():
    osc = LocalOscillator.preset("tcxo", local_time_h=14.0)
    t = np.linspace(0, SOL_S, 10_001)
    amb = osc.ambient_c(t)
    assert amb.max() == pytest.approx(30.0) and amb.min() == pytest.approx(-130.0, abs=1e-3)
    # heated: the crystal swings by 160 C / regulation 20 = 8 C, 0.005 ppm/C -> 0.04 ppm peak to peak
    ppm = osc.ppm(t)
    assert ppm.max() - ppm.min() == pytest.approx(160 / 20 * 0.005, rel=1e-3)
    assert float(osc.ppm(0.0)) == pytest.approx(0.5 + 0.005 * 4.0)
    # the analytic rate is the derivative
    np.testing.assert_allclose(osc.ppm_rate(t)[1:-1], np.gradient(ppm, t)[1:-1], rtol=1e-3, atol=1e-12)
    pluto = LocalOscillator.preset("pluto")
    assert abs(pluto.initial_ppm) <= 25.0
    with pytest.raises(ValueError, match="oscillator must be one of"):
        LocalOscillator.preset("rubidium")
    with pytest.raises(ValueError, match="phase_noise must be one of"):
        LocalOscillator(phase_noise="cesium")
