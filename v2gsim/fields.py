"""Rules shared by every config model (scenarios, sweep files): numbers are numbers, times are local.

- :class:`ConfigModel`: the base of every config model. Frozen (a validated config never
  changes), unknown keys refused (a typo is an error, never silently ignored), and a number
  field refuses ``true``/``false`` and quoted text (pydantic's lax mode would turn
  ``count: true`` into 1 and ``"5"`` into 5); an integer given where a float is expected is
  fine, and so is a whole float (``5.0``) where an integer is expected.
- :data:`LocalDateTime`: a date-time field of a scenario. The model's clock is the local
  wall-clock time of ``time.timezone``: a time without a UTC offset is read as that wall-clock
  time; a time with an offset (``2026-07-06T10:00Z``, ``...+08:00``) is converted to it. Every
  time field ends up naive (no tzinfo). The zone comes from the scenario being validated
  (:func:`local_zone`); outside a scenario, times with an offset keep it.
- :func:`wall_clock`: the same rule for a column of times read from a CSV file.

Daylight saving time: the model's day is always 24 wall-clock hours. A naive time is a
wall-clock label and is never localised, so the hour skipped in spring and the hour repeated in
autumn cannot fail; a time with an offset is converted to the wall clock (both passes of the
repeated hour map onto the one wall-clock hour the model has).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import difflib
import functools
import types
import typing
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

__all__ = ["DEFAULT_ZONE", "ID_PATTERN", "ConfigModel", "LocalDateTime", "NotANumber", "WallClock", "check_zone", "local_zone", "wall_clock"]

DEFAULT_ZONE = "Asia/Shanghai"
# ids of sites, stations, ...: letters of any script (深圳_hub_1 is fine), digits, '_', '.', '-';
# no spaces or slashes, so an id is also a safe file-name part and a --set path part
ID_PATTERN = r"^[\w.-]+$"

# --------------------------------------------------------------------------- numbers

_NUMBERS = (int, float)


class NotANumber:
    """Stands in for a bool or text given to a number field: every number type refuses it, so
    pydantic reports the field at its own path ("must be an integer; got true")."""

    __slots__ = ("value",)

    def __init__(self, value: bool | str):
        self.value = value

    def __repr__(self) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return f"{self.value!r} (text; write numbers without quotes)"


def _members(tp: Any) -> list:
    """The alternatives of a union (Annotated and None stripped); [tp] for anything else."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in _members(a) if m is not type(None)]
    return [tp]


def _takes(tp: Any, value: bool | str) -> bool:
    """Whether a field of type ``tp`` may legitimately be given this bool or text."""
    if tp in _NUMBERS:
        return False
    if typing.get_origin(tp) is typing.Literal:
        return any(type(a) is type(value) and a == value for a in typing.get_args(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True  # dates, models, containers, Any: pydantic judges those


def _refuse(value: Any, tp: Any) -> Any:
    """``value`` with every bool or text meant for a number (at any depth) made a NotANumber."""
    members = _members(tp)
    if isinstance(value, (bool, str)):
        refuse = any(m in _NUMBERS for m in members) and not any(_takes(m, value) for m in members)
        return NotANumber(value) if refuse else value
    for m in members:
        origin, args = typing.get_origin(m), typing.get_args(m)
        if isinstance(value, list) and origin in (list, tuple, set, frozenset, Sequence) and args:
            fixed_length = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
            out = [_refuse(x, args[i] if fixed_length else args[0]) if not fixed_length or i < len(args) else x
                   for i, x in enumerate(value)]
            return out if any(a is not b for a, b in zip(out, value)) else value
        if isinstance(value, dict) and origin is dict and len(args) == 2:
            out = {k: _refuse(x, args[1]) for k, x in value.items()}
            return out if any(out[k] is not value[k] for k in value) else value
    return value


class ConfigModel(BaseModel):
    """Base of every config model: frozen, unknown keys refused, number fields refuse booleans
    and text (module doc). A subclass's own ``model_config`` adds to these settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = {f.alias or name: f for name, f in cls.model_fields.items()} | cls.model_fields
        out = None
        for key, value in data.items():
            if key in fields and isinstance(value, (bool, str, list, dict)):
                fixed = _refuse(value, fields[key].annotation)
                if fixed is not value:
                    out = out if out is not None else dict(data)
                    out[key] = fixed
        return data if out is None else out


# --------------------------------------------------------------------------- time zones


@functools.cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def check_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (``Asia/Shanghai``, ``Europe/Berlin``, ``UTC``).

    Raises:
        ValueError: an unknown zone, with the closest known name as a hint.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        pass
    names = _zone_names()
    lower = {n.lower(): n for n in names}
    close = [lower[c] for c in difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)]
    hint = f"did you mean {close[0]!r}?" if close else "give an IANA zone name such as 'Asia/Shanghai', 'Europe/Berlin' or 'UTC'"
    raise ValueError(f"unknown time zone {name!r}; {hint}")


_ZONE: contextvars.ContextVar[zoneinfo.ZoneInfo | None] = contextvars.ContextVar("v2gsim_zone", default=None)


@contextlib.contextmanager
def local_zone(name: Any) -> Iterator[None]:
    """Within this block, :data:`LocalDateTime` fields convert times with an offset to zone
    ``name`` (an unknown or missing name: they are left as they are; the zone field reports it)."""
    try:
        zone = check_zone(name) if isinstance(name, str) else None
    except ValueError:
        zone = None
    token = _ZONE.set(zone)
    try:
        yield
    finally:
        _ZONE.reset(token)


def _to_wall_clock(value: dt.datetime) -> dt.datetime:
    zone = _ZONE.get()
    if value.tzinfo is None or zone is None:
        return value
    return value.astimezone(zone).replace(tzinfo=None)


LocalDateTime = Annotated[dt.datetime, AfterValidator(_to_wall_clock)]
"""A scenario date-time: naive wall-clock time of the scenario's zone (module doc)."""


# --------------------------------------------------------------------------- CSV columns

# a time of day followed by a UTC offset: ...08:15Z, ...08:15:00.5+08:00, ...08:15 +0800, ...08:15 UTC, ...T0815Z
_OFFSET = r"(?:\d:\d\d|T\d{4})(?::?\d\d(?:\.\d*)?)?\s*(?:[zZ]|UTC|GMT|[+-]\d\d(?::?\d\d)?)$"


@dataclass
class WallClock:
    """A column of times on the model's wall clock.

    Attributes:
        wall: naive wall-clock times (NaT where the text is not a date-time).
        utc: the instant of each time given with an offset, NaT for naive ones.
    """

    wall: pd.Series
    utc: pd.Series

    @property
    def bad(self) -> np.ndarray:
        return self.wall.isna().to_numpy()

    def after(self, other: WallClock) -> np.ndarray:
        """Row by row, whether this time is later than ``other``'s: by the instant where both
        carry an offset (so the repeated autumn hour is ordered), else by wall-clock time."""
        both = (self.utc.notna() & other.utc.notna()).to_numpy()
        by_instant = (self.utc > other.utc).to_numpy()
        by_wall = (self.wall > other.wall).to_numpy()
        return np.where(both, by_instant, by_wall)

    def shift(self, n: int) -> WallClock:
        return WallClock(self.wall.shift(n), self.utc.shift(n))

    def take(self, rows: np.ndarray) -> WallClock:
        return WallClock(self.wall.iloc[rows].reset_index(drop=True), self.utc.iloc[rows].reset_index(drop=True))


def _parse(text: pd.Series, utc: bool) -> pd.Series:
    """ISO 8601 times in any of its forms; other rows in the one format pandas infers from the first of them."""
    out = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=utc)
    rest = (out.isna() & text.notna()).to_numpy()
    if rest.any():
        other = pd.to_datetime(text[rest], errors="coerce", utc=utc)
        if other.dtype == out.dtype:
            out[rest] = other
    return out


def wall_clock(values: pd.Series, zone: str | None) -> WallClock:
    """Parse a CSV column of times by the scenario's rule (module doc).

    Rows with and without offsets may be mixed. ``zone`` None or unknown: offsets are converted
    to UTC (the zone's own problem is reported elsewhere). A time that cannot be read is NaT.
    """
    text = values.astype("string[pyarrow]").str.strip()  # pyarrow: the pattern search is vectorised
    aware = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(bool)
    try:
        tz = check_zone(zone) if zone is not None else dt.timezone.utc
    except ValueError:
        tz = dt.timezone.utc
    wall = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    utc = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        inst = _parse(text[aware], utc=True)
        utc[aware] = inst
        wall[aware] = inst.dt.tz_convert(tz).dt.tz_localize(None)
    if (~aware).any():
        naive = _parse(text[~aware], utc=False)
        # an offset the pattern missed would make pandas read the naive rows in its zone: read none
        if pd.api.types.is_datetime64_dtype(naive) and getattr(naive.dtype, "tz", None) is None:
            wall[~aware] = naive
    return WallClock(wall, utc)
