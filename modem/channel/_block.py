"""Shared plumbing of the channel blocks: input checks and the block protocol.

Every channel block is an object ``y = block(x)`` on 1-D complex64 baseband, with state
carried across calls (any chunking of the input gives the same concatenated output),
``reset()`` back to the state at construction (same random stream again) and ``flush()``
for the samples a block holds back at the end of a stream (empty for all but
:class:`ClockOffset`, whose interpolator runs half its length behind the input).
"""

from __future__ import annotations

import math

import numpy as np


def check_iq(x, name: str = "x") -> np.ndarray:
    """Return ``x`` as a C-contiguous 1-D complex64 array of finite samples.

    Raises
    ------
    ValueError
        ``x`` is not 1-D, or holds NaN or infinity (the message names the first bad index).
    TypeError
        ``x`` is not numeric.
    """
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of complex samples; got shape {a.shape}")
    if a.dtype != np.complex64 or not a.flags.c_contiguous:  # the common case needs no conversion
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or a.dtype.kind == "m":
            raise TypeError(f"{name} must hold complex (or real) samples; got dtype {a.dtype}")
        a = np.ascontiguousarray(a, dtype=np.complex64)
    ok = np.isfinite(a)
    if not ok.all():
        i = int(np.argmin(ok))
        raise ValueError(f"{name} must be finite; got {a[i]} at sample {i}")
    return a


def check_real(value, name: str, lo: float = -math.inf, hi: float = math.inf, unit: str = "",
               lo_open: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number in [lo, hi] (or (lo, hi]).

    Raises
    ------
    TypeError
        Not a real number.
    ValueError
        NaN, infinite or out of range; the message names ``name``, the range and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number{' in ' + unit if unit else ''}; got {value!r}")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    if not math.isfinite(v) or below or v > hi:
        left = "(" if lo_open else "["
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be in {left}{lo:g}, {hi:g}]{u}; got {value!r}")
    return v


class Block:
    """Base of the streaming channel blocks: ``y = block(x)``, :meth:`reset`, :meth:`flush`."""

    def __call__(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:
        """Return to the state at construction."""

    def flush(self) -> np.ndarray:
        """Samples held back at the end of the stream (none here), complex64."""
        return np.zeros(0, dtype=np.complex64)
