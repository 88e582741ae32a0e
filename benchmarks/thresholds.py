"""MODCOD threshold table: Es/N0 at FER 1e-2 of every DVB-S2 MODCOD and frame size on AWGN.

For each of the 28 normal-frame and 24 short-frame MODCODs (no short 9/10), with ideal
synchronization: random BBFRAMEs -> BCH -> LDPC -> interleaver -> mapper (unit-energy
symbols) -> complex AWGN at Es/N0 -> max-log demapper with the true N0 -> deinterleaver ->
int8 LDPC decoder (per-code tuned settings, at most 50 layered iterations, as the Receiver)
-> BCH (:mod:`modem.dvbs2.awgn_sim`). A frame is in error when its BBFRAME comes out wrong.

Search (:func:`modem.dvbs2.awgn_sim.find_threshold`): coarse steps of 0.25 dB with few
frames from the standard's QEF Es/N0 (short frames: QEF + 0.3 dB), then steps of 0.1 dB
(halved down to 0.025 dB while the upper point saw no error) with up to 300 normal / 1000
short frames a point; both bracketing points are measured on the full number of frames; the
threshold interpolates log10 FER linearly between them.

Writes ``modem/dvbs2/data/measured_thresholds.csv`` (the table the CI test
``tests/test_modcod_thresholds.py`` re-checks; its header comment states every definition,
including the BICM limit) and ``benchmarks/out/thresholds.png`` (FER against Es/N0, one curve
per MODCOD, normal and short frames in two panels). Rows of MODCODs not measured in this run
(``--modcods``, ``--frame``) are kept from the existing table.

    python benchmarks/thresholds.py                  # everything, about 15 min on 2 cores
    python benchmarks/thresholds.py --quick          # fewer frames; writes benchmarks/out/
    python benchmarks/thresholds.py --modcods "QPSK 1/2" 8psk-3/5 --frame normal
    marslink sweep -- --quick                        # the same through the CLI
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from modem.dvbs2.awgn_sim import MAX_ITER, find_threshold, make_decoder
from modem.dvbs2.mapping import constellation
from modem.dvbs2.modcod import FRAMES, MODCODS, frame_spec, modcod

REPO = Path(__file__).resolve().parent.parent
CSV_PATH = REPO / "modem" / "dvbs2" / "data" / "measured_thresholds.csv"
OUT_DIR = REPO / "benchmarks" / "out"
TARGET = 1e-2
GOAL_MARGIN_DB = 0.1
#: (coarse frames, frames at fine points) per frame size; --quick uses a quarter
FRAMES_PER_POINT = {"normal": (64, 300), "short": (256, 1000)}
COLUMNS = [
    "pls_modcod", "name", "frame", "esn0_fer1e2_db", "frames_at_threshold", "errors_at_threshold",
    "esn0_qef_db", "margin_vs_qef_db", "bicm_limit_db", "gap_to_bicm_db",
    "esn0_lo_db", "frames_lo", "errors_lo", "esn0_hi_db", "frames_hi", "errors_hi", "iterations_hi",
    "frames_total", "ldpc_undetected", "bch_failed", "bch_undetected",
]  # fmt: skip
HEADER = """\
# Measured DVB-S2 MODCOD thresholds: Es/N0 (dB) where the frame error rate is 1e-2, AWGN, ideal sync.
# Written by benchmarks/thresholds.py (marslink sweep); re-checked by tests/test_modcod_thresholds.py.
# Chain: random BBFRAMEs -> BCH -> LDPC -> bit interleaver -> mapper (unit average symbol energy, Es = 1)
# -> complex AWGN, N0 = 10^(-Es/N0 / 10) -> max-log demapper given the true N0 -> deinterleaver -> int8
# layered LDPC decoder, corrected three-minimum min-sum check node (settings of
# modem/fec/data/ldpc_tuning.csv, at most {max_iter} iterations) -> BCH. Frame error: the decoded
# BBFRAME differs from the sent one. Es/N0 is per data symbol (no PL header or pilot overhead).
# esn0_fer1e2_db: log10(FER) interpolated linearly between the two bracketing points esn0_lo_db (FER above
# 1e-2) and esn0_hi_db (FER at most 1e-2; zero errors there count as 0.5); frames_/errors_at_threshold:
# frames and frame errors at those two points together (frames_lo/_hi, errors_lo/_hi apart);
# iterations_hi: mean LDPC iterations per frame at esn0_hi_db. frames_total: every frame simulated for
# the row; ldpc_undetected: frames the LDPC decoder converged to a wrong code word; bch_failed: frames the
# BCH decoder flagged uncorrectable; bch_undetected: frames BCH accepted with a wrong message (all three
# over frames_total).
# esn0_qef_db: EN 302 307-1 Table 13 quasi-error-free Es/N0 (PER 1e-7, normal frames; short: none);
# margin_vs_qef_db = esn0_qef_db - esn0_fer1e2_db (the goal: >= {goal} dB for every normal MODCOD).
# bicm_limit_db: Es/N0 where the BICM capacity of the constellation (unit energy, the standard's bit
# labels and ring ratios; the sum over the bps bit positions of I(b_i; y) for equiprobable points,
# computed by 48 x 48-point Gauss-Hermite integration over the complex noise for every point) equals
# R * bps information bits per symbol, R = k_ldpc / n_ldpc of the LDPC code (the rate label for normal
# frames; short frames' codes have other actual rates, e.g. 4/9 for "1/2"), BCH and pilot overhead
# ignored. gap_to_bicm_db = esn0_fer1e2_db - bicm_limit_db.
# Seed {seed}; LDPC decoder workers {workers}.
"""


# ---------------------------------------------------------------------------------------------
# BICM capacity


def bicm_capacity(modulation: str, rate: str, esn0_db: float, nodes: int = 48) -> float:
    """BICM capacity of a DVB-S2 constellation, information bits per symbol, at Es/N0 (dB).

    ``sum_i I(b_i; y)`` for equiprobable points of unit average energy with the standard's bit
    labels: ``bps - E[sum_i log2(sum_s p(y|s) / sum_{s: b_i(s) = b_i} p(y|s))]``, the expectation
    over the sent point (uniform) and the complex noise (variance N0), computed by
    ``nodes`` x ``nodes`` Gauss-Hermite quadrature for each point.
    """
    pts, labels = constellation(modulation, rate)
    pts = pts.astype(np.complex128)
    n0 = 10.0 ** (-esn0_db / 10.0)
    t, w = np.polynomial.hermite.hermgauss(nodes)
    noise = (np.sqrt(n0) * (t[:, None] + 1j * t[None, :])).ravel()  # per-dimension variance N0/2
    weight = (w[:, None] * w[None, :]).ravel() / np.pi
    y = pts[:, None] + noise[None, :]  # (M, Z)
    metric = -(np.abs(y[:, :, None] - pts[None, None, :]) ** 2) / n0  # (M, Z, M)
    total = logsumexp(metric, axis=2)
    loss = 0.0
    for i in range(labels.shape[1]):
        for b in (0, 1):
            sel = labels[:, i] == b
            loss += float(((total[sel] - logsumexp(metric[sel][:, :, sel], axis=2)) @ weight).sum())
    return labels.shape[1] - loss / len(pts) / np.log(2.0)


@cache
def bicm_limit_db(modulation: str, rate: str, bits: float) -> float:
    """Es/N0 (dB) where :func:`bicm_capacity` equals ``bits`` per symbol."""
    return float(brentq(lambda x: bicm_capacity(modulation, rate, x) - bits, -15.0, 40.0, xtol=1e-4))


def code_rate(mc, frame: str) -> Fraction:
    """Actual LDPC rate k_ldpc / n_ldpc."""
    spec = frame_spec(modcod(mc), frame)
    return Fraction(spec.k_ldpc, spec.n_ldpc)


# ---------------------------------------------------------------------------------------------
# table


def read_table(path: Path) -> dict[tuple[int, str], dict[str, str]]:
    """Rows of a thresholds CSV by (pls_modcod, frame); empty if the file does not exist."""
    if not path.is_file():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {(int(r["pls_modcod"]), r["frame"]): r for r in csv.DictReader(lines)}


def fmt(x) -> str:
    if x is None or x == "":
        return ""
    if isinstance(x, float):
        return f"{x:.3f}"
    return str(x)


def measure(m, frame: str, args) -> tuple[dict, list]:
    """One MODCOD and frame size: its table row and the points of its FER curve."""
    coarse, fine = FRAMES_PER_POINT[frame]
    if args.quick:
        coarse, fine = max(16, coarse // 4), max(64, fine // 4)
    dec = make_decoder(m, frame, max_iter=args.max_iter, workers=args.workers)
    rng = np.random.default_rng([args.seed, m.index, FRAMES.index(frame)])
    start = m.esn0_qef_db + (0.0 if frame == "normal" else 0.3)
    res = find_threshold(
        m,
        frame,
        rng,
        dec,
        target=TARGET,
        start_db=start,
        coarse_frames=coarse,
        max_frames=fine,
        min_errors=30,
        fine_db=0.1,
        lowest_fine_db=0.05 if args.quick else 0.025,
        full_brackets=True,
    )
    lo, hi = res["lo"], res["hi"]
    tot = {k: sum(c[k] for _, _, c in res["points"]) for k in res["points"][0][2]}
    mod_bits = code_rate(m, frame) * m.bits_per_symbol
    limit = bicm_limit_db(m.modulation, m.rate, float(mod_bits))
    qef = m.esn0_qef_db if frame == "normal" else None
    row = {
        "pls_modcod": m.index, "name": m.name, "frame": frame, "esn0_fer1e2_db": res["esn0_db"],
        "frames_at_threshold": lo["frames"] + hi["frames"],
        "errors_at_threshold": lo["frame_errors"] + hi["frame_errors"],
        "esn0_qef_db": qef, "margin_vs_qef_db": None if qef is None else qef - res["esn0_db"],
        "bicm_limit_db": limit, "gap_to_bicm_db": res["esn0_db"] - limit,
        "esn0_lo_db": lo["esn0_db"], "frames_lo": lo["frames"], "errors_lo": lo["frame_errors"],
        "esn0_hi_db": hi["esn0_db"], "frames_hi": hi["frames"], "errors_hi": hi["frame_errors"],
        "iterations_hi": hi["iterations"] / hi["frames"],
        "frames_total": tot["frames"], "ldpc_undetected": tot["ldpc_undetected"],
        "bch_failed": tot["bch_failed"], "bch_undetected": tot["bch_undetected"],
    }  # fmt: skip
    # curve: merge points at the same Es/N0
    merged: dict[float, list[int]] = {}
    for _, x, c in res["points"]:
        acc = merged.setdefault(round(x, 4), [0, 0])
        acc[0] += c["frames"]
        acc[1] += c["frame_errors"]
    return row, sorted([x, f, e] for x, (f, e) in merged.items())


def write_table(path: Path, rows: dict, args) -> None:
    lines = [HEADER.format(max_iter=args.max_iter, goal=GOAL_MARGIN_DB, seed=args.seed, workers=args.workers)]
    lines.append(",".join(COLUMNS) + "\n")
    for key in sorted(rows, key=lambda k: (FRAMES.index(k[1]), k[0])):
        lines.append(",".join(fmt(rows[key].get(c)) for c in COLUMNS) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


# ---------------------------------------------------------------------------------------------
# plot


def plot(curves: dict, rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(16, 11), sharex=True)
    cmap = plt.get_cmap("nipy_spectral")
    for ax, frame in zip(axes, FRAMES, strict=True):
        for m in MODCODS:
            key = f"{m.index}/{frame}"
            if key not in curves:
                continue
            pts = np.array([p for p in curves[key] if p[2] > 0], dtype=float)
            zero = np.array([p for p in curves[key] if p[2] == 0], dtype=float)
            color = cmap(0.05 + 0.9 * (m.index - 1) / 27)
            if len(pts):
                ax.semilogy(
                    pts[:, 0], pts[:, 2] / pts[:, 1], "-", marker=".", color=color, lw=1, ms=4, label=m.name
                )
            if len(zero):  # no error seen: drawn at 1/frames, an upper bound
                ax.semilogy(zero[:, 0], 1.0 / zero[:, 1], "v", color=color, ms=3, mfc="none")
            row = rows.get((m.index, frame))
            if row:
                ax.plot(float(row["esn0_fer1e2_db"]), TARGET, "o", color=color, ms=4)
                if frame == "normal":
                    ax.plot(m.esn0_qef_db, TARGET, "|", color=color, ms=12)
        ax.axhline(TARGET, color="0.5", lw=0.8, ls="--")
        ax.set_ylim(3e-4, 1.2)
        ax.set_ylabel("FER")
        ax.grid(True, which="both", alpha=0.3)
        title = f"DVB-S2 {frame} frames ({64800 if frame == 'normal' else 16200} bits), AWGN, ideal sync"
        if frame == "normal":
            title += "  (dot: FER 1e-2 threshold, bar: standard's QEF Es/N0, v: no error in 1/FER frames)"
        ax.set_title(title)
        ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    axes[-1].set_xlabel("Es/N0 (dB)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# main


def selected(args) -> list[tuple]:
    frames = FRAMES if args.frame == "both" else (args.frame,)
    mods = [modcod(int(x) if x.isdigit() else x) for x in args.modcods] if args.modcods else list(MODCODS)
    return [(m, f) for f in frames for m in mods if f in m.frames]


def print_table(rows: dict) -> None:
    head = (
        f"{'pls':>3s} {'MODCOD':12s} {'frame':6s} {'FER 1e-2':>8s} {'frames':>6s} {'err':>4s} "
        f"{'QEF':>7s} {'margin':>7s} {'BICM':>7s} {'gap':>6s} {'iter':>5s}"
    )
    print(head)
    print("-" * len(head))
    for key in sorted(rows, key=lambda k: (FRAMES.index(k[1]), k[0])):
        r = {c: rows[key].get(c) for c in COLUMNS}
        qef, margin = fmt(r["esn0_qef_db"]), r["margin_vs_qef_db"]
        flag = ""
        if margin not in (None, ""):
            flag = "" if float(margin) >= GOAL_MARGIN_DB else "  < goal"
        print(
            f"{int(r['pls_modcod']):3d} {r['name']:12s} {r['frame']:6s} {float(r['esn0_fer1e2_db']):+8.3f} "
            f"{int(r['frames_at_threshold']):6d} {int(r['errors_at_threshold']):4d} {qef:>7s} "
            f"{fmt(None if margin in (None, '') else float(margin)):>7s} {float(r['bicm_limit_db']):+7.3f} "
            f"{float(r['gap_to_bicm_db']):6.3f} {float(r['iterations_hi']):5.1f}{flag}"
        )


def summary(rows: dict) -> list[str]:
    normal = [rows[k] for k in sorted(rows) if k[1] == "normal"]
    ok = [r for r in normal if float(r["margin_vs_qef_db"]) >= GOAL_MARGIN_DB]
    bad = [r for r in normal if float(r["margin_vs_qef_db"]) < GOAL_MARGIN_DB]
    out = [
        f"goal: FER 1e-2 at least {GOAL_MARGIN_DB} dB below the standard's QEF Es/N0, every normal "
        f"MODCOD: {len(ok)} of {len(normal)} reach it"
    ]
    if ok:
        out.append(
            "  reached (margin dB): "
            + ", ".join(f"{r['name']} ({float(r['margin_vs_qef_db']):.3f})" for r in ok)
        )
    if bad:
        short = [(r["name"], float(r["margin_vs_qef_db"])) for r in bad]
        out.append(
            "  NOT reached (margin dB, short of the goal by dB): "
            + ", ".join(f"{name} ({m:.3f}, {GOAL_MARGIN_DB - m:.3f})" for name, m in short)
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a quarter of the frames, coarser steps; default output under benchmarks/out/",
    )
    parser.add_argument("--frame", choices=("normal", "short", "both"), default="both")
    parser.add_argument(
        "--modcods",
        nargs="+",
        metavar="MODCOD",
        help='only these MODCODs: PLS indices or names such as "QPSK 1/2" or 8psk-3/5',
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--out",
        type=Path,
        help=f"CSV to write (default {CSV_PATH.relative_to(REPO)}; with --quick "
        "benchmarks/out/measured_thresholds_quick.csv)",
    )
    parser.add_argument("--plot", type=Path, help="PNG to write (default benchmarks/out/thresholds.png)")
    parser.add_argument("--workers", type=int, default=2, help="LDPC decoder threads (default 2)")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the PNG from the CSV and the stored curves (JSON)"
    )
    parser.add_argument(
        "--max-iter", type=int, default=MAX_ITER, help=f"LDPC iterations (default {MAX_ITER}, the Receiver's)"
    )
    args = parser.parse_args(argv)
    try:
        todo = selected(args)
    except ValueError as exc:
        parser.error(str(exc))
    out = args.out or (OUT_DIR / "measured_thresholds_quick.csv" if args.quick else CSV_PATH)
    png = args.plot or OUT_DIR / ("thresholds_quick.png" if args.quick else "thresholds.png")
    curves_path = png.with_suffix(".json")

    rows = read_table(out)
    curves = json.loads(curves_path.read_text()) if curves_path.is_file() else {}
    if args.replot:
        plot(curves, rows, png)
        print(f"wrote {png}")
        return 0
    print(
        f"{len(todo)} MODCOD/frame combinations, seed {args.seed}, {args.workers} decoder workers, "
        f"max {args.max_iter} iterations{', quick' if args.quick else ''}",
        flush=True,
    )
    t_all = time.perf_counter()
    for m, frame in todo:
        t0 = time.perf_counter()
        row, curve = measure(m, frame, args)
        rows[(m.index, frame)] = row
        curves[f"{m.index}/{frame}"] = curve
        margin = row["margin_vs_qef_db"]
        print(
            f"  {m.name:12s} {frame:6s} {row['esn0_fer1e2_db']:+7.3f} dB "
            f"({row['errors_lo']}/{row['frames_lo']} at {row['esn0_lo_db']:+.3f}, "
            f"{row['errors_hi']}/{row['frames_hi']} at {row['esn0_hi_db']:+.3f})"
            + ("" if margin is None else f"  margin vs QEF {margin:+.3f}")
            + f"  {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        write_table(out, rows, args)  # after every row: an interrupted run keeps what it measured
    curves_path.parent.mkdir(parents=True, exist_ok=True)
    curves_path.write_text(json.dumps(curves))
    rows = read_table(out)
    plot(curves, rows, png)
    print(f"\n{time.perf_counter() - t_all:.0f} s; wrote {out} and {png}\n")
    print_table(rows)
    print()
    if any(k[1] == "normal" and rows[k]["margin_vs_qef_db"] for k in rows):
        print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
