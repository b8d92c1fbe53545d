"""Tables of a report, computed from Results only (pure functions, no HTML)."""

from __future__ import annotations

import pandas as pd

from v2gsim.operators import operator_list

def operators(results) -> list[dict]:
    """One entry per business model: kind, KPI prefix (its operator id), config, site ids and
    station ids, as the engine recorded them (:func:`v2gsim.operators.operator_list`); empty for
    results saved before the engine recorded site ownership."""
    try:
        ops = operator_list(results)
    except ValueError:
        return []
    return [{"kind": r["kind"], "prefix": op, "config": r["config"], "sites": r["sites"], "stations": r["stations"]}
            for op, r in ops.iterrows()]


def site_energy(results) -> pd.DataFrame:
    """Per site (index ``site_id``): energy drawn and fed back (kWh) and peak draw (kW), from the
    net site power of every step."""
    s = results.sites
    cols = ["energy_in_kwh", "energy_out_kwh", "peak_kw"]
    if s.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="site_id"))
    p = s["p_kw"].to_numpy(float)
    frame = pd.DataFrame({"site_id": s["site_id"].astype(str), "in": p.clip(min=0) * results.dt_h,
                          "out": (-p).clip(min=0) * results.dt_h, "p": p})
    g = frame.groupby("site_id", sort=False)
    return pd.DataFrame({"energy_in_kwh": g["in"].sum(), "energy_out_kwh": g["out"].sum(), "peak_kw": g["p"].max()})


def station_totals(results) -> pd.DataFrame:
    """Per swap station (index ``station_id``): swaps, drivers who left, energy, peak, money."""
    st = results.extra.get("stations")
    if st is None or st.empty:
        return pd.DataFrame()
    st = st.assign(station_id=st["station_id"].astype(str))
    g = st.groupby("station_id", sort=False)
    dt_h = results.dt_h
    return pd.DataFrame({
        "swaps": g["swaps"].sum(),
        "drivers_left": g["left"].sum(),
        "queue_max": g["queue"].max(),
        "packs_ready_min": g["packs_ready"].min(),
        "energy_charged_kwh": g["charge_kw"].sum() * dt_h,
        "energy_discharged_kwh": g["discharge_kw"].sum() * dt_h,
        "peak_kw": g["p_kw"].max(),
        "cost_cny": g["cost_cny"].sum(),
        "revenue_cny": g["revenue_cny"].sum(),
        "wear_cost_cny": g["wear_cost_cny"].sum(),
    })


def ledger_by_reason(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per reason (index ``reason``): entries, energy (kWh) and amount (CNY)."""
    g = ledger.groupby(ledger["reason"].astype(str))
    return pd.DataFrame({"entries": g.size(), "energy_kwh": g["energy_kwh"].sum(), "amount_cny": g["amount_cny"].sum()})
