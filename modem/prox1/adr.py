"""Adaptive Data Rate for Proximity-1: the relay picks the data rate from what it hears.

The relay estimates the carrier-to-noise density of the signal it receives from every frame
(C/N0 = Es/N0 + 10 log10(symbol rate): independent of the data rate in use, so estimates made
at one rate decide the next) and commands the highest data rate whose required Eb/N0 plus a
margin fits: rate R is allowed when C/N0 - 10 log10(R) >= required Eb/N0 + margin. Moving up
needs a further hysteresis (no flapping between two rates at a boundary); moving down is
immediate. When even the lowest rate does not fit, or no frame has been heard for a while, the
decision is None: send nothing new, hold the data (the transmit queue keeps every byte until it
is acknowledged, so an outage costs time, not data).

- :class:`Cn0Estimator` smooths the per-frame estimates: an exponential average in dB that
  follows drops at once (the minimum of the average and the newest estimate), so a fade is
  acted on without delay and a rise only when it lasts.
- :class:`AdrPolicy` turns the estimate into a data rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modem.checks import check_choice
from modem.prox1.coding import CODINGS, symbols_per_bit
from modem.prox1.config import DATA_RATES, REQUIRED_EBN0_DB


def cn0_from_esn0(esn0_db: float, symbol_rate_hz: float) -> float:
    """C/N0 in dB-Hz from an Es/N0 (dB) measured at ``symbol_rate_hz``."""
    return esn0_db + 10 * math.log10(symbol_rate_hz)


@dataclass(frozen=True)
class RateOption:
    """One data rate and the C/N0 it needs.

    Attributes
    ----------
    data_rate : int
        bit/s.
    required_cn0_dbhz : float
        Required Eb/N0 + 10 log10(data rate), dB-Hz (before the policy's margin).
    """

    data_rate: int
    required_cn0_dbhz: float


def rate_ladder(
    coding: str, rates=DATA_RATES, required_ebn0_db: float | None = None
) -> tuple[RateOption, ...]:
    """The data rates available to a coding with the C/N0 each needs, slowest first.

    Parameters
    ----------
    coding : {"uncoded", "conv", "ldpc"}
    rates : iterable of int
        Data rates allowed (a subset of :data:`~modem.prox1.config.DATA_RATES`).
    required_ebn0_db : float, optional
        Eb/N0 the coding needs; default :data:`~modem.prox1.config.REQUIRED_EBN0_DB`.
    """
    check_choice(coding, "coding", CODINGS)
    req = REQUIRED_EBN0_DB[coding] if required_ebn0_db is None else float(required_ebn0_db)
    out = []
    for r in sorted(set(rates)):
        check_choice(r, "rates", DATA_RATES)
        out.append(RateOption(int(r), req + 10 * math.log10(r)))
    if not out:
        raise ValueError("rates must hold at least one data rate")
    return tuple(out)


class Cn0Estimator:
    """Smoothed C/N0 from per-frame Es/N0 reports (see the module notes).

    Parameters
    ----------
    weight : float
        Weight of a new estimate in the exponential average, (0, 1].

    Attributes
    ----------
    estimate : float
        Current C/N0 estimate, dB-Hz (NaN before the first report).
    """

    def __init__(self, weight: float = 0.25):
        if not 0 < weight <= 1:
            raise ValueError(f"weight must be in (0, 1]; got {weight!r}")
        self.weight = float(weight)
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self._avg = math.nan
        self.estimate = math.nan

    def update(self, esn0_db: float, symbol_rate_hz: float) -> float:
        """Add one frame's Es/N0 (dB) at its symbol rate; returns the new estimate (dB-Hz).

        Non-finite Es/N0 values (no estimate) leave the estimate unchanged.
        """
        if not math.isfinite(esn0_db):
            return self.estimate
        c = cn0_from_esn0(esn0_db, symbol_rate_hz)
        avg = c if math.isnan(self._avg) else self._avg + self.weight * (c - self._avg)
        self._avg = min(avg, c)  # a drop is taken at once (and the average restarts from it)
        self.estimate = self._avg
        return self.estimate


class AdrPolicy:
    """Data-rate choice from C/N0 estimates with margin and hysteresis.

    Parameters
    ----------
    coding : {"uncoded", "conv", "ldpc"}
    margin_db : float
        Eb/N0 to keep above the coding's requirement, dB, [0, 20].
    hysteresis_db : float
        Extra margin to move up, dB, [0, 10] (moving down is immediate).
    rates : iterable of int
        Data rates allowed.
    required_ebn0_db : float, optional
        Override of the coding's required Eb/N0, dB.

    Attributes
    ----------
    ladder : tuple of RateOption
    current : int or None
        Last decision, bit/s (None: nothing fits, hold the data).
    """

    def __init__(
        self,
        coding: str = "conv",
        margin_db: float = 2.0,
        hysteresis_db: float = 1.0,
        rates=DATA_RATES,
        required_ebn0_db: float | None = None,
    ):
        for name, v, lo, hi in (
            ("margin_db", margin_db, 0.0, 20.0),
            ("hysteresis_db", hysteresis_db, 0.0, 10.0),
        ):
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}] dB; got {v!r}")
        self.coding = coding
        self.ladder = rate_ladder(coding, rates, required_ebn0_db)
        self.margin_db = float(margin_db)
        self.hysteresis_db = float(hysteresis_db)
        self.current: int | None = None

    def best(self, cn0_dbhz: float, margin_db: float | None = None) -> int | None:
        """Highest data rate whose requirement plus ``margin_db`` is at most ``cn0_dbhz``."""
        m = self.margin_db if margin_db is None else margin_db
        fit = [o.data_rate for o in self.ladder if o.required_cn0_dbhz + m <= cn0_dbhz]
        return fit[-1] if fit else None

    def decide(self, cn0_dbhz: float) -> int | None:
        """Update and return the data rate for a C/N0 estimate (dB-Hz; NaN keeps the decision)."""
        if cn0_dbhz is None or not math.isfinite(cn0_dbhz):
            return self.current
        fit = self.best(cn0_dbhz)
        cur = self.current
        if fit is None or cur is None or fit < cur:
            # nothing fits, the first decision, or the current rate no longer fits: follow at once
            self.current = fit
        elif fit > cur:
            up = self.best(cn0_dbhz, self.margin_db + self.hysteresis_db)
            if up is not None and up > cur:
                self.current = up
        return self.current

    def outage(self) -> None:
        """Nothing heard for too long: no rate until a new estimate."""
        self.current = None

    def symbol_rate(self, data_rate: int) -> float:
        """Channel symbol rate of a data rate with this policy's coding, symbols/s."""
        return float(data_rate * symbols_per_bit(self.coding))
