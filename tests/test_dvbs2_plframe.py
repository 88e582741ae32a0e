"""Tests of DVB-S2 PL framing (EN 302 307-1 §5.5) and RRC pulse shaping (§5.6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import upfirdn

from modem.dvbs2 import mapping as mp
from modem.dvbs2 import plframe as pf
from modem.dvbs2.pulse import MatchedFilter, PulseShaper, rrc_taps

SQ = 1 / np.sqrt(2.0)

# ---------------------------------------------------------------------------------------------
# independent references (plain Python, straight from the text of §5.5.2 and §5.5.4)


def _ref_pls(modcod: int, short: bool, pilots: bool) -> list[int]:
    """§5.5.2.4: (32,6) code of Figure 13b, each bit followed by itself XOR b7, then scrambled."""
    b = [(modcod >> (4 - i)) & 1 for i in range(5)] + [int(short)]
    rows = [[(j >> r) & 1 for j in range(32)] for r in range(5)] + [[1] * 32]
    # rows[0] = 0101..., rows[1] = 0011..., ..., rows[4] = 0...01...1, rows[5] = 1...1
    y = [sum(b[r] * rows[r][j] for r in range(6)) % 2 for j in range(32)]
    out = []
    for v in y:
        out += [v, v ^ int(pilots)]
    scr = "0111000110011101100000111100100101010011010000100010110111111010"
    return [v ^ int(c) for v, c in zip(out, scr, strict=True)]


def _ref_gold_r(n: int, count: int) -> list[int]:
    """§5.5.4 with the x and y m-sequences run as 18-bit shift registers (Figure 15 style)."""
    period = (1 << 18) - 1
    need_x = min(period, count + 131072 + n + 1)
    need_y = count + 131072 + 1
    xs, state = [], 1  # bit k of state = x(i + k); x(0) = 1, x(1..17) = 0
    for _ in range(need_x):
        xs.append(state & 1)
        fb = (state ^ (state >> 7)) & 1  # x(i+18) = x(i+7) + x(i)
        state = (state >> 1) | (fb << 17)
    ys, state = [], (1 << 18) - 1
    for _ in range(need_y):
        ys.append(state & 1)
        fb = (state ^ (state >> 5) ^ (state >> 7) ^ (state >> 10)) & 1
        state = (state >> 1) | (fb << 17)

    def z(i):
        return xs[(i + n) % period] ^ ys[i]

    return [2 * z(i + 131072) + z(i) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# PL signalling


def test_sof():
    assert pf.SOF_BITS.size == 26
    assert int("".join(map(str, pf.SOF_BITS)), 2) == 0x18D2E82
    assert "".join(map(str, pf.SOF_BITS[:6])) == "011000"  # "01-1000-..." in §5.5.2.1
    h = pf.plheader(4, "normal", False)
    assert np.array_equal(h[:26], pf.pi2_bpsk(pf.SOF_BITS))


def test_pi2_bpsk_rule():
    # §5.5.2: I_{2i-1} = Q_{2i-1} = (1-2y)/√2, I_{2i} = -Q_{2i} = -(1-2y)/√2 (1-based)
    y = np.array([0, 0, 1, 1, 0, 1], np.uint8)
    s = pf.pi2_bpsk(y)
    assert s.dtype == np.complex64
    for k, (v, bit) in enumerate(zip(s, y, strict=True)):
        a = (1 - 2 * int(bit)) * SQ
        i = k + 1
        want = complex(a, a) if i % 2 else complex(-a, a)
        assert complex(v) == pytest.approx(want, abs=1e-7)
    # constant bits: each symbol is the previous one rotated by ±π/2
    z = pf.pi2_bpsk(np.zeros(8, np.uint8)).astype(np.complex128)
    assert np.allclose(np.abs(np.angle(z[1:] / z[:-1])), np.pi / 2)
    assert np.allclose(np.abs(pf.plheader(7, "short", True)), 1.0)


def test_pls_generator_matches_figure_13b():
    g = pf.PLS_GENERATOR
    j = np.arange(32)
    for r in range(5):
        assert np.array_equal(g[r], (j >> r) & 1)
    assert np.all(g[5] == 1)


def test_pls_code_all_128_against_reference():
    for modcod in range(32):
        for short in (False, True):
            for pilots in (False, True):
                frame = "short" if short else "normal"
                assert pf.pls_bits(modcod, frame, pilots).tolist() == _ref_pls(modcod, short, pilots)
    # MODCOD 0, TYPE 00 encodes to all zeros: the PLS code is the scrambling sequence itself
    assert np.array_equal(pf.pls_bits(0), pf.PLS_SCRAMBLER)
    # (64, 7) code with d_min = 32; the repetition structure depends on b7 only
    codes = np.array([_ref_pls(m, s, p) for m in range(32) for s in (0, 1) for p in (0, 1)])
    dist = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    assert dist[~np.eye(128, dtype=bool)].min() == 32
    un = pf.pls_bits(9, "normal", True) ^ pf.PLS_SCRAMBLER
    assert np.all(un[0::2] != un[1::2])


def test_plheader_decodes_all_128_noiselessly():
    for modcod in range(32):
        for frame in pf.FRAMES:
            for pilots in (False, True):
                info = pf.decode_plheader(pf.plheader(modcod, frame, pilots))
                assert info[:3] == (modcod, frame, pilots)
                assert info.metric == pytest.approx(1.0, abs=1e-6)


def test_plheader_decodes_at_minus_3_db():
    rng = np.random.default_rng(2024)
    n0 = 10 ** (3 / 10)  # Es/N0 = -3 dB, Es = 1
    ok = 0
    for _ in range(100):
        modcod, frame, pilots = (
            int(rng.integers(0, 29)),
            pf.FRAMES[rng.integers(0, 2)],
            bool(rng.integers(0, 2)),
        )
        noise = (rng.standard_normal(90) + 1j * rng.standard_normal(90)) * np.sqrt(n0 / 2)
        info = pf.decode_plheader(pf.plheader(modcod, frame, pilots) + noise)
        ok += info[:3] == (modcod, frame, pilots)
    assert ok >= 99


def test_plheader_argument_checks():
    with pytest.raises(ValueError, match="modcod"):
        pf.plheader(32)
    with pytest.raises(ValueError, match="frame"):
        pf.plheader(1, "medium")
    with pytest.raises(ValueError, match="shape"):
        pf.decode_plheader(np.ones(64, np.complex64))


# ---------------------------------------------------------------------------------------------
# PL scrambling


@pytest.mark.parametrize("n", [0, 3])
def test_gold_sequence_against_shift_registers(n):
    r = pf.gold_sequence(n)
    assert r.shape == (66420,) and r.dtype == np.uint8 and set(np.unique(r)) <= {0, 1, 2, 3}
    ref = _ref_gold_r(n, 2000)
    assert r[:2000].tolist() == ref


def test_gold_sequence_first_values_n0():
    # x(0..17) = 1,0,...,0 and y(0..17) = 1,...,1: z_0(i) = x(i) XOR y(i) = 0,1,1,...,1 for i < 18
    r = pf.gold_sequence(0)
    ref = _ref_gold_r(0, 18)
    assert [v & 1 for v in r[:18]] == [0] + [1] * 17 == [v & 1 for v in ref]
    assert r[:18].tolist() == ref


def test_scrambling_sequence_and_round_trip():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(33282) + 1j * rng.standard_normal(33282)).astype(np.complex64)
    for n in (0, 1, 1000, 262141):
        c = pf.scrambling_sequence(n)
        assert np.array_equal(c, np.array([1, 1j, -1, -1j], np.complex64)[pf.gold_sequence(n)])
        s = pf.scramble(x, n)
        assert not np.allclose(s, x)
        assert np.array_equal(pf.descramble(s, n), x)
    assert not np.array_equal(pf.gold_sequence(0), pf.gold_sequence(1))
    with pytest.raises(ValueError, match="n must be"):
        pf.scramble(x, 262142)
    with pytest.raises(ValueError, match="at most 66420"):
        pf.scramble(np.ones(66421, np.complex64))


# ---------------------------------------------------------------------------------------------
# pilots, frame lengths, PLFRAMEs

# (modulation, frame) -> (S, pilot blocks, PLFRAME length with pilots); Table 11, Figure 13
GEOMETRY = {
    ("QPSK", "normal"): (360, 22, 33282), ("8PSK", "normal"): (240, 14, 22194),
    ("16APSK", "normal"): (180, 11, 16686), ("32APSK", "normal"): (144, 8, 13338),
    ("QPSK", "short"): (90, 5, 8370), ("8PSK", "short"): (60, 3, 5598),
    ("16APSK", "short"): (45, 2, 4212), ("32APSK", "short"): (36, 2, 3402),
}  # fmt: skip
MODCOD_OF = {"QPSK": 4, "8PSK": 13, "16APSK": 19, "32APSK": 25}


@pytest.mark.parametrize("key", list(GEOMETRY))
def test_pilot_round_trip_and_lengths(key):
    modulation, frame = key
    slots, blocks, length = GEOMETRY[key]
    modcod = MODCOD_OF[modulation]
    assert pf.payload_length(modcod, frame) == 90 * slots
    assert pf.pilot_blocks(slots) == blocks
    assert pf.plframe_length(modcod, frame, True) == length == 90 * (slots + 1) + 36 * blocks
    assert pf.plframe_length(modcod, frame, False) == 90 * (slots + 1)
    rng = np.random.default_rng(slots)
    payload = (rng.standard_normal(90 * slots) + 1j * rng.standard_normal(90 * slots)).astype(np.complex64)
    body = pf.insert_pilots(payload)
    assert body.size == length - 90
    for b in range(blocks):  # block b follows slot 16 (b + 1)
        start = b * (16 * 90 + 36) + 16 * 90
        assert np.all(body[start : start + 36] == pf.PILOT_SYMBOL)
        assert np.array_equal(body[start - 90 : start], payload[(16 * (b + 1) - 1) * 90 : 16 * (b + 1) * 90])
    assert np.array_equal(body[-90:], payload[-90:])  # never a pilot block at the end
    back, pil = pf.remove_pilots(body, slots)
    assert np.array_equal(back, payload)
    assert pil.shape == (blocks, 36) and np.all(pil == pf.PILOT_SYMBOL)
    back2, _ = pf.remove_pilots(body)  # S inferred from the length
    assert np.array_equal(back2, payload)
    with pytest.raises(ValueError, match="body length"):
        pf.remove_pilots(body[:-1])


def test_dummy_plframe():
    d = pf.dummy_plframe()
    assert d.shape == (3330,) and d.dtype == np.complex64
    assert np.array_equal(d[:90], pf.plheader(0))
    assert pf.decode_plheader(d[:90])[:3] == (0, "normal", False)
    assert np.allclose(pf.descramble(d[90:]), pf.PILOT_SYMBOL)
    assert not np.allclose(d[90:], pf.PILOT_SYMBOL)  # the body is scrambled
    out = pf.deframe(pf.dummy_plframe(7), n=7)
    assert out.header.modcod == 0 and out.length == 3330 and out.payload.size == 3240
    assert np.allclose(out.payload, pf.PILOT_SYMBOL) and out.pilots.shape == (0, 36)
    assert np.array_equal(pf.PlFramer(7).dummy(), pf.dummy_plframe(7))


@pytest.mark.parametrize("frame", pf.FRAMES)
@pytest.mark.parametrize("pilots", [False, True])
def test_plframer_round_trip(frame, pilots):
    rng = np.random.default_rng(99)
    framer = pf.PlFramer(n=12345)
    for modcod in (1, 12, 18, 28 if frame == "normal" else 27):
        modulation, rate, _, _ = mp.modcod_parameters(modcod)
        bits = rng.integers(0, 2, pf.N_LDPC[frame], dtype=np.uint8)
        payload = mp.map_bits(mp.interleave(bits, modulation, rate), modulation, rate)[0]
        plf = framer(modcod, frame, pilots, payload)
        assert plf.dtype == np.complex64 and plf.size == pf.plframe_length(modcod, frame, pilots)
        assert np.array_equal(plf[:90], pf.plheader(modcod, frame, pilots))
        # body = scrambled insert_pilots(payload)
        body = pf.insert_pilots(payload) if pilots else payload
        assert np.array_equal(plf[90:], pf.scramble(body, 12345))
        stream = np.concatenate([plf, np.ones(50, np.complex64)])  # trailing symbols are ignored
        out = framer.deframe(stream)
        assert out.header[:3] == (modcod, frame, pilots) and out.length == plf.size
        assert np.array_equal(out.payload, payload)
        assert out.pilots.shape == ((pf.pilot_blocks(payload.size // 90) if pilots else 0), 36)
        assert np.all(out.pilots == pf.PILOT_SYMBOL)
        given = pf.deframe(plf, modcod, frame, pilots, n=12345)  # header supplied by the caller
        assert np.array_equal(given.payload, payload) and np.isnan(given.header.metric)
        llr = mp.demap_maxlog(out.payload, 0.01, modulation, rate)
        assert np.array_equal(mp.deinterleave((llr < 0).astype(np.uint8), modulation, rate)[0], bits)


def test_plframer_argument_checks():
    framer = pf.PlFramer()
    with pytest.raises(ValueError, match=r"payload must have shape \(32400,\)"):
        framer(4, "normal", False, np.ones(100, np.complex64))
    with pytest.raises(ValueError, match="modcod"):
        framer(0, "normal", False, np.ones(3240, np.complex64))
    with pytest.raises(ValueError, match="n must be"):
        pf.PlFramer(-1)
    with pytest.raises(ValueError, match="whole PLFRAME"):
        pf.deframe(framer(4, "normal", True, np.ones(32400, np.complex64))[:-1])


# ---------------------------------------------------------------------------------------------
# pulse shaping (§5.6)


@pytest.mark.parametrize("rolloff", [0.35, 0.25, 0.20])
def test_rrc_taps(rolloff):
    h = rrc_taps(rolloff, 4, 16)
    assert h.shape == (65,) and np.sum(h * h) == pytest.approx(1.0)
    assert np.allclose(h, h[::-1])
    # the cascade is a raised cosine: |H(f)|^2 is flat in the pass band and ~0 beyond (1 + α) f_N
    f = np.fft.rfftfreq(4096, d=1 / 4)  # in units of the symbol rate
    hh = np.abs(np.fft.rfft(h, 4096)) ** 2
    assert np.ptp(hh[f < 0.5 * (1 - rolloff) * 0.9]) < 0.02 * hh[0]
    assert np.all(hh[f > 0.5 * (1 + rolloff) * 1.15] < 1e-3 * hh[0])


def _isi_db(rolloff, sps, span):
    g = np.convolve(rrc_taps(rolloff, sps, span), rrc_taps(rolloff, sps, span))
    c = g.size // 2
    s = g[c % sps :: sps]
    return 10 * np.log10((np.sum(s**2) - g[c] ** 2) / g[c] ** 2)


@pytest.mark.parametrize("rolloff", [0.35, 0.25, 0.20])
def test_rrc_isi_below_minus_40_db(rolloff):
    for sps in (2, 4):
        for span in (16, 20, 24, 32):
            assert _isi_db(rolloff, sps, span) < -40.0, (rolloff, sps, span)
    # end to end with random QPSK through the streaming objects
    rng = np.random.default_rng(3)
    sym = mp.map_bits(rng.integers(0, 2, 2 * 4000, dtype=np.uint8), "QPSK")[0]
    tx = np.concatenate([PulseShaper(rolloff, 4, 16)(sym), np.zeros(0, np.complex64)])
    mf = MatchedFilter(rolloff, 4, 16)
    rx = np.concatenate([mf(tx), mf.flush()])
    got = rx[16 * 4 :: 4][: sym.size]
    err = got.astype(np.complex128) - sym
    assert 10 * np.log10(np.mean(np.abs(err[20:-20]) ** 2)) < -40.0


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(8)
    sym = (rng.standard_normal(3000) + 1j * rng.standard_normal(3000)).astype(np.complex64)
    for rolloff, sps, span in ((0.35, 2, 16), (0.2, 5, 10), (0.25, 8, 24)):
        h = rrc_taps(rolloff, sps, span).astype(np.float32)
        shaper = PulseShaper(rolloff, sps, span)
        cuts = np.sort(rng.integers(0, sym.size, 12))
        parts = [shaper(c) for c in np.split(sym, cuts)]  # includes empty chunks
        assert all(p.size == c.size * sps for p, c in zip(parts, np.split(sym, cuts), strict=True))
        y = np.concatenate(parts + [shaper.flush()])
        ref = upfirdn(h, sym, up=sps)
        assert y.dtype == np.complex64 and y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5)
        one_shot = np.concatenate([shaper(sym), shaper.flush()])
        assert np.array_equal(y, one_shot)  # chunking does not change a single bit
        # state is cleared by flush: the object can be reused
        again = np.concatenate([shaper(sym[:50]), shaper.flush()])
        np.testing.assert_allclose(again, upfirdn(h, sym[:50], up=sps), atol=1e-5)
        mf = MatchedFilter(rolloff, sps, span)
        cuts = np.sort(rng.integers(0, ref.size, 9))
        z = np.concatenate([mf(c) for c in np.split(ref, cuts)] + [mf.flush()])
        np.testing.assert_allclose(z, np.convolve(ref, h), rtol=0, atol=1e-4)
        assert z.size == ref.size + h.size - 1
        assert np.array_equal(z, np.concatenate([mf(ref), mf.flush()]))


def test_pulse_argument_checks():
    with pytest.raises(ValueError, match=r"rolloff must be one of 0.35, 0.25, 0.2; got 0.3"):
        PulseShaper(0.3, 4, 16)
    with pytest.raises(ValueError, match=r"sps must be an integer >= 2"):
        rrc_taps(0.35, 1, 16)
    with pytest.raises(ValueError, match=r"sps must be an integer >= 2"):
        MatchedFilter(0.35, 2.5, 16)
    with pytest.raises(ValueError, match=r"span must be an even integer"):
        rrc_taps(0.35, 4, 15)
    with pytest.raises(ValueError, match="1-D"):
        PulseShaper(0.35, 4, 16)(np.ones((2, 2)))
