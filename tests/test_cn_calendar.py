"""China's official calendar (v2gsim.data.cn_calendar) and what uses it: the demand-response
baseline's similar days over the 2026 Mid-Autumn and National Day holidays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim.data.cn_calendar import DAY_TYPE_NAMES, HOLIDAY, SATURDAY, SUNDAY, WORKDAY, day_types, is_workday
from v2gsim.data.cn_load import day_types as cn_load_workdays
from v2gsim.market.baseline import similar_day_baseline

# The State Council's 2026 holiday arrangement as holidays.China 0.109 carries it:
# Mid-Autumn Fri 25 Sep (with the weekend 26-27 Sep), National Day Thu 1 - Wed 7 Oct, worked in
# exchange Sun 20 Sep and Sat 10 Oct.
SEP18_OCT12 = {
    "2026-09-18": "workday", "2026-09-19": "saturday", "2026-09-20": "workday", "2026-09-21": "workday",
    "2026-09-22": "workday", "2026-09-23": "workday", "2026-09-24": "workday", "2026-09-25": "holiday",
    "2026-09-26": "holiday", "2026-09-27": "holiday", "2026-09-28": "workday", "2026-09-29": "workday",
    "2026-09-30": "workday", "2026-10-01": "holiday", "2026-10-02": "holiday", "2026-10-03": "holiday",
    "2026-10-04": "holiday", "2026-10-05": "holiday", "2026-10-06": "holiday", "2026-10-07": "holiday",
    "2026-10-08": "workday", "2026-10-09": "workday", "2026-10-10": "workday", "2026-10-11": "sunday",
    "2026-10-12": "workday",
}


def test_autumn_2026_day_types():
    days = pd.DatetimeIndex(list(SEP18_OCT12))
    assert [DAY_TYPE_NAMES[k] for k in day_types(days)] == list(SEP18_OCT12.values())
    # times within a day take the day's type
    assert day_types(pd.DatetimeIndex(["2026-10-04 23:45", "2026-10-10 08:00"])).tolist() == [HOLIDAY, WORKDAY]


def test_new_year_runs_of_days_off_cross_years():
    # 2026: 1-3 January off (Thu-Sat), Sun 4 January worked; 2025-12-31 a plain Wednesday
    days = pd.date_range("2025-12-31", "2026-01-05", freq="D")
    assert [DAY_TYPE_NAMES[k] for k in day_types(days)] == [
        "workday", "holiday", "holiday", "holiday", "workday", "workday"]


def test_cn_load_uses_the_same_calendar():
    days = pd.date_range("2026-01-01", "2026-12-31", freq="D")
    assert np.array_equal(cn_load_workdays(2026), is_workday(days))


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=pd.Timestamp("2015-01-01").date(), max_value=pd.Timestamp("2030-12-31").date()))
def test_types_agree_with_weekday_and_the_holiday_list(date):
    import holidays

    cal = holidays.China(years=date.year)
    kind = int(day_types(pd.DatetimeIndex([date]))[0])
    if date in cal.weekend_workdays:
        assert kind == WORKDAY
    elif date in cal:
        assert kind == HOLIDAY
    elif date.weekday() < 5:
        assert kind == WORKDAY  # a plain weekday is never spread a holiday over
    else:
        assert kind in (SATURDAY, SUNDAY, HOLIDAY)
        assert kind == HOLIDAY or kind == (SATURDAY if date.weekday() == 5 else SUNDAY)


# --- the baseline over the National Day week -------------------------------------------------

CLOCK = pd.date_range("2026-09-18", "2026-10-12 23:00", freq="h")  # 1-hour steps, Fri 18 Sep first


def _daily_load() -> np.ndarray:
    """Day d (0 = Fri 18 Sep) draws d + 1 kW at every hour: Fri 18 Sep 1 kW ... Mon 12 Oct 25 kW."""
    return np.repeat(np.arange(1.0, 26.0), 24)


def _at(day: str, hour: int) -> int:
    return int((pd.Timestamp(day) + pd.Timedelta(hours=hour) - CLOCK[0]) / pd.Timedelta(hours=1))


def test_first_workday_after_national_day_skips_both_holidays():
    a = _at("2026-10-08", 18)
    base = similar_day_baseline(_daily_load(), CLOCK, a, a + 2, n_days=5, steps_per_day=24)
    # workdays before Thu 8 Oct: Wed 30 Sep (13 kW), Tue 29 (12), Mon 28 (11); then the Mid-Autumn
    # holiday 25-27 Sep is skipped: Thu 24 (7), Wed 23 (6)
    assert base.method == "similar_days" and base.days_back == (8, 9, 10, 14, 15)
    assert base.p_kw == pytest.approx([(13 + 12 + 11 + 7 + 6) / 5] * 2)


def test_make_up_saturday_is_a_workday():
    a = _at("2026-10-10", 9)  # Sat 10 Oct, worked in exchange
    base = similar_day_baseline(_daily_load(), CLOCK, a, a + 1, n_days=5, steps_per_day=24)
    # Fri 9 (22 kW), Thu 8 (21), then the seven days off skipped: Wed 30 Sep (13), Tue 29 (12), Mon 28 (11)
    assert base.days_back == (1, 2, 10, 11, 12) and base.p_kw == pytest.approx([(22 + 21 + 13 + 12 + 11) / 5])
    # and a workday event sees the make-up Sunday 20 Sep (3 kW) as a similar day
    a = _at("2026-09-24", 9)
    base = similar_day_baseline(_daily_load(), CLOCK, a, a + 1, n_days=5, steps_per_day=24)
    assert base.days_back == (1, 2, 3, 4, 6) and base.p_kw == pytest.approx([(6 + 5 + 4 + 3 + 1) / 5])


def test_holiday_event_takes_rest_days():
    a = _at("2026-10-06", 12)  # Tue 6 Oct, a holiday
    base = similar_day_baseline(_daily_load(), CLOCK, a, a + 1, n_days=5, steps_per_day=24)
    # rest days before: Mon 5 Oct (18 kW) ... Thu 1 Oct (14); the workdays 28-30 Sep never enter
    assert base.days_back == (1, 2, 3, 4, 5) and base.p_kw == pytest.approx([(18 + 17 + 16 + 15 + 14) / 5])


# --- the drivers' day plans -------------------------------------------------------------------

def test_commuters_rest_on_holidays_and_work_make_up_days():
    """Private commuters commute (a leg to work) on ~90 % of workdays and never on a day off; a
    run from 27 Sep to 11 Oct 2026 crosses National Day and both make-up workdays' neighbours."""
    import v2gsim
    from v2gsim.model import V2GModel
    from v2gsim.population.fleet import WORK

    sc = v2gsim.load_scenario("smoke", {"time.start": "2026-09-27T00:00", "time.horizon_days": 15,
                                        "time.warmup_days": 0, "population.0.count": 200})
    src = V2GModel(sc).sources[0]
    days = src.day0 + pd.to_timedelta(np.arange(15), unit="D")
    commutes = np.array([int((src.day(d).dep_dest == WORK).sum()) for d in range(days.size)])
    work = is_workday(days)
    assert work.sum() == 6 and (~work).sum() == 9  # 28-30 Sep, 8-10 Oct (Sat 10 worked); 27 Sep, 1-7 and 11 Oct off
    assert (commutes[~work] == 0).all(), dict(zip(days.date, commutes))
    # 200 commuters, 90 % commute on a workday [C]: 180 expected, binomial sd ~4
    assert (commutes[work] > 150).all(), dict(zip(days.date, commutes))
    assert commutes[list(days).index(pd.Timestamp("2026-10-10"))] > 150  # a Saturday worked in exchange


# --- the centralized operator's arrival forecast ---------------------------------------------

def test_arrival_forecast_lag_by_day_type():
    from v2gsim.strategies.centralized import _same_day_type_lag

    # centralized_hub's week: warm-up Sun 5 July, then Mon 6 - Sun 12 July 2026; hourly steps
    times = pd.date_range("2026-07-05", periods=24 * 8, freq="h")
    lag_days = _same_day_type_lag(times, 24)[::24] // 24
    # Sun 5: no history (yesterday); Mon 6: no earlier workday (yesterday); Tue-Fri: yesterday;
    # Sat 11: the Sunday 6 days before, not Friday; Sun 12: Saturday
    assert lag_days.tolist() == [1, 1, 1, 1, 1, 1, 6, 1]
    # National Day 2026: Thu 1 Oct from the Mid-Autumn Sunday 27 Sep (4 days), Thu 8 Oct from
    # Wed 30 Sep (8 days), the make-up Sat 10 Oct from Fri 9, Sun 11 Oct from Wed 7 Oct (4 days)
    times = pd.date_range("2026-09-18", "2026-10-12 23:00", freq="h")
    lag = dict(zip(times.normalize()[::24].strftime("%m-%d"), (_same_day_type_lag(times, 24)[::24] // 24).tolist()))
    assert (lag["10-01"], lag["10-08"], lag["10-10"], lag["10-11"], lag["09-28"], lag["09-20"]) == (4, 8, 1, 4, 4, 2)
    # within a day every step looks back the same number of days
    assert np.unique(_same_day_type_lag(times, 24)[24 * 20:24 * 21]).tolist() == [8 * 24]


@settings(max_examples=40, deadline=None)
@given(st.dates(min_value=pd.Timestamp("2016-01-01").date(), max_value=pd.Timestamp("2029-12-01").date()),
       st.integers(min_value=1, max_value=40))
def test_arrival_forecast_lag_is_the_most_recent_same_type_day(start, n_days):
    from v2gsim.strategies.centralized import FORECAST_LOOKBACK_DAYS, _same_day_type_lag

    times = pd.date_range(pd.Timestamp(start), periods=n_days * 4, freq="6h")  # 4 steps a day
    lag_days = _same_day_type_lag(times, 4)[::4] // 4
    work = is_workday(times[::4])
    for d, lag in enumerate(lag_days):
        same = [k for k in range(1, min(d, FORECAST_LOOKBACK_DAYS) + 1) if work[d - k] == work[d]]
        assert lag == (same[0] if same else 1)
