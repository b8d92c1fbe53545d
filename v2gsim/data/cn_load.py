"""Chinese provincial base-load profiles: a year assembled from typical days on China's calendar.

``cn:<province>:province`` (``cn:guangdong:province``, ``cn:beijing:province``, ... 31 provinces)
is the whole-province load of that province, built from six typical days of the source year
(a workday and a rest day in winter, transition and summer; ``cn_province_load.yaml`` names
them and the source, tag [B]). A calendar year is assembled day by day:

* the season of a day is its month's (``seasons`` in the YAML; a modelling choice [C]);
* its day type is China's official one (:mod:`v2gsim.data.cn_calendar`, from ``holidays.China``):
  Saturdays, Sundays and public holidays (with the days off that move into the week) are rest days, and the weekend days
  worked in exchange (调休) are workdays;
* the typical day's 24 hourly values are held for each hour, and the year is divided by its
  mean, so that the profile has mean 1 over every calendar year like the BDEW profiles.

These curves are province-wide (industry included): they carry China's seasonal levels,
working-day pattern and holidays (Spring Festival), not the shape of a residential feeder.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from v2gsim.data.cn_calendar import WORKDAY, year_day_types

__all__ = ["CN_PREFIX", "cn_profile", "cn_profile_names", "cn_metadata", "day_types"]

CN_PREFIX = "cn"
SECTOR = "province"
HOURS = 24


@functools.cache
def cn_metadata() -> dict:
    """The YAML beside the data: source, year, typical days, seasons and province codes."""
    return yaml.safe_load(resources.files("v2gsim.data").joinpath("cn_province_load.yaml").read_text(encoding="utf-8"))


@functools.cache
def _typical_days() -> dict[tuple[str, str], pd.DataFrame]:
    """(season, day type) -> DataFrame (24 hours x province codes) of the source's MW values."""
    meta = cn_metadata()
    with resources.files("v2gsim.data").joinpath("cn_province_load_2018_days.csv").open("rb") as fh:
        df = pd.read_csv(fh)
    year_start = pd.Timestamp(f"{meta['year']}-01-01")
    hour0 = df["Time Series"].to_numpy() - 1  # the source counts hours of the year from 1
    out = {}
    for season, kinds in meta["days"].items():
        for kind, day in kinds.items():
            first = (pd.Timestamp(day) - year_start) // pd.Timedelta(hours=1)
            rows = np.flatnonzero((hour0 >= first) & (hour0 < first + HOURS))
            if rows.size != HOURS:
                raise RuntimeError(f"cn_province_load_2018_days.csv lacks hours of {day} ({season} {kind})")
            out[season, kind] = df.iloc[rows].drop(columns="Time Series").reset_index(drop=True)
    return out


@functools.cache
def cn_profile_names() -> tuple[str, ...]:
    """``cn:<province>:province`` for each province of the data, alphabetically."""
    return tuple(sorted(f"{CN_PREFIX}:{name}:{SECTOR}" for name in cn_metadata()["provinces"].values()))


def day_types(year: int) -> np.ndarray:
    """Whether each day of ``year`` is a workday on China's official calendar, bool (days,).

    Saturdays, Sundays and public holidays (with the moved days off) rest, the weekend days
    worked in exchange are workdays: :func:`v2gsim.data.cn_calendar.year_day_types`."""
    return year_day_types(year) == WORKDAY


def _season_of_month() -> np.ndarray:
    """Season name per month 1..12 (index 0 unused)."""
    out = np.empty(13, dtype=object)
    for season, months in cn_metadata()["seasons"].items():
        out[months] = season
    return out


@functools.cache
def cn_profile(name: str, year: int) -> np.ndarray:
    """Hourly profile of ``name`` over calendar ``year``, mean 1, shape (days * 24,), from 1 January.

    Raises:
        KeyError: ``name`` is not one of :func:`cn_profile_names`.
    """
    if name not in cn_profile_names():
        raise KeyError(name)
    province = name.split(":")[1]
    code = next(c for c, n in cn_metadata()["provinces"].items() if n == province)
    typical = _typical_days()
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    season = _season_of_month()[days.month.to_numpy()]
    work = day_types(year)
    shape = np.empty((len(days), HOURS))
    for s in np.unique(season):
        for is_work, kind in ((True, "workday"), (False, "rest_day")):
            sel = (season == s) & (work == is_work)
            shape[sel] = typical[s, kind][code].to_numpy(np.float64)[None, :]
    values = shape.ravel()
    return values / values.mean()
