"""Streaming channel blocks (modem/channel): AWGN power, gain, carrier offset with Doppler rate,
sample-clock offset, phase noise against its mask, chaining; chunking invariance and bad input.
The fast kernels are checked against independent slow references: the Gaussian source against
the normal distribution, the vectorized sin/cos/ln against numpy, the parallel phase-noise filter
against scipy's lfilter of the cascade, the float32 interpolator against the analytic signal.

Fixed seeds throughout; statistical margins are stated where a measurement is random.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest
from scipy.signal import lfilter, welch
from scipy.special import ndtr

from modem.channel import Awgn, CarrierOffset, Chain, ClockOffset, Gain, PhaseNoise
from modem.channel._cis import cis
from modem.channel._gauss import fill_normal, log_pos, noise_key
from modem.channel.clock_offset import interpolation_error_db
from modem.channel.phase_noise import (
    PRESETS,
    _cascade,
    _parallel,
    check_mask,
    fit_mask,
    integrated_phase_rms,
    mask_db,
    parallel_form,
    preset_mask,
)
from modem.dvbs2.pulse import MatchedFilter, PulseShaper


def noise_iq(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def run_chunked(block, x, rng, with_flush=False):
    """Feed x in random chunk sizes (zero-length chunks included)."""
    out, i = [], 0
    while i < x.size:
        n = int(rng.choice([0, 1, 2, 3, 7, 64, 333, 1000, 4096]))
        out.append(block(x[i : i + n]))
        i += n
    if with_flush:
        out.append(block.flush())
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# AWGN


@pytest.mark.parametrize("esn0_db, sps, power", [(-3.0, 1, 1.0), (10.0, 2, 0.5), (20.0, 4, 0.25)])
def test_awgn_noise_power_within_0p05_db(esn0_db, sps, power):
    awgn = Awgn(esn0_db, samples_per_symbol=sps, signal_power=power, seed=7)
    n = 2_000_000
    y = awgn(np.zeros(n, np.complex64))
    measured = float(np.mean(np.abs(y.astype(np.complex128)) ** 2))
    expected = power * sps / 10 ** (esn0_db / 10)
    assert awgn.noise_variance == pytest.approx(expected, rel=1e-12)
    # the estimate's relative standard deviation is 1/sqrt(n) = 0.0007 (0.003 dB): 0.05 dB is 16 sigma
    assert abs(10 * math.log10(measured / expected)) < 0.05
    # circular: both components carry half the power, uncorrelated
    assert np.var(y.real) == pytest.approx(expected / 2, rel=0.01)
    assert abs(np.mean(y.real * y.imag)) < 0.01 * expected


def test_awgn_esn0_settable_between_chunks():
    awgn = Awgn(0.0, seed=1)
    a = awgn(np.zeros(400_000, np.complex64))
    awgn.esn0_db = 10.0
    b = awgn(np.zeros(400_000, np.complex64))
    ratio_db = 10 * math.log10(np.mean(np.abs(a) ** 2) / np.mean(np.abs(b) ** 2))
    assert ratio_db == pytest.approx(10.0, abs=0.05)


def test_awgn_dvbs2_convention_gives_esn0_after_matched_filter():
    """Shaped unit-energy symbols have mean power 1/sps; Awgn(E, sps, 1/sps) gives Es/N0 = E after the MF."""
    sps, span, esn0 = 2, 16, 6.0
    rng = np.random.default_rng(3)
    sym = np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, 100_000))).astype(np.complex64)
    tx = PulseShaper(0.35, sps, span)
    s = np.concatenate([tx(sym), tx.flush()])
    core = s[span * sps : -span * sps]
    assert float(np.mean(np.abs(core) ** 2)) == pytest.approx(1 / sps, rel=0.01)
    awgn = Awgn(esn0, samples_per_symbol=sps, signal_power=1 / sps, seed=4)
    mf = MatchedFilter(0.35, sps, span)
    y = np.concatenate([mf(awgn(s)), mf.flush()])
    picked = y[span * sps :: sps][: sym.size]
    err = picked[1000:-1000] - sym[1000:-1000]
    measured = 10 * math.log10(1.0 / np.mean(np.abs(err) ** 2))
    # 98,000 symbols: the N0 estimate's relative sd is 0.3 % (0.014 dB); RRC truncation ISI < -50 dB
    assert measured == pytest.approx(esn0, abs=0.1)


# ---------------------------------------------------------------------------------------------
# the Gaussian source (counter-based SplitMix64 + Box-Muller) and the vectorized functions


@nb.njit(cache=True)
def _cis_many(phase, c, s):
    for i in range(phase.size):
        c[i], s[i] = cis(phase[i])


@nb.njit(cache=True)
def _log_many(u, out):
    for i in range(u.size):
        out[i] = log_pos(u[i])


def test_cis_and_log_match_numpy():
    rng = np.random.default_rng(5)
    ph = np.concatenate((rng.uniform(-4, 4, 100_000), rng.uniform(-100, 100, 10_000),
                         np.arange(-16, 17) * np.pi / 4, [0.0, -0.0, np.pi, -np.pi, 1e-300]))
    c, s = np.empty_like(ph), np.empty_like(ph)
    _cis_many(ph, c, s)
    assert np.max(np.abs(c - np.cos(ph))) < 3e-14 and np.max(np.abs(s - np.sin(ph))) < 3e-14
    u = np.concatenate((rng.uniform(0, 1, 100_000), 2.0 ** -np.arange(0, 60),
                        np.geomspace(1e-300, 1e300, 1000)))
    out = np.empty_like(u)
    _log_many(u, out)
    assert np.max(np.abs(out - np.log(u)) / np.maximum(1.0, np.abs(np.log(u)))) < 3e-15


def test_gaussian_source_matches_the_normal_distribution():
    n = 4_000_000
    g = np.empty(n)
    fill_normal(noise_key(123)[0], 0, g)
    # mean, variance, kurtosis: 5-sigma margins of their estimates (sd 1/sqrt(n), sqrt(2/n), sqrt(96/n))
    assert abs(g.mean()) < 5 / math.sqrt(n)
    assert abs(g.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(g**4) / g.var() ** 2 - 3) < 5 * math.sqrt(96 / n)
    # tails, two-sided: binomial counts within 5 sigma of n P(|g| > t)
    for t in (1.0, 2.0, 3.0, 4.0, 4.5):
        p = 2 * ndtr(-t)
        count = int(np.sum(np.abs(g) > t))
        assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (t, count, n * p)
    # Kolmogorov-Smirnov distance on a 200,000 sample subset: 1.95 / sqrt(m) is the 0.1 % level
    m = 200_000
    sub = np.sort(g[:: n // m][:m])
    cdf = ndtr(sub)
    d = max(np.max(np.arange(1, m + 1) / m - cdf), np.max(cdf - np.arange(m) / m))
    assert d < 1.95 / math.sqrt(m)
    # independence: neighbours (the two of a pair, and across pairs) uncorrelated within 5/sqrt(n)
    for lag in (1, 2, 3):
        assert abs(np.mean(g[:-lag] * g[lag:])) < 5 / math.sqrt(n)
    # the radius uniform has 40 bits: no draw beyond sqrt(80 ln 2) = 7.45
    assert np.max(np.abs(g)) < math.sqrt(80 * math.log(2))


def test_noise_is_counter_based_reproducible_and_seeded():
    key = noise_key(9)[0]
    a = np.empty(1001)
    fill_normal(key, 0, a)
    for start, stop in ((0, 1), (1, 2), (3, 1001), (2, 7), (500, 501)):
        part = np.empty(stop - start)
        fill_normal(key, start, part)
        assert np.array_equal(part, a[start:stop])
    b = np.empty(1001)
    fill_normal(noise_key(10)[0], 0, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15  # 5 sigma for 1001 pairs
    assert noise_key(9)[0] == key and noise_key(np.random.SeedSequence(9))[0] == key
    assert noise_key(9, stream=1)[0] != key  # the phase noise's key of the same seed differs
    gen = np.random.default_rng(3)
    k1 = noise_key(gen)[0]
    assert noise_key(gen)[0] != k1  # a Generator gives one draw per key
    # the block keeps the entropy that replays it
    awgn = Awgn(3.0, seed=None)
    again = Awgn(3.0, seed=awgn.seed)
    x = np.zeros(1000, np.complex64)
    assert np.array_equal(awgn(x), again(x))


# ---------------------------------------------------------------------------------------------
# gain, carrier offset


def test_gain_values():
    x = noise_iq(1000)
    g = Gain(-6.0, phase_rad=math.pi / 2)
    y = g(x)
    assert np.allclose(y, x * 10 ** (-6 / 20) * 1j, atol=1e-6)
    g.gain_db = 0.0
    assert g.gain == pytest.approx(1j, abs=1e-7)


def test_carrier_offset_matches_closed_form_quadratic_phase():
    fs, f0, rate, ph0 = 1e6, 12_345.0, 2_800.0, 0.3
    n = 1_000_000
    cfo = CarrierOffset(f0, fs, rate_hz_per_s=rate, phase_rad=ph0)
    y = cfo(np.ones(n, np.complex64)).astype(np.complex128)
    t = np.arange(n) / fs
    ideal = ph0 + 2 * np.pi * (f0 * t + 0.5 * rate * t * t)
    err = np.angle(y * np.exp(-1j * ideal))
    assert np.max(np.abs(err)) < 1e-5  # float32 output rounding ~1e-7; float64 phase kept across 1e6 steps
    assert cfo.freq_hz == pytest.approx(f0 + rate * n / fs, abs=1e-3)


def test_carrier_offset_phase_continuous_when_frequency_changes():
    fs = 48_000.0
    cfo = CarrierOffset(1000.0, fs)
    a = cfo(np.ones(1000, np.complex64))
    cfo.freq_hz = -3000.0
    b = cfo(np.ones(1000, np.complex64))
    # the step from the last old sample to the first new one still advances by the old frequency
    step = np.angle(b[0] * np.conj(a[-1]))
    assert step == pytest.approx(2 * np.pi * 1000.0 / fs, abs=1e-5)
    assert np.angle(b[1] * np.conj(b[0])) == pytest.approx(-2 * np.pi * 3000.0 / fs, abs=1e-5)


# ---------------------------------------------------------------------------------------------
# clock offset


def tone(n, f, phase=0.0):
    return np.exp(1j * (2 * np.pi * f * np.arange(n) + phase)).astype(np.complex64)


def fitted_freq(y):
    ph = np.unwrap(np.angle(y.astype(np.complex128)))
    k = np.arange(y.size)
    return np.polyfit(k, ph, 1)[0] / (2 * np.pi)


@pytest.mark.parametrize("ppm", [-250.0, 37.5, 1000.0])
def test_clock_offset_ppm_from_count_and_tone(ppm):
    n, f0 = 200_000, 0.05
    co = ClockOffset(ppm)
    y = np.concatenate([co(tone(n, f0)), co.flush()])
    # outputs sit at input positions k / (1 + ppm 1e-6) < n
    assert y.size == math.ceil(n * (1 + ppm * 1e-6))
    core = y[100:-100]
    measured_ppm = (f0 / fitted_freq(core) - 1) * 1e6
    assert measured_ppm == pytest.approx(ppm, abs=1e-3)


def test_clock_offset_drift_follows_request():
    fs, n, f0 = 1e5, 400_000, 0.02
    ppm0, drift = 20.0, 30.0  # ppm, ppm/s: +120 ppm over the 4 s
    co = ClockOffset(ppm0, drift_ppm_per_s=drift, sample_rate_hz=fs)
    y = co(tone(n, f0))
    for start in (10_000, 200_000, 380_000):
        seg = y[start : start + 4000]
        measured = (f0 / fitted_freq(seg) - 1) * 1e6
        t_mid = (start + 2000) / fs
        assert measured == pytest.approx(ppm0 + drift * t_mid, abs=0.5)


def test_clock_offset_zero_ppm_is_identity_and_delay_interpolates():
    x = noise_iq(5000)
    co = ClockOffset(0.0)
    y = np.concatenate([co(x), co.flush()])
    assert np.array_equal(y, x)
    # half-sample delay of a tone at 0.3 cycles/sample: exact band-limited value to -80 dB
    n, f = 4000, 0.3
    co = ClockOffset(0.0, delay_samples=10.5)
    y = np.concatenate([co(tone(n, f)), co.flush()])
    want = tone(n, f)[:0]  # dtype
    want = np.exp(1j * 2 * np.pi * f * (np.arange(y.size) + 10.5))
    err = np.abs(y[100:-100] - want[100:-100])
    assert 20 * np.log10(err.max()) < -80
    assert interpolation_error_db(0.4) < -85


def test_clock_offset_float32_kernel_against_the_analytic_signal():
    """Three tones up to 0.34 cycles/sample resampled at -61 ppm with a fractional delay and a
    drift: every output equals the tones evaluated at its input position to -80 dB (the
    interpolator's own error is about -92 dB here, float32 accumulation about -130 dB)."""
    freqs, amps = np.array([0.02, 0.17, 0.34]), np.array([0.5, 0.3, 0.2])
    n, ppm0, drift, fs, delay = 60_000, -61.0, 40.0, 1e4, 7.3
    k = np.arange(n)
    x = (amps[None, :] * np.exp(2j * np.pi * freqs[None, :] * k[:, None])).sum(axis=1).astype(np.complex64)
    co = ClockOffset(ppm0, drift_ppm_per_s=drift, sample_rate_hz=fs, delay_samples=delay)
    y = np.concatenate([co(x[:31_000]), co(x[31_000:]), co.flush()]).astype(np.complex128)
    # input position of output m: delay + sum_{j<m} 1 / (1 + ppm_j 1e-6), ppm_j = ppm0 + drift j / fs
    ppm = ppm0 + drift * np.arange(y.size) / fs
    pos = delay + np.concatenate(([0.0], np.cumsum(1.0 / (1.0 + ppm[:-1] * 1e-6))))
    want = (amps[None, :] * np.exp(2j * np.pi * freqs[None, :] * pos[:, None])).sum(axis=1)
    core = slice(50, int(np.searchsorted(pos, n - 50)))
    err_db = 20 * np.log10(np.max(np.abs(y[core] - want[core])) / np.sqrt(np.sum(amps**2)))
    assert err_db < -80, err_db


# ---------------------------------------------------------------------------------------------
# phase noise


@pytest.mark.parametrize("name", ["pluto", "tcxo"])
def test_phase_noise_psd_follows_mask(name):
    fs = 1e6
    pn = PhaseNoise.preset(name, fs, seed=11)
    assert pn.fit_error_db < 1.5
    phase = pn.generate(1 << 21)
    f, psd = welch(phase, fs=fs, nperseg=1 << 16, return_onesided=False, detrend=False)
    checked = 0
    for offset, level in PRESETS[name][1]:
        if not 50 <= offset <= 0.4 * fs:
            continue
        band = (np.abs(f) > 0.9 * offset) & (np.abs(f) < 1.1 * offset)
        measured = 10 * np.log10(np.mean(psd[band]))
        # fit error <= 1.5 dB at a corner plus the estimate's spread (>= 60 averaged bins, ~0.3 dB)
        assert measured == pytest.approx(level, abs=2.0), (offset, level, measured)
        checked += 1
    assert checked >= 3
    # and the phase variance from ten times the first offset up matches the mask's integral
    f_lo = 10 * PRESETS[name][1][0][0]
    band = (np.abs(f) >= f_lo) & (np.abs(f) <= fs / 2)
    var = np.sum(psd[band]) * (f[1] - f[0])
    assert math.sqrt(var) == pytest.approx(integrated_phase_rms(PRESETS[name][1], f_lo, fs / 2), rel=0.15)


def test_phase_noise_custom_mask_and_carrier_scaling():
    mask = [(1e3, -70.0), (1e4, -90.0), (1e5, -110.0)]  # -20 dB/decade then floor
    pn = PhaseNoise(mask, 1e6, seed=2)
    assert pn.fit_error_db < 1.0
    phase = pn.generate(1 << 20)
    f, psd = welch(phase, fs=1e6, nperseg=1 << 14, return_onesided=False, detrend=False)
    for fo in (3e3, 3e4, 2e5):
        band = (np.abs(f) > 0.9 * fo) & (np.abs(f) < 1.1 * fo)
        assert 10 * np.log10(np.mean(psd[band])) == pytest.approx(float(mask_db(mask, fo)), abs=1.5)
    # preset scaling: 20 log10 of the frequency ratio
    base = preset_mask("pluto")
    moved = preset_mask("pluto", carrier_hz=4.8e9)
    assert moved[0][1] - base[0][1] == pytest.approx(20 * math.log10(2), abs=1e-9)
    assert integrated_phase_rms(moved, 100, 1e6) == pytest.approx(2 * integrated_phase_rms(base, 100, 1e6))


def test_phase_noise_keeps_amplitude():
    x = noise_iq(10_000)
    y = PhaseNoise.preset("pluto", 2e6, seed=1)(x)
    assert np.allclose(np.abs(y), np.abs(x), rtol=1e-5)


@pytest.mark.parametrize("name, fs", [("tcxo", 2e6), ("pluto", 1e6), ("ocxo", 1e5)])
def test_phase_noise_parallel_filter_matches_lfilter_of_the_cascade(name, fs):
    """The parallel (partial-fraction) realization against scipy's lfilter of each fitted section."""
    p, z, gain, _ = fit_mask(preset_mask(name), fs)
    r, c, amp = parallel_form(p, z)
    assert amp < 100  # the branches hardly cancel (module notes)
    n = 200_000
    key = noise_key(4)[0]
    w = np.empty(n)
    fill_normal(key, 0, w)
    ref = w.copy()
    for pk, zk in zip(p, z, strict=True):
        ref = lfilter([1.0, -zk], [1.0, -pk], ref)
    ref *= gain
    par = np.empty(n)
    _parallel(key, 0, p, r, c, gain, np.zeros(p.size), par)
    cas = np.empty(n)
    _cascade(key, 0, p, z, gain, np.zeros(p.size + 1), cas)
    scale = np.std(ref[n // 2 :])
    assert np.max(np.abs(par - ref)) < 1e-9 * scale
    assert np.max(np.abs(cas - ref)) < 1e-9 * scale
    pn = PhaseNoise.preset(name, fs, seed=1)
    assert pn.parallel and pn.amplification == pytest.approx(amp)


# ---------------------------------------------------------------------------------------------
# streaming: chunking invariance and reset


def make_blocks():
    return {
        "awgn": lambda: Awgn(5.0, samples_per_symbol=2, signal_power=0.5, seed=3),
        "gain": lambda: Gain(-3.0, 1.0),
        "cfo": lambda: CarrierOffset(1234.5, 1e5, rate_hz_per_s=-500.0, phase_rad=2.0),
        "clock": lambda: ClockOffset(-321.0, drift_ppm_per_s=50.0, sample_rate_hz=1e5, delay_samples=3.25),
        "clock_fast": lambda: ClockOffset(5000.0, sample_rate_hz=1e5),
        "phase_noise": lambda: PhaseNoise.preset("tcxo", 1e5, seed=9),
        "chain": lambda: Chain(
            Gain(1.0),
            CarrierOffset(100.0, 1e5, 10.0),
            ClockOffset(80.0, sample_rate_hz=1e5),
            PhaseNoise.preset("pluto", 1e5, seed=4),
            Awgn(12.0, seed=5),
        ),
    }


@pytest.mark.parametrize("name", list(make_blocks()))
def test_random_chunking_gives_identical_output(name):
    make = make_blocks()[name]
    x = noise_iq(30_000, seed=1)
    whole = make()
    ref = np.concatenate([whole(x), whole.flush()])
    for seed in range(3):
        got = run_chunked(make(), x, np.random.default_rng(seed), with_flush=True)
        assert got.dtype == np.complex64
        assert np.array_equal(got, ref), name
    # reset replays the same stream
    whole.reset()
    again = np.concatenate([whole(x), whole.flush()])
    assert np.array_equal(again, ref)


# ---------------------------------------------------------------------------------------------
# bad input


def test_nan_sample_named_by_index():
    x = np.ones(100, np.complex64)
    x[42] = np.nan
    for block in (Awgn(3.0, seed=1), Gain(), CarrierOffset(1.0, 10.0), ClockOffset(1.0),
                  PhaseNoise.preset("ocxo", 1e4, seed=1)):
        with pytest.raises(ValueError, match="at sample 42"):
            block(x)


def test_bad_shapes_and_parameters_name_the_field():
    with pytest.raises(ValueError, match="1-D"):
        Gain()(np.ones((2, 3), np.complex64))
    with pytest.raises(TypeError, match="complex"):
        Gain()(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="esn0_db must be in"):
        Awgn(float("nan"))
    with pytest.raises(ValueError, match="samples_per_symbol must be in"):
        Awgn(3.0, samples_per_symbol=0)
    with pytest.raises(ValueError, match=r"freq_hz must be in \[-500, 500\]"):
        CarrierOffset(600.0, 1000.0)
    with pytest.raises(ValueError, match="sample_rate_hz"):
        CarrierOffset(0.0, -1.0)
    with pytest.raises(ValueError, match="ppm must be in"):
        ClockOffset(2e5)
    with pytest.raises(ValueError, match="delay_samples must be in"):
        ClockOffset(0.0, delay_samples=-1)
    with pytest.raises(ValueError, match="offsets must increase"):
        check_mask([(100, -80), (10, -70)])
    with pytest.raises(ValueError, match=r"mask\[1\] level must be in"):
        check_mask([(100, -80), (1000, 5.0)])
    with pytest.raises(ValueError, match="preset must be one of"):
        PhaseNoise.preset("rubidium", 1e6)
    with pytest.raises(TypeError, match="seed"):
        Awgn(3.0, seed="abc")
    with pytest.raises(TypeError, match=r"blocks\[1\]"):
        Chain(Gain(), 3)


# ---------------------------------------------------------------------------------------------
# clock drift (one sample out per sample in)


def test_clock_drift_ppm_from_tone_and_length():
    from modem.channel.clock_offset import ClockDrift

    n, f0, ppm = 200_000, 0.05, 40.0
    cd = ClockDrift(ppm, max_drift_samples=64)
    y = cd(tone(n, f0))
    assert y.size == n
    core = y[cd.latency + 100 :]
    assert (f0 / fitted_freq(core) - 1) * 1e6 == pytest.approx(ppm, abs=1e-3)
    assert cd.slip_samples == pytest.approx(n * (1 / (1 + ppm * 1e-6) - 1), rel=1e-6)
    # the slip saturates at max_drift_samples: the tone then comes back to its own frequency
    cd = ClockDrift(1000.0, max_drift_samples=8)
    y = cd(tone(100_000, f0))
    assert cd.slip_samples == pytest.approx(-8.0)
    assert fitted_freq(y[50_000:]) == pytest.approx(f0, rel=1e-9)


def test_clock_drift_chunking_and_reset():
    from modem.channel.clock_offset import ClockDrift

    x = noise_iq(20_000, seed=3)
    a = ClockDrift(-250.0, drift_ppm_per_s=100.0, sample_rate_hz=1e4, max_drift_samples=100)
    ref = a(x)
    got = run_chunked(ClockDrift(-250.0, drift_ppm_per_s=100.0, sample_rate_hz=1e4, max_drift_samples=100), x,
                      np.random.default_rng(5))
    assert np.array_equal(got, ref)
    a.reset()
    assert np.array_equal(a(x), ref)
    with pytest.raises(ValueError, match="max_drift_samples must be an integer"):
        ClockDrift(1.0, max_drift_samples=0)
