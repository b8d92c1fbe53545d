"""Policy compliance: the tests of the 2024 V2G pilot notice as KPIs with pass/fail.

Source: NDRC, NEA, MIIT and SAMR, 《关于推动车网互动规模化应用试点工作的通知》, 发改办能源〔2024〕718号,
published 2024-09-10 (DOMAIN.md Policy [A]; text via zhaoxny.com and gmteight.com): pilot regions
should put ≥60 % of the year's charging energy in valley hours, ≥80 % for private piles; a V2G
project should have ≥500 kW total discharge power and discharge ≥100,000 kWh a year (western
regions may be set lower).

How a run is tested (documented choices):

* Valley hours are the tariff's ``valley`` and ``deep_valley`` periods at each step (so seasons
  and holidays count as the tariff defines them). Charging energy is the vehicles' charging plus
  swap stations' charging; private piles are the ``home`` sites (their metered draw, net of V2G
  at the same site in the same step).
* Discharge power is the run's highest total V2G discharge (vehicles and swap stations, kW):
  the feeder's V2G is tested as one project, on what it delivered, not on nameplate ratings.
* Annual discharge: the run's V2G energy scaled to 365 days (energy x 365 / simulated days).
  A run shorter than a year is extrapolated linearly and flagged
  (``compliance_annual_discharge_extrapolated`` = 1); a one-week run in a season with much or
  little V2G says little about a year — run a year for the test that counts.
* Pass values are 1 (pass) or 0 (fail). A test that does not apply to the scenario (no home
  sites, or a tariff without valley hours — the notice presumes TOU prices) is left out: its
  share and pass keys are absent; which keys exist depends on the scenario only. A run that
  charged nothing has a NaN share (and pass) that ``compliance_pass`` does not count.
  ``compliance_pass`` is 1 when every other reported test passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from v2gsim.market.tariffs import Tariff, TariffConfig

if TYPE_CHECKING:
    from v2gsim.results import Results

__all__ = [
    "ANNUAL_DISCHARGE_MIN_KWH",
    "DISCHARGE_POWER_MIN_KW",
    "PRIVATE_VALLEY_SHARE_MIN_PCT",
    "VALLEY_SHARE_MIN_PCT",
    "compliance_kpis",
    "pilot_compliance",
    "tariff_of",
]

# 发改办能源〔2024〕718号 (2024-09-10), DOMAIN.md Policy [A]
VALLEY_SHARE_MIN_PCT = 60.0
PRIVATE_VALLEY_SHARE_MIN_PCT = 80.0
DISCHARGE_POWER_MIN_KW = 500.0
ANNUAL_DISCHARGE_MIN_KWH = 100_000.0
_DAYS_PER_YEAR = 365.0


def tariff_of(res: Results) -> Tariff:
    """The run's tariff, rebuilt from the scenario stored in the results' metadata (the preset
    already merged into it, so the preset name is dropped rather than applied twice)."""
    cfg = {k: v for k, v in res.metadata["scenario"]["tariff"].items() if k != "preset" and v is not None}
    cfg.pop("requires", None)
    return Tariff.from_config(TariffConfig.model_validate(cfg))


def _share_pct(e_kwh: np.ndarray, valley: np.ndarray) -> float:
    total = float(e_kwh.sum())
    return float(e_kwh[valley].sum() / total * 100.0) if total > 0 else float("nan")


def _pass(value: float, threshold: float) -> float:
    return float("nan") if not np.isfinite(value) else float(value >= threshold)


def pilot_compliance(times: pd.DatetimeIndex, charge_kw: np.ndarray, discharge_kw: np.ndarray, tariff: Tariff, *,
                     step_min: float, private_charge_kw: np.ndarray | None = None) -> dict[str, float]:
    """The pilot notice's tests on power series (one value per step starting at ``times``).

    Args:
        times: local wall-clock step starts.
        charge_kw: charging power of all charging (kW, >= 0).
        discharge_kw: V2G discharge power (kW, >= 0).
        tariff: the tariff whose valley periods count.
        step_min: step length in minutes.
        private_charge_kw: charging power at private piles (kW); None: no private piles.
    """
    dt_h = step_min / 60.0
    valley = tariff.is_valley(times)
    tou = tariff.has_valley()  # a tariff without valley hours (flat) cannot be tested
    share = _share_pct(np.asarray(charge_kw, float) * dt_h, valley) if tou else float("nan")
    private = (_share_pct(np.asarray(private_charge_kw, float) * dt_h, valley)
               if private_charge_kw is not None and tou else float("nan"))
    discharge_kw = np.asarray(discharge_kw, float)
    peak = float(discharge_kw.max()) if discharge_kw.size else 0.0
    days = len(times) * step_min / 1440.0
    e_dis = float(discharge_kw.sum() * dt_h)
    annual = e_dis * _DAYS_PER_YEAR / days if days > 0 else float("nan")
    out: dict[str, float] = {}
    # which tests apply depends on the scenario only (its tariff, its sites), never on what a run
    # happened to do, so a one-step run names the same KPIs as a year (sweeps check names so);
    # a test that does not apply is left out rather than NaN
    if tou:
        out["compliance_valley_charging_share_pct"] = share
        out["compliance_valley_charging_pass"] = _pass(share, VALLEY_SHARE_MIN_PCT)
        if private_charge_kw is not None:
            out["compliance_private_valley_charging_share_pct"] = private
            out["compliance_private_valley_charging_pass"] = _pass(private, PRIVATE_VALLEY_SHARE_MIN_PCT)
    out |= {
        "compliance_discharge_peak_kw": peak,
        "compliance_discharge_power_pass": _pass(peak, DISCHARGE_POWER_MIN_KW),
        "compliance_annual_discharge_kwh": annual,
        "compliance_annual_discharge_extrapolated": float(days < _DAYS_PER_YEAR),
        "compliance_annual_discharge_pass": _pass(annual, ANNUAL_DISCHARGE_MIN_KWH),
    }
    # a share of no charging at all is NaN (and its test is not counted)
    out["compliance_pass"] = float(all(v == 1.0 for k, v in out.items() if k.endswith("_pass") and np.isfinite(v)))
    return out


def compliance_kpis(res: Results) -> dict[str, float]:
    """:func:`pilot_compliance` of a finished run (see the module docstring for the rules)."""
    sys = res.system
    times = pd.DatetimeIndex(sys.index)
    zero = np.zeros(len(sys))
    charge = sys["ev_charge_kw"].to_numpy(float) + (sys["swap_charge_kw"].to_numpy(float) if "swap_charge_kw" in sys else zero)
    discharge = sys["v2g_discharge_kw"].to_numpy(float) + (
        sys["swap_discharge_kw"].to_numpy(float) if "swap_discharge_kw" in sys else zero)
    home = [s["id"] for s in res.metadata["scenario"].get("sites", []) if s.get("kind") == "home"]
    private = None
    if home and len(res.sites):
        at_home = res.sites[res.sites["site_id"].isin(home)]
        p = at_home["p_kw"].clip(lower=0.0).groupby(at_home["time"]).sum()
        private = p.reindex(sys.index, fill_value=0.0).to_numpy(float)
    step_min = res.metadata["scenario"]["time"]["step_min"]
    return pilot_compliance(times, charge, discharge, tariff_of(res), step_min=step_min, private_charge_kw=private)
