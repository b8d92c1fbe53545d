"""Tables of a report, computed from Results only (pure functions, no HTML)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from v2gsim.report.kpis import operator_prefixes

LEDGER_COLUMNS = ("payer", "payee", "reason", "energy_kwh", "amount_cny")


def operator_sites(scenario: Mapping) -> list[list[str]]:
    """The site ids each business model controls, in scenario order: its ``sites``, or, when
    omitted, every site no other entry claims (the rule of `v2gsim.model`)."""
    bms = scenario["business_models"]
    claimed = {sid for bm in bms if bm.get("sites") for sid in bm["sites"]}
    every = [s["id"] for s in scenario.get("sites", [])]
    return [list(bm["sites"]) if bm.get("sites") is not None else [s for s in every if s not in claimed] for bm in bms]


def operators(results) -> list[dict]:
    """One entry per business model: kind, KPI prefix, config, site ids and station ids."""
    sc = results.metadata["scenario"]
    bms = sc["business_models"]
    return [
        {"kind": bm["kind"], "prefix": prefix, "config": bm, "sites": sites,
         "stations": [st["id"] for st in bm.get("stations") or [] if isinstance(st, Mapping) and "id" in st]}
        for bm, prefix, sites in zip(bms, operator_prefixes(bms), operator_sites(sc))
    ]


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


def ledger_by_actor(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per actor (index ``actor``): what it paid (cost), what it was paid (revenue) and the net,
    in CNY, and the energy it paid for and was paid for (kWh).

    Every entry moves ``amount_cny`` from ``payer`` to ``payee``, so the nets add up to zero.
    """
    missing = [c for c in LEDGER_COLUMNS if c not in ledger]
    if missing:
        raise ValueError(f"the ledger table lacks the column(s) {', '.join(missing)} (needs {', '.join(LEDGER_COLUMNS)})")
    paid = ledger.groupby(ledger["payer"].astype(str))[["amount_cny", "energy_kwh"]].sum()
    got = ledger.groupby(ledger["payee"].astype(str))[["amount_cny", "energy_kwh"]].sum()
    actors = paid.index.union(got.index)
    paid, got = paid.reindex(actors, fill_value=0.0), got.reindex(actors, fill_value=0.0)
    out = pd.DataFrame({
        "cost_cny": paid["amount_cny"],
        "revenue_cny": got["amount_cny"],
        "net_cny": got["amount_cny"] - paid["amount_cny"],
        "energy_paid_for_kwh": paid["energy_kwh"],
        "energy_paid_to_it_kwh": got["energy_kwh"],
    })
    out.index.name = "actor"
    return out.sort_values("net_cny", ascending=False, kind="stable")


def ledger_by_reason(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per reason (index ``reason``): entries, energy (kWh) and amount (CNY)."""
    g = ledger.groupby(ledger["reason"].astype(str))
    return pd.DataFrame({"entries": g.size(), "energy_kwh": g["energy_kwh"].sum(), "amount_cny": g["amount_cny"].sum()})
