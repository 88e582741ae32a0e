"""Shared plumbing of the channel blocks: input checks, seeding, the block protocol.

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


class SeededRng:
    """A ``np.random.Generator`` that :meth:`reset` rewinds to its state at construction.

    Parameters
    ----------
    seed : None, int, SeedSequence or Generator
        None draws fresh entropy (recorded in :attr:`seed`, so a run can be replayed); an int
        or SeedSequence seeds a PCG64; a Generator is used as given (its state at construction
        is what :meth:`reset` returns to).
    """

    def __init__(self, seed=None):
        if isinstance(seed, np.random.Generator):
            self.seed = None
            self.rng = seed
        else:
            if seed is not None and not isinstance(seed, int | np.integer | np.random.SeedSequence):
                raise TypeError(f"seed must be None, an int, a SeedSequence or a Generator; got {seed!r}")
            if isinstance(seed, int | np.integer) and seed < 0:
                raise ValueError(f"seed must be a non-negative integer; got {seed}")
            ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
            self.seed = ss.entropy  #: the entropy that replays this stream
            self.rng = np.random.Generator(np.random.PCG64(ss))
        self._state0 = self.rng.bit_generator.state

    def reset(self) -> None:
        """Rewind the generator to its state at construction."""
        self.rng.bit_generator.state = self._state0


class Block:
    """Base of the streaming channel blocks: ``y = block(x)``, :meth:`reset`, :meth:`flush`."""

    def __call__(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:
        """Return to the state at construction."""

    def flush(self) -> np.ndarray:
        """Samples held back at the end of the stream (none here), complex64."""
        return np.zeros(0, dtype=np.complex64)
