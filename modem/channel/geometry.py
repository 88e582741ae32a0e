"""Pass geometry of a relay in a circular low Mars orbit seen from a terminal on the surface.

Model: spherical Mars of mean radius :data:`MARS_RADIUS_M`, point-mass gravity
:data:`MARS_GM` (circular speed v = sqrt(GM / r), r = R + altitude), Mars's rotation
ignored (the surface moves at up to 241 m/s at the equator, 7 % of the orbital speed at
400 km: it stretches or shortens a pass by a few percent and shifts the Doppler by at most
about 7 %; the shape of a pass is kept). A pass is fixed by its highest elevation: the
terminal lies a central angle beta from the ground track, and the central angle between
terminal and sub-relay point follows cos(gamma) = cos(beta) cos(omega (t - t_mid)).

- slant range d = sqrt(R^2 + r^2 - 2 R r cos(gamma))
- elevation el = atan2(r cos(gamma) - R, r sin(gamma))
- range rate d' = R r omega cos(beta) sin(theta) / d, theta = omega (t - t_mid)
- range acceleration d'' = (R r omega^2 cos(beta) cos(theta) - d'^2) / d
- Doppler f_D = -f_c d' / c, Doppler rate -f_c d'' / c
- free-space loss 20 log10(4 pi d f / c)

At 400 km: horizon range 1694.6 km, FSL 174.0 dB (400 km) and 186.6 dB (1696 km) at 30 GHz,
v = 3362 m/s, peak range rate R v / r = 3007 m/s at the horizon (Doppler +-300.7 kHz at
30 GHz, +-4.03 kHz at 401.6 MHz), peak Doppler rate at the zenith of an overhead pass
f_c R v^2 / (c r h) = 2.53 kHz/s at 30 GHz (the flat-surface estimate v^2 / h gives
2.83 kHz/s), pass above 0 deg 1045 s, above 10 deg 718 s (overhead passes).

Sources: Mars mean radius 3389.5 km and GM 4.2828e13 m^3/s^2 (NASA Mars Fact Sheet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modem.channel._block import check_real

MARS_RADIUS_M = 3389.5e3  #: mean (volumetric) radius, m (NASA Mars Fact Sheet)
MARS_GM = 4.2828e13  #: gravitational parameter, m^3/s^2 (NASA Mars Fact Sheet)
SOL_S = 88775.244  #: mean solar day, s
SPEED_OF_LIGHT = 299_792_458.0  #: m/s


def free_space_loss_db(distance_m, freq_hz) -> np.ndarray:
    """Free-space path loss 20 log10(4 pi d f / c), dB.

    Parameters
    ----------
    distance_m : float or ndarray
        Distance, m (> 0).
    freq_hz : float or ndarray
        Carrier frequency, Hz (> 0).
    """
    d = np.asarray(distance_m, dtype=float)
    f = np.asarray(freq_hz, dtype=float)
    if np.any(d <= 0) or np.any(f <= 0):
        raise ValueError("distance_m and freq_hz must be > 0")
    return 20.0 * np.log10(4.0 * math.pi * d * f / SPEED_OF_LIGHT)


def central_angle_for_elevation(elevation_deg, radius_m: float, orbit_radius_m: float) -> np.ndarray:
    """Central angle (rad) between terminal and sub-relay point when the relay is at ``elevation_deg``."""
    el = np.radians(np.asarray(elevation_deg, dtype=float))
    return np.pi / 2 - el - np.arcsin(radius_m * np.cos(el) / orbit_radius_m)


@dataclass(frozen=True)
class PassState:
    """Geometry of a pass at some times (arrays of the same shape as the times).

    Attributes
    ----------
    t_s : ndarray
        Time from the start of the pass (rise above the elevation mask), s.
    elevation_deg, slant_range_m, range_rate_m_s, range_accel_m_s2 : ndarray
        Elevation (deg), distance (m), its rate (m/s, positive receding) and acceleration (m/s^2).
    off_nadir_deg : ndarray
        Angle between the relay's nadir and the terminal, deg (for the relay antenna's pattern).
    visible : ndarray of bool
        Elevation at or above the mask.
    """

    t_s: np.ndarray
    elevation_deg: np.ndarray
    slant_range_m: np.ndarray
    range_rate_m_s: np.ndarray
    range_accel_m_s2: np.ndarray
    off_nadir_deg: np.ndarray
    visible: np.ndarray

    def doppler_hz(self, freq_hz: float) -> np.ndarray:
        """Doppler shift -f d'/c, Hz (positive while the relay approaches)."""
        return -freq_hz * self.range_rate_m_s / SPEED_OF_LIGHT

    def doppler_rate_hz_per_s(self, freq_hz: float) -> np.ndarray:
        """Doppler rate -f d''/c, Hz/s."""
        return -freq_hz * self.range_accel_m_s2 / SPEED_OF_LIGHT

    def free_space_loss_db(self, freq_hz: float) -> np.ndarray:
        """Free-space loss at the slant range, dB."""
        return free_space_loss_db(self.slant_range_m, freq_hz)


@dataclass(frozen=True)
class CircularPass:
    """One pass of a relay in a circular orbit over a terminal (Mars rotation ignored).

    Parameters
    ----------
    altitude_m : float
        Orbit altitude above the mean radius, m (100 km .. 20000 km); default 400 km (LMO).
    max_elevation_deg : float
        Highest elevation of the pass, deg (must exceed the mask; 90: overhead).
    min_elevation_deg : float
        Elevation mask, deg (0 .. 60): the pass runs from rise to set across it.
    radius_m, gm : float
        Planet radius (m) and gravitational parameter (m^3/s^2).

    Notes
    -----
    Time t = 0 is the rise across the mask, the midpoint (highest elevation) is at
    :attr:`duration_s` / 2.
    """

    altitude_m: float = 400e3
    max_elevation_deg: float = 90.0
    min_elevation_deg: float = 10.0
    radius_m: float = MARS_RADIUS_M
    gm: float = MARS_GM

    def __post_init__(self):
        check_real(self.altitude_m, "altitude_m", 100e3, 20000e3, "m")
        check_real(self.min_elevation_deg, "min_elevation_deg", 0.0, 60.0, "deg")
        check_real(self.max_elevation_deg, "max_elevation_deg", self.min_elevation_deg, 90.0, "deg",
                   lo_open=True)
        check_real(self.radius_m, "radius_m", 1e3, 1e8, "m")
        check_real(self.gm, "gm", 1.0, 1e20, "m^3/s^2")

    @property
    def orbit_radius_m(self) -> float:
        """Orbit radius R + altitude, m."""
        return self.radius_m + self.altitude_m

    @property
    def speed_m_s(self) -> float:
        """Circular orbital speed sqrt(GM / r), m/s."""
        return math.sqrt(self.gm / self.orbit_radius_m)

    @property
    def angular_rate_rad_s(self) -> float:
        """Orbital angular rate v / r, rad/s."""
        return self.speed_m_s / self.orbit_radius_m

    @property
    def period_s(self) -> float:
        """Orbital period, s."""
        return 2.0 * math.pi / self.angular_rate_rad_s

    @property
    def cross_track_rad(self) -> float:
        """Central angle beta between the terminal and the ground track, rad."""
        return float(central_angle_for_elevation(self.max_elevation_deg, self.radius_m, self.orbit_radius_m))

    @property
    def duration_s(self) -> float:
        """Time above the elevation mask, s."""
        r = self.orbit_radius_m
        g_mask = float(central_angle_for_elevation(self.min_elevation_deg, self.radius_m, r))
        c = math.cos(g_mask) / math.cos(self.cross_track_rad)
        theta = math.acos(min(1.0, c))
        return 2.0 * theta / self.angular_rate_rad_s

    def state(self, t_s) -> PassState:
        """Geometry at times ``t_s`` (s from the rise; any shape; outside the pass too)."""
        t = np.asarray(t_s, dtype=float)
        R, r, w = self.radius_m, self.orbit_radius_m, self.angular_rate_rad_s
        cb = math.cos(self.cross_track_rad)
        theta = w * (t - self.duration_s / 2.0)
        cos_g = np.clip(cb * np.cos(theta), -1.0, 1.0)
        sin_g = np.sqrt(1.0 - cos_g**2)
        d = np.sqrt(R * R + r * r - 2.0 * R * r * cos_g)
        el = np.degrees(np.arctan2(r * cos_g - R, r * sin_g))
        rate = R * r * w * cb * np.sin(theta) / d
        accel = (R * r * w * w * cb * np.cos(theta) - rate**2) / d
        # off-nadir angle at the relay: sin(eta) = R sin(gamma) / d
        eta = np.degrees(np.arcsin(np.clip(R * sin_g / d, -1.0, 1.0)))
        return PassState(t, el, d, rate, accel, eta, el >= self.min_elevation_deg - 1e-9)
