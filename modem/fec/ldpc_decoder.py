"""Batched layered min-sum LDPC decoder for every code in :mod:`modem.fec.codes`.

One object, :class:`LdpcDecoder`, decodes any :class:`~modem.fec.ldpc_code.LdpcCode`:
layered (row-serial) min-sum with a corrected three-minimum check node (int8 fast path; the
float32 reference path computes the same rule unquantized), early stop per frame, a configurable
maximum of iterations,
a batch of frames per call.

How it is fast
--------------
Frames are the innermost, vectorized dimension: the decoder keeps 64 frames side by
side in "lanes" (APP values as an (n_cols, 64) array, check messages as (edges, 64)),
and every row update processes all lanes at once. The fixed-point path (``dtype="int8"``,
the default) runs a kernel written with explicit 64 x int8 SIMD vectors (saturating
byte instructions: one AVX-512 register, or two AVX2 registers, per operation). A frame
leaves its lane as soon as it has converged (or used ``max_iter``) and the next frame of
the batch takes its place, so the cost follows the *average* number of iterations, not
the slowest frame of each batch. ``workers`` threads split a batch (the kernels release
the GIL).

Conventions
-----------
LLR = log(P(bit = 0) / P(bit = 1)): positive means 0. Input LLRs are per transmitted
bit, shape (batch, n); punctured columns enter as erasures (LLR 0) and known-zero
columns (virtual fill) as the largest positive LLR.

Early stop: a frame stops after an iteration in which every check was satisfied when it
was updated and no hard decision changed; its hard decisions then satisfy H c = 0,
which is what ``converged`` reports. The iteration that confirms this is counted.
"""

from __future__ import annotations

import csv
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

import numpy as np

from modem.checks import check_choice, check_llr
from modem.fec import _ldpc_kernels as kernels
from modem.fec.ldpc_code import LdpcCode
from modem.fec.simd import WIDTH

#: Largest fixed-point value (int8, kept symmetric).
INT8_MAX = 127
#: Frames side by side in the float32 path (64-byte rows).
FLOAT_LANES = 16


def factor_shift(factor: float) -> int:
    """Right shift s with 1 - 2^-s == factor (7 for factor 1: int8 magnitudes < 128 shift to 0).

    Parameters
    ----------
    factor : float
        1 or 1 - 2^-s for s in 2 .. 6.

    Returns
    -------
    int
        s, 2 .. 7.
    """
    for s in range(2, 8):
        if factor == (1.0 if s == 7 else 1.0 - 2.0**-s):
            return s
    raise ValueError(f"factor must be 1 or 1 - 2^-s for s in 2..6 (0.75 .. 0.984375); got {factor}")


def correction_thresholds(scale: float) -> tuple[int, int, int]:
    """Thresholds (steps) that give c(x) = ln(1 + exp(-x)) rounded to whole steps, at most 3.

    c(x) in steps is the number of thresholds t_k with x < t_k, x a difference of two check-node
    input magnitudes in steps: t_k is the smallest x (steps) with ``scale * ln(1 +
    exp(-x / scale)) < k - 1/2``, or 0 where c never reaches k - 1/2 (small scales). At scale 4:
    (1, 4, 9), i.e. c = 3, 2, 2, 2, 1, 1, 1, 1, 1, 0 steps for x = 0 .. 9.

    Parameters
    ----------
    scale : float
        Quantization steps per LLR unit, > 0.

    Returns
    -------
    (int, int, int)
        (t_3, t_2, t_1), steps, ascending.
    """
    out = []
    for k in (3, 2, 1):
        x = 0
        while scale * np.log1p(np.exp(-x / scale)) >= k - 0.5 and x < INT8_MAX:
            x += 1
        out.append(x)
    return tuple(out)


@dataclass(frozen=True)
class DecoderSettings:
    """Fixed-point settings of :class:`LdpcDecoder` for one code.

    Attributes
    ----------
    scale : float
        Quantization steps per LLR unit.
    offset : float
        Offset of the check-node output to the edges whose input magnitude is neither the
        smallest nor the second smallest of their row, LLR units.
    limit : int
        Largest message magnitude, quantization steps.
    offset_first, offset_second : float or None
        Offsets of the outputs to the edges at the smallest and at the second-smallest input
        magnitude, LLR units; None: ``offset``.
    correction : bool
        Apply the ln(1 + exp(-x)) corrections of the three-minimum check node; False with equal
        offsets and factor 1 is plain offset min-sum.
    factor : float
        Normalization of the check-node outputs after the offsets: 1 (none) or 1 - 2^-s for
        s = 2 .. 6 (0.75, 0.875, 0.9375, ...).
    """

    scale: float
    offset: float
    limit: int
    offset_first: float | None = None
    offset_second: float | None = None
    correction: bool = True
    factor: float = 1.0

    def __post_init__(self):
        factor_shift(self.factor)  # validates


#: Settings for codes without a row in the tuning table: offset min-sum.
DEFAULT_SETTINGS = DecoderSettings(scale=2.0, offset=0.5, limit=31, correction=False)


@cache
def tuned_settings() -> dict[str, DecoderSettings]:
    """Per-code decoder settings from ``modem/fec/data/ldpc_tuning.csv``, by code name.

    Returns
    -------
    dict of str to DecoderSettings
        Empty when the table is missing. Lines starting with "#" are comments; the columns
        ``offset_first``, ``offset_second``, ``factor`` and ``correction`` (1 or 0) are
        optional (defaults: ``offset``, ``offset``, 1, 1).
    """
    path = resources.files("modem.fec.data").joinpath("ldpc_tuning.csv")
    if not path.is_file():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    out = {}
    for row in csv.DictReader(lines):
        first, second = row.get("offset_first") or None, row.get("offset_second") or None
        out[row["code"]] = DecoderSettings(
            scale=float(row["scale"]),
            offset=float(row["offset"]),
            limit=int(row["limit"]),
            offset_first=None if first is None else float(first),
            offset_second=None if second is None else float(second),
            correction=(row.get("correction") or "1").strip() != "0",
            factor=float(row.get("factor") or 1.0),
        )
    return out


@dataclass
class LdpcResult:
    """Output of :meth:`LdpcDecoder.decode`.

    Attributes
    ----------
    bits : ndarray of uint8, shape (batch, n)
        Hard decisions on the transmitted codeword bits.
    iterations : ndarray of int32, shape (batch,)
        Layered iterations used per frame (including the one that confirmed convergence).
    converged : ndarray of bool, shape (batch,)
        True where the hard decisions satisfy every parity check.
    k : int
        Information length; ``info`` is ``bits[:, :k]``.
    """

    bits: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    k: int

    @property
    def info(self) -> np.ndarray:
        """Decoded information bits, uint8 (batch, k)."""
        return self.bits[:, : self.k]


class LdpcDecoder:
    """Layered min-sum decoder for one LDPC code, batched over frames.

    Parameters
    ----------
    code : LdpcCode
        The code (see :func:`modem.fec.codes.get_code`).
    max_iter : int
        Maximum layered iterations per frame, 1 .. 1000.
    dtype : {"int8", "float32"}
        "int8": fixed-point fast path (saturating int8 messages and APP values) with the corrected
        three-minimum check node (see Notes). "float32": floating-point reference path with the
        same schedule and check-node rule, unquantized (exact ln(1 + exp(-x)) corrections, the
        factor as a multiplication, no message limit); built by the constructor it runs offset
        min-sum (offset 0.5, the rule of tests/reference_ldpc.py); :meth:`from_settings` with
        ``dtype="float32"`` runs any int8 setting (e.g. a code's tuned one) without quantization:
        the reference the int8 path's quantization loss is measured against.
    kernel : {"simd", "portable"}
        int8 only: "simd" (explicit SIMD vectors, the fast path) or "portable" (plain numba
        loops; bit-exact with "simd", used as the baseline in benchmarks and tests). The
        float32 path always uses "portable".
    offset : float, optional
        Check-node offset, LLR units, [0, 10): given explicitly, it applies to all three outputs
        of the check node (see Notes). The int8 path rounds it to quantization steps, so with
        ``scale=4`` it is a multiple of 0.25. None: int8, the code's tuned offsets if it has them;
        else 0.5.
    scale : float, optional
        int8 path: quantization steps per LLR unit, (0, 64]: input LLRs are multiplied by
        ``scale``, rounded and saturated to +-(``limit`` - offset steps - 1). None: the code's
        tuned value, else 2.
    limit : int, optional
        int8 path: largest magnitude of channel values and check messages, in quantization
        steps, 1 .. 127. APP values range over +-127: the headroom keeps a saturated APP value
        from wiping out the extrinsic information (APP - message) of its edges; channel values
        stay below ``limit`` - offset, so that even one check can outvote a confidently wrong
        channel value. None: the code's tuned value, else 31.
    workers : int
        Threads sharing a batch, 1 .. 64 (each with its own lanes).

    Notes
    -----
    Check node (int8). Each row's update finds the three smallest extrinsic magnitudes
    m1 <= m2 <= m3 and sends back approximations of the sum-product ("boxplus") result over the
    other edges: ``m2 (+) m3`` to an edge at m1, ``m1 (+) m3`` to an edge at m2 and
    ``(m1 (+) m2) (+) m3`` to every other edge, with ``a (+) b = a - c(b - a)`` for a <= b and
    c(x) = ln(1 + exp(-x)) rounded to whole quantization steps (:func:`correction_thresholds`).
    What the edges beyond the third smallest would take off is stood in for, per output, by an
    offset (``offset`` for the other edges, ``offset_first`` and ``offset_second`` for the edges
    at m1 and m2), floored at 0, then a normalization factor (``factor``, 1 - 2^-s), then the
    message limit (details in :mod:`modem.fec._ldpc_kernels`). With no correction, three equal
    offsets and factor 1 this is offset min-sum (the rule for codes without tuned settings). On
    the DVB-S2 normal codes it moves FER 1e-2 0.05-0.2 dB lower than the tuned offset min-sum
    it replaced (tables in
    ``modem/fec/data/ldpc_tuning.csv`` and ``modem/dvbs2/data/measured_thresholds.csv``); the
    per-row work is done once per row, so the throughput is that of offset min-sum.

    Per-code tuning: for the int8 path, settings left at None are read, each on its own, from
    ``modem/fec/data/ldpc_tuning.csv`` (:func:`tuned_settings`) when the code is listed there
    (the 21 DVB-S2 codes: scale 4, limit 47, offsets 0-0.5 LLR and factor 1, 15/16 or 7/8 per
    code, chosen by ``benchmarks/ldpc_tuning.py``); the CCSDS codes, and the float32 reference
    path unless built by :meth:`from_settings`, use offset min-sum with offset 0.5, scale 2 and
    limit 31. Values passed explicitly
    always win (an explicit ``offset`` sets all three offsets; the correction and the factor stay
    the code's); :meth:`from_settings` sets every setting. The attributes hold the values in use.
    At scale 4, limit 47 (11.75 LLR) rather than 31: with 31 the low rates leave frames with
    stuck parity bits, unconverged even at high Es/N0.

    Untuned defaults (offset 0.5, scale 2, limit 31) were chosen on DVB-S2 normal 1/2 near its
    threshold, where the int8 offset min-sum is about 0.05 dB from the float32 path. ``limit``
    31 (15.5 LLR) leaves the APP range (+-127) two bits of headroom: with 63, saturated APP
    values minus stale messages made frames that had converged diverge again at high Es/N0
    (9 dB on normal 1/2), some into the all-ones codeword of 9/10, and a channel value
    saturated at the wrong sign could not be corrected by a degree-2 column; with 31 the
    threshold is unchanged.
    """

    def __init__(
        self,
        code: LdpcCode,
        max_iter: int = 25,
        dtype: str = "int8",
        kernel: str = "simd",
        offset: float | None = None,
        scale: float | None = None,
        limit: int | None = None,
        workers: int = 1,
    ):
        check_choice(dtype, "dtype", ("int8", "float32"))
        settings = DEFAULT_SETTINGS
        if dtype == "int8":
            settings = tuned_settings().get(getattr(code, "name", None), DEFAULT_SETTINGS)
        if offset is not None:  # an explicit offset applies to all three outputs
            settings = replace(settings, offset=offset, offset_first=None, offset_second=None)
        if scale is not None:
            settings = replace(settings, scale=scale)
        if limit is not None:
            settings = replace(settings, limit=limit)
        self._setup(code, max_iter, dtype, kernel, settings, workers)

    @classmethod
    def from_settings(
        cls,
        code: LdpcCode,
        settings: DecoderSettings,
        max_iter: int = 25,
        kernel: str = "simd",
        workers: int = 1,
        dtype: str = "int8",
    ) -> LdpcDecoder:
        """A decoder with exactly these settings (the tuning table is not read).

        Parameters
        ----------
        code : LdpcCode
        settings : DecoderSettings
            Every fixed-point setting, including the three offsets, the correction and the
            normalization factor (which the constructor takes from the tuning table).
        max_iter, kernel, workers, dtype
            As for the constructor (float32: ``scale`` and ``limit`` are not used).

        Returns
        -------
        LdpcDecoder
        """
        if not isinstance(settings, DecoderSettings):
            raise TypeError(f"settings must be a DecoderSettings; got {type(settings).__name__}")
        self = cls.__new__(cls)
        self._setup(code, max_iter, dtype, kernel, settings, workers)
        return self

    def _setup(self, code, max_iter, dtype, kernel, settings: DecoderSettings, workers) -> None:
        if not isinstance(code, LdpcCode):
            got = type(code).__name__
            raise TypeError(f"code must be an LdpcCode (see modem.fec.codes.get_code); got {got}")
        if not 1 <= int(max_iter) <= 1000:
            raise ValueError(f"max_iter must be in 1..1000; got {max_iter}")
        check_choice(dtype, "dtype", ("int8", "float32"))
        check_choice(kernel, "kernel", ("simd", "portable"))
        st = settings
        offsets = {"offset": st.offset, "offset_first": st.offset_first, "offset_second": st.offset_second}
        offsets = {k: st.offset if v is None else v for k, v in offsets.items()}
        for name, value in offsets.items():
            if not 0 <= value < 10:
                raise ValueError(f"{name} must be in [0, 10) LLR units; got {value}")
        if not 0 < st.scale <= 64:
            raise ValueError(f"scale must be in (0, 64] steps per LLR unit; got {st.scale}")
        if not 1 <= int(st.limit) <= INT8_MAX:
            raise ValueError(f"limit must be in 1..{INT8_MAX} quantization steps; got {st.limit}")
        if not 1 <= int(workers) <= 64:
            raise ValueError(f"workers must be in 1..64; got {workers}")
        dmax = int(np.diff(code.row_ptr).max())
        if dmax > INT8_MAX:
            raise ValueError(f"code {code.name}: row degree {dmax} exceeds the decoder's {INT8_MAX}")
        self.code = code
        self.max_iter = int(max_iter)
        self.dtype = dtype
        self.kernel = "simd" if dtype == "int8" and kernel == "simd" else "portable"
        self.offset = float(offsets["offset"])
        self.offset_first = float(offsets["offset_first"])
        self.offset_second = float(offsets["offset_second"])
        self.correction = bool(st.correction)
        self.factor = float(st.factor)
        self.scale = float(st.scale)
        self.limit = int(st.limit)
        self.workers = int(workers)
        self._run_cols, self._fill = _column_map(code, dtype)
        self._workspaces: queue.SimpleQueue[_Workspace] = queue.SimpleQueue()  # one per thread in use

    def decode(self, llr) -> LdpcResult:
        """Decode a batch of frames.

        Parameters
        ----------
        llr : array_like of float, shape (batch, n) or (n,)
            Channel LLRs of the transmitted bits, positive = 0. Must be finite.

        Returns
        -------
        LdpcResult
            Hard bits (batch, n), iterations and converged flag per frame.
        """
        llr = check_llr(llr, "llr", self.code.n)
        batch = llr.shape[0]
        workers = min(self.workers, batch)
        if workers <= 1:
            bits, iters, conv = self._decode(llr)
        else:
            bounds = np.linspace(0, batch, workers + 1).astype(int)
            parts = [llr[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(self._decode, parts))
            bits, iters, conv = (np.concatenate(x) for x in zip(*results, strict=True))
        return LdpcResult(bits=bits, iterations=iters, converged=conv, k=self.code.k)

    def _decode(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        code = self.code
        batch = llr.shape[0]
        bits = np.empty((batch, code.n), dtype=np.uint8)
        iters = np.zeros(batch, dtype=np.int32)
        conv = np.zeros(batch, dtype=np.bool_)
        offsets = (self.offset, self.offset_first, self.offset_second)
        if self.dtype == "int8":
            steps = [min(INT8_MAX, round(o * self.scale)) for o in offsets]
            thresholds = correction_thresholds(self.scale) if self.correction else (0, 0, 0)
            cn = np.array([*steps, *thresholds, factor_shift(self.factor)], dtype=np.int8)
            limit = np.int8(self.limit)
            # a degree-1 column (AR4JA) gets one message of at most limit - offset steps: the
            # channel value must stay below it, or a confidently wrong bit could never flip
            clip = np.float32(max(1, self.limit - steps[0] - 1))
            lanes = WIDTH
        else:
            cn = np.array([*offsets, float(self.correction), self.factor, 0, 0], dtype=np.float32)
            limit = np.float32(np.inf)
            clip = np.float32(np.inf)
            lanes = FLOAT_LANES
        if self.kernel == "simd":
            decode_frames, clear = kernels._decode_frames_simd, False
        else:
            decode_frames, clear = kernels._decode_frames_portable, True
        try:
            ws = self._workspaces.get_nowait()
        except queue.Empty:
            ws = _Workspace(code, lanes, np.dtype(self.dtype))
        decode_frames(
            llr, self._run_cols, self._fill, code.tx_cols, code.row_ptr, code.col_idx, bits, iters, conv,
            self.max_iter, cn, limit, np.float32(self.scale), clip, clear,
            ws.app, ws.msg, ws.tmp, ws.flags, ws.stage, ws.signs,
        )  # fmt: skip
        self._workspaces.put(ws)
        return bits, iters, conv


def _column_map(code: LdpcCode, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """How decoder columns get their values: (c_lo, c_hi, shift) and a per-column fill value.

    Columns c_lo .. c_hi-1 carry transmitted bits c_lo-shift .. c_hi-1-shift; the other
    columns hold constants: 0 (punctured: an erasure) or the largest positive LLR (known zero).
    """
    sent = np.flatnonzero(code.tx_cols >= 0)
    cols = code.tx_cols[sent]
    c_lo, c_hi = int(cols[0]), int(cols[-1]) + 1
    shift = c_lo - int(sent[0])
    if not (np.array_equal(cols, np.arange(c_lo, c_hi)) and np.array_equal(sent, cols - shift)):
        raise ValueError(f"code {code.name}: transmitted bits must map to one contiguous run of columns")
    if dtype == "int8":
        fill = np.zeros(code.n_cols, dtype=np.int8)
        fill[code.zero_cols] = INT8_MAX
    else:
        fill = np.zeros(code.n_cols, dtype=np.float32)
        fill[code.zero_cols] = np.float32(1e30)
    return np.array([c_lo, c_hi, shift], dtype=np.int64), fill


def _aligned_empty(shape: tuple[int, int], dtype: np.dtype, align: int = 4096) -> np.ndarray:
    """Uninitialized C-contiguous array whose data starts on an ``align``-byte boundary.

    Lane rows are 64 bytes; on a 32-byte aligned base (numba's and malloc's habit) every
    row would straddle two cache lines, which halves the kernel's speed.
    """
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start : start + nbytes].view(dtype).reshape(shape)


class _Workspace:
    """Decoder state for one thread.

    APP (n_cols, lanes), messages (edges, lanes), row scratch (max degree, lanes), flags
    (3, lanes), staging rows (lanes, n_cols) and sign masks (n_cols,). Allocated once and
    reused across calls: in a VM, first-touch page faults on ~25 MB of fresh arrays cost as
    much as decoding a few dozen frames.
    """

    def __init__(self, code: LdpcCode, lanes: int, dtype: np.dtype):
        dmax = int(np.diff(code.row_ptr).max())
        self.app = _aligned_empty((code.n_cols, lanes), dtype)
        self.msg = _aligned_empty((code.edges, lanes), dtype)
        self.tmp = _aligned_empty((dmax, lanes), dtype)
        self.flags = _aligned_empty((3, lanes), np.dtype(np.int8))
        self.stage = _aligned_empty((lanes, code.n_cols), dtype)
        self.signs = _aligned_empty((code.n_cols, 1), np.dtype(np.uint64)).reshape(-1)
