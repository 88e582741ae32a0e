"""The radio interface marslink drives (tune, rates, gains, transmit, receive) and bench frequency plans.

A :class:`Radio` streams complex64 baseband at unit scale both ways: TX samples with
``|I|, |Q| <= 1`` (larger values are clipped and counted), RX samples with the ADC's full
scale at 1.0. Every gap in either stream (TX underflow: the DAC ran out of samples
mid-stream; RX overflow: samples were lost because they were not read in time) is counted
and reported, never hidden. :class:`hw.pluto.Pluto` implements it on an ADALM-PLUTO (or the
virtual one).

Frequency plans: a Pluto cannot tune to Ka band (26 GHz) so the Ka link runs on the bench at
2.4 GHz (the channel model carries the Ka-band Doppler and phase noise scaled to preserve
normalized offsets); the UHF Proximity-1 link runs at 435 MHz, close to its own band.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

#: Bench center frequencies (Hz) per link when no frequency is given.
BENCH_CENTER_HZ = {"ka": 2.4e9, "uhf": 435e6}


def bench_frequency(link: str) -> float:
    """Center frequency (Hz) a bench radio uses for a link ("ka" or "uhf").

    Taken from :mod:`modem.scaling`'s bench plans (``BENCHES``: "pluto" for the Ka link,
    "uhf" for Proximity-1) when that module is there, else :data:`BENCH_CENTER_HZ`.

    Raises
    ------
    ValueError
        Unknown link (the message lists the known ones).
    """
    key = str(link).lower()
    if key not in BENCH_CENTER_HZ:
        raise ValueError(f"link must be one of {', '.join(sorted(BENCH_CENTER_HZ))}; got {link!r}")
    try:
        from modem.scaling import BENCHES

        return float(BENCHES[{"ka": "pluto", "uhf": "uhf"}[key]][0])
    except (ImportError, KeyError, TypeError, IndexError):
        return BENCH_CENTER_HZ[key]


class StreamGapWarning(RuntimeWarning):
    """A TX underflow or RX overflow: the sample stream has a gap."""


@dataclass(frozen=True)
class Gap:
    """A gap detected in a stream.

    Attributes
    ----------
    direction : {"tx", "rx"}
    sample_index : int
        Samples moved in that direction before the buffer at which the gap was seen (the
        hardware flags that a gap happened since the previous check, not exactly where).
    kind : {"underflow", "overflow"}
    """

    direction: str
    sample_index: int
    kind: str


@dataclass
class StreamStats:
    """Counts of one radio's streams since it was opened.

    Attributes
    ----------
    tx_samples, rx_samples : int
        Samples given to :meth:`Radio.tx` / delivered by :meth:`Radio.rx`.
    tx_pushed : int
        Samples handed to the device (padding included; held-back samples not yet).
    tx_buffers, rx_buffers : int
    tx_clipped : int
        TX samples whose I or Q exceeded unit scale and were clipped.
    tx_padded : int
        Zero samples added to fill the last TX buffer of a stream.
    tx_underflows, rx_overflows : int
        Gap events (see :class:`Gap`).
    gaps : list of Gap
    """

    tx_samples: int = 0
    rx_samples: int = 0
    tx_pushed: int = 0
    tx_buffers: int = 0
    rx_buffers: int = 0
    tx_clipped: int = 0
    tx_padded: int = 0
    tx_underflows: int = 0
    rx_overflows: int = 0
    gaps: list[Gap] = field(default_factory=list)


ON_GAP = ("warn", "raise", "count")


class StreamGapError(RuntimeError):
    """Raised for a stream gap when the radio was opened with ``on_gap="raise"``."""


class Radio(ABC):
    """What marslink needs from a radio front end.

    Attributes
    ----------
    stats : StreamStats
    """

    stats: StreamStats
    on_gap: str = "warn"

    @property
    @abstractmethod
    def sample_rate_hz(self) -> float:
        """Baseband sample rate of both streams (samples/s)."""

    @property
    @abstractmethod
    def rx_lo_hz(self) -> float:
        """Receive center frequency (Hz)."""

    @property
    @abstractmethod
    def tx_lo_hz(self) -> float:
        """Transmit center frequency (Hz)."""

    @abstractmethod
    def tx(self, samples) -> None:
        """Stream complex64 samples at unit scale (appended to what was sent before)."""

    @abstractmethod
    def tx_flush(self, pad: bool = True) -> None:
        """Send what :meth:`tx` holds back (padded to a whole buffer with zeros, or as a short one)."""

    @abstractmethod
    def tx_cyclic(self, samples) -> None:
        """Repeat one burst continuously until :meth:`tx_stop`."""

    @abstractmethod
    def tx_stop(self) -> None:
        """Stop transmitting (streaming or cyclic)."""

    @abstractmethod
    def rx(self, n: int | None = None) -> np.ndarray:
        """The next ``n`` received samples (default one buffer), complex64 at unit scale."""

    @abstractmethod
    def close(self) -> None:
        """Release the radio."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _report_gap(self, gap: Gap) -> None:
        """Count a gap and warn or raise as ``on_gap`` says."""
        self.stats.gaps.append(gap)
        if gap.direction == "tx":
            self.stats.tx_underflows += 1
        else:
            self.stats.rx_overflows += 1
        text = f"{gap.direction.upper()} {gap.kind} before sample {gap.sample_index}: the stream has a gap"
        if self.on_gap == "raise":
            raise StreamGapError(text)
        if self.on_gap == "warn":
            warnings.warn(text, StreamGapWarning, stacklevel=3)
