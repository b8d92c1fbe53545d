"""Electricity tariffs: flat and time-of-use (TOU) prices with seasons, holidays, critical peaks,
service fees, a V2G discharge price and the two-part (demand or capacity) charge.

A tariff is described by a frozen :class:`TariffConfig` (validated, typed, usually from the
scenario YAML) and evaluated by :class:`Tariff`, which precomputes one price table per *day type*
at one-minute resolution (a day type is: a season's periods and prices, with or without that
month's critical peak, or the holiday periods) so that a whole horizon of time stamps is priced
with a single fancy-indexing operation.

Rules (documented choices):

* Hours of day are half-open ranges ``[start, end)`` with ``0 <= start < end <= 24``, in hours
  (fractions allowed if they fall on whole minutes, e.g. ``7.5``). A range that wraps past
  midnight is written as two ranges: ``[[23, 24], [0, 7]]``.
* Period ranges must not overlap (within or across periods).
* Hours not covered by any listed period are ``flat``. If ``flat`` itself is listed, the listed
  periods must cover all 24 hours (a complete spec with a gap is almost always a typo).
* Prices: either ``flat_cny_per_kwh`` alone (flat tariff), or per-period
  ``prices_cny_per_kwh``, or ``ratios`` to the base ``flat_cny_per_kwh``.
* Seasons: ``seasons`` lists month sets with their own ``periods`` (and optionally their own
  ``prices_cny_per_kwh`` or ``ratios``; else the tariff's). A month belongs to at most one
  season; months in no season use the top-level ``periods``, which must then be given (write
  ``periods: {}`` for an all-flat rest of the year).
* Critical peak (尖峰): one entry or a list (e.g. Sichuan: Jul-Aug 15-17 and Dec-Jan 19-21); it
  multiplies whatever price applies at its hours (normally the peak price) in its months; its
  period code is ``critical``. A month has at most one critical-peak entry.
* Holidays: on the days China's official calendar (``holidays.China``, with the moved days off)
  lists — optionally only those whose English name contains one of ``holidays.names`` — the
  holiday ``periods`` replace the day's periods; prices are those of the month's season; no
  critical peak applies on a holiday.
* ``service_fee_cny_per_kwh`` is added to every purchase price (not to the V2G price).
* V2G discharge price: fixed ``v2g_price_cny_per_kwh``; or ``v2g_base_cny_per_kwh`` times the
  TOU ratio of the period (times the critical multiplier at critical hours; for prices given by
  ``prices_cny_per_kwh`` the ratios are ``price / flat price``); or ``v2g_price_factor`` times the
  energy price of that minute (service fee excluded), i.e. the discharge is paid the TOU price
  (factor 1) or a share of it. None given: 0 (no compensation).
* Two-part tariff: ``demand_charge_cny_per_kw_month`` (on each billing month's highest
  ``demand_window_min`` average, metered per site or for the whole feeder) or
  ``capacity_charge_cny_per_kva_month`` (on ``capacity_kva``, default the transformer rating).
  They are bills computed from results (:mod:`v2gsim.market.bills`), not per-step prices.
* The price of a time stamp is the price at that wall-clock time (use the step start); the index
  is read in its own time zone, so pass local (e.g. Asia/Shanghai) times.
* ``preset: name`` loads ``presets/tariffs.yaml``; fields given explicitly replace the preset's
  field wholesale. A given ``prices_cny_per_kwh`` drops the preset's ``ratios`` and base
  ``flat_cny_per_kwh``; given ``ratios`` drop its ``prices_cny_per_kwh``; a given V2G price form
  drops the preset's other V2G forms. A preset may list ``requires``: fields it has no sourced
  value for (e.g. a base price), which the scenario must then give.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, field_validator, model_validator

from v2gsim.fields import ConfigModel

__all__ = [
    "PERIOD_NAMES",
    "PERIOD_CODES",
    "VALLEY_PERIODS",
    "CriticalPeakConfig",
    "HolidayConfig",
    "SeasonConfig",
    "TariffConfig",
    "Tariff",
    "cn_holiday_names",
    "load_tariff_presets",
]

#: Period names in code order (``Tariff.period`` returns these codes).
PERIOD_NAMES: tuple[str, ...] = ("deep_valley", "valley", "flat", "peak", "critical")
PERIOD_CODES: dict[str, int] = {name: i for i, name in enumerate(PERIOD_NAMES)}
#: the periods the 2024 V2G pilot notice's "valley hours" test counts (低谷 and 深谷)
VALLEY_PERIODS: tuple[str, ...] = ("deep_valley", "valley")

PeriodName = Literal["deep_valley", "valley", "flat", "peak"]
Hour = Annotated[float, Field(ge=0.0, le=24.0)]
HourRange = tuple[Hour, Hour]
Month = Annotated[int, Field(ge=1, le=12)]
Price = Annotated[float, Field(ge=0.0, le=20.0)]
Ratio = Annotated[float, Field(ge=0.0, le=10.0)]
Periods = dict[PeriodName, list[HourRange]]

_MIN_PER_DAY = 1440
_PRESET_META_KEYS = ("description", "sources")
_V2G_FORMS = ("v2g_price_cny_per_kwh", "v2g_base_cny_per_kwh", "v2g_price_factor")


def _check_ranges(ranges: list[HourRange], where: str) -> list[tuple[int, int]]:
    """Validate hour ranges and return them as whole-minute ``[start, end)`` pairs."""
    out = []
    for start, end in ranges:
        if not start < end:
            raise ValueError(
                f"{where}: hour range [{start:g}, {end:g}] must have start < end within 0-24; "
                f"write a range past midnight as two ranges, e.g. [[23, 24], [0, 7]]"
            )
        s_min, e_min = start * 60.0, end * 60.0
        if abs(s_min - round(s_min)) > 1e-6 or abs(e_min - round(e_min)) > 1e-6:
            raise ValueError(
                f"{where}: hour range [{start:g}, {end:g}] must fall on whole minutes"
            )
        out.append((int(round(s_min)), int(round(e_min))))
    return out


def _fmt_minutes(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _check_months(months: list[int], where: str) -> None:
    dup = sorted({m for m in months if months.count(m) > 1})
    if dup:
        raise ValueError(f"{where}: month(s) {', '.join(map(str, dup))} listed twice; list each month once")


def _check_periods(periods: Periods, where: str) -> set[str]:
    """Overlaps and coverage of one day's periods; returns the period names the day uses
    (``flat`` included when some minutes are left to it)."""
    spans: list[tuple[int, int, str]] = []
    for name, ranges in periods.items():
        for s, e in _check_ranges(ranges, f"{where}.{name}"):
            spans.append((s, e, name))
    spans.sort()
    for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise ValueError(
                f"{where} overlap: {n0} and {n1} both cover {_fmt_minutes(s1)}-"
                f"{_fmt_minutes(min(e0, e1))}; give each hour to one period"
            )
    covered = sum(e - s for s, e, _ in spans)
    if "flat" in periods and covered < _MIN_PER_DAY:
        gaps = []
        pos = 0
        for s, e, _ in spans:
            if s > pos:
                gaps.append(f"{_fmt_minutes(pos)}-{_fmt_minutes(s)}")
            pos = max(pos, e)
        if pos < _MIN_PER_DAY:
            gaps.append(f"{_fmt_minutes(pos)}-24:00")
        raise ValueError(
            f"{where} list 'flat' explicitly, so they must cover all 24 hours; "
            f"not covered: {', '.join(gaps)}"
        )
    return {n for n, r in periods.items() if r} | ({"flat"} if covered < _MIN_PER_DAY else set())


def _day_codes(periods: Periods) -> np.ndarray:
    codes = np.full(_MIN_PER_DAY, PERIOD_CODES["flat"], dtype=np.int8)
    for name, ranges in periods.items():
        for s, e in _check_ranges(ranges, name):
            codes[s:e] = PERIOD_CODES[name]
    return codes


@lru_cache(maxsize=1)
def cn_holiday_names() -> tuple[str, ...]:
    """The English names ``holidays.China`` gives China's public holidays and moved days off
    (``(observed)`` and the substitution dates stripped), e.g. ``Labor Day``, ``Day off``."""
    import holidays

    cal = holidays.country_holidays("CN", years=range(2010, 2031), language="en_US")
    names = {n.split(" (observed)")[0].split(" (substituted")[0] for n in cal.values()}
    return tuple(sorted(names))


class CriticalPeakConfig(ConfigModel):
    """Critical peak (尖峰): a price multiplier at some hours in some months."""

    hours: list[HourRange] = Field(min_length=1, description="Hour-of-day ranges [start, end).")
    months: list[Month] = Field(
        min_length=1, description="Calendar months (1-12) in which the critical peak applies."
    )
    multiplier: Annotated[float, Field(ge=1.0, le=5.0)] = Field(
        description="Factor on the price that applies at those hours (dimensionless)."
    )

    @model_validator(mode="after")
    def _check(self) -> CriticalPeakConfig:
        _check_months(self.months, "months")
        mins = sorted(_check_ranges(self.hours, "hours"))
        for (_s0, e0), (s1, e1) in zip(mins, mins[1:]):
            if s1 < e0:
                raise ValueError(
                    f"hours: ranges overlap at {_fmt_minutes(s1)}-{_fmt_minutes(min(e0, e1))}"
                )
        return self


class SeasonConfig(ConfigModel):
    """A season: months with their own TOU periods (and optionally their own prices)."""

    name: str = Field(description="Label, e.g. summer.")
    months: list[Month] = Field(min_length=1, description="Calendar months (1-12) of the season.")
    periods: Periods = Field(description="Hour ranges per TOU period in this season.")
    prices_cny_per_kwh: dict[PeriodName, Price] | None = Field(
        None, description="This season's prices per period (CNY/kWh); default the tariff's."
    )
    ratios: dict[PeriodName, Ratio] | None = Field(
        None, description="This season's ratios to the tariff's flat_cny_per_kwh; default the tariff's."
    )

    @model_validator(mode="after")
    def _check(self) -> SeasonConfig:
        _check_months(self.months, "months")
        if self.prices_cny_per_kwh is not None and self.ratios is not None:
            raise ValueError("give either prices_cny_per_kwh or ratios, not both")
        _check_periods(self.periods, "periods")
        return self


class HolidayConfig(ConfigModel):
    """Holiday periods on China's official holidays (``holidays.China``)."""

    country: Literal["CN"] = Field("CN", description="Calendar: China's public holidays and moved days off.")
    names: list[str] | None = Field(
        None,
        min_length=1,
        description="Only holidays whose English name contains one of these (e.g. 'Labor Day'); default all.",
    )
    periods: Periods = Field(description="Hour ranges per TOU period on those days (replace the day's).")

    @model_validator(mode="after")
    def _check(self) -> HolidayConfig:
        known = cn_holiday_names()
        for n in self.names or ():
            if not any(n.lower() in k.lower() for k in known):
                import difflib

                close = difflib.get_close_matches(n, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"names: {n!r} matches no holiday of China's calendar; {hint}known names: {', '.join(known)}"
                )
        _check_periods(self.periods, "periods")
        return self


@lru_cache(maxsize=1)
def _presets_cached() -> dict[str, dict[str, Any]]:
    text = resources.files("v2gsim.market").joinpath("presets/tariffs.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    return data


def load_tariff_presets() -> dict[str, dict[str, Any]]:
    """Return the bundled tariff presets (a fresh copy), keyed by preset name."""
    import copy

    return copy.deepcopy(_presets_cached())


def _price_table(prices: dict | None, ratios: dict | None, flat: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Price (CNY/kWh) and ratio to flat per period code (NaN where not given)."""
    n_codes = len(PERIOD_NAMES)
    price_by_code = np.full(n_codes, np.nan)
    ratio_by_code = np.full(n_codes, np.nan)
    if prices is not None:
        flat_ref = prices.get("flat")
        for name, p in prices.items():
            price_by_code[PERIOD_CODES[name]] = p
            if flat_ref:
                ratio_by_code[PERIOD_CODES[name]] = p / flat_ref
    elif ratios is not None:
        for name, r in {"flat": 1.0, **ratios}.items():
            price_by_code[PERIOD_CODES[name]] = r * flat
            ratio_by_code[PERIOD_CODES[name]] = r
    else:
        price_by_code[:] = flat
        ratio_by_code[:] = 1.0
    return price_by_code, ratio_by_code


class TariffConfig(ConfigModel):
    """Validated tariff description (see the module docstring for the rules).

    Examples:
        ``{flat_cny_per_kwh: 0.4733}``;
        ``{preset: guangdong, flat_cny_per_kwh: 0.60}``;
        ``{periods: {peak: [[10, 12], [14, 19]], valley: [[0, 8]]},
        prices_cny_per_kwh: {peak: 1.1, flat: 0.65, valley: 0.25}}``.
    """

    preset: str | None = Field(None, description="Name of a bundled preset in presets/tariffs.yaml.")
    description: str | None = None
    flat_cny_per_kwh: Price | None = Field(
        None, description="Flat price, or the base price that `ratios` multiply (CNY/kWh)."
    )
    periods: Periods | None = Field(
        None, description="Hour-of-day ranges [start, end) per TOU period; uncovered hours are flat."
    )
    prices_cny_per_kwh: dict[PeriodName, Price] | None = Field(
        None, description="Purchase price per TOU period (CNY/kWh)."
    )
    ratios: dict[PeriodName, Ratio] | None = Field(
        None, description="Price ratio per TOU period to flat_cny_per_kwh (dimensionless)."
    )
    seasons: list[SeasonConfig] | None = Field(
        None, min_length=1, description="Months with their own periods (and prices); other months use `periods`."
    )
    critical_peak: list[CriticalPeakConfig] | None = Field(
        None, description="Critical peak (尖峰): one entry or a list with disjoint months."
    )
    holidays: HolidayConfig | None = Field(None, description="Periods on China's public holidays.")
    service_fee_cny_per_kwh: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        0.0, description="Added to every purchase price (CNY/kWh)."
    )
    v2g_price_cny_per_kwh: Price | None = Field(
        None, description="Fixed price paid for V2G discharge (CNY/kWh)."
    )
    v2g_base_cny_per_kwh: Price | None = Field(
        None, description="Base V2G price multiplied by the TOU ratios (CNY/kWh)."
    )
    v2g_price_factor: Annotated[float, Field(ge=0.0, le=5.0)] | None = Field(
        None, description="V2G price = this factor x the energy price of the hour (no service fee)."
    )
    demand_charge_cny_per_kw_month: Annotated[float, Field(gt=0.0, le=500.0)] | None = Field(
        None, description="Two-part tariff: charge per kW of each billing month's peak demand (CNY/kW/month)."
    )
    demand_window_min: Annotated[int, Field(ge=1, le=60)] = Field(
        15, description="Demand is the highest mean power over windows of this length (min)."
    )
    demand_meter: Literal["sites", "feeder"] = Field(
        "sites", description="sites: each site billed on its own peak; feeder: the feeder's net load."
    )
    capacity_charge_cny_per_kva_month: Annotated[float, Field(gt=0.0, le=500.0)] | None = Field(
        None, description="Two-part tariff: charge per kVA of contracted transformer capacity (CNY/kVA/month)."
    )
    capacity_kva: Annotated[float, Field(gt=0.0, le=1e7)] | None = Field(
        None, description="Contracted capacity the capacity charge bills (kVA); default the transformer rating."
    )
    requires: list[str] = Field(
        default_factory=list, description="Preset fields with no sourced value that the scenario must give."
    )
    sources: dict[str, str] = Field(
        default_factory=dict, description="Provenance of the values: field -> source [tag]."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        presets = _presets_cached()
        if not isinstance(name, str):
            raise ValueError(f"preset must be the name of a tariff preset; known presets: {', '.join(sorted(presets))}")
        if name not in presets:
            raise ValueError(
                f"unknown tariff preset {name!r}; known presets: {', '.join(sorted(presets))}"
            )
        merged = {k: v for k, v in presets[name].items()}
        # a re-validated dump carries every field; its None values are "not given"
        explicit = {k: v for k, v in data.items() if k != "preset" and v is not None}
        required = [f for f in merged.pop("requires", []) if f not in explicit]
        if required:
            hints = {
                "flat_cny_per_kwh": "the base price the preset's ratios multiply (CNY/kWh), e.g. your catalogue flat price",
                "prices_cny_per_kwh": "a price per period, e.g. {peak: 0.9, flat: 0.6, valley: 0.3}",
            }
            raise ValueError(
                f"preset {name!r} has no sourced value for {', '.join(required)}; set "
                + "; ".join(f"tariff.{f} ({hints.get(f, 'see docs/tariffs.md')})" for f in required)
            )
        # An explicitly chosen pricing form replaces the preset's other form.
        if "prices_cny_per_kwh" in explicit:
            merged.pop("ratios", None)
            merged.pop("flat_cny_per_kwh", None)  # only the ratios' base in the preset
        if "ratios" in explicit:
            merged.pop("prices_cny_per_kwh", None)
        for form in _V2G_FORMS:
            if form in explicit:
                for other in _V2G_FORMS:
                    if other != form:
                        merged.pop(other, None)
        if "demand_charge_cny_per_kw_month" in explicit:
            merged.pop("capacity_charge_cny_per_kva_month", None)
        if "capacity_charge_cny_per_kva_month" in explicit:
            merged.pop("demand_charge_cny_per_kw_month", None)
        if "flat_cny_per_kwh" in explicit and "prices_cny_per_kwh" in merged and (
            "prices_cny_per_kwh" not in explicit
        ):
            raise ValueError(
                f"flat_cny_per_kwh cannot override preset {name!r}, which sets per-period "
                f"prices_cny_per_kwh; override prices_cny_per_kwh instead"
            )
        merged.update(explicit)
        merged["preset"] = name
        return merged

    # -- validation helpers ----------------------------------------------------------------

    @field_validator("critical_peak", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        # one entry (a mapping) is the common case; it is kept as a one-entry list
        return [v] if isinstance(v, (dict, CriticalPeakConfig)) else v

    def critical_peaks(self) -> list[CriticalPeakConfig]:
        return list(self.critical_peak or ())

    def season_of_month(self) -> list[int]:
        """Index into ``seasons`` for months 0..12 (index 0 unused), -1 = top-level periods."""
        out = [-1] * 13
        for i, s in enumerate(self.seasons or ()):
            for m in s.months:
                out[m] = i
        return out

    def critical_of_month(self) -> list[int]:
        out = [-1] * 13
        for i, c in enumerate(self.critical_peaks()):
            for m in c.months:
                out[m] = i
        return out

    def _table_of(self, season: int) -> tuple[str, dict | None, dict | None]:
        """(label, prices, ratios) of the price table a season (-1: top level) uses."""
        s = self.seasons[season] if season >= 0 else None
        if s is not None and s.prices_cny_per_kwh is not None:
            return f"seasons[{season}].prices_cny_per_kwh", s.prices_cny_per_kwh, None
        if s is not None and s.ratios is not None:
            return f"seasons[{season}].ratios", None, s.ratios
        if self.prices_cny_per_kwh is not None:
            return "prices_cny_per_kwh", self.prices_cny_per_kwh, None
        if self.ratios is not None:
            return "ratios", None, self.ratios
        return "flat_cny_per_kwh", None, None

    @model_validator(mode="after")
    def _check(self) -> TariffConfig:
        if self.prices_cny_per_kwh is not None and self.ratios is not None:
            raise ValueError("give either prices_cny_per_kwh or ratios, not both")
        if self.prices_cny_per_kwh is not None and self.flat_cny_per_kwh is not None:
            raise ValueError(
                "flat_cny_per_kwh cannot be combined with prices_cny_per_kwh; "
                "set prices_cny_per_kwh.flat instead"
            )
        uses_ratios = self.ratios is not None or any(s.ratios is not None for s in self.seasons or ())
        if uses_ratios and self.flat_cny_per_kwh is None:
            raise ValueError("ratios need the base price flat_cny_per_kwh")
        has_season_prices = all(
            s.prices_cny_per_kwh is not None for s in self.seasons or ()
        ) and bool(self.seasons)
        if self.flat_cny_per_kwh is None and self.prices_cny_per_kwh is None and not has_season_prices:
            raise ValueError(
                "a tariff needs flat_cny_per_kwh, prices_cny_per_kwh, or a preset"
            )
        forms = [f for f in _V2G_FORMS if getattr(self, f) is not None]
        if len(forms) > 1:
            raise ValueError(f"give either {' or '.join(forms)}, not both")
        if self.demand_charge_cny_per_kw_month is not None and self.capacity_charge_cny_per_kva_month is not None:
            raise ValueError(
                "a two-part tariff bills either demand_charge_cny_per_kw_month (on the monthly peak) or "
                "capacity_charge_cny_per_kva_month (on the transformer capacity), not both; keep one"
            )
        if self.capacity_kva is not None and self.capacity_charge_cny_per_kva_month is None:
            raise ValueError("capacity_kva is only used with capacity_charge_cny_per_kva_month; set that rate or drop it")

        # seasons: each month in at most one season; the rest of the year needs top-level periods
        seen: dict[int, int] = {}
        for i, s in enumerate(self.seasons or ()):
            for m in s.months:
                if m in seen:
                    raise ValueError(
                        f"seasons[{i}].months: month {m} is also in seasons[{seen[m]}] "
                        f"({self.seasons[seen[m]].name}); each month belongs to one season"
                    )
                seen[m] = i
        if self.seasons and len(seen) < 12 and self.periods is None:
            rest = [m for m in range(1, 13) if m not in seen]
            raise ValueError(
                f"months {', '.join(map(str, rest))} are in no season and the tariff has no top-level periods; "
                "add them to a season's months, or give tariff.periods for them (periods: {} for all flat)"
            )
        # critical peaks: one entry per month
        seen = {}
        for i, c in enumerate(self.critical_peaks()):
            for m in c.months:
                if m in seen:
                    raise ValueError(
                        f"critical_peak[{i}].months: month {m} is also in critical_peak[{seen[m]}]; "
                        "a month has one critical peak (list all its hours in one entry)"
                    )
                seen[m] = i

        periods = self.periods or {}
        if periods and self.prices_cny_per_kwh is None and self.ratios is None and not self.seasons:
            raise ValueError("periods need prices_cny_per_kwh or ratios")
        used_top = _check_periods(periods, "periods")
        # which periods each price table must price: the days (seasons, top level, holidays) using it
        needs: dict[str, tuple[dict | None, set[str]]] = {}
        season_of = self.season_of_month()
        holiday_used = _check_periods(self.holidays.periods, "holidays.periods") if self.holidays else set()
        for season in sorted(set(season_of[1:])):
            label, prices, ratios = self._table_of(season)
            used = used_top if season < 0 else _check_periods(self.seasons[season].periods, f"seasons[{season}].periods")
            table = prices if prices is not None else ratios
            entry = needs.setdefault(label, (table, set()))
            entry[1].update(used | holiday_used)
        for label, (table, used) in needs.items():
            if table is None:
                if used - {"flat"}:
                    raise ValueError(
                        f"periods {', '.join(sorted(used - {'flat'}))} need prices_cny_per_kwh or ratios"
                    )
                continue
            is_ratio = label.endswith("ratios")
            missing = sorted(used - set(table) - ({"flat"} if is_ratio else set()))
            if missing:
                raise ValueError(f"{label} has no value for period(s) {', '.join(missing)}")
            unused = sorted(set(table) - used - ({"flat"} if is_ratio else set()))
            if unused:
                raise ValueError(
                    f"{label} gives period(s) {', '.join(unused)} that have no hours in periods"
                )
            if self.v2g_base_cny_per_kwh is not None and not is_ratio and table.get("flat", 0.0) <= 0.0:
                raise ValueError(
                    f"v2g_base_cny_per_kwh needs a positive flat price in {label} to derive TOU ratios"
                )
        return self


class Tariff:
    """Vectorised evaluator of a :class:`TariffConfig`.

    Build with :meth:`from_config`; all methods take a ``pandas.DatetimeIndex`` (or anything
    ``pd.DatetimeIndex`` accepts) of length T and return arrays of shape (T,).
    """

    def __init__(
        self,
        code_table: np.ndarray,
        price_table: np.ndarray,
        v2g_table: np.ndarray,
        month_row: np.ndarray,
        holiday_row: np.ndarray,
        config: TariffConfig | None = None,
    ) -> None:
        # Tables have shape (R, 1440), one row per day type; month_row[m] / holiday_row[m] pick the
        # row of an ordinary day / a holiday in month m (index 0 unused).
        self._codes = code_table
        self._price = price_table
        self._v2g = v2g_table
        self._month_row = month_row
        self._holiday_row = holiday_row
        self.config = config

    @classmethod
    def from_config(cls, cfg: TariffConfig) -> Tariff:
        """Precompute per-minute price tables, one per day type, from a validated config."""
        season_of = cfg.season_of_month()
        crit_of = cfg.critical_of_month()
        crits = cfg.critical_peaks()
        keys: dict[tuple[int, int, bool], int] = {}
        month_row = np.zeros(13, dtype=np.intp)
        holiday_row = np.zeros(13, dtype=np.intp)
        for m in range(1, 13):
            month_row[m] = keys.setdefault((season_of[m], crit_of[m], False), len(keys))
            if cfg.holidays is not None:
                holiday_row[m] = keys.setdefault((season_of[m], -1, True), len(keys))
            else:
                holiday_row[m] = month_row[m]
        month_row[0], holiday_row[0] = month_row[1], holiday_row[1]

        codes, prices, v2gs = [], [], []
        for season, crit, holiday in keys:  # dicts keep insertion order = row number
            if holiday:
                periods = cfg.holidays.periods
            elif season >= 0:
                periods = cfg.seasons[season].periods
            else:
                periods = cfg.periods or {}
            base_code = _day_codes(periods)
            _label, table_prices, table_ratios = cfg._table_of(season)
            price_by_code, ratio_by_code = _price_table(table_prices, table_ratios, cfg.flat_cny_per_kwh)
            factor = np.ones(_MIN_PER_DAY)
            code = base_code.copy()
            if crit >= 0:
                crit_minute = np.zeros(_MIN_PER_DAY, dtype=bool)
                for s, e in _check_ranges(crits[crit].hours, "critical_peak.hours"):
                    crit_minute[s:e] = True
                factor[crit_minute] = crits[crit].multiplier
                code[crit_minute] = PERIOD_CODES["critical"]
            energy = price_by_code[base_code] * factor
            ratio = ratio_by_code[base_code] * factor
            if cfg.v2g_price_cny_per_kwh is not None:
                v2g = np.full(_MIN_PER_DAY, cfg.v2g_price_cny_per_kwh)
            elif cfg.v2g_base_cny_per_kwh is not None:
                v2g = cfg.v2g_base_cny_per_kwh * ratio
            elif cfg.v2g_price_factor is not None:
                v2g = cfg.v2g_price_factor * energy
            else:
                v2g = np.zeros(_MIN_PER_DAY)
            codes.append(code)
            prices.append(energy + cfg.service_fee_cny_per_kwh)
            v2gs.append(v2g)
        return cls(np.stack(codes).astype(np.int8), np.stack(prices), np.stack(v2gs), month_row, holiday_row, cfg)

    @staticmethod
    def _as_index(times: Any) -> pd.DatetimeIndex:
        return times if isinstance(times, pd.DatetimeIndex) else pd.DatetimeIndex(times)

    def is_holiday(self, times: Any) -> np.ndarray:
        """Whether each time stamp falls on one of the tariff's holidays, shape (T,) bool."""
        idx = self._as_index(times)
        hc = self.config.holidays if self.config is not None else None
        if hc is None or len(idx) == 0:
            return np.zeros(len(idx), dtype=bool)
        import holidays

        years = range(int(idx.year.min()), int(idx.year.max()) + 1)
        cal = holidays.country_holidays(hc.country, years=years, language="en_US")
        wanted = [n.lower() for n in hc.names] if hc.names else None
        days = [d for d, n in cal.items() if wanted is None or any(w in n.lower() for w in wanted)]
        if not days:
            return np.zeros(len(idx), dtype=bool)
        day_of = idx.tz_localize(None) if idx.tz is not None else idx
        return np.isin(day_of.normalize().to_numpy().astype("datetime64[D]"), np.array(days, dtype="datetime64[D]"))

    def _lookup(self, table: np.ndarray, times: Any) -> np.ndarray:
        idx = self._as_index(times)
        month = idx.month.to_numpy()
        minute = (idx.hour.to_numpy() * 60 + idx.minute.to_numpy()).astype(np.intp)
        row = np.where(self.is_holiday(idx), self._holiday_row[month], self._month_row[month])
        return table[row, minute]

    def price_cny_per_kwh(self, times: Any) -> np.ndarray:
        """Purchase price (incl. service fee) at each time stamp, shape (T,), CNY/kWh."""
        return self._lookup(self._price, times)

    def v2g_price_cny_per_kwh(self, times: Any) -> np.ndarray:
        """Price paid for V2G discharge at each time stamp, shape (T,), CNY/kWh."""
        return self._lookup(self._v2g, times)

    def period(self, times: Any, names: bool = False) -> np.ndarray:
        """Period code (int8, index into :data:`PERIOD_NAMES`) or name at each time stamp."""
        codes = self._lookup(self._codes, times)
        if names:
            return np.asarray(PERIOD_NAMES, dtype=object)[codes]
        return codes

    def has_valley(self) -> bool:
        """Whether any day type of the tariff has valley or deep-valley minutes."""
        return bool(np.isin(self._codes, [PERIOD_CODES[p] for p in VALLEY_PERIODS]).any())

    def is_valley(self, times: Any) -> np.ndarray:
        """Whether each time stamp is in a valley or deep-valley period, shape (T,) bool."""
        return np.isin(self.period(times), [PERIOD_CODES[p] for p in VALLEY_PERIODS])
