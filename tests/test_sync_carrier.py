"""Carrier tracking from known blocks (modem/sync/carrier.py).

The derotation kernel against numpy's exp of the same piecewise-quadratic phase; the Kalman
tracker on synthetic pilot blocks with a frequency ramp and phase noise, against the true
phase; the M-th power frequency estimate against the offset applied; the decision-directed loop
on 8PSK. Fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from modem.dvbs2.mapping import constellation
from modem.sync.carrier import Block, PhaseTracker, dd_pll, derotate, refine_frequency_mpsk


def test_derotate_equals_numpy_on_a_piecewise_quadratic_phase():
    rng = np.random.default_rng(1)
    n = 5000
    y = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    centres = np.array([10.5, 700.0, 1900.25, 3100.0, 4200.5])
    phases = np.array([0.3, -2.0, 40.0, 41.5, 39.0])
    curv = np.array([1e-6, -3e-6, 0.0, 2e-6, 5e-6])
    k0 = 3
    k = k0 + np.arange(n)
    expect = np.empty(n)
    for i, kk in enumerate(k):
        j = int(np.clip(np.searchsorted(centres, kk, side="right") - 1, 0, centres.size - 2))
        a, b = centres[j], centres[j + 1]
        s = (phases[j + 1] - phases[j]) / (b - a)
        c2 = 0.5 * curv[j] if a <= kk < b else 0.0
        expect[i] = phases[j] + s * (kk - a) + c2 * (kk - a) * (kk - b)
    got = derotate(y, k0, centres, phases, curv)
    ref = y * np.exp(-1j * expect)
    assert np.max(np.abs(got - ref)) < 2e-5


def test_tracker_follows_a_ramp_and_phase_noise_from_pilot_blocks():
    """Pilot blocks of 36 symbols every 1476 (DVB-S2 spacing) at Es/N0 = 0 dB; total phase
    theta(k) = 0.7 + 2 pi (0.01 k + 2e-9 k^2 / 2) + a random walk of 2e-6 rad^2/symbol. After
    the first frame, the smoothed phase at the blocks is within 0.12 rad rms of the truth (the
    per-block noise alone is 0.118 rad; smoothing must beat it) and the frequency within 1e-5."""
    rng = np.random.default_rng(2)
    n_blocks, spacing, nb = 60, 1476, 36
    walk = np.cumsum(rng.normal(0, np.sqrt(2e-6), n_blocks * spacing + nb))
    k = np.arange(n_blocks * spacing + nb)
    theta = 0.7 + 2 * np.pi * (0.01 * k + 0.5 * 2e-9 * k**2) + walk
    ref = np.exp(1j * rng.uniform(0, 2 * np.pi, k.size))  # any unit-modulus known symbols
    fe = 2 * np.pi * 0.0095 * k  # a front end that removed most of the offset
    y = (ref * np.exp(1j * (theta - fe)) + (rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size))
         * np.sqrt(0.5)).astype(np.complex64)  # fmt: skip
    tr = PhaseTracker(q_phase=2e-6, q_freq=1e-13, q_rate=1e-24)
    c0 = 0.5 * (nb - 1)
    tr.start(c0, float(theta[int(c0)]) + 0.05, 2 * np.pi * 0.01 + 2e-5, 0.01, (2 * np.pi * 2e-5) ** 2)
    blocks = [Block(b * spacing, y[b * spacing : b * spacing + nb], ref[b * spacing : b * spacing + nb],
                    fe[b * spacing : b * spacing + nb]) for b in range(1, n_blocks)]  # fmt: skip
    err = []
    for i in range(0, len(blocks), 20):  # three "frames" of 20 blocks
        _, centres, thetas = tr.smooth(blocks[i : i + 20], noise_var=1.0)
        if i:
            err += list(thetas - np.interp(centres, k, theta))
    err = (np.array(err) + np.pi) % (2 * np.pi) - np.pi
    assert np.sqrt(np.mean(err**2)) < 0.12
    f_true = 0.01 + 2e-9 * tr.k
    assert tr.omega / (2 * np.pi) == pytest.approx(f_true, abs=1e-5)


@pytest.mark.parametrize("modulation, order, esn0", [("QPSK", 4, 0.0), ("8PSK", 8, 8.0)])
def test_mth_power_frequency_estimate(modulation, order, esn0):
    """30 000 symbols, frequency 1.234e-3 cycles/symbol, searched within +-0.004 of 0: within
    2e-6 (the pilots' ambiguity is 3.4e-4)."""
    rng = np.random.default_rng(3)
    pts = constellation(modulation, "2/3")[0]
    s = rng.choice(pts, 30_000)
    n0 = 10 ** (-esn0 / 10)
    y = s * np.exp(1j * (0.4 + 2 * np.pi * 1.234e-3 * np.arange(s.size)))
    y = (y + np.sqrt(n0 / 2) * (rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size))).astype(
        np.complex64
    )
    assert refine_frequency_mpsk(y, order, 0.0, 0.004) == pytest.approx(1.234e-3, abs=2e-6)


def test_decision_directed_loop_on_8psk():
    """8PSK at 12 dB, a residual frequency of 2e-4 cycles/symbol and a phase offset of 0.3 rad: the
    loop (B_n T = 2e-3) locks; after 3000 symbols its phase is within 0.05 rad rms of the truth
    (modulo pi/4) and its frequency within 2e-5."""
    rng = np.random.default_rng(4)
    pts = constellation("8PSK", "3/4")[0]
    s = rng.choice(pts, 20_000)
    k = np.arange(s.size)
    theta = 0.3 + 2 * np.pi * 2e-4 * k
    y = s * np.exp(1j * theta) + np.sqrt(10**-1.2 / 2) * (
        rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size)
    )
    ph, w = dd_pll(y.astype(np.complex64), pts, 0.0, 0.0, 2e-3)
    q = np.pi / 4  # the loop settles on any of the 8 symmetric phases (headers resolve that)
    e = (ph[3000:] - theta[3000:] + q / 2) % q - q / 2
    assert np.sqrt(np.mean(e**2)) < 0.05
    assert w / (2 * np.pi) == pytest.approx(2e-4, abs=2e-5)
