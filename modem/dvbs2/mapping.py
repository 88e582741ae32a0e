"""DVB-S2 bit interleaver, constellation mapper and max-log soft demapper (EN 302 307-1 §5.3.3, §5.4).

Bit interleaver (§5.3.3, Table 8, Figures 7/8): for 8PSK, 16APSK and 32APSK the n_ldpc code bits are
written column-wise into a block of ``bps`` columns (3, 4, 5) and n_ldpc/bps rows and read out
row-wise, the MSB of the BBHEADER first, except for 8PSK rate 3/5 where it is read out third (the
columns are read in the order 3, 2, 1). QPSK is not interleaved.

Mapping (§5.4, Figures 9-12): the interleaver output is cut into groups of ``bps`` bits; bit
``bps*i`` (the first) is the MSB of the label of symbol ``i``. Points are complex64 with **unit
average energy** (E = 1, the first of the two amplitude options of §5.4.3/§5.4.4: for 16APSK
R1^2 + 3 R2^2 = 4, for 32APSK R1^2 + 3 R2^2 + 4 R3^2 = 8). QPSK and 8PSK are Gray-coded (ρ = 1);
16APSK is 4+12 points with γ = R2/R1 (Table 9), 32APSK 4+12+16 points with γ1 = R2/R1, γ2 = R3/R1
(Table 10).

GNU Radio's gr-dtv (``dvbs2_modulator_bc``, 3.10) uses the same labels (its symbol index is the
label, MSB first) and, since GNU Radio PR #5391 (2021), the same unit-energy amplitudes: its
PLFRAME symbols equal ours with no scaling (``tests/test_grdtv_conformance.py``). Older gr-dtv
releases set the outer ring radius to 1 instead.

Soft demapper: max-log LLR = log P(b=0|y)/P(b=1|y) (positive means 0),
``(min_{s: b=1} |y-s|^2 - min_{s: b=0} |y-s|^2) / N0`` with N0 = E|n|^2 the complex noise variance
per symbol. QPSK uses the exact closed form 2 sqrt(2) Re/Im(y) / N0; the others a numba kernel over
all points (|y|^2 cancels, so the metric per point is |s|^2 - 2 Re(y s*)), vectorized over blocks
of symbols.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources

import numba as nb
import numpy as np

from modem.checks import check_choice

#: Modulations of DVB-S2 (§5.4) and their bits per symbol (η_MOD).
MODULATIONS = ("QPSK", "8PSK", "16APSK", "32APSK")
BITS_PER_SYMBOL = {"QPSK": 2, "8PSK": 3, "16APSK": 4, "32APSK": 5}

# Label -> (ring, angle in degrees), read off Figures 9-12 of EN 302 307-1 (ring 0 = innermost).
# 8PSK: Gray labels around the circle, 001 at 0 rad and 000 at π/4 (Figure 10).
_PSK8_DEG = {0b000: 45, 0b001: 0, 0b010: 180, 0b011: 225, 0b100: 90, 0b101: 315, 0b110: 135, 0b111: 270}
# 16APSK (Figure 11): labels 11xx on the inner ring at odd multiples of π/4; on the outer ring the
# first two bits pick the angle (00: π/4, 01: π/12, 10: 5π/12 from the nearest I axis) and the
# last two bits the quadrant (third bit 1: left half plane, fourth bit 1: lower half plane).
_APSK16 = {
    0b0000: (1, 45), 0b0001: (1, -45), 0b0010: (1, 135), 0b0011: (1, -135),
    0b0100: (1, 15), 0b0101: (1, -15), 0b0110: (1, 165), 0b0111: (1, -165),
    0b1000: (1, 75), 0b1001: (1, -75), 0b1010: (1, 105), 0b1011: (1, -105),
    0b1100: (0, 45), 0b1101: (0, -45), 0b1110: (0, 135), 0b1111: (0, -135),
}  # fmt: skip
# 32APSK (Figure 12): rings 0/1/2 have radii R1/R2/R3 = 1/γ1/γ2 (times R1).
_APSK32 = {
    0b00000: (1, 45), 0b00001: (1, 75), 0b00010: (1, -45), 0b00011: (1, -75),
    0b00100: (1, 135), 0b00101: (1, 105), 0b00110: (1, -135), 0b00111: (1, -105),
    0b01000: (2, 22.5), 0b01001: (2, 67.5), 0b01010: (2, -45), 0b01011: (2, -90),
    0b01100: (2, 135), 0b01101: (2, 90), 0b01110: (2, -157.5), 0b01111: (2, -112.5),
    0b10000: (1, 15), 0b10001: (0, 45), 0b10010: (1, -15), 0b10011: (0, -45),
    0b10100: (1, 165), 0b10101: (0, 135), 0b10110: (1, -165), 0b10111: (0, -135),
    0b11000: (2, 0), 0b11001: (2, 45), 0b11010: (2, -22.5), 0b11011: (2, -67.5),
    0b11100: (2, 157.5), 0b11101: (2, 112.5), 0b11110: (2, 180), 0b11111: (2, -135),
}  # fmt: skip

_QPSK_LLR_GAIN = np.float32(2.0 * np.sqrt(2.0))  # 4 a with a = 1/sqrt(2)


# ---------------------------------------------------------------------------------------------
# MODCOD table (modem/dvbs2/data/dvbs2_modcods.csv)


@lru_cache(maxsize=1)
def _modcod_rows() -> tuple[dict, ...]:
    text = resources.files("modem.dvbs2.data").joinpath("dvbs2_modcods.csv").read_text()
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        rows.append(
            {
                "index": int(r["pls_modcod"]),
                "modulation": r["modulation"],
                "rate": r["rate"],
                "bps": int(r["bits_per_symbol"]),
                "gamma1": float(r["gamma1"]) if r["gamma1"] else None,
                "gamma2": float(r["gamma2"]) if r["gamma2"] else None,
            }
        )
    return tuple(rows)


def modcod_parameters(index: int) -> tuple[str, str, float | None, float | None]:
    """Modulation, rate and ring ratios of a PLS MODCOD index (EN 302 307-1 Table 12, Tables 9/10).

    Parameters
    ----------
    index : int
        MODCOD field value, 1 .. 28 (0 is the dummy PLFRAME, 29-31 are reserved).

    Returns
    -------
    modulation : str
    rate : str
    gamma1, gamma2 : float or None
        γ (16APSK) / γ1, γ2 (32APSK) from the MODCOD table; None where they do not apply.
    """
    for r in _modcod_rows():
        if r["index"] == index:
            return r["modulation"], r["rate"], r["gamma1"], r["gamma2"]
    raise ValueError(f"index must be a DVB-S2 MODCOD 1..28; got {index!r}")


def _check_modulation(modulation: str) -> str:
    return check_choice(modulation, "modulation", MODULATIONS)


def _check_rate(modulation: str, rate: str) -> str:
    rates = [r["rate"] for r in _modcod_rows() if r["modulation"] == modulation]
    return check_choice(rate, f"rate (for {modulation})", rates)


# ---------------------------------------------------------------------------------------------
# bit interleaver (§5.3.3)


def interleaver_columns(modulation: str, rate: str) -> tuple[int, ...]:
    """Order in which the interleaver's columns are read within a row (0-based), EN 302 307-1 §5.3.3.

    ``()`` for QPSK (no interleaver); ``(2, 1, 0)`` for 8PSK rate 3/5 (MSB of the BBHEADER read out
    third, Figure 8); ``(0, 1, ..., bps-1)`` otherwise (Figure 7).
    """
    _check_rate(_check_modulation(modulation), rate)
    if modulation == "QPSK":
        return ()
    bps = BITS_PER_SYMBOL[modulation]
    if modulation == "8PSK" and rate == "3/5":
        return tuple(range(bps - 1, -1, -1))
    return tuple(range(bps))


def _permutation(modulation: str, rate: str, n_ldpc: int) -> np.ndarray:
    cols = interleaver_columns(modulation, rate)
    if cols and (n_ldpc <= 0 or n_ldpc % len(cols)):
        raise ValueError(f"n_ldpc must be a positive multiple of {len(cols)} for {modulation}; got {n_ldpc}")
    return _column_permutation(cols, n_ldpc)


@lru_cache(maxsize=32)
def _column_permutation(cols: tuple[int, ...], n_ldpc: int) -> np.ndarray:
    # cached per column order, so all MODCODs of a modulation share one table per frame size
    if not cols:
        perm = np.arange(n_ldpc, dtype=np.int64)
    else:
        rows = n_ldpc // len(cols)
        # output bit r*c + t is read from row r of column cols[t], i.e. input bit cols[t]*rows + r
        perm = (np.asarray(cols, dtype=np.int64)[None, :] * rows + np.arange(rows)[:, None]).reshape(-1)
    perm.setflags(write=False)
    return perm


def interleaver_permutation(modulation: str, rate: str, n_ldpc: int = 64800) -> np.ndarray:
    """Interleaver permutation: ``interleaved[j] = bits[perm[j]]`` (EN 302 307-1 §5.3.3).

    Parameters
    ----------
    modulation, rate : str
        E.g. ``"8PSK"``, ``"3/5"``.
    n_ldpc : int
        Code word length, 64800 (normal) or 16200 (short); any multiple of the column count is
        accepted.

    Returns
    -------
    ndarray of int64, shape (n_ldpc,)
        Read-only, cached per column order and n_ldpc. The identity for QPSK.
    """
    return _permutation(modulation, rate, int(n_ldpc))


def _inverse_permutation(modulation: str, rate: str, n_ldpc: int) -> np.ndarray:
    _permutation(modulation, rate, n_ldpc)  # validates
    return _column_inverse(interleaver_columns(modulation, rate), n_ldpc)


@lru_cache(maxsize=32)
def _column_inverse(cols: tuple[int, ...], n_ldpc: int) -> np.ndarray:
    perm = _column_permutation(cols, n_ldpc)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(n_ldpc, dtype=np.int64)
    inv.setflags(write=False)
    return inv


def _as_batch(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, n_ldpc) or (n_ldpc,); got {np.shape(x)}")
    return a


def interleave(bits, modulation: str, rate: str) -> np.ndarray:
    """Bit-interleave code words (EN 302 307-1 §5.3.3); QPSK returns a copy.

    Parameters
    ----------
    bits : array_like, shape (batch, n_ldpc) or (n_ldpc,)
        Code words, any dtype (uint8 bits or float32 LLRs alike); n_ldpc = 64800 or 16200.
    modulation, rate : str

    Returns
    -------
    ndarray, shape (batch, n_ldpc)
        Same dtype as the input (a 1-D input comes back as a batch of one).
    """
    a = _as_batch(bits, "bits")
    perm = _permutation(modulation, rate, a.shape[1])
    if not interleaver_columns(modulation, rate):
        return np.array(a, order="C")
    return np.take(a, perm, axis=1)  # (C-contiguous, unlike a[:, perm], and faster)


def deinterleave(values, modulation: str, rate: str) -> np.ndarray:
    """Inverse of :func:`interleave`: ``deinterleave(interleave(x)) == x`` (EN 302 307-1 §5.3.3).

    Parameters
    ----------
    values : array_like, shape (batch, n_ldpc) or (n_ldpc,)
        Interleaved bits or LLRs (e.g. the output of :func:`demap_maxlog`), any dtype.
    modulation, rate : str

    Returns
    -------
    ndarray, shape (batch, n_ldpc)
        Same dtype as the input, in code word order.
    """
    a = _as_batch(values, "values")
    inv = _inverse_permutation(modulation, rate, a.shape[1])
    if not interleaver_columns(modulation, rate):
        return np.array(a, order="C")
    return np.take(a, inv, axis=1)  # (C-contiguous, unlike a[:, inv], and faster)


# ---------------------------------------------------------------------------------------------
# constellations (§5.4)


def _ring_ratios(modulation: str, rate: str | None, gamma1, gamma2) -> tuple[float, float]:
    if modulation not in ("16APSK", "32APSK"):
        return 1.0, 1.0
    need2 = modulation == "32APSK"
    if gamma1 is None or (need2 and gamma2 is None):
        if rate is None:
            raise ValueError(f"rate or gamma1{'/gamma2' if need2 else ''} must be given for {modulation}")
        _check_rate(modulation, rate)
        row = next(r for r in _modcod_rows() if r["modulation"] == modulation and r["rate"] == rate)
        gamma1 = row["gamma1"] if gamma1 is None else gamma1
        gamma2 = row["gamma2"] if gamma2 is None and need2 else gamma2
    g1 = float(gamma1)
    g2 = float(gamma2) if need2 else 1.0
    if not g1 > 1.0 or (need2 and not g2 > g1):
        raise ValueError(
            f"ring ratios must satisfy 1 < gamma1 < gamma2; got gamma1={gamma1}, gamma2={gamma2}"
        )
    return g1, g2


def _radii(modulation: str, g1: float, g2: float) -> tuple[float, ...]:
    """Ring radii, innermost first, for unit average energy."""
    if modulation == "16APSK":
        r1 = 2.0 / np.sqrt(1.0 + 3.0 * g1**2)  # R1^2 + 3 R2^2 = 4 (E = 1)
        return (r1, r1 * g1)
    if modulation == "32APSK":
        r1 = np.sqrt(8.0 / (1.0 + 3.0 * g1**2 + 4.0 * g2**2))  # R1^2 + 3 R2^2 + 4 R3^2 = 8 (E = 1)
        return (r1, r1 * g1, r1 * g2)
    return (1.0,)


@lru_cache(maxsize=256)
def _points(modulation: str, g1: float, g2: float) -> np.ndarray:
    radius = _radii(modulation, g1, g2)
    if modulation == "QPSK":
        # Figure 9: I carries the MSB, Q the LSB; bit 0 -> positive
        lab = np.arange(4)
        pts = ((1 - 2 * (lab >> 1)) + 1j * (1 - 2 * (lab & 1))) / np.sqrt(2.0)
    elif modulation == "8PSK":
        pts = np.exp(1j * np.deg2rad([_PSK8_DEG[k] for k in range(8)]))
    else:
        table = _APSK16 if modulation == "16APSK" else _APSK32
        pts = np.array(
            [radius[table[k][0]] * np.exp(1j * np.deg2rad(table[k][1])) for k in range(len(table))]
        )
    out = pts.astype(np.complex64)
    out.setflags(write=False)
    return out


def constellation(
    modulation: str, rate: str | None = None, *, gamma1: float | None = None, gamma2: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Constellation points and bit labels (EN 302 307-1 §5.4, Figures 9-12), unit average energy.

    Parameters
    ----------
    modulation : {"QPSK", "8PSK", "16APSK", "32APSK"}
    rate : str, optional
        Code rate, used to look up γ (Table 9) / γ1, γ2 (Table 10) for 16APSK/32APSK when not given.
    gamma1, gamma2 : float, optional
        Ring ratios R2/R1 and (32APSK) R3/R1, overriding the table.

    Returns
    -------
    points : ndarray of complex64, shape (M,)
        ``points[k]`` is the point labelled k, the label read MSB first (the first bit of the symbol's
        group of ``bps`` bits is the MSB). Mean of ``|points|**2`` is 1. Read-only.
    labels : ndarray of uint8, shape (M, bps)
        ``labels[k]`` = the bits of k, MSB first.
    """
    _check_modulation(modulation)
    if rate is not None:
        _check_rate(modulation, rate)
    g1, g2 = _ring_ratios(modulation, rate, gamma1, gamma2)
    pts = _points(modulation, g1, g2)
    bps = BITS_PER_SYMBOL[modulation]
    labels = ((np.arange(pts.size)[:, None] >> np.arange(bps - 1, -1, -1)[None, :]) & 1).astype(np.uint8)
    return pts, labels


# ---------------------------------------------------------------------------------------------
# mapping


def _label_indices(bits, bps: int) -> np.ndarray:
    a = np.asarray(bits)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] % bps:
        raise ValueError(f"bits must have shape (batch, n) with n a multiple of {bps}; got {np.shape(bits)}")
    if a.dtype != np.uint8:
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise TypeError(f"bits must hold integer bits 0/1; got dtype {a.dtype}")
        a = a.astype(np.uint8)
    g = a.reshape(a.shape[0], -1, bps)
    idx = g[:, :, 0].copy()
    for k in range(1, bps):
        idx <<= 1
        idx |= g[:, :, k]
    if idx.size and idx.max() >= (1 << bps):
        raise ValueError("bits must hold only bits 0 and 1")
    return idx


def map_bits(
    bits,
    modulation: str,
    rate: str | None = None,
    *,
    gamma1: float | None = None,
    gamma2: float | None = None,
) -> np.ndarray:
    """Map (interleaved) bits to symbols (EN 302 307-1 §5.4).

    Parameters
    ----------
    bits : array_like of uint8, shape (batch, n) or (n,)
        Interleaver output; n a multiple of bps. Bits ``bps*i .. bps*i+bps-1`` form symbol i, MSB first.
    modulation, rate, gamma1, gamma2
        As for :func:`constellation`.

    Returns
    -------
    ndarray of complex64, shape (batch, n // bps)
        Unit average energy symbols.
    """
    pts, _ = constellation(modulation, rate, gamma1=gamma1, gamma2=gamma2)
    return pts[_label_indices(bits, BITS_PER_SYMBOL[modulation])]


# ---------------------------------------------------------------------------------------------
# max-log demapper


@nb.njit(cache=True, nogil=True)
def _demap_qpsk(y, scale, out):  # pragma: no cover - compiled
    nb_, ns = y.shape
    for b in range(nb_):
        g = scale[b]
        for s in range(ns):
            v = y[b, s]
            out[b, 2 * s] = g * v.real
            out[b, 2 * s + 1] = g * v.imag


_BLOCK = 256  # symbols per block of the APSK/PSK kernel


@nb.njit(cache=True, nogil=True)
def _demap_points(y, inv_n0, pr, pq, pe, bps, out, stride, koff):  # pragma: no cover - compiled
    # The LLR of bit k of symbol s goes to out[b, s * stride + koff[k]]: stride bps and koff
    # 0 .. bps-1 in mapper order; stride 1 and koff[k] = (column of bit k) * rows straight into
    # code word order (the block interleaver of §5.3.3 undone on the way: see demap_deinterleave).
    # Blocks of symbols: for each point the metric of the whole block is computed once and folded
    # into the running minima of the bit sets it belongs to; the set is fixed per (point, bit), so
    # the inner loops over the block are branch-free and vectorize.
    nb_, ns = y.shape
    m = pr.shape[0]
    yr = np.empty(_BLOCK, np.float32)
    yq = np.empty(_BLOCK, np.float32)
    dd = np.empty(_BLOCK, np.float32)
    mm = np.empty((2, bps, _BLOCK), np.float32)
    big = np.float32(3.0e38)
    two = np.float32(2.0)
    for b in range(nb_):
        g = inv_n0[b]
        for s0 in range(0, ns, _BLOCK):
            n = min(_BLOCK, ns - s0)
            for t in range(n):
                v = y[b, s0 + t]
                yr[t] = two * v.real
                yq[t] = two * v.imag
            mm[:, :, :n] = big
            for p in range(m):
                a = pr[p]
                c = pq[p]
                e = pe[p]
                for t in range(n):
                    dd[t] = e - (yr[t] * a + yq[t] * c)  # |y - s|^2 - |y|^2
                for k in range(bps):
                    row = mm[(p >> (bps - 1 - k)) & 1, k]
                    for t in range(n):
                        row[t] = min(row[t], dd[t])
            for k in range(bps):
                o = koff[k] + s0 * stride
                for t in range(n):
                    out[b, o + t * stride] = (mm[1, k, t] - mm[0, k, t]) * g


def demap_maxlog(
    symbols,
    noise_var,
    modulation: str,
    rate: str | None = None,
    *,
    gamma1: float | None = None,
    gamma2: float | None = None,
) -> np.ndarray:
    """Max-log LLRs of the bits of received symbols (inverse of :func:`map_bits`).

    ``llr = (min_{s: b=1} |y-s|^2 - min_{s: b=0} |y-s|^2) / N0``, positive for a 0 bit.

    Parameters
    ----------
    symbols : array_like of complex, shape (batch, S) or (S,)
        Received symbols on the unit-energy constellation scale (after PL descrambling).
    noise_var : float or array_like, shape (batch,)
        N0 = E|n|^2, complex noise variance per symbol, > 0 (one value, or one per frame).
    modulation, rate, gamma1, gamma2
        As for :func:`constellation`.

    Returns
    -------
    ndarray of float32, shape (batch, S * bps)
        LLRs in mapper bit order (feed to :func:`deinterleave`).
    """
    return _demap(symbols, noise_var, modulation, rate, gamma1, gamma2, False)


def demap_deinterleave(symbols, noise_var, modulation: str, rate: str) -> np.ndarray:
    """``deinterleave(demap_maxlog(symbols, noise_var, modulation, rate), modulation, rate)`` in one pass.

    The demapper writes each LLR straight to its code word position (the block interleaver's
    bit k of symbol s is code bit column(k) * rows + s, EN 302 307-1 §5.3.3): no interleaved
    copy, no gather. Same arguments as :func:`demap_maxlog` (``rate`` required); returns
    float32 LLRs of shape (batch, S * bps) in code word order, equal to the two-step result.
    """
    return _demap(symbols, noise_var, modulation, rate, None, None, True)


def _demap(symbols, noise_var, modulation, rate, gamma1, gamma2, code_order: bool) -> np.ndarray:
    pts, _ = constellation(modulation, rate, gamma1=gamma1, gamma2=gamma2)
    bps = BITS_PER_SYMBOL[modulation]
    y = np.asarray(symbols)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2:
        raise ValueError(f"symbols must have shape (batch, S) or (S,); got {np.shape(symbols)}")
    if not (np.issubdtype(y.dtype, np.complexfloating) or np.issubdtype(y.dtype, np.floating)):
        raise TypeError(f"symbols must be a complex array; got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.complex64)
    nv = np.asarray(noise_var, dtype=np.float64)
    if nv.ndim == 0:
        nv = np.full(y.shape[0], float(nv))
    if nv.shape != (y.shape[0],):
        raise ValueError(
            f"noise_var must be a float or have shape ({y.shape[0]},); got {np.shape(noise_var)}"
        )
    if not np.all(np.isfinite(nv) & (nv > 0)):
        raise ValueError(f"noise_var must be finite and > 0; got {noise_var!r}")
    inv = (1.0 / nv).astype(np.float32)
    out = np.empty((y.shape[0], y.shape[1] * bps), dtype=np.float32)
    if modulation == "QPSK":
        _demap_qpsk(y, inv * _QPSK_LLR_GAIN, out)
    else:
        p = pts.astype(np.complex64)
        stride, koff = bps, np.arange(bps, dtype=np.int64)
        if code_order:
            _permutation(modulation, rate, out.shape[1])  # validates the length
            cols = interleaver_columns(modulation, rate)
            stride, koff = 1, np.array(cols, dtype=np.int64) * (out.shape[1] // len(cols))
        _demap_points(
            y,
            inv,
            np.ascontiguousarray(p.real),
            np.ascontiguousarray(p.imag),
            (p.real.astype(np.float32) ** 2 + p.imag.astype(np.float32) ** 2),
            bps,
            out,
            stride,
            koff,
        )
    return out
