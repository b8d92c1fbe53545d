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


def test_regulation_clears_on_the_mileage_price_by_hand():
    # regulation bids: capacity (kW) at a mileage price (CNY/MW); the request's mileage price (15,
    # Guangdong's cap) caps them; 400 kW asked
    bids = [Bid("a", 300.0, 10.0), Bid("b", 200.0, 8.0), Bid("c", 100.0, 16.0)]
    c = clear(bids, 400.0, 15.0)
    # b (8) in full, a (10) marginal with 200 of its 300 kW; c above the cap; everyone at 10 CNY/MW
    assert c.accepted_kw == pytest.approx([200.0, 200.0, 0.0]) and c.price_cny_per_kwh == 10.0 and c.marginal == 0


def test_valley_fill_and_regulation_cleared_in_mixed_city(tmp_path):
    # the swap operator and the centralized one compete for both kinds (the distributed strategy
    # does not bid for them); the swap operator is named first, so at equal prices it is taken first
    raw = yaml.safe_load(find_scenario("mixed_city").read_text())
    raw["time"]["horizon_days"] = 3
    ops = ["distributed", "battery_swap", "centralized"]
    raw["grid_operator"] = {"requests": [
        {"id": "fill", "kind": "valley_fill", "start": "2026-07-07T12:00", "hours": 1, "p_kw": 200, "notice_h": 0.25,
         "price_cny_per_kwh": 0.5, "price_cap_cny_per_kwh": 2.0, "clearing": True, "to": ops},
        {"id": "fm", "kind": "regulation", "start": "2026-07-07T14:00", "hours": 1, "p_kw": 350, "notice_h": 0.25,
         "capacity_price_cny_per_kw": 1.0, "mileage_price_cny_per_mw": 15.0, "clearing": True, "to": ops}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    r = v2gsim.run(v2gsim.load_scenario(p), baseline=False)
    t = r.extra["grid_clearing"]
    s = r.extra["grid_settlement"]
    for number, target, cap in ((0, 200.0, 2.0), (1, 350.0, 15.0)):
        b = t[t["request"] == number].set_index("operator_id")
        assert list(b.index) == ops
        if number == 1:  # the distributed strategy bids for valley fills, not regulation (Strategy.bid_kinds)
            assert b.loc["distributed", "bid_kw"] == 0
        assert b.loc["centralized", "bid_kw"] > 0 and b.loc["battery_swap", "bid_kw"] >= 0
        c = clear([Bid(o, k, pr) for o, k, pr in zip(b.index, b["bid_kw"], b["bid_price_cny_per_kwh"])], target, cap)
        assert b["accepted_kw"].to_numpy() == pytest.approx(c.accepted_kw)
        for op, kw in zip(b.index, c.accepted_kw):
            rows = s[(s["request"] == number) & (s["operator_id"] == op)]
            assert len(rows) == (1 if kw > 0 else 0)  # each accepted operator settled on its dispatch
            if kw == 0:
                continue
            row = rows.iloc[0]
            assert row["name"] == f"{['fill', 'fm'][number]}.{op}"
            if number == 0:  # asked: the accepted kW above the baseline for 1 h, paid at the uniform price
                assert row["asked_kwh"] == pytest.approx(kw)
                assert row["paid_cny"] == pytest.approx(min(max(row["delivered_kwh"], 0), 1.2 * row["asked_kwh"]) * c.price_cny_per_kwh)
            else:  # capacity on its accepted kW at its metered availability, mileage at the uniform price
                assert 0.0 <= row["availability"] <= 1.0
                paid = 1.0 * kw * row["availability"] if row["availability"] >= 0.8 else 0.0
                assert row["capacity_cny"] == pytest.approx(paid)
                assert row["mileage_paid_cny"] == pytest.approx(c.price_cny_per_kwh * row["mileage_mw"])
    # regulation: the swap rack (two bidirectional NIO stations) offers capacity, and both operators are accepted
    reg = t[t["request"] == 1].set_index("operator_id")
    assert reg.loc["battery_swap", "bid_kw"] > 0
    assert reg.loc["battery_swap", "accepted_kw"] > 0 and reg.loc["centralized", "accepted_kw"] > 0
    assert actor_money(r.ledger)["net_cny"].sum() == pytest.approx(0.0, abs=1e-6)


def test_a_distributed_and_a_centralized_operator_compete_for_a_valley_fill(tmp_path):
    """The centralized operator bids what moving charging into the window costs it, the distributed
    one the reward it passes on to its drivers (the cap): the cheaper is taken in full, the
    distributed marginal bid sets the uniform price, and its dispatch becomes a charging invitation
    whose reward is that price."""
    from ledger_checks import check_ledger

    raw = yaml.safe_load(find_scenario("mixed_city").read_text())
    raw["time"]["horizon_days"] = 3
    raw["business_models"][0].setdefault("drivers", {})["enrol_probability"] = 1.0
    assert raw["business_models"][0]["kind"] == "distributed"
    ops = ["distributed", "centralized"]
    raw["grid_operator"] = {"requests": [
        {"id": "fill", "kind": "valley_fill", "start": "2026-07-07T22:00", "hours": 2, "p_kw": 2000, "notice_h": 2,
         "price_cny_per_kwh": 0.3, "price_cap_cny_per_kwh": 10.0, "clearing": True, "to": ops}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    r = v2gsim.run(v2gsim.load_scenario(p), baseline=False)
    t = r.extra["grid_clearing"].set_index("operator_id")
    # both bid: the distributed at the cap (its drivers' reward), the centralized below it
    assert t.loc["distributed", "bid_kw"] > 0 and t.loc["distributed", "bid_price_cny_per_kwh"] == 10.0
    assert 0 < t.loc["centralized", "bid_price_cny_per_kwh"] < 10.0 and t.loc["centralized", "bid_kw"] > 0
    c = clear([Bid(o, t.loc[o, "bid_kw"], t.loc[o, "bid_price_cny_per_kwh"]) for o in ops], 2000.0, 10.0)
    assert t.loc[ops, "accepted_kw"].to_numpy() == pytest.approx(c.accepted_kw)
    assert c.marginal == 0 and c.price_cny_per_kwh == 10.0  # the target is more than both offer
    # each is settled on its dispatch; the distributed operator passed the uniform price on to its drivers
    s = r.extra["grid_settlement"].set_index("operator_id")
    assert s.loc["distributed", "asked_kwh"] == pytest.approx(c.accepted_kw[0] * 2)
    k = r.kpis
    assert k["distributed_valley_invitations"] == 1 and k["distributed_valley_drivers_accepting"] > 0
    vr = r.ledger[r.ledger["reason"].astype(str) == "valley_reward"]
    assert float(vr["energy_kwh"].sum()) > 0
    assert float(vr["amount_cny"].sum()) == pytest.approx(10.0 * float(vr["energy_kwh"].sum()), rel=1e-9)
    assert s.loc["distributed", "delivered_kwh"] > 0
    check_ledger(r)
