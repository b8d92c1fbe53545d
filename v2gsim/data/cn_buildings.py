"""Chinese commercial base-load profiles from the national building-energy standard's schedules.

``cn:<province>:office``, ``:mall``, ``:hotel`` and ``:commercial`` (office and mall floor
area 1:1) for the provinces whose capital has a shipped temperature normal
(``cn_province_capitals.csv``, the table the ambient presets use too). Each hour's power per
m2 of floor area is

* lighting + equipment: the standard's hourly use fraction (GB 55015-2021 App. C / GB 50189-2015
  App. B, tag [B]) times an installed power density ([C]), on the day type of China's official
  calendar (offices rest on weekends and public holidays, work on the exchanged weekend days;
  malls and hotels run the same schedule every day), plus
* air conditioning while the standard's schedule has it on: a degree-day model [C] driven by the
  province city's daily mean temperature, interpolated from its monthly normals.

The year is divided by its mean (mean 1, like every standard profile), so that the scenario's
``annual_kwh_per_household x households`` sets the energy. All figures and their tags are in
``cn_building_load.yaml``; docs/data.md shows the typical days.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from v2gsim.data.cn_capitals import province_capitals
from v2gsim.data.cn_load import CN_PREFIX, HOURS, day_types

__all__ = ["BUILDING_TYPES", "building_metadata", "building_provinces", "building_profile", "building_profile_names", "day_power_w_per_m2"]

BUILDING_TYPES = ("office", "mall", "hotel")
MIXES = ("commercial",)


@functools.cache
def building_metadata() -> dict:
    """The YAML beside the data: source, schedules, power densities and AC model."""
    text = resources.files("v2gsim.data").joinpath("cn_building_load.yaml").read_text(encoding="utf-8")
    meta = yaml.safe_load(text)
    for kind, days in meta["buildings"].items():
        for day, series in days.items():
            for what, values in series.items():
                if len(values) != HOURS:
                    raise RuntimeError(f"cn_building_load.yaml: buildings.{kind}.{day}.{what} has {len(values)} values, not 24")
    return meta


@functools.cache
def building_provinces() -> dict[str, str]:
    """Province -> capital, for each province whose capital has a temperature normal (an ambient
    preset): the city whose daily mean temperature drives the air conditioning."""
    from v2gsim.physics.ambient import ambient_presets  # late: ambient imports data.profiles

    return {p: c for p, c in province_capitals().items() if c in ambient_presets()}


@functools.cache
def building_profile_names() -> tuple[str, ...]:
    """``cn:<province>:<office|mall|hotel|commercial>`` for each province with a temperature normal."""
    return tuple(sorted(f"{CN_PREFIX}:{p}:{kind}" for p in building_provinces() for kind in BUILDING_TYPES + MIXES))


def _schedule(kind: str, day: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lighting, equipment, AC on) fractions of one day type, each (24,)."""
    s = building_metadata()["buildings"][kind][day]
    ac_on = np.array([v is not None for v in s["cooling_setpoint_degc"]], dtype=np.float64)
    return np.asarray(s["lighting"], np.float64), np.asarray(s["equipment"], np.float64), ac_on


def day_power_w_per_m2(kind: str, day: str, t_mean_degc: float) -> np.ndarray:
    """Electric power per m2 of floor area (W/m2) over the 24 hours of one day, (24,).

    ``kind`` is ``office``, ``mall`` or ``hotel``, ``day`` ``workday`` or ``rest_day``, ``t_mean_degc``
    the day's mean outdoor temperature."""
    meta = building_metadata()
    light, equip, ac_on = _schedule(kind, day)
    density = meta["power_density_w_per_m2"][kind]
    ac = meta["air_conditioning"]
    ac_w_per_m2 = ac["ac_w_per_m2_per_k"] * max(0.0, t_mean_degc - ac["balance_degc"])
    return density["lighting"] * light + density["equipment"] * equip + ac_w_per_m2 * ac_on


def daily_mean_temperature(city: str, year: int) -> np.ndarray:
    """Daily mean outdoor temperature (degC) of ``city`` over ``year``: its monthly normals
    (physics/presets/ambient.yaml) interpolated linearly between mid-months, wrapping round
    the year, at noon of each day as the ambient presets do (without their diurnal cycle,
    which averages out over a day); shape (days,)."""
    from v2gsim.physics.ambient import preset_daily_mean_degc  # late: ambient imports data.profiles

    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    return preset_daily_mean_degc(city, (days.dayofyear.to_numpy() - 1).astype(np.float64) + 0.5)


def _year_w_per_m2(kind: str, province: str, year: int) -> np.ndarray:
    """W/m2 of one building type, hour by hour over ``year``, shape (days, 24)."""
    temps = daily_mean_temperature(building_provinces()[province], year)
    work = day_types(year)
    # the day's power is linear in the AC level, so two typical days per day type suffice
    out = np.empty((len(temps), HOURS))
    meta = building_metadata()["air_conditioning"]
    level = np.maximum(0.0, temps - meta["balance_degc"])[:, None]
    for is_work, day in ((True, "workday"), (False, "rest_day")):
        base = day_power_w_per_m2(kind, day, meta["balance_degc"])  # no AC
        ac_on = _schedule(kind, day)[2]
        sel = work == is_work
        out[sel] = base[None, :] + meta["ac_w_per_m2_per_k"] * level[sel] * ac_on[None, :]
    return out


@functools.cache
def building_profile(name: str, year: int) -> np.ndarray:
    """Hourly profile of ``name`` over calendar ``year``, mean 1, shape (days * 24,), from 1 January.

    Raises:
        KeyError: ``name`` is not one of :func:`building_profile_names`.
    """
    if name not in building_profile_names():
        raise KeyError(name)
    _, province, kind = name.split(":")
    if kind == "commercial":
        mix = building_metadata()["commercial_mix"]
        w = sum(share * _year_w_per_m2(k, province, year) for k, share in mix.items())
    else:
        w = _year_w_per_m2(kind, province, year)
    values = w.ravel()
    return values / values.mean()
