"""Generic synchronization blocks (modem/sync): Agc, Rotator, TimingRecovery, FrontEnd.

Physics: the AGC's output power against its target, the rotator against exp(-j 2 pi f n), the
interpolators against exact band-limited interpolation and against the matched filter computed
with np.convolve, the timing loop's symbol error (MER) against the channel's Es/N0 at clock
offsets of +-200 ppm for BPSK, QPSK, 8PSK and 16APSK, and its clock estimate against the offset
applied (modem.channel.ClockOffset). Streaming: random chunkings give bit-identical output.
Fixed seeds throughout.
"""

from __future__ import annotations

import numpy as np
import pytest

from modem.channel import Awgn, ClockOffset
from modem.dvbs2.mapping import constellation
from modem.dvbs2.pulse import PulseShaper, rrc_taps
from modem.sync import Agc, FrontEnd, Rotator, TimingRecovery
from modem.sync.timing import gardner_slope, interpolator_bank, rrc_bank


def chunked(block, x, rng, sizes=(1, 7, 333, 4096)):
    """Run ``block`` over x in random chunks; concatenate what it returns (arrays or tuples)."""
    outs, i = [], 0
    while i < x.size:
        n = int(rng.choice(sizes))
        outs.append(block(x[i : i + n]))
        i += n
    if isinstance(outs[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*outs, strict=True))
    return np.concatenate(outs)


def shaped(points, n_sym, sps, rolloff, esn0_db, ppm=0.0, delay=0.0, seed=0):
    """Random symbols of ``points`` -> RRC (span 16) -> clock offset -> AWGN; (symbols, samples)."""
    rng = np.random.default_rng(seed)
    sym = rng.choice(points, n_sym).astype(np.complex64)
    x = PulseShaper(rolloff, sps, 16)(sym)
    clk = ClockOffset(ppm, delay_samples=delay)
    x = np.concatenate([clk(x), clk.flush()])
    y = Awgn(esn0_db, sps, 1.0 / sps, seed=seed + 1)(x)
    return sym, y


def mer_db(rx, sym, tail=4000):
    """MER (dB) of the last ``tail`` received symbols against the sent ones (best lag, LS gain)."""
    r = rx[-tail:].astype(np.complex128)
    best = 0.0
    for lag in range(-64, 64):
        idx = np.arange(rx.size - tail, rx.size) + lag
        if idx.min() < 0 or idx.max() >= sym.size:
            continue
        s = sym[idx].astype(np.complex128)
        g = np.vdot(s, r) / np.vdot(s, s)
        mer = -10 * np.log10(np.mean(np.abs(r / g - s) ** 2))
        best = max(best, mer)
    return best


# ---------------------------------------------------------------------------------------------
# Agc


def test_agc_output_power_follows_a_level_step_with_its_time_constant():
    rng = np.random.default_rng(1)
    n = 40_000
    x = (rng.standard_normal(2 * n) + 1j * rng.standard_normal(2 * n)).astype(np.complex64)
    x[:n] *= 0.01  # -40 dB, then +20 dB
    x[n:] *= 10.0
    agc = Agc(target_power=2.0, time_constant=1000)
    y = agc(x)
    p = np.abs(y) ** 2
    assert np.mean(p[2000:n]) == pytest.approx(2.0, rel=0.05)  # running mean from the start: no transient
    assert np.mean(p[n + 8000 :]) == pytest.approx(2.0, rel=0.05)  # 8 time constants after the step
    assert np.mean(p[n : n + 20]) > 50 * 2.0  # right after a +60 dB step the gain still lags
    assert agc.power == pytest.approx(200.0, rel=0.1)
    assert agc.gain == pytest.approx(np.sqrt(2.0 / agc.power))


def test_agc_chunking_gives_identical_output_and_zeros_stay_zeros():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(20_000) + 1j * rng.standard_normal(20_000)).astype(np.complex64)
    ref = Agc(time_constant=500)(x)
    assert np.array_equal(chunked(Agc(time_constant=500), x, rng), ref)
    z = Agc()(np.zeros(100, np.complex64))
    assert np.all(z == 0) and np.all(np.isfinite(z))


def test_agc_rejects_bad_arguments_and_non_finite_samples():
    with pytest.raises(ValueError, match=r"time_constant must be >= 1"):
        Agc(time_constant=0.5)
    with pytest.raises(ValueError, match=r"target_power must be > 0"):
        Agc(target_power=0.0)
    agc = Agc()
    agc(np.ones(10, np.complex64))
    bad = np.ones(8, np.complex64)
    bad[5] = np.nan
    with pytest.raises(
        ValueError, match=r"samples must be finite; got .*nan.* at index 5 \(stream sample 15\)"
    ):
        agc(bad)


# ---------------------------------------------------------------------------------------------
# Rotator


def test_rotator_removes_a_frequency_and_stays_phase_continuous_across_a_change():
    n = np.arange(10_000)
    f1, f2 = 0.0123, -0.2
    phase = np.where(n < 5000, 2 * np.pi * f1 * n, 2 * np.pi * (f1 * 5000 + f2 * (n - 5000))) + 0.4
    x = np.exp(1j * phase).astype(np.complex64)
    rot = Rotator(f1, phase=0.4)
    y1 = rot(x[:5000])
    rot.frequency = f2
    y2 = rot(x[5000:])
    y = np.concatenate([y1, y2])
    assert np.max(np.abs(y - 1)) < 1e-4  # the exact phase law removed, continuous at the change
    assert np.allclose(rot.phase_history(n), phase, atol=1e-9)
    assert rot.changes(0, 10_000) == [5000]


def test_rotator_chunking_is_bit_exact():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(30_000) + 1j * rng.standard_normal(30_000)).astype(np.complex64)
    ref = Rotator(0.3141)(x)
    assert np.array_equal(chunked(Rotator(0.3141), x, rng), ref)
    with pytest.raises(ValueError, match=r"frequency must be in \[-0.5, 0.5\] cycles per sample"):
        Rotator(0.7)


# ---------------------------------------------------------------------------------------------
# interpolators


def test_sinc_interpolator_bank_on_a_band_limited_signal():
    """Interpolating an RRC(0.35) signal at 2 samples/symbol (band +-0.34 of the sample rate) at
    random fractional instants: error below -50 dB of the signal power (exact reference: the
    same signal sampled there)."""
    rng = np.random.default_rng(4)
    bank = interpolator_bank(12, 256)
    assert bank.shape == (257, 12) and np.allclose(bank.sum(axis=1), 1.0)
    t = np.arange(-80, 80) / 2.0
    sym = rng.choice([-1, 1], 200) + 1j * rng.choice([-1, 1], 200)
    h = rrc_taps(0.35, 64, 32)  # fine grid: 64 points per symbol

    def signal(times):  # sum over symbols of h at (time - m) symbols, linear interpolation of h
        s = np.zeros(times.size, complex)
        for m in range(60, 140):
            u = (times - (m - 100)) * 64 + (h.size - 1) / 2
            s += sym[m] * np.interp(u, np.arange(h.size), h, left=0, right=0)
        return s

    samples = signal(t)
    err, pw = [], []
    for _ in range(200):
        n = int(rng.integers(40, 120))
        mu = rng.uniform(0, 1)
        ph = int(mu * 256 + 0.5)
        y = np.dot(bank[ph], samples[n - 5 : n + 7])
        exact = signal(np.array([t[n] + ph / 256 / 2.0]))[0]
        err.append(abs(y - exact) ** 2)
        pw.append(abs(exact) ** 2)
    assert 10 * np.log10(np.mean(err) / np.mean(pw)) < -50


def test_fused_rrc_bank_equals_the_matched_filter():
    """At integer instants the fused bank is the matched filter: symbols from TimingRecovery with
    rrc_span, timing held (zero loop bandwidth is not allowed: a tiny one, no noise, exact clock),
    equal np.convolve(samples, rrc_taps) at the symbol peaks to float32 rounding."""
    bank = rrc_bank(0.25, 4, 12)
    ref = rrc_taps(0.25, 4, 12)
    assert np.allclose(bank[0, :-1], ref[1:-1], atol=1e-7) and bank[0, -1] == 0.0
    rng = np.random.default_rng(5)
    sym = rng.choice([1 + 1j, -1 - 1j, 1 - 1j, -1 + 1j], 600).astype(np.complex64) / np.sqrt(2)
    x = PulseShaper(0.25, 4, 12)(sym)
    tr = TimingRecovery(4, loop_bandwidth=1e-6, rolloff=0.25, rrc_span=12)
    tr.reset(position=24.0)  # symbol 0 is centred at span * sps / 2 of the shaper output
    out, pos = tr.process(x)
    mf = np.convolve(x, rrc_taps(0.25, 4, 12))[24 + 24 :: 4]  # filter delay 24 + pulse centre 24
    k = min(out.size, mf.size) - 10
    assert np.allclose(pos[:k], 24 + 4 * np.arange(k), atol=1e-3)
    # the fused filter drops the RRC's two outermost taps (|offset| = span * sps / 2, ~2e-3)
    assert np.max(np.abs(out[20:k] - mf[20:k])) < 0.01
    assert np.max(np.abs(out[20:k] - sym[20:k])) < 0.03


# ---------------------------------------------------------------------------------------------
# TimingRecovery


@pytest.mark.parametrize("modulation", ["BPSK", "QPSK", "8PSK", "16APSK"])
@pytest.mark.parametrize("ppm", [-200.0, 200.0])
def test_timing_recovery_locks_at_a_clock_offset(modulation, ppm):
    """20 dB Es/N0, a fractional start and +-200 ppm: after 6000 symbols the MER is within 0.4 dB
    of the channel's Es/N0 and the clock estimate within 25 ppm of the offset applied."""
    rate = {"BPSK": None, "QPSK": "1/2", "8PSK": "3/5", "16APSK": "3/4"}[modulation]
    points = np.array([1, -1], complex) if rate is None else constellation(modulation, rate)[0]
    sym, y = shaped(points, 10_000, 2, 0.35, 20.0, ppm=ppm, delay=0.37, seed=abs(int(ppm)) + len(modulation))
    tr = TimingRecovery(2, loop_bandwidth=0.002, rrc_span=16)
    out = tr(y)
    assert mer_db(out, sym) > 20.0 - 0.4
    assert tr.clock_offset_ppm == pytest.approx(ppm, abs=25.0)


def test_timing_recovery_at_low_snr_and_4_samples_per_symbol():
    """QPSK at Es/N0 = -2.35 dB, 100 ppm, 4 samples/symbol, roll-off 0.20: MER within 0.15 dB of
    Es/N0 (the loop's jitter costs little); sinc interpolation after a separate matched filter
    does as well."""
    pts = constellation("QPSK", "1/4")[0]
    sym, y = shaped(pts, 40_000, 4, 0.20, -2.35, ppm=100.0, delay=1.7, seed=9)
    fused = TimingRecovery(4, loop_bandwidth=5e-4, rolloff=0.20, rrc_span=16)(y)
    assert mer_db(fused, sym, tail=20_000) > -2.35 - 0.15
    mf = np.convolve(y, rrc_taps(0.20, 4, 16))[32:].astype(np.complex64)
    sinc = TimingRecovery(4, loop_bandwidth=5e-4, rolloff=0.20)(mf)
    assert mer_db(sinc, sym, tail=20_000) > -2.35 - 0.15


def test_timing_recovery_chunking_is_bit_exact_and_flush_returns_the_rest():
    pts = constellation("8PSK", "3/5")[0]
    _, y = shaped(pts, 3000, 2, 0.35, 15.0, ppm=-80.0, seed=11)
    rng = np.random.default_rng(12)
    tr = TimingRecovery(2, rrc_span=16)
    ref_s, ref_p = tr.process(y)
    tail_s, tail_p = tr.flush()
    got_s, got_p = chunked(TimingRecovery(2, rrc_span=16).process, y, rng)
    assert np.array_equal(got_s, ref_s) and np.array_equal(got_p, ref_p)
    assert tail_p.size >= 1 and np.all(tail_p < y.size) and np.all(tail_p > ref_p[-1])
    d = np.diff(ref_p[100:-10])  # after the pull-in
    assert np.all(d > 1.9) and np.all(d < 2.1)


def test_gardner_detector_normalization_and_bad_arguments():
    assert gardner_slope(0.35) < 0 and gardner_slope(0.20) < 0  # late sampling: negative mean error
    assert abs(gardner_slope(0.20)) < abs(gardner_slope(0.35))  # smaller roll-off, weaker detector
    with pytest.raises(ValueError, match=r"samples_per_symbol must be an integer in 2..1024"):
        TimingRecovery(1)
    with pytest.raises(ValueError, match=r"rrc_span must be an even number of symbols"):
        TimingRecovery(2, rrc_span=15)
    with pytest.raises(ValueError, match=r"loop_bandwidth must be > 0 and <= 0.1"):
        TimingRecovery(2, loop_bandwidth=0.5)
    tr = TimingRecovery(2)
    with pytest.raises(ValueError, match=r"clock_offset must be within \+-0.005"):
        tr.reset(clock_offset=0.01)
    tr(np.ones(100, np.complex64))
    with pytest.raises(
        ValueError, match=r"samples must be finite; got \(inf\+0j\) at index 3 \(stream sample 103\)"
    ):
        tr(np.array([0, 0, 0, np.inf], np.complex64))


def test_front_end_reports_instants_and_the_phase_it_removed():
    """A QPSK signal with a frequency offset of 0.05 cycles/sample: with the rotator set to it,
    symbol k times exp(j phases[k]) is the transmitted symbol times exp(j 2 pi f t_k)."""
    pts = constellation("QPSK", "1/2")[0]
    sym, y = shaped(pts, 4000, 2, 0.35, 40.0, seed=13)
    f = 0.05
    n = np.arange(y.size)
    y = (y * np.exp(2j * np.pi * f * n)).astype(np.complex64)
    fe = FrontEnd(0.35, 2, 16, loop_bandwidth=2e-3, frequency=f)
    out, pos, phi = fe(y)
    assert np.allclose(phi, 2 * np.pi * f * pos)
    assert mer_db(out[:3000], sym, tail=2000) > 35.0


def test_timing_loop_started_a_symbol_early_on_a_stream_from_silence_does_not_wind_up():
    """Regression: a stream that starts with silence (a pulse ramping up from zeros) at 30 dB,
    the first instant one symbol early at 4 samples/symbol, roll-off 0.25. The detector waits for
    its power normalization (WARM_UP) and clips its output, so the clock estimate cannot be kicked
    off into cycle slipping (it settled at -4200 ppm before): the period stays at 4.000."""
    pts = constellation("8PSK", "3/5")[0]
    rng = np.random.default_rng(14)
    sym = rng.choice(pts, 6000).astype(np.complex64)
    x = PulseShaper(0.25, 4, 12)(sym)  # symbol 0 centred at sample 24
    y = Awgn(30.0, 4, 0.25, seed=15)(x)
    tr = TimingRecovery(4, loop_bandwidth=2e-3, rolloff=0.25, rrc_span=10)
    tr.reset(position=20.0)
    _, pos = tr.process(y)
    assert np.mean(np.diff(pos[1000:])) == pytest.approx(4.0, abs=2e-4)
    assert abs(tr.clock_offset_ppm) < 50
