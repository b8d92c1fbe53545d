"""China's official calendar: the type of each day — workday, Saturday, Sunday or holiday.

One implementation for everything that depends on whether people work on a day: the provincial
base-load profiles (:mod:`v2gsim.data.cn_load`), the drivers' day plans
(:mod:`v2gsim.population.mobility`), the demand-response baseline's similar days
(:mod:`v2gsim.market.baseline`) and the centralized operator's arrival forecast
(:mod:`v2gsim.strategies.centralized`).

The dates come from the ``holidays`` package (``holidays.China``), which carries the State
Council's yearly arrangement (国务院办公厅关于部分节假日安排的通知): the statutory public holidays,
the weekdays given off to bridge them (调休 days off) and the weekend days worked in exchange
(``weekend_workdays``). Types:

* ``HOLIDAY``: a listed holiday or moved day off, and any Saturday or Sunday in the same run of
  consecutive days off as one (the National Day week 1–7 October 2026 is seven holidays, though
  ``holidays.China`` lists the Sunday 4 October as neither, since it was a day off anyway);
* ``WORKDAY``: Monday to Friday unless a holiday, and a weekend day worked in exchange (e.g.
  Sunday 20 September and Saturday 10 October 2026);
* ``SATURDAY``, ``SUNDAY``: the other weekend days.

Whoever matches days (the baseline, the forecast, the drivers) uses two classes, workday and rest
day (Saturday, Sunday, holiday): the drivers' archetypes plan a workday or a day off and nothing
finer, and the provincial load data have one typical rest day. Years that ``holidays`` has no
arrangement for (with ``holidays`` 0.109: 2027 on) get the statutory holidays only, without moved
days off or weekend workdays.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

__all__ = ["WORKDAY", "SATURDAY", "SUNDAY", "HOLIDAY", "DAY_TYPE_NAMES", "year_day_types", "day_types", "is_workday"]

WORKDAY, SATURDAY, SUNDAY, HOLIDAY = 0, 1, 2, 3
DAY_TYPE_NAMES = ("workday", "saturday", "sunday", "holiday")


@functools.cache
def year_day_types(year: int) -> np.ndarray:
    """Day type of each day of ``year`` (1 January first), int8 (365 or 366,)."""
    import holidays

    # the neighbouring years too: a run of days off may cross New Year
    cal = holidays.China(years=(year - 1, year, year + 1))
    days = pd.date_range(f"{year - 1}-12-01", f"{year + 1}-01-31", freq="D")
    listed = days.isin(pd.DatetimeIndex(list(cal.keys())))
    worked = days.isin(pd.DatetimeIndex(sorted(cal.weekend_workdays)))
    dow = np.asarray(days.dayofweek)
    kind = np.where(dow == 5, SATURDAY, np.where(dow == 6, SUNDAY, WORKDAY)).astype(np.int8)
    kind[worked] = WORKDAY
    off = (kind != WORKDAY) | listed
    kind[listed] = HOLIDAY
    # spread HOLIDAY over each run of consecutive days off that holds a listed holiday
    run = np.cumsum(np.r_[True, off[1:] != off[:-1]])  # label of each run of equal `off`
    holiday_run = np.zeros(run[-1] + 1, bool)
    holiday_run[run[listed]] = True
    kind[off & holiday_run[run]] = HOLIDAY
    first = (pd.Timestamp(f"{year}-01-01") - days[0]).days
    n = 366 if pd.Timestamp(f"{year}-12-31").dayofyear == 366 else 365
    return kind[first:first + n]


def day_types(times) -> np.ndarray:
    """Day type (``WORKDAY`` … ``HOLIDAY``) of the date of each time, int8, shape (len(times),).

    ``times``: anything :class:`pandas.DatetimeIndex` accepts (wall-clock times: the date is the
    local one)."""
    t = pd.DatetimeIndex(times)
    out = np.empty(len(t), np.int8)
    if not len(t):
        return out
    years = np.asarray(t.year)
    doy = np.asarray(t.dayofyear) - 1
    for y in np.unique(years):  # a loop over the run's years, not its steps
        sel = years == y
        out[sel] = year_day_types(int(y))[doy[sel]]
    return out


def is_workday(times) -> np.ndarray:
    """Whether the date of each time is a workday on China's official calendar, bool (len(times),)."""
    return day_types(times) == WORKDAY
