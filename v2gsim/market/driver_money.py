"""Each driver's money over a run, and its distribution: pure functions of Results.

Per vehicle (its driver), from ``Results.vehicles`` (the engine's per-vehicle totals, the contract
columns of :mod:`v2gsim.market.contracts`) and, with the wear model on, ``extra["wear"]``:

* ``charging_cost_cny`` -- paid for energy drawn (``cost_cny``);
* ``v2g_income_cny`` -- kept of the V2G payments (``revenue_cny − contract_share_cny``);
* ``wear_compensation_cny``, ``min_guarantee_cny`` -- paid under the contract;
* ``wear_cost_cny`` -- the capacity fade V2G caused, priced by the wear model
  (``wear_cost_v2g_cny``; 0 for leased swap packs, whose wear is the operator's; NaN without
  the wear model);
* ``battery_lease_cny`` -- BaaS lease paid;
* ``v2g_net_cny`` = income + compensation + guarantee − wear cost (wear cost 0 where unknown):
  what taking part in V2G earned the driver; ``net_cny`` = ``v2g_net_cny`` − charging cost −
  lease: the driver's whole account over the run.

A driver **gains** where ``v2g_net_cny > 0``, **loses** where it is below zero; drivers with no
V2G money and no V2G wear are **not taking part**. The deciles are over all drivers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the per-driver columns whose deciles are reported
MONEY_COLUMNS = ("charging_cost_cny", "v2g_income_cny", "wear_compensation_cny", "min_guarantee_cny", "wear_cost_cny",
                 "battery_lease_cny", "v2g_net_cny", "net_cny")
DECILES = tuple(round(q / 10, 1) for q in range(1, 10))
_EPS_CNY = 1e-9


def _col(v: pd.DataFrame, name: str) -> np.ndarray:
    return v[name].to_numpy(float) if name in v else np.zeros(len(v))


def driver_money(results) -> pd.DataFrame:
    """One row per vehicle (its driver), index ``vehicle``: ``group``, ``archetype`` and the money
    columns of :data:`MONEY_COLUMNS` (CNY), plus ``v2g_kwh`` (energy fed back, grid side) and
    ``outcome`` (``gains``, ``loses`` or ``not taking part``)."""
    v = results.vehicles
    n = len(v)
    wear = results.extra.get("wear")
    if wear is not None and len(wear) == n and "wear_cost_v2g_cny" in wear:
        wear_cost = wear.sort_values("vehicle")["wear_cost_v2g_cny"].to_numpy(float) if "vehicle" in wear else wear["wear_cost_v2g_cny"].to_numpy(float)
    else:
        wear_cost = np.full(n, np.nan)
    income = _col(v, "revenue_cny") - _col(v, "contract_share_cny")
    comp, guarantee = _col(v, "wear_compensation_cny"), _col(v, "min_guarantee_cny")
    v2g_net = income + comp + guarantee - np.nan_to_num(wear_cost)
    cost, lease = _col(v, "cost_cny"), _col(v, "battery_lease_cny")
    v2g_kwh = _col(v, "e_v2g_kwh") if "e_v2g_kwh" in v else (_col(v, "e_discharged_kwh") if "e_discharged_kwh" in v else np.zeros(n))
    taking_part = (np.abs(income) + comp + guarantee + np.nan_to_num(wear_cost)) > _EPS_CNY
    outcome = np.where(~taking_part, "not taking part", np.where(v2g_net > _EPS_CNY, "gains", np.where(v2g_net < -_EPS_CNY, "loses", "even")))
    out = pd.DataFrame({
        "group": v["group"].to_numpy() if "group" in v else np.zeros(n, np.int64),
        "archetype": v["archetype"].to_numpy() if "archetype" in v else np.full(n, ""),
        "v2g_kwh": v2g_kwh,
        "charging_cost_cny": cost,
        "v2g_income_cny": income,
        "wear_compensation_cny": comp,
        "min_guarantee_cny": guarantee,
        "wear_cost_cny": wear_cost,
        "battery_lease_cny": lease,
        "v2g_net_cny": v2g_net,
        "net_cny": v2g_net - cost - lease,
        "outcome": pd.Categorical(outcome, categories=["gains", "even", "loses", "not taking part"]),
    }, index=pd.Index(v["vehicle"].to_numpy() if "vehicle" in v else np.arange(n), name="vehicle"))
    return out


def driver_money_deciles(table: pd.DataFrame, *, taking_part_only: bool = False) -> pd.DataFrame:
    """Deciles (10 % … 90 %) of each money column over the drivers (index ``decile``, columns
    :data:`MONEY_COLUMNS`, CNY); with ``taking_part_only``, over drivers who took part in V2G."""
    t = table[table["outcome"] != "not taking part"] if taking_part_only else table
    q = t[list(MONEY_COLUMNS)].quantile(list(DECILES)) if len(t) else pd.DataFrame(np.nan, index=list(DECILES), columns=list(MONEY_COLUMNS))
    q.index = pd.Index([f"p{int(round(d * 100))}" for d in DECILES], name="decile")
    return q


def driver_money_kpis(table: pd.DataFrame) -> dict[str, float]:
    """Who gains, who loses and the spread of the V2G net: ``drivers_gaining``,
    ``drivers_losing``, ``drivers_taking_part``, ``driver_v2g_net_p10_cny`` / ``p50`` / ``p90``
    (over drivers taking part; NaN without any), ``driver_v2g_net_mean_cny``, ``driver_net_mean_cny``
    (over all drivers)."""
    part = table[table["outcome"] != "not taking part"]["v2g_net_cny"]
    q = part.quantile([0.1, 0.5, 0.9]) if len(part) else pd.Series(np.nan, index=[0.1, 0.5, 0.9])
    return {
        "drivers_taking_part": float(len(part)),
        "drivers_gaining": float((table["outcome"] == "gains").sum()),
        "drivers_losing": float((table["outcome"] == "loses").sum()),
        "driver_v2g_net_p10_cny": float(q.iloc[0]),
        "driver_v2g_net_p50_cny": float(q.iloc[1]),
        "driver_v2g_net_p90_cny": float(q.iloc[2]),
        "driver_v2g_net_mean_cny": float(part.mean()) if len(part) else float("nan"),
        "driver_net_mean_cny": float(table["net_cny"].mean()) if len(table) else float("nan"),
    }


def has_driver_money(results) -> bool:
    """The run has drivers' V2G money worth showing: contracts, or vehicles fed back."""
    v = results.vehicles
    return any(c in v for c in ("contract_share_cny", "battery_lease_cny")) or bool((_col(v, "revenue_cny") > 0).any())


def add_driver_money(results) -> None:
    """Where the run has drivers' V2G money (:func:`has_driver_money`), add
    ``extra["drivers_money"]`` (the per-driver table, file ``drivers_money.parquet``) and, for a
    scenario with contracts, the KPIs of :func:`driver_money_kpis` (the results build calls it).
    Other runs keep their tables and KPIs as they were; :func:`driver_money` gives their table."""
    if not has_driver_money(results):
        return
    table = driver_money(results)
    results.extra["drivers_money"] = table.reset_index()
    if "wear_compensation_cny" in results.vehicles:  # contracts on (keeps the KPIs of other runs as they were)
        results.kpis.update(driver_money_kpis(table))
