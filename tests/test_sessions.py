"""Imported charging sessions: a 3-vehicle case computed by hand, and bad rows named by row and column."""

import textwrap

import numpy as np
import pytest

import v2gsim
from v2gsim.errors import ScenarioError

SCENARIO = """\
name: three sessions
seed: 3
time: {start: 2026-07-06T00:00, step_min: 15, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: 50, households: 0}
tariff: {flat_cny_per_kwh: 0.5}
sites:
  - {id: lot, kind: public, p_max_kw: 7, chargers: 5}
  - {id: fast, kind: public, p_max_kw: 11, chargers: 1}
mobility_sessions:
  csv: sessions.csv
  # 100 kWh, AC 7 kW, a large DC limit so that AC charging never reaches the taper before the
  # 99 kWh cut-off; efficiency 0.9: numbers that can be followed by hand
  vehicle: {capacity_kwh: 100, consumption_kwh_per_km: 0.15, p_ac_max_kw: 7, p_dc_max_kw: 1000, eta_charge: 0.9}
"""

CSV = """\
arrival,departure,energy_kwh,site_id,max_power_kw
2026-07-06 18:00,2026-07-06 20:00,10,lot,
2026-07-06 18:00,2026-07-06 21:00,20,lot,3.6
2026-07-06 19:00,2026-07-06 19:30,5,fast,
"""


def write(tmp_path, scenario=SCENARIO, csv=CSV):
    (tmp_path / "s.yaml").write_text(scenario)
    (tmp_path / "sessions.csv").write_text(csv)
    return tmp_path / "s.yaml"


def test_three_vehicles_by_hand(tmp_path):
    r = v2gsim.run(v2gsim.load_scenario(write(tmp_path)))
    ev = r.system["ev_charge_kw"]
    t = lambda hhmm: ev.loc[f"2026-07-06 {hhmm}"]  # noqa: E731
    # A: 10 kWh at 7 kW = 1 h 25.7 min: five full steps (8.75 kWh), then 1.25 kWh in 15 min = 5 kW.
    # B: capped at 3.6 kW for its 3 h: 10.8 kWh of the 20 requested, 9.2 kWh unmet.
    # C: 11 kW charger, but the car takes 7 kW AC: 2 steps = 3.5 kWh of 5, 1.5 kWh unmet.
    assert t("18:00") == pytest.approx(7 + 3.6)
    assert t("19:00") == pytest.approx(7 + 3.6 + 7)
    assert t("19:15") == pytest.approx(5 + 3.6 + 7)
    assert t("19:30") == pytest.approx(3.6)
    assert t("20:45") == pytest.approx(3.6)
    assert t("21:00") == 0
    v = r.vehicles.set_index("vehicle")
    np.testing.assert_allclose(v["e_charged_kwh"], [10.0, 10.8, 3.5], rtol=1e-12)
    np.testing.assert_allclose(v["unmet_kwh"], [0.0, 9.2, 1.5], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v["e_loss_kwh"], [1.0, 1.08, 0.35], rtol=1e-12)
    np.testing.assert_allclose(v["cost_cny"], [5.0, 5.4, 1.75], rtol=1e-12)
    assert r.kpis["energy_charged_kwh"] == pytest.approx(24.3)
    assert r.kpis["unmet_energy_kwh"] == pytest.approx(10.7)
    assert r.kpis["peak_load_kw"] == pytest.approx(17.6 + r.system["base_load_kw"].max())
    s = r.sessions.set_index("vehicle")
    assert list(s["e_request_kwh"]) == pytest.approx([10, 20, 5])
    assert str(s.loc[1, "departure"]) == "2026-07-06 21:00:00"


def test_bad_rows_are_named_by_row_and_column(tmp_path):
    bad = CSV + "2026-07-06 22:00,2026-07-06 21:00,5,lot,\nnot a time,2026-07-06 21:00,-3,nowhere,0\n"
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(write(tmp_path, csv=bad))
    text = str(exc.value)
    assert "sessions.csv row 5, column departure: not after the arrival" in text
    assert "sessions.csv row 6, column arrival" in text
    assert "row 6, column energy_kwh: negative energy" in text
    assert "row 6, column site_id: not a site" in text
    assert "row 6, column max_power_kw" in text
    assert "mobility_sessions.csv" in text and "line" in text


def test_missing_columns_and_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="missing column"):
        v2gsim.load_scenario(write(tmp_path, csv="arrival,departure\n2026-07-06 18:00,2026-07-06 20:00\n"))
    p = write(tmp_path)
    (tmp_path / "sessions.csv").unlink()
    with pytest.raises(ScenarioError, match="does not exist"):
        v2gsim.load_scenario(p)


def test_overlapping_sessions_of_one_vehicle(tmp_path):
    csv = textwrap.dedent("""\
        arrival,departure,energy_kwh,site_id,vehicle_id
        2026-07-06 08:00,2026-07-06 12:00,10,lot,car1
        2026-07-06 11:00,2026-07-06 13:00,10,lot,car1
        2026-07-06 14:00,2026-07-06 15:00,10,lot,car1
        """)
    with pytest.raises(ScenarioError, match="row 3, column arrival: this vehicle is still plugged in"):
        v2gsim.load_scenario(write(tmp_path, csv=csv))
