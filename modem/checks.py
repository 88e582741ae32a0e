"""Argument checks shared by the modem's public functions.

Every error names the argument, what was expected and what came, in the style
of scipy.signal ("llr must have shape (batch, 64800), got (3, 100)").
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def check_choice(value, name: str, allowed: Iterable):
    """Return ``value`` if it is one of ``allowed``, else raise ValueError naming both."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {shown}; got {value!r}")
    return value


def check_bits(x, name: str, length: int) -> np.ndarray:
    """Return ``x`` as a C-contiguous uint8 array of shape (batch, length) holding 0/1.

    A 1-D input of ``length`` bits is accepted as a batch of one.
    """
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != length:
        raise ValueError(f"{name} must have shape (batch, {length}) or ({length},); got {np.shape(x)}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise TypeError(f"{name} must hold integer bits 0/1; got dtype {a.dtype}")
    if a.dtype != np.bool_ and a.size and (a.max() > 1 or a.min() < 0):
        bad = a.max() if a.max() > 1 else a.min()
        raise ValueError(f"{name} must hold only bits 0 and 1; got a value {int(bad)}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def check_llr(x, name: str, length: int, dtype=np.float32) -> np.ndarray:
    """Return ``x`` as a C-contiguous array of shape (batch, length), all values finite."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != length:
        raise ValueError(f"{name} must have shape (batch, {length}) or ({length},); got {np.shape(x)}")
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must be a real float array; got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=dtype)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"{name} must be finite; got {a[tuple(bad)]} at frame {bad[0]}, bit {bad[1]}"
        )
    return a
