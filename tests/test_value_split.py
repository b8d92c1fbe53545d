"""Each vehicle's own optimum (dispatch.value_thresholds) and the aggregate plan split by it.

Checked against the exact per-vehicle LP: without site limits the policy *is* the exact plan;
with them, the strategy's aggregate path (fleet-wide envelope LP, its site-limit duals as price
shifts, every vehicle on its own optimum) costs within 2 % of exact (issue 4).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planners import disaggregate_value
from test_dispatch import assert_limits, random_problem
from v2gsim.strategies.dispatch import (
    DispatchProblem,
    GridRequest,
    plan_aggregate,
    plan_exact,
    value_thresholds,
)
from v2gsim.strategies.dispatch.levels import _charge_only_levels, _value_pass


def test_one_vehicle_by_hand():
    # 10 kWh battery, reserve 2, starts at 4, wants 8 when it leaves after 3 one-hour steps; a
    # 4 kW lossless charger both ways, no wear. Purchase 0.2 / 1.0 / 0.5, V2G 0.16 / 0.8 / 0.4.
    # Best: charge 4 in the cheap hour (to 8), sell 4 in the dear one (to 4) for 3.2, buy it
    # back for 2.0 in the last: cost 0.8 - 3.2 + 2.0 = -0.4.
    prob = DispatchProblem(
        dt_h=1.0, price_buy_cny_per_kwh=[0.2, 1.0, 0.5], price_v2g_cny_per_kwh=[0.16, 0.8, 0.4],
        arrival_step=[0], departure_step=[3], e0_kwh=[4.0], e_cap_kwh=[10.0], e_min_kwh=[2.0],
        e_need_kwh=[8.0], p_ch_max_kw=[4.0], p_dis_max_kw=[4.0], eta_ch=1.0, eta_dis=1.0,
    )
    plan = disaggregate_value(prob)
    np.testing.assert_allclose(plan.p_kw, [[4.0, -4.0, 4.0]], atol=1e-12)
    assert plan.cost_cny == pytest.approx(-0.4)
    assert plan_exact(prob).cost_cny == pytest.approx(-0.4)
    lv = value_thresholds(prob)[0]
    # step 2 (last): charge to the need, never below it (8, 8); the discharge level is the need too
    np.testing.assert_allclose(lv[2], [8.0, 8.0, 8.0, 8.0])
    # step 1 (dear): energy above 4 is worth selling (it can be bought back at 0.5 < 0.8)
    assert lv[1][2] == pytest.approx(4.0)
    # step 0 (cheap): every kWh is worth at least 0.5 later, so charge up to capacity (the
    # charger stops it at 8)
    assert lv[0][0] == pytest.approx(10.0)


@pytest.mark.parametrize("v2g", [False, True])
def test_without_site_limits_the_policy_is_the_exact_plan(v2g):
    for seed in range(8):
        rng = np.random.default_rng(200 + seed)
        T = int(rng.choice([6, 24, 48]))
        prob = random_problem(rng, int(rng.integers(1, 150)), T, dt=24 / T, v2g=v2g, site=False)
        ex = plan_exact(prob)
        plan = disaggregate_value(prob)
        assert plan.cost_cny == pytest.approx(ex.cost_cny, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(plan.unmet_need_kwh, ex.unmet_need_kwh, atol=1e-9)
        assert_limits(prob, plan)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_property_small_fleets_match_the_exact_lp(data):
    # random small fleets, any arrival and departure (also beyond the horizon), unequal prices
    # with ties, V2G price at most the purchase price, wear; no site limits
    n = data.draw(st.integers(1, 5))
    T = data.draw(st.integers(1, 8))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    buy = np.round(rng.uniform(0.1, 1.2, T), 1)
    cap = rng.uniform(20, 60, n)
    prob = DispatchProblem(
        dt_h=float(data.draw(st.sampled_from([0.25, 1.0]))), price_buy_cny_per_kwh=buy,
        price_v2g_cny_per_kwh=buy * rng.uniform(0.0, 1.0, T),
        arrival_step=rng.integers(-2, T, n), departure_step=rng.integers(0, T + 4, n),
        e0_kwh=cap * rng.uniform(0, 1, n), e_cap_kwh=cap, e_min_kwh=cap * rng.uniform(0, 0.4, n),
        e_need_kwh=cap * rng.uniform(0, 1, n), p_ch_max_kw=rng.choice([0.0, 7.0, 22.0], n),
        p_dis_max_kw=rng.choice([0.0, 7.0, 22.0], n), eta_ch=rng.uniform(0.85, 1.0, n),
        eta_dis=rng.uniform(0.85, 1.0, n), wear_cny_per_kwh=float(rng.choice([0.0, 0.05])),
    )
    ex = plan_exact(prob)
    plan = disaggregate_value(prob)
    # same objective (costs plus the need penalty: both may leave a need unmet when it cannot be met)
    obj = plan.cost_cny + prob.penalty_need_cny_per_kwh * plan.unmet_need_kwh.sum()
    assert obj == pytest.approx(ex.objective_cny, rel=1e-7, abs=1e-7)
    assert_limits(prob, plan)


def test_charge_only_closed_form_equals_the_value_pass():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        T = int(rng.choice([1, 5, 13, 24]))
        prob = random_problem(rng, int(rng.integers(1, 80)), T, dt=0.25, v2g=False)
        buy = prob.price_buy_cny_per_kwh
        if seed % 3 == 0:
            buy = np.round(buy, 1)  # ties
        if seed % 5 == 0:
            buy = buy - 0.5  # negative prices: storing beyond the need pays
        buy = buy + rng.normal(0, 0.1, T) * (rng.random(T) < 0.3)  # as shifted by site limits
        prob = dataclasses.replace(prob, price_buy_cny_per_kwh=buy, price_v2g_cny_per_kwh=np.zeros(T),
                                   arrival_step=rng.integers(-2, max(T // 2, 1), prob.n_vehicles))
        idx = np.arange(prob.n_vehicles)
        a = _charge_only_levels(prob, idx, buy)[..., :2]
        b = _value_pass(prob, idx, buy, np.minimum(prob.price_v2g_cny_per_kwh, buy))[..., :2]
        plug = prob.plugged
        np.testing.assert_allclose(a[plug], b[plug], atol=1e-9)


@pytest.mark.parametrize("v2g", [False, True])
def test_strategy_aggregate_path_within_2_percent_of_exact(v2g):
    # Issue 4: on fleets of up to 200 vehicles the aggregate plan costs within 2 % of the exact
    # one. What the centralized strategy's aggregate sites do, offline over the whole horizon: one
    # LP over the fleet's summed envelopes (no interval bounds); its site-limit duals shift the
    # prices each vehicle then follows its own optimum against (planners.disaggregate_value).
    # The fleets of test_dispatch (20-200 vehicles, 24-96 steps, random arrivals, needs and
    # chargers, a binding site limit, V2G at 0.8x the purchase price). Measured: worst 0.00 %
    # charge-only, 0.6 % with V2G (the same LP split least laxity first: 15.5 % / 63 %).
    gaps = []
    for seed in range(12):
        rng = np.random.default_rng(1000 + seed)
        n = int(rng.integers(20, 201))
        T = int(rng.choice([24, 48, 96]))
        prob = random_problem(rng, n, T, dt=24 / T, v2g=v2g)
        ex = plan_exact(prob)
        plan = disaggregate_value(prob, plan_aggregate(prob, interval_bounds=False))
        assert plan.unmet_need_kwh.max() < 1e-6
        assert_limits(prob, plan)
        gaps.append((plan.cost_cny - ex.cost_cny) / abs(ex.cost_cny))
    assert min(gaps) >= -1e-9  # a feasible plan cannot beat the optimum
    assert max(gaps) <= 0.02, f"worst {max(gaps):.2%}"


def test_split_keeps_site_limits_and_requests():
    # binding limits both ways and a discharge call: the split stays within the hard limits,
    # answers the call as far as the plan does, never charges and discharges a vehicle at once
    rng = np.random.default_rng(7)
    T = 48
    prob = random_problem(rng, 80, T, dt=0.5, requests=(GridRequest.discharge_call(36, 40, 50.0),))
    ag = plan_aggregate(prob, interval_bounds=False)
    plan = disaggregate_value(prob, ag)
    assert_limits(prob, plan)
    assert plan.unmet_need_kwh.max() < 1e-6
    assert np.all(plan.p_site_kw[36:40] <= np.maximum(ag.p_kw[36:40], -50.0) + 1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("v2g, tol", [(False, 0.03), (True, 0.08)])
def test_alike_fleets_from_a_common_start(v2g, tol):
    # The same fleets as a depot's re-plan sees them (everyone plugged from step 0, one vehicle
    # model; bench_aggregate_quality.common_start), where the site limits bind hard: one price
    # moves all the alike vehicles at once, so the price band around the plan's limit price
    # matters. Measured worst of 12: 2.3 % charge-only, 6.8 % with V2G (without the band 7.2 % /
    # 168 %; split least laxity first 8.6 % / 309 %).
    from bench_aggregate_quality import common_start

    gaps = []
    for seed in range(12):
        rng = np.random.default_rng(1000 + seed)
        n = int(rng.integers(20, 201))
        T = int(rng.choice([24, 48, 96]))
        prob = common_start(random_problem(rng, n, T, dt=24 / T, v2g=v2g), rng)
        ex = plan_exact(prob)
        plan = disaggregate_value(prob, plan_aggregate(prob, interval_bounds=False))
        assert plan.unmet_need_kwh.max() < 1e-6
        assert_limits(prob, plan)
        gaps.append((plan.cost_cny - ex.cost_cny) / abs(ex.cost_cny))
    assert max(gaps) <= tol, f"worst {max(gaps):.2%}"
