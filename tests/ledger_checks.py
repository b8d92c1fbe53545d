"""Checks of a run's ledger against what other parts of the results count independently.

``check_ledger(results)`` raises AssertionError naming the first mismatch. It is run on every
bundled scenario (tests/test_golden.py) and on hand-built cases (tests/test_ledger.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from v2gsim.market.settlement import DRIVERS, GRID_COMPANY, SECOND_LIFE


GRID_OPERATOR_REASONS = ["request_payment", "request_penalty", "capacity_payment", "mileage_payment"]


def _close(a: float, b: float, what: str, scale: float = 1.0) -> None:
    assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), scale), f"{what}: ledger {a!r} != {b!r}"


def _per_step(t: pd.DataFrame, mask, col: str, n: int) -> np.ndarray:
    sel = t[mask]
    return np.bincount(sel["step"].to_numpy(np.int64), weights=sel[col].to_numpy(float), minlength=n)


def check_ledger(res) -> None:
    t = res.ledger
    n = len(res.system)
    dt_h = res.dt_h
    payer, payee, reason = t["payer"].astype(str), t["payee"].astype(str), t["reason"].astype(str)
    scale = 1.0 + float(t["amount_cny"].abs().sum()) if len(t) else 1.0
    # double entry: per step, every actor's net adds up to zero
    actors = sorted(set(payer) | set(payee))
    net = np.zeros((n, len(actors)))
    for k, a in enumerate(actors):
        net[:, k] = _per_step(t, payee == a, "amount_cny", n) - _per_step(t, payer == a, "amount_cny", n)
    assert np.all(np.abs(net.sum(1)) <= 1e-9 * scale), "the ledger's nets do not add up to zero at some step"
    # drivers: their entries are the vehicles' cost and revenue columns, summed
    v = res.vehicles
    # (with contracts, the drivers also pay the operator's share and leases, and are paid wear
    # compensation and guarantees: the contract columns, v2gsim.market.contracts)
    extra = lambda *cs: sum(float(v[c].sum()) for c in cs if c in v)  # noqa: E731
    paid = float(v["cost_cny"].sum()) + extra("contract_share_cny", "battery_lease_cny")
    # (and a distributed operator's valley-fill rewards: v2gsim.strategies.distributed_valley)
    got = float(v["revenue_cny"].sum()) + extra("wear_compensation_cny", "min_guarantee_cny", "valley_reward_cny")
    _close(float(t.loc[payer == DRIVERS, "amount_cny"].sum()), paid, "drivers paid", scale)
    _close(float(t.loc[payee == DRIVERS, "amount_cny"].sum()), got, "drivers were paid", scale)
    # energy: per step, what the grid company sold and bought is what the system table drew and fed back
    sy = res.system
    col = lambda c: sy[c].to_numpy(float) if c in sy else np.zeros(n)  # noqa: E731
    drawn = (col("ev_charge_kw") + col("swap_charge_kw") + col("second_life_charge_kw")) * dt_h
    fed = (col("v2g_discharge_kw") + col("swap_discharge_kw") + col("second_life_discharge_kw")) * dt_h
    sold = _per_step(t, (payee == GRID_COMPANY) & reason.isin(["energy_purchase", "charging"]), "energy_kwh", n)
    bought = _per_step(t, (payer == GRID_COMPANY) & reason.isin(["energy_sale", "v2g"]), "energy_kwh", n)
    np.testing.assert_allclose(sold, drawn, rtol=1e-9, atol=1e-9, err_msg="energy the grid company sold per step")
    np.testing.assert_allclose(bought, fed, rtol=1e-9, atol=1e-9, err_msg="energy the grid company bought per step")
    # swap operators: the stations table's cost and revenue. A swap operator also runs its sites'
    # chargers at the tariff: what it buys for the vehicles there is what their drivers pay it.
    st = res.extra.get("stations")
    if st is not None:
        ops = {a for a in actors if a.startswith("battery_swap")}
        bought = float(t.loc[payer.isin(ops) & (reason == "energy_purchase"), "amount_cny"].sum())
        for_drivers = float(t.loc[(payer == DRIVERS) & payee.isin(ops) & (reason == "charging"), "amount_cny"].sum())
        _close(bought - for_drivers, float(st["cost_cny"].sum()), "swap stations paid", scale)
        # swap fees: each swap's driver pays the operator the fixed fee and the energy gained
        sw = res.extra.get("swaps")
        fees = t.loc[payee.isin(ops) & (reason == "swap_fee")]
        if sw is not None and len(fees):
            done = sw[sw["outcome"].astype(str) == "swapped"]
            np.testing.assert_allclose(float(fees["energy_kwh"].sum()), float((done["e_in_kwh"] - done["e_out_kwh"]).clip(lower=0).sum()),
                                       rtol=1e-9, atol=1e-6, err_msg="energy the swap fees were paid for")
        # (the grid operator's settlement of requests is the operator's, not a station's; a lease is
        # money between drivers and the operator, not the stations' energy: both left out)
        sold = float(t.loc[payee.isin(ops) & (payer == GRID_COMPANY) & ~reason.isin(GRID_OPERATOR_REASONS), "amount_cny"].sum())
        to_drivers = float(t.loc[payer.isin(ops) & (payee == DRIVERS) & (reason == "v2g"), "amount_cny"].sum())
        _close(sold - to_drivers, float(st["revenue_cny"].sum()), "swap stations were paid", scale)
    # the grid operator: its settlement table is what it booked
    gs = res.extra.get("grid_settlement")
    booked = t[reason.isin(GRID_OPERATOR_REASONS)]
    if gs is None:
        assert booked.empty
    else:
        for r_, col in (("request_payment", "paid_cny"), ("request_penalty", "penalty_cny"), ("capacity_payment", "capacity_cny"),
                        ("mileage_payment", "mileage_paid_cny")):
            _close(float(booked.loc[booked["reason"].astype(str) == r_, "amount_cny"].sum()), float(gs[col].sum()), r_, scale)
    # the two-part tariff's charges: the bills' KPIs (v2gsim.market.bills), computed from the results
    for kpi, why in (("demand_charge_cny", "demand_charge"), ("capacity_charge_cny", "capacity_charge")):
        booked = float(t.loc[(reason == why) & (payee == GRID_COMPANY), "amount_cny"].sum())
        if kpi in res.kpis and np.isfinite(res.kpis[kpi]):
            _close(booked, float(res.kpis[kpi]), kpi, scale)
        else:
            assert booked == 0.0, f"{why} booked without the tariff's charge"
    # second-life storage: the retired packs' revenue column
    packs = res.extra.get("wear_packs")
    if packs is not None and len(packs):
        got = float(t.loc[payee == SECOND_LIFE, "amount_cny"].sum()) - float(t.loc[payer == SECOND_LIFE, "amount_cny"].sum())
        _close(got, float(packs["revenue_cny"].sum()), "second-life net", scale)
    else:
        assert not (payer == SECOND_LIFE).any() and not (payee == SECOND_LIFE).any()
