"""Standard load profiles shipped by packages, mapped onto a scenario's clock.

Three sources, all normalised to mean 1 over their year so that ``annual_kwh`` fixes the energy:

- ``bdew:<type>`` — the BDEW standard load profiles from demandlib (``h0`` households, ``h0_dyn``
  with its dynamisation, ``g0``-``g6`` commercial, ``l0``-``l2`` agricultural), built for each
  calendar year of the run, so weekdays and weekends fall where they do. These describe the
  *aggregate* of many customers (peak ≈ 1.9 × mean for h0): the right shape for a community.
- ``simbench:<name>`` — SimBench's year-long 15-minute profiles of 2016 (``H0-A`` ... ``H0-L``,
  ``G1-A``, ...). These are *single* customers (peak up to 18 × mean) with German seasonality;
  use them per bus on LV networks, not scaled up to a whole community.
- ``cn:<province>:province`` — whole-province hourly load of a Chinese province, a year
  assembled from typical days on China's official calendar (workdays, weekends, public holidays
  and the weekend days worked in exchange); see :mod:`v2gsim.data.cn_load` and docs/data.md.
- ``cn:<province>:office`` / ``:mall`` / ``:hotel`` / ``:commercial`` — Chinese commercial buildings: the hourly
  lighting, equipment and air-conditioning schedules of the national building-energy standard
  on China's calendar, with air conditioning driven by the province city's temperature; see
  :mod:`v2gsim.data.cn_buildings` and docs/data.md.
"""

from __future__ import annotations

import difflib
import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from v2gsim.data.cn_buildings import building_profile, building_profile_names
from v2gsim.data.cn_capitals import province_capitals
from v2gsim.data.cn_load import CN_PREFIX, cn_profile, cn_profile_names
from v2gsim.errors import Problem
from v2gsim.fields import wall_clock

PROFILE_STEP_MIN = 15
SIMBENCH_DAYS = 366  # SimBench profiles cover 2016, a leap year
BDEW_TYPES = ("h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2")
_SIMBENCH_PREFIXES = ("H0", "G0", "G1", "G2", "G3", "G4", "G5", "G6", "L0", "L1", "L2", "BL", "WB")


def _simbench_file() -> Path:
    import simbench

    return Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-2-sw" / "LoadProfile.csv"


@functools.cache
def available_profiles() -> tuple[str, ...]:
    """Every profile name: ``bdew:<type>``, ``cn:<province>:<sector>``, ``simbench:<name>``."""
    with _simbench_file().open() as fh:
        header = fh.readline().strip().split(";")
    simbench = [f"simbench:{c[: -len('_pload')]}" for c in header if c.endswith("_pload") and c[:2] in _SIMBENCH_PREFIXES]
    return tuple(f"bdew:{t}" for t in BDEW_TYPES) + cn_profile_names() + building_profile_names() + tuple(simbench)


def unknown_profile(name: str) -> tuple[str, str]:
    """Message and hint for a profile name that is not one of :func:`available_profiles`: the
    closest names, and the families (the full list has hundreds of SimBench names)."""
    known = available_profiles()
    close = difflib.get_close_matches(str(name).lower(), [k.lower() for k in known], n=3, cutoff=0.6)
    by_lower = {k.lower(): k for k in known}
    mean = f"did you mean {' or '.join(repr(by_lower[c]) for c in close)}? " if close else ""
    simbench = [k for k in known if k.startswith("simbench:")]
    buildings = sorted({n.split(":")[1] for n in building_profile_names()})
    families = (f"known: {', '.join(f'bdew:{t}' for t in BDEW_TYPES)}; cn:<province>:province for "
                f"{', '.join(n.split(':')[1] for n in cn_profile_names())}; cn:<province>:office, :mall, :hotel or "
                f":commercial for {', '.join(buildings)} (no Chinese residential profile yet); {len(simbench)} simbench:<name> "
                f"({simbench[0]} ... {simbench[-1]})")
    parts = str(name).lower().split(":")
    capital = province_capitals().get(parts[1]) if len(parts) == 3 and parts[0] == CN_PREFIX else None
    if capital and parts[2] in ("office", "mall", "hotel", "commercial") and parts[1] not in buildings:
        # the province exists but its capital has no sourced temperature normal to drive the AC
        mean = (f"no sourced temperature normal for {parts[1]}'s capital {capital} yet (docs/data.md), so no "
                f"{parts[2]} profile; use cn:{parts[1]}:province, a nearby province's profile or a measured "
                "feeder.base_load.csv; " + mean)
    if str(name).lower().startswith(f"{CN_PREFIX}:") and str(name).lower().endswith(":residential"):
        # asked often, and deliberately absent: say so before the list
        mean = ("no Chinese residential profile is shipped (no sourced hourly curve was found, docs/data.md); use "
                "cn:<province>:province or :commercial, or a measured feeder.base_load.csv; " + mean)
    return f"unknown standard load profile {name!r}", mean + families


@functools.cache
def simbench_profile(name: str) -> np.ndarray:
    """A SimBench profile normalised to mean 1, shape (366 * 96,), 15-minute steps of 2016."""
    col = f"{name}_pload"
    values = pd.read_csv(_simbench_file(), sep=";", usecols=[col])[col].to_numpy(np.float64)
    return values / values.mean()


@functools.cache
def bdew_profile(kind: str, year: int) -> np.ndarray:
    """A BDEW profile (demandlib) for one calendar year, mean 1, 15-minute steps from 1 January."""
    from demandlib import bdew

    # demandlib 0.2.2 calls warnings.simplefilter("error") for the whole process while it builds
    # a profile; catch_warnings puts the caller's filters back afterwards.
    with warnings.catch_warnings():
        values = bdew.ElecSlp(year).get_scaled_profiles({kind: 1.0})[kind].to_numpy(np.float64)
    return values / values.mean()


def _check(name: str) -> None:
    if name not in available_profiles():
        raise ValueError("; ".join(unknown_profile(name)))


def _step_means(slots: np.ndarray, times: pd.DatetimeIndex, step_min: int, slot_of) -> np.ndarray:
    """Mean of a piecewise-constant 15-minute signal over each step (energy-exact at any step)."""
    minutes = (times.asi8 // 60_000_000_000)[:, None] + np.arange(step_min)[None, :]
    return slots[slot_of(minutes)].mean(axis=1)


def profile_on_clock(name: str, times: pd.DatetimeIndex, step_min: int) -> np.ndarray:
    """Values (mean 1 over a year) of a standard profile at each step of ``times``.

    SimBench's 2016 profile is mapped day by day onto the day of 2016 nearest in day-of-year
    with the same weekday; BDEW profiles are built for the run's own years.
    """
    _check(name)
    source, kind = name.split(":", 1)
    if source in ("bdew", CN_PREFIX):
        years = range(times[0].year, times[-1].year + 2)  # +1: the last step may cross New Year
        if source == "bdew":
            data, slot_min = np.concatenate([bdew_profile(kind, y) for y in years]), PROFILE_STEP_MIN
        else:
            of_year = cn_profile if name.endswith(":province") else building_profile
            data, slot_min = np.concatenate([of_year(name, y) for y in years]), 60
        origin_min = pd.Timestamp(f"{years[0]}-01-01").value // 60_000_000_000
        return _step_means(data, times, step_min, lambda m: (m - origin_min) // slot_min)
    days = simbench_profile(kind).reshape(SIMBENCH_DAYS, -1)
    per_day = days.shape[1]
    first_weekday = pd.Timestamp("2016-01-01").weekday()

    def slot_of(m):
        day = pd.to_datetime(m.ravel() * 60_000_000_000)
        doy = ((day.dayofyear.to_numpy() - 1) % SIMBENCH_DAYS).reshape(m.shape)
        shift = (day.weekday.to_numpy().reshape(m.shape) - (first_weekday + doy) % 7 + 3) % 7 - 3  # in -3..3
        src = doy + shift
        src = np.where(src < 0, src + 7, np.where(src >= SIMBENCH_DAYS, src - 7, src))
        return src * per_day + (m % 1440) // PROFILE_STEP_MIN

    return _step_means(days.ravel(), times, step_min, slot_of)


def read_series_csv(
    path: str | Path, value_col: str, yaml_path: str, *, zone: str | None = None, lo: float = -np.inf, hi: float = np.inf,
    unit: str = "",
) -> tuple[pd.Series | None, list[Problem]]:
    """A user time series: a CSV file with columns ``time`` and ``value_col``.

    Times follow the scenario's rule (:mod:`v2gsim.fields`): without a UTC offset they are
    wall-clock times of ``zone``, with one they are converted to it; rows may mix both. Where
    converted times repeat the hour that daylight saving time repeats in autumn, the model's
    wall clock passes that hour once and keeps the first pass (summer time).

    Returns the series (index: naive wall-clock times) or None and the problems, each naming the
    scenario's ``yaml_path``, the file, and the row (as a spreadsheet counts it, header = row 1)
    and column of up to ten bad values per column: a time that is not a date-time or not after
    the previous row's, a value that is not a number or outside [``lo``, ``hi``] (``unit`` in the
    message); or a file without data rows."""
    path = Path(path)
    if not path.is_file():
        return None, [Problem(yaml_path, f"file {str(path)!r} does not exist", "check the path (relative to the scenario file)")]
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as e:
        return None, [Problem(yaml_path, f"cannot read {path.name}: {e}", f"give a CSV file with columns time, {value_col}")]
    missing = [c for c in ("time", value_col) if c not in df.columns]
    if missing:
        return None, [Problem(yaml_path, f"{path.name}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}",
                              f"columns: time, {value_col}")]
    if df.empty:
        return None, [Problem(yaml_path, f"{path.name}: has a header but no data rows", f"give one row per time: time, {value_col}")]
    t = wall_clock(df["time"], zone)
    v = pd.to_numeric(df[value_col], errors="coerce")
    problems = []
    for r in np.flatnonzero(t.bad)[:10]:
        problems.append(Problem(yaml_path, f"{path.name} row {r + 2}, column time: not a date-time; got {str(df['time'].iloc[r])!r}"))
    bad_v = (v.isna() | (v < lo) | (v > hi)).to_numpy()
    for r in np.flatnonzero(bad_v)[:10]:
        problems.append(Problem(yaml_path, f"{path.name} row {r + 2}, column {value_col}: not a number in {lo:g}..{hi:g}{unit}; "
                                           f"got {str(df[value_col].iloc[r])!r}"))
    unordered = ~t.after(t.shift(1))[1:] & ~t.bad[1:] & ~t.bad[:-1]
    for r in np.flatnonzero(unordered)[:10]:
        problems.append(Problem(yaml_path, f"{path.name} row {r + 3}, column time: not after the previous row (times out of order)",
                                "sort the file by time; one row per time (where daylight saving time repeats an hour, give "
                                "the times with their UTC offset, e.g. 2026-10-25T02:30+01:00)"))
    if problems:
        return None, problems
    wall = t.wall.to_numpy()
    first_pass = np.r_[True, wall[1:] > np.maximum.accumulate(wall)[:-1]]
    return pd.Series(v.to_numpy(np.float64)[first_pass], index=pd.DatetimeIndex(wall[first_pass])), []


def coverage_problems(series: pd.Series, first: pd.Timestamp, last: pd.Timestamp, yaml_path: str) -> list[Problem]:
    """A problem if ``series`` does not cover ``first``..``last`` (values are interpolated, never extrapolated)."""
    if series.index[0] <= first and series.index[-1] >= last:
        return []
    return [Problem(yaml_path, f"covers {series.index[0]} to {series.index[-1]}, not the run {first} to {last} (local time)",
                    "extend the file, or check time.start, time.horizon_days and the file's time zone")]


def read_load_csv(path: str | Path, yaml_path: str, zone: str | None = None) -> tuple[pd.Series | None, list[Problem]]:
    """A user base-load file with columns ``time`` and ``p_kw`` (:func:`read_series_csv`)."""
    return read_series_csv(path, "p_kw", yaml_path, zone=zone, unit=" kW")


def series_to_clock(series: pd.Series, times: pd.DatetimeIndex) -> np.ndarray:
    """Linear interpolation of a user series at the step starts (must cover the run)."""
    x = series.index.asi8
    return np.interp(times.asi8, x, series.to_numpy())
