"""Checks of a run's per-operator table against the system table, the ledger and the engine's
own counters. ``check_operators(results)`` raises AssertionError naming the first mismatch; it
runs on every bundled scenario (tests/test_golden.py) and on hand-built cases."""

from __future__ import annotations

import numpy as np

from v2gsim.operators import NO_OPERATOR, actor_money, feeder_peak_step


def _close(a: float, b: float, what: str, scale: float = 1.0) -> None:
    assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), scale), f"{what}: operators {a!r} != {b!r}"


def check_operators(res) -> None:
    t = res.extra["operators"].set_index("operator_id")
    sy = res.system
    dt_h = res.dt_h
    col = lambda c: sy[c].to_numpy(float) if c in sy else np.zeros(len(sy))  # noqa: E731
    # energy: the operators' (and the unowned sites') energies are the EV and station energy
    _close(float(t["energy_drawn_kwh"].sum()), float((col("ev_charge_kw") + col("swap_charge_kw")).sum() * dt_h), "energy drawn")
    _close(float(t["energy_fed_back_kwh"].sum()), float((col("v2g_discharge_kw") + col("swap_discharge_kw")).sum() * dt_h), "energy fed back")
    # the coincident peak: the operators' loads at the feeder's peak add up to its EV and station part
    k = feeder_peak_step(res)
    ev_part = (col("ev_charge_kw") - col("v2g_discharge_kw") + col("swap_charge_kw") - col("swap_discharge_kw"))[k]
    _close(float(t["feeder_peak_load_kw"].sum()), float(ev_part), "load at the feeder's peak", 1.0 + abs(sy["net_load_kw"].iloc[k]))
    peak = float(sy["net_load_kw"].iloc[k])
    if peak > 0:
        _close(float(t["feeder_peak_share_pct"].sum()), ev_part / peak * 100.0, "shares of the feeder's peak", 100.0)
    # money: each operator's row is its ledger totals, and every actor's net adds up to zero
    money = actor_money(res.ledger) if len(res.ledger) else None
    scale = 1.0 + float(res.ledger["amount_cny"].abs().sum())
    for op, row in t.drop(index=NO_OPERATOR, errors="ignore").iterrows():
        m = money.loc[op] if money is not None and op in money.index else {"cost_cny": 0.0, "revenue_cny": 0.0, "net_cny": 0.0}
        for c in ("cost_cny", "revenue_cny", "net_cny"):
            _close(float(row[c]), float(m[c]), f"{op} {c}", scale)
        assert res.kpis[f"{op}_net_cny"] == row["net_cny"], f"KPI {op}_net_cny is not the table's"
    if money is not None:
        assert abs(float(money["net_cny"].sum())) <= 1e-9 * scale, "the actors' nets do not add up to zero"
    # service: sessions and unmet energy per site add up to the fleet's counters
    _close(float(t["sessions"].sum()), float(res.kpis["sessions"]), "sessions")
    _close(float(t["unmet_energy_kwh"].sum()), float(res.kpis["unmet_energy_kwh"]), "unmet energy", 1.0)
    if "swaps_served" in res.kpis:
        _close(float(t["swaps_served"].sum()), float(res.kpis["swaps_served"]), "swaps served")
