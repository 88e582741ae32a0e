"""Timing helper shared by the benchmark scripts."""

import time

import numpy as np


def best_time(fn, repeats: int) -> float:
    """Shortest wall time in seconds of ``repeats`` calls of fn()."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
