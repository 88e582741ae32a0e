"""Regression test of the measured MODCOD threshold table (issue "The MODCOD table, regression-tested").

``modem/dvbs2/data/measured_thresholds.csv`` (written by ``benchmarks/thresholds.py``, also
``marslink sweep``) holds, for every MODCOD and frame size, the Es/N0 where the frame error rate
is 1e-2 on AWGN with ideal synchronization. This file re-measures the whole table cheaply, on the
same chain (``modem.dvbs2.awgn_sim``: BCH, LDPC, interleaver, mapper, AWGN, max-log demapper,
int8 LDPC decoder with its per-code tuned settings and 50 iterations, BCH):

- at threshold + 0.5 dB, 8 frames of every MODCOD and frame size all decode;
- at threshold - 1.0 dB, at least 7 of 8 fail.

Margins: the normal-frame waterfalls fall by about a decade per 0.05-0.1 dB, the short-frame ones
per 0.1-0.2 dB, so 0.5 dB above the threshold the FER is far below 1e-3 (8 frames all decode
with probability > 99 %) and 1.0 dB below it close to 1. A decoder or chain change that costs
0.5 dB on any MODCOD fails here; one that costs 0.1 dB does not (the sweep measures that).
The frames of every MODCOD of one code are decoded in one batch (the decoder's 64 lanes cost
the same full or not). Seeds are fixed, so the test is deterministic.

Also checked: the table covers all 52 combinations with enough frames at its bracketing points;
the decoder tuning table (``modem/fec/data/ldpc_tuning.csv``) covers the 21 DVB-S2 codes within
the int8 safety margins and each tuned decoder corrects a confidently wrong bit and decodes at
high Es/N0; and every normal MODCOD at FER 1e-2 below the standard's quasi-error-free Es/N0 (the
issue's goal of a 0.1 dB margin is reached by 14 of 28, see the test's docstring).
"""

from __future__ import annotations

import csv
import math
from functools import cache
from importlib import resources

import numpy as np
import pytest

from modem.dvbs2.awgn_sim import MAX_ITER, make_decoder, receive_frames, send_frames
from modem.dvbs2.modcod import FRAMES, MODCODS, modcod
from modem.fec.codes import get_code
from modem.fec.dvbs2_ldpc import dvbs2_code
from modem.fec.ldpc_decoder import DEFAULT_SETTINGS, INT8_MAX, LdpcDecoder, tuned_settings

ABOVE_DB = 0.5
BELOW_DB = 1.0
FRAMES_PER_POINT = {"normal": 8, "short": 8}
SEED = 7  # not the sweep's seed: independent frames
GOAL_MARGIN_DB = 0.1
MIN_BRACKET_FRAMES = {"normal": 300, "short": 1000}
COMBOS = [(m.index, f) for f in FRAMES for m in MODCODS if f in m.frames]
CODES = sorted({(f, modcod(i).rate) for i, f in COMBOS})


def combo_id(combo) -> str:
    index, frame = combo
    return f"{modcod(index).name.replace(' ', '-')}-{frame}"


@cache
def table() -> dict[tuple[int, str], dict[str, str]]:
    text = resources.files("modem.dvbs2.data").joinpath("measured_thresholds.csv").read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {(int(r["pls_modcod"]), r["frame"]): r for r in csv.DictReader(lines)}


def threshold(index: int, frame: str) -> float:
    row = table().get((index, frame))
    if row is None:
        pytest.fail(f"{combo_id((index, frame))} missing from measured_thresholds.csv (run marslink sweep)")
    return float(row["esn0_fer1e2_db"])


@cache
def code_results(frame: str, rate: str) -> dict[tuple[int, str], np.ndarray]:
    """{(MODCOD index, "above" | "below"): frames delivered intact}, every MODCOD of one code
    decoded in one batch."""
    mods = [m for m in MODCODS if m.rate == rate and frame in m.frames]
    n = FRAMES_PER_POINT[frame]
    bbs, llrs, keys = [], [], []
    for m in mods:
        thr = threshold(m.index, frame)
        rng = np.random.default_rng([SEED, m.index, FRAMES.index(frame)])
        for side, esn0 in (("above", thr + ABOVE_DB), ("below", thr - BELOW_DB)):
            bb, llr = send_frames(m, frame, esn0, n, rng)
            bbs.append(bb)
            llrs.append(llr)
            keys.append((m.index, side))
    dec = make_decoder(mods[0], frame, max_iter=MAX_ITER, workers=1)
    ok = receive_frames(frame, rate, np.concatenate(llrs), np.concatenate(bbs), dec)["ok"]
    return {key: ok[i * n : (i + 1) * n] for i, key in enumerate(keys)}


# ----------------------------------------------------------------------------------------------
# the table itself


def test_table_covers_every_modcod_and_frame_size():
    assert len(COMBOS) == 52  # 28 normal + 24 short (no short 9/10)
    assert sorted(table()) == sorted(COMBOS)


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_table_row_is_consistent(combo):
    index, frame = combo
    m = modcod(index)
    r = table()[combo]
    assert r["name"] == m.name
    thr = float(r["esn0_fer1e2_db"])
    lo, hi = float(r["esn0_lo_db"]), float(r["esn0_hi_db"])
    assert lo < thr <= hi, (lo, thr, hi)
    # enough frames at both bracketing points to measure FER 1e-2
    assert (
        int(r["frames_lo"]) >= MIN_BRACKET_FRAMES[frame] and int(r["frames_hi"]) >= MIN_BRACKET_FRAMES[frame]
    )
    assert int(r["frames_at_threshold"]) == int(r["frames_lo"]) + int(r["frames_hi"])
    assert (
        int(r["errors_lo"]) > 1e-2 * int(r["frames_lo"]) >= 1e-2 * int(r["frames_hi"]) >= int(r["errors_hi"])
    )
    if frame == "normal":
        assert float(r["esn0_qef_db"]) == m.esn0_qef_db
        assert float(r["margin_vs_qef_db"]) == pytest.approx(m.esn0_qef_db - thr, abs=2e-3)
    else:
        assert r["esn0_qef_db"] == "" and r["margin_vs_qef_db"] == ""
    # no code beats the BICM capacity; ours are 0.5-1.2 dB from it at FER 1e-2
    gap = float(r["gap_to_bicm_db"])
    assert gap == pytest.approx(thr - float(r["bicm_limit_db"]), abs=2e-3)
    assert 0.3 < gap < 1.5, gap
    # the LDPC decoder may converge to a wrong code word (normal 2/3 does, a few bits from the sent
    # one, near its threshold), but BCH must then correct it or flag it, never deliver it
    assert int(r["bch_undetected"]) == 0


# ----------------------------------------------------------------------------------------------
# re-measured


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_decodes_above_threshold(combo):
    index, frame = combo
    ok = code_results(frame, modcod(index).rate)[(index, "above")]
    thr = threshold(index, frame)
    assert ok.all(), (
        f"{combo_id(combo)}: {np.count_nonzero(~ok)} of {ok.size} frames lost at Es/N0 "
        f"{thr + ABOVE_DB:.2f} dB, {ABOVE_DB} dB above the measured FER-1e-2 threshold {thr:.3f} dB: "
        "this MODCOD regressed"
    )


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_fails_below_threshold(combo):
    index, frame = combo
    ok = code_results(frame, modcod(index).rate)[(index, "below")]
    thr = threshold(index, frame)
    assert np.count_nonzero(~ok) >= ok.size - 1, (
        f"{combo_id(combo)}: {np.count_nonzero(ok)} of {ok.size} frames decoded at Es/N0 "
        f"{thr - BELOW_DB:.2f} dB, {BELOW_DB} dB below the measured threshold {thr:.3f} dB: the table "
        "is stale (re-run marslink sweep) or the simulation chain changed"
    )


# ----------------------------------------------------------------------------------------------
# the goal


def test_normal_modcods_reach_fer_1e2_below_qef():
    """Every normal MODCOD reaches FER 1e-2 at least 0.1 dB below the standard's QEF Es/N0.

    The standard's quasi-error-free figure is for PER 1e-7, so a correct decoder reaches FER 1e-2
    below it; the issue's goal is a margin of at least 0.1 dB, met by all 28 normal MODCODs with
    the corrected three-minimum min-sum check node (margins 0.119-0.479 dB in the measured table).
    The regression test above re-measures the table; this one holds the table to the goal.
    """
    below = []
    for m in MODCODS:
        thr = threshold(m.index, "normal")
        if thr >= m.esn0_qef_db:
            below.append(f"{m.name} (FER 1e-2 at {thr:.3f} dB, QEF {m.esn0_qef_db:.2f} dB)")
    assert not below, "normal MODCODs with FER 1e-2 at or above the QEF Es/N0: " + "; ".join(below)
    short = [
        f"{m.name} ({m.esn0_qef_db - threshold(m.index, 'normal'):.3f} dB)"
        for m in MODCODS
        if threshold(m.index, "normal") > m.esn0_qef_db - GOAL_MARGIN_DB
    ]
    assert not short, "normal MODCODs less than 0.1 dB below the QEF Es/N0: " + "; ".join(short)


# ----------------------------------------------------------------------------------------------
# decoder tuning table


def test_tuning_table_covers_dvbs2_codes_within_int8_margins():
    tuned = tuned_settings()
    assert sorted(tuned) == sorted(f"dvbs2-{f}-{r}" for f, r in CODES)
    for name, st in tuned.items():
        steps = st.offset * st.scale
        assert 2 <= st.scale <= 4 and abs(steps - round(steps)) < 1e-3 and 0 <= round(steps) <= 2, (name, st)
        # APP values (+-127) keep more than one bit of headroom over the message limit
        assert st.limit in (31, 47) and 2 * st.limit < INT8_MAX, (name, st)


def test_decoder_uses_the_tuning_table_by_default():
    code = dvbs2_code("normal", "1/4")
    st = tuned_settings()[code.name]
    dec = LdpcDecoder(code)
    assert (dec.scale, dec.offset, dec.limit) == (st.scale, st.offset, st.limit)
    assert (st.scale, st.offset) != (DEFAULT_SETTINGS.scale, DEFAULT_SETTINGS.offset)
    explicit = LdpcDecoder(code, scale=2.0, offset=0.5, limit=31)
    assert (explicit.scale, explicit.offset, explicit.limit) == (2.0, 0.5, 31)
    partial = LdpcDecoder(code, offset=1.0)  # each None on its own
    assert (partial.scale, partial.offset, partial.limit) == (st.scale, 1.0, st.limit)
    assert LdpcDecoder(code, dtype="float32").offset == 0.5  # the float reference is not tuned
    ar4ja = LdpcDecoder(get_code("ar4ja-1024-1/2"))  # not in the table: the old defaults
    assert (ar4ja.scale, ar4ja.offset, ar4ja.limit) == (2.0, 0.5, 31)


@pytest.mark.parametrize("frame_rate", CODES, ids=lambda fr: f"{fr[0]}-{fr[1]}")
def test_tuned_decoder_is_safe(frame_rate):
    """Each tuned decoder corrects one confidently wrong bit (noiseless LLRs of +-30, one sign
    flipped per frame, as tests/test_ldpc.py does for the defaults) and decodes every frame 8 dB
    above its MODCODs' thresholds (64 frames spread over the MODCODs of the code)."""
    frame, rate = frame_rate
    code = dvbs2_code(frame, rate)
    dec = LdpcDecoder(code, max_iter=MAX_ITER)
    rng = np.random.default_rng(5)
    cw = code.encode(rng.integers(0, 2, (8, code.k), dtype=np.uint8))
    llr = np.where(cw == 0, 30.0, -30.0).astype(np.float32)
    llr[np.arange(8), rng.integers(0, code.n, 8)] *= -1
    res = dec.decode(llr)
    assert np.all(res.converged) and np.array_equal(res.bits, cw)

    mods = [m for m in MODCODS if m.rate == rate and frame in m.frames]
    each = math.ceil(64 / len(mods))
    bbs, llrs = [], []
    for m in mods:
        bb, llr = send_frames(
            m, frame, threshold(m.index, frame) + 8.0, each, np.random.default_rng([SEED, m.index])
        )
        bbs.append(bb)
        llrs.append(llr)
    r = receive_frames(frame, rate, np.concatenate(llrs), np.concatenate(bbs), dec)
    assert r["ok"].all() and r["converged"].all(), (
        np.count_nonzero(~r["ok"]),
        np.count_nonzero(~r["converged"]),
    )
