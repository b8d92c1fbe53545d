"""Two-part tariff bills: the demand charge on each billing month's peak and the capacity
charge on contracted transformer capacity. Pure functions of a power series (or of
:class:`~v2gsim.results.Results`), so a settle phase can call them as they are.

Rules (documented choices):

* The billing period is the calendar month of the local wall-clock time stamps.
* Demand is the highest mean power over fixed windows of ``window_min`` minutes aligned to the
  hour (the meter's demand period; 15 min by default — our choice, no source in DOMAIN.md). A
  series with steps longer than the window is taken as it is (each step is one window).
  Negative power (net export, e.g. V2G above the site's load) is demand 0.
* A month only partly simulated is charged pro rata: rate x peak x (simulated days in that month
  / days in the month), so a one-week run carries about a quarter of a month's charge against a
  week of energy cost. ``prorate=False`` charges every touched month in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from v2gsim.results import Results

__all__ = ["monthly_demand_kw", "demand_charge_cny", "capacity_charge_cny", "two_part_kpis"]


def _month_fraction(times: pd.DatetimeIndex, step_min: float) -> pd.Series:
    """Simulated share of each calendar month touched by ``times`` (steps of ``step_min``)."""
    months = times.to_period("M")
    steps = pd.Series(1.0, index=months).groupby(level=0).sum()
    days = steps * step_min / 1440.0
    return days / pd.Series(steps.index.days_in_month, index=steps.index, dtype=float)


def monthly_demand_kw(p_kw: pd.Series, *, step_min: float, window_min: int = 15) -> pd.Series:
    """Billing demand (kW) of each calendar month: the highest ``window_min`` mean of ``p_kw``.

    Args:
        p_kw: power drawn (kW), indexed by local time stamps (the start of each step).
        step_min: step length of the series in minutes.
        window_min: demand period of the meter in minutes.
    Returns:
        Series indexed by month (``pandas.Period``), kW.
    """
    if len(p_kw) == 0:
        return pd.Series(dtype=float)
    s = p_kw.astype(float).clip(lower=0.0)
    if step_min < window_min:
        s = s.resample(f"{window_min}min").mean()
    return s.groupby(s.index.to_period("M")).max()


def demand_charge_cny(p_kw: pd.Series, rate_cny_per_kw_month: float, *, step_min: float, window_min: int = 15,
                      prorate: bool = True) -> float:
    """Demand charge (CNY) of a metered power series: per month, rate x billing demand
    (x the simulated share of the month when ``prorate``), summed over months."""
    peaks = monthly_demand_kw(p_kw, step_min=step_min, window_min=window_min)
    if peaks.empty:
        return 0.0
    share = _month_fraction(pd.DatetimeIndex(p_kw.index), step_min) if prorate else pd.Series(1.0, index=peaks.index)
    return float((rate_cny_per_kw_month * peaks * share.reindex(peaks.index)).sum())


def capacity_charge_cny(capacity_kva: float, rate_cny_per_kva_month: float, times: pd.DatetimeIndex, *,
                        step_min: float, prorate: bool = True) -> float:
    """Capacity charge (CNY): rate x contracted kVA per month touched by ``times`` (x the
    simulated share of each month when ``prorate``)."""
    if len(times) == 0:
        return 0.0
    share = _month_fraction(pd.DatetimeIndex(times), step_min)
    months = float(share.sum()) if prorate else float(len(share))
    return float(rate_cny_per_kva_month * capacity_kva * months)


def _site_power(res: Results) -> pd.DataFrame:
    """Per-site power (kW), one column per site, indexed by time."""
    wide = res.sites.pivot_table(index="time", columns="site_id", values="p_kw", observed=False, aggfunc="sum")
    return wide.reindex(res.system.index).fillna(0.0)


def two_part_kpis(res: Results) -> dict[str, float]:
    """Two-part tariff KPIs of a finished run (none when the tariff has no two-part charge).

    - ``demand_charge_cny``: with ``tariff.demand_charge_cny_per_kw_month``; metered per site
      (``demand_meter: sites``, each site and each swap station a customer on its own peak) or on the feeder's net load
      (``feeder``);
    - ``demand_billed_peak_kw``: the largest monthly billing demand (summed over sites);
    - ``capacity_charge_cny``: with ``tariff.capacity_charge_cny_per_kva_month``, on
      ``tariff.capacity_kva`` (default the transformer rating).
    """
    t = res.metadata["scenario"]["tariff"]
    step_min = res.metadata["scenario"]["time"]["step_min"]
    times = pd.DatetimeIndex(res.system.index)
    out: dict[str, float] = {}
    rate = t.get("demand_charge_cny_per_kw_month")
    if rate is not None:
        window = int(t.get("demand_window_min") or 15)
        if t.get("demand_meter", "sites") == "feeder":
            series = {"feeder": res.system["net_load_kw"]}
        else:
            wide = _site_power(res)
            series = {c: wide[c] for c in wide.columns}
            if "stations" in res.extra:  # each swap station on its own meter, as the ledger bills it
                st = res.extra["stations"].pivot_table(index="time", columns="station_id", values="p_kw", observed=False, aggfunc="sum")
                st = st.reindex(res.system.index).fillna(0.0)
                series.update({f"station:{c}": st[c] for c in st.columns})
        out["demand_charge_cny"] = float(sum(
            demand_charge_cny(s, rate, step_min=step_min, window_min=window) for s in series.values()))
        peaks = [monthly_demand_kw(s, step_min=step_min, window_min=window) for s in series.values()]
        out["demand_billed_peak_kw"] = float(pd.concat(peaks, axis=1).sum(axis=1).max()) if peaks else 0.0
    rate = t.get("capacity_charge_cny_per_kva_month")
    if rate is not None:
        kva = t.get("capacity_kva") or res.transformer_kva
        out["capacity_charge_cny"] = capacity_charge_cny(float(kva), rate, times, step_min=step_min)
    return {k: (v if np.isfinite(v) else float("nan")) for k, v in out.items()}
