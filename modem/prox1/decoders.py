"""Symbol-stream decoders of the Proximity-1 receiver: soft BPSK symbols in, bitstream out.

One streaming class per coding, all with the same interface: ``chunk = dec(symbols)`` takes
carrier- and timing-corrected symbols (complex, one per channel symbol, with the BPSK phase
ambiguity still in them) and returns a :class:`DecodedChunk`: the bitstream bits decided so
far (uint8, in order, possibly still complemented for uncoded and convolutional coding: the
ASM search resolves that) and signal-quality records for them. ``dec.lost`` turns True when
the decoder has lost its synchronization for long enough that the receiver should search for
the carrier again.

- :class:`UncodedDecoder`: hard decisions.
- :class:`ConvDecoder`: node synchronization (which symbol of each pair is C1: both
  alignments are Viterbi-decoded over 2048 symbols, re-encoded, and the one whose re-encoded
  symbols agree best with the hard decisions wins) and streaming soft Viterbi decoding
  (:class:`~modem.fec.conv.ViterbiStream`); the agreement is watched on every block, and a
  symbol slip (agreement lost) restarts node synchronization.
- :class:`LdpcStreamDecoder`: CSM search (correlation of the soft symbols with the 64-bit
  marker over three codeblock periods), a flywheel on the codeblock period that checks each
  CSM, resolves the phase ambiguity from the sign of its correlation, scales the LLRs from
  the codeblock's own signal and noise estimates, derandomizes and decodes in batches with
  :class:`~modem.fec.ldpc_decoder.LdpcDecoder`.

Signal quality: each record gives the data-aided Es/N0 of a span of the bitstream, from the
symbols and their re-encoded decisions (a = mean(Re(y) s), N = mean(|y - a s|^2), Es/N0 =
a^2 / N); the receiver averages them over a frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from modem.fec.conv import Fifo, ViterbiDecoder, ViterbiStream, _output_table
from modem.fec.ldpc_decoder import LdpcDecoder
from modem.prox1.coding import (
    CSM_BITS,
    CSM_LENGTH,
    LDPC_BLOCK_SYMBOLS,
    LDPC_K,
    LDPC_N,
    ldpc_code,
    ldpc_randomizer,
)


@dataclass
class QualityRecord:
    """Data-aided signal quality over bitstream bits [bit_start, bit_end).

    Attributes
    ----------
    bit_start, bit_end : int
        Bitstream indices (since the decoder's start).
    signal, noise : float
        Sum of a^2 (per symbol) and of |y - a s|^2 over the span's symbols.
    symbols : int
        Symbols in the span.
    frequency : float
        Sum over the span's symbols of the demodulator's carrier frequency, cycles per sample.
    """

    bit_start: int
    bit_end: int
    signal: float
    noise: float
    symbols: int
    frequency: float = 0.0

    @property
    def esn0_db(self) -> float:
        """Es/N0 estimate of the span, dB."""
        if self.noise <= 0:
            return math.inf
        return 10 * math.log10(max(self.signal, 1e-300) / self.noise)


@dataclass
class DecodedChunk:
    """Output of a decoder call.

    Attributes
    ----------
    bits : ndarray of uint8
        Bitstream bits decided in this call, continuing the previous ones.
    quality : list of QualityRecord
    """

    bits: np.ndarray
    quality: list[QualityRecord] = field(default_factory=list)


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _sums_kernel(y, ref, f, block, out):
    """Per block of ``block`` symbols: out[b] = (sum Re(y) s, sum |y|^2, sum f, count).

    The sums may be reassociated (vectorized); each depends only on its block's values.
    """
    n = y.shape[0]
    for b in range(out.shape[0]):
        lo = b * block
        hi = min(lo + block, n)
        s1 = 0.0
        s2 = 0.0
        sf = 0.0
        for i in range(lo, hi):
            v = y[i]
            s1 += np.float64(v.real) * ref[i]
            s2 += np.float64(v.real) * v.real + np.float64(v.imag) * v.imag
            sf += f[i]
        out[b, 0] = s1
        out[b, 1] = s2
        out[b, 2] = sf
        out[b, 3] = hi - lo


@nb.njit(cache=True, nogil=True)
def _reencode_kernel(y, bits, state, table, ref):
    """Re-encode bits from encoder ``state`` into reference symbols ref (+-1, two per bit).

    Returns the number of symbols whose hard decision disagrees.
    """
    s = np.int64(state)
    bad = 0
    for i in range(bits.shape[0]):
        reg = (np.int64(bits[i]) << 6) | s
        c1 = table[reg, 0]
        c2 = table[reg, 1]
        ref[2 * i] = 1.0 - 2.0 * c1
        ref[2 * i + 1] = 1.0 - 2.0 * c2
        if (y[2 * i].real < 0) != (c1 == 1):
            bad += 1
        if (y[2 * i + 1].real < 0) != (c2 == 1):
            bad += 1
        s = reg >> 1
    return bad


@nb.njit(cache=True, nogil=True)
def _reencode_sums_kernel(y, f, bits, state, table, block, out):
    """Re-encode bits (from encoder ``state``) and sum per block of ``block`` bits.

    out[b] = (hard-decision disagreements, sum Re(y) s, sum |y|^2, sum f, symbols); s = 1 - 2 c.
    The re-encoding needs no serial state: the register of bit i is bits i-6 .. i (the six
    before the first from ``state``), so each code symbol is an XOR of the generator taps
    (G1 = 171: register bits 6 5 4 3 0, G2 = 133: 6 4 3 1 0; G2 inverted when table says so).
    The sums come in a separate vectorized pass.
    """
    nbits = bits.shape[0]
    ext = np.empty(nbits + 6, dtype=np.uint8)  # ext[i + k] = register bit k of bit i
    for j in range(6):
        ext[j] = (state >> j) & 1
    ext[6:] = bits
    inv = table[0, 1]
    ref = np.empty(2 * nbits, dtype=np.float32)
    for i in range(nbits):
        t = ext[i] ^ ext[i + 3] ^ ext[i + 4] ^ ext[i + 6]
        ref[2 * i] = np.float32(1 - 2 * np.int32(t ^ ext[i + 5]))
        ref[2 * i + 1] = np.float32(1 - 2 * np.int32(t ^ ext[i + 1] ^ inv))
    yv = y.view(np.float32)  # (Re, Im) pairs
    for b in range(out.shape[0]):
        lo = 2 * b * block
        hi = min(lo + 2 * block, 2 * nbits)
        bad, s1, s2, sf = _symbol_sums(yv, f, ref, lo, hi)
        out[b, 0] = bad
        out[b, 1] = s1
        out[b, 2] = s2
        out[b, 3] = sf
        out[b, 4] = hi - lo


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _symbol_sums(yv, f, ref, lo, hi):
    """Sums over symbols lo .. hi-1 (reassociated, vectorized: they depend only on the values).

    yv: the symbols as float32 (Re, Im) pairs. Returns (hard decisions of Re(y) that disagree
    with ref (+-1), sum Re(y) ref, sum |y|^2, sum f).
    """
    bad = 0
    s1 = 0.0
    s2 = 0.0
    sf = 0.0
    for j in range(lo, hi):
        re = np.float64(yv[2 * j])
        im = np.float64(yv[2 * j + 1])
        r = ref[j]
        bad += np.int64((re < 0.0) != (r < 0.0))
        s1 += re * r
        s2 += re * re + im * im
        sf += f[j]
    return bad, s1, s2, sf


def _records(y, ref, f, block_symbols: int, bits_per_block: int, bit_start: int, total_bits: int) -> list:
    """QualityRecords of consecutive blocks (data-aided: a = mean Re(y) s, noise = sum|y|^2 - N a^2)."""
    nb_ = -(-y.size // block_symbols) if y.size else 0
    sums = np.empty((nb_, 4))
    _sums_kernel(y, ref, f, block_symbols, sums)
    out = []
    for b, (s1, s2, sf, cnt) in enumerate(sums.tolist()):
        a = s1 / cnt
        lo = bit_start + b * bits_per_block
        hi = min(lo + bits_per_block, bit_start + total_bits)
        out.append(QualityRecord(lo, hi, a * a * cnt, max(s2 - cnt * a * a, 0.0), int(cnt), sf))
    return out


def _as_inputs(symbols, freqs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(symbols, dtype=np.complex64)
    if y.ndim != 1:
        raise ValueError(f"symbols must be 1-D; got shape {y.shape}")
    if freqs is None:
        return y, np.zeros(y.size, dtype=np.float32)
    f = np.asarray(freqs, dtype=np.float32)
    if f.shape != y.shape:
        raise ValueError(f"freqs must have the shape of symbols {y.shape}; got {f.shape}")
    return y, f


class UncodedDecoder:
    """Hard decisions on uncoded BPSK symbols (bit = 1 where Re < 0).

    In blocks of :attr:`RECORD` symbols (one quality record each, at fixed stream positions).
    """

    #: symbols per block and quality record
    RECORD = 1024

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Restart the bit count."""
        self._bits = 0
        self._y = np.zeros(0, dtype=np.complex64)
        self._f = np.zeros(0, dtype=np.float32)
        self._reserved = None
        self.sync_failures = 0
        self.lost = False

    def reserve(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Room for the next n symbols and frequencies (complex64, float32), written in place.

        Then :meth:`push_reserved` with the count written.
        """
        self._reserved = (np.empty(n, dtype=np.complex64), np.empty(n, dtype=np.float32))
        return self._reserved

    def push_reserved(self, count: int) -> DecodedChunk:
        """Decide the first ``count`` symbols written into the views of :meth:`reserve`."""
        y, f = self._reserved
        self._reserved = None
        return self(y[:count], f[:count])

    def __call__(self, symbols, freqs=None) -> DecodedChunk:
        """Decide a chunk of symbols (see the module notes); freqs: carrier frequency per symbol."""
        y, f = _as_inputs(symbols, freqs)
        y = np.concatenate([self._y, y])
        f = np.concatenate([self._f, f])
        n = y.size // self.RECORD * self.RECORD
        self._y, self._f = y[n:].copy(), f[n:].copy()
        y, f = y[:n], f[:n]
        bits = (y.real < 0).astype(np.uint8)
        ref = 1.0 - 2.0 * bits.astype(np.float64)
        quality = _records(y, ref, f, self.RECORD, self.RECORD, self._bits, n)
        self._bits += n
        return DecodedChunk(bits, quality)


class _SymbolStream:
    """Buffered symbols and carrier frequencies of a streaming decoder.

    The subclass sets ``_symq`` and ``_frqq`` (:class:`Fifo`) and ``_sym_base``, and decodes in
    ``_run``.
    """

    def _drop(self, n: int) -> None:
        self._symq.drop(n)
        self._frqq.drop(n)
        self._sym_base += n

    @property
    def _sym(self) -> np.ndarray:
        return self._symq.data

    @property
    def _frq(self) -> np.ndarray:
        return self._frqq.data

    def __call__(self, symbols, freqs=None) -> DecodedChunk:
        """Decode a chunk of symbols (see the module notes); freqs: carrier frequency per symbol."""
        y, f = _as_inputs(symbols, freqs)
        self._symq.append(y)
        self._frqq.append(f)
        return self._run()

    def reserve(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Room for the next n symbols and frequencies (complex64, float32), written in place.

        Then :meth:`push_reserved` with the count written.
        """
        return self._symq.reserve(n), self._frqq.reserve(n)

    def push_reserved(self, count: int) -> DecodedChunk:
        """Decode the first ``count`` symbols written into the views of :meth:`reserve`."""
        self._symq.commit(count)
        self._frqq.commit(count)
        return self._run()

    def _run(self) -> DecodedChunk:
        raise NotImplementedError


class ConvDecoder(_SymbolStream):
    """Node synchronization and streaming soft Viterbi decoding of the CCSDS K=7 rate-1/2 code.

    Parameters
    ----------
    sync_symbols : int
        Symbols used to decide the pair alignment, even, 256 .. 65536.
    max_disagreement : float
        Largest fraction of hard symbols that may disagree with the re-encoded decisions for
        an alignment to be accepted or kept, (0, 0.5). The channel alone gives 7.9 % at
        Es/N0 = 0 dB (measured on 2048 symbols: at most 9.5 %; at -1 dB at most 11.8 %), while
        noise alone, or a wrong alignment, decodes to a nearest code sequence about 16.5 %
        away (at least 16.1 %): hence 13 %.
    lost_after : int
        Consecutive failed node-sync attempts after which :attr:`lost` is set, >= 1.
    min_batch : int
        Viterbi blocks (4096 bits) to collect before decoding them together, 1 .. 32: more uses
        the decoder's SIMD lanes better, at the cost of latency.

    Attributes
    ----------
    alignment : int or None
        0 or 1 once synchronized: the symbol index parity of C1.
    resyncs : int
        Node synchronizations made (the first one included).
    sync_failures : int
        Node synchronization attempts that found no alignment.
    """

    def __init__(
        self,
        sync_symbols: int = 2048,
        max_disagreement: float = 0.13,
        lost_after: int = 12,
        min_batch: int = 1,
    ):
        if sync_symbols % 2 or not 256 <= sync_symbols <= 65536:
            raise ValueError(f"sync_symbols must be even, in 256..65536; got {sync_symbols!r}")
        if not 0 < max_disagreement < 0.5:
            raise ValueError(f"max_disagreement must be in (0, 0.5); got {max_disagreement!r}")
        self.sync_symbols = int(sync_symbols)
        self.max_disagreement = float(max_disagreement)
        self.lost_after = int(lost_after)
        self.min_batch = int(min_batch)
        self._block = ViterbiDecoder()
        self._table = _output_table(True)
        self.reset()

    def reset(self) -> None:
        """Forget the alignment and all buffered symbols."""
        # symbols from self._sym_base on, and their carrier frequencies (views of them are used
        # within a call only)
        self._symq = Fifo(np.complex64, stable_views=False)
        self._frqq = Fifo(np.float32, stable_views=False)
        self._sym_base = 0  # symbol index (since reset) of self._sym[0]
        self._start = 0  # symbol index where the current Viterbi stream starts
        self._bits = 0  # bits output so far
        self._stream_bits = 0  # bits output by the current Viterbi stream
        self._viterbi: ViterbiStream | None = None
        self._enc_state = 0
        self.alignment = None
        self.resyncs = 0
        self._fails = 0
        self.sync_failures = 0
        self.lost = False

    def _disagreement(self, y: np.ndarray, bits: np.ndarray, state: int) -> tuple[float, np.ndarray]:
        ref = np.empty(2 * bits.size, dtype=np.float64)
        bad = _reencode_kernel(y, bits, state, self._table, ref)
        return bad / max(1, ref.size), ref

    def _try_sync(self) -> bool:
        """Decide the alignment from the buffered symbols; True when synchronized."""
        n = self.sync_symbols
        if self._sym.size < n + 1:
            return False
        best = None
        for a in (0, 1):
            y = self._sym[a : a + n]
            bits = self._block.decode(y.real.astype(np.float32), start_known=False)
            d, _ = self._disagreement(y[12:], bits[6:], _state_of(bits[:6]))
            if best is None or d < best[0]:
                best = (d, a)
        d, a = best
        if d > self.max_disagreement:
            # no alignment fits: drop the oldest half and try again later
            self._fails += 1
            self.sync_failures += 1
            if self._fails >= self.lost_after:
                self.lost = True
            # try again on newer symbols: half a window on, or straight to the newest window
            self._drop(max(n // 2, self._sym.size - n - 1))
            return False
        self._fails = 0
        self.alignment = (self._sym_base + a) % 2
        self._start = self._sym_base + a
        self._viterbi = ViterbiStream(start_known=False, min_batch=self.min_batch)
        self._stream_bits = 0
        self._enc_state = 0
        self.resyncs += 1
        return True

    def _run(self) -> DecodedChunk:
        out_bits: list[np.ndarray] = []
        quality: list[QualityRecord] = []
        while True:
            if self._viterbi is None:
                if not self._try_sync():
                    if self._sym.size >= self.sync_symbols + 1 and not self.lost:
                        continue  # another window is already here
                    break
            # feed the symbols not yet given to the Viterbi stream
            fed = self._start + 2 * self._viterbi.pending_steps + 2 * self._stream_bits
            lo = fed - self._sym_base
            seg = self._sym[lo : lo + ((self._sym.size - lo) // 2) * 2]
            bits = self._viterbi.push_trusted(seg.real)
            if bits.size == 0:
                break
            # symbols of these bits: the quality check and the Es/N0, per stream block (one pass)
            s0 = self._start + 2 * self._stream_bits - self._sym_base
            ys = self._sym[s0 : s0 + 2 * bits.size]
            fs = self._frq[s0 : s0 + 2 * bits.size]
            blk = self._viterbi.block
            sums = np.empty((-(-bits.size // blk), 5))
            _reencode_sums_kernel(ys, fs, bits, self._enc_state, self._table, blk, sums)
            d = sums[:, 0].sum() / max(1, 2 * bits.size)
            self._enc_state = _state_after(self._enc_state, bits)
            self._stream_bits += bits.size
            if d > self.max_disagreement:
                # alignment lost (symbol slip): resynchronize from the symbols after this block
                self._viterbi = None
                self.alignment = None
                self._drop(s0 + 2 * bits.size)
                continue
            out_bits.append(bits)
            for k, (_, s1, s2, sf, cnt) in enumerate(sums.tolist()):
                a = s1 / cnt
                lo = self._bits + k * blk
                quality.append(QualityRecord(lo, min(lo + blk, self._bits + bits.size), a * a * cnt,
                                             max(s2 - cnt * a * a, 0.0), int(cnt), sf))  # fmt: skip
            self._bits += bits.size
            # drop symbols whose bits are out (the Viterbi stream keeps its own copy)
            keep_from = self._start + 2 * self._stream_bits - self._sym_base
            if keep_from > 0:
                self._drop(keep_from)
        bits = np.concatenate(out_bits) if out_bits else np.zeros(0, dtype=np.uint8)
        return DecodedChunk(bits, quality)


def _state_of(bits: np.ndarray) -> int:
    """Encoder state after the given last six (or fewer) input bits, newest in bit 5."""
    s = 0
    for b in bits[-6:]:
        s = (int(b) << 5) | (s >> 1)
    return s


def _state_after(state: int, bits: np.ndarray) -> int:
    s = state
    for b in bits[-6:]:
        s = (int(b) << 5) | (s >> 1)
    return s


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _ldpc_llr_kernel(blocks, csm, rand, llr, corr, mean_abs):
    """Per codeblock (CSM + codeword symbols): CSM correlation, mean |Re| and codeword LLRs.

    LLR = 2 a / s^2 Re(y) times polarity and randomizer signs, with s^2 = mean Im^2 (the noise
    per dimension, carrier locked) and a^2 = mean Re^2 - s^2.
    """
    ncsm = csm.shape[0]
    n = rand.shape[0]
    for b in range(blocks.shape[0]):
        c = 0.0
        sa = 0.0
        for i in range(ncsm):
            r = blocks[b, i].real
            c += r * csm[i]
            sa += abs(r)
        re2 = 0.0
        im2 = 0.0
        for i in range(n):
            v = blocks[b, ncsm + i]
            re2 += np.float64(v.real) * v.real
            im2 += np.float64(v.imag) * v.imag
            sa += abs(v.real)
        noise = im2 / n
        a2 = re2 / n - noise
        if a2 < 1e-3 * noise:
            a2 = 1e-3 * noise
        gain = 2.0 * math.sqrt(a2) / max(noise, 1e-30)
        if c < 0:
            gain = -gain
        g = np.float32(gain)
        for i in range(n):
            llr[b, i] = g * blocks[b, ncsm + i].real * rand[i]
        corr[b] = c
        mean_abs[b] = sa / (ncsm + n)


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _ldpc_sums_kernel(blocks, freqs, bits, pol, csm, rand, group, out):
    """Data-aided sums over groups of ``group`` codeblocks.

    out[g] = (sum Re(y) s, sum |y|^2, sum f, count), s the re-encoded symbols (CSM, then codeword
    bits XOR randomizer) times the block's polarity.
    """
    ncsm = csm.shape[0]
    n = bits.shape[1]
    for g in range(out.shape[0]):
        s1 = 0.0
        s2 = 0.0
        sf = 0.0
        cnt = 0
        for b in range(g * group, min((g + 1) * group, blocks.shape[0])):
            p = pol[b]
            for i in range(ncsm):
                v = blocks[b, i]
                s1 += v.real * csm[i] * p
                s2 += np.float64(v.real) * v.real + np.float64(v.imag) * v.imag
                sf += freqs[b, i]
            for i in range(n):
                v = blocks[b, ncsm + i]
                sym = (1.0 - 2.0 * (bits[b, i] ^ rand[i])) * p
                s1 += v.real * sym
                s2 += np.float64(v.real) * v.real + np.float64(v.imag) * v.imag
                sf += freqs[b, ncsm + i]
            cnt += ncsm + n
        out[g, 0] = s1
        out[g, 1] = s2
        out[g, 2] = sf
        out[g, 3] = cnt


class LdpcStreamDecoder(_SymbolStream):
    """CSM synchronization and batched decoding of AR4JA (2048,1024) codeblocks.

    Parameters
    ----------
    max_iter : int
        LDPC iterations per codeword, 1 .. 1000.
    batch : int
        Codewords decoded per decoder call when enough are waiting, >= 1.
    lost_after : int
        Consecutive missing CSMs after which the flywheel gives up (and :attr:`lost` is set
        after ``lost_after`` failed searches), >= 1.

    Attributes
    ----------
    codewords, failed : int
        Codewords decoded, and those whose decoder did not converge.
    """

    #: correlation, as a fraction of the ideal 64 a, for a CSM to count as present
    DETECT = 0.45
    #: codeblocks per quality record: one, so that records sit at fixed stream positions
    #: whatever the batches (a record spanning the codeblocks of one call would depend on the
    #: chunking of the input)
    RECORD_BLOCKS = 1

    def __init__(self, max_iter: int = 50, batch: int = 32, lost_after: int = 4):
        self._decoder = LdpcDecoder(ldpc_code(), max_iter=max_iter)
        self.batch = int(batch)
        self.lost_after = int(lost_after)
        self._csm = (1.0 - 2.0 * CSM_BITS).astype(np.float32)
        self._rand = (1.0 - 2.0 * ldpc_randomizer()).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the codeblock phase and all buffered symbols."""
        self._symq = Fifo(np.complex64)
        self._frqq = Fifo(np.float32)
        self._sym_base = 0
        self._next = None  # symbol index of the next expected CSM
        self._misses = 0
        self._fails = 0
        self.sync_failures = 0
        self._pending: list[tuple] = []  # batches of (llr, symbols, freqs, polarity)
        self._bits = 0
        self.codewords = 0
        self.failed = 0
        self.lost = False

    def _corr(self, r: np.ndarray) -> np.ndarray:
        """Correlation of r with the CSM at every offset (len(r) - 63 values)."""
        return np.correlate(r, self._csm, mode="valid")

    def _search(self) -> bool:
        period = LDPC_BLOCK_SYMBOLS
        need = 3 * period + CSM_LENGTH
        if self._sym.size < need:
            return False
        r = self._sym[:need].real.astype(np.float32)
        c = self._corr(r)
        acc = np.abs(c[:period]) + np.abs(c[period : 2 * period]) + np.abs(c[2 * period : 3 * period])
        p = int(np.argmax(acc))
        amp = float(np.mean(np.abs(r)))
        if acc[p] / 3 >= self.DETECT * CSM_LENGTH * amp:
            self._next = self._sym_base + p
            self._misses = 0
            self._fails = 0
            return True
        self._fails += 1
        self.sync_failures += 1
        if self._fails >= self.lost_after:
            self.lost = True
        self._drop(max(2 * period, self._sym.size - need))
        return False

    def _run(self) -> DecodedChunk:
        period = LDPC_BLOCK_SYMBOLS
        while True:
            if self._next is None and not self._search():
                if self._sym.size >= 3 * period + CSM_LENGTH and not self.lost:
                    continue  # another window is already here
                break
            lo = self._next - self._sym_base
            nblk = (self._sym.size - lo) // period
            if nblk <= 0:
                break
            blocks = self._sym[lo : lo + nblk * period].reshape(nblk, period)
            llr = np.empty((nblk, LDPC_N), dtype=np.float32)
            c = np.empty(nblk)
            mean_abs = np.empty(nblk)
            _ldpc_llr_kernel(blocks, self._csm, self._rand, llr, c, mean_abs)
            ok = np.abs(c) >= self.DETECT * CSM_LENGTH * mean_abs
            take, lost = nblk, False
            for i in range(nblk):  # the flywheel: a run of missing CSMs ends the lock
                if ok[i]:
                    self._misses = 0
                    continue
                self._misses += 1
                if self._misses >= self.lost_after:
                    take, lost = i, True
                    break
            if take:
                pol = np.where(c[:take] >= 0, 1.0, -1.0).astype(np.float32)
                frq = self._frq[lo : lo + take * period].reshape(take, period)
                # views: the symbol buffers never overwrite live values (conv.Fifo)
                self._pending.append((llr[:take], blocks[:take], frq, pol))
                self._next += take * period
            if lost:
                self._next = None  # search again from the block that ended the lock
                self._drop(lo + take * period)
                continue
            drop = self._next - self._sym_base - CSM_LENGTH
            if drop > 0:
                self._drop(drop)
        return self._decode(flush=True)

    def _decode(self, flush: bool) -> DecodedChunk:
        if not self._pending:
            return DecodedChunk(np.zeros(0, dtype=np.uint8))
        if len(self._pending) == 1:
            llr, blk, frq, pol = self._pending[0]
        else:
            llr, blk, frq, pol = (np.concatenate(parts) for parts in zip(*self._pending, strict=True))
        self._pending.clear()
        res = self._decoder.decode(llr)
        bits = res.bits  # hard decisions on the (derandomized) codeword
        n = bits.shape[0]
        g = self.RECORD_BLOCKS
        sums = np.empty((-(-n // g), 4))
        _ldpc_sums_kernel(blk, frq, bits, pol, self._csm, ldpc_randomizer(), g, sums)
        quality = []
        for k, (s1, s2, sf, cnt) in enumerate(sums.tolist()):  # Python floats: no numpy scalars
            a = s1 / cnt
            lo = self._bits + k * g * LDPC_K
            quality.append(QualityRecord(lo, min(lo + g * LDPC_K, self._bits + n * LDPC_K), a * a * cnt,
                                         max(s2 - cnt * a * a, 0.0), int(cnt), sf))  # fmt: skip
        self.codewords += n
        self.failed += int(np.sum(~res.converged))
        self._bits += n * LDPC_K
        return DecodedChunk(np.ascontiguousarray(bits[:, :LDPC_K]).reshape(-1), quality)

    @property
    def last_converged(self) -> int:
        """Codewords decoded that converged."""
        return self.codewords - self.failed
