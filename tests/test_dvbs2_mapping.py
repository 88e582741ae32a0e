"""Tests of the DVB-S2 bit interleaver, constellations and max-log demapper (EN 302 307-1 §5.3.3, §5.4)."""

from __future__ import annotations

import numpy as np
import pytest

from modem.dvbs2 import mapping as mp

# (modulation, rate) of the 28 MODCODs of Table 12, read through the module's own table
ALL_MODCODS = [mp.modcod_parameters(i)[:2] for i in range(1, 29)]
ONE_PER_MOD = [("QPSK", "1/2"), ("8PSK", "3/5"), ("8PSK", "2/3"), ("16APSK", "3/4"), ("32APSK", "4/5")]
DEG = np.pi / 180


def _angle_deg(z) -> float:
    return float(np.angle(complex(z), deg=True))


# ---------------------------------------------------------------------------------------------
# interleaver


def test_modcod_table_matches_table_12():
    assert mp.modcod_parameters(1)[:2] == ("QPSK", "1/4")
    assert mp.modcod_parameters(12)[:2] == ("8PSK", "3/5")
    assert mp.modcod_parameters(18) == ("16APSK", "2/3", 3.15, None)
    assert mp.modcod_parameters(28) == ("32APSK", "9/10", 2.53, 4.30)
    with pytest.raises(ValueError, match="index"):
        mp.modcod_parameters(29)


@pytest.mark.parametrize("n_ldpc", [64800, 16200])
@pytest.mark.parametrize("mod_rate", ALL_MODCODS)
def test_interleaver_is_a_permutation(mod_rate, n_ldpc):
    perm = mp.interleaver_permutation(*mod_rate, n_ldpc)
    assert perm.shape == (n_ldpc,)
    assert np.array_equal(np.sort(perm), np.arange(n_ldpc))
    if mod_rate[0] == "QPSK":
        assert np.array_equal(perm, np.arange(n_ldpc))


def test_interleaver_small_hand_checked_examples():
    # columns written top to bottom, rows read left to right
    # 8PSK, 9 bits -> 3 rows: columns [0 1 2] [3 4 5] [6 7 8]
    assert mp.interleave(np.arange(9), "8PSK", "2/3")[0].tolist() == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    # 8PSK rate 3/5 reads the columns 3, 2, 1 (MSB of the BBHEADER read out third, Figure 8)
    assert mp.interleave(np.arange(9), "8PSK", "3/5")[0].tolist() == [6, 3, 0, 7, 4, 1, 8, 5, 2]
    assert mp.interleave(np.arange(8), "16APSK", "2/3")[0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert mp.interleave(np.arange(10), "32APSK", "3/4")[0].tolist() == [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    assert mp.interleave(np.arange(6), "QPSK", "1/2")[0].tolist() == [0, 1, 2, 3, 4, 5]


def test_interleaver_normal_frame_positions():
    rows = 64800 // 3  # Table 8: 21 600 rows for 8PSK
    p = mp.interleaver_permutation("8PSK", "2/3", 64800)
    assert p[:4].tolist() == [0, rows, 2 * rows, 1]
    p35 = mp.interleaver_permutation("8PSK", "3/5", 64800)
    assert p35[:4].tolist() == [2 * rows, rows, 0, 2 * rows + 1]
    assert int(np.flatnonzero(p35 == 0)[0]) == 2  # the first code bit is the third bit read out
    rows32 = 64800 // 5  # 12 960
    assert mp.interleaver_permutation("32APSK", "9/10", 64800)[:6].tolist() == [
        0, rows32, 2 * rows32, 3 * rows32, 4 * rows32, 1,
    ]  # fmt: skip
    assert mp.interleaver_permutation("16APSK", "2/3", 16200)[4] == 1  # 4 050 rows, 4 columns


@pytest.mark.parametrize("mod_rate", ONE_PER_MOD + [("32APSK", "9/10")])
def test_deinterleave_inverts_bits_and_llrs(mod_rate):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (3, 16200), dtype=np.uint8)
    x = mp.interleave(bits, *mod_rate)
    assert x.dtype == np.uint8 and x.shape == bits.shape
    assert np.array_equal(mp.deinterleave(x, *mod_rate), bits)
    llr = rng.standard_normal((2, 64800)).astype(np.float32)
    y = mp.interleave(llr, *mod_rate)
    assert y.dtype == np.float32
    assert np.array_equal(mp.deinterleave(y, *mod_rate), llr)
    assert np.array_equal(y[1], llr[1][mp.interleaver_permutation(*mod_rate, 64800)])


def test_interleaver_argument_errors():
    with pytest.raises(ValueError, match="modulation"):
        mp.interleave(np.zeros(64800), "64APSK", "2/3")
    with pytest.raises(ValueError, match="rate"):
        mp.interleave(np.zeros(64800), "8PSK", "1/2")
    with pytest.raises(ValueError, match="n_ldpc"):
        mp.interleave(np.zeros(64801), "8PSK", "2/3")
    with pytest.raises(ValueError, match="shape"):
        mp.interleave(np.zeros((2, 3, 4)), "8PSK", "2/3")


# ---------------------------------------------------------------------------------------------
# constellations


@pytest.mark.parametrize("mod_rate", ALL_MODCODS)
def test_constellation_unit_energy_and_labels(mod_rate):
    pts, labels = mp.constellation(*mod_rate)
    bps = mp.BITS_PER_SYMBOL[mod_rate[0]]
    assert pts.dtype == np.complex64 and pts.shape == (2**bps,)
    assert np.mean(np.abs(pts.astype(np.complex128)) ** 2) == pytest.approx(1.0, abs=1e-6)
    assert labels.shape == (2**bps, bps)
    assert np.array_equal(labels @ (1 << np.arange(bps - 1, -1, -1)), np.arange(2**bps))
    assert len({complex(p) for p in np.round(pts, 5)}) == 2**bps  # distinct points


def test_qpsk_labels_figure_9():
    pts, _ = mp.constellation("QPSK")
    assert np.allclose(np.abs(pts), 1.0)
    # I = MSB, Q = LSB, bit 0 -> positive: 00 at π/4, 10 at 3π/4, 11 at 5π/4, 01 at 7π/4
    assert [round(_angle_deg(pts[k])) for k in (0b00, 0b10, 0b11, 0b01)] == [45, 135, -135, -45]


def test_8psk_labels_figure_10_and_gray():
    pts, labels = mp.constellation("8PSK", "2/3")
    assert np.allclose(np.abs(pts), 1.0)
    want = {0b000: 45, 0b001: 0, 0b100: 90, 0b110: 135, 0b010: 180, 0b011: -135, 0b111: -90, 0b101: -45}
    for lab, deg in want.items():
        assert _angle_deg(pts[lab]) == pytest.approx(deg, abs=1e-4)
    order = np.argsort(np.angle(pts))  # neighbours around the circle differ in exactly one bit
    for a, b in zip(order, np.roll(order, -1), strict=True):
        assert np.sum(labels[a] != labels[b]) == 1


@pytest.mark.parametrize("rate", ["2/3", "3/4", "4/5", "5/6", "8/9", "9/10"])
def test_16apsk_rings_and_labels_figure_11(rate):
    gamma = {"2/3": 3.15, "3/4": 2.85, "4/5": 2.75, "5/6": 2.70, "8/9": 2.60, "9/10": 2.57}[rate]  # Table 9
    pts, _ = mp.constellation("16APSK", rate)
    r = np.abs(pts.astype(np.complex128))
    inner = r < r.mean()
    assert inner.sum() == 4 and np.ptp(r[inner]) < 1e-6 and np.ptp(r[~inner]) < 1e-6
    assert r[~inner][0] / r[inner][0] == pytest.approx(gamma, rel=1e-6)
    assert r[inner][0] ** 2 + 3 * r[~inner][0] ** 2 == pytest.approx(4.0, rel=1e-6)  # E = 1 option
    assert np.flatnonzero(inner).tolist() == [0b1100, 0b1101, 0b1110, 0b1111]
    cases = {0b1100: 45, 0b0000: 45, 0b0100: 15, 0b1000: 75, 0b1010: 105, 0b0110: 165, 0b0011: -135,
             0b1001: -75, 0b1111: -135}  # fmt: skip
    for lab, deg in cases.items():
        assert _angle_deg(pts[lab]) == pytest.approx(deg, abs=1e-4)
    # outer ring uniformly spaced by 30°, inner by 90°
    assert np.allclose(np.sort(np.angle(pts[~inner], deg=True) % 360), np.arange(15, 360, 30), atol=1e-4)


@pytest.mark.parametrize("rate", ["3/4", "4/5", "5/6", "8/9", "9/10"])
def test_32apsk_rings_and_labels_figure_12(rate):
    g1, g2 = {"3/4": (2.84, 5.27), "4/5": (2.72, 4.87), "5/6": (2.64, 4.64), "8/9": (2.54, 4.33),
              "9/10": (2.53, 4.30)}[rate]  # fmt: skip  # Table 10
    pts, _ = mp.constellation("32APSK", rate)
    r = np.abs(pts.astype(np.complex128))
    radii = np.unique(np.round(r, 5))
    assert radii.size == 3
    counts = [int(np.sum(np.isclose(r, q, atol=1e-5))) for q in radii]
    assert counts == [4, 12, 16]
    assert radii[1] / radii[0] == pytest.approx(g1, rel=1e-4)
    assert radii[2] / radii[0] == pytest.approx(g2, rel=1e-4)
    assert np.sum(r**2) / 4 == pytest.approx(8.0, rel=1e-5)  # R1^2 + 3 R2^2 + 4 R3^2 = 8
    ring = {lab: int(np.argmin(np.abs(radii - r[lab]))) for lab in range(32)}
    cases = {0b10001: (0, 45), 0b10111: (0, -135), 0b00000: (1, 45), 0b10000: (1, 15), 0b00001: (1, 75),
             0b11000: (2, 0), 0b01000: (2, 22.5), 0b01101: (2, 90), 0b01011: (2, -90), 0b11110: (2, 180),
             0b11111: (2, -135), 0b01110: (2, -157.5)}  # fmt: skip
    for lab, (rg, deg) in cases.items():
        assert ring[lab] == rg
        assert _angle_deg(pts[lab]) % 360 == pytest.approx(deg % 360, abs=1e-4)
    outer = np.sort(np.round(np.angle(pts[[k for k in range(32) if ring[k] == 2]], deg=True), 4) % 360)
    assert np.allclose(outer, np.arange(0, 360, 22.5), atol=1e-4)


def test_explicit_gammas_and_errors():
    pts, _ = mp.constellation("16APSK", gamma1=3.0)
    r = np.abs(pts)
    assert r.max() / r.min() == pytest.approx(3.0, rel=1e-5)
    with pytest.raises(ValueError, match="rate or gamma1"):
        mp.constellation("32APSK")
    with pytest.raises(ValueError, match="ring ratios"):
        mp.constellation("32APSK", gamma1=3.0, gamma2=2.0)
    with pytest.raises(ValueError, match="rate"):
        mp.constellation("16APSK", "1/2")


def test_apsk_ring_ratios_relative_to_outer_ring():
    """Ring radii relative to the outer ring (Tables 9, 10): 16APSK 2/3 gamma = 3.15; 32APSK 3/4
    gamma1 = 2.84, gamma2 = 5.27 (labels 0000 outer / 1100 inner; 11000 outer, 10001 inner, 00000 middle)."""
    p16 = mp.constellation("16APSK", "2/3")[0]
    assert abs(p16[0b1100]) / abs(p16[0b0000]) == pytest.approx(1 / 3.15, rel=1e-6)
    p32 = mp.constellation("32APSK", "3/4")[0]
    assert abs(p32[0b10001]) / abs(p32[0b11000]) == pytest.approx(1 / 5.27, rel=1e-5)
    assert abs(p32[0b00000]) / abs(p32[0b11000]) == pytest.approx(2.84 / 5.27, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# mapping and demapping


def test_map_bits_msb_first():
    s = mp.map_bits(np.array([1, 0, 0, 1, 1, 1], np.uint8), "QPSK")
    assert s.shape == (1, 3) and s.dtype == np.complex64
    assert [round(_angle_deg(v)) for v in s[0]] == [135, -45, -135]
    s8 = mp.map_bits(np.array([[1, 0, 0, 0, 0, 1]], np.uint8), "8PSK", "2/3")
    assert [round(_angle_deg(v)) for v in s8[0]] == [90, 0]
    with pytest.raises(ValueError, match="multiple of 3"):
        mp.map_bits(np.zeros(10, np.uint8), "8PSK", "2/3")
    with pytest.raises(ValueError, match="bits 0 and 1"):
        mp.map_bits(np.full(4, 2, np.uint8), "QPSK")


@pytest.mark.parametrize("mod_rate", ALL_MODCODS)
def test_noiseless_demap_signs_equal_bits(mod_rate):
    bps = mp.BITS_PER_SYMBOL[mod_rate[0]]
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, (2, bps * 600), dtype=np.uint8)
    llr = mp.demap_maxlog(mp.map_bits(bits, *mod_rate), 0.1, *mod_rate)
    assert llr.dtype == np.float32 and llr.shape == bits.shape
    assert np.all(llr != 0)
    assert np.array_equal((llr < 0).astype(np.uint8), bits)


def _reference_maxlog(y, n0, pts, labels):
    """Brute force in float64: LLR_k = (min_{b_k=1} |y-s|^2 - min_{b_k=0} |y-s|^2) / N0."""
    d = np.abs(y[..., None] - pts.astype(np.complex128)[None, None, :]) ** 2  # (B, S, M)
    out = np.empty(y.shape + (labels.shape[1],))
    for k in range(labels.shape[1]):
        one = labels[:, k] == 1
        out[..., k] = d[..., one].min(-1) - d[..., ~one].min(-1)
    return (out / n0[:, None, None]).reshape(y.shape[0], -1)


@pytest.mark.parametrize("mod_rate", ONE_PER_MOD + [("16APSK", "9/10"), ("32APSK", "3/4")])
def test_demap_matches_brute_force(mod_rate):
    rng = np.random.default_rng(11)
    pts, labels = mp.constellation(*mod_rate)
    n_sym = 1000  # not a multiple of the kernel's block of 256
    n0 = np.array([0.05, 0.3, 1.7])
    tx = pts[rng.integers(0, pts.size, (3, n_sym))]
    noise = (rng.standard_normal((3, n_sym)) + 1j * rng.standard_normal((3, n_sym))) * np.sqrt(
        n0[:, None] / 2
    )
    y = (tx + noise).astype(np.complex64)
    llr = mp.demap_maxlog(y, n0, *mod_rate)
    ref = _reference_maxlog(y.astype(np.complex128), n0, pts, labels)
    np.testing.assert_allclose(llr, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_demap_argument_checks():
    y = np.ones((2, 10), np.complex64)
    with pytest.raises(ValueError, match="noise_var"):
        mp.demap_maxlog(y, 0.0, "QPSK")
    with pytest.raises(ValueError, match=r"noise_var must be a float or have shape \(2,\)"):
        mp.demap_maxlog(y, [1.0, 2.0, 3.0], "QPSK")
    with pytest.raises(ValueError, match="symbols"):
        mp.demap_maxlog(np.ones((1, 2, 3), np.complex64), 1.0, "QPSK")
    with pytest.raises(TypeError, match="complex"):
        mp.demap_maxlog(np.ones(4, dtype=object), 1.0, "QPSK")
    one = mp.demap_maxlog(np.array([0.5 + 0.25j]), 2.0, "QPSK")  # 1-D input: batch of one
    assert one.shape == (1, 2)
    assert one[0] == pytest.approx([np.sqrt(2) * 0.5, np.sqrt(2) * 0.25], rel=1e-6)  # 2√2 y / N0
