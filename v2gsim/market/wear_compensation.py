"""The review's first constraint on V2G in China -- no mechanism to manage and pay for battery
degradation -- as an experiment: the same scenario without and with wear compensation.

:func:`compare_wear_compensation` runs a pair of scenarios (by default the bundled
``wear_compensation_off`` and ``wear_compensation_on``, the second ``extends`` the first and adds
a contract paying the wear model's price per kWh fed back) with the same seed and sets their
figures side by side: enrolment, drivers answering, V2G energy, what compensation cost the
aggregator, the drivers' net benefit from V2G and battery fade.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from v2gsim.market.driver_money import driver_money, driver_money_kpis

#: metric -> what it is (the rows of the comparison, in order)
METRICS = {
    "enrolled_drivers": "drivers enrolled in a V2G programme (summed over aggregators)",
    "drivers_accepting": "yes answers to invitations (summed over invitations)",
    "drivers_responding": "drivers who fed back in invitations (summed over invitations)",
    "v2g_energy_kwh": "energy the fleet fed back, grid side",
    "wear_compensation_cny": "wear compensation the aggregators paid",
    "driver_v2g_income_cny": "V2G income the drivers kept, all drivers",
    "driver_v2g_net_cny": "drivers' V2G net (income + compensation + guarantee - V2G wear cost), all drivers",
    "driver_v2g_net_mean_cny": "V2G net per participating driver",
    "drivers_gaining": "drivers whose V2G net is positive",
    "drivers_losing": "drivers whose V2G net is negative",
    "wear_cost_v2g_cny": "V2G-attributed battery wear, priced by the wear model",
    "wear_fade_mean_pct": "capacity fade per vehicle, mean",
    "wear_fade_v2g_mean_v2g_vehicles_pct": "V2G-attributed fade per vehicle that fed back, mean",
    "aggregator_net_cny": "the aggregators' net money (ledger)",
}


def _sum_of(kpis: Mapping[str, float], suffix: str, kinds: list[str]) -> float:
    """Sum of ``<operator>_<suffix>`` over the operators of ``kinds`` (ids ``<kind>`` or
    ``<kind><k>``) present in ``kpis``; NaN without any."""
    pattern = re.compile(rf"^(?:{'|'.join(map(re.escape, kinds))})\d*_{re.escape(suffix)}$")
    vals = [v for k, v in kpis.items() if pattern.match(k)]
    return float(np.nansum(vals)) if vals else float("nan")


def wear_compensation_figures(res) -> dict[str, float]:
    """The figures of :data:`METRICS` for one run (a :class:`v2gsim.results.Results`)."""
    k = res.kpis
    money = driver_money(res)
    dk = driver_money_kpis(money)
    aggregators = ["distributed", "centralized"]
    return {
        "enrolled_drivers": _sum_of(k, "enrolled_drivers", aggregators),
        "drivers_accepting": _sum_of(k, "drivers_accepting", aggregators),
        "drivers_responding": _sum_of(k, "drivers_responding", aggregators),
        "v2g_energy_kwh": float(k.get("v2g_energy_kwh", float("nan"))),
        "wear_compensation_cny": float(k.get("contract_wear_compensation_cny", 0.0)),
        "driver_v2g_income_cny": float(money["v2g_income_cny"].sum()),
        "driver_v2g_net_cny": float(money["v2g_net_cny"].sum()),
        "driver_v2g_net_mean_cny": dk["driver_v2g_net_mean_cny"],
        "drivers_gaining": dk["drivers_gaining"],
        "drivers_losing": dk["drivers_losing"],
        "wear_cost_v2g_cny": float(k.get("wear_cost_v2g_cny", float("nan"))),
        "wear_fade_mean_pct": float(k.get("wear_fade_mean_pct", float("nan"))),
        "wear_fade_v2g_mean_v2g_vehicles_pct": float(k.get("wear_fade_v2g_mean_v2g_vehicles_pct", float("nan"))),
        "aggregator_net_cny": _sum_of(k, "net_cny", aggregators),
    }


def compare_wear_compensation(off: str = "wear_compensation_off", on: str = "wear_compensation_on", *,
                              overrides: Mapping[str, object] | None = None, seed: int | None = None,
                              return_results: bool = False):
    """Run the scenario pair ``off`` / ``on`` (names of bundled scenarios or paths) with the same
    seed and overrides, and set their figures side by side.

    Args:
        off, on: the scenario without and with wear compensation.
        overrides: dotted-path overrides applied to both (e.g. ``{"time.horizon_days": 7}``).
        seed: replaces both scenarios' seed.
        return_results: also return the two runs' Results.

    Returns:
        A DataFrame indexed by metric (:data:`METRICS`) with columns ``off``, ``on``,
        ``change`` (on − off), ``change_pct`` (relative to off; NaN where off is 0) and
        ``meaning``; with ``return_results``, ``(table, {"off": Results, "on": Results})``.
    """
    from v2gsim import load_scenario, run

    runs = {}
    for label, name in (("off", off), ("on", on)):
        runs[label] = run(load_scenario(name, dict(overrides or {})), seed=seed, baseline=False)
    a, b = wear_compensation_figures(runs["off"]), wear_compensation_figures(runs["on"])
    table = pd.DataFrame({"off": pd.Series(a), "on": pd.Series(b)})
    table["change"] = table["on"] - table["off"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["change_pct"] = np.where(table["off"] != 0, table["change"] / table["off"].abs() * 100.0, np.nan)
    table["meaning"] = pd.Series(METRICS)
    table.index.name = "metric"
    return (table, runs) if return_results else table
