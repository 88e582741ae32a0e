"""CCSDS 131.0-B LDPC codes: the AR4JA family (§7.4) and the C2 (8160, 7136) code (§7.3).

AR4JA (§7.4.2)
    H is 3 x (K + 3) blocks of M x M, K = 2, 4, 8 for rates 1/2, 2/3, 4/5, M from
    Table 7-2 (``M_by_rate_and_k`` in the data file). With I = I_M, 0 = 0_M and
    ``Pk`` the permutation matrix Pi_k (row i has its one at column pi_k(i), §7.4.2.4,
    theta_k and phi_k from Tables 7-3 and 7-4)::

        H_1/2 = [ 0  0      I  0      I+P1       ]
                [ I  I      0  I      P2+P3+P4   ]
                [ I  P5+P6  0  P7+P8  I          ]

        H_2/3 = [ 0          0          | H_1/2 ]
                [ P9+P10+P11 I          |       ]
                [ I          P12+P13+P14|       ]

        H_4/5 = [ 0           0           0           0           | H_2/3 ]
                [ P21+P22+P23 I           P15+P16+P17 I           |       ]
                [ I           P24+P25+P26 I           P18+P19+P20 |       ]

    The first KM columns are the information bits, the last 3M the parity; the last
    M columns (degree 6) are punctured, so n = k + 2M (§7.4.3.5).

    Encoding (§7.4.3): G = [I | W] with W = (P^-1 Q)^T, P the last 3M columns of H;
    that is, the parity is the unique solution of H c = 0. Every Pi_k is a 4 x 4
    block matrix of (M/4)-circulant permutations, so P, Q and P^-1 are block
    circulant: the parity part of H is solved by block elimination
    (p4 = T^-1 (s2 + (P7+P8) s1), T = I + (P7+P8)(P2+P3+P4), then p3 and p2 by
    back-substitution), where T is inverted once as a 4 x 4 matrix over the ring
    GF(2)[x]/(x^(M/4) - 1). M/4 is a power of two, so that ring is local and an
    element is a unit iff it has odd weight; T is invertible iff such unit pivots
    exist, which is the full-rank check of the parity part.

C2 (§7.3)
    Base (8176, 7156) code: H is 2 x 16 circulants of 511 x 511, each the sum of two
    shifted identities (Table 7-1); rank 1020. The standard's generator (14 x 2
    circulants B_ij, first rows listed in 131.0-B, Annex C in issue 2) is systematic
    in the first 7154 columns and spans a 7154-dimensional subcode (expurgated);
    B_ij is made unique by choosing its upper-right corner 0 (CCSDS 130.1-G, the C2
    description), i.e. the last bit of each circulant's first row is 0. This module
    derives the B_ij from H by that rule (tests check all 28 against the published
    hexadecimal first rows, bit for bit). The first 18 information bits are virtual
    fill (zero, not sent), then 7136 information bits and 1022 parity bits are sent,
    then two zero bits: n = 8160, k = 7136.

Circulant products in both encoders are evaluated as integer cyclic convolutions with
the FFT, then reduced mod 2: every sum is an integer below 2^14, far inside float64
exactness, and each result is checked to lie within 0.25 of an integer.
"""

from __future__ import annotations

import json
from fractions import Fraction
from functools import cache, lru_cache
from importlib import resources

import numba as nb
import numpy as np

from modem.checks import check_choice
from modem.fec.codes import AR4JA_K, AR4JA_RATES
from modem.fec.ldpc_code import LdpcCode, csr_from_coo

#: Information block columns K per AR4JA rate (k = K M).
AR4JA_BLOCKS = {"1/2": 2, "2/3": 4, "4/5": 8}
C2_CIRCULANT = 511
C2_FILL = 18  # virtual fill bits at the start of the information (§7.3)
C2_APPENDED = 2  # zero bits appended after the parity (§7.3)

# AR4JA block layout, as (row block, column block counted from the right end of H, terms);
# term 0 is I_M, term j > 0 is Pi_j. Column blocks: H_1/2 = 4 .. 0 from the left, so
# "from the right" index 0 is the punctured block.
_LAYOUT_HALF = (
    (0, 2, (0,)), (0, 0, (0, 1)),
    (1, 4, (0,)), (1, 3, (0,)), (1, 1, (0,)), (1, 0, (2, 3, 4)),
    (2, 4, (0,)), (2, 3, (5, 6)), (2, 1, (7, 8)), (2, 0, (0,)),
)  # fmt: skip
_LAYOUT_TWO_THIRDS = ((1, 6, (9, 10, 11)), (1, 5, (0,)), (2, 6, (0,)), (2, 5, (12, 13, 14)))
_LAYOUT_FOUR_FIFTHS = (
    (1, 10, (21, 22, 23)), (1, 9, (0,)), (1, 8, (15, 16, 17)), (1, 7, (0,)),
    (2, 10, (0,)), (2, 9, (24, 25, 26)), (2, 8, (0,)), (2, 7, (18, 19, 20)),
)  # fmt: skip
_LAYOUTS = {
    "1/2": _LAYOUT_HALF,
    "2/3": _LAYOUT_HALF + _LAYOUT_TWO_THIRDS,
    "4/5": _LAYOUT_HALF + _LAYOUT_TWO_THIRDS + _LAYOUT_FOUR_FIFTHS,
}


@cache
def _tables() -> dict:
    text = resources.files("modem.fec.data").joinpath("ccsds_ldpc_tables.json").read_text()
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# GF(2) polynomial ring arithmetic, GF(2)[x]/(x^b - 1): arrays of 0/1 coefficients on the last axis.
# A b x b circulant whose row r has ones at columns (r + t) mod b is the polynomial sum x^t;
# products of circulants are products of polynomials.


def _round_bits(y: np.ndarray) -> np.ndarray:
    """Integer-valued float array -> its values mod 2 as uint8 (raises if not near integers)."""
    r = np.rint(y)
    if y.size and float(np.max(np.abs(y - r))) > 0.25:
        raise RuntimeError("FFT circulant product lost integer exactness")
    return (r.astype(np.int64) & 1).astype(np.uint8)


def _pmul(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Product of polynomials (broadcast over leading axes) in GF(2)[x]/(x^b - 1)."""
    b = a.shape[-1]
    return _round_bits(np.fft.irfft(np.fft.rfft(a) * np.fft.rfft(c), n=b))


def _pmatmul(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Product of polynomial matrices a (p, q, b) and c (q, r, b)."""
    b = a.shape[-1]
    f = np.einsum("pqf,qrf->prf", np.fft.rfft(a), np.fft.rfft(c))
    return _round_bits(np.fft.irfft(f, n=b))


def _psquare(a: np.ndarray) -> np.ndarray:
    """a(x)^2 = a(x^2) in characteristic 2, for even b."""
    b = a.shape[-1]
    out = np.zeros_like(a)
    out[..., 0::2] = a[..., : b // 2] ^ a[..., b // 2 :]
    return out


def _punit_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of an odd-weight polynomial when b = 2^e: a^(b-1) = a a^2 a^4 ... a^(2^(e-1))."""
    b = a.shape[-1]
    inv = a.copy()
    sq = a
    for _ in range(int(b).bit_length() - 2):
        sq = _psquare(sq)
        inv = _pmul(inv, sq)
    return inv


def _ring_inverse(t: np.ndarray) -> np.ndarray:
    """Inverse of a square polynomial matrix (n, n, b), b a power of two, by Gauss-Jordan with unit pivots.

    Raises
    ------
    ValueError
        If the matrix is singular (no odd-weight pivot in some column).
    """
    n, _, b = t.shape
    aug = np.zeros((n, 2 * n, b), dtype=np.uint8)
    aug[:, :n] = t
    aug[np.arange(n), n + np.arange(n), 0] = 1
    for col in range(n):
        units = [r for r in range(col, n) if int(aug[r, col].sum()) % 2 == 1]
        if not units:
            raise ValueError("matrix is singular over GF(2)")
        aug[[col, units[0]]] = aug[[units[0], col]]
        aug[col] = _pmul(_punit_inverse(aug[col, col])[None, :], aug[col])
        for r in range(n):
            if r != col and aug[r, col].any():
                aug[r] ^= _pmul(aug[r, col][None, :], aug[col])
    return aug[:, n:]


# ---------------------------------------------------------------------------------------------
# AR4JA


def _pi(index: int, m_size: int) -> np.ndarray:
    """pi_k(i), i = 0 .. M-1 (§7.4.2.4)."""
    tab = _tables()["ar4ja"]
    theta = tab["theta_k"][index - 1]
    m_index = m_size.bit_length() - 1 - 7
    phi = np.array([tab["phi_k"][j][index - 1][m_index] for j in range(4)], dtype=np.int64)
    i = np.arange(m_size, dtype=np.int64)
    j = 4 * i // m_size
    q = m_size // 4
    return q * ((theta + j) % 4) + (phi[j] + i) % q


def _ring_block(terms: tuple[int, ...], m_size: int) -> np.ndarray:
    """Return an M x M block (sum of I and Pi_k) as a 4 x 4 matrix of (M/4)-circulant polynomials."""
    tab = _tables()["ar4ja"]
    q = m_size // 4
    m_index = m_size.bit_length() - 1 - 7
    out = np.zeros((4, 4, q), dtype=np.uint8)
    for term in terms:
        for j in range(4):
            if term == 0:
                out[j, j, 0] ^= 1
            else:
                theta = tab["theta_k"][term - 1]
                out[j, (theta + j) % 4, tab["phi_k"][j][term - 1][m_index] % q] ^= 1
    return out


@nb.njit(cache=True, nogil=True)
def _ar4ja_checks(info, row_ptr, col_idx, k, msize, s, r):
    """Compute s = Q u (all 3M checks) and r = s2 + (P7+P8) s1, the right side for the punctured block."""
    for b in range(info.shape[0]):
        for row in range(3 * msize):
            acc = np.uint8(0)
            for e in range(row_ptr[row], row_ptr[row + 1]):
                c = col_idx[e]
                if c < k:
                    acc ^= info[b, c]
            s[b, row] = acc
        for i in range(msize):
            row = 2 * msize + i
            acc = s[b, row]
            for e in range(row_ptr[row], row_ptr[row + 1]):
                c = col_idx[e]
                if k + msize <= c < k + 2 * msize:
                    acc ^= s[b, c - k]  # s1[c - k - M] = s[M + c - k - M]
            r[b, i] = acc


@nb.njit(cache=True, nogil=True)
def _ar4ja_back_substitute(s, p4, row_ptr, col_idx, k, msize, out):
    """p2 = s0 + (I+P1) p4 from row block 0, p3 = s1 + (P2+P3+P4) p4 from row block 1, then p4."""
    for b in range(s.shape[0]):
        for row in range(2 * msize):
            acc = s[b, row]
            for e in range(row_ptr[row], row_ptr[row + 1]):
                c = col_idx[e]
                if c >= k + 2 * msize:
                    acc ^= p4[b, c - k - 2 * msize]
            out[b, k + row] = acc
        for i in range(msize):
            out[b, k + 2 * msize + i] = p4[b, i]


def _make_ar4ja_encoder(k: int, msize: int, row_ptr, col_idx, tinv: np.ndarray):
    q = msize // 4
    # y_i = sum_j Tinv_ij v_j: circulant times vector is a cyclic correlation with the first row.
    tinv_f = np.conj(np.fft.rfft(tinv.astype(np.float64)))

    def encode(info: np.ndarray) -> np.ndarray:
        batch = info.shape[0]
        s = np.empty((batch, 3 * msize), dtype=np.uint8)
        r = np.empty((batch, msize), dtype=np.uint8)
        _ar4ja_checks(info, row_ptr, col_idx, k, msize, s, r)
        rf = np.fft.rfft(r.reshape(batch, 4, q).astype(np.float64))
        p4 = _round_bits(np.fft.irfft(np.einsum("ijf,bjf->bif", tinv_f, rf), n=q)).reshape(batch, msize)
        out = np.empty((batch, k + 3 * msize), dtype=np.uint8)
        out[:, :k] = info
        _ar4ja_back_substitute(s, np.ascontiguousarray(p4), row_ptr, col_idx, k, msize, out)
        return out

    return encode


@cache
def ar4ja_code(k: int, rate: str) -> LdpcCode:
    """Return the AR4JA LDPC code of CCSDS 131.0-B §7.4 for information length ``k`` and ``rate``.

    Parameters
    ----------
    k : int
        Information block length, bits: 1024, 4096 or 16384.
    rate : str
        "1/2", "2/3" or "4/5".

    Returns
    -------
    LdpcCode
        Named ``f"ar4ja-{k}-{rate}"``; H is 3M x (k + 3M), n = k + 2M transmitted bits
        (information, then the first 2M parity bits), the last M columns punctured.

    Raises
    ------
    ValueError
        If ``k`` or ``rate`` is not one of the allowed values, or (never for the
        standard's tables) if the parity part of H were singular.
    """
    check_choice(k, "k", AR4JA_K)
    check_choice(rate, "rate", AR4JA_RATES)
    k = int(k)
    msize = int(_tables()["ar4ja"]["M_by_rate_and_k"][rate][str(k)])
    nblk = AR4JA_BLOCKS[rate] + 3
    if AR4JA_BLOCKS[rate] * msize != k:
        raise RuntimeError(f"table M = {msize} does not match k = {k} at rate {rate}")
    i = np.arange(msize, dtype=np.int64)
    rows, cols = [], []
    pis = {}
    for rblk, cblk_right, terms in _LAYOUTS[rate]:
        c0 = (nblk - 1 - cblk_right) * msize
        for term in terms:
            if term == 0:
                perm = i
            else:
                perm = pis.setdefault(term, _pi(term, msize))
            rows.append(rblk * msize + i)
            cols.append(c0 + perm)
    m = 3 * msize
    n_cols = k + m
    row_ptr, col_idx = csr_from_coo(m, np.concatenate(rows), np.concatenate(cols))
    # Parity part [[I, 0, I+P1], [0, I, P2+P3+P4], [0, P7+P8, I]]: eliminate p2, p3 -> T p4 = s2 + (P7+P8) s1.
    a_blk = _ring_block((2, 3, 4), msize)
    c_blk = _ring_block((7, 8), msize)
    t = _pmatmul(c_blk, a_blk)
    t[np.arange(4), np.arange(4), 0] ^= 1
    try:
        tinv = _ring_inverse(t)
    except ValueError:
        raise ValueError(f"AR4JA k={k} rate {rate}: the parity part of H is singular") from None
    n = k + 2 * msize
    return LdpcCode(
        name=f"ar4ja-{k}-{rate}",
        n=n,
        k=k,
        rate=Fraction(rate),
        m=m,
        n_cols=n_cols,
        row_ptr=row_ptr,
        col_idx=col_idx,
        tx_cols=np.arange(n, dtype=np.int32),
        zero_cols=np.zeros(0, dtype=np.int32),
        encoder=_make_ar4ja_encoder(k, msize, row_ptr, col_idx, tinv),
        reference="CCSDS 131.0-B §7.4 (H: §7.4.2, Tables 7-2 to 7-4; encoding: §7.4.3)",
    )


# ---------------------------------------------------------------------------------------------
# C2


@nb.njit(cache=True, nogil=True)
def _gf2_solve_packed(a, ncols, nrhs):
    """Gauss-Jordan over GF(2) on dense rows a (m, ncols + nrhs) uint8.

    Returns (x, rank, consistent): x (ncols, nrhs) is the solution read from the pivot
    rows (meaningful when rank == ncols and consistent).
    """
    m, width = a.shape
    words = (width + 63) // 64
    w = np.zeros((m, words), dtype=np.uint64)
    for r in range(m):
        for c in range(width):
            if a[r, c]:
                w[r, c >> 6] |= np.uint64(1) << np.uint64(c & 63)
    pivots = np.full(ncols, -1, dtype=np.int64)
    row = 0
    for c in range(ncols):
        if row == m:
            break
        wi = c >> 6
        bit = np.uint64(1) << np.uint64(c & 63)
        p = -1
        for r in range(row, m):
            if w[r, wi] & bit:
                p = r
                break
        if p < 0:
            continue
        if p != row:
            for q in range(words):
                tmp = w[p, q]
                w[p, q] = w[row, q]
                w[row, q] = tmp
        for r in range(m):
            if r != row and (w[r, wi] & bit):
                for q in range(wi, words):
                    w[r, q] ^= w[row, q]
        pivots[c] = row
        row += 1
    consistent = True
    for r in range(row, m):
        for c in range(ncols, width):
            if (w[r, c >> 6] >> np.uint64(c & 63)) & np.uint64(1):
                consistent = False
    x = np.zeros((ncols, nrhs), dtype=np.uint8)
    for c in range(ncols):
        if pivots[c] >= 0:
            for j in range(nrhs):
                cc = ncols + j
                x[c, j] = np.uint8((w[pivots[c], cc >> 6] >> np.uint64(cc & 63)) & np.uint64(1))
    return x, row, consistent


def _circulant_dense(shifts, size: int) -> np.ndarray:
    """Dense size x size matrix with row r holding ones at (r + s) mod size for each s (XOR)."""
    out = np.zeros((size, size), dtype=np.uint8)
    r = np.arange(size)
    for s in shifts:
        out[r, (r + s) % size] ^= 1
    return out


def c2_generator_rows() -> np.ndarray:
    """First rows of the C2 generator circulants B_ij, uint8 (14, 2, 511).

    Row s of B_ij is its first row cyclically shifted right by s; information bit s of
    base block j (of 7154) adds row s of B_i,j to parity block i. Derived from H with the
    standard's normalisation (last bit of every first row is 0, CCSDS 130.1-G).
    """
    return _c2_generator_rows().copy()


@lru_cache(maxsize=1)
def _c2_generator_rows() -> np.ndarray:
    tab = _tables()["c2"]
    size = int(tab["circulant_size"])
    shifts = tab["shifts"]
    nblk = len(shifts) // 2
    n_info_blk = nblk - 2
    par = np.zeros((2 * size, 2 * size), dtype=np.uint8)
    for rb in range(2):
        for cb in range(2):
            par[rb * size : (rb + 1) * size, cb * size : (cb + 1) * size] = _circulant_dense(
                shifts[rb * nblk + n_info_blk + cb], size
            )
    # Column 0 of each information block: circulant column 0 has ones at rows (-s) mod size.
    rhs = np.zeros((2 * size, n_info_blk), dtype=np.uint8)
    for j in range(n_info_blk):
        for rb in range(2):
            for s in shifts[rb * nblk + j]:
                rhs[rb * size + (-s) % size, j] ^= 1
    keep = np.setdiff1d(np.arange(2 * size), [size - 1, 2 * size - 1])  # corner bits fixed to 0
    x, rank, consistent = _gf2_solve_packed(
        np.ascontiguousarray(np.concatenate([par[:, keep], rhs], axis=1)), keep.size, n_info_blk
    )
    if rank != keep.size or not consistent:
        raise RuntimeError("C2 parity part does not determine the generator circulants")
    full = np.zeros((2 * size, n_info_blk), dtype=np.uint8)
    full[keep] = x
    return np.ascontiguousarray(full.T.reshape(n_info_blk, 2, size))


def _make_c2_encoder(k: int, n_cols: int, rows: np.ndarray):
    n_info_blk, _, size = rows.shape
    base_k = n_info_blk * size
    rows_f = np.fft.rfft(rows.astype(np.float64))

    def encode(info: np.ndarray) -> np.ndarray:
        batch = info.shape[0]
        out = np.zeros((batch, n_cols), dtype=np.uint8)
        out[:, C2_FILL:base_k] = info
        # parity block i = sum_j u_j (*) b_ij, cyclic convolution: row s of B_ij is b_ij shifted by s.
        uf = np.fft.rfft(out[:, :base_k].reshape(batch, n_info_blk, size).astype(np.float64))
        par = _round_bits(np.fft.irfft(np.einsum("bjf,jif->bif", uf, rows_f), n=size))
        out[:, base_k:] = par.reshape(batch, 2 * size)
        return out

    return encode


@lru_cache(maxsize=1)
def c2_code() -> LdpcCode:
    """Return the C2 (8160, 7136) LDPC code of CCSDS 131.0-B §7.3.

    Returns
    -------
    LdpcCode
        Named ``"c2"``. H is the base (8176, 7156) code's 1022 x 8176 matrix (rank
        1020). Columns 0-17 are virtual fill (``zero_cols``); the transmitted word is
        columns 18-8175 (7136 information bits, then 1022 parity bits) followed by two
        zero bits (``tx_cols`` = -1). Parity follows the standard's generator circulants
        (upper-right corners 0), so the expurgated code and its bits are the standard's.
    """
    tab = _tables()["c2"]
    size = int(tab["circulant_size"])
    shifts = tab["shifts"]
    nblk = len(shifts) // 2
    m = 2 * size
    n_cols = nblk * size
    r = np.arange(size, dtype=np.int64)
    rows, cols = [], []
    for rb in range(2):
        for cb in range(nblk):
            for s in shifts[rb * nblk + cb]:
                rows.append(rb * size + r)
                cols.append(cb * size + (r + s) % size)
    row_ptr, col_idx = csr_from_coo(m, np.concatenate(rows), np.concatenate(cols))
    gen = _c2_generator_rows()
    base_k = gen.shape[0] * size
    k = base_k - C2_FILL
    tx_cols = np.concatenate(
        [np.arange(C2_FILL, n_cols, dtype=np.int32), np.full(C2_APPENDED, -1, dtype=np.int32)]
    )
    return LdpcCode(
        name="c2",
        n=int(tx_cols.size),
        k=k,
        rate=Fraction(7, 8),
        m=m,
        n_cols=n_cols,
        row_ptr=row_ptr,
        col_idx=col_idx,
        tx_cols=tx_cols,
        zero_cols=np.arange(C2_FILL, dtype=np.int32),
        encoder=_make_c2_encoder(k, n_cols, gen),
        reference="CCSDS 131.0-B §7.3 (H: Table 7-1; generator circulants: Annex C of issue 2)",
    )
