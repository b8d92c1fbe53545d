"""cn:<province>:province base-load profiles: typical days of the source on China's calendar."""

import numpy as np
import pandas as pd
import pytest

import v2gsim
from v2gsim.data.cn_load import cn_metadata, cn_profile, cn_profile_names, day_types
from v2gsim.data.profiles import available_profiles, profile_on_clock
from v2gsim.errors import ScenarioError
from helpers import write_base_load_scenario

# Guangdong's MW at 15:00-16:00 on the typical days, read from cn_province_load_2018_days.csv
GD_WORKDAY_SUMMER_15H = 106816.0668  # hour 4744 (Tue 17 Jul 2018)
GD_RESTDAY_SUMMER_15H = 70748.59334  # hour 4696 (Sun 15 Jul 2018)
GD_WORKDAY_WINTER_15H = 79966.37322  # hour 376 (Tue 16 Jan 2018)


def hour_index(day: str, hour: int) -> int:
    d = pd.Timestamp(day)
    return (d.dayofyear - 1) * 24 + hour


def test_names_cover_31_provinces_and_are_listed():
    names = cn_profile_names()
    assert len(names) == 31 and "cn:guangdong:province" in names and "cn:beijing:province" in names
    assert set(names) <= set(available_profiles()) and "bdew:h0" in available_profiles()


@pytest.mark.parametrize("year", [2018, 2024, 2026])
def test_a_year_has_mean_one_and_one_value_per_hour(year):
    p = cn_profile("cn:guangdong:province", year)
    days = 366 if year % 4 == 0 else 365
    assert p.shape == (days * 24,) and p.mean() == pytest.approx(1.0, rel=1e-12)


def test_days_take_their_season_and_day_type_typical_day():
    p = cn_profile("cn:guangdong:province", 2018)
    # the source's own days come back, up to the year's scale
    ratio = p[hour_index("2018-07-17", 15)] / p[hour_index("2018-07-15", 15)]
    assert ratio == pytest.approx(GD_WORKDAY_SUMMER_15H / GD_RESTDAY_SUMMER_15H, rel=1e-12)
    assert p[hour_index("2018-01-16", 15)] / p[hour_index("2018-07-17", 15)] == pytest.approx(
        GD_WORKDAY_WINTER_15H / GD_WORKDAY_SUMMER_15H, rel=1e-12)
    # any summer Wednesday equals the summer workday; December is winter, October transition
    assert p[hour_index("2018-08-22", 15)] == p[hour_index("2018-07-17", 15)]
    assert p[hour_index("2018-12-12", 15)] == p[hour_index("2018-01-16", 15)]
    assert p[hour_index("2018-10-17", 15)] == p[hour_index("2018-04-17", 15)]


def test_chinese_holidays_and_weekend_workdays_2026():
    work = day_types(2026)
    doy = lambda d: pd.Timestamp(d).dayofyear - 1  # noqa: E731
    assert not work[doy("2026-02-17")]  # Spring Festival, a Tuesday: rest
    assert not work[doy("2026-10-01")] and not work[doy("2026-10-07")]  # National Day week (7 Oct moved off)
    assert work[doy("2026-02-14")] and work[doy("2026-09-20")]  # Saturday / Sunday worked in exchange
    assert work[doy("2026-03-04")] and not work[doy("2026-03-07")]  # an ordinary Wednesday / Saturday
    p = cn_profile("cn:beijing:province", 2026)
    winter_rest, winter_work = p[hour_index("2026-02-17", 10)], p[hour_index("2026-02-14", 10)]
    assert winter_rest == p[hour_index("2026-01-10", 10)] and winter_work == p[hour_index("2026-01-14", 10)]
    assert winter_rest != winter_work


def test_on_the_clock_steps_average_the_hourly_values():
    clock = pd.date_range("2026-07-06", periods=2 * 96, freq="15min")
    q = profile_on_clock("cn:shanghai:province", clock, 15)
    hourly = profile_on_clock("cn:shanghai:province", clock[::4], 60)
    np.testing.assert_allclose(q.reshape(-1, 4), np.repeat(hourly[:, None], 4, axis=1), rtol=1e-12)
    year = cn_profile("cn:shanghai:province", 2026)
    np.testing.assert_allclose(hourly, year[hour_index("2026-07-06", 0): hour_index("2026-07-06", 0) + 48], rtol=1e-12)
    # a 30-minute step starting at :30 straddles two hours
    half = profile_on_clock("cn:shanghai:province", pd.DatetimeIndex(["2026-07-06 10:30"]), 60)
    assert half[0] == pytest.approx((year[hour_index("2026-07-06", 10)] + year[hour_index("2026-07-06", 11)]) / 2)




def test_a_scenario_selects_a_chinese_profile(tmp_path):
    path = write_base_load_scenario(tmp_path, "cn:guangdong:province")
    r = v2gsim.run(v2gsim.load_scenario(path))
    # 100 households x 8,760 kWh/yr = 100 kW on average; the shape is Guangdong's summer workday
    year = cn_profile("cn:guangdong:province", 2026)
    expected = 100.0 * year[hour_index("2026-07-06", 0): hour_index("2026-07-06", 24)]
    np.testing.assert_allclose(r.system["base_load_kw"].to_numpy(), expected, rtol=1e-9)


def test_an_unknown_profile_gets_a_did_you_mean_with_its_line(tmp_path):
    path = write_base_load_scenario(tmp_path, "cn:guangdong:residential")
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(path)
    (p,) = exc.value.problems
    assert p.path == "feeder.base_load.profile" and p.line == 3
    assert "unknown standard load profile 'cn:guangdong:residential'" in p.message
    # no residential profile is shipped (none sourced): the hint says so first, then the close names
    assert p.hint.startswith("no Chinese residential profile is shipped")
    assert "use cn:<province>:province or :commercial" in p.hint and "did you mean 'cn:guangdong:" in p.hint


def test_metadata_names_a_source_and_a_tag():
    meta = cn_metadata()
    assert "Zenodo 8322210" in meta["source"] and "[B]" in meta["source"]
    assert sorted(m for months in meta["seasons"].values() for m in months) == list(range(1, 13))
