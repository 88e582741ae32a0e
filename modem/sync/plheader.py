"""DVB-S2 PLHEADER detection on symbols with an unknown carrier (EN 302 307-1 §5.5.2).

The PLHEADER is 90 π/2-BPSK symbols: the 26-symbol SOF, then the 64-symbol PLS code (the
(32, 6) code of Figure 13b, each bit followed by itself XOR b7, scrambled). Two detectors:

* :func:`differential_metric`: works before the carrier is known (any frequency offset up to
  half the symbol rate). The products z_k = y_k conj(y_{k-1}) remove the carrier phase and turn
  the frequency offset into a constant rotation. They are correlated with what the header gives
  them: the 25 SOF products, and the 32 products within the PLS pairs (2m, 2m + 1), which only
  depend on the scrambler and on b7 (the pilots flag), not on the MODCOD. The metric is
  max over b7 of |D_sof + (-1)^b7 D_pls|^2 normalized by the window's energy (1.0 for a
  noiseless header, about 0.01 for noise); the angle of the winning sum is 2 pi f, f the
  frequency offset in cycles per symbol.
* :meth:`HeaderDetector.glrt`: the coherent generalized likelihood ratio test over the 128 PLS
  words and a grid of frequency offsets (unknown phase): metric |sum_k y_k conj(h_k)
  exp(-j 2 pi f k)|^2 / (90 sum_k |y_k|^2) in 0..1. For each frequency the 128 PLS
  correlations come from one 32-point fast Hadamard transform per value of b7: the rows of the
  (32, 6) generator are the Walsh functions of the symbol index plus the all-ones row.

Both are numba kernels over complex64 symbols.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numba as nb
import numpy as np

from modem.dvbs2.modcod import FRAMES, frame_spec
from modem.dvbs2.plframe import PLHEADER_LENGTH, PLS_SCRAMBLER, SOF_BITS, _pi2_reference, pi2_bpsk

SOF_LENGTH = 26


@lru_cache(maxsize=1)
def _tables() -> dict:
    sof = pi2_bpsk(SOF_BITS).astype(np.complex128)
    ref = _pi2_reference(PLHEADER_LENGTH)
    sof_diff = sof[1:] * np.conj(sof[:-1])  # 25
    # PLS pair products for b7 = 0: ref[27+2m] conj(ref[26+2m]) (-1)^(scr[2m] ^ scr[2m+1])
    scr = PLS_SCRAMBLER.astype(np.int64)
    pair = ref[27::2] * np.conj(ref[26::2]) * (1 - 2 * (scr[0::2] ^ scr[1::2]))
    # PLS de-mapping: v_k = y_{26+k} conj(ref_{26+k}) (1 - 2 scr_k) is (1-2 y_m)(1-2 b7 [k odd])
    pls_conj = np.conj(ref[SOF_LENGTH:]) * (1 - 2 * scr)
    valid = np.array([_word_possible(w) for w in range(128)])
    t = {
        "sof_conj": np.conj(sof),
        "sof_diff_conj": np.conj(sof_diff),
        "pair_conj": np.conj(pair),
        "pls_conj": pls_conj,
        "valid": valid,
        "bitrev5": np.array([int(f"{b:05b}"[::-1], 2) for b in range(32)], dtype=np.int64),
    }
    for v in t.values():
        v.setflags(write=False)
    return t


def _word_possible(w: int) -> bool:
    mc, frame, pilots = w >> 2, FRAMES[(w >> 1) & 1], bool(w & 1)
    if mc == 0:
        return True
    if mc > 28:
        return False
    try:
        frame_spec(mc, frame, pilots)
    except ValueError:
        return False
    return True


def word_valid(w: int) -> bool:
    """True if PLS word w (MODCOD << 2 | short << 1 | pilots) can start a PLFRAME."""
    return bool(_tables()["valid"][w])


#: Body positions (after the PLHEADER) of the first two pilot blocks, present in every PLFRAME with
#: pilots (S >= 36 slots, so int((S - 1) / 16) >= 2) and, with the same values, in a dummy PLFRAME.
PILOT_OFFSETS = (PLHEADER_LENGTH + 16 * 90, PLHEADER_LENGTH + 2 * 16 * 90 + 36)
PILOT_BLOCK = 36
#: Symbols from a header's first symbol to the end of its second pilot block: the span of the
#: differential detector's window.
DIFF_SPAN = PILOT_OFFSETS[1] + PILOT_BLOCK
_SCAN_BLOCK = 512  # positions per pass of the scan kernel


@lru_cache(maxsize=16)
def _diff_taps(gold_code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Taps of the differential correlator: offsets, conjugated coefficients, group bounds.

    Offsets index z, z[k] = y[k+1] conj(y[k]); the three groups are S (SOF), Q (PLS pairs,
    b7 = 0) and P (two pilot blocks).
    """
    from modem.dvbs2.plframe import PILOT_SYMBOL, scrambling_sequence

    t = _tables()
    off_s = np.arange(SOF_LENGTH - 1)  # products (i+1, i)
    off_q = SOF_LENGTH + 2 * np.arange(32)  # products (27+2m, 26+2m)
    c = scrambling_sequence(gold_code).astype(np.complex128)
    offs_p, coef_p = [], []
    for start in PILOT_OFFSETS:
        body = np.arange(start, start + PILOT_BLOCK) - PLHEADER_LENGTH
        pil = PILOT_SYMBOL * c[body]
        offs_p.append(np.arange(start, start + PILOT_BLOCK - 1))
        coef_p.append(np.conj(pil[1:] * np.conj(pil[:-1])))
    off = np.concatenate([off_s, off_q, *offs_p]).astype(np.int64)
    coef = np.concatenate([t["sof_diff_conj"], t["pair_conj"], *coef_p])
    bounds = np.array([0, off_s.size, off_s.size + off_q.size, off.size], dtype=np.int64)
    both = np.stack([coef.real, coef.imag]).astype(np.float32)
    for a in (off, both, bounds):
        a.setflags(write=False)
    return off, both, bounds


@nb.njit(cache=True, nogil=True)
def _diff_scan(y, off, coef, bounds, met_h, met_p, sums):  # pragma: no cover - compiled
    """Header-only and pilot-aided differential metrics at positions 0 .. len(met_h) - 1.

    y holds at least len(met_h) + DIFF_SPAN - 1 symbols. sums[p] = (S, Q, P) complex sums.
    """
    n_out = met_h.size
    nz = n_out + DIFF_SPAN - 1
    zr = np.empty(nz, np.float32)
    zi = np.empty(nz, np.float32)
    ecum = np.empty(nz + 1, np.float64)  # ecum[k] = sum_{i<k} |y_i|^2
    ecum[0] = 0.0
    for k in range(nz):
        v = y[k]
        ecum[k + 1] = ecum[k] + v.real * v.real + v.imag * v.imag
    for k in range(nz - 1):
        a = y[k + 1]
        b = y[k]
        zr[k] = a.real * b.real + a.imag * b.imag
        zi[k] = a.imag * b.real - a.real * b.imag
    acc = np.empty((3, 2, _SCAN_BLOCK), np.float32)
    nh = SOF_LENGTH - 1 + 32
    n_p = off.size - nh
    for b0 in range(0, n_out, _SCAN_BLOCK):
        nb_ = min(_SCAN_BLOCK, n_out - b0)
        for g in range(3):
            ar = acc[g, 0]
            ai = acc[g, 1]
            for j in range(nb_):
                ar[j] = 0.0
                ai[j] = 0.0
            for t in range(bounds[g], bounds[g + 1]):
                o = off[t] + b0
                cr = coef[0, t]
                ci = coef[1, t]
                xr = zr[o : o + nb_]
                xi = zi[o : o + nb_]
                for j in range(nb_):
                    ar[j] += xr[j] * cr - xi[j] * ci
                    ai[j] += xr[j] * ci + xi[j] * cr
        for j in range(nb_):
            p = b0 + j
            sr = acc[0, 0, j]
            si = acc[0, 1, j]
            qr = acc[1, 0, j]
            qi = acc[1, 1, j]
            pr = acc[2, 0, j]
            pi_ = acc[2, 1, j]
            sums[p, 0] = complex(sr, si)
            sums[p, 1] = complex(qr, qi)
            sums[p, 2] = complex(pr, pi_)
            eh = (ecum[p + PLHEADER_LENGTH] - ecum[p]) / PLHEADER_LENGTH
            h0 = (sr + qr) ** 2 + (si + qi) ** 2
            h1 = (sr - qr) ** 2 + (si - qi) ** 2
            den = (nh * eh) ** 2
            met_h[p] = max(h0, h1) / den if den > 0 else 0.0
            ep = ecum[p + PLHEADER_LENGTH] - ecum[p]
            ep += ecum[p + PILOT_OFFSETS[0] + PILOT_BLOCK] - ecum[p + PILOT_OFFSETS[0]]
            ep += ecum[p + PILOT_OFFSETS[1] + PILOT_BLOCK] - ecum[p + PILOT_OFFSETS[1]]
            ep /= PLHEADER_LENGTH + 2 * PILOT_BLOCK
            g0 = (sr + qr + pr) ** 2 + (si + qi + pi_) ** 2
            g1 = (sr - qr + pr) ** 2 + (si - qi + pi_) ** 2
            den = ((nh + n_p) * ep) ** 2
            met_p[p] = max(g0, g1) / den if den > 0 else 0.0


class DifferentialDetector:
    """Carrier-independent PLHEADER search over a symbol stream (see module doc).

    Two metrics per start position p, both ~1.0 for a noiseless PLFRAME start:

    * ``header``: the 57 differential products of the PLHEADER (SOF and PLS pairs), max over b7;
    * ``pilots``: the same plus the 70 products inside the first two pilot blocks (at body
      positions 1440 and 2916, the same values in a dummy PLFRAME), for frames with pilots. It
      needs :data:`DIFF_SPAN` symbols from p.

    Parameters
    ----------
    gold_code : int
        PL scrambling code number (the pilots are scrambled).
    """

    def __init__(self, gold_code: int = 0):
        self.gold_code = int(gold_code)
        self._off, self._coef, self._bounds = _diff_taps(self.gold_code)

    def scan(self, symbols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Metrics at every position p with a whole window, p = 0 .. N - DIFF_SPAN.

        Parameters
        ----------
        symbols : ndarray of complex64, shape (N,)

        Returns
        -------
        header, pilots : ndarray of float32, shape (max(N - DIFF_SPAN + 1, 0),)
        sums : ndarray of complex64, shape (same, 3)
            The partial correlations (SOF, PLS pairs for b7 = 0, pilot blocks) at each position.
        """
        y = np.ascontiguousarray(symbols, dtype=np.complex64)
        n_out = max(y.size - DIFF_SPAN + 1, 0)
        met_h = np.empty(n_out, np.float32)
        met_p = np.empty(n_out, np.float32)
        sums = np.empty((n_out, 3), np.complex64)
        if n_out:
            _diff_scan(y, self._off, self._coef, self._bounds, met_h, met_p, sums)
        return met_h, met_p, sums

    @staticmethod
    def frequency(sums: np.ndarray, pilots: bool) -> float:
        """Frequency offset (cycles per symbol) from one position's partial sums.

        ``pilots``: use the pilot blocks too (the hypothesis that won the pilot metric).
        """
        s, q, p = (complex(v) for v in sums)
        extra = p if pilots else 0.0
        a, b = s + q + extra, s - q + extra
        d = a if abs(a) >= abs(b) else b
        return float(np.angle(d) / (2 * np.pi))


@nb.njit(cache=True, nogil=True)
def _fht32(re, im):  # pragma: no cover - compiled
    h = 1
    while h < 32:
        for i in range(0, 32, 2 * h):
            for j in range(i, i + h):
                a = re[j]
                b = re[j + h]
                re[j] = a + b
                re[j + h] = a - b
                a = im[j]
                b = im[j + h]
                im[j] = a + b
                im[j + h] = a - b
        h *= 2


@nb.njit(cache=True, nogil=True)
def _glrt_kernel(y, freqs, sof_c, pls_c, valid, bitrev, out_metric, out_word, out_corr):  # pragma: no cover
    """Best valid PLS word and its normalized metric for each frequency in freqs (cycles/symbol).

    y: 90 complex symbols. out_corr[i] is the complex correlation of the winner at freqs[i].
    """
    n = PLHEADER_LENGTH
    energy = 0.0
    for k in range(n):
        energy += y[k].real * y[k].real + y[k].imag * y[k].imag
    den = n * energy
    ur = np.empty(n)
    ui = np.empty(n)
    are = np.empty(32)
    aim = np.empty(32)
    bre = np.empty(32)
    bim = np.empty(32)
    centre = 0.5 * (n - 1)
    for fi in range(freqs.size):
        w = -2.0 * np.pi * freqs[fi]
        # u_k = y_k exp(-j 2 pi f (k - centre)): phasor recursion from an exact start
        cr = np.cos(w * (0 - centre))
        ci = np.sin(w * (0 - centre))
        sr_ = np.cos(w)
        si_ = np.sin(w)
        for k in range(n):
            yr = y[k].real
            yi = y[k].imag
            ur[k] = yr * cr - yi * ci
            ui[k] = yr * ci + yi * cr
            t = cr * sr_ - ci * si_
            ci = cr * si_ + ci * sr_
            cr = t
        s_re = 0.0
        s_im = 0.0
        for k in range(SOF_LENGTH):
            s_re += ur[k] * sof_c[k].real - ui[k] * sof_c[k].imag
            s_im += ur[k] * sof_c[k].imag + ui[k] * sof_c[k].real
        best = -1.0
        bw = 0
        bc_re = 0.0
        bc_im = 0.0
        for m in range(32):  # v_k, then pair sums for b7 = 0 (a) and b7 = 1 (b)
            k0 = SOF_LENGTH + 2 * m
            c0 = pls_c[2 * m]
            c1 = pls_c[2 * m + 1]
            v0r = ur[k0] * c0.real - ui[k0] * c0.imag
            v0i = ur[k0] * c0.imag + ui[k0] * c0.real
            v1r = ur[k0 + 1] * c1.real - ui[k0 + 1] * c1.imag
            v1i = ur[k0 + 1] * c1.imag + ui[k0 + 1] * c1.real
            are[m] = v0r + v1r
            aim[m] = v0i + v1i
            bre[m] = v0r - v1r
            bim[m] = v0i - v1i
        _fht32(are, aim)
        _fht32(bre, bim)
        for b7 in range(2):
            for wb in range(32):
                if b7 == 0:
                    cr0 = are[wb]
                    ci0 = aim[wb]
                else:
                    cr0 = bre[wb]
                    ci0 = bim[wb]
                mc = bitrev[wb]
                for b6 in range(2):
                    sgn = 1.0 - 2.0 * b6
                    word = (mc << 2) | (b6 << 1) | b7
                    if not valid[word]:
                        continue
                    tr = s_re + sgn * cr0
                    ti = s_im + sgn * ci0
                    pw = tr * tr + ti * ti
                    if pw > best:
                        best = pw
                        bw = word
                        bc_re = tr
                        bc_im = ti
        out_metric[fi] = best / den if den > 0 else 0.0
        out_word[fi] = bw
        out_corr[fi] = complex(bc_re, bc_im)


class HeaderMatch(NamedTuple):
    """Result of :meth:`HeaderDetector.glrt`."""

    word: int  #: PLS word, MODCOD << 2 | short << 1 | pilots
    metric: float  #: normalized |correlation|^2, 0..1 (1.0: noiseless header)
    freq: float  #: frequency offset estimate, cycles per symbol
    phase: float  #: carrier phase at the header's centre (symbol 44.5), rad
    amplitude: float  #: |correlation| / 90: the header's amplitude estimate

    @property
    def modcod(self) -> int:
        """MODCOD field, 0 (dummy) .. 28."""
        return self.word >> 2

    @property
    def frame(self) -> str:
        """"normal" or "short"."""
        return FRAMES[(self.word >> 1) & 1]

    @property
    def pilots(self) -> bool:
        """Pilots flag."""
        return bool(self.word & 1)


class HeaderDetector:
    """Coherent PLHEADER test over the 128 PLS words and a frequency grid (GLRT, unknown phase).

    Only words that can start a PLFRAME are considered (no reserved MODCOD, no short 9/10).
    """

    def __init__(self):
        t = _tables()
        self._sof_c = t["sof_conj"]
        self._pls_c = t["pls_conj"]
        self._valid = t["valid"]
        self._bitrev = t["bitrev5"]
        self._refs = np.stack([self.reference(w) for w in range(128)])

    @staticmethod
    def reference(word: int) -> np.ndarray:
        """The 90 PLHEADER symbols of PLS word ``word`` (complex128)."""
        bits = np.concatenate([SOF_BITS, _pls_bits(word)])
        return pi2_bpsk(bits).astype(np.complex128)

    def grid(self, y: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frequency: best metric, word and complex correlation (arrays of len(freqs))."""
        freqs = np.ascontiguousarray(freqs, dtype=np.float64)
        m = np.empty(freqs.size)
        w = np.empty(freqs.size, np.int64)
        c = np.empty(freqs.size, np.complex128)
        _glrt_kernel(np.ascontiguousarray(y, np.complex64), freqs, self._sof_c, self._pls_c, self._valid,
                     self._bitrev, m, w, c)  # fmt: skip
        return m, w, c

    def glrt(self, y, freqs) -> HeaderMatch:
        """Best (word, frequency) for a 90-symbol window, refined between grid points.

        Parameters
        ----------
        y : ndarray of complex, shape (90,)
            Symbols of the candidate header.
        freqs : ndarray of float, shape (F,)
            Frequency grid to test, cycles per symbol, evenly spaced (or a single value).

        Returns
        -------
        HeaderMatch
        """
        y = np.ascontiguousarray(y, dtype=np.complex64)
        if y.shape != (PLHEADER_LENGTH,):
            raise ValueError(f"y must have shape ({PLHEADER_LENGTH},); got {y.shape}")
        freqs = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
        m, w, c = self.grid(y, freqs)
        i = int(np.argmax(m))
        word = int(w[i])
        f = float(freqs[i])
        if freqs.size > 1:  # parabolic refinement of |corr|^2 for the winning word
            step = float(freqs[1] - freqs[0])
            f = self._refine(y, word, f, step)
        corr = self.correlate(y, word, f)
        energy = float(np.sum(np.abs(y.astype(np.complex128)) ** 2))
        metric = abs(corr) ** 2 / (PLHEADER_LENGTH * energy) if energy > 0 else 0.0
        return HeaderMatch(word, float(metric), f, float(np.angle(corr)), abs(corr) / PLHEADER_LENGTH)

    def correlate(self, y: np.ndarray, word: int, freq: float) -> complex:
        """sum_k y_k conj(h_k) exp(-j 2 pi f (k - 44.5)) for PLS word ``word``."""
        k = np.arange(PLHEADER_LENGTH) - 0.5 * (PLHEADER_LENGTH - 1)
        d = y.astype(np.complex128) * np.conj(self._refs[word])
        return complex(np.sum(d * np.exp(-2j * np.pi * freq * k)))

    def _refine(self, y: np.ndarray, word: int, f: float, step: float) -> float:
        for _ in range(2):
            p = [abs(self.correlate(y, word, f + d)) ** 2 for d in (-step, 0.0, step)]
            den = p[0] - 2 * p[1] + p[2]
            if den < 0:
                f += step * float(np.clip(0.5 * (p[0] - p[2]) / den, -1.0, 1.0))
            step *= 0.25
        return f


def _pls_bits(word: int) -> np.ndarray:
    from modem.dvbs2.plframe import _pls_table

    return _pls_table()[word]
