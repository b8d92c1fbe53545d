"""Electricity tariffs: flat and time-of-use (TOU) prices with a critical peak and a V2G price.

A tariff is described by a frozen :class:`TariffConfig` (validated, typed, usually from the
scenario YAML) and evaluated by :class:`Tariff`, which precomputes price tables at one-minute
resolution for a whole day (one table for ordinary months, one for critical-peak months) so that a
whole horizon of time stamps is priced with a single fancy-indexing operation.

Rules (documented choices):

* Hours of day are half-open ranges ``[start, end)`` with ``0 <= start < end <= 24``, in hours
  (fractions allowed if they fall on whole minutes, e.g. ``7.5``). A range that wraps past
  midnight is written as two ranges: ``[[23, 24], [0, 7]]``.
* Period ranges must not overlap (within or across periods).
* Hours not covered by any listed period are ``flat``. If ``flat`` itself is listed, the listed
  periods must cover all 24 hours (a complete spec with a gap is almost always a typo).
* Prices: either ``flat_cny_per_kwh`` alone (flat tariff), or per-period
  ``prices_cny_per_kwh``, or ``ratios`` to the base ``flat_cny_per_kwh``.
* The critical peak multiplies whatever price applies at its hours (normally the peak price) in
  its months; its period code is ``critical``.
* ``service_fee_cny_per_kwh`` is added to every purchase price (not to the V2G price).
* V2G discharge price: fixed ``v2g_price_cny_per_kwh``, or ``v2g_base_cny_per_kwh`` times the TOU
  ratio of the period (times the critical multiplier at critical hours). For a tariff given by
  ``prices_cny_per_kwh`` the ratios are ``price / flat price``. Neither given: 0 (no compensation).
* The price of a time stamp is the price at that wall-clock time (use the step start); the index
  is read in its own time zone, so pass local (e.g. Asia/Shanghai) times.
* ``preset: name`` loads ``presets/tariffs.yaml``; fields given explicitly replace the preset's
  field wholesale. A given ``prices_cny_per_kwh`` drops the preset's ``ratios`` and base
  ``flat_cny_per_kwh``; given ``ratios`` drop its ``prices_cny_per_kwh``; a given V2G price form
  drops the preset's other V2G form.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, model_validator

from v2gsim.fields import ConfigModel

__all__ = [
    "PERIOD_NAMES",
    "PERIOD_CODES",
    "CriticalPeakConfig",
    "TariffConfig",
    "Tariff",
    "load_tariff_presets",
]

#: Period names in code order (``Tariff.period`` returns these codes).
PERIOD_NAMES: tuple[str, ...] = ("deep_valley", "valley", "flat", "peak", "critical")
PERIOD_CODES: dict[str, int] = {name: i for i, name in enumerate(PERIOD_NAMES)}

PeriodName = Literal["deep_valley", "valley", "flat", "peak"]
Hour = Annotated[float, Field(ge=0.0, le=24.0)]
HourRange = tuple[Hour, Hour]
Price = Annotated[float, Field(ge=0.0, le=20.0)]
Ratio = Annotated[float, Field(ge=0.0, le=10.0)]

_MIN_PER_DAY = 1440
_PRESET_META_KEYS = ("description", "sources")


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


class CriticalPeakConfig(ConfigModel):
    """Critical peak: a price multiplier at some hours in some months."""

    hours: list[HourRange] = Field(min_length=1, description="Hour-of-day ranges [start, end).")
    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(
        min_length=1, description="Calendar months (1-12) in which the critical peak applies."
    )
    multiplier: Annotated[float, Field(ge=1.0, le=5.0)] = Field(
        description="Factor on the price that applies at those hours (dimensionless)."
    )

    @model_validator(mode="after")
    def _check(self) -> CriticalPeakConfig:
        mins = sorted(_check_ranges(self.hours, "critical_peak.hours"))
        for (_s0, e0), (s1, e1) in zip(mins, mins[1:]):
            if s1 < e0:
                raise ValueError(
                    f"critical_peak.hours: ranges overlap at {_fmt_minutes(s1)}-"
                    f"{_fmt_minutes(min(e0, e1))}"
                )
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
    periods: dict[PeriodName, list[HourRange]] | None = Field(
        None, description="Hour-of-day ranges [start, end) per TOU period; uncovered hours are flat."
    )
    prices_cny_per_kwh: dict[PeriodName, Price] | None = Field(
        None, description="Purchase price per TOU period (CNY/kWh)."
    )
    ratios: dict[PeriodName, Ratio] | None = Field(
        None, description="Price ratio per TOU period to flat_cny_per_kwh (dimensionless)."
    )
    critical_peak: CriticalPeakConfig | None = None
    service_fee_cny_per_kwh: Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        0.0, description="Added to every purchase price (CNY/kWh)."
    )
    v2g_price_cny_per_kwh: Price | None = Field(
        None, description="Fixed price paid for V2G discharge (CNY/kWh)."
    )
    v2g_base_cny_per_kwh: Price | None = Field(
        None, description="Base V2G price multiplied by the TOU ratios (CNY/kWh)."
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
        explicit = {k: v for k, v in data.items() if k != "preset"}
        # An explicitly chosen pricing form replaces the preset's other form.
        if "prices_cny_per_kwh" in explicit:
            merged.pop("ratios", None)
            merged.pop("flat_cny_per_kwh", None)  # only the ratios' base in the preset
        if "ratios" in explicit:
            merged.pop("prices_cny_per_kwh", None)
        if "v2g_price_cny_per_kwh" in explicit:
            merged.pop("v2g_base_cny_per_kwh", None)
        if "v2g_base_cny_per_kwh" in explicit:
            merged.pop("v2g_price_cny_per_kwh", None)
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

    @model_validator(mode="after")
    def _check(self) -> TariffConfig:
        if self.prices_cny_per_kwh is not None and self.ratios is not None:
            raise ValueError("give either prices_cny_per_kwh or ratios, not both")
        if self.prices_cny_per_kwh is not None and self.flat_cny_per_kwh is not None:
            raise ValueError(
                "flat_cny_per_kwh cannot be combined with prices_cny_per_kwh; "
                "set prices_cny_per_kwh.flat instead"
            )
        if self.ratios is not None and self.flat_cny_per_kwh is None:
            raise ValueError("ratios need the base price flat_cny_per_kwh")
        if (
            self.flat_cny_per_kwh is None
            and self.prices_cny_per_kwh is None
        ):
            raise ValueError(
                "a tariff needs flat_cny_per_kwh, prices_cny_per_kwh, or a preset"
            )
        if self.v2g_price_cny_per_kwh is not None and self.v2g_base_cny_per_kwh is not None:
            raise ValueError("give either v2g_price_cny_per_kwh or v2g_base_cny_per_kwh, not both")

        periods = self.periods or {}
        if periods and self.prices_cny_per_kwh is None and self.ratios is None:
            raise ValueError("periods need prices_cny_per_kwh or ratios")
        # Overlaps, coverage.
        spans: list[tuple[int, int, str]] = []
        for name, ranges in periods.items():
            for s, e in _check_ranges(ranges, f"periods.{name}"):
                spans.append((s, e, name))
        spans.sort()
        for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
            if s1 < e0:
                raise ValueError(
                    f"periods overlap: {n0} and {n1} both cover {_fmt_minutes(s1)}-"
                    f"{_fmt_minutes(min(e0, e1))}"
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
                "periods list 'flat' explicitly, so they must cover all 24 hours; "
                f"not covered: {', '.join(gaps)}"
            )
        used = set(periods) | ({"flat"} if covered < _MIN_PER_DAY else set())
        table = self.prices_cny_per_kwh if self.prices_cny_per_kwh is not None else self.ratios
        if table is not None:
            label = "prices_cny_per_kwh" if self.prices_cny_per_kwh is not None else "ratios"
            missing = sorted(used - set(table) - ({"flat"} if label == "ratios" else set()))
            if missing:
                raise ValueError(f"{label} has no value for period(s) {', '.join(missing)}")
            unused = sorted(set(table) - used)
            if unused:
                raise ValueError(
                    f"{label} gives period(s) {', '.join(unused)} that have no hours in periods"
                )
        if self.v2g_base_cny_per_kwh is not None and self.prices_cny_per_kwh is not None:
            if self.prices_cny_per_kwh.get("flat", 0.0) <= 0.0:
                raise ValueError(
                    "v2g_base_cny_per_kwh needs a positive flat price to derive TOU ratios"
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
        critical_months: np.ndarray,
        config: TariffConfig | None = None,
    ) -> None:
        # Tables have shape (2, 1440): row 0 ordinary months, row 1 critical-peak months.
        self._codes = code_table
        self._price = price_table
        self._v2g = v2g_table
        self._crit_month = critical_months  # (13,) bool, index = month number
        self.config = config

    @classmethod
    def from_config(cls, cfg: TariffConfig) -> Tariff:
        """Precompute per-minute price tables from a validated config."""
        base_code = np.full(_MIN_PER_DAY, PERIOD_CODES["flat"], dtype=np.int8)
        for name, ranges in (cfg.periods or {}).items():
            for s, e in _check_ranges(ranges, f"periods.{name}"):
                base_code[s:e] = PERIOD_CODES[name]

        # Price and ratio per base period code (critical handled by the multiplier).
        n_codes = len(PERIOD_NAMES)
        price_by_code = np.full(n_codes, np.nan)
        ratio_by_code = np.full(n_codes, np.nan)
        if cfg.prices_cny_per_kwh is not None:
            flat_ref = cfg.prices_cny_per_kwh.get("flat")
            for name, p in cfg.prices_cny_per_kwh.items():
                price_by_code[PERIOD_CODES[name]] = p
                if flat_ref:
                    ratio_by_code[PERIOD_CODES[name]] = p / flat_ref
        elif cfg.ratios is not None:
            ratios = {"flat": 1.0, **cfg.ratios}
            for name, r in ratios.items():
                price_by_code[PERIOD_CODES[name]] = r * cfg.flat_cny_per_kwh
                ratio_by_code[PERIOD_CODES[name]] = r
        else:
            price_by_code[:] = cfg.flat_cny_per_kwh
            ratio_by_code[:] = 1.0

        crit_minute = np.zeros(_MIN_PER_DAY, dtype=bool)
        crit_months = np.zeros(13, dtype=bool)
        mult = 1.0
        if cfg.critical_peak is not None:
            for s, e in _check_ranges(cfg.critical_peak.hours, "critical_peak.hours"):
                crit_minute[s:e] = True
            crit_months[list(cfg.critical_peak.months)] = True
            mult = cfg.critical_peak.multiplier

        price0 = price_by_code[base_code] + cfg.service_fee_cny_per_kwh
        ratio0 = ratio_by_code[base_code]
        factor1 = np.where(crit_minute, mult, 1.0)
        price1 = price_by_code[base_code] * factor1 + cfg.service_fee_cny_per_kwh
        ratio1 = ratio0 * factor1
        codes = np.stack([base_code, np.where(crit_minute, PERIOD_CODES["critical"], base_code)])
        codes = codes.astype(np.int8)

        if cfg.v2g_price_cny_per_kwh is not None:
            v2g = np.full((2, _MIN_PER_DAY), cfg.v2g_price_cny_per_kwh)
        elif cfg.v2g_base_cny_per_kwh is not None:
            v2g = cfg.v2g_base_cny_per_kwh * np.stack([ratio0, ratio1])
        else:
            v2g = np.zeros((2, _MIN_PER_DAY))
        return cls(codes, np.stack([price0, price1]), v2g, crit_months, cfg)

    @staticmethod
    def _index(times: Any) -> tuple[np.ndarray, np.ndarray]:
        idx = times if isinstance(times, pd.DatetimeIndex) else pd.DatetimeIndex(times)
        minute = idx.hour.to_numpy() * 60 + idx.minute.to_numpy()
        return idx.month.to_numpy(), minute.astype(np.intp)

    def _lookup(self, table: np.ndarray, times: Any) -> np.ndarray:
        month, minute = self._index(times)
        return table[self._crit_month[month].astype(np.intp), minute]

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
