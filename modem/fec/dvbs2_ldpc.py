"""DVB-S2 LDPC codes (ETSI EN 302 307-1 §5.3.2, Annexes B, C): parity checks and the accumulator encoder.

For information bit m = 360 i + j and each parity address x on line i of the
standard's table, the bit is added to parity accumulator (x + j q) mod (n - k),
with q = (n - k) / 360; then p_i ^= p_(i-1) for i = 1 .. n-k-1 (§5.3.2.2). H
has one row per parity bit: row r holds the information bits that reach
accumulator r, plus parity bits r and r - 1 (the staircase).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from importlib import resources

import numba as nb
import numpy as np

from modem.checks import check_choice
from modem.fec.ldpc_code import LdpcCode, csr_from_coo

#: Frame lengths in bits.
FRAME_BITS = {"normal": 64800, "short": 16200}
#: Code rates per frame size (EN 302 307-1 Tables 5a/5b; short frames have no 9/10).
RATES = {
    "normal": ("1/4", "1/3", "2/5", "1/2", "3/5", "2/3", "3/4", "4/5", "5/6", "8/9", "9/10"),
    "short": ("1/4", "1/3", "2/5", "1/2", "3/5", "2/3", "3/4", "4/5", "5/6", "8/9"),
}
GROUP = 360  # bits per parallel group


def _read_table(frame: str, rate: str) -> list[list[int]]:
    fname = f"{frame}_{rate.replace('/', '_')}.txt"
    text = resources.files("modem.fec.data.dvbs2_ldpc").joinpath(fname).read_text()
    return [[int(v) for v in line.split()] for line in text.splitlines() if line.strip()]


@nb.njit(cache=True, nogil=True)
def _accumulate_parity(info, row_ptr, col_idx, k, out):
    """out[b, k + r] = prefix-XOR over rows of the XOR of info bits in row r (r = 0 .. n-k-1)."""
    m = row_ptr.size - 1
    for b in range(info.shape[0]):
        acc = np.uint8(0)
        for r in range(m):
            s = acc
            for e in range(row_ptr[r], row_ptr[r + 1]):
                c = col_idx[e]
                if c < k:
                    s ^= info[b, c]
            out[b, k + r] = s
            acc = s


def _make_encoder(k: int, n: int, row_ptr: np.ndarray, col_idx: np.ndarray):
    def encode(info: np.ndarray) -> np.ndarray:
        out = np.empty((info.shape[0], n), dtype=np.uint8)
        out[:, :k] = info
        _accumulate_parity(info, row_ptr, col_idx, k, out)
        return out

    return encode


@cache
def dvbs2_code(frame: str, rate: str) -> LdpcCode:
    """The DVB-S2 LDPC code for a frame size ("normal" or "short") and a rate such as "1/2"."""
    check_choice(frame, "frame", FRAME_BITS)
    check_choice(rate, "rate", RATES[frame])
    n = FRAME_BITS[frame]
    table = _read_table(frame, rate)
    k = GROUP * len(table)
    m = n - k
    q = m // GROUP
    rows, cols = [], []
    j = np.arange(GROUP, dtype=np.int64)
    for i, addrs in enumerate(table):
        info_bits = GROUP * i + j
        for x in addrs:
            rows.append((x + j * q) % m)
            cols.append(info_bits)
    r = np.arange(m, dtype=np.int64)
    rows += [r, r[1:]]
    cols += [k + r, k + r[1:] - 1]
    row_ptr, col_idx = csr_from_coo(m, np.concatenate(rows), np.concatenate(cols))
    clause = "Annex B" if frame == "normal" else "Annex C"
    return LdpcCode(
        name=f"dvbs2-{frame}-{rate}",
        n=n,
        k=k,
        rate=Fraction(rate),
        m=m,
        n_cols=n,
        row_ptr=row_ptr,
        col_idx=col_idx,
        tx_cols=np.arange(n, dtype=np.int32),
        zero_cols=np.zeros(0, dtype=np.int32),
        encoder=_make_encoder(k, n, row_ptr, col_idx),
        reference=f"ETSI EN 302 307-1 §5.3.2, {clause}",
    )
