"""Ambient temperature on the run's clock, the input of battery temperature in the wear model.

A profile is a city preset (monthly mean temperatures plus a diurnal cycle, from
``physics/presets/ambient.yaml``, each with its source), a user CSV of measured temperatures
(columns ``time, t_degc``), or a constant. Presets are turned into a smooth hourly profile:

* the monthly means sit at the middle of their months and are interpolated linearly in day of
  year (cyclic over December-January);
* a cosine diurnal cycle of the preset's half-range is added, coldest at 03:00 and warmest at
  15:00 local time (a symmetric simplification of the real asymmetric cycle, coldest near
  sunrise). The cycle averages to zero over a day, so daily means equal the interpolated monthly
  curve.

Shapes: :func:`ambient_on_clock` returns float64 (len(clock),) in degC.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, field_validator, model_validator

from v2gsim.data.cn_capitals import city_temperature_rows, province_capitals
from v2gsim.data.profiles import coverage_problems, read_series_csv
from v2gsim.errors import Problem
from v2gsim.fields import ConfigModel

__all__ = ["AmbientConfig", "ambient_presets", "ambient_on_clock", "read_ambient_csv"]

_MID_MONTH_DOY = np.array([15.5, 45.0, 74.5, 105.0, 135.5, 166.0, 196.5, 227.5, 258.0, 288.5, 319.0, 349.5])


# Diurnal half-range of the capitals without a hand-written preset [C]: the values the
# hand-written presets use for cold-winter cities (Beijing, Harbin: 5.5 degC) where the January
# mean is below 0 degC, else those of the mild-winter cities (Shanghai, Chengdu: 3.5 degC).
# Not sourced (docs/data.md); a site study gives a measured wear.ambient.csv.
_HALF_RANGE_COLD_WINTER_DEGC, _HALF_RANGE_MILD_WINTER_DEGC = 5.5, 3.5


# GSOD station of each capital whose rows come from NOAA daily means (docs/cn_city_temperature.py)
_GSOD_STATIONS = {"urumqi": "51463099999", "xining": "52866099999", "yinchuan": "53614099999"}


def _capital_preset(city: str) -> dict | None:
    """A provincial capital's preset from the sourced table, or None.

    Its NBS yearbook years (2008, 2009) where the yearbook copy has the city, else its NOAA GSOD
    station-years (2022, 2023); the monthly means are the mean of those years. Two yearbook years
    are [B]; one year, or GSOD years at all, are [C as a normal]: the GSOD years are recent and
    warm (Urumqi 2022 is 2.2 degC above the CMA 1971-2000 annual normal, docs/data.md)."""
    table = city_temperature_rows()
    for source in ("nbs", "gsod"):
        rows = [r for r in table if r["city"] == city and r["source"] == source]
        if rows:
            break
    else:
        return None
    monthly = np.mean([r["monthly"] for r in rows], axis=0).round(4).tolist()
    years = " and ".join(r["period"] for r in rows)
    half = _HALF_RANGE_COLD_WINTER_DEGC if monthly[0] < 0.0 else _HALF_RANGE_MILD_WINTER_DEGC
    if source == "nbs":
        tag = "B" if len(rows) > 1 else "C as a normal"
        origin = f"monthly means NBS yearbooks 2009/2010 (tables 11-13, 12-13), mean of {years} [{tag}]"
    else:
        origin = (f"monthly means of NOAA NCEI GSOD daily mean temperatures, station {_GSOD_STATIONS[city]}, "
                  f"mean of {years} [C as a normal]")
    return {"monthly_mean_degc": monthly, "diurnal_half_range_degc": half,
            "source": f"{origin}; diurnal half-range not sourced [C]"}


@functools.cache
def ambient_presets() -> dict[str, dict]:
    """The bundled city presets by name: ``monthly_mean_degc`` (12), ``diurnal_half_range_degc``, ``source``.

    The hand-written presets of ``physics/presets/ambient.yaml`` first; then every provincial
    capital (``v2gsim/data/cn_province_capitals.csv``) with NBS yearbook or NOAA GSOD rows in
    the sourced table and no hand-written preset."""
    text = resources.files("v2gsim.physics").joinpath("presets/ambient.yaml").read_text()
    presets = yaml.safe_load(text)
    for city in province_capitals().values():
        if city not in presets and (preset := _capital_preset(city)) is not None:
            presets[city] = preset
    return presets


class AmbientConfig(ConfigModel):
    """Where the ambient temperature comes from: one of ``preset``, ``csv`` or ``constant_degc``."""

    preset: str | None = Field(default=None, description="city preset: a provincial capital (guangzhou, beijing, wuhan, ...; docs/data.md lists them) or shenzhen")
    csv: str | None = Field(default=None, description="CSV with columns time, t_degc (local times; interpolated onto the clock)")
    constant_degc: Annotated[float, Field(ge=-50, le=60)] | None = Field(default=None, description="a constant ambient temperature, degC")
    offset_degc: Annotated[float, Field(ge=-30, le=30, description="added to the profile, e.g. for garages or a hotter year")] = 0.0

    @field_validator("preset")
    @classmethod
    def _known(cls, v):
        if v is not None and v not in ambient_presets():
            capital = province_capitals().get(v)
            if capital in ambient_presets():  # a province stands for its capital
                return capital
            missing = [c for c in province_capitals().values() if c not in ambient_presets()]
            if v in missing or capital in missing:
                raise ValueError(f"no sourced temperature normal for {capital or v!r} yet (none for {', '.join(missing)}: "
                                 "docs/data.md); give a measured wear.ambient.csv, or the preset of a nearby city")
            known = sorted(ambient_presets())
            close = difflib.get_close_matches(v, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown ambient preset {v!r}; {hint}known: {', '.join(known)}")
        return v

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("preset", "csv", "constant_degc") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of preset, csv or constant_degc; got {', '.join(given)}")
        return self

    @property
    def resolved_preset(self) -> str | None:
        """The preset in use (guangzhou when nothing is given)."""
        if self.csv is None and self.constant_degc is None:
            return self.preset or "guangzhou"
        return None


def read_ambient_csv(path: str | Path, label: str = "wear.ambient.csv", zone: str | None = None) -> tuple[pd.Series | None, list[Problem]]:
    """A temperature file with columns ``time`` and ``t_degc`` within -60..70 degC, times by
    the scenario's rule in ``zone`` (:func:`~v2gsim.data.profiles.read_series_csv`)."""
    return read_series_csv(path, "t_degc", label, zone=zone, lo=-60.0, hi=70.0, unit=" degC")


def preset_daily_mean_degc(name: str, doy: np.ndarray) -> np.ndarray:
    """Preset ``name``'s daily mean temperature (degC) at day of year ``doy`` (0-based, fractional):
    its monthly normals interpolated cyclically through the mid-month points."""
    monthly = np.asarray(ambient_presets()[name]["monthly_mean_degc"], dtype=np.float64)
    xp = np.r_[_MID_MONTH_DOY[-1] - 365.0, _MID_MONTH_DOY, _MID_MONTH_DOY[0] + 365.0]
    fp = np.r_[monthly[-1], monthly, monthly[0]]
    return np.interp(doy, xp, fp)


def _preset_profile(name: str, clock: pd.DatetimeIndex) -> np.ndarray:
    p = ambient_presets()[name]
    doy = (clock.dayofyear - 1).to_numpy() + (clock.hour.to_numpy() + clock.minute.to_numpy() / 60.0) / 24.0
    daily = preset_daily_mean_degc(name, doy)
    hour = clock.hour.to_numpy() + clock.minute.to_numpy() / 60.0
    return daily + float(p["diurnal_half_range_degc"]) * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)


def ambient_on_clock(cfg: AmbientConfig, clock: pd.DatetimeIndex, step_min: int, zone: str | None = None) -> np.ndarray:
    """Mean ambient temperature of each step (degC), shape (len(clock),).

    Evaluated at the middle of each step. A CSV (times in ``zone``, the scenario's
    ``time.timezone``) must cover the clock (else ``ScenarioError``).
    """
    mid = clock + pd.Timedelta(minutes=step_min / 2.0)
    if cfg.constant_degc is not None:
        t = np.full(len(clock), float(cfg.constant_degc))
    elif cfg.csv is not None:
        series, problems = read_ambient_csv(cfg.csv, zone=zone)
        problems = problems or coverage_problems(series, clock[0], clock[-1], "wear.ambient.csv")
        if problems:
            from v2gsim.errors import ScenarioError

            raise ScenarioError(problems)
        x = series.index.asi8.astype(np.float64)
        t = np.interp(mid.asi8.astype(np.float64), x, series.to_numpy())
    else:
        t = _preset_profile(cfg.resolved_preset, mid)
    return t + cfg.offset_degc
