"""One rule for every time a scenario reads: naive times are wall-clock times of time.timezone,
times with a UTC offset are converted to it; every problem is found at validate."""

import textwrap

import numpy as np
import pandas as pd
import pytest

import v2gsim
from v2gsim.data.profiles import read_load_csv
from v2gsim.errors import ScenarioError
from v2gsim.physics.ambient import read_ambient_csv


def test_unknown_zone_is_a_scenario_error_with_line_and_hint(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent("""\
        name: zone
        time:
          start: 2026-07-06T00:00
          horizon_days: 1
          timezone: Asia/Shangai
        feeder: {transformer_kva: 50, households: 10}
        population: [{archetype: private_commuter, count: 2, vehicle: byd_dolphin_44}]
        """))
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(p)
    (pr,) = exc.value.problems
    assert (pr.path, pr.line) == ("time.timezone", 5)
    assert pr.message == "unknown time zone 'Asia/Shangai'; did you mean 'Asia/Shanghai'?"


def test_yaml_times_with_offsets_are_converted_everywhere():
    # time.start and the start of every business model's window follow time.timezone (Berlin,
    # summer time UTC+2); naive times are kept as written
    sc = v2gsim.load_scenario("smoke", [
        "time.timezone=Europe/Berlin",
        "time.start=2026-07-05T22:00:00Z",
        "business_models=[{kind: distributed, sites: [homes], invitations: [{start: '2026-07-06T16:00Z', hours: 1}],"
        " price_offers: [{start: '2026-07-06T02:00+08:00', hours: 2, price_cny_per_kwh: 0.2}]},"
        " {kind: centralized, sites: [office], requests: [{kind: peak_shaving, start: '2026-07-06T10:00', hours: 1, p_kw: 5}]}]",
    ])
    naive = lambda text: pd.Timestamp(text).to_pydatetime()  # noqa: E731
    assert sc.time.start == naive("2026-07-06 00:00")
    dist, cent = sc.business_models
    assert dist.invitations[0].start == naive("2026-07-06 18:00")
    assert dist.price_offers[0].start == naive("2026-07-05 20:00")
    assert cent.requests[0].start == naive("2026-07-06 10:00")
    sw = v2gsim.load_scenario("battery_swapping", ["time.timezone=UTC", "business_models.0.discharge_requests.0.start=2026-07-08T15:00+08:00"])
    assert sw.business_models[0].discharge_requests[0].start == naive("2026-07-08 07:00")


def test_configs_built_outside_a_scenario_are_converted_in_its_zone():
    from v2gsim.strategies.distributed import DistributedConfig, Invitation

    inv = Invitation(start="2026-07-06T10:00Z")
    assert inv.start.tzinfo is not None  # no scenario, no zone: the offset is kept
    sc = v2gsim.load_scenario("smoke")
    data = {**sc.model_dump(), "business_models": [DistributedConfig(invitations=[inv])]}
    assert v2gsim.Scenario.model_validate(data).business_models[0].invitations[0].start == pd.Timestamp("2026-07-06 18:00").to_pydatetime()


def _utc_hourly_load(path, first, hours):
    t = pd.date_range(first, periods=hours, freq="1h", tz="UTC")
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%MZ"), "p_kw": np.arange(hours, dtype=float)}).to_csv(path, index=False)


def test_a_base_load_file_in_utc_is_read_on_the_local_clock(tmp_path):
    # p_kw counts the hours from 2026-07-05 12:00Z; 2026-07-06 00:00 in Shanghai is 16:00Z, hour 4
    f = tmp_path / "load.csv"
    _utc_hourly_load(f, "2026-07-05 12:00", 48)
    sc = v2gsim.load_scenario("smoke", {"feeder.base_load.csv": str(f), "time.warmup_days": 0})
    r = v2gsim.run(sc)
    base = r.system["base_load_kw"]
    assert base.loc["2026-07-06 00:00"] == 4.0 and base.loc["2026-07-06 08:00"] == 12.0
    assert base.loc["2026-07-06 08:30"] == pytest.approx(12.5)  # interpolated


def test_coverage_of_base_load_and_ambient_files_is_checked_at_validate(tmp_path):
    f = tmp_path / "load.csv"
    _utc_hourly_load(f, "2026-07-05 20:00", 48)  # from 04:00 local: misses the first hours of the run
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario("smoke", {"feeder.base_load.csv": str(f), "time.warmup_days": 0})
    (p,) = exc.value.problems
    assert p.path == "feeder.base_load.csv" and "covers 2026-07-06 04:00:00 to" in p.message and "time zone" in p.hint
    t = tmp_path / "temp.csv"
    t.write_text("time,t_degc\n2026-07-06T00:00+08:00,28\n2026-07-06T12:00+08:00,33\n")
    with pytest.raises(ScenarioError, match="wear.ambient.csv.*covers 2026-07-06 00:00:00 to 2026-07-06 12:00:00"):
        v2gsim.load_scenario("smoke", {"wear.model": "auto", "wear.ambient": {"csv": str(t)}})


def test_series_across_the_end_of_daylight_saving_time(tmp_path):
    # Berlin, 25 Oct 2026: a UTC series passes 02:00-03:00 local twice; the model's wall clock
    # passes it once and keeps the first (summer-time) pass
    f = tmp_path / "load.csv"
    _utc_hourly_load(f, "2026-10-24 22:00", 6)  # 00:00, 01:00, 02:00 CEST, 02:00 CET, 03:00, 04:00
    series, problems = read_load_csv(f, "feeder.base_load.csv", "Europe/Berlin")
    assert problems == []
    assert list(series.index.hour) == [0, 1, 2, 3, 4] and list(series) == [0.0, 1.0, 2.0, 4.0, 5.0]
    # written naive, the repeated hour is ambiguous: out of order, with a hint
    f.write_text("time,p_kw\n2026-10-25 02:00,1\n2026-10-25 02:30,1\n2026-10-25 02:00,1\n")
    _, problems = read_load_csv(f, "feeder.base_load.csv", "Europe/Berlin")
    (p,) = problems
    assert "load.csv row 4, column time: not after the previous row" in p.message and "UTC offset" in p.hint
    # the skipped hour of spring is just wall-clock time
    f.write_text("time,t_degc\n2026-03-29 01:30,5\n2026-03-29 02:30,6\n2026-03-29 03:30,7\n")
    series, problems = read_ambient_csv(f, zone="Europe/Berlin")
    assert problems == [] and len(series) == 3


def test_a_file_without_rows_is_an_error(tmp_path):
    f = tmp_path / "load.csv"
    f.write_text("time,p_kw\n")
    _, problems = read_load_csv(f, "feeder.base_load.csv")
    assert "load.csv: has a header but no data rows" in problems[0].message
