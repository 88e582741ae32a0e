"""Channel models for the Mars links: streaming impairment blocks, Mars physics, scenarios.

Streaming blocks (1-D complex64 in and out, state carried across calls, ``reset()``):
:class:`Awgn`, :class:`Gain`, :class:`CarrierOffset`, :class:`ClockOffset`,
:class:`ClockDrift`, :class:`PhaseNoise`, :class:`Chain` and :class:`ScenarioChannel`.
Mars physics: :mod:`~modem.channel.geometry` (LMO passes), :mod:`~modem.channel.dust`
(storms, air mass, sky noise), :mod:`~modem.channel.radome`, :mod:`~modem.channel.oscillator`.
Scenarios: :func:`load_scenario` -> :class:`Scenario` (:mod:`~modem.channel.scenario`).

The scenario names are imported on first use (they need :mod:`modem.linkbudget`, which itself
uses this package's physics modules).
"""

from modem.channel.awgn import Awgn
from modem.channel.clock_offset import ClockDrift, ClockOffset
from modem.channel.impairments import CarrierOffset, Chain, Gain
from modem.channel.phase_noise import PRESETS as PHASE_NOISE_PRESETS
from modem.channel.phase_noise import PhaseNoise

_LAZY = {
    "Scenario": "modem.channel.scenario",
    "ScenarioError": "modem.channel.scenario",
    "ScenarioTruth": "modem.channel.scenario",
    "load_scenario": "modem.channel.scenario",
    "parse_scenario": "modem.channel.scenario",
    "scenario_names": "modem.channel.scenario",
    "ScenarioChannel": "modem.channel.scenario_channel",
}

__all__ = [
    "PHASE_NOISE_PRESETS",
    "Awgn",
    "CarrierOffset",
    "Chain",
    "ClockDrift",
    "ClockOffset",
    "Gain",
    "PhaseNoise",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modem.channel' has no attribute {name!r}")
