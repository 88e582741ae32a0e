"""DVB-S2 outer BCH codes (ETSI EN 302 307-1 §5.3.1): systematic encoder and hard-decision decoder.

The code is a t-error-correcting binary BCH code over GF(2^m) (m = 16 for normal frames, 14 for
short ones), shortened to n = N_bch = K_ldpc bits. Its generator g(x) is the product of the first t
minimal polynomials of Tables 6a/6b, the first of which is the field's primitive polynomial. Bits are
sent highest power first: the message m_(k-1) .. m_0 followed by the n - k parity bits of
d(x) = m(x) x^(n-k) mod g(x).

Encoder: a byte-at-a-time LFSR with the n - k <= 192 bit register held left-aligned in three uint64
words. Decoder: the remainder of the received word modulo g(x) is computed with the same LFSR (zero
remainder = codeword, early exit); syndromes S_1 .. S_2t are evaluated on that short remainder (odd
ones directly, S_2i = S_i^2), then binary Berlekamp-Massey and a Chien search over the n valid
positions only. A word is declared undecodable when the locator has degree > t or does not have
exactly deg roots among the valid positions; the corrected word is re-checked against the syndromes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numba as nb
import numpy as np

from modem.checks import check_bits, check_choice

#: Frame sizes (EN 302 307-1 Tables 5a/5b: 64800 and 16200 bits; short frames have no rate 9/10).
FRAMES = ("normal", "short")

_W = 3  # uint64 words in the LFSR register: n - k <= 192 bits
_CHIEN_BLOCK = 256  # positions evaluated per block of the Chien search
_U1 = np.uint64(1)
_U8 = np.uint64(8)
_U56 = np.uint64(56)
_U63 = np.uint64(63)


@dataclass
class BchResult:
    """Outcome of :meth:`BchCode.decode` for a batch of frames.

    Attributes
    ----------
    message : ndarray of uint8, shape (batch, k)
        Decoded information bits (the received ones where decoding failed); a view of ``codeword``.
    codeword : ndarray of uint8, shape (batch, n)
        Corrected codeword; the received word, unchanged, where decoding failed.
    corrected : ndarray of int32, shape (batch,)
        Number of bit errors corrected, -1 where decoding failed.
    ok : ndarray of bool, shape (batch,)
        True where the output is a codeword within distance t of the received word.
    """

    message: np.ndarray
    codeword: np.ndarray
    corrected: np.ndarray
    ok: np.ndarray


# ----------------------------------------------------------------------------------------------
# numba kernels


@nb.njit(cache=True, nogil=True)
def _lfsr(bits, k, table, gtail):
    """Left-aligned words (r0, r1, r2) of bits[:k](x) * x^r mod g(x) (bits[0] = highest power)."""
    r0 = np.uint64(0)
    r1 = np.uint64(0)
    r2 = np.uint64(0)
    nbytes = k // 8
    for j in range(nbytes):
        o = 8 * j
        byte = (
            (np.uint64(bits[o]) << np.uint64(7))
            | (np.uint64(bits[o + 1]) << np.uint64(6))
            | (np.uint64(bits[o + 2]) << np.uint64(5))
            | (np.uint64(bits[o + 3]) << np.uint64(4))
            | (np.uint64(bits[o + 4]) << np.uint64(3))
            | (np.uint64(bits[o + 5]) << np.uint64(2))
            | (np.uint64(bits[o + 6]) << np.uint64(1))
            | np.uint64(bits[o + 7])
        )
        idx = (r0 >> _U56) ^ byte
        r0 = ((r0 << _U8) | (r1 >> _U56)) ^ table[idx, 0]
        r1 = ((r1 << _U8) | (r2 >> _U56)) ^ table[idx, 1]
        r2 = (r2 << _U8) ^ table[idx, 2]
    for i in range(8 * nbytes, k):  # tail bits (none for the DVB-S2 codes: k is a multiple of 8)
        fb = (r0 >> _U63) ^ np.uint64(bits[i])
        r0 = (r0 << _U1) | (r1 >> _U63)
        r1 = (r1 << _U1) | (r2 >> _U63)
        r2 = r2 << _U1
        if fb:
            r0 ^= gtail[0]
            r1 ^= gtail[1]
            r2 ^= gtail[2]
    return r0, r1, r2


@nb.njit(cache=True, nogil=True)
def _encode_kernel(msg, k, r, table, gtail, out):
    """out[b, :k] = msg[b]; out[b, k:k + r] = parity bits, highest power first."""
    regs = np.empty(_W, dtype=np.uint64)
    for b in range(msg.shape[0]):
        row = msg[b]
        r0, r1, r2 = _lfsr(row, k, table, gtail)
        regs[0] = r0
        regs[1] = r1
        regs[2] = r2
        orow = out[b]
        for i in range(k):
            orow[i] = row[i]
        for i in range(r):
            orow[k + i] = np.uint8((regs[i >> 6] >> np.uint64(63 - (i & 63))) & _U1)


@nb.njit(cache=True, nogil=True)
def _gf_mul(a, b, log, exp):
    if a == 0 or b == 0:
        return 0
    return exp[log[a] + log[b]]


@nb.njit(cache=True, nogil=True)
def _decode_kernel(word, k, r, t, table, gtail, log, exp, nfield, off, out, corrected):
    """Correct out[b] (a copy of word[b]) in place; corrected[b] = errors fixed or -1 (failure)."""
    n = k + r
    regs = np.empty(_W, dtype=np.uint64)
    synd = np.zeros(2 * t + 1, dtype=np.int32)  # synd[j] = S_j, j = 1 .. 2t
    lam = np.zeros(2 * t + 2, dtype=np.int32)
    bpoly = np.zeros(2 * t + 2, dtype=np.int32)
    tmp = np.zeros(2 * t + 2, dtype=np.int32)
    ngroups = (t + 3) // 4  # Chien: terms four at a time, padded with degree-0 terms on exp's last entry (0)
    zero = exp.size - 1
    tdeg = np.zeros(4 * ngroups, dtype=np.int64)  # degree and running exp index of each nonzero term
    tidx = np.zeros(4 * ngroups, dtype=np.int64)
    acc = np.empty(_CHIEN_BLOCK, dtype=np.int32)
    roots = np.zeros(t, dtype=np.int64)  # error powers p (bit index n - 1 - p)
    for b in range(word.shape[0]):
        row = word[b]
        r0, r1, r2 = _lfsr(row, k, table, gtail)
        regs[0] = r0
        regs[1] = r1
        regs[2] = r2
        for i in range(r):  # remainder of the whole word = LFSR state xor received parity
            if row[k + i]:
                regs[i >> 6] ^= _U1 << np.uint64(63 - (i & 63))
        if regs[0] == 0 and regs[1] == 0 and regs[2] == 0:
            corrected[b] = 0
            continue
        corrected[b] = -1
        # syndromes S_j = rem(alpha^j): odd j directly, even j by squaring
        synd[:] = 0
        for i in range(r):
            if (regs[i >> 6] >> np.uint64(63 - (i & 63))) & _U1:
                p = r - 1 - i
                for j in range(1, 2 * t, 2):
                    synd[j] ^= exp[(j * p) % nfield]
        for j in range(2, 2 * t + 1, 2):
            s = synd[j // 2]
            synd[j] = 0 if s == 0 else exp[2 * log[s]]
        # binary Berlekamp-Massey: the discrepancy vanishes at every other step
        lam[:] = 0
        bpoly[:] = 0
        lam[0] = 1
        bpoly[0] = 1
        ll = 0
        mm = 1
        bb = 1
        for step in range(2 * t):
            if step & 1:
                mm += 1
                continue
            d = synd[step + 1]
            for i in range(1, ll + 1):
                d ^= _gf_mul(lam[i], synd[step + 1 - i], log, exp)
            if d == 0:
                mm += 1
                continue
            coef = exp[log[d] - log[bb] + nfield]
            if 2 * ll <= step:
                tmp[:] = lam
                for i in range(2 * t + 2 - mm):
                    lam[i + mm] ^= _gf_mul(coef, bpoly[i], log, exp)
                ll = step + 1 - ll
                bpoly[:] = tmp
                bb = d
                mm = 1
            else:
                for i in range(2 * t + 2 - mm):
                    lam[i + mm] ^= _gf_mul(coef, bpoly[i], log, exp)
                mm += 1
        if ll == 0 or ll > t or lam[ll] == 0:
            continue
        # Chien search over the n valid powers p = 0 .. n-1: Lambda(alpha^-p) == 0
        tdeg[:] = 0
        tidx[:] = zero
        nterms = 0
        for i in range(1, ll + 1):
            if lam[i] != 0:
                tdeg[nterms] = i
                li = log[lam[i]]  # running index s = log of the term (mod N), kept in [off, off + N)
                tidx[nterms] = li + nfield if li < off else li
                nterms += 1
        nroots = 0
        for start in range(0, n, _CHIEN_BLOCK):
            cnt = min(_CHIEN_BLOCK, n - start)
            acc[:cnt] = 1
            for e in range(0, nterms, 4):
                d0, d1, d2, d3 = tdeg[e], tdeg[e + 1], tdeg[e + 2], tdeg[e + 3]
                s0, s1, s2, s3 = tidx[e], tidx[e + 1], tidx[e + 2], tidx[e + 3]
                for q in range(cnt):
                    acc[q] ^= exp[s0 - d0 * q] ^ exp[s1 - d1 * q] ^ exp[s2 - d2 * q] ^ exp[s3 - d3 * q]
                for j in range(e, e + 4):
                    s = tidx[j] - tdeg[j] * cnt
                    tidx[j] = s + nfield if s < off else s
            for q in range(cnt):
                if acc[q] == 0:
                    if nroots < t:
                        roots[nroots] = start + q
                    nroots += 1
            if nroots >= ll:
                break
        if nroots != ll:
            continue
        # the corrected word must have zero syndromes
        good = True
        for j in range(1, 2 * t, 2):
            s = 0
            for e in range(ll):
                s ^= exp[(j * roots[e]) % nfield]
            if s != synd[j]:
                good = False
                break
        if not good:
            continue
        orow = out[b]
        for e in range(ll):
            orow[n - 1 - roots[e]] ^= 1
        corrected[b] = ll


# ----------------------------------------------------------------------------------------------
# tables


def _poly_degree(p: int) -> int:
    return p.bit_length() - 1


def _clmul(a: int, b: int) -> int:
    """Product of two GF(2) polynomials held as Python ints (bit i = coefficient of x^i)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        b >>= 1
    return out


def _polymod(a: int, g: int) -> int:
    dg = _poly_degree(g)
    for s in range(_poly_degree(a) - dg, -1, -1):
        if (a >> (s + dg)) & 1:
            a ^= g << s
    return a


@cache
def _field(prim: int, m: int, off: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the GF(2^m) tables (log, exp).

    log has 2^m entries (log[0] unused); exp[i] = alpha^(i mod N) for i < max(2N, N + off), followed by
    one entry 0 that the Chien search's padding terms point to.
    """
    nf = (1 << m) - 1
    exp = np.zeros(max(2 * nf, nf + off) + 1, dtype=np.int32)
    log = np.zeros(nf + 1, dtype=np.int32)
    x = 1
    for i in range(nf):
        if x == 1 and i > 0:
            raise ValueError(f"polynomial 0x{prim:x} is not primitive over GF(2^{m})")
        exp[i] = x
        log[x] = i
        x <<= 1
        if x >> m:
            x ^= prim
    if x != 1:
        raise ValueError(f"polynomial 0x{prim:x} is not primitive over GF(2^{m})")
    reps = -(-exp.size // nf)
    exp[:-1] = np.tile(exp[:nf], reps)[: exp.size - 1]
    exp.setflags(write=False)
    log.setflags(write=False)
    return log, exp


def _left_aligned_words(value: int, r: int) -> list[int]:
    v = value << (64 * _W - r)
    return [(v >> (64 * (_W - 1 - w))) & 0xFFFFFFFFFFFFFFFF for w in range(_W)]


class BchCode:
    """Binary BCH code shortened to n bits (EN 302 307-1 §5.3.1).

    Parameters
    ----------
    n, k : int
        Codeword and message lengths in bits (n - k = deg g, between 8 and 192).
    polynomials : sequence of int
        Minimal polynomials of alpha, alpha^3, .., alpha^(2t-1) (bit i = coefficient of x^i); the first
        is the primitive polynomial of GF(2^m). t = len(polynomials).
    m : int
        Field degree.

    Attributes
    ----------
    n, k, t, m : int
    generator : ndarray of uint8, shape (n - k + 1,)
        Coefficients of g(x), highest power first.
    """

    def __init__(self, n: int, k: int, polynomials: Sequence[int], m: int):
        polys = [int(p) for p in polynomials]
        if not polys:
            raise ValueError("polynomials must hold at least one minimal polynomial")
        if _poly_degree(polys[0]) != m:
            raise ValueError(f"polynomials[0] must have degree m = {m}; got 0x{polys[0]:x}")
        self.n, self.k, self.t, self.m = int(n), int(k), len(polys), int(m)
        self.nfield = (1 << m) - 1
        r = self.n - self.k
        g = 1
        for p in polys:
            g = _clmul(g, p)
        if _poly_degree(g) != r:
            raise ValueError(f"n - k must equal deg g(x) = {_poly_degree(g)}; got n={n}, k={k}")
        if not 8 <= r <= 64 * _W:
            raise ValueError(f"n - k must be between 8 and {64 * _W}; got {r}")
        if not 0 < self.k < self.n <= self.nfield or self.t * _CHIEN_BLOCK > self.nfield:
            raise ValueError(f"n must be at most 2^m - 1 = {self.nfield} and k in 1 .. n-1; got n={n}, k={k}")
        self.generator = np.array([(g >> (r - i)) & 1 for i in range(r + 1)], dtype=np.uint8)
        self.generator.setflags(write=False)
        self._off = self.t * _CHIEN_BLOCK
        self._log, self._exp = _field(polys[0], self.m, self._off)
        for j in range(1, 2 * self.t + 1):  # the decoder relies on alpha^1 .. alpha^2t being roots of g
            v = 0
            for c in self.generator:
                v = (0 if v == 0 else int(self._exp[(int(self._log[v]) + j) % self.nfield])) ^ int(c)
            if v:
                raise ValueError(f"alpha^{j} is not a root of g(x): polynomials are not the minimal ones")
        self._table = np.array(
            [_left_aligned_words(_polymod(b << r, g), r) for b in range(256)], dtype=np.uint64
        )
        self._gtail = np.array(_left_aligned_words(g ^ (1 << r), r), dtype=np.uint64)

    def __repr__(self) -> str:
        return f"BchCode(n={self.n}, k={self.k}, t={self.t}, m={self.m})"

    def encode(self, msg) -> np.ndarray:
        """Systematic encoding.

        Parameters
        ----------
        msg : array_like of 0/1, shape (batch, k) or (k,)
            Message bits, first = highest power.

        Returns
        -------
        ndarray of uint8, shape (batch, n)
            Message followed by the n - k parity bits.
        """
        bits = check_bits(msg, "msg", self.k)
        out = np.empty((bits.shape[0], self.n), dtype=np.uint8)
        _encode_kernel(bits, self.k, self.n - self.k, self._table, self._gtail, out)
        return out

    def decode(self, word) -> BchResult:
        """Hard-decision decoding of up to t bit errors per frame.

        Parameters
        ----------
        word : array_like of 0/1, shape (batch, n) or (n,)
            Received bits.

        Returns
        -------
        BchResult
            Corrected frames; frames with a detected uncorrectable pattern come back unchanged with
            ``ok`` False and ``corrected`` -1.
        """
        bits = check_bits(word, "word", self.n)
        out = bits.copy()
        corrected = np.empty(bits.shape[0], dtype=np.int32)
        _decode_kernel(
            bits, self.k, self.n - self.k, self.t, self._table, self._gtail,
            self._log, self._exp, self.nfield, self._off, out, corrected,
        )
        return BchResult(message=out[:, : self.k], codeword=out, corrected=corrected, ok=corrected >= 0)


# ----------------------------------------------------------------------------------------------
# DVB-S2 parameters


@cache
def _params() -> tuple[dict, dict]:
    """Return (frame -> {rate: (n, k, t)}, frame -> (m, polynomials)) read from the package data."""
    text = resources.files("modem.dvbs2.data").joinpath("dvbs2_modcods.csv").read_text()
    codes: dict[str, dict[str, tuple[int, int, int]]] = {f: {} for f in FRAMES}
    for row in csv.DictReader(io.StringIO(text)):
        for frame in FRAMES:
            if row[f"kbch_{frame}"]:
                codes[frame][row["rate"]] = (
                    int(row[f"kldpc_{frame}"]), int(row[f"kbch_{frame}"]), int(row[f"bch_t_{frame}"])
                )
    data = json.loads(resources.files("modem.fec.data").joinpath("dvbs2_bch.json").read_text())
    polys = {}
    for frame in FRAMES:
        p = [int(h, 16) for h in data[frame]["polynomials_hex"]]
        polys[frame] = (_poly_degree(p[0]), p)
    return codes, polys


def dvbs2_rates(frame: str) -> tuple[str, ...]:
    """Return the code rates defined for a frame size ("normal" or "short")."""
    check_choice(frame, "frame", FRAMES)
    return tuple(_params()[0][frame])


@cache
def dvbs2_bch(frame: str, rate: str) -> BchCode:
    """Return the DVB-S2 outer BCH code (EN 302 307-1 §5.3.1, Tables 5a/5b, 6a/6b).

    Parameters
    ----------
    frame : {"normal", "short"}
        FECFRAME size (64800 or 16200 bits).
    rate : str
        LDPC code rate such as "1/2"; see :func:`dvbs2_rates` (short frames have no "9/10").

    Returns
    -------
    BchCode
        n = K_ldpc, k = K_bch, t = 12, 10 or 8 (normal) or 12 (short).
    """
    check_choice(frame, "frame", FRAMES)
    codes, polys = _params()
    check_choice(rate, f"rate (for {frame} frames)", codes[frame])
    n, k, t = codes[frame][rate]
    m, p = polys[frame]
    return BchCode(n, k, p[:t], m)
