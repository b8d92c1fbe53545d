"""Standard load profiles shipped by SimBench, mapped onto a scenario's clock.

SimBench ships year-long 15-minute profiles (calendar 2016) of the BDEW standard load profiles
(H0 households, G commercial, L agricultural) in its package data; the values are per unit of
a load's rating. We normalise a profile to its mean, so that ``annual_kwh`` fixes its energy.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from v2gsim.errors import Problem

PROFILE_YEAR_DAYS = 366  # SimBench profiles cover 2016, a leap year
PROFILE_STEP_MIN = 15
_PROFILE_FIRST_WEEKDAY = pd.Timestamp("2016-01-01").weekday()


def _profile_file() -> Path:
    import simbench

    return Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-2-sw" / "LoadProfile.csv"


@functools.cache
def available_profiles() -> tuple[str, ...]:
    header = _profile_file().open().readline().strip().split(";")
    return tuple(c[: -len("_pload")] for c in header if c.endswith("_pload") and c[:2] in ("H0", "G0", "G1", "G2", "G3", "G4", "G5", "G6", "L0", "L1", "L2", "BL", "WB"))


@functools.cache
def standard_profile(name: str) -> np.ndarray:
    """The named profile normalised to mean 1, shape (366 * 96,), 15-minute steps of 2016."""
    if name not in available_profiles():
        raise ValueError(f"unknown standard load profile {name!r}; known: {', '.join(available_profiles())}")
    col = f"{name}_pload"
    values = pd.read_csv(_profile_file(), sep=";", usecols=[col])[col].to_numpy(np.float64)
    return values / values.mean()


def map_to_clock(profile_15min: np.ndarray, times: pd.DatetimeIndex, step_min: int) -> np.ndarray:
    """Values of a 2016 15-minute profile at each step of ``times`` (step means, energy-exact).

    Each scenario day takes the profile day nearest in day-of-year with the same weekday, so
    weekly patterns line up. Steps shorter than 15 minutes hold the 15-minute value.
    """
    per_day = 1440 // PROFILE_STEP_MIN
    days = profile_15min.reshape(PROFILE_YEAR_DAYS, per_day)
    dates = times.normalize()
    doy = (dates.dayofyear.to_numpy() - 1) % PROFILE_YEAR_DAYS
    ref_weekday = (_PROFILE_FIRST_WEEKDAY + doy) % 7
    shift = (dates.weekday.to_numpy() - ref_weekday + 3) % 7 - 3  # in -3..3
    src_day = doy + shift
    src_day = np.where(src_day < 0, src_day + 7, src_day)
    src_day = np.where(src_day >= PROFILE_YEAR_DAYS, src_day - 7, src_day)
    minute = times.hour.to_numpy() * 60 + times.minute.to_numpy()
    # step mean of a piecewise-constant 15-min signal: integrate minute by minute
    offsets = np.arange(step_min)
    m = minute[:, None] + offsets[None, :]
    day_add = m // 1440
    slot = (m % 1440) // PROFILE_STEP_MIN
    d = np.clip(src_day[:, None] + day_add, 0, PROFILE_YEAR_DAYS - 1)
    return days[d, slot].mean(axis=1)


def read_load_csv(path: str | Path, yaml_path: str) -> tuple[pd.Series | None, list[Problem]]:
    """A user base-load file with columns ``time`` and ``p_kw``; problems name file, row, column."""
    path = Path(path)
    if not path.is_file():
        return None, [Problem(yaml_path, f"load file {str(path)!r} does not exist", "check the path (relative to the scenario file)")]
    df = pd.read_csv(path)
    missing = [c for c in ("time", "p_kw") if c not in df.columns]
    if missing:
        return None, [Problem(yaml_path, f"{path.name}: missing column(s) {', '.join(missing)}", "columns: time, p_kw")]
    t = pd.to_datetime(df["time"], errors="coerce")
    p = pd.to_numeric(df["p_kw"], errors="coerce")
    problems = []
    for r in np.flatnonzero(t.isna().to_numpy())[:10]:
        problems.append(Problem(yaml_path, f"{path.name} row {r + 2}, column time: not a date-time; got {df['time'].iloc[r]!r}"))
    for r in np.flatnonzero(p.isna().to_numpy())[:10]:
        problems.append(Problem(yaml_path, f"{path.name} row {r + 2}, column p_kw: not a number; got {df['p_kw'].iloc[r]!r}"))
    tv = t.to_numpy()
    for r in np.flatnonzero(tv[1:] <= tv[:-1])[:10]:
        problems.append(Problem(yaml_path, f"{path.name} row {r + 3}, column time: not after the previous row (times out of order)"))
    if problems:
        return None, problems
    return pd.Series(p.to_numpy(float), index=pd.DatetimeIndex(t)), []


def series_to_clock(series: pd.Series, times: pd.DatetimeIndex) -> np.ndarray:
    """Linear interpolation of a user series at the step starts (must cover the run)."""
    x = series.index.asi8
    return np.interp(times.asi8, x, series.to_numpy())
