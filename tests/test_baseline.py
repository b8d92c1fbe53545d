"""Baseline and delivery settlement of grid requests (v2gsim.market.baseline, events.settle_window)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import v2gsim
from v2gsim.market.baseline import similar_day_baseline
from v2gsim.market.events import GridOperatorConfig, GridRequest, settle_window
from v2gsim.operators import actor_money, operator_load_kw
from v2gsim.scenario import find_scenario

# 2026-07-06 is a Monday; 1-hour steps, 24 a day
CLOCK = pd.date_range("2026-07-01", periods=24 * 8, freq="h")  # Wed 1 July .. Wed 8 July


def _daily_load() -> np.ndarray:
    """Day d (0 = Wed 1 July) draws 10 * (d + 1) kW at every hour: Wed 1 July 10 kW ... Wed 8 July 80 kW."""
    return np.repeat(10.0 * (np.arange(8) + 1), 24)


def test_mean_of_the_most_recent_similar_days():
    load = _daily_load()
    a, b = 7 * 24 + 18, 7 * 24 + 20  # Wed 8 July 18:00-20:00
    base = similar_day_baseline(load, CLOCK, a, b, n_days=2, steps_per_day=24)
    # the two workdays before: Tue 7 (70 kW) and Mon 6 (60 kW)
    assert base.method == "similar_days" and base.days_back == (1, 2)
    assert base.p_kw == pytest.approx([65.0, 65.0])
    # with 4 days: Tue, Mon, then Fri 3 (30 kW) and Thu 2 (20 kW); the weekend (40, 50 kW) skipped
    base = similar_day_baseline(load, CLOCK, a, b, n_days=4, steps_per_day=24)
    assert base.days_back == (1, 2, 5, 6) and base.p_kw == pytest.approx([(70 + 60 + 30 + 20) / 4] * 2)


def test_event_days_are_not_similar_days_and_fallbacks():
    load = _daily_load()
    a, b = 7 * 24 + 18, 7 * 24 + 20
    event = np.zeros(CLOCK.size, bool)
    event[6 * 24 + 19] = True  # Tue 7 July 19:00 was an event of this operator
    base = similar_day_baseline(load, CLOCK, a, b, n_days=2, event=event, steps_per_day=24)
    assert base.days_back == (2, 5) and base.p_kw == pytest.approx([(60 + 30) / 2] * 2)
    # a Sunday event (Sun 5 July, 18:00): one Saturday before it -> fewer similar days
    s = 4 * 24 + 18
    base = similar_day_baseline(load, CLOCK, s, s + 2, n_days=5, steps_per_day=24)
    assert base.method == "fewer_similar_days" and base.days_back == (1,) and base.p_kw == pytest.approx([40.0, 40.0])
    # a Thursday with only one Wednesday before it, itself an event day: any other day first, then event days
    ev = np.zeros(CLOCK.size, bool)
    ev[18] = True
    t = 24 + 18
    assert similar_day_baseline(load, CLOCK, t, t + 2, n_days=5, event=ev, steps_per_day=24).method == "event_days"
    # the first day has no earlier day: no baseline
    none = similar_day_baseline(load, CLOCK, 18, 20, n_days=5, steps_per_day=24)
    assert none.method == "none" and np.isnan(none.p_kw).all()


CFG = GridOperatorConfig()  # under_delivery_share 0.8, pay_cap_share 1.2, penalty at the price


def _req(kind, **kw) -> GridRequest:
    return GridRequest(kind=kind, start="2026-07-08T18:00", hours=2, **kw)


def test_settlement_by_hand():
    base = np.array([25.0, 25.0])
    # discharge call of 10 kW: asked (25 + 10) x 2 h = 70 kWh; fed 5 kW -> delivered (25 + 5) x 2 = 60
    out = settle_window(_req("discharge_call", p_kw=10, price_cny_per_kwh=2), base, np.array([-5.0, -5.0]), 1.0, CFG)
    assert (out["asked_kwh"], out["delivered_kwh"], out["paid_cny"], out["penalty_cny"]) == pytest.approx((70, 60, 120, 0))
    # only 10 kW less than the baseline: 30 kWh, below 0.8 x 70 = 56 -> 26 kWh short at the price 2
    out = settle_window(_req("discharge_call", p_kw=10, price_cny_per_kwh=2), base, np.array([10.0, 10.0]), 1.0, CFG)
    assert (out["delivered_kwh"], out["paid_cny"], out["short_kwh"], out["penalty_cny"]) == pytest.approx((30, 60, 26, 52))
    # peak cut to 20 kW: asked 5 x 2 = 10 kWh, delivered 7 x 2 = 14, paid up to 1.2 x 10 = 12 kWh at 3 CNY
    out = settle_window(_req("peak_cut", p_kw=20, price_cny_per_kwh=3), base, np.array([18.0, 18.0]), 1.0, CFG)
    assert (out["asked_kwh"], out["delivered_kwh"], out["paid_kwh"], out["paid_cny"]) == pytest.approx((10, 14, 12, 36))
    # valley fill to 30 kW: asked 10 kWh, delivered (28 - 25) x 2 = 6 < 8: short 2 at a fixed 5 CNY/kWh penalty
    cfg = GridOperatorConfig(penalty_cny_per_kwh=5.0)
    out = settle_window(_req("valley_fill", p_kw=30, price_cny_per_kwh=1), base, np.array([28.0, 28.0]), 1.0, cfg)
    assert (out["asked_kwh"], out["delivered_kwh"], out["paid_cny"], out["penalty_cny"]) == pytest.approx((10, 6, 6, 10))
    # e_kwh states the target; a step above the baseline offsets one below (15-minute steps)
    out = settle_window(_req("discharge_call", e_kwh=5, price_cny_per_kwh=4), base, np.array([5.0, 35.0]), 0.25, CFG)
    assert (out["asked_kwh"], out["delivered_kwh"], out["paid_cny"]) == pytest.approx((5, 2.5, 10))
    # regulation: capacity on availability, no energy asked
    out = settle_window(_req("regulation", p_kw=100, capacity_price_cny_per_kw=30), base, base, 1.0, CFG)
    assert out["capacity_cny"] == 3000 and np.isnan(out["asked_kwh"]) and out["penalty_cny"] == 0
    # without a baseline nothing is paid or penalised
    out = settle_window(_req("discharge_call", p_kw=10, price_cny_per_kwh=2), np.full(2, np.nan), base, 1.0, CFG)
    assert np.isnan(out["delivered_kwh"]) and out["paid_cny"] == 0 and out["penalty_cny"] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=2), st.lists(st.floats(-50, 50), min_size=2, max_size=2),
       st.floats(0, 40), st.floats(0, 10))
def test_payment_and_penalty_are_never_negative_and_never_both_beyond_the_rules(base, act, p_kw, price):
    out = settle_window(_req("discharge_call", p_kw=p_kw, price_cny_per_kwh=price), np.array(base), np.array(act), 1.0, CFG)
    assert out["paid_cny"] >= 0 and out["penalty_cny"] >= 0
    assert out["paid_kwh"] <= CFG.pay_cap_share * out["asked_kwh"] + 1e-9
    if out["penalty_cny"] > 0:  # penalised only below the share asked
        assert out["delivered_kwh"] < CFG.under_delivery_share * out["asked_kwh"]


def test_a_run_settles_a_peak_cut_against_the_day_before_through_the_ledger(tmp_path):
    raw = yaml.safe_load(find_scenario("centralized_hub").read_text())
    raw["time"]["horizon_days"] = 2
    raw["grid_operator"] = {"requests": [{"id": "cut", "kind": "peak_cut", "start": "2026-07-07T17:00", "hours": 2, "p_kw": 150,
                                          "notice_h": 24, "price_cny_per_kwh": 3, "to": ["centralized"]}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    r = v2gsim.run(v2gsim.load_scenario(p), baseline=False)
    t = r.extra["grid_settlement"]
    assert len(t) == 1
    row = t.iloc[0]
    # Tue 7 July: the one workday before is Mon 6 July (the warm-up's Sunday is not similar)
    assert row["baseline_method"] == "fewer_similar_days" and row["baseline_days"] == "1"
    load = operator_load_kw(r)["centralized"]
    w = (load.index >= "2026-07-07 17:00") & (load.index < "2026-07-07 19:00")
    day_before = load[(load.index >= "2026-07-06 17:00") & (load.index < "2026-07-06 19:00")].to_numpy()
    curve = r.extra["grid_baseline"]
    assert curve["baseline_kw"].to_numpy() == pytest.approx(day_before)
    assert curve["actual_kw"].to_numpy() == pytest.approx(load[w].to_numpy())
    delivered = float((day_before - load[w].to_numpy()).sum() * r.dt_h)
    assert row["delivered_kwh"] == pytest.approx(delivered)
    # the ledger books it: the grid company pays the operator, and every step still nets to zero
    led = r.ledger
    pay = led[led["reason"].astype(str) == "request_payment"]
    assert pay["amount_cny"].sum() == pytest.approx(row["paid_cny"]) and (pay["payer"].astype(str) == "grid_company").all()
    pen = led[led["reason"].astype(str) == "request_penalty"]["amount_cny"].sum()
    assert pen == pytest.approx(row["penalty_cny"])
    assert r.kpis["grid_paid_cny"] == pytest.approx(row["paid_cny"])
    assert actor_money(led)["net_cny"].sum() == pytest.approx(0.0, abs=1e-6)
