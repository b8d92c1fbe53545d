"""Imported charging sessions: a 3-vehicle case computed by hand, and bad rows named by row and column."""

import textwrap

import numpy as np
import pandas as pd
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


# --------------------------------------------------------------------------- time zones


def run_csv(tmp_path, csv, scenario=SCENARIO):
    return v2gsim.run(v2gsim.load_scenario(write(tmp_path, scenario, csv)))


def test_times_with_offsets_are_converted_to_the_scenario_zone(tmp_path):
    # the README's form: a naive time.start (Asia/Shanghai, UTC+8) and a CSV with UTC offsets,
    # mixed within the file and with naive (local) rows: all three sessions arrive at 18:00 local
    csv = textwrap.dedent("""\
        arrival,departure,energy_kwh,site_id
        2026-07-06T10:00Z,2026-07-06T12:00Z,7,lot
        2026-07-06T19:00+09:00,2026-07-06T20:00+09:00,3.5,lot
        2026-07-06 18:00,2026-07-06 21:00,10,lot
        """)
    r = run_csv(tmp_path, csv)
    s = r.sessions.set_index("vehicle")
    assert (s["arrival"] == pd.Timestamp("2026-07-06 18:00")).all()
    assert list(s["departure"]) == [pd.Timestamp(f"2026-07-06 {h}:00") for h in (20, 19, 21)]
    ev = r.system["ev_charge_kw"]
    assert ev.loc["2026-07-06 17:45"] == 0 and ev.loc["2026-07-06 18:00"] == pytest.approx(21.0)
    np.testing.assert_allclose(r.vehicles["e_charged_kwh"], [7.0, 3.5, 10.0], rtol=1e-12)


def test_a_start_with_an_offset_and_a_naive_csv(tmp_path):
    # the reverse: time.start given in UTC is 2026-07-06 00:00 in Shanghai; the naive CSV is local
    r = run_csv(tmp_path, CSV, SCENARIO.replace("start: 2026-07-06T00:00,", "start: 2026-07-05T16:00:00Z,"))
    assert r.system.index[0] == pd.Timestamp("2026-07-06 00:00")
    np.testing.assert_allclose(r.vehicles["e_charged_kwh"], [10.0, 10.8, 3.5], rtol=1e-12)


def test_daylight_saving_time_ends_sessions_with_offsets_in_the_repeated_hour(tmp_path):
    # Berlin, 25 Oct 2026: 02:00-03:00 happens twice. A session from 02:30 summer time
    # (00:30Z) to 02:45 winter time (01:45Z) lasts 75 min; on the model's wall clock it is
    # 02:30-02:45, one step: 1.75 kWh at 7 kW. It is valid: by the instants it ends after it starts.
    sc = SCENARIO.replace("start: 2026-07-06T00:00,", "start: 2026-10-25T00:00, timezone: Europe/Berlin,")
    csv = "arrival,departure,energy_kwh,site_id\n2026-10-25T00:30Z,2026-10-25T01:45Z,5,lot\n2026-10-25T02:30+02:00,2026-10-25T04:00+01:00,5,lot\n"
    r = run_csv(tmp_path, csv, sc)
    s = r.sessions.set_index("vehicle")
    assert list(s["arrival"]) == [pd.Timestamp("2026-10-25 02:30")] * 2
    assert list(s["departure"]) == [pd.Timestamp("2026-10-25 02:45"), pd.Timestamp("2026-10-25 04:00")]
    np.testing.assert_allclose(r.vehicles["e_charged_kwh"], [1.75, 5.0], rtol=1e-12)


def test_daylight_saving_time_starts_naive_times_in_the_skipped_hour(tmp_path):
    # Berlin, 29 Mar 2026: 02:00-03:00 does not exist; naive times are wall-clock labels of the
    # model's clock, which has that hour: 02:15-03:30 is five steps (8.75 kWh at 7 kW)
    sc = SCENARIO.replace("start: 2026-07-06T00:00,", "start: 2026-03-29T00:00, timezone: Europe/Berlin,")
    r = run_csv(tmp_path, "arrival,departure,energy_kwh,site_id\n2026-03-29 02:15,2026-03-29 03:30,10,lot\n", sc)
    assert r.kpis["energy_charged_kwh"] == pytest.approx(8.75)
    assert r.system["ev_charge_kw"].loc["2026-03-29 02:15"] == pytest.approx(7.0)


# --------------------------------------------------------------------------- what a file cannot say silently


def test_a_file_with_a_header_only_is_an_error(tmp_path):
    with pytest.raises(ScenarioError, match="sessions.csv: has a header but no sessions"):
        v2gsim.load_scenario(write(tmp_path, csv="arrival,departure,energy_kwh,site_id\n"))


def test_a_file_whose_sessions_all_fall_outside_the_run_is_an_error_at_validate(tmp_path):
    csv = "arrival,departure,energy_kwh,site_id\n2026-07-08 18:00,2026-07-08 20:00,10,lot\n2026-07-05 18:00,2026-07-05 20:00,10,lot\n"
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(write(tmp_path, csv=csv))
    (p,) = exc.value.problems
    assert p.path == "mobility_sessions.csv" and p.line == 10
    assert "sessions.csv, column arrival: none of its 2 sessions arrives within the run (2026-07-06 00:00:00 to 2026-07-07 00:00:00" in p.message
    assert "time zone" in p.hint


def test_dropped_capped_and_turned_away_sessions_are_counted(tmp_path, capsys):
    # one session after the run (dropped); one asking 150 kWh of a 100 kWh car whose charging
    # stops at 99 kWh (99 / 0.9 = 110 kWh grid side: 40 kWh cut); three cars at the one-charger
    # public "fast" site at 19:00: the first charges till 19:30, the second queues and takes the
    # charger at 19:30 (30 minutes, its waiting limit), the third, still behind it then, leaves:
    # turned away, its 5 kWh unmet
    csv = textwrap.dedent("""\
        arrival,departure,energy_kwh,site_id
        2026-07-07 18:00,2026-07-07 20:00,10,lot
        2026-07-06 00:00,2026-07-06 23:45,150,lot
        2026-07-06 19:00,2026-07-06 19:30,5,fast
        2026-07-06 19:00,2026-07-06 20:00,5,fast
        2026-07-06 19:00,2026-07-06 20:00,5,fast
        """)
    path = write(tmp_path, csv=csv)
    v2gsim.load_scenario(path)  # valid: some sessions fall within the run
    from v2gsim.cli import main

    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-progress", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert ("warning: 1 session(s) dropped: they arrive outside the run; 1 session(s) asked more than the battery takes (40.0 kWh cut); "
            "1 session(s) turned away, no free charger (5.0 kWh unmet)") in out
    k = v2gsim.Results.load(tmp_path / "out").kpis
    assert k["sessions_dropped_outside_horizon"] == 1 and k["sessions_energy_capped"] == 1
    assert k["session_energy_capped_kwh"] == pytest.approx(40.0)
    assert k["sessions_turned_away"] == 1 and k["unmet_energy_turned_away_kwh"] == pytest.approx(5.0)
    # the capped car arrives empty and takes 110 kWh in 23.75 h at 7 kW; each fast car charging
    # half an hour gets 3.5 of 5 kWh
    assert k["unmet_energy_kwh"] == pytest.approx(5.0 + 1.5 + 1.5)
    assert k["sessions"] == 3 and k["no_charger_events"] == 2
    assert k["queued_at_public"] == 2 and k["queue_left"] == 1 and k["queue_wait_min"] == pytest.approx(60.0)


def test_sessions_open_at_the_horizon_are_closed_once(tmp_path):
    # A: 22:00 to 08:00 tomorrow, 20 kWh at 7 kW: 14 kWh by midnight, 6 kWh pending, 8 h left to
    #    deliver them: nothing unmet yet.
    # B: 23:00 to 00:30 tomorrow, 20 kWh at 3.6 kW: 3.6 kWh by midnight; in the half hour left
    #    at most 1.8 kWh more: 14.6 kWh can no longer be met.
    csv = textwrap.dedent("""\
        arrival,departure,energy_kwh,site_id,max_power_kw
        2026-07-06 22:00,2026-07-07 08:00,20,lot,
        2026-07-06 23:00,2026-07-07 00:30,20,lot,3.6
        2026-07-06 18:00,2026-07-06 20:00,10,lot,
        """)
    r = run_csv(tmp_path, csv)
    v = r.vehicles.set_index("vehicle")
    np.testing.assert_allclose(v["e_charged_kwh"], [14.0, 3.6, 10.0], rtol=1e-12)
    assert list(v["sessions"]) == [1, 1, 1]
    assert list(v["plugged_at_end"]) == [True, True, False]
    np.testing.assert_allclose(v["unmet_kwh"], [0.0, 14.6, 0.0], atol=1e-12)
    np.testing.assert_allclose(v["pending_kwh"], [6.0, 16.4, 0.0], atol=1e-12)
    k = r.kpis
    assert k["sessions"] == 3 and k["sessions_open_at_end"] == 2
    assert k["unmet_energy_kwh"] == pytest.approx(14.6) and k["energy_pending_at_end_kwh"] == pytest.approx(22.4)
    s = r.sessions.set_index("vehicle").sort_index()
    assert s["departure"].isna().tolist() == [True, True, False]
    np.testing.assert_allclose(s["unmet_kwh"], [0.0, 14.6, 0.0], atol=1e-12)


def test_session_table_and_vehicle_totals_agree_and_nothing_is_counted_twice():
    from helpers import scenario

    from v2gsim.model import V2GModel
    from v2gsim.results import Results
    from v2gsim.scenario.schema import OutputsConfig

    sc = scenario(outputs=OutputsConfig(session_sample=1000))
    m = V2GModel(sc)
    r = m.run()
    v = r.vehicles.set_index("vehicle")
    assert v["plugged_at_end"].sum() > 5  # the run ends at midnight with cars plugged in at home
    per = r.sessions.groupby("vehicle")
    np.testing.assert_array_equal(per.size().reindex(v.index, fill_value=0), v["sessions"])
    np.testing.assert_allclose(per["unmet_kwh"].sum().reindex(v.index, fill_value=0.0), v["unmet_kwh"] - v["unmet_turned_away_kwh"], atol=1e-9)
    open_rows = r.sessions[r.sessions["departure"].isna()]
    assert sorted(open_rows["vehicle"]) == sorted(v.index[v["plugged_at_end"]])
    again = Results.from_model(m)  # results built twice from one model: the open sessions were closed once
    assert again.kpis["sessions"] == r.kpis["sessions"] and len(again.sessions) == len(r.sessions)
    early = V2GModel(sc)
    for _ in range(40):
        early.step()
    early.finish()  # closing before the horizon ends the run: stepping on would count sessions twice
    with pytest.raises(v2gsim.errors.SimulationError, match="finished"):
        early.step()
