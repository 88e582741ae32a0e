"""Plot a scenario's truth against time: Es/N0, elevation, Doppler and tau (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def scenario_times(scenario, points_per_pass: int = 400) -> np.ndarray:
    """Sample times (s) covering every pass, with a NaN between passes to break the lines."""
    parts = []
    for a, b in scenario.windows():
        lo, hi = max(a, scenario.start_s), min(b, scenario.start_s + scenario.duration_s)
        if hi > lo:
            parts += [np.linspace(lo, hi, points_per_pass), [np.nan]]
    return np.concatenate(parts[:-1]) if parts else np.zeros(0)


def plot_scenario(scenario, out_dir) -> Path:
    """Write ``<out_dir>/scenario_<name>.png``: Es/N0 per link, elevation, Doppler and tau vs time.

    Parameters
    ----------
    scenario : modem.channel.scenario.Scenario
    out_dir : str or Path
        Created if missing.

    Returns
    -------
    Path
        The PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modem.channel.geometry import SOL_S

    t = scenario_times(scenario)
    ok = np.isfinite(t)
    long = scenario.duration_s > 2 * 3600
    scale, unit = (SOL_S, "sol") if long else (60.0, "min")
    x = np.where(ok, t, np.nan) / scale
    fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    tt = np.where(ok, t, scenario.start_s)
    for name in scenario.link_names:
        tr = scenario.sample(tt, name)
        lk = scenario.link(name)
        es = np.where(ok & tr.visible, tr.esn0_db, np.nan)
        ax[0].plot(x, es, label=f"{name}: {lk.budget.terminal.name} {lk.band.upper()}, "
                                f"{lk.symbol_rate_hz / 1e6:g} Msym/s")
        ax[2].plot(x, np.where(ok, tr.doppler_hz / 1e3, np.nan), label=f"{name} Doppler")
        ax[2].plot(x, np.where(ok, tr.cfo_hz / 1e3, np.nan), ls="--", label=f"{name} carrier offset")
    tr = scenario.sample(tt, scenario.link_names[0])
    ax[1].plot(x, np.where(ok, tr.elevation_deg, np.nan))
    tu = np.linspace(scenario.start_s, scenario.start_s + scenario.duration_s, 2000)
    ax[3].plot(tu / scale, scenario.storm.tau(tu), label="tau")
    ax[3].plot(x, np.where(ok, tr.dust_db, np.nan), label=f"{scenario.link_names[0]} dust loss (dB)")
    ax[0].set_ylabel("Es/N0 (dB)")
    ax[1].set_ylabel("elevation (deg)")
    ax[2].set_ylabel("kHz")
    ax[3].set_ylabel("optical depth / dB")
    ax[3].set_xlabel(f"scenario time ({unit})")
    for a in ax:
        a.grid(True, alpha=0.3)
    for a in (ax[0], ax[2], ax[3]):
        a.legend(fontsize=8)
    fig.suptitle(f"scenario {scenario.name}: {scenario.description}", fontsize=9)
    fig.tight_layout()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scenario_{scenario.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
