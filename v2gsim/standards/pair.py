"""The standards pair: the same hub and drivers with fragmented and with unified V2G protocols
(``scenarios/standards_fragmented.yaml``, ``scenarios/standards_unified.yaml``), run side by
side, measuring the V2G capacity that can actually be reached."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from v2gsim.results import Results

#: The table's columns, with what each measures.
COLUMNS = {
    "v2g_plugged_kw_mean": "mean plug power of cars plugged where they can discharge (kW)",
    "v2g_plugged_kw_peak": "its peak over the run (kW)",
    "v2g_plugged_kw_in_calls": "its mean over the steps of the discharge calls (kW)",
    "v2g_blocked_kw_mean": "mean plug power of bidirectional cars at a bidirectional gun without a common protocol (kW)",
    "v2g_energy_kwh": "V2G energy delivered to the grid over the run (kWh)",
    "v2g_in_calls_kwh": "of which during the discharge calls (kWh)",
    "plugins_blocked_share": "share of plug-ins at the hub where car and gun share no protocol",
    "incompatible_arrivals": "arrivals that found no gun their inlet fits",
    "unmet_energy_kwh": "charging energy drivers wanted and did not get (kWh)",
}


def _call_mask(res: Results) -> pd.Series:
    """Steps inside a centralized discharge call, from the scenario's own requests."""
    sc = res.metadata["scenario"]
    t = res.system.index
    inside = pd.Series(False, index=t)
    for bm in sc["business_models"]:
        for rq in bm.get("requests", ()) if bm.get("kind") == "centralized" else ():
            if rq["kind"] != "discharge_call":
                continue
            start = pd.Timestamp(rq["start"])
            days = range((t[-1].normalize() - start.normalize()).days + 1) if rq.get("daily") else range(1)
            for d in days:
                s = start + pd.Timedelta(days=d)
                inside |= (t >= s) & (t < s + pd.Timedelta(hours=rq["hours"]))
    return inside


def pair_row(res: Results) -> dict[str, float]:
    """One side's row of the table (see :data:`COLUMNS`) from its Results."""
    k, sys_ = res.kpis, res.system
    dt_h = res.metadata["scenario"]["time"]["step_min"] / 60.0
    calls = _call_mask(res).to_numpy()
    shared = k["standards_plugins_shared"]
    return {
        "v2g_plugged_kw_mean": k["v2g_plugged_kw_mean"],
        "v2g_plugged_kw_peak": k["v2g_plugged_kw_peak"],
        "v2g_plugged_kw_in_calls": float(sys_["v2g_plugged_kw"].to_numpy()[calls].mean()) if calls.any() else float("nan"),
        "v2g_blocked_kw_mean": k["v2g_blocked_kw_mean"],
        "v2g_energy_kwh": k["v2g_energy_kwh"],
        "v2g_in_calls_kwh": float(sys_["v2g_discharge_kw"].to_numpy()[calls].sum() * dt_h),
        "plugins_blocked_share": k["standards_plugins_blocked"] / shared if shared else 0.0,
        "incompatible_arrivals": k["standards_incompatible_arrivals"],
        "unmet_energy_kwh": k["unmet_energy_kwh"],
    }


def run_standards_pair(fragmented: str = "standards_fragmented", unified: str = "standards_unified", *,
                       seed: int | None = None, overrides: Mapping[str, object] | None = None) -> tuple[dict[str, Results], pd.DataFrame]:
    """Run both sides (bundled names or files) with the same ``seed`` and ``overrides``
    (e.g. ``{"time.horizon_days": 2}``).

    Returns the Results by side and the table: one row per side (``fragmented``, ``unified``)
    and a row ``unified / fragmented``; columns :data:`COLUMNS`.
    """
    from v2gsim.runner import run_scenario
    from v2gsim.scenario import load_scenario

    runs = {side: run_scenario(load_scenario(name, dict(overrides or {})), seed=seed, baseline=False)
            for side, name in (("fragmented", fragmented), ("unified", unified))}
    table = pd.DataFrame({side: pair_row(r) for side, r in runs.items()}).T[list(COLUMNS)]
    table.loc["unified / fragmented"] = table.loc["unified"] / table.loc["fragmented"].where(table.loc["fragmented"] != 0)
    table.index.name = "standards"
    return runs, table


def standards_pair(fragmented: str = "standards_fragmented", unified: str = "standards_unified", *,
                   seed: int | None = None, overrides: Mapping[str, object] | None = None) -> pd.DataFrame:
    """The table of :func:`run_standards_pair` alone."""
    return run_standards_pair(fragmented, unified, seed=seed, overrides=overrides)[1]
