"""A terminal's local oscillator on Mars: initial offset, diurnal temperature drift, phase noise.

The ambient temperature follows the sol: T_amb(t) = mean + swing cos(2 pi (h(t) - h_warm) / 24)
between -130 C and +30 C by default (the range of the issue; Mars surface temperatures at low
latitudes span roughly -100 to +20 C, air colder than the ground), h the local solar time in
Mars hours (24 per sol) and h_warm = 14 h. A heated oscillator holds its crystal near a set
point: its internal temperature swings by the ambient swing divided by the enclosure's thermal
``regulation`` factor. The frequency offset is

    ppm(t) = initial_ppm + temp_coeff_ppm_per_c * (T_int(t) - setpoint_c) + aging_ppm_per_sol * t / sol

and the same reference clocks the carrier and the symbols, so the carrier offset is
ppm * 1e-6 * f_c and the symbol clock runs fast by the same ppm.

Classes (:data:`OSCILLATORS`, representative values, not one part's data sheet):

- ``tcxo``: heated TCXO (+-0.5 ppm over its -40..85 C range: 0.005 ppm/C), held at -20 C with
  a regulation of 20, 0.5 ppm initial error after calibration; phase noise preset ``tcxo``.
- ``ocxo``: oven oscillator (10 ppb over 100 C: 1e-4 ppm/C), regulation 100, 0.05 ppm initial.
- ``pluto``: an ADALM-PLUTO's 40 MHz crystal (+-25 ppm; 10 ppm initial here), 0.2 ppm/C in an
  electronics box held at 0 C with a regulation of 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modem.channel._block import check_real
from modem.channel.geometry import SOL_S
from modem.channel.phase_noise import PRESETS as PHASE_NOISE_PRESETS

#: class -> keyword defaults of :class:`LocalOscillator`
OSCILLATORS = {
    "tcxo": dict(initial_ppm=0.5, temp_coeff_ppm_per_c=0.005, setpoint_c=-20.0, regulation=20.0,
                 phase_noise="tcxo"),
    "ocxo": dict(initial_ppm=0.05, temp_coeff_ppm_per_c=1e-4, setpoint_c=60.0, regulation=100.0,
                 phase_noise="ocxo"),
    "pluto": dict(initial_ppm=10.0, temp_coeff_ppm_per_c=0.2, setpoint_c=0.0, regulation=5.0,
                  phase_noise="pluto"),
}


@dataclass(frozen=True)
class LocalOscillator:
    """Frequency offset and phase-noise class of a terminal's reference oscillator.

    Parameters
    ----------
    initial_ppm : float
        Offset at the set point, ppm (+-100).
    temp_coeff_ppm_per_c : float
        Frequency slope against the crystal's temperature, ppm/C (0 .. 10).
    setpoint_c : float
        Temperature the heater holds at mean ambient, C.
    regulation : float
        Ambient swing over internal swing (>= 1; 1: no heater).
    aging_ppm_per_sol : float
        Linear aging, ppm/sol.
    ambient_min_c, ambient_max_c : float
        Diurnal ambient range, C (default -130 .. +30).
    local_time_h : float
        Local solar time at scenario t = 0, Mars hours (0 .. 24).
    warmest_h : float
        Local time of the ambient maximum, Mars hours.
    phase_noise : str
        Phase-noise preset (:data:`modem.channel.phase_noise.PRESETS`).
    """

    initial_ppm: float = 0.5
    temp_coeff_ppm_per_c: float = 0.005
    setpoint_c: float = -20.0
    regulation: float = 20.0
    aging_ppm_per_sol: float = 0.0
    ambient_min_c: float = -130.0
    ambient_max_c: float = 30.0
    local_time_h: float = 14.0
    warmest_h: float = 14.0
    phase_noise: str = "tcxo"

    def __post_init__(self):
        check_real(self.initial_ppm, "initial_ppm", -100.0, 100.0, "ppm")
        check_real(self.temp_coeff_ppm_per_c, "temp_coeff_ppm_per_c", 0.0, 10.0, "ppm/C")
        check_real(self.setpoint_c, "setpoint_c", -150.0, 100.0, "C")
        check_real(self.regulation, "regulation", 1.0, 1e6)
        check_real(self.aging_ppm_per_sol, "aging_ppm_per_sol", -1.0, 1.0, "ppm/sol")
        check_real(self.ambient_min_c, "ambient_min_c", -150.0, 50.0, "C")
        check_real(self.ambient_max_c, "ambient_max_c", self.ambient_min_c, 50.0, "C")
        check_real(self.local_time_h, "local_time_h", 0.0, 24.0, "h")
        check_real(self.warmest_h, "warmest_h", 0.0, 24.0, "h")
        if self.phase_noise not in PHASE_NOISE_PRESETS:
            raise ValueError(f"phase_noise must be one of {', '.join(map(repr, PHASE_NOISE_PRESETS))}; "
                             f"got {self.phase_noise!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> LocalOscillator:
        """An oscillator class of :data:`OSCILLATORS`, with fields overridden by keyword."""
        if name not in OSCILLATORS:
            raise ValueError(f"oscillator must be one of {', '.join(map(repr, OSCILLATORS))}; got {name!r}")
        return cls(**{**OSCILLATORS[name], **overrides})

    def _phase(self, t):
        hours = self.local_time_h + 24.0 * np.asarray(t, dtype=float) / SOL_S
        return 2.0 * math.pi * (hours - self.warmest_h) / 24.0

    def ambient_c(self, t_s) -> np.ndarray:
        """Ambient temperature at scenario times, C."""
        mean = 0.5 * (self.ambient_min_c + self.ambient_max_c)
        swing = 0.5 * (self.ambient_max_c - self.ambient_min_c)
        return mean + swing * np.cos(self._phase(t_s))

    def internal_c(self, t_s) -> np.ndarray:
        """Crystal temperature, C."""
        mean = 0.5 * (self.ambient_min_c + self.ambient_max_c)
        return self.setpoint_c + (self.ambient_c(t_s) - mean) / self.regulation

    def ppm(self, t_s) -> np.ndarray:
        """Frequency offset at scenario times, ppm."""
        t = np.asarray(t_s, dtype=float)
        return (self.initial_ppm + self.temp_coeff_ppm_per_c * (self.internal_c(t) - self.setpoint_c)
                + self.aging_ppm_per_sol * t / SOL_S)

    def ppm_rate(self, t_s) -> np.ndarray:
        """Rate of change of the offset, ppm/s."""
        swing = 0.5 * (self.ambient_max_c - self.ambient_min_c)
        dtemp = -swing * np.sin(self._phase(t_s)) * 2.0 * math.pi / SOL_S / self.regulation
        return self.temp_coeff_ppm_per_c * dtemp + self.aging_ppm_per_sol / SOL_S
