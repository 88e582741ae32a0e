"""DVB-S2 physical layer framing (EN 302 307-1 §5.5): PLHEADER, pilots, PL scrambling, dummy PLFRAME.

A PLFRAME is the PLHEADER (one slot of 90 π/2-BPSK symbols: 26 SOF + 64 PLS code) followed by the
body: the XFECFRAME's S slots of 90 symbols with, when pilots are on, a pilot block of 36 symbols
(1+j)/√2 after every 16 slots except where it would fall at the end of the frame, i.e.
int((S-1)/16) blocks (§5.5.3, Figure 13). The body (data and pilots) is multiplied by the complex
Gold scrambling sequence exp(jπR_n(i)/2), restarted after each PLHEADER (§5.5.4). A dummy PLFRAME
is a PLHEADER with MODCOD 0 and 36 slots of (1+j)/√2 (§5.5.1).

Conventions: ``frame`` is "normal" (64 800 bit FECFRAME) or "short" (16 200); ``pilots`` a bool;
the TYPE field is (frame == "short", pilots) MSB first (§5.5.2.3). "Body" everywhere means the
symbols after the PLHEADER. The dummy PLFRAME is sent with TYPE = 00.

:meth:`PlFramer.frame_codewords` is the transmitter's fast path: bit interleaving (§5.3.3),
mapping (§5.4), pilot insertion and scrambling of a batch of LDPC codewords in one numba pass
(labels from contiguous bit columns, then one lookup per symbol in a table of the points already
rotated by each of the four scrambling values), symbol for symbol equal to
:func:`~modem.dvbs2.mapping.interleave`, :func:`~modem.dvbs2.mapping.map_bits` and
:class:`PlFramer` applied in turn.

gr-dtv (``dvbs2_physical_cc``) agrees bit for bit on SOF, PLS code, π/2-BPSK, pilot positions and
values and the scrambling sequence; it emits each symbol followed by a zero sample (2 samples per
symbol for its interpolating filter) and, in the sources examined, never inserts dummy PLFRAMEs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numba as nb
import numpy as np

from modem.checks import check_choice
from modem.dvbs2.mapping import BITS_PER_SYMBOL, constellation, interleaver_columns, modcod_parameters

#: FECFRAME sizes and their lengths in bits (Tables 5a/5b).
FRAMES = ("normal", "short")
N_LDPC = {"normal": 64800, "short": 16200}
SLOT = 90  #: symbols per slot (§5.5)
PILOT_BLOCK = 36  #: symbols per pilot block, P (§5.5.3)
PILOT_PERIOD = 16  #: slots between pilot blocks (§5.5.3)
DUMMY_SLOTS = 36  #: slots of a dummy PLFRAME body (§5.5.1)
PLHEADER_LENGTH = 90
#: Start Of Frame, 26 bits, MSB first (§5.5.2.1).
SOF = 0x18D2E82
SOF_BITS = np.array([(SOF >> (25 - i)) & 1 for i in range(26)], dtype=np.uint8)
#: Binary sequence XORed onto the 64 PLS code bits (§5.5.2.4).
PLS_SCRAMBLER = np.array(
    [int(c) for c in "0111000110011101100000111100100101010011010000100010110111111010"], dtype=np.uint8
)
#: Generator matrix of the (32, 6) code, Figure 13b; row 1 multiplies the MODCOD MSB, row 6 the TYPE MSB.
PLS_GENERATOR = np.array(
    [
        [int(c) for c in row]
        for row in (
            "01010101010101010101010101010101",
            "00110011001100110011001100110011",
            "00001111000011110000111100001111",
            "00000000111111110000000011111111",
            "00000000000000001111111111111111",
            "11111111111111111111111111111111",
        )
    ],
    dtype=np.uint8,
)
#: Pilot and dummy-slot symbol, I = Q = 1/√2 (§5.5.1, §5.5.3).
PILOT_SYMBOL = np.complex64((1 + 1j) / np.sqrt(2.0))
#: Length of the scrambling sequence defined by §5.5.4 (R_n(i), i = 0 .. 66 419).
SCRAMBLER_LENGTH = 66420
GOLD_CODES = 262142  #: valid scrambling code numbers n = 0 .. 2^18 - 2
_MSEQ_PERIOD = (1 << 18) - 1

for _a in (SOF_BITS, PLS_SCRAMBLER, PLS_GENERATOR):
    _a.setflags(write=False)


# ---------------------------------------------------------------------------------------------
# PL signalling (§5.5.2)


def _check_frame(frame: str) -> str:
    return check_choice(frame, "frame", FRAMES)


def _check_modcod(modcod, lo: int = 0) -> int:
    if isinstance(modcod, bool) or not isinstance(modcod, int | np.integer) or not lo <= modcod <= 31:
        raise ValueError(f"modcod must be an integer {lo}..31; got {modcod!r}")
    return int(modcod)


def pls_bits(modcod: int, frame: str = "normal", pilots: bool = False) -> np.ndarray:
    """The 64 scrambled PLS code bits for MODCOD and TYPE (EN 302 307-1 §5.5.2.4, Figure 13a).

    The MODCOD (5 bits, MSB first) and the TYPE MSB (frame size) are encoded with the (32, 6) code of
    Figure 13b into y_1 .. y_32; each y_i is followed by y_i XOR b_7 (b_7 = TYPE LSB = pilots), and the
    64 bits are XORed with :data:`PLS_SCRAMBLER`.

    Returns
    -------
    ndarray of uint8, shape (64,)
    """
    return _pls_table()[_pls_index(_check_modcod(modcod), _check_frame(frame), bool(pilots))].copy()


def _pls_index(modcod: int, frame: str, pilots: bool) -> int:
    return (modcod << 2) | ((frame == "short") << 1) | int(pilots)


@lru_cache(maxsize=1)
def _pls_table() -> np.ndarray:
    """(128, 64) uint8: scrambled PLS code of every 7-bit word b1..b7 (row index = the word)."""
    words = np.arange(128)
    b = ((words[:, None] >> np.arange(6, -1, -1)[None, :]) & 1).astype(np.uint8)  # b1 .. b7
    y = (b[:, :6].astype(np.int64) @ PLS_GENERATOR.astype(np.int64)) & 1  # (128, 32)
    code = np.empty((128, 64), dtype=np.uint8)
    code[:, 0::2] = y
    code[:, 1::2] = y ^ b[:, 6:7]
    code ^= PLS_SCRAMBLER[None, :]
    code.setflags(write=False)
    return code


def pi2_bpsk(bits) -> np.ndarray:
    """π/2-BPSK modulation of PLHEADER bits (EN 302 307-1 §5.5.2).

    For 1-based position i: I = Q = (1 - 2y)/√2 at odd i, I = -Q = -(1 - 2y)/√2 at even i; i.e. with
    0-based k: (1 - 2y)(1 + j)/√2 for even k and (1 - 2y)(-1 + j)/√2 for odd k.

    Parameters
    ----------
    bits : array_like of 0/1, shape (n,)
        Bits y_1 .. y_n, counted from the start of the PLHEADER.

    Returns
    -------
    ndarray of complex64, shape (n,)
    """
    y = np.asarray(bits).astype(np.int64)
    return (_pi2_reference(y.size) * (1 - 2 * y)).astype(np.complex64)


def _pi2_reference(n: int) -> np.ndarray:
    """π/2-BPSK symbol of a 0 bit at positions 0 .. n-1 (0-based), complex128."""
    ref = np.full(n, (1 + 1j) / np.sqrt(2.0))
    ref[1::2] = (-1 + 1j) / np.sqrt(2.0)
    return ref


@lru_cache(maxsize=128)
def _plheader_cached(index: int) -> np.ndarray:
    bits = np.concatenate([SOF_BITS, _pls_table()[index]])
    out = pi2_bpsk(bits)
    out.setflags(write=False)
    return out


def plheader(modcod: int, frame: str = "normal", pilots: bool = False) -> np.ndarray:
    """PLHEADER: SOF and PLS code as 90 π/2-BPSK symbols (EN 302 307-1 §5.5.2).

    Parameters
    ----------
    modcod : int
        MODCOD field 0..31 (Table 12; 0 = dummy PLFRAME, 29-31 reserved).
    frame : {"normal", "short"}
    pilots : bool

    Returns
    -------
    ndarray of complex64, shape (90,)
        Unit-modulus symbols, not scrambled (the PL scrambler skips the PLHEADER).
    """
    return _plheader_cached(_pls_index(_check_modcod(modcod), _check_frame(frame), bool(pilots))).copy()


class PlHeaderInfo(NamedTuple):
    """Decoded PLHEADER (see :func:`decode_plheader`)."""

    modcod: int
    frame: str
    pilots: bool
    metric: float


@lru_cache(maxsize=1)
def _pls_antipodal() -> np.ndarray:
    return (1.0 - 2.0 * _pls_table()).astype(np.float64)  # (128, 64), bit 0 -> +1


def decode_plheader(symbols) -> PlHeaderInfo:
    """Coherent soft ML decoding of the PLS code over all 128 MODCOD/TYPE words (EN 302 307-1 §5.5.2).

    The 64 PLS symbols are de-rotated by the π/2-BPSK reference; the real parts are correlated with
    the ±1 form of every scrambled PLS code word and the largest correlation wins (ML for equal
    energy code words in AWGN with known phase).

    Parameters
    ----------
    symbols : array_like of complex, shape (90,)
        PLHEADER symbols (SOF first), phase and amplitude corrected.

    Returns
    -------
    PlHeaderInfo
        ``modcod`` (0..31; 29-31 are reserved values a caller may reject), ``frame``, ``pilots`` and
        ``metric`` = winning correlation / 64: 1.0 for a noiseless unit-amplitude header, ≈ 0 for
        noise; a caller may compare it against a threshold.
    """
    y = np.asarray(symbols)
    if y.shape != (PLHEADER_LENGTH,):
        raise ValueError(f"symbols must have shape ({PLHEADER_LENGTH},); got {np.shape(symbols)}")
    soft = np.real(y[26:].astype(np.complex128) * np.conj(_pi2_reference(PLHEADER_LENGTH)[26:]))
    corr = _pls_antipodal() @ soft
    best = int(np.argmax(corr))
    return PlHeaderInfo(best >> 2, FRAMES[(best >> 1) & 1], bool(best & 1), float(corr[best] / 64.0))


# ---------------------------------------------------------------------------------------------
# frame geometry (§5.5, Table 11, Figure 13)


def payload_length(modcod: int, frame: str = "normal") -> int:
    """Symbols of the XFECFRAME (90 S): n_ldpc / bps, or 36 slots for the dummy MODCOD 0."""
    modcod = _check_modcod(modcod)
    _check_frame(frame)
    if modcod == 0:
        return DUMMY_SLOTS * SLOT
    modulation, _, _, _ = modcod_parameters(modcod)
    return N_LDPC[frame] // BITS_PER_SYMBOL[modulation]


def pilot_blocks(slots: int) -> int:
    """Number of pilot blocks in a body of ``slots`` slots with pilots on: int((S - 1) / 16) (§5.5.3)."""
    return max(int(slots) - 1, 0) // PILOT_PERIOD


def plframe_length(modcod: int, frame: str = "normal", pilots: bool = False) -> int:
    """PLFRAME length in symbols, 90 (S + 1) + 36 int((S - 1) / 16) with pilots (Figure 13)."""
    s = payload_length(modcod, frame) // SLOT
    return SLOT * (s + 1) + (PILOT_BLOCK * pilot_blocks(s) if pilots and modcod else 0)


@lru_cache(maxsize=16)
def _pilot_layout(slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Body positions of the data symbols and of the pilot symbols for S slots with pilots on."""
    nblk = pilot_blocks(slots)
    group = PILOT_PERIOD * SLOT + PILOT_BLOCK
    pos = np.arange(slots * SLOT)
    data = pos + (pos // (PILOT_PERIOD * SLOT)) * PILOT_BLOCK
    pilot = (np.arange(nblk)[:, None] * group + PILOT_PERIOD * SLOT + np.arange(PILOT_BLOCK)[None, :]).ravel()
    data.setflags(write=False)
    pilot.setflags(write=False)
    return data, pilot


def _check_slots(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.size == 0 or a.size % SLOT:
        raise ValueError(f"{name} must be 1-D with a length a positive multiple of {SLOT}; got {np.shape(x)}")
    return a


def insert_pilots(payload) -> np.ndarray:
    """Insert pilot blocks of 36 × (1+j)/√2 after every 16 slots, none at the end (EN 302 307-1 §5.5.3).

    Parameters
    ----------
    payload : array_like of complex, shape (90 S,)
        XFECFRAME symbols.

    Returns
    -------
    ndarray of complex64, shape (90 S + 36 int((S-1)/16),)
        Unscrambled PLFRAME body.
    """
    x = _check_slots(payload, "payload")
    slots = x.size // SLOT
    data, pilot = _pilot_layout(slots)
    out = np.empty(x.size + pilot.size, dtype=np.complex64)
    out[data] = x
    out[pilot] = PILOT_SYMBOL
    return out


def remove_pilots(body, slots: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a descrambled body into payload and pilot symbols; inverse of :func:`insert_pilots`.

    Parameters
    ----------
    body : array_like of complex, shape (90 S + 36 int((S-1)/16),)
    slots : int, optional
        S, the number of data slots (from the MODCOD and frame size); inferred from the length
        when omitted (the length is strictly increasing in S).

    Returns
    -------
    payload : ndarray of complex64, shape (90 S,)
    pilots : ndarray of complex64, shape (int((S-1)/16), 36)
        Received pilot blocks (ideally all (1+j)/√2 after descrambling).
    """
    b = np.asarray(body)
    if b.ndim != 1:
        raise ValueError(f"body must be 1-D; got shape {b.shape}")
    if slots is None:
        slots = next(
            (s for s in range(b.size // SLOT, 0, -1) if s * SLOT + PILOT_BLOCK * pilot_blocks(s) == b.size), 0
        )
        if slots == 0:
            raise ValueError(f"body length {b.size} is not 90 S + 36 int((S-1)/16) for any S")
    data, pilot = _pilot_layout(int(slots))
    if b.shape != (data.size + pilot.size,):
        raise ValueError(f"body must have shape ({data.size + pilot.size},) for {slots} slots; got {b.shape}")
    return b[data].astype(np.complex64), b[pilot].astype(np.complex64).reshape(-1, PILOT_BLOCK)


# ---------------------------------------------------------------------------------------------
# PL scrambling (§5.5.4)


@nb.njit(cache=True, nogil=True)
def _m_sequences(n):  # pragma: no cover - compiled
    x = np.zeros(n, np.uint8)
    y = np.ones(n, np.uint8)
    x[0] = 1
    for i in range(n - 18):
        x[i + 18] = x[i + 7] ^ x[i]  # 1 + x^7 + x^18
        y[i + 18] = y[i + 10] ^ y[i + 7] ^ y[i + 5] ^ y[i]  # 1 + y^5 + y^7 + y^10 + y^18
    return x, y


@lru_cache(maxsize=1)
def _xy() -> tuple[np.ndarray, np.ndarray]:
    return _m_sequences(_MSEQ_PERIOD)


def _check_gold(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n < GOLD_CODES:
        raise ValueError(f"n must be an integer 0..{GOLD_CODES - 1}; got {n!r}")
    return int(n)


@lru_cache(maxsize=16)
def _gold_r(n: int) -> np.ndarray:
    x, y = _xy()
    i = np.arange(SCRAMBLER_LENGTH)

    def z(j):  # z_n(j) = x((j + n) mod (2^18 - 1)) XOR y(j)
        return x[(j + n) % _MSEQ_PERIOD] ^ y[j]

    r = (2 * z((i + 131072) % _MSEQ_PERIOD) + z(i)).astype(np.uint8)
    r.setflags(write=False)
    return r


def gold_sequence(n: int = 0) -> np.ndarray:
    """Scrambling sequence R_n(i) ∈ {0, 1, 2, 3}, i = 0 .. 66 419 (EN 302 307-1 §5.5.4).

    x: 1 + x^7 + x^18 from x(0) = 1, x(1..17) = 0; y: 1 + y^5 + y^7 + y^10 + y^18 from all ones;
    z_n(i) = x((i + n) mod (2^18 - 1)) XOR y(i); R_n(i) = 2 z_n((i + 131 072) mod (2^18 - 1)) + z_n(i).

    Parameters
    ----------
    n : int
        Scrambling code number 0 .. 262 141 (0 is the broadcast default).

    Returns
    -------
    ndarray of uint8, shape (66420,)
        Read-only, cached.
    """
    return _gold_r(_check_gold(n))


@lru_cache(maxsize=16)
def _scrambler(n: int) -> np.ndarray:
    c = np.array([1, 1j, -1, -1j], dtype=np.complex64)[_gold_r(n)]
    c.setflags(write=False)
    return c


def scrambling_sequence(n: int = 0) -> np.ndarray:
    """Complex scrambling sequence C_I + jC_Q = exp(jπ R_n(i)/2), shape (66420,) complex64 (§5.5.4)."""
    return _scrambler(_check_gold(n))


def _apply(symbols, n: int, conj: bool) -> np.ndarray:
    x = np.asarray(symbols)
    if x.ndim != 1 or x.size > SCRAMBLER_LENGTH:
        raise ValueError(
            f"symbols must be 1-D with at most {SCRAMBLER_LENGTH} symbols; got {np.shape(symbols)}"
        )
    c = scrambling_sequence(n)[: x.size]
    return (x * (np.conj(c) if conj else c)).astype(np.complex64)


def scramble(symbols, n: int = 0) -> np.ndarray:
    """PL-scramble a PLFRAME body (EN 302 307-1 §5.5.4): multiply symbol i by exp(jπ R_n(i)/2).

    Parameters
    ----------
    symbols : array_like of complex, shape (L,)
        Body symbols (everything after the PLHEADER, pilots included), L <= 66 420; the sequence
        restarts at i = 0 after each PLHEADER.
    n : int
        Scrambling code number.

    Returns
    -------
    ndarray of complex64, shape (L,)
    """
    return _apply(symbols, n, conj=False)


def descramble(symbols, n: int = 0) -> np.ndarray:
    """Inverse of :func:`scramble`: multiply by exp(-jπ R_n(i)/2)."""
    return _apply(symbols, n, conj=True)


# ---------------------------------------------------------------------------------------------
# PLFRAMEs


def dummy_plframe(n: int = 0) -> np.ndarray:
    """Dummy PLFRAME (EN 302 307-1 §5.5.1): PLHEADER with MODCOD 0 (TYPE 00), 36 scrambled slots of (1+j)/√2.

    Returns
    -------
    ndarray of complex64, shape (3330,)
    """
    body = np.full(DUMMY_SLOTS * SLOT, PILOT_SYMBOL, dtype=np.complex64)
    return np.concatenate([plheader(0, "normal", False), scramble(body, n)])


@lru_cache(maxsize=16)
def _dummy_cached(n: int) -> np.ndarray:
    out = dummy_plframe(n)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=64)
def _scrambled_points(modulation: str, rate: str) -> tuple[np.ndarray, np.ndarray]:
    """Constellation points and pilot symbol multiplied by exp(jπR/2), R = 0..3: (4 M,), (4,) complex64.

    Computed with the same complex64 products as :func:`scramble`, so the fused framer below
    gives the same symbols.
    """
    rot = np.array([1, 1j, -1, -1j], dtype=np.complex64)
    pts, _ = constellation(modulation, rate)
    table = (pts[None, :] * rot[:, None]).astype(np.complex64).reshape(-1)
    pil = (np.full(4, PILOT_SYMBOL, dtype=np.complex64) * rot).astype(np.complex64)
    table.setflags(write=False)
    pil.setflags(write=False)
    return table, pil


@nb.njit(cache=True, nogil=True)
def _frame_codewords(cw, first, stride, table, pil, rseq, header, pilots, out):  # pragma: no cover
    """Interleave, map, insert pilots and PL-scramble LDPC codewords into PLFRAMEs.

    cw (nf, n) uint8 codewords; bit t (MSB first) of the label of symbol s is
    cw[f, first[t] + s] when stride is 1 (the bit interleaver, §5.3.3), else (QPSK, stride 2)
    cw[f, 2 s + t]; table (4 M,) and pil (4,)
    hold the points and the pilot symbol rotated by exp(jπR/2), R = 0..3, as uint64 (the bits of
    a complex64); rseq is R_n(i); header the 90 PLHEADER symbols (uint64); out (nf, L) uint64.
    """
    nf, n = cw.shape
    bps = first.size
    ns = n // bps
    m = table.size // 4
    period = PILOT_PERIOD * SLOT
    lab = np.empty(ns, np.uint8)
    for f in range(nf):
        # labels, MSB first: vectorizable passes over contiguous bits
        bits = cw[f]
        if stride == 1:  # interleaved: bit t of every label is one contiguous column
            lab[:] = 0
            for t in range(bps):
                col = bits[first[t] : first[t] + ns]
                for s in range(ns):
                    lab[s] = (lab[s] << 1) | (col[s] & 1)
        else:  # QPSK, not interleaved: bits 2 s and 2 s + 1
            for s in range(ns):
                lab[s] = ((bits[2 * s] & 1) << 1) | (bits[2 * s + 1] & 1)
        o = out[f]
        o[:PLHEADER_LENGTH] = header
        body = o[PLHEADER_LENGTH:]
        i = 0
        for s0 in range(0, ns, period):
            if pilots and s0 > 0:
                for _ in range(PILOT_BLOCK):
                    body[i] = pil[rseq[i]]
                    i += 1
            cnt = min(period, ns - s0)
            dst = body[i : i + cnt]
            r = rseq[i : i + cnt]
            lb = lab[s0 : s0 + cnt]
            for s in range(cnt):
                dst[s] = table[np.int64(r[s]) * m + lb[s]]
            i += cnt


_FRAMING_PLANS: dict = {}  # (modcod, frame, pilots) -> _framing_plan(...), valid keys only


def _framing_plan(modcod: int, frame: str, pilots: bool) -> tuple:
    """Everything :meth:`PlFramer.frame_codewords` needs for one MODCOD / frame / pilots, cached.

    Returns (n_ldpc, PLFRAME length, first, stride, points table, pilot symbols, PLHEADER), the
    last three as uint64 views of complex64 values.
    """
    key = (modcod, frame, pilots)
    if key not in _FRAMING_PLANS:
        modulation, rate, _, _ = modcod_parameters(modcod)
        n = N_LDPC[frame]
        bps = BITS_PER_SYMBOL[modulation]
        cols = interleaver_columns(modulation, rate)
        if cols:  # column-wise write, row-wise read: bit t of symbol s is bit cols[t] * rows + s
            first = np.asarray(cols, dtype=np.int64) * (n // bps)
            stride = 1
        else:  # QPSK: not interleaved
            first = np.arange(bps, dtype=np.int64)
            stride = bps
        table, pil = _scrambled_points(modulation, rate)
        header = _plheader_cached(_pls_index(modcod, frame, pilots))
        _FRAMING_PLANS[key] = (
            n, plframe_length(modcod, frame, pilots), first, stride,
            table.view(np.uint64), pil.view(np.uint64), header.view(np.uint64),
        )  # fmt: skip
    return _FRAMING_PLANS[key]


class Deframed(NamedTuple):
    """Result of :func:`deframe`."""

    payload: np.ndarray  #: (S*90,) complex64 descrambled XFECFRAME symbols
    pilots: np.ndarray  #: (blocks, 36) complex64 descrambled pilot symbols (0 blocks without pilots)
    header: PlHeaderInfo  #: the header used (decoded, or the given one with metric nan)
    length: int  #: PLFRAME length in symbols, for advancing in a symbol stream


class PlFramer:
    """Build complete, scrambled PLFRAMEs (EN 302 307-1 §5.5), one MODCOD per frame (ACM).

    Parameters
    ----------
    n : int
        PL scrambling code number 0 .. 262 141 (§5.5.4), 0 by default.
    """

    def __init__(self, n: int = 0):
        self.n = _check_gold(n)
        self._rseq = _gold_r(self.n)

    def __call__(self, modcod: int, frame: str, pilots: bool, payload) -> np.ndarray:
        """PLHEADER + scrambled body for one XFECFRAME.

        Parameters
        ----------
        modcod : int
            MODCOD 1..28.
        frame : {"normal", "short"}
        pilots : bool
        payload : array_like of complex, shape (n_ldpc / bps,)
            XFECFRAME symbols (unit average energy).

        Returns
        -------
        ndarray of complex64, shape (:func:`plframe_length`,)
        """
        modcod = _check_modcod(modcod, lo=1)
        if modcod > 28:
            raise ValueError(f"modcod must be an integer 1..28; got {modcod}")
        s = payload_length(modcod, frame)
        x = np.asarray(payload)
        if x.shape != (s,):
            raise ValueError(f"payload must have shape ({s},) for MODCOD {modcod} {frame}; got {x.shape}")
        body = insert_pilots(x) if pilots else x.astype(np.complex64)
        return np.concatenate(
            [_plheader_cached(_pls_index(modcod, frame, bool(pilots))), scramble(body, self.n)]
        )

    def dummy(self) -> np.ndarray:
        """Dummy PLFRAME scrambled with this framer's code number (3330 symbols)."""
        return _dummy_cached(self.n).copy()

    def frame_codewords(self, modcod: int, frame: str, pilots: bool, codewords, out=None) -> np.ndarray:
        """Bit-interleave, map and PL-frame LDPC codewords in one pass (§5.3.3, §5.4, §5.5).

        Equal to ``self(modcod, frame, pilots, s)`` for each row ``s`` of
        ``map_bits(interleave(codewords, mod, rate), mod, rate)``, without the intermediate arrays.

        Parameters
        ----------
        modcod : int
            MODCOD 1..28.
        frame : {"normal", "short"}
        pilots : bool
        codewords : array_like of uint8 0/1, shape (nf, n_ldpc)
            FECFRAMEs (BCH and LDPC encoded), in code bit order; only the lowest bit of each
            value is used.
        out : ndarray of complex64, shape (nf, L), optional
            Where to write the PLFRAMEs (C-contiguous), e.g. a view of a larger buffer.

        Returns
        -------
        ndarray of complex64, shape (nf, :func:`plframe_length`)
        """
        plan = _FRAMING_PLANS.get((modcod, frame, pilots)) if type(modcod) is int else None
        if plan is None:
            modcod = _check_modcod(modcod, lo=1)
            if modcod > 28:
                raise ValueError(f"modcod must be an integer 1..28; got {modcod}")
            plan = _framing_plan(modcod, _check_frame(frame), bool(pilots))
        n, length, first, stride, table, pil, header = plan
        cw = np.asarray(codewords)
        if cw.ndim != 2 or cw.shape[1] != n or cw.dtype != np.uint8:
            raise ValueError(f"codewords must be uint8 of shape (nf, {n}); got {cw.dtype} {cw.shape}")
        cw = np.ascontiguousarray(cw)
        if out is None:
            out = np.empty((cw.shape[0], length), dtype=np.complex64)
        elif out.shape != (cw.shape[0], length) or out.dtype != np.complex64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous complex64 of shape {(cw.shape[0], length)}")
        _frame_codewords(cw, first, stride, table, pil, self._rseq, header, bool(pilots), out.view(np.uint64))
        return out

    def deframe(
        self, symbols, modcod: int | None = None, frame: str | None = None, pilots: bool | None = None
    ):
        """:func:`deframe` with this framer's scrambling code number."""
        return deframe(symbols, modcod, frame, pilots, n=self.n)


def deframe(
    symbols, modcod: int | None = None, frame: str | None = None, pilots: bool | None = None, n: int = 0
) -> Deframed:
    """Receiver side of :class:`PlFramer`: descramble a PLFRAME and split payload from pilots.

    Parameters
    ----------
    symbols : array_like of complex, shape (L,) with L >= the PLFRAME length
        Symbols starting at the PLHEADER (phase corrected); symbols past the frame are ignored.
    modcod, frame, pilots : optional
        Header content, if known; when ``modcod`` is None the PLHEADER is decoded with
        :func:`decode_plheader` (``frame`` and ``pilots`` then come from the header too).
    n : int
        PL scrambling code number.

    Returns
    -------
    Deframed
        ``payload`` (90 S,) and ``pilots`` (blocks, 36), both descrambled complex64; ``header``;
        ``length`` of the PLFRAME. A dummy PLFRAME (MODCOD 0) returns its 36 slots as payload.
    """
    y = np.asarray(symbols)
    if y.ndim != 1 or y.size < PLHEADER_LENGTH:
        raise ValueError(
            f"symbols must be 1-D with at least {PLHEADER_LENGTH} symbols; got {np.shape(symbols)}"
        )
    if modcod is None:
        header = decode_plheader(y[:PLHEADER_LENGTH])
    else:
        header = PlHeaderInfo(
            _check_modcod(modcod), _check_frame(frame or "normal"), bool(pilots), float("nan")
        )
    s = payload_length(header.modcod, header.frame)
    with_pilots = header.pilots and header.modcod != 0
    length = plframe_length(header.modcod, header.frame, with_pilots)
    if y.size < length:
        raise ValueError(f"symbols must hold the whole PLFRAME of {length} symbols; got {y.size}")
    body = descramble(y[PLHEADER_LENGTH:length], n)
    if with_pilots:
        payload, pil = remove_pilots(body, s // SLOT)
    else:
        payload, pil = body, np.empty((0, PILOT_BLOCK), dtype=np.complex64)
    return Deframed(payload, pil, header, length)
