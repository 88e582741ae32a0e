"""Scenarios: pass geometry, dust storm, radome and oscillator on one clock, loaded from TOML.

A scenario file (``modem/channel/scenarios/NAME.toml``, or any path) has the tables
``[scenario]`` (description, start and duration), ``[geometry]`` (the relay's orbit and its
passes), ``[storm]`` (tau(t), :class:`modem.channel.dust.StormProfile`), ``[radome]``,
``[oscillator]`` (the terminal's, :class:`modem.channel.oscillator.LocalOscillator`) and one
``[[link]]`` per link (terminal class, band, symbol rate; :mod:`modem.linkbudget`). Every key,
its type, range, unit and default is in :data:`SCHEMA`; a file with an unknown key, a missing
required key or a value out of range is refused with an error naming the file, the table, the
key and the allowed range.

:class:`Scenario` gives the truth at any scenario time, per link: geometry, tau, losses,
C/N0 and Es/N0 (from the link budget, not a stored curve), Doppler and its rate, the
oscillator's offset and temperature, the carrier offset and symbol-clock offset the receiver
sees, for a channel stage and for an ACM genie. Outside the passes the link is down (Es/N0
-inf). Sign conventions: ``cfo_hz`` is the frequency offset of the received baseband
(Doppler plus the transmitting oscillator's offset, or minus the receiving one's);
``clock_ppm`` is the receiver's sample clock relative to the received symbol clock, in the
convention of :class:`modem.channel.ClockOffset` (positive: the receiver samples fast), i.e.
range rate / c minus the transmitter's oscillator offset.

Reading a scenario file by path is the one file read in :mod:`modem` outside its own package
data: a scenario is configuration, like a constructor's arguments.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from modem.channel.dust import KA_DB_PER_TAU, StormProfile, air_mass, storm_preset
from modem.channel.geometry import SOL_S, SPEED_OF_LIGHT, CircularPass, PassState
from modem.channel.oscillator import OSCILLATORS, LocalOscillator
from modem.channel.phase_noise import PRESETS as PHASE_NOISE_PRESETS
from modem.channel.phase_noise import integrated_phase_rms, preset_mask
from modem.channel.radome import RadomeDust
from modem.linkbudget import BAND_CARRIER_HZ, FORWARD_CARRIER_HZ, TERMINALS, LinkBudget

SHIPPED = ("storm_pass", "global_storm_2018", "rover_ka_uhf", "eva_uhf")  #: scenarios in the package


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file, the table, the key and the range."""


@dataclass(frozen=True)
class Field:
    """One key of a scenario table: kind, range or choices, default, unit, help."""

    kind: str  # "float", "int", "str", "floats" (number or list), "pairs"
    lo: float = -math.inf
    hi: float = math.inf
    default: object = None
    required: bool = False
    unit: str = ""
    choices: tuple = ()
    help: str = ""


_REQ = True
SCHEMA: dict[str, dict[str, Field]] = {
    "scenario": {
        "description": Field("str", required=_REQ, help="one line on what the scenario shows"),
        "start_s": Field("float", 0.0, 1e10, 0.0, unit="s", help="scenario time of its first moment"),
        "duration_s": Field("float", 0.0, 1e10, 0.0, unit="s",
                            help="length; 0: to the end of the last pass"),
    },
    "geometry": {
        "altitude_km": Field("float", 100.0, 20000.0, required=_REQ, unit="km",
                             help="circular orbit altitude"),
        "min_elevation_deg": Field("float", 0.0, 60.0, 10.0, unit="deg", help="terminal's elevation mask"),
        "max_elevation_deg": Field("floats", 0.0, 90.0, 90.0, unit="deg",
                                   help="highest elevation of each pass (one value for all, or a list)"),
        "passes": Field("int", 1, 10000, 1, help="number of passes"),
        "first_rise_s": Field("float", 0.0, 1e10, 0.0, unit="s", help="rise of the first pass"),
        "pass_interval_s": Field("float", 60.0, 1e9, SOL_S, unit="s", help="between successive rises"),
    },
    "storm": {
        "preset": Field("str", choices=("clear", "regional", "global_2018"), default="clear",
                        help="storm profile the keys below modify"),
        "background_tau": Field("float", 0.0, 20.0, help="tau before and after the storm"),
        "peak_tau": Field("float", 0.0, 20.0, help="tau at the storm's peak"),
        "onset_s": Field("float", -1e10, 1e10, 0.0, unit="s", help="start of the rise"),
        "rise_s": Field("float", 0.0, 1e10, unit="s", help="duration of the rise"),
        "peak_s": Field("float", 0.0, 1e10, unit="s", help="duration of the plateau"),
        "decay_efold_s": Field("float", 1.0, 1e10, unit="s", help="e-folding time of the decay"),
        "ka_db_per_tau": Field("float", 0.0, 100.0, KA_DB_PER_TAU, unit="dB per unit tau",
                               help="Ka dust attenuation coefficient (pessimistic: 2-4)"),
    },
    "radome": {
        "rate_db_per_sol": Field("float", 0.0, 1.0, 0.01, unit="dB/sol", help="dust accumulation"),
        "initial_db": Field("float", 0.0, 30.0, 0.0, unit="dB", help="loss at t = 0"),
        "cleanings": Field("pairs", default=(), help="[[time_s, fraction removed], ...]"),
    },
    "oscillator": {
        "preset": Field("str", choices=tuple(OSCILLATORS), default="tcxo", help="oscillator class"),
        "initial_ppm": Field("float", -100.0, 100.0, unit="ppm"),
        "temp_coeff_ppm_per_c": Field("float", 0.0, 10.0, unit="ppm/C"),
        "setpoint_c": Field("float", -150.0, 100.0, unit="C"),
        "regulation": Field("float", 1.0, 1e6),
        "aging_ppm_per_sol": Field("float", -1.0, 1.0, unit="ppm/sol"),
        "ambient_min_c": Field("float", -150.0, 50.0, unit="C"),
        "ambient_max_c": Field("float", -150.0, 50.0, unit="C"),
        "local_time_h": Field("float", 0.0, 24.0, unit="h", help="local solar time at t = 0"),
        "warmest_h": Field("float", 0.0, 24.0, unit="h"),
        "phase_noise": Field("str", choices=tuple(PHASE_NOISE_PRESETS)),
    },
    "link": {
        "name": Field("str", required=_REQ, help="link name used by ScenarioChannel(link=...)"),
        "terminal": Field("str", required=_REQ, choices=tuple(sorted({n for n, _ in TERMINALS}))),
        "band": Field("str", choices=("ka", "uhf")),
        "symbol_rate_hz": Field("float", 1e3, 1e11, required=_REQ, unit="symbols/s"),
        "carrier_hz": Field("float", 1e6, 1e12, unit="Hz"),
        "direction": Field("str", choices=("return", "forward"), default="return"),
        "tx_power_w": Field("float", 0.0, 1e3, unit="W"),
        "aperture_m2": Field("float", 0.0, 100.0, unit="m^2"),
        "polarization_loss_db": Field("float", 0.0, 30.0, 0.5, unit="dB"),
        "implementation_loss_db": Field("float", 0.0, 30.0, 1.0, unit="dB"),
    },
}
_TABLES_REQUIRED = ("scenario", "geometry", "link")


def _fmt_range(f: Field) -> str:
    if f.choices:
        return "one of " + ", ".join(repr(c) for c in f.choices)
    u = f" {f.unit}" if f.unit else ""
    return f"in [{f.lo:g}, {f.hi:g}]{u}"


def _check_value(src: str, where: str, key: str, f: Field, v):
    def bad(what: str):
        return ScenarioError(f"{src}: {where} {key} must be {what}; got {v!r}")

    if f.kind == "str":
        if not isinstance(v, str):
            raise bad("a string" + (f" ({_fmt_range(f)})" if f.choices else ""))
        if f.choices and v not in f.choices:
            raise bad(_fmt_range(f))
        return v
    if f.kind == "pairs":
        if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 for p in v):
            raise bad("a list of [time_s, fraction] pairs")
        return tuple(tuple(p) for p in v)
    if f.kind == "floats" and isinstance(v, list):
        if not v:
            raise bad(f"a number or a non-empty list of numbers {_fmt_range(f)}")
        return [_check_value(src, where, f"{key}[{i}]", Field("float", f.lo, f.hi, unit=f.unit), x)
                for i, x in enumerate(v)]
    if f.kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad(f"an integer {_fmt_range(f)}")
    elif isinstance(v, bool) or not isinstance(v, int | float):
        raise bad(f"a number {_fmt_range(f)}")
    if not (math.isfinite(v) and f.lo <= v <= f.hi):
        raise bad(_fmt_range(f))
    return float(v) if f.kind != "int" else int(v)


def _check_table(src: str, table: str, data, index: int | None = None) -> dict:
    where = f"[{table}]" if index is None else f"[[{table}]] #{index + 1}"
    if not isinstance(data, dict):
        raise ScenarioError(f"{src}: {where} must be a table")
    schema = SCHEMA[table]
    for key in data:
        if key not in schema:
            raise ScenarioError(f"{src}: unknown key {where} {key}; allowed keys: {', '.join(schema)}")
    out = {}
    for key, f in schema.items():
        if key in data:
            out[key] = _check_value(src, where, key, f, data[key])
        elif f.required:
            raise ScenarioError(f"{src}: missing key {where} {key} ({f.help or f.kind}, {_fmt_range(f)})")
        elif f.default is not None:
            out[key] = f.default
    return out


@dataclass(frozen=True)
class ScenarioLink:
    """One link of a scenario: its budget and symbol rate."""

    name: str
    budget: LinkBudget
    symbol_rate_hz: float

    @property
    def carrier_hz(self) -> float:
        """Carrier, Hz."""
        return self.budget.freq_hz

    @property
    def band(self) -> str:
        """Band of the link's terminal."""
        return self.budget.terminal.band


@dataclass(frozen=True)
class ScenarioTruth:
    """The scenario's truth for one link at some times (arrays of the times' shape).

    Attributes
    ----------
    t_s : scenario time, s
    visible : bool, inside a pass above the elevation mask
    elevation_deg, slant_range_m, off_nadir_deg, range_rate_m_s : geometry
    tau, air_mass : dust optical depth and relative path length
    dust_db, radome_db, fsl_db : losses, dB
    cn0_dbhz, esn0_db : carrier-to-noise density (dBHz) and Es/N0 at the link's symbol rate
        (dB; -inf while the link is down)
    doppler_hz, doppler_rate_hz_per_s : Doppler and its rate at the carrier
    osc_ppm, osc_temp_c : the terminal oscillator's offset (ppm) and crystal temperature (C)
    cfo_hz, cfo_rate_hz_per_s : received carrier offset (Hz) and its rate (Hz/s)
    clock_ppm : receiver sample clock against the received symbol clock (ClockOffset convention)
    phase_noise_rms_deg : float, the oscillator mask's rms phase over 1e-3..0.5 symbol rates
    """

    t_s: np.ndarray
    visible: np.ndarray
    elevation_deg: np.ndarray
    slant_range_m: np.ndarray
    off_nadir_deg: np.ndarray
    range_rate_m_s: np.ndarray
    tau: np.ndarray
    air_mass: np.ndarray
    dust_db: np.ndarray
    radome_db: np.ndarray
    fsl_db: np.ndarray
    cn0_dbhz: np.ndarray
    esn0_db: np.ndarray
    doppler_hz: np.ndarray
    doppler_rate_hz_per_s: np.ndarray
    osc_ppm: np.ndarray
    osc_temp_c: np.ndarray
    cfo_hz: np.ndarray
    cfo_rate_hz_per_s: np.ndarray
    clock_ppm: np.ndarray
    phase_noise_rms_deg: float


class Scenario:
    """A loaded scenario (see the module notes); build with :func:`load_scenario`.

    Attributes
    ----------
    name, source, description : str
    start_s, duration_s : float
        Scenario time of its first moment and its length, s.
    passes : list of (float, CircularPass)
        Rise time (s) and geometry of each pass.
    storm : StormProfile
    radome : RadomeDust
    oscillator : LocalOscillator
    links : dict of str -> ScenarioLink
    """

    def __init__(self, name, source, description, start_s, duration_s, passes, storm, radome, oscillator,
                 links, ka_db_per_tau=KA_DB_PER_TAU):
        self.name, self.source, self.description = name, source, description
        self.passes = passes
        self.storm, self.radome, self.oscillator = storm, radome, oscillator
        self.links = links
        self.ka_db_per_tau = ka_db_per_tau
        self.start_s = float(start_s)
        end = max(r + p.duration_s for r, p in passes)
        self.duration_s = float(duration_s) if duration_s > 0 else end - self.start_s
        self._rises = np.array([r for r, _ in passes])
        self._durs = np.array([p.duration_s for _, p in passes])
        self._pn_rms: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Scenario({self.name!r}, links={list(self.links)}, {len(self.passes)} pass(es))"

    @property
    def link_names(self) -> list[str]:
        """Names of the links, in file order."""
        return list(self.links)

    def link(self, name: str | None = None) -> ScenarioLink:
        """The link called ``name`` (default: the first)."""
        if name is None or name == "":
            return next(iter(self.links.values()))
        if name not in self.links:
            raise ValueError(f"link must be one of {', '.join(map(repr, self.links))} in scenario "
                             f"{self.name!r}; got {name!r}")
        return self.links[name]

    def windows(self) -> list[tuple[float, float]]:
        """(rise, set) of each pass, scenario seconds."""
        return [(float(r), float(r + d)) for r, d in zip(self._rises, self._durs, strict=True)]

    def geometry(self, t_s) -> PassState:
        """Geometry at scenario times: the pass whose window holds t, else the nearest one (not visible)."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        mids = self._rises + self._durs / 2
        idx = np.clip(np.searchsorted((mids[1:] + mids[:-1]) / 2, t), 0, len(self.passes) - 1)
        fields = {k: np.empty_like(t) for k in ("elevation_deg", "slant_range_m", "range_rate_m_s",
                                                "range_accel_m_s2", "off_nadir_deg")}
        for i in np.unique(idx):
            sel = idx == i
            st = self.passes[i][1].state(t[sel] - self._rises[i])
            for k in fields:
                fields[k][sel] = getattr(st, k)
        inside = (t >= self._rises[idx] - 1e-9) & (t <= self._rises[idx] + self._durs[idx] + 1e-9)
        shape = np.shape(t_s)
        return PassState(t.reshape(shape), *(fields[k].reshape(shape) for k in fields),
                         inside.reshape(shape))

    def phase_noise_mask(self, link: str | None = None) -> tuple:
        """The oscillator's phase-noise mask at the link's carrier ((offset Hz, dBc/Hz) pairs)."""
        return preset_mask(self.oscillator.phase_noise, self.link(link).carrier_hz)

    def sample(self, times_s, link: str | None = None) -> ScenarioTruth:
        """The truth of ``link`` at scenario times ``times_s`` (s, any shape)."""
        lk = self.link(link)
        t = np.asarray(times_s, dtype=float)
        g = self.geometry(t)
        tau = self.storm.tau(t)
        el = np.clip(g.elevation_deg, 0.0, 90.0)
        rad = self.radome.loss_db(t)
        terms = lk.budget.evaluate(g.slant_range_m, el, g.off_nadir_deg, tau, rad, lk.symbol_rate_hz)
        esn0 = np.where(g.visible, terms["esn0_db"], -np.inf)
        f = lk.carrier_hz
        osc = self.oscillator.ppm(t)
        osc_rate = self.oscillator.ppm_rate(t)
        sign = 1.0 if lk.budget.direction == "return" else -1.0
        dop = g.doppler_hz(f)
        dop_rate = g.doppler_rate_hz_per_s(f)
        rms = self._pn_rms.get(lk.name)
        if rms is None:
            rs = lk.symbol_rate_hz
            rms = math.degrees(integrated_phase_rms(self.phase_noise_mask(lk.name), 1e-3 * rs, 0.5 * rs))
            self._pn_rms[lk.name] = rms
        return ScenarioTruth(
            t_s=t, visible=g.visible, elevation_deg=g.elevation_deg, slant_range_m=g.slant_range_m,
            off_nadir_deg=g.off_nadir_deg, range_rate_m_s=g.range_rate_m_s, tau=tau, air_mass=air_mass(el),
            dust_db=terms["dust_db"], radome_db=np.broadcast_to(rad, t.shape).copy(), fsl_db=terms["fsl_db"],
            cn0_dbhz=terms["cn0_dbhz"], esn0_db=esn0, doppler_hz=dop, doppler_rate_hz_per_s=dop_rate,
            osc_ppm=osc, osc_temp_c=self.oscillator.internal_c(t),
            cfo_hz=dop + sign * osc * 1e-6 * f, cfo_rate_hz_per_s=dop_rate + sign * osc_rate * 1e-6 * f,
            clock_ppm=g.range_rate_m_s / SPEED_OF_LIGHT * 1e6 - sign * osc,
            phase_noise_rms_deg=rms,
        )

    def at(self, t_s: float, link: str | None = None) -> dict:
        """The truth of ``link`` at one scenario time, as a dict of floats (bool for ``visible``)."""
        tr = self.sample(float(t_s), link)
        out = {}
        for k, v in tr.__dict__.items():
            out[k] = bool(v) if k == "visible" else float(v)
        return out

    def esn0_db(self, t_s, link: str | None = None) -> np.ndarray:
        """Es/N0 (dB, -inf while down) of ``link`` at scenario times."""
        return self.sample(t_s, link).esn0_db


def _build(src: str, name: str, doc: dict) -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{src}: not a TOML table")
    for key in doc:
        if key not in SCHEMA:
            raise ScenarioError(f"{src}: unknown table [{key}]; allowed tables: {', '.join(SCHEMA)}")
    for key in _TABLES_REQUIRED:
        if key not in doc:
            raise ScenarioError(f"{src}: missing table [{key}]")
    sc = _check_table(src, "scenario", doc["scenario"])
    geo = _check_table(src, "geometry", doc["geometry"])
    storm_t = _check_table(src, "storm", doc.get("storm", {}))
    rad_t = _check_table(src, "radome", doc.get("radome", {}))
    osc_t = _check_table(src, "oscillator", doc.get("oscillator", {}))
    raw_links = doc["link"]
    if not isinstance(raw_links, list) or not raw_links:
        raise ScenarioError(f"{src}: [[link]] must be an array of at least one table")
    links_t = [_check_table(src, "link", d, i) for i, d in enumerate(raw_links)]

    def wrap(where: str, fn):
        try:
            return fn()
        except ScenarioError:
            raise
        except (ValueError, TypeError) as e:
            raise ScenarioError(f"{src}: {where}: {e}") from None

    # geometry: passes
    n = geo["passes"]
    mx = geo["max_elevation_deg"]
    mx = mx if isinstance(mx, list) else [mx] * n
    if len(mx) != n:
        raise ScenarioError(f"{src}: [geometry] max_elevation_deg must have {n} values (one per pass); "
                            f"got {len(mx)}")
    for i, m in enumerate(mx):
        if m <= geo["min_elevation_deg"]:
            lo = geo["min_elevation_deg"]
            raise ScenarioError(f"{src}: [geometry] max_elevation_deg[{i}] must be in ({lo:g}, 90] deg "
                                f"(above min_elevation_deg); got {m:g}")
    passes = []
    for i in range(n):
        alt, lo = geo["altitude_km"] * 1e3, geo["min_elevation_deg"]
        p = wrap("[geometry]", lambda m=mx[i], alt=alt, lo=lo: CircularPass(alt, m, lo))
        rise = geo["first_rise_s"] + i * geo["pass_interval_s"]
        if passes and rise < passes[-1][0] + passes[-1][1].duration_s:
            raise ScenarioError(f"{src}: [geometry] pass_interval_s must be at least the pass duration "
                                f"({passes[-1][1].duration_s:.1f} s); got {geo['pass_interval_s']:g}")
        passes.append((rise, p))
    # storm
    base = storm_preset(storm_t.pop("preset"), storm_t.get("onset_s", 0.0))
    ka = storm_t.pop("ka_db_per_tau")
    storm = wrap("[storm]", lambda: StormProfile(**{**base.__dict__, **storm_t}))
    radome = wrap("[radome]", lambda: RadomeDust(**rad_t))
    osc_name = osc_t.pop("preset")
    osc = wrap("[oscillator]", lambda: LocalOscillator.preset(osc_name, **osc_t))
    links = {}
    for i, lt in enumerate(links_t):
        where = f"[[link]] #{i + 1}"
        if lt["name"] in links:
            raise ScenarioError(f"{src}: {where} name must be unique; got {lt['name']!r} twice")
        bands = [b for (t, b) in TERMINALS if t == lt["terminal"]]
        band = lt.get("band", bands[0])
        if band not in bands:
            raise ScenarioError(f"{src}: {where} band must be one of {', '.join(map(repr, bands))} for the "
                                f"{lt['terminal']} terminal; got {band!r}")
        carriers = BAND_CARRIER_HZ if lt["direction"] == "return" else FORWARD_CARRIER_HZ
        budget = wrap(where, lambda lt=lt, band=band, carriers=carriers: LinkBudget.for_terminal(
            lt["terminal"], band, lt.get("carrier_hz", carriers[band]), lt.get("tx_power_w"),
            lt.get("aperture_m2"), lt["direction"], ka_db_per_tau=ka,
            polarization_loss_db=lt["polarization_loss_db"],
            implementation_loss_db=lt["implementation_loss_db"]))
        links[lt["name"]] = ScenarioLink(lt["name"], budget, lt["symbol_rate_hz"])
    return Scenario(name, src, sc["description"], sc["start_s"], sc["duration_s"], passes, storm, radome, osc,
                    links, ka)


def parse_scenario(text: str, source: str = "<string>", name: str | None = None) -> Scenario:
    """Build a :class:`Scenario` from TOML text; errors name ``source``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: not valid TOML: {e}") from None
    return _build(source, name or Path(source).stem, doc)


def scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``modem/channel/scenarios/``."""
    files = resources.files("modem.channel.scenarios").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


def load_scenario(name_or_path) -> Scenario:
    """A shipped scenario by name (:data:`SHIPPED`) or a scenario file by path.

    Raises
    ------
    ScenarioError
        Unknown name (the message lists the shipped ones), or an invalid file.
    """
    s = str(name_or_path)
    if s.endswith(".toml") or "/" in s or isinstance(name_or_path, Path):
        p = Path(s)
        if not p.is_file():
            raise ScenarioError(f"{s}: scenario file not found")
        return parse_scenario(p.read_text(encoding="utf-8"), str(p), p.stem)
    names = scenario_names()
    if s not in names:
        shown = ", ".join(map(repr, names))
        raise ScenarioError(f"scenario must be one of {shown} or a .toml path; got {s!r}")
    text = resources.files("modem.channel.scenarios").joinpath(f"{s}.toml").read_text(encoding="utf-8")
    return parse_scenario(text, f"{s}.toml", s)
