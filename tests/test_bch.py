"""Tests of the DVB-S2 outer BCH codes (ETSI EN 302 307-1 §5.3.1) against slow, independent references."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from modem.fec.bch import BchCode, dvbs2_bch

# EN 302 307-1 Tables 5a/5b: rate -> (K_bch, N_bch = K_ldpc, t)
NORMAL = {
    "1/4": (16008, 16200, 12), "1/3": (21408, 21600, 12), "2/5": (25728, 25920, 12),
    "1/2": (32208, 32400, 12), "3/5": (38688, 38880, 12), "2/3": (43040, 43200, 10),
    "3/4": (48408, 48600, 12), "4/5": (51648, 51840, 12), "5/6": (53840, 54000, 10),
    "8/9": (57472, 57600, 8), "9/10": (58192, 58320, 8),
}
SHORT = {
    "1/4": (3072, 3240, 12), "1/3": (5232, 5400, 12), "2/5": (6312, 6480, 12), "1/2": (7032, 7200, 12),
    "3/5": (9552, 9720, 12), "2/3": (10632, 10800, 12), "3/4": (11712, 11880, 12),
    "4/5": (12432, 12600, 12), "5/6": (13152, 13320, 12), "8/9": (14232, 14400, 12),
}
TABLE = {"normal": NORMAL, "short": SHORT}
ALL_CODES = [(f, r) for f in TABLE for r in TABLE[f]]
FIELD_DEGREE = {"normal": 16, "short": 14}


# ---------------------------------------------------------------------------------------------
# independent references (pure Python / numpy)


def _polys(frame: str) -> list[int]:
    data = json.loads(resources.files("modem.fec.data").joinpath("dvbs2_bch.json").read_text())
    return [int(h, 16) for h in data[frame]["polynomials_hex"]]


def _ref_generator(frame: str, t: int) -> np.ndarray:
    """g(x) = product of the first t minimal polynomials, as bits highest power first."""
    g = np.array([1], dtype=np.uint8)
    for p in _polys(frame)[:t]:
        pb = np.array([int(c) for c in bin(p)[2:]], dtype=np.uint8)
        g = (np.convolve(g.astype(np.int64), pb.astype(np.int64)) % 2).astype(np.uint8)
    return g


_GF_CACHE: dict[int, tuple[list[int], list[int]]] = {}


def _ref_gf(m: int, prim: int) -> tuple[list[int], list[int]]:
    """(exp, log) of GF(2^m) built by repeated multiplication by x modulo prim."""
    if m not in _GF_CACHE:
        nf = (1 << m) - 1
        exp, log = [0] * nf, [0] * (nf + 1)
        x = 1
        for i in range(nf):
            exp[i] = x
            log[x] = i
            x <<= 1
            if x & (1 << m):
                x ^= prim
        assert x == 1 and len(set(exp)) == nf  # prim is primitive
        _GF_CACHE[m] = (exp, log)
    return _GF_CACHE[m]


def _ref_remainder(words: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Remainder of each row of words (highest power first) divided by g, by long division."""
    r = g.size - 1
    rem = np.array(words, dtype=np.uint8, ndmin=2)
    for i in range(rem.shape[1] - r):
        rem[:, i : i + r + 1] ^= rem[:, i : i + 1] * g
    return rem[:, rem.shape[1] - r :]


def _ref_encode(msg: np.ndarray, g: np.ndarray) -> np.ndarray:
    msg = np.array(msg, dtype=np.uint8, ndmin=2)
    shifted = np.concatenate([msg, np.zeros((msg.shape[0], g.size - 1), dtype=np.uint8)], axis=1)
    return np.concatenate([msg, _ref_remainder(shifted, g)], axis=1)


def _flip(words: np.ndarray, weight: int, rng) -> np.ndarray:
    out = words.copy()
    for row in out:
        row[rng.choice(row.size, weight, replace=False)] ^= 1
    return out


# ---------------------------------------------------------------------------------------------
# code construction


@pytest.mark.parametrize("frame,rate", ALL_CODES)
def test_parameters_and_generator(frame, rate):
    k, n, t = TABLE[frame][rate]
    code = dvbs2_bch(frame, rate)
    assert (code.n, code.k, code.t, code.m) == (n, k, t, FIELD_DEGREE[frame])
    assert code.generator.dtype == np.uint8
    assert code.generator.size - 1 == n - k == t * code.m  # deg g = n - k
    np.testing.assert_array_equal(code.generator, _ref_generator(frame, t))
    # alpha^1 .. alpha^2t are roots of g (Horner in an independently built field)
    m = FIELD_DEGREE[frame]
    exp, log = _ref_gf(m, _polys(frame)[0])
    nf = (1 << m) - 1
    for j in range(1, 2 * t + 1):
        v = 0
        for c in code.generator:
            v = (exp[(log[v] + j) % nf] if v else 0) ^ int(c)
        assert v == 0, f"alpha^{j} is not a root of g"


def test_cached_and_rates():
    assert dvbs2_bch("normal", "1/2") is dvbs2_bch("normal", "1/2")
    assert len(NORMAL) == 11 and len(SHORT) == 10


def test_constructor_rejects_non_minimal_polynomials():
    p = _polys("short")
    with pytest.raises(ValueError, match="root"):
        BchCode(3240, 3240 - 28, [p[0], p[0]], 14)  # (x^14 ..)^2 lacks alpha^3 as a root
    with pytest.raises(ValueError, match="n - k"):
        BchCode(3240, 3000, p[:2], 14)


# ---------------------------------------------------------------------------------------------
# encoder


@pytest.mark.parametrize("frame,rate", [("normal", "1/2"), ("normal", "2/3"), ("normal", "9/10"),
                                        ("short", "1/4"), ("short", "8/9")])
def test_encode_matches_long_division(frame, rate):
    code = dvbs2_bch(frame, rate)
    rng = np.random.default_rng(11)
    msg = rng.integers(0, 2, (2, code.k), dtype=np.uint8)
    cw = code.encode(msg)
    assert cw.shape == (2, code.n) and cw.dtype == np.uint8
    np.testing.assert_array_equal(cw, _ref_encode(msg, code.generator))
    np.testing.assert_array_equal(code.encode(msg[1]), cw[1:])  # 1-D input is a batch of one
    np.testing.assert_array_equal(code.encode(msg.astype(bool)), cw)


def test_encode_single_bits():
    """The message x^j encodes to x^(j+n-k) + (x^(j+n-k) mod g) for the first and last message bits."""
    code = dvbs2_bch("short", "1/2")
    msg = np.zeros((2, code.k), dtype=np.uint8)
    msg[0, 0] = 1
    msg[1, -1] = 1
    cw = code.encode(msg)
    np.testing.assert_array_equal(cw[1, code.k - 1 :], code.generator)  # x^(n-k) mod g = g - x^(n-k)
    np.testing.assert_array_equal(cw, _ref_encode(msg, code.generator))


@pytest.mark.parametrize("frame,rate", ALL_CODES)
def test_codewords_divisible_by_generator(frame, rate):
    code = dvbs2_bch(frame, rate)
    rng = np.random.default_rng(5)
    cw = code.encode(rng.integers(0, 2, (3, code.k), dtype=np.uint8))
    assert not _ref_remainder(cw, code.generator).any()
    cw[:, rng.integers(code.n)] ^= 1  # and a non-codeword is not
    assert _ref_remainder(cw, code.generator).any(axis=1).all()


# ---------------------------------------------------------------------------------------------
# decoder


@pytest.mark.parametrize("frame,rate", [("normal", "1/2"), ("normal", "2/3"), ("normal", "9/10"),
                                        ("short", "1/2"), ("short", "8/9")])
def test_round_trip_correctable(frame, rate):
    code = dvbs2_bch(frame, rate)
    rng = np.random.default_rng(2)
    msg = rng.integers(0, 2, (16, code.k), dtype=np.uint8)
    cw = code.encode(msg)
    for weight in (0, 1, code.t // 2, code.t):
        rx = _flip(cw, weight, rng)
        assert (rx != cw).sum(axis=1).tolist() == [weight] * 16
        res = code.decode(rx)
        assert res.ok.all(), weight
        assert res.corrected.dtype == np.int32 and (res.corrected == weight).all()
        np.testing.assert_array_equal(res.codeword, cw)
        np.testing.assert_array_equal(res.message, msg)


def test_errors_at_the_ends():
    code = dvbs2_bch("normal", "8/9")
    rng = np.random.default_rng(3)
    cw = code.encode(rng.integers(0, 2, code.k, dtype=np.uint8))
    rx = cw.copy()
    rx[0, [0, 1, code.k - 1, code.k, code.n - 2, code.n - 1]] ^= 1  # first/last message and parity bits
    res = code.decode(rx[0])  # 1-D input
    assert res.ok.tolist() == [True] and res.corrected.tolist() == [6]
    np.testing.assert_array_equal(res.codeword, cw)


@pytest.mark.parametrize("frame,rate", [("normal", "1/2"), ("short", "1/2")])
def test_t_plus_one_errors_detected(frame, rate):
    code = dvbs2_bch(frame, rate)
    rng = np.random.default_rng(4)
    cw = code.encode(rng.integers(0, 2, (100, code.k), dtype=np.uint8))
    rx = _flip(cw, code.t + 1, rng)
    res = code.decode(rx)
    assert not res.ok.any()
    assert (res.corrected == -1).all()
    np.testing.assert_array_equal(res.codeword, rx)  # failures return the received bits
    np.testing.assert_array_equal(res.message, rx[:, : code.k])


def test_heavy_errors_never_silently_wrong():
    """Frames that come back ok are codewords within t of the received word; the others are unchanged."""
    code = dvbs2_bch("short", "1/4")
    rng = np.random.default_rng(6)
    cw = code.encode(rng.integers(0, 2, (60 + code.t + 1, code.k), dtype=np.uint8))
    weights = [code.t + 2] * 20 + [40] * 20 + [500] * 20 + list(range(code.t + 1))
    rx = np.concatenate([_flip(cw[i : i + 1], w, rng) for i, w in enumerate(weights)])
    res = code.decode(rx)
    ok = res.ok
    assert ok.tolist() == [False] * 60 + [True] * (code.t + 1)  # no miscorrection for these seeds
    np.testing.assert_array_equal(res.codeword[~ok], rx[~ok])
    assert not _ref_remainder(res.codeword[ok], code.generator).any()
    dist = (res.codeword[ok] != rx[ok]).sum(axis=1)
    np.testing.assert_array_equal(dist, res.corrected[ok])
    assert dist.max() <= code.t


def test_mixed_batch():
    code = dvbs2_bch("short", "2/3")
    rng = np.random.default_rng(7)
    cw = code.encode(rng.integers(0, 2, (4, code.k), dtype=np.uint8))
    rx = np.concatenate([cw[:1], _flip(cw[1:2], 3, rng), _flip(cw[2:3], 13, rng), _flip(cw[3:], 12, rng)])
    res = code.decode(rx)
    assert res.ok.tolist() == [True, True, False, True]
    assert res.corrected.tolist() == [0, 3, -1, 12]
    np.testing.assert_array_equal(res.codeword[[0, 1, 3]], cw[[0, 1, 3]])
    np.testing.assert_array_equal(res.codeword[2], rx[2])


# ---------------------------------------------------------------------------------------------
# argument checks


def test_bad_input():
    code = dvbs2_bch("short", "1/2")
    with pytest.raises(ValueError, match=r"msg must have shape \(batch, 7032\)"):
        code.encode(np.zeros(7031, dtype=np.uint8))
    with pytest.raises(ValueError, match="msg must hold only bits"):
        code.encode(np.full(7032, 2, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"word must have shape \(batch, 7200\)"):
        code.decode(np.zeros((2, 7032), dtype=np.uint8))
    with pytest.raises(ValueError, match="word must hold only bits"):
        code.decode(np.full((1, 7200), 3))
    with pytest.raises(ValueError, match="frame must be one of 'normal', 'short'; got 'medium'"):
        dvbs2_bch("medium", "1/2")
    with pytest.raises(ValueError, match="rate .*'1/4'.*got '3/7'"):
        dvbs2_bch("normal", "3/7")
    with pytest.raises(ValueError, match=r"rate \(for short frames\) must be one of .*'8/9'; got '9/10'"):
        dvbs2_bch("short", "9/10")
