"""Bench scaling: run a mission link (e.g. Ka 27.5 GHz at 500 Msym/s) on a bench radio.

A bench at another carrier and symbol rate reproduces what the modem sees of the mission link
when every quantity is kept in units of the symbol rate. With k = R_bench / R_mission:

- Es/N0: unchanged (dB);
- carrier offset (Doppler, oscillator): f_bench = k f_mission (CFO / R_s preserved);
- Doppler rate: r_bench = k^2 r_mission (rate / R_s^2 preserved: the phase a carrier loop
  must follow per symbol squared);
- phase noise: the mask's offsets times k and its levels minus 10 log10(k), so the phase
  variance in any band that is a fixed fraction of R_s is preserved;
- time: one mission symbol is one bench symbol, so bench seconds = mission seconds / k
  (scenarios usually compress time further; see :class:`modem.channel.ScenarioChannel`);
- clock offsets in ppm: unchanged.

A PlutoSDR bench is refused outside the radio's limits: LO 325 MHz - 3.8 GHz and sample rate
521 kS/s - 61.44 MS/s (AD9361 as the ADALM-PLUTO ships; the 70 MHz - 6 GHz range needs the
AD9364 firmware change and is not assumed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modem.channel._block import check_real
from modem.channel.phase_noise import check_mask, integrated_phase_rms

PLUTO_LO_HZ = (325e6, 3.8e9)  #: ADALM-PLUTO LO range, Hz
PLUTO_SAMPLE_RATE_HZ = (521e3, 61.44e6)  #: ADALM-PLUTO sample-rate range, samples/s
BENCHES = {  #: name -> (carrier Hz, symbol rate or None for the mission's, samples per symbol)
    "pluto": (2.4e9, 1e6, 2),
    "uhf": (435e6, None, 4),
}


@dataclass(frozen=True)
class LinkSide:
    """Carrier, symbol rate and samples per symbol of one side of the mapping."""

    carrier_hz: float
    symbol_rate_hz: float
    samples_per_symbol: int = 2

    def __post_init__(self):
        check_real(self.carrier_hz, "carrier_hz", 1e3, 1e12, "Hz", lo_open=True)
        check_real(self.symbol_rate_hz, "symbol_rate_hz", 1.0, 1e11, "symbols/s")
        sps = self.samples_per_symbol
        if isinstance(sps, bool) or not isinstance(sps, int) or not 1 <= sps <= 64:
            raise ValueError(f"samples_per_symbol must be an integer in 1..64; got {sps!r}")

    @property
    def sample_rate_hz(self) -> float:
        """Symbol rate times samples per symbol, samples/s."""
        return self.symbol_rate_hz * self.samples_per_symbol


def check_pluto(side: LinkSide) -> None:
    """Raise ValueError naming the setting if ``side`` is outside a PlutoSDR's LO or sample-rate range."""
    lo, hi = PLUTO_LO_HZ
    if not lo <= side.carrier_hz <= hi:
        raise ValueError(f"bench carrier_hz must be in [{lo / 1e6:g} MHz, {hi / 1e9:g} GHz] for a PlutoSDR "
                         f"(LO range); got {side.carrier_hz / 1e6:g} MHz")
    lo, hi = PLUTO_SAMPLE_RATE_HZ
    fs = side.sample_rate_hz
    if not lo <= fs <= hi:
        raise ValueError(f"bench sample rate (symbol_rate_hz x samples_per_symbol = "
                         f"{side.symbol_rate_hz:g} x {side.samples_per_symbol}) must be in "
                         f"[{lo / 1e3:g} kS/s, {hi / 1e6:g} MS/s] for a PlutoSDR; got {fs / 1e3:g} kS/s")


@dataclass(frozen=True)
class BenchScaling:
    """The mapping from a mission link to a bench link (see the module notes).

    Parameters
    ----------
    mission, bench : LinkSide
    radio : {"pluto", "none"}
        "pluto": the bench side must fit a PlutoSDR (checked at construction).
    """

    mission: LinkSide
    bench: LinkSide
    radio: str = "pluto"

    def __post_init__(self):
        if self.radio not in ("pluto", "none"):
            raise ValueError(f"radio must be 'pluto' or 'none'; got {self.radio!r}")
        if self.radio == "pluto":
            check_pluto(self.bench)

    @property
    def k(self) -> float:
        """R_bench / R_mission."""
        return self.bench.symbol_rate_hz / self.mission.symbol_rate_hz

    def cfo_hz(self, mission_cfo_hz):
        """Bench carrier offset for a mission one, Hz (CFO / R_s preserved)."""
        return mission_cfo_hz * self.k

    def doppler_rate_hz_per_s(self, mission_rate_hz_per_s):
        """Bench frequency ramp for a mission one, Hz/s (rate / R_s^2 preserved)."""
        return mission_rate_hz_per_s * self.k**2

    def time_s(self, mission_s):
        """Bench duration of a mission duration at one bench symbol per mission symbol, s."""
        return mission_s / self.k

    def phase_noise_mask(self, mission_mask, min_offset_rs: float = 1e-4) -> tuple:
        """Bench mask for a mission mask: offsets times k, levels minus 10 log10(k).

        Points below ``min_offset_rs`` bench symbol rates are dropped (after the mask is
        interpolated there): that slow a wander is a frequency offset to any carrier loop and
        would only cost the phase-noise model its speed.
        """
        from modem.channel.phase_noise import mask_db

        m = check_mask(mission_mask)
        shift = -10.0 * math.log10(self.k)
        scaled = [(f * self.k, level + shift) for f, level in m]
        f_min = min_offset_rs * self.bench.symbol_rate_hz
        kept = [(f, lv) for f, lv in scaled if f >= f_min]
        if len(kept) < len(scaled):
            level = float(mask_db(scaled, f_min))
            kept = [(f_min, level)] + kept
        return tuple((f, min(lv, 0.0)) for f, lv in kept)

    def phase_rms_rad(self, mask, side: str = "mission", lo_rs: float = 1e-3, hi_rs: float = 0.5) -> float:
        """RMS phase of ``mask`` over [lo_rs, hi_rs] symbol rates of ``side``, rad."""
        rs = (self.mission if side == "mission" else self.bench).symbol_rate_hz
        return integrated_phase_rms(mask, lo_rs * rs, hi_rs * rs)

    def table(self, esn0_db: float | None = None, cfo_hz: float | None = None,
              doppler_rate_hz_per_s: float | None = None, mission_mask=None) -> str:
        """Both sides as an aligned text table, each line with its unit."""
        m, b = self.mission, self.bench
        rows = [
            ("carrier", f"{m.carrier_hz / 1e9:.6g} GHz", f"{b.carrier_hz / 1e9:.6g} GHz"),
            ("symbol rate", f"{m.symbol_rate_hz / 1e6:.6g} Msym/s", f"{b.symbol_rate_hz / 1e6:.6g} Msym/s"),
            ("samples per symbol", f"{m.samples_per_symbol}", f"{b.samples_per_symbol}"),
            ("sample rate", f"{m.sample_rate_hz / 1e6:.6g} MS/s", f"{b.sample_rate_hz / 1e6:.6g} MS/s"),
            ("time per mission second", "1 s", f"{self.time_s(1.0):.6g} s"),
        ]
        if esn0_db is not None:
            rows.append(("Es/N0", f"{esn0_db:.2f} dB", f"{esn0_db:.2f} dB"))
        if cfo_hz is not None:
            rows.append(("carrier offset", f"{cfo_hz:.6g} Hz", f"{self.cfo_hz(cfo_hz):.6g} Hz"))
            rows.append(("carrier offset / Rs", f"{cfo_hz / m.symbol_rate_hz:.4e}",
                         f"{self.cfo_hz(cfo_hz) / b.symbol_rate_hz:.4e}"))
        if doppler_rate_hz_per_s is not None:
            r = doppler_rate_hz_per_s
            rows.append(("Doppler rate", f"{r:.6g} Hz/s", f"{self.doppler_rate_hz_per_s(r):.6g} Hz/s"))
            rows.append(("Doppler rate / Rs^2", f"{r / m.symbol_rate_hz**2:.4e}",
                         f"{self.doppler_rate_hz_per_s(r) / b.symbol_rate_hz**2:.4e}"))
        if mission_mask is not None:
            bm = self.phase_noise_mask(mission_mask)
            for f, lv in check_mask(mission_mask):
                rows.append((f"phase noise at {f / m.symbol_rate_hz:.3g} Rs",
                             f"{lv:.1f} dBc/Hz @ {f:.6g} Hz",
                             f"{lv - 10 * math.log10(self.k):.1f} dBc/Hz @ {f * self.k:.6g} Hz"))
            rms_m = math.degrees(self.phase_rms_rad(mission_mask))
            rms_b = math.degrees(self.phase_rms_rad(bm, "bench"))
            rows.append(("rms phase, 1e-3..0.5 Rs", f"{rms_m:.3f} deg", f"{rms_b:.3f} deg"))
            if self.radio == "pluto":
                from modem.channel.phase_noise import preset_mask

                own = math.degrees(self.phase_rms_rad(preset_mask("pluto", b.carrier_hz), "bench"))
                rows.append(("the Pluto's own LO, same band", "", f"{own:.3f} deg (adds on a real radio)"))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows + [("", "mission", "")])
        lines = [f"{'':<{w0}}  {'mission':>{w1}}  bench ({self.radio})"]
        lines += [f"{a:<{w0}}  {c1:>{w1}}  {c2}" for a, c1, c2 in rows]
        return "\n".join(lines)


def scale_link(mission_carrier_hz: float, mission_symbol_rate_hz: float, bench: str | None = "pluto",
               bench_carrier_hz: float | None = None, bench_symbol_rate_hz: float | None = None,
               samples_per_symbol: int | None = None, radio: str = "pluto") -> BenchScaling:
    """Map a mission link to a bench link.

    Parameters
    ----------
    mission_carrier_hz, mission_symbol_rate_hz : float
        The mission link (Hz, symbols/s).
    bench : {"pluto", "uhf"} or None
        Bench preset (:data:`BENCHES`): "pluto" 2.4 GHz at 1 Msym/s, 2 samples/symbol; "uhf"
        435 MHz at the mission's own symbol rate, 4 samples/symbol (UHF natively).
    bench_carrier_hz, bench_symbol_rate_hz : float, optional
        Override the preset's carrier and symbol rate.
    samples_per_symbol : int, optional
        Override the preset's samples per symbol.
    radio : {"pluto", "none"}
        Check the bench against a PlutoSDR's limits, or not.
    """
    if bench is not None and bench not in BENCHES:
        raise ValueError(f"bench must be one of {', '.join(map(repr, BENCHES))} or None; got {bench!r}")
    c0, r0, s0 = BENCHES[bench or "pluto"]
    carrier = bench_carrier_hz if bench_carrier_hz is not None else c0
    rate = bench_symbol_rate_hz if bench_symbol_rate_hz is not None else (r0 or mission_symbol_rate_hz)
    sps = samples_per_symbol if samples_per_symbol is not None else s0
    mission = LinkSide(mission_carrier_hz, mission_symbol_rate_hz, 2)
    return BenchScaling(mission, LinkSide(carrier, rate, sps), radio)
