"""Proximity-1 link configuration: data rate, coding, symbol and sample rates.

Data rates are the power-of-two rates of CCSDS 211.1-B from 1 to 2048 kbit/s; here the data
rate is the rate of the coding sublayer's input bitstream (PLTUs and idle pattern), so the
channel symbol rate is the data rate times 1 (uncoded), 2 (convolutional) or 2112/1024 (LDPC
codewords with their 64-bit CSM).

The sample rate is chosen per data rate: the smallest whole number of samples per symbol
(at least 2) that keeps the sample rate at or above ``min_sample_rate_hz`` (default 256 kHz:
the +-12 kHz carrier search band and the NRZ main lobe at the lowest rates fit with room, and
the integrate-and-dump matched filter loses at most 0.04 dB at a 12 kHz offset). A radio
whose minimum rate is higher (a PlutoSDR's is about 521 kHz) passes its minimum as
``min_sample_rate_hz``: the modem then simply uses more samples per symbol (for rectangular
pulses that is exact resampling: the transmitter repeats, the receiver integrates). A fixed
``sample_rate_hz`` may also be given, e.g. one radio rate for every data rate of a pass: it
must then be a whole multiple (>= 2) of the symbol rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from modem.checks import check_choice
from modem.prox1.coding import CODINGS, symbols_per_bit

#: Data rates, bit/s (211.1-B: 1, 2, 4, ... 2048 kbit/s).
DATA_RATES = tuple(1000 * 2**k for k in range(12))
#: Largest carrier offset the receiver searches, Hz: UHF Doppler (211.1-B: +-10 kHz) plus the
#: oscillators (a PlutoSDR's +-25 ppm at 435 MHz is +-11 kHz); the sum of the worst cases of
#: two ends is covered by the +-12 kHz of the issue with both ends' Doppler shared.
MAX_OFFSET_HZ = 12_000.0
#: Eb/N0 (dB, per bitstream bit, with the LDPC CSM's energy counted) each coding needs on AWGN
#: with this receiver: conv at BER 1e-5 (soft Viterbi), LDPC at codeword error rate 1e-2
#: (AR4JA (2048,1024), 50 iterations), uncoded BPSK at BER 1e-5. Measured in
#: ``tests/test_prox1_link.py`` and ``benchmarks/prox1.py``; used by the ADR policy.
REQUIRED_EBN0_DB = {"uncoded": 9.6, "conv": 4.6, "ldpc": 2.0}


def _as_int(value, name: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        and not (isinstance(value, float) and value.is_integer())
    ):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Prox1Config:
    """Physical-layer configuration of one Proximity-1 link direction.

    Parameters
    ----------
    data_rate : int
        Bitstream rate, bit/s: one of :data:`DATA_RATES` (1000 .. 2048000).
    coding : {"uncoded", "conv", "ldpc"}
    sample_rate_hz : float, optional
        Fixed sample rate, Hz: a whole multiple (>= 2) of the symbol rate. Default: chosen
        from ``min_sample_rate_hz``.
    min_sample_rate_hz : float
        Lowest sample rate to use when ``sample_rate_hz`` is not given, Hz, > 0.
    max_offset_hz : float
        Carrier offset the receiver searches, +-Hz, (0, sample_rate / 8].

    Raises
    ------
    ValueError, TypeError
        Naming the field and the allowed values.
    """

    data_rate: int
    coding: str = "conv"
    sample_rate_hz: float | None = None
    min_sample_rate_hz: float = 256e3
    max_offset_hz: float = MAX_OFFSET_HZ

    def __post_init__(self):
        rate = _as_int(self.data_rate, "data_rate")
        if rate not in DATA_RATES:
            shown = ", ".join(str(r // 1000) for r in DATA_RATES)
            raise ValueError(f"data_rate must be one of {shown} kbit/s (in bit/s); got {self.data_rate!r}")
        object.__setattr__(self, "data_rate", rate)
        check_choice(self.coding, "coding", CODINGS)
        if not self.min_sample_rate_hz > 0:
            raise ValueError(f"min_sample_rate_hz must be > 0 Hz; got {self.min_sample_rate_hz!r}")
        rs = self.symbol_rate_exact
        if self.sample_rate_hz is not None:
            sps = Fraction(self.sample_rate_hz).limit_denominator(1 << 20) / rs
            if sps.denominator != 1 or sps < 2:
                raise ValueError(
                    f"sample_rate_hz must be a whole multiple (>= 2) of the symbol rate {float(rs):g} Hz "
                    f"({self.coding}, {rate} bit/s); got {self.sample_rate_hz!r}"
                )
        fs = self.sample_rate
        if not 0 < self.max_offset_hz <= fs / 8:
            raise ValueError(
                f"max_offset_hz must be in (0, {fs / 8:g}] Hz (sample rate / 8); got {self.max_offset_hz!r}"
            )

    @property
    def symbol_rate_exact(self) -> Fraction:
        """Channel symbol rate, symbols/s, exact."""
        return self.data_rate * symbols_per_bit(self.coding)

    @property
    def symbol_rate(self) -> float:
        """Channel symbol rate, symbols/s."""
        return float(self.symbol_rate_exact)

    @property
    def sps(self) -> int:
        """Samples per symbol."""
        rs = self.symbol_rate_exact
        if self.sample_rate_hz is not None:
            return int(Fraction(self.sample_rate_hz).limit_denominator(1 << 20) / rs)
        return max(2, math.ceil(self.min_sample_rate_hz / rs))

    @property
    def sample_rate(self) -> float:
        """Sample rate, Hz."""
        return float(self.sps * self.symbol_rate_exact)

    @property
    def required_ebn0_db(self) -> float:
        """Eb/N0 this coding needs (see :data:`REQUIRED_EBN0_DB`), dB."""
        return REQUIRED_EBN0_DB[self.coding]

    def esn0_from_ebn0(self, ebn0_db: float) -> float:
        """Es/N0 per channel symbol for an Eb/N0 per bitstream bit, dB."""
        return ebn0_db - _spb_db(self.coding)

    def ebn0_from_esn0(self, esn0_db: float) -> float:
        """Eb/N0 per bitstream bit for an Es/N0 per channel symbol, dB."""
        return esn0_db + _spb_db(self.coding)


@cache
def _spb_db(coding: str) -> float:
    """10 log10(channel symbols per bitstream bit)."""
    return 10 * math.log10(float(symbols_per_bit(coding)))
