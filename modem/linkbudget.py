"""Link budgets between Mars surface terminals and a relay in low Mars orbit.

Terms (all in dB units; every line of :meth:`Budget.lines` carries its unit):

- antenna gain from an aperture: G = efficiency * 4 pi A / lambda^2 (dBi), or a fixed gain
  for the low-gain UHF antennas; EIRP = P_tx + G_tx - line and pointing losses (dBW);
- free-space loss 20 log10(4 pi d f / c) at the pass's slant range (dB);
- dust-storm loss k_band * tau * air mass (dB, :mod:`modem.channel.dust`), radome dust (dB),
  polarization and implementation losses (dB);
- receive G/T = G_rx - scan loss - 10 log10(T_sys) (dB/K); for the forward link (relay to
  surface) T_sys of the terminal includes the sky noise, which rises with the storm;
- C/N0 = EIRP - losses + G/T - 10 log10(k), k = 1.380649e-23 J/K (dBHz);
- Es/N0 = C/N0 - 10 log10(R_s) at a symbol rate R_s (dB); Shannon rate R_s log2(1 + Es/N0)
  (bit/s, the capacity of a channel of bandwidth R_s) and the wideband limit C/N0 / ln 2.

Terminal classes (:data:`TERMINALS`; ranges are those of the issue, defaults mid-range):
fixed habitat (Ka, 0.5-1.5 m^2 aperture, 5-20 W), rover (Ka 0.05-0.2 m^2 at 5 W, plus UHF 2 W),
EVA suit (UHF 1-5 W). The relay's receive side (:data:`RELAY`): at Ka an electronically
steered array of 0.01 m^2 (about 28 dBi) whose gain falls as cos^1.3 of the off-nadir scan
angle, T_sys 600 K (Mars fills the beam at about 210 K, plus the receiver); at UHF an
Electra-class quadrifilar helix of 3 dBi at nadir, T_sys 500 K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from modem.channel._block import check_real
from modem.channel.dust import KA_DB_PER_TAU, dust_attenuation_db, sky_noise_k
from modem.channel.geometry import MARS_RADIUS_M, SPEED_OF_LIGHT, free_space_loss_db

BOLTZMANN_DB = 10.0 * math.log10(1.380649e-23)  #: dBW/(K Hz), -228.60
#: default carrier of each band for the surface-to-relay (return) link, Hz
BAND_CARRIER_HZ = {"ka": 27.5e9, "x": 8.4e9, "uhf": 401.585625e6}
#: forward (relay-to-surface) carriers, Hz (Proximity-1 forward channel for UHF)
FORWARD_CARRIER_HZ = {"ka": 26.5e9, "x": 7.2e9, "uhf": 437.1e6}


def aperture_gain_db(area_m2, freq_hz, efficiency: float = 0.6) -> np.ndarray:
    """Antenna gain from its aperture, 10 log10(efficiency 4 pi A / lambda^2), dBi."""
    lam = SPEED_OF_LIGHT / np.asarray(freq_hz, dtype=float)
    return 10.0 * np.log10(efficiency * 4.0 * math.pi * np.asarray(area_m2, dtype=float) / lam**2)


@dataclass(frozen=True)
class Antenna:
    """An antenna: gain from an aperture (``area_m2``) or a fixed ``gain_dbi``.

    Parameters
    ----------
    area_m2 : float or None
        Physical aperture, m^2.
    gain_dbi : float or None
        Fixed boresight gain, dBi (used when ``area_m2`` is None).
    efficiency : float
        Aperture efficiency, (0, 1].
    scan_exponent : float
        Gain falls as cos(angle)^n off boresight (0: no fall), for the relay's nadir antennas.
    """

    area_m2: float | None = None
    gain_dbi: float | None = None
    efficiency: float = 0.6
    scan_exponent: float = 0.0

    def __post_init__(self):
        if (self.area_m2 is None) == (self.gain_dbi is None):
            raise ValueError("an Antenna needs exactly one of area_m2 and gain_dbi")
        if self.area_m2 is not None:
            check_real(self.area_m2, "area_m2", 0.0, 1e3, "m^2", lo_open=True)
        else:
            check_real(self.gain_dbi, "gain_dbi", -20.0, 80.0, "dBi")
        check_real(self.efficiency, "efficiency", 0.0, 1.0, lo_open=True)
        check_real(self.scan_exponent, "scan_exponent", 0.0, 10.0)

    def gain_db(self, freq_hz: float, off_boresight_deg=0.0) -> np.ndarray:
        """Gain toward ``off_boresight_deg``, dBi."""
        g = (aperture_gain_db(self.area_m2, freq_hz, self.efficiency) if self.area_m2 is not None
             else np.float64(self.gain_dbi))
        return g - self.scan_loss_db(off_boresight_deg)

    def scan_loss_db(self, off_boresight_deg) -> np.ndarray:
        """Loss -10 n log10(cos(angle)) off boresight, dB (angles clipped at 85 deg)."""
        a = np.radians(np.clip(np.asarray(off_boresight_deg, dtype=float), 0.0, 85.0))
        return -10.0 * self.scan_exponent * np.log10(np.cos(a))


@dataclass(frozen=True)
class Terminal:
    """A surface terminal on one band.

    Parameters
    ----------
    name : str
        Terminal class ("fixed", "rover", "eva").
    band : {"ka", "x", "uhf"}
    tx_power_w : float
        Transmitter power, W.
    antenna : Antenna
    line_loss_db, pointing_loss_db : float
        Feed/cable loss and pointing loss, dB.
    rx_noise_k : float
        Receiver noise temperature for the forward link, K (sky noise is added).
    power_range_w, area_range_m2 : (float, float)
        The class's allowed ranges (the issue's figures); overrides outside are refused.
    """

    name: str
    band: str
    tx_power_w: float
    antenna: Antenna
    line_loss_db: float = 1.0
    pointing_loss_db: float = 0.0
    rx_noise_k: float = 150.0
    power_range_w: tuple = (0.1, 100.0)
    area_range_m2: tuple = (0.0, 100.0)

    def __post_init__(self):
        lo, hi = self.power_range_w
        check_real(self.tx_power_w, f"{self.name} {self.band} tx_power_w", lo, hi, "W")
        if self.antenna.area_m2 is not None:
            lo, hi = self.area_range_m2
            check_real(self.antenna.area_m2, f"{self.name} {self.band} aperture_m2", lo, hi, "m^2")
        check_real(self.line_loss_db, "line_loss_db", 0.0, 30.0, "dB")
        check_real(self.pointing_loss_db, "pointing_loss_db", 0.0, 30.0, "dB")
        check_real(self.rx_noise_k, "rx_noise_k", 1.0, 1e5, "K")

    def with_overrides(self, tx_power_w: float | None = None, aperture_m2: float | None = None) -> Terminal:
        """The same terminal with another power or aperture (checked against the class ranges)."""
        t = self
        if tx_power_w is not None:
            t = replace(t, tx_power_w=tx_power_w)
        if aperture_m2 is not None:
            if t.antenna.area_m2 is None:
                raise ValueError(f"the {t.name} terminal's {t.band} antenna has a fixed gain, "
                                 "not an aperture")
            t = replace(t, antenna=replace(t.antenna, area_m2=aperture_m2))
        return t


@dataclass(frozen=True)
class RelayRadio:
    """The relay orbiter's radio on one band: receive side (return link) and transmitter (forward).

    Parameters
    ----------
    band : str
    antenna : Antenna
        Nadir-pointing (or nadir-referenced) antenna; ``scan_exponent`` models the gain toward
        a terminal off nadir.
    noise_temp_k : float
        Receive system noise temperature, K (Mars in the beam plus the receiver).
    tx_power_w : float
        Forward-link transmitter power, W.
    """

    band: str
    antenna: Antenna
    noise_temp_k: float
    tx_power_w: float

    def g_over_t_db(self, freq_hz: float, off_nadir_deg=0.0) -> np.ndarray:
        """G/T toward a terminal ``off_nadir_deg`` from nadir, dB/K."""
        return self.antenna.gain_db(freq_hz, off_nadir_deg) - 10.0 * math.log10(self.noise_temp_k)


def _terminal(name, band, power, antenna, power_range, area_range=(0.0, 100.0), **kw) -> Terminal:
    return Terminal(name, band, power, antenna, power_range_w=power_range, area_range_m2=area_range, **kw)


#: (class, band) -> Terminal: the issue's terminal classes, defaults mid-range
TERMINALS: dict[tuple[str, str], Terminal] = {
    ("fixed", "ka"): _terminal("fixed", "ka", 10.0, Antenna(area_m2=1.0, efficiency=0.6), (5.0, 20.0),
                               (0.5, 1.5), line_loss_db=1.0, pointing_loss_db=1.0, rx_noise_k=150.0),
    ("rover", "ka"): _terminal("rover", "ka", 5.0, Antenna(area_m2=0.1, efficiency=0.6), (1.0, 20.0),
                               (0.05, 0.2), line_loss_db=1.0, pointing_loss_db=1.0, rx_noise_k=200.0),
    ("rover", "uhf"): _terminal("rover", "uhf", 2.0, Antenna(gain_dbi=1.0), (0.5, 10.0),
                                line_loss_db=1.0, rx_noise_k=300.0),
    ("eva", "uhf"): _terminal("eva", "uhf", 2.0, Antenna(gain_dbi=0.0), (1.0, 5.0),
                              line_loss_db=1.5, pointing_loss_db=2.0, rx_noise_k=400.0),
}

#: band -> the relay's radio
RELAY: dict[str, RelayRadio] = {
    "ka": RelayRadio("ka", Antenna(area_m2=0.01, efficiency=0.65, scan_exponent=1.3), 600.0, 20.0),
    "uhf": RelayRadio("uhf", Antenna(gain_dbi=3.0, scan_exponent=1.0), 500.0, 10.0),
}


def terminal(name: str, band: str | None = None) -> Terminal:
    """The terminal class ``name`` on ``band`` (default: its first band)."""
    bands = [b for (n, b) in TERMINALS if n == name]
    if not bands:
        names = sorted({n for n, _ in TERMINALS})
        raise ValueError(f"terminal must be one of {', '.join(map(repr, names))}; got {name!r}")
    band = bands[0] if band is None else band
    if band not in bands:
        raise ValueError(f"the {name} terminal has band(s) {', '.join(map(repr, bands))}; got {band!r}")
    return TERMINALS[(name, band)]


def slant_geometry(elevation_deg, altitude_m: float = 400e3, radius_m: float = MARS_RADIUS_M):
    """Slant range (m) and off-nadir angle at the relay (deg) for an elevation (deg)."""
    el = np.radians(np.asarray(elevation_deg, dtype=float))
    r = radius_m + altitude_m
    d = np.sqrt(r * r - (radius_m * np.cos(el)) ** 2) - radius_m * np.sin(el)
    eta = np.degrees(np.arcsin(radius_m * np.cos(el) / r))
    return d, eta


@dataclass(frozen=True)
class LinkBudget:
    """A surface-relay link: terminal, relay radio, carrier, direction, fixed losses.

    Parameters
    ----------
    terminal : Terminal
    relay : RelayRadio
    freq_hz : float
        Carrier, Hz.
    direction : {"return", "forward"}
        "return": terminal transmits, relay receives (the science link); "forward": relay to
        terminal, whose noise includes the storm's sky noise.
    ka_db_per_tau : float
        Dust coefficient at Ka (dB per unit tau per air mass; see :mod:`modem.channel.dust`).
    polarization_loss_db, implementation_loss_db : float
        Fixed losses, dB.
    """

    terminal: Terminal
    relay: RelayRadio
    freq_hz: float
    direction: str = "return"
    ka_db_per_tau: float = KA_DB_PER_TAU
    polarization_loss_db: float = 0.5
    implementation_loss_db: float = 1.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.direction not in ("return", "forward"):
            raise ValueError(f"direction must be 'return' or 'forward'; got {self.direction!r}")
        check_real(self.freq_hz, "freq_hz", 1e6, 1e12, "Hz")
        check_real(self.polarization_loss_db, "polarization_loss_db", 0.0, 30.0, "dB")
        check_real(self.implementation_loss_db, "implementation_loss_db", 0.0, 30.0, "dB")
        check_real(self.ka_db_per_tau, "ka_db_per_tau", 0.0, 100.0, "dB per unit tau")

    @classmethod
    def for_terminal(cls, name: str, band: str | None = None, freq_hz: float | None = None,
                     tx_power_w: float | None = None, aperture_m2: float | None = None,
                     direction: str = "return", **kw) -> LinkBudget:
        """The budget of a terminal class (:data:`TERMINALS`) to the relay (:data:`RELAY`)."""
        t = terminal(name, band).with_overrides(tx_power_w, aperture_m2)
        carriers = BAND_CARRIER_HZ if direction == "return" else FORWARD_CARRIER_HZ
        f = carriers[t.band] if freq_hz is None else freq_hz
        return cls(t, RELAY[t.band], f, direction, **kw)

    def evaluate(self, slant_range_m, elevation_deg, off_nadir_deg, tau=0.0, radome_db=0.0,
                 symbol_rate_hz: float | None = None) -> dict:
        """Every term of the budget (arrays broadcast over the inputs).

        Parameters
        ----------
        slant_range_m, elevation_deg, off_nadir_deg : float or ndarray
            Geometry (m, deg, deg).
        tau : float or ndarray
            Dust optical depth.
        radome_db : float or ndarray
            Radome dust loss, dB.
        symbol_rate_hz : float, optional
            For Es/N0 and the Shannon rate.

        Returns
        -------
        dict of str -> float or ndarray
            Keys: tx_power_dbw, tx_gain_dbi, tx_losses_db, eirp_dbw, fsl_db, dust_db, radome_db,
            polarization_db, implementation_db, rx_gain_dbi, system_noise_k, g_over_t_db,
            cn0_dbhz, shannon_limit_bps; with a symbol rate also symbol_rate_db, esn0_db,
            shannon_rate_bps.
        """
        t, relay, f = self.terminal, self.relay, self.freq_hz
        dust = dust_attenuation_db(tau, elevation_deg, t.band, self.ka_db_per_tau, f)
        out = {}
        if self.direction == "return":
            out["tx_power_dbw"] = 10.0 * math.log10(t.tx_power_w)
            out["tx_gain_dbi"] = t.antenna.gain_db(f)
            out["tx_losses_db"] = t.line_loss_db + t.pointing_loss_db
            out["rx_gain_dbi"] = relay.antenna.gain_db(f, off_nadir_deg)
            out["system_noise_k"] = np.broadcast_to(np.float64(relay.noise_temp_k), np.shape(dust)).copy()
        else:
            out["tx_power_dbw"] = 10.0 * math.log10(relay.tx_power_w)
            out["tx_gain_dbi"] = relay.antenna.gain_db(f, off_nadir_deg)
            out["tx_losses_db"] = 1.0
            out["rx_gain_dbi"] = t.antenna.gain_db(f) - t.line_loss_db - t.pointing_loss_db
            out["system_noise_k"] = t.rx_noise_k + sky_noise_k(dust, t.band)
        out["eirp_dbw"] = out["tx_power_dbw"] + out["tx_gain_dbi"] - out["tx_losses_db"]
        out["fsl_db"] = free_space_loss_db(slant_range_m, f)
        out["dust_db"] = dust
        out["radome_db"] = np.asarray(radome_db, dtype=float)
        out["polarization_db"] = self.polarization_loss_db
        out["implementation_db"] = self.implementation_loss_db
        out["g_over_t_db"] = out["rx_gain_dbi"] - 10.0 * np.log10(out["system_noise_k"])
        losses = dust + out["radome_db"] + self.polarization_loss_db + self.implementation_loss_db
        out["cn0_dbhz"] = out["eirp_dbw"] - out["fsl_db"] - losses + out["g_over_t_db"] - BOLTZMANN_DB
        out["shannon_limit_bps"] = 10.0 ** (out["cn0_dbhz"] / 10.0) / math.log(2.0)
        if symbol_rate_hz is not None:
            rs = check_real(symbol_rate_hz, "symbol_rate_hz", 1.0, 1e12, "symbols/s")
            out["symbol_rate_db"] = 10.0 * math.log10(rs)
            out["esn0_db"] = out["cn0_dbhz"] - out["symbol_rate_db"]
            out["shannon_rate_bps"] = rs * np.log2(1.0 + 10.0 ** (out["esn0_db"] / 10.0))
        return out


@dataclass(frozen=True)
class Budget:
    """One evaluated budget (scalars) with its inputs, printable as a table."""

    link: LinkBudget
    elevation_deg: float
    slant_range_m: float
    off_nadir_deg: float
    tau: float
    radome_db: float
    symbol_rate_hz: float
    terms: dict

    @property
    def esn0_db(self) -> float:
        """Es/N0 at the symbol rate, dB."""
        return float(self.terms["esn0_db"])

    @property
    def cn0_dbhz(self) -> float:
        """C/N0, dBHz."""
        return float(self.terms["cn0_dbhz"])

    def lines(self) -> list[tuple[str, float, str]]:
        """(label, value, unit) rows, top to bottom."""
        k, lk = self.terms, self.link
        ret = lk.direction == "return"
        tx, rx = ("terminal", "relay") if ret else ("relay", "terminal")
        rows = [
            ("carrier frequency", lk.freq_hz / 1e9, "GHz"),
            ("elevation", self.elevation_deg, "deg"),
            ("slant range", self.slant_range_m / 1e3, "km"),
            ("relay off-nadir angle", self.off_nadir_deg, "deg"),
            ("dust optical depth tau", self.tau, "-"),
            (f"{tx} transmit power", k["tx_power_dbw"], "dBW"),
            (f"{tx} antenna gain", k["tx_gain_dbi"], "dBi"),
            (f"{tx} line + pointing losses", -k["tx_losses_db"], "dB"),
            ("EIRP", k["eirp_dbw"], "dBW"),
            ("free-space loss", -k["fsl_db"], "dB"),
            ("dust-storm loss", -k["dust_db"], "dB"),
            ("radome dust loss", -k["radome_db"], "dB"),
            ("polarization loss", -k["polarization_db"], "dB"),
            ("implementation loss", -k["implementation_db"], "dB"),
            (f"{rx} receive gain", k["rx_gain_dbi"], "dBi"),
            (f"{rx} system noise temperature", k["system_noise_k"], "K"),
            (f"{rx} G/T", k["g_over_t_db"], "dB/K"),
            ("Boltzmann constant", BOLTZMANN_DB, "dBW/K/Hz"),
            ("C/N0", k["cn0_dbhz"], "dBHz"),
            ("symbol rate", self.symbol_rate_hz / 1e6, "Msym/s"),
            ("Es/N0", k["esn0_db"], "dB"),
            ("Shannon rate at the symbol rate", k["shannon_rate_bps"] / 1e6, "Mbit/s"),
            ("Shannon limit (unlimited bandwidth)", k["shannon_limit_bps"] / 1e6, "Mbit/s"),
        ]
        return [(a, float(b), c) for a, b, c in rows]

    def table(self) -> str:
        """The budget as an aligned text table, one line per term with its unit."""
        rows = self.lines()
        w = max(len(r[0]) for r in rows)
        head = (f"{self.link.direction} link, {self.link.terminal.name} terminal, "
                f"{self.link.terminal.band.upper()} band")
        out = [head, "-" * len(head)]
        for label, value, unit in rows:
            out.append(f"{label:<{w}}  {value:>12.3f}  {unit}")
        return "\n".join(out)


def budget_at_elevation(link: LinkBudget, elevation_deg: float, tau: float = 0.0, symbol_rate_hz: float = 1e6,
                        altitude_m: float = 400e3, radome_db: float = 0.0) -> Budget:
    """Evaluate ``link`` for a relay at ``elevation_deg`` (deg) in a circular orbit of ``altitude_m``."""
    el = check_real(elevation_deg, "elevation_deg", 0.0, 90.0, "deg")
    tau = check_real(tau, "tau", 0.0, 20.0)
    check_real(altitude_m, "altitude_m", 100e3, 20000e3, "m")
    d, eta = slant_geometry(el, altitude_m)
    terms = link.evaluate(d, el, eta, tau, radome_db, symbol_rate_hz)
    return Budget(link, el, float(d), float(eta), tau, float(radome_db), float(symbol_rate_hz), terms)
