"""Argument checks shared by the modem.sync blocks (errors name the argument and the allowed range)."""

from __future__ import annotations

import math

import numpy as np


def as_complex64(x, name: str, offset: int = 0) -> np.ndarray:
    """``x`` as a 1-D C-contiguous complex64 array, all values finite.

    Parameters
    ----------
    x : array_like
    name : str
        Argument name for the error message.
    offset : int
        Stream index of ``x[0]``; a non-finite value is reported at ``offset + i``.

    Raises
    ------
    ValueError
        Not 1-D, or a NaN or inf value (the message gives its index).
    TypeError
        Not numeric.
    """
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.timedelta64):
        raise TypeError(f"{name} must be complex (or real) numbers; got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.complex64)
    if a.size and not np.isfinite(a.view(np.float32)).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        where = f"index {i}" if not offset else f"index {i} (stream sample {offset + i})"
        raise ValueError(f"{name} must be finite; got {a[i]} at {where}")
    return a


def check_positive(value, name: str, lo: float = 0.0, hi: float = math.inf, closed: bool = False) -> float:
    """``value`` as a float with lo < value <= hi (lo <= value if ``closed``), else ValueError/TypeError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number; got {value!r}")
    v = float(value)
    ok = (lo <= v if closed else lo < v) and v <= hi and math.isfinite(v)
    if not ok:
        lo_s = f">= {lo:g}" if closed else f"> {lo:g}"
        hi_s = "" if math.isinf(hi) else f" and <= {hi:g}"
        raise ValueError(f"{name} must be {lo_s}{hi_s}; got {value!r}")
    return v


def check_int(value, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in lo..hi, else ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}")
    return v
