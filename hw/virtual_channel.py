"""The channel model between the virtual Pluto's TX and RX ports, built from a few parameters.

:class:`ChannelSpec` names the impairments (AWGN at an Es/N0, carrier offset and Doppler
rate, sample-clock offset, phase noise, or a whole Mars pass scenario) and
:meth:`ChannelSpec.factory` turns them into the ``channel(sample_rate_hz) -> block`` that
:class:`hw.virtual_pluto.VirtualPluto` calls at start and after each sample-rate change.
The blocks are :mod:`modem.channel`'s; they see the signal at DAC full scale (1.0 = the
12-bit DAC's limit; pyadi-iio's +-2^14 convention is 0.5).

AWGN needs the signal's mean power to set N0 from Es/N0: give ``signal_power`` (per complex
sample, at DAC full scale), or leave it None to measure it once on the first TX samples
that are not silent (the DAC sends exact zeros when idle); no noise is added before that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class _AutoLevelAwgn:
    """AWGN whose signal power is measured on the first non-silent chunk, then fixed."""

    def __init__(self, esn0_db: float, sps: float, seed):
        self.esn0_db = esn0_db
        self.sps = sps
        self.seed = seed
        self.block = None
        self.signal_power: float | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.block is None:
            live = x[x != 0]
            if live.size == 0:
                return x
            from modem.channel import Awgn

            self.signal_power = float(np.mean(np.abs(live) ** 2))
            self.block = Awgn(
                self.esn0_db, samples_per_symbol=self.sps, signal_power=self.signal_power, seed=self.seed
            )
        return self.block(x)

    def reset(self) -> None:
        self.block = None
        self.signal_power = None


@dataclass(frozen=True)
class ChannelSpec:
    """Impairments of the virtual air (all optional; the default is a perfect cable).

    Attributes
    ----------
    esn0_db : float or None
        AWGN at this Es/N0 (dB); None: no noise.
    samples_per_symbol : float
        Samples per symbol of the transmitted signal (for Es/N0), >= 1.
    signal_power : float or None
        Mean TX power per complex sample at DAC full scale; None: measured (module docstring).
    cfo_hz : float
        Carrier frequency offset (Hz).
    doppler_rate_hz_per_s : float
        Linear drift of the carrier offset (Hz/s).
    clock_ppm : float
        Receiver sample-clock offset (ppm).
    phase_noise : str or None
        Phase-noise preset of :class:`modem.channel.PhaseNoise` ("tcxo", "ocxo", "pluto").
    scenario : str or None
        A Mars pass scenario (:func:`modem.channel.load_scenario` name or path) applied by
        :class:`modem.channel.ScenarioChannel`; replaces the fixed impairments above.
    link : str
        Scenario link name.
    symbol_rate_hz : float or None
        Scenario: symbol rate of the signal (Hz); default sample rate / samples_per_symbol.
    time_scale : float
        Scenario seconds per stream second (compresses a pass into a short run).
    seed : int or None
        Seed of the noise generators.
    """

    esn0_db: float | None = None
    samples_per_symbol: float = 2.0
    signal_power: float | None = None
    cfo_hz: float = 0.0
    doppler_rate_hz_per_s: float = 0.0
    clock_ppm: float = 0.0
    phase_noise: str | None = None
    scenario: str | None = None
    link: str = "ka"
    symbol_rate_hz: float | None = None
    time_scale: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        for name in ("esn0_db", "signal_power", "symbol_rate_hz"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite; got {v}")
        for name in ("cfo_hz", "doppler_rate_hz_per_s", "clock_ppm", "time_scale", "samples_per_symbol"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite; got {getattr(self, name)}")
        if self.samples_per_symbol < 1:
            raise ValueError(f"samples_per_symbol must be >= 1; got {self.samples_per_symbol}")
        if self.signal_power is not None and self.signal_power <= 0:
            raise ValueError(f"signal_power must be > 0 (mean power per sample); got {self.signal_power}")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0; got {self.time_scale}")
        if abs(self.clock_ppm) > 1000:
            raise ValueError(f"clock_ppm must be in [-1000, 1000] ppm; got {self.clock_ppm}")

    @property
    def is_identity(self) -> bool:
        """True when the spec adds no impairment at all."""
        return (
            self.esn0_db is None
            and self.scenario is None
            and not self.cfo_hz
            and not self.doppler_rate_hz_per_s
            and not self.clock_ppm
            and self.phase_noise is None
        )

    def describe(self) -> str:
        """One line for logs: the impairments in force."""
        if self.is_identity:
            return "no impairments"
        if self.scenario:
            return f"scenario {self.scenario} ({self.link}, x{self.time_scale:g} time)"
        parts = []
        if self.esn0_db is not None:
            parts.append(f"Es/N0 {self.esn0_db:g} dB at {self.samples_per_symbol:g} samples/symbol")
        if self.cfo_hz or self.doppler_rate_hz_per_s:
            parts.append(f"CFO {self.cfo_hz:g} Hz {self.doppler_rate_hz_per_s:+g} Hz/s")
        if self.clock_ppm:
            parts.append(f"clock {self.clock_ppm:+g} ppm")
        if self.phase_noise:
            parts.append(f"phase noise {self.phase_noise}")
        return ", ".join(parts)

    def build(self, sample_rate_hz: float):
        """The channel block for this sample rate (None for the identity)."""
        if self.is_identity:
            return None
        if not math.isfinite(sample_rate_hz) or sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be > 0; got {sample_rate_hz}")
        import modem.channel as mc

        if self.scenario:
            scenario = mc.load_scenario(self.scenario)
            sym_rate = self.symbol_rate_hz or sample_rate_hz / self.samples_per_symbol
            return mc.ScenarioChannel(
                scenario,
                link=self.link,
                symbol_rate_hz=sym_rate,
                samples_per_symbol=self.samples_per_symbol,
                time_scale=self.time_scale,
                seed=self.seed,
            )
        blocks = []
        if self.cfo_hz or self.doppler_rate_hz_per_s:
            blocks.append(
                mc.CarrierOffset(self.cfo_hz, sample_rate_hz, rate_hz_per_s=self.doppler_rate_hz_per_s)
            )
        if self.phase_noise:
            seed = None if self.seed is None else self.seed + 1
            blocks.append(mc.PhaseNoise.preset(self.phase_noise, sample_rate_hz, seed))
        if self.clock_ppm:
            blocks.append(mc.ClockOffset(self.clock_ppm, sample_rate_hz=sample_rate_hz))
        if self.esn0_db is not None:
            if self.signal_power is None:
                blocks.append(_AutoLevelAwgn(self.esn0_db, self.samples_per_symbol, self.seed))
            else:
                blocks.append(
                    mc.Awgn(
                        self.esn0_db,
                        samples_per_symbol=self.samples_per_symbol,
                        signal_power=self.signal_power,
                        seed=self.seed,
                    )
                )
        return blocks[0] if len(blocks) == 1 else _Chain(blocks)

    def factory(self):
        """The ``channel(sample_rate_hz) -> block`` a VirtualPluto takes; None for the identity."""
        return None if self.is_identity else self.build


class _Chain:
    """Blocks in series (kept local: the auto-level AWGN is not a :mod:`modem.channel` block)."""

    def __init__(self, blocks):
        self.blocks = list(blocks)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for b in self.blocks:
            x = b(x)
        return x

    def reset(self) -> None:
        for b in self.blocks:
            b.reset()
