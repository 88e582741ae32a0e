"""Proximity-1 BPSK modulation: suppressed carrier, NRZ-L, rectangular pulses (211.1-B §3.3).

Channel bit 0 is sent as +1, bit 1 as -1 (NRZ-L: one level per bit value; with the receiver's
LLR = log(P(0)/P(1)) a positive sample means 0). Each symbol is ``sps`` equal complex samples
of magnitude 1, so the mean sample power is 1 and Es = ``sps`` in sample-energy units: an
:class:`modem.channel.Awgn` with ``samples_per_symbol=sps`` and ``signal_power=1`` then gives
exactly the requested Es/N0.
"""

from __future__ import annotations

import numpy as np


def bpsk_symbols(bits) -> np.ndarray:
    """Map channel bits to BPSK symbols: 0 -> +1, 1 -> -1 (complex64, shape of ``bits``)."""
    b = np.asarray(bits)
    if b.size and (b.min() < 0 or b.max() > 1):
        raise ValueError("bits must hold only 0 and 1")
    return (1.0 - 2.0 * b.astype(np.float32)).astype(np.complex64)


class NrzModulator:
    """Rectangular-pulse BPSK at ``sps`` samples per symbol (no state between calls).

    Parameters
    ----------
    sps : int
        Samples per symbol, 1 .. 65536.
    amplitude : float
        Sample magnitude (> 0).
    """

    def __init__(self, sps: int, amplitude: float = 1.0):
        if isinstance(sps, bool) or not isinstance(sps, int | np.integer) or not 1 <= sps <= 65536:
            raise ValueError(f"sps must be an integer in 1..65536 samples per symbol; got {sps!r}")
        if not amplitude > 0:
            raise ValueError(f"amplitude must be > 0; got {amplitude}")
        self.sps = int(sps)
        self.amplitude = float(amplitude)

    def __call__(self, bits) -> np.ndarray:
        """Channel bits (uint8 0/1, 1-D) to complex64 samples, ``sps`` per bit."""
        s = bpsk_symbols(bits) * np.float32(self.amplitude)
        if s.ndim != 1:
            raise ValueError(f"bits must be 1-D; got shape {s.shape}")
        return np.repeat(s, self.sps)

    def reset(self) -> None:
        """No state to clear (pulses do not overlap)."""
