"""Session files as ACN-Data and ElaadNL publish them, replayed like the normalised CSV.

The files below are written by hand in the published shapes: ACN-Data's API document
({"_meta", "_items", "_links"}, times as RFC 1123 strings in GMT, null doneChargingTime and
userInputs where the API gives null), and ElaadNL's open transaction file (its ten columns;
semicolon-separated with decimal commas and d/m/Y times, as the published CSV is, or
comma-separated with ISO times)."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.population.mobility import detect_format, read_sessions

SCENARIO = """\
name: published sessions
seed: 3
time: {start: 2026-07-06T00:00, step_min: 15, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: 50, households: 0}
tariff: {flat_cny_per_kwh: 0.5}
sites:
  - {id: lot, kind: public, p_max_kw: 7, chargers: 5}
  - {id: fast, kind: public, p_max_kw: 11, chargers: 1}
mobility_sessions:
  SESSIONS
  vehicle: {capacity_kwh: 100, consumption_kwh_per_km: 0.15, p_ac_max_kw: 7, p_dc_max_kw: 1000, eta_charge: 0.9}
"""

# the same three sessions in the scenario's zone (Asia/Shanghai = GMT+8), as the normalised CSV
NORMALISED = """\
arrival,departure,energy_kwh,site_id,max_power_kw
2026-07-06 18:00,2026-07-06 20:00,10,lot,
2026-07-06 18:00,2026-07-06 21:00,20,lot,3.6
2026-07-06 19:00,2026-07-06 19:30,5,fast,
"""


def acn_item(conn, disc, kwh, station, site="0002", done=None, user_inputs=None, user="000000561"):
    return {"_id": "5c2e8d0ef9af8b12f3a7c6d1", "clusterID": "0039", "connectionTime": conn, "disconnectTime": disc,
            "doneChargingTime": done, "kWhDelivered": kwh, "sessionID": f"{station}_{conn}", "siteID": site, "spaceID": "CA-317",
            "stationID": station, "timezone": "America/Los_Angeles", "userID": user, "userInputs": user_inputs}


ACN = {
    "_meta": {"max_results": 25, "page": 1, "total": 3},
    "_links": {"self": {"title": "sessions", "href": "sessions/caltech?where=..."}},
    "_items": [
        acn_item("Mon, 06 Jul 2026 10:00:00 GMT", "Mon, 06 Jul 2026 12:00:00 GMT", 10.0, "2-39-78-362",
                 done="Mon, 06 Jul 2026 11:25:43 GMT",
                 user_inputs=[{"WhPerMile": 250, "kWhRequested": 25.0, "milesRequested": 100, "minutesAvailable": 120,
                               "modifiedAt": "Mon, 06 Jul 2026 10:01:12 GMT", "paymentRequired": True,
                               "requestedDeparture": "Mon, 06 Jul 2026 12:00:00 GMT", "userID": 561}]),
        acn_item("Mon, 06 Jul 2026 10:00:00 GMT", "Mon, 06 Jul 2026 13:00:00 GMT", 20.0, "2-39-79-380", user=None),
        acn_item("Mon, 06 Jul 2026 11:00:00 GMT", "Mon, 06 Jul 2026 11:30:00 GMT", 5.0, "2-39-91-437", site="0001"),
    ],
}

ELAAD_HEADER = "TransactionId;ChargePoint;Connector;UTCTransactionStart;UTCTransactionStop;StartCard;ConnectedTime;ChargeTime;TotalEnergy;MaxPower\n"
ELAAD = ELAAD_HEADER + """\
3569583;5ab468315a1f42feb6d0a87307593352;1;06/07/2026 10:00;06/07/2026 12:00;7e4f2b0c1d;2;1,43;10;7,2
3569584;bd6ca6d3b3ae4c3a8b5d7a1e0f2c9d84;2;06/07/2026 10:00;06/07/2026 13:00;91aa03ff42;3;3;20;3,6
3569585;0f3d9b8e2c1a4f6b9e7d5c3a1b2e4f6a;1;06/07/2026 11:00;06/07/2026 11:30;c0ffee1234;0,5;0,5;5;11
"""


def write(tmp_path, sessions_yaml, name, content):
    (tmp_path / name).write_text(content)
    (tmp_path / "s.yaml").write_text(SCENARIO.replace("SESSIONS", textwrap.indent(sessions_yaml, "  ").strip()))
    return tmp_path / "s.yaml"


def reference(tmp_path):
    sub = tmp_path / "ref"
    sub.mkdir()
    return v2gsim.run(v2gsim.load_scenario(write(sub, "file: sessions.csv", "sessions.csv", NORMALISED)))


def test_acn_json_replays_like_the_normalised_csv(tmp_path):
    # station 2-39-78-362 is mapped; 2-39-79-380 is not, but its siteID 0002 is; the third
    # station and site are unmapped and land on default_site. The second session has no
    # MaxPower in ACN-Data: it charges at the car's 7 kW, not at the CSV's 3.6 kW limit.
    sessions = "file: acn.json\nformat: acn_json\nsite_map: {2-39-78-362: lot, '0002': lot}\ndefault_site: fast"
    r = v2gsim.run(v2gsim.load_scenario(write(tmp_path, sessions, "acn.json", json.dumps(ACN))))
    ref = reference(tmp_path)
    ev, ev_ref = r.system["ev_charge_kw"], ref.system["ev_charge_kw"]
    assert ev.loc["2026-07-06 17:45"] == 0 and ev.loc["2026-07-06 18:00"] == pytest.approx(14.0)
    s = r.sessions.set_index("vehicle")
    assert list(s["e_request_kwh"]) == pytest.approx([10, 20, 5])
    assert str(s.loc[0, "arrival"]) == "2026-07-06 18:00:00" and str(s.loc[1, "departure"]) == "2026-07-06 21:00:00"
    # vehicles 0 and 2 are the reference's; vehicle 1 takes 7 kW where the CSV capped it at 3.6:
    # 20 kWh = eleven full steps (19.25 kWh) and 0.75 kWh at 3 kW in the step from 20:45
    np.testing.assert_allclose(r.vehicles["e_charged_kwh"].to_numpy()[[0, 2]], ref.vehicles["e_charged_kwh"].to_numpy()[[0, 2]])
    assert r.vehicles["e_charged_kwh"].iloc[1] == pytest.approx(20.0)
    assert ev.loc["2026-07-06 19:00"] == pytest.approx(21.0) and ev_ref.loc["2026-07-06 19:00"] == pytest.approx(17.6)
    assert ev.loc["2026-07-06 20:45"] == pytest.approx(3.0) and ev.loc["2026-07-06 21:00"] == 0


def test_elaad_csv_as_published_replays_like_the_normalised_csv(tmp_path):
    sessions = ("file: transactions.csv\nsite_map: {5ab468315a1f42feb6d0a87307593352: lot, bd6ca6d3b3ae4c3a8b5d7a1e0f2c9d84: lot, "
                "0f3d9b8e2c1a4f6b9e7d5c3a1b2e4f6a: fast}")
    r = v2gsim.run(v2gsim.load_scenario(write(tmp_path, sessions, "transactions.csv", ELAAD)))
    ref = reference(tmp_path)
    # the same sessions, power limits (MaxPower 7,2 / 3,6 / 11 kW) included: the same run
    pd.testing.assert_series_equal(r.system["ev_charge_kw"], ref.system["ev_charge_kw"])
    np.testing.assert_allclose(r.vehicles["e_charged_kwh"], ref.vehicles["e_charged_kwh"], rtol=1e-12)


def test_elaad_comma_separated_iso_times_and_a_file_time_zone(tmp_path):
    # the same transactions written with commas and ISO times, given in Amsterdam summer time
    # (UTC+2): 12:00 Amsterdam = 10:00 UTC = 18:00 Shanghai
    text = ELAAD_HEADER.replace(";", ",") + """\
3569583,5ab468315a1f42feb6d0a87307593352,1,2026-07-06 12:00:00,2026-07-06 14:00:00,7e4f2b0c1d,2,1.43,10,7.2
3569584,bd6ca6d3b3ae4c3a8b5d7a1e0f2c9d84,2,2026-07-06 12:00:00,2026-07-06 15:00:00,91aa03ff42,3,3,20,3.6
3569585,0f3d9b8e2c1a4f6b9e7d5c3a1b2e4f6a,1,2026-07-06 13:00:00,2026-07-06 13:30:00,c0ffee1234,0.5,0.5,5,11
"""
    site_map = "{5ab468315a1f42feb6d0a87307593352: lot, bd6ca6d3b3ae4c3a8b5d7a1e0f2c9d84: lot, 0f3d9b8e2c1a4f6b9e7d5c3a1b2e4f6a: fast}"
    sessions = f"file: t.csv\nformat: elaad_csv\nfile_timezone: Europe/Amsterdam\nsite_map: {site_map}"
    r = v2gsim.run(v2gsim.load_scenario(write(tmp_path, sessions, "t.csv", text)))
    ref = reference(tmp_path)
    pd.testing.assert_series_equal(r.system["ev_charge_kw"], ref.system["ev_charge_kw"])


def test_formats_are_told_apart_by_content(tmp_path):
    for name, content, fmt in (("a.json", json.dumps(ACN), "acn_json"), ("b.json", json.dumps(ACN["_items"]), "acn_json"),
                               ("c.csv", ELAAD, "elaad_csv"), ("d.csv", "\ufeff" + ELAAD.replace(";", ","), "elaad_csv"),
                               ("e.csv", NORMALISED, "csv")):
        (tmp_path / name).write_text(content, encoding="utf-8")
        assert detect_format(tmp_path / name) == fmt, name


def test_bad_elaad_rows_are_named_by_row_and_column(tmp_path):
    bad = ELAAD_HEADER + (
        "1;5ab468315a1f42feb6d0a87307593352;1;06/07/2026 10:00;06/07/2026 12:00;c1;2;1;10;7,2\n"
        "2;5ab468315a1f42feb6d0a87307593352;1;31/06/2026 10:00;06/07/2026 12:00;c2;2;1;-3;7,2\n"
        "3;ffff;1;06/07/2026 10:00;06/07/2026 09:00;c3;2;1;abc;0\n")
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(write(tmp_path, "file: t.csv\nsite_map: {5ab468315a1f42feb6d0a87307593352: lot}", "t.csv", bad))
    text = str(exc.value)
    assert "t.csv row 3, column UTCTransactionStart: not a date-time like 2026-07-06 08:15; got '31/06/2026 10:00'" in text
    assert "t.csv row 3, column TotalEnergy: negative energy" in text
    assert "t.csv row 4, column TotalEnergy: not a number; got 'abc'" in text
    assert "t.csv row 4, column UTCTransactionStop: not after the arrival" in text
    assert "t.csv row 4, column MaxPower: must be a number > 0" in text
    assert "t.csv row 4, column ChargePoint: not a site of the scenario" in text and "site_map" in text
    assert "mobility_sessions.file" in text and "line" in text


def test_bad_acn_items_are_named_by_item_session_and_field(tmp_path):
    doc = json.loads(json.dumps(ACN))
    doc["_items"][1]["kWhDelivered"] = "n/a"
    doc["_items"][2]["connectionTime"] = "Mon, 06 Jul 2026 11:00:00"  # the offset is lost: a naive time, still readable
    doc["_items"][2]["disconnectTime"] = None  # a session still connected when the file was written
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(write(tmp_path, "file: acn.json\ndefault_site: lot", "acn.json", json.dumps(doc)))
    text = str(exc.value)
    assert "acn.json item 2 (sessionID '2-39-79-380_Mon, 06 Jul 2026 10:00:00 GMT'), field kWhDelivered: not a number; got 'n/a'" in text
    assert "acn.json item 3" in text and "field disconnectTime: not a date-time" in text and "got None" in text


def test_not_a_session_document_and_missing_published_columns(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"sessions": 3}))
    _, problems = read_sessions(tmp_path / "x.json", ["lot"], "lot", "mobility_sessions.file", "Asia/Shanghai")
    assert "is not an ACN-Data session document" in problems[0].message
    (tmp_path / "y.csv").write_text(NORMALISED)
    _, problems = read_sessions(tmp_path / "y.csv", ["lot"], "lot", "mobility_sessions.file", "Asia/Shanghai", fmt="elaad_csv")
    assert "missing column(s) ChargePoint, UTCTransactionStart, UTCTransactionStop, TotalEnergy" in problems[0].message
    (tmp_path / "z.json").write_text(json.dumps({"_items": []}))
    _, problems = read_sessions(tmp_path / "z.json", ["lot"], "lot", "mobility_sessions.file", "Asia/Shanghai")
    assert "has no sessions" in problems[0].message


def test_site_map_values_must_be_sites_and_one_file_key(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(write(tmp_path, "file: t.csv\nsite_map: {abc: lott}", "t.csv", ELAAD))
    assert "mobility_sessions.site_map.abc" in str(exc.value) and "did you mean 'lot'" in str(exc.value)
    with pytest.raises(ScenarioError, match="once"):
        v2gsim.load_scenario(write(tmp_path, "file: t.csv\ncsv: t.csv\ndefault_site: lot", "t.csv", ELAAD))


def test_elaad_times_with_an_offset_follow_the_scenario_rule(tmp_path):
    # a row given with an explicit offset is converted as such; the others are read as UTC
    text = ELAAD.replace("06/07/2026 11:00;06/07/2026 11:30", "2026-07-06T13:00+02:00;2026-07-06T13:30+02:00")
    site_map = {"5ab468315a1f42feb6d0a87307593352": "lot", "bd6ca6d3b3ae4c3a8b5d7a1e0f2c9d84": "lot",
                "0f3d9b8e2c1a4f6b9e7d5c3a1b2e4f6a": "fast"}
    (tmp_path / "t.csv").write_text(text)
    table, problems = read_sessions(tmp_path / "t.csv", ["lot", "fast"], None, "mobility_sessions.file", "Asia/Shanghai",
                                    site_map=site_map)
    assert not problems
    assert [str(t) for t in table.frame["arrival"]] == ["2026-07-06 18:00:00", "2026-07-06 18:00:00", "2026-07-06 19:00:00"]
    assert list(table.frame["site_id"]) == ["lot", "lot", "fast"]
    assert list(table.frame["max_power_kw"]) == [7.2, 3.6, 11.0]
