"""Throughput of the DVB-S2 BCH encoder and decoder (EN 302 307-1 §5.3.1), one thread.

Prints information-bit rates in Mbit/s for encoding and for decoding frames with 0 and t bit errors,
and the ratio against a slow numpy GF(2) polynomial-division encoder measured in the same run.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/bch_throughput.py [--frames 64] [--repeats 5]``
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from _timing import best_time  # benchmarks/ is on sys.path when run as a script

from modem.fec.bch import dvbs2_bch

CASES = (("normal", "1/2"), ("normal", "2/3"), ("short", "1/2"))


def reference_encode(msg: np.ndarray, generator: np.ndarray) -> np.ndarray:
    """Slow systematic BCH encoder: GF(2) long division of m(x) x^(n-k) by g(x).

    msg: (k,) uint8 bits, highest power first; generator: (n-k+1,) uint8, highest power first.
    Returns the (n,) codeword.
    """
    r = generator.size - 1
    rem = np.concatenate([msg.astype(np.uint8), np.zeros(r, dtype=np.uint8)])
    for i in range(msg.size):
        if rem[i]:
            rem[i : i + r + 1] ^= generator
    return np.concatenate([msg.astype(np.uint8), rem[msg.size :]])


def reference_encode_batch(msgs: np.ndarray, generator: np.ndarray) -> list[np.ndarray]:
    """Encode each row of msgs with :func:`reference_encode`."""
    return [reference_encode(m, generator) for m in msgs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64, help="frames per batch")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions (best is kept)")
    args = ap.parse_args()
    rng = np.random.default_rng(2024)
    print(f"{'code':<12} {'t':>3} {'operation':<22} {'Mbit/s':>9} {'x baseline':>11}")
    for frame, rate in CASES:
        code = dvbs2_bch(frame, rate)
        msg = rng.integers(0, 2, (args.frames, code.k), dtype=np.uint8)
        code.encode(msg[:1])  # load / compile the kernels
        code.decode(code.encode(msg[:1]))
        base_frames = 2
        t_base = best_time(partial(reference_encode_batch, msg[:base_frames], code.generator), 1)
        base_rate = base_frames * code.k / t_base / 1e6
        cw = code.encode(msg)
        noisy = cw.copy()
        for row in noisy:
            row[rng.choice(code.n, code.t, replace=False)] ^= 1
        assert np.all(code.decode(noisy).corrected == code.t)  # sanity check, not a timing assertion
        bits = args.frames * code.k / 1e6
        runs = [
            ("reference encode", base_rate),
            ("encode", bits / best_time(partial(code.encode, msg), args.repeats)),
            ("decode, 0 errors", bits / best_time(partial(code.decode, cw), args.repeats)),
            (f"decode, {code.t} errors", bits / best_time(partial(code.decode, noisy), args.repeats)),
        ]
        for name, mbps in runs:
            print(f"{frame + ' ' + rate:<12} {code.t:>3} {name:<22} {mbps:>9.1f} {mbps / base_rate:>11.0f}")


if __name__ == "__main__":
    main()
