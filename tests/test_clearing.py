"""Merit-order clearing of grid requests at a uniform price (v2gsim.market.clearing) and in a run."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import v2gsim
from v2gsim.market.clearing import Bid, clear
from v2gsim.operators import actor_money
from v2gsim.scenario import find_scenario


def test_three_bids_the_marginal_one_accepted_in_part():
    bids = [Bid("c", 80.0, 3.0), Bid("a", 100.0, 1.0), Bid("b", 50.0, 2.0)]
    c = clear(bids, 120.0)
    # a (cheapest) in full, b is marginal: 20 of its 50 kW; c refused; every kWh at b's 2.0
    assert c.accepted_kw == pytest.approx([0.0, 100.0, 20.0])
    assert c.price_cny_per_kwh == 2.0 and c.marginal == 2 and c.total_kw == pytest.approx(120.0)
    # more than all bids: everyone accepted, the dearest sets the price
    c = clear(bids, 500.0)
    assert c.accepted_kw == pytest.approx([80.0, 100.0, 50.0]) and c.price_cny_per_kwh == 3.0
    # a cap of 2.5 refuses c
    c = clear(bids, 500.0, price_cap_cny_per_kwh=2.5)
    assert c.accepted_kw == pytest.approx([0.0, 100.0, 50.0]) and c.price_cny_per_kwh == 2.0
    # equal prices: in the order given; empty bids refused; nothing accepted: no price
    c = clear([Bid("x", 10.0, 1.0), Bid("y", 10.0, 1.0), Bid("z", 0.0, 0.1)], 15.0)
    assert c.accepted_kw == pytest.approx([10.0, 5.0, 0.0]) and c.marginal == 1
    none = clear([Bid("x", 10.0, 9.0)], 15.0, price_cap_cny_per_kwh=1.0)
    assert none.total_kw == 0 and np.isnan(none.price_cny_per_kwh) and none.marginal == -1


def test_a_cleared_discharge_call_in_mixed_city(tmp_path):
    raw = yaml.safe_load(find_scenario("mixed_city").read_text())
    raw["time"]["horizon_days"] = 3
    raw["grid_operator"] = {"requests": [{"id": "evening", "kind": "discharge_call", "start": "2026-07-07T18:00", "hours": 1,
                                          "p_kw": 300, "notice_h": 6, "price_cap_cny_per_kwh": 10, "clearing": True,
                                          "to": ["distributed", "centralized", "battery_swap"]}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    r = v2gsim.run(v2gsim.load_scenario(p), baseline=False)
    t = r.extra["grid_clearing"]
    assert list(t["operator_id"]) == ["distributed", "centralized", "battery_swap"]
    offered = t["bid_kw"].to_numpy()
    assert (offered >= 0).all() and offered.sum() > 0
    # merit order: what was accepted is what clear() gives for these bids
    c = clear([Bid(o, k, pr) for o, k, pr in zip(t["operator_id"], t["bid_kw"], t["bid_price_cny_per_kwh"])], 300.0, 10.0)
    assert t["accepted_kw"].to_numpy() == pytest.approx(c.accepted_kw)
    assert (t["clearing_price_cny_per_kwh"].dropna() == c.price_cny_per_kwh).all()
    # each accepted operator is settled on its dispatch, against its own baseline, at the uniform price
    s = r.extra["grid_settlement"]
    accepted = set(t.loc[t["accepted_kw"] > 0, "operator_id"])
    assert set(s["operator_id"]) == accepted
    acc = t.set_index("operator_id")["accepted_kw"]
    for _, row in s.iterrows():
        assert row["asked_kwh"] == pytest.approx(acc[row["operator_id"]] * 1.0)  # accepted kW below the baseline for 1 h
        if row["delivered_kwh"] > 0:
            assert row["paid_cny"] == pytest.approx(min(row["delivered_kwh"], 1.2 * row["asked_kwh"]) * c.price_cny_per_kwh)
    assert actor_money(r.ledger)["net_cny"].sum() == pytest.approx(0.0, abs=1e-6)
