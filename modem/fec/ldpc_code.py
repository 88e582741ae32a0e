"""LDPC codes as sparse parity-check structures, and the registry of every code marslink knows.

An :class:`LdpcCode` holds the parity-check matrix H in compressed-row form over
all of its columns, and says how the transmitted codeword maps onto those
columns: some columns may be punctured (not sent: AR4JA's last M columns) or
known to be zero (virtual fill: C2's 18 shortened bits), and a transmitted bit
may be outside H altogether (C2's two appended zero bits).

Bit conventions, shared by every encoder and decoder in :mod:`modem.fec`:

- bits are ``uint8`` 0/1, shape (batch, k) in and (batch, n) out;
- the first k transmitted bits are the information bits (all codes are systematic);
- an LLR is ``log(P(bit = 0) / P(bit = 1))``: positive means bit 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from modem.checks import check_bits


@dataclass(frozen=True, eq=False)
class LdpcCode:
    """One LDPC code: its parity-check matrix and how a codeword is transmitted.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"dvbs2-normal-1/2"``, ``"ar4ja-1024-1/2"``, ``"c2"``.
    n, k : int
        Transmitted codeword length and information length, bits.
    rate : Fraction
        Nominal code rate as the standard names it (DVB-S2 short codes differ from k/n).
    m, n_cols : int
        Rows (checks) and columns of H.
    row_ptr : ndarray of int32, shape (m + 1,)
        Row ``r`` of H has ones at ``col_idx[row_ptr[r]:row_ptr[r + 1]]``.
    col_idx : ndarray of int32, shape (edges,)
    tx_cols : ndarray of int32, shape (n,)
        Column of H carried by each transmitted bit; -1 marks a transmitted bit
        that is always zero and outside H (C2's appended bits).
    zero_cols : ndarray of int32
        Columns of H that are known zeros and never sent (virtual fill).
    encoder : callable
        ``encoder(info)`` maps uint8 (batch, k) to the full column vector uint8
        (batch, n_cols); use :meth:`encode` for the transmitted codeword.
    reference : str
        The clause of the standard that defines the code.
    """

    name: str
    n: int
    k: int
    rate: Fraction
    m: int
    n_cols: int
    row_ptr: np.ndarray
    col_idx: np.ndarray
    tx_cols: np.ndarray
    zero_cols: np.ndarray
    encoder: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    reference: str = ""

    @property
    def edges(self) -> int:
        """Number of ones in H."""
        return int(self.col_idx.size)

    @property
    def punctured_cols(self) -> np.ndarray:
        """Columns of H that are neither transmitted nor known zeros (decoded as erasures)."""
        mask = np.ones(self.n_cols, dtype=bool)
        mask[self.tx_cols[self.tx_cols >= 0]] = False
        mask[self.zero_cols] = False
        return np.flatnonzero(mask).astype(np.int32)

    def encode_columns(self, info) -> np.ndarray:
        """Encode to the full column vector of H, uint8 (batch, n_cols), punctured bits included."""
        u = check_bits(info, "info", self.k)
        return self.encoder(u)

    def encode(self, info) -> np.ndarray:
        """Systematically encode information bits.

        Parameters
        ----------
        info : array_like of 0/1, shape (batch, k) or (k,)

        Returns
        -------
        ndarray of uint8, shape (batch, n)
            Transmitted codewords; the first k bits are ``info``.
        """
        c = self.encode_columns(info)
        return self.columns_to_tx(c)

    def columns_to_tx(self, c: np.ndarray) -> np.ndarray:
        """Select the transmitted bits from full column vectors (batch, n_cols) -> (batch, n)."""
        out = np.zeros((c.shape[0], self.n), dtype=np.uint8)
        sent = self.tx_cols >= 0
        out[:, sent] = c[:, self.tx_cols[sent]]
        return out

    def syndrome_ok(self, c) -> np.ndarray:
        """True per frame where the full column vector satisfies H c = 0.

        Parameters
        ----------
        c : array_like of 0/1, shape (batch, n_cols) or (n_cols,)
        """
        c = check_bits(c, "c", self.n_cols)
        return syndrome_weight(self, c) == 0

    def tx_syndrome_ok(self, codeword) -> np.ndarray:
        """True per frame where a transmitted codeword (batch, n) is a codeword.

        Punctured columns are unknown in a transmitted word, so this check is only
        available for codes without punctured columns.
        """
        if self.punctured_cols.size:
            raise ValueError(f"code {self.name} has punctured columns; check encode_columns() output instead")
        cw = check_bits(codeword, "codeword", self.n)
        full = np.zeros((cw.shape[0], self.n_cols), dtype=np.uint8)
        sent = self.tx_cols >= 0
        full[:, self.tx_cols[sent]] = cw[:, sent]
        return syndrome_weight(self, full) == 0

    def describe(self) -> dict:
        """Summary for listings: name, n, k, rate, columns, checks, edges, punctured and zero columns."""
        return {
            "name": self.name,
            "n": self.n,
            "k": self.k,
            "rate": str(self.rate),
            "k/n": self.k / self.n,
            "n_cols": self.n_cols,
            "checks": self.m,
            "edges": self.edges,
            "punctured": int(self.punctured_cols.size),
            "zero_fill": int(self.zero_cols.size),
            "reference": self.reference,
        }


def syndrome_weight(code: LdpcCode, c: np.ndarray) -> np.ndarray:
    """Number of unsatisfied checks of full column vectors c, uint8 (batch, n_cols) -> int64 (batch,)."""
    rows = np.repeat(np.arange(code.m), np.diff(code.row_ptr))
    out = np.empty(c.shape[0], dtype=np.int64)
    for b in range(c.shape[0]):
        s = np.bincount(rows, weights=c[b, code.col_idx], minlength=code.m).astype(np.int64) & 1
        out[b] = int(s.sum())
    return out


def csr_from_rows(rows: list[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Build (row_ptr, col_idx) int32 arrays from a list of per-row column index arrays (sorted per row)."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    row_ptr = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=row_ptr[1:])
    col_idx = np.concatenate([np.sort(np.asarray(r, dtype=np.int32)) for r in rows]).astype(np.int32)
    return row_ptr, col_idx


def csr_from_coo(m: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Build (row_ptr, col_idx) int32 arrays from coordinates of the ones of H.

    Duplicated coordinates cancel in pairs (GF(2) addition), as when a block of H
    is the sum of two permutation matrices that coincide somewhere.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    key = rows * (int(cols.max()) + 1 if cols.size else 1) + cols
    key, counts = np.unique(key, return_counts=True)
    key = key[counts % 2 == 1]
    width = int(cols.max()) + 1 if cols.size else 1
    r = key // width
    c = key % width
    row_ptr = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=m), out=row_ptr[1:])
    return row_ptr, c.astype(np.int32)
