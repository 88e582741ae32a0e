"""Link budgets (modem/linkbudget.py) and the ``marslink budget`` command."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from modem.channel.geometry import SPEED_OF_LIGHT
from modem.linkbudget import (
    BOLTZMANN_DB,
    TERMINALS,
    LinkBudget,
    aperture_gain_db,
    budget_at_elevation,
    slant_geometry,
    terminal,
)


def test_aperture_gain_formula():
    # G = eta 4 pi A / lambda^2: 1 m^2 at 30 GHz (lambda ~1 cm), eta 0.6 -> 48.78 dBi
    lam = SPEED_OF_LIGHT / 30e9
    want = 10 * math.log10(0.6 * 4 * math.pi / lam**2)
    assert float(aperture_gain_db(1.0, 30e9, 0.6)) == pytest.approx(want)
    assert float(aperture_gain_db(1.0, 30e9, 0.6)) == pytest.approx(48.78, abs=0.01)
    # doubling the aperture: +3.01 dB
    assert float(aperture_gain_db(2.0, 30e9) - aperture_gain_db(1.0, 30e9)) == pytest.approx(3.0103, abs=1e-4)


def test_budget_sums_up():
    lb = LinkBudget.for_terminal("fixed")
    b = budget_at_elevation(lb, 30.0, tau=2.0, symbol_rate_hz=500e6)
    k = b.terms
    assert k["eirp_dbw"] == pytest.approx(10.0 + k["tx_gain_dbi"] - 2.0)
    losses = k["fsl_db"] + k["dust_db"] + k["radome_db"] + 0.5 + 1.0
    cn0 = k["eirp_dbw"] - losses + k["g_over_t_db"] - BOLTZMANN_DB
    assert b.cn0_dbhz == pytest.approx(float(cn0))
    assert b.esn0_db == pytest.approx(b.cn0_dbhz - 10 * math.log10(500e6))
    assert float(k["shannon_rate_bps"]) == pytest.approx(500e6 * math.log2(1 + 10 ** (b.esn0_db / 10)))
    assert BOLTZMANN_DB == pytest.approx(-228.6, abs=0.01)
    # geometry at 30 deg from 400 km
    d, eta = slant_geometry(30.0)
    assert b.slant_range_m == pytest.approx(float(d))
    assert float(k["fsl_db"]) == pytest.approx(20 * math.log10(4 * math.pi * d * 27.5e9 / SPEED_OF_LIGHT))
    # every line has a unit
    assert all(unit for _, _, unit in b.lines())


def test_budget_physics_trends():
    lb = LinkBudget.for_terminal("fixed")
    es = [budget_at_elevation(lb, el, 0.5, 500e6).esn0_db for el in (10, 30, 60, 90)]
    assert es == sorted(es)  # higher elevation: shorter range, less dust
    storm = budget_at_elevation(lb, 30, 2.0, 500e6).esn0_db
    clear = budget_at_elevation(lb, 30, 0.5, 500e6).esn0_db
    assert clear - storm == pytest.approx(1.5 * 0.6 * 27.5 / 32 * 1.98, abs=0.02)
    # UHF hardly notices the storm
    eva = LinkBudget.for_terminal("eva")
    clear_uhf = budget_at_elevation(eva, 30, 0.5, 64e3).esn0_db
    assert clear_uhf - budget_at_elevation(eva, 30, 5.0, 64e3).esn0_db < 0.1
    # forward link: the storm's sky noise raises the terminal's system temperature
    fwd = LinkBudget.for_terminal("fixed", direction="forward")
    t_clear = float(budget_at_elevation(fwd, 30, 0.5, 500e6).terms["system_noise_k"])
    t_storm = float(budget_at_elevation(fwd, 30, 5.0, 500e6).terms["system_noise_k"])
    assert t_storm > t_clear + 50


def test_terminal_classes_and_ranges():
    assert terminal("fixed").band == "ka"
    assert {b for (n, b) in TERMINALS if n == "rover"} == {"ka", "uhf"}
    assert terminal("eva").band == "uhf"
    fixed = terminal("fixed")
    assert 0.5 <= fixed.antenna.area_m2 <= 1.5 and 5 <= fixed.tx_power_w <= 20
    with pytest.raises(ValueError, match=r"tx_power_w must be in \[5, 20\] W"):
        LinkBudget.for_terminal("fixed", tx_power_w=50.0)
    with pytest.raises(ValueError, match=r"aperture_m2 must be in \[0.05, 0.2\]"):
        LinkBudget.for_terminal("rover", "ka", aperture_m2=1.0)
    with pytest.raises(ValueError, match="band"):
        terminal("eva", "ka")
    with pytest.raises(ValueError, match="terminal must be one of"):
        terminal("lander")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "flowgraphs.cli", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_marslink_budget_table():
    out = run_cli("budget", "--terminal", "fixed", "--elevation", "30", "--tau", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()[2:]
    rows = {}
    for line in lines:
        label, value, unit = line.rsplit(maxsplit=2)[0], line.split()[-2], line.split()[-1]
        rows[label.strip()] = (float(value), unit)
    for term, unit in (("EIRP", "dBW"), ("C/N0", "dBHz"), ("Es/N0", "dB"), ("free-space loss", "dB"),
                       ("dust-storm loss", "dB"), ("relay G/T", "dB/K")):
        assert rows[term][1] == unit
    lb = LinkBudget.for_terminal("fixed")
    assert rows["Es/N0"][0] == pytest.approx(budget_at_elevation(lb, 30, 2, 500e6).esn0_db, abs=1e-3)


def test_marslink_budget_refuses_out_of_class_power(capsys):
    from flowgraphs import cli

    assert cli.main(["budget", "--terminal", "fixed", "--power", "100"]) == 2
    assert "tx_power_w must be in [5, 20] W" in capsys.readouterr().err
    assert cli.main(["budget", "--terminal", "eva", "--json"]) == 0
    assert '"unit": "dBHz"' in capsys.readouterr().out
