"""Stream time and scenario time of a flowgraph run.

Every IQ stream counts samples from 0 (the gr-zeromq tag header's offset). Sample ``k`` is at
stream time ``k / sample_rate_hz`` and at scenario time ``start_s + time_scale * k / sample_rate_hz``:
``time_scale`` compresses a 10-minute pass into seconds of stream. Every stage converts with the
same :class:`Timebase`, built from the flowgraph's ``[link]`` table, so "1 s of feedback delay"
means the same samples to all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Timebase:
    """Conversions between stream samples and scenario seconds.

    Attributes
    ----------
    symbol_rate_hz : float
    samples_per_symbol : int
    time_scale : float
        Scenario seconds per stream second.
    start_s : float
        Scenario time of sample 0, s.
    duration_s : float
        Scenario seconds the run covers (0: open-ended).
    """

    symbol_rate_hz: float
    samples_per_symbol: int
    time_scale: float = 1.0
    start_s: float = 0.0
    duration_s: float = 0.0

    @property
    def sample_rate_hz(self) -> float:
        """Stream sample rate, samples/s."""
        return self.symbol_rate_hz * self.samples_per_symbol

    def t_s(self, offset) -> float:
        """Scenario time of stream sample ``offset``, s."""
        return self.start_s + self.time_scale * offset / self.sample_rate_hz

    def samples(self, scenario_s: float) -> int:
        """Stream samples spanning ``scenario_s`` scenario seconds (rounded up)."""
        return int(math.ceil(scenario_s / self.time_scale * self.sample_rate_hz))

    @property
    def end_offset(self) -> int | None:
        """Stream sample at which the run's scenario time ends (None: open-ended)."""
        return self.samples(self.duration_s) if self.duration_s > 0 else None


@cache
def _scenario_span(name: str) -> tuple[float, float]:
    from modem.channel import load_scenario

    sc = load_scenario(name)
    start = float(getattr(sc, "start_s", 0.0))
    return start, float(sc.duration_s)


def scenario_span(name: str) -> tuple[float, float]:
    """(start, duration) of a scenario, s."""
    return _scenario_span(name)


def timebase(link: dict) -> Timebase:
    """The run's Timebase from a ``[link]`` table (a scenario's own length when duration_s is 0)."""
    duration = float(link.get("duration_s", 0.0))
    start = float(link.get("start_s", 0.0))
    if duration <= 0 and link.get("scenario"):
        s0, d = scenario_span(link["scenario"])
        duration = max(0.0, s0 + d - start)
    return Timebase(
        float(link["symbol_rate_hz"]),
        int(link["samples_per_symbol"]),
        float(link.get("time_scale", 1.0)),
        start,
        duration,
    )
