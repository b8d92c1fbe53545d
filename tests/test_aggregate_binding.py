"""The aggregate path where the site's limit binds (issue 5, section 3): class plans.

Sites whose limit binds, with short stays leaving together, spread arrivals or everyone plugged
from step 0 (a re-plan's start), charge-only or with V2G at 0.8x the purchase price: the
aggregate path must meet every need the exact plan meets and cost within 2 % of it.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench_aggregate_quality import binding_family, replanned
from planners import aggregate_schedule, disaggregate_classes
from test_dispatch import assert_limits, random_problem
from v2gsim.strategies.dispatch import (
    DispatchProblem,
    fleet_classes,
    need_floor_kwh,
    plan_classes,
    plan_exact,
    site_limit_can_bind,
    split_classes,
    split_llf,
    split_llf_segments,
)

# The family of the tests: bench_aggregate_quality.binding_family -- one day on half-hour steps,
# 10 / 40 / 100 / 200 vehicles, one fleet each (seeds from 500 on, skipping fleets with a need
# the exact plan cannot meet), 80 % leaving at one of two common steps after 1-5 h (the tight
# variant 1-3 h), site limit 20-50 % of the chargers' power (tight: 15-35 %) both ways.
SIZES = (10, 40, 100, 200)
CASES = [(v2g, cs, tight) for v2g in (False, True) for cs in (False, True) for tight in (False, True)]


def _family(v2g, common_start, tight):
    kw = {"short_h": (1, 3), "limit_share": (0.15, 0.35)} if tight else {}
    return binding_family(SIZES, 1, v2g=v2g, common_start=common_start, **kw)


@pytest.mark.parametrize("v2g, common_start, tight", CASES)
def test_binding_limits_needs_met_and_within_2_percent_of_exact(v2g, common_start, tight):
    # What the centralized strategy does at such a site (aggregate_split: auto -> the better of a
    # class plan and the value split, re-planned every hour from the realised energies), offline
    # against the exact plan.
    # Measured: no need unmet, worst 1.85 % (V2G, common start, 200 vehicles), charge-only worst
    # 0.65 %. Before (the fleet-wide LP and each vehicle's own optimum at its prices, re-planned
    # the same way) 7 of these 32 fleets were left short, up to 9.6 kWh a vehicle, and the worst
    # cost was 2.3 % above exact (planned once: up to 12 kWh short).
    for prob, ex in _family(v2g, common_start, tight):
        assert site_limit_can_bind(prob)
        plan = replanned(prob, 2, aggregate_schedule)
        assert plan.unmet_need_kwh.max() <= 0.01, f"{prob.n_vehicles} vehicles: {plan.unmet_need_kwh.max():.2f} kWh short"
        assert_limits(prob, plan)
        gap = (plan.cost_cny - ex.cost_cny) / abs(ex.cost_cny)
        assert -1e-6 <= gap <= 0.02, f"{prob.n_vehicles} vehicles: {gap:.2%} above exact"


@pytest.mark.parametrize("v2g", [False, True])
def test_one_class_plan_meets_the_needs_too(v2g):
    # one plan for the whole day, no re-plan: every need the exact plan meets is met
    for common_start in (False, True):
        for prob, _ in _family(v2g, common_start, tight=True):
            plan = aggregate_schedule(prob)
            assert plan.unmet_need_kwh.max() <= 0.01
            assert_limits(prob, plan)


def test_split_llf_segments_is_split_llf_in_each_segment():
    rng = np.random.default_rng(3)
    for _ in range(300):
        k, S = int(rng.integers(1, 25)), int(rng.integers(1, 4))
        cap = rng.uniform(20, 80, k)
        e = cap * rng.uniform(0, 1, k)
        pch = rng.choice([0.0, 7.0, 22.0], k)
        kw = dict(e_cap_kwh=cap, e_lb_kwh=np.minimum(0.2 * cap, e),
                  need_kwh=np.where(rng.random(k) < 0.2, -np.inf, cap * rng.uniform(0, 1, k)),
                  steps_left=rng.integers(1, 10, k), p_ch_max_kw=pch, p_dis_max_kw=np.where(rng.random(k) < 0.5, pch, 0.0),
                  eta_ch=rng.uniform(0.9, 1, k), eta_dis=rng.uniform(0.9, 1, k), dt_h=0.25)
        seg = rng.integers(0, S, k)
        target, seg_max = rng.uniform(-150, 250, S), rng.choice([np.inf, 60.0], S)
        p = split_llf_segments(target, seg, e, p_segment_max_kw=seg_max, **kw)
        for s in range(S):
            m = seg == s
            one = split_llf(float(target[s]), e[m], p_site_max_kw=float(seg_max[s]),
                            **{key: v[m] if isinstance(v, np.ndarray) else v for key, v in kw.items()})
            np.testing.assert_allclose(p[m], one, atol=1e-9)


def test_need_floor_of_two_vehicles_leaving_together_by_hand():
    # Two vehicles, 10 kW chargers, lossless, 1 h steps, each 15 kWh short of its need with this
    # step and one more before they leave. Alone each must take 5 kWh now (10 fit in the last
    # step). Under a 15 kW site limit the last step holds only 15 of the 20 they need then: the
    # site must give them 15 now, not 10.
    e, need = np.array([10.0, 20.0]), np.array([25.0, 35.0])
    args = (e, need, np.array([2, 2]), np.full(2, 10.0), np.full(2, 10.0), np.zeros(2), np.ones(2))
    alone = need_floor_kwh(*args)
    np.testing.assert_allclose(alone, [5.0, 5.0])
    both = need_floor_kwh(*args, site_kwh_ahead=np.array([15.0]))
    assert both.sum() == pytest.approx(15.0)
    assert np.all(both >= alone - 1e-12) and np.all(both <= 10.0 + 1e-12)
    # a split proposing 7.5 each is enough (no floor asked); 5 each is not
    assert need_floor_kwh(*args, site_kwh_ahead=np.array([15.0]), proposal_kwh=np.array([7.5, 7.5])) is None
    assert need_floor_kwh(*args, site_kwh_ahead=np.array([15.0]), proposal_kwh=np.array([5.0, 5.0])) is not None
    # a third vehicle leaving later that can feed the site 5 kW makes room for them (net limit)
    e3, need3 = np.r_[e, 30.0], np.r_[need, -np.inf]
    args3 = (e3, need3, np.array([2, 2, 5]), np.r_[np.full(2, 10.0), 10.0], np.full(3, 10.0), np.r_[0.0, 0.0, 5.0],
             np.ones(3))
    assert need_floor_kwh(*args3, site_kwh_ahead=np.array([15.0]), dis_step_kwh=np.r_[0.0, 0.0, 5.0],
                          dis_total_kwh=np.r_[0.0, 0.0, 20.0], proposal_kwh=np.array([5.0, 5.0, 0.0])) is None


def test_split_classes_keeps_the_limits_and_the_needs_of_vehicles_leaving_together():
    # the two vehicles above with a plan that gives them nothing now: the split still gives them
    # the 15 kWh they must have, within the site limit
    kw = dict(e_cap_kwh=np.full(2, 60.0), e_lb_kwh=np.zeros(2), need_kwh=np.array([25.0, 35.0]),
              steps_left=np.array([2, 2]), p_ch_max_kw=np.full(2, 10.0), p_dis_max_kw=np.zeros(2),
              eta_ch=np.ones(2), eta_dis=np.ones(2), dt_h=1.0, p_site_min_kw=-15.0, p_site_max_kw=15.0)
    p = split_classes(np.zeros(1), np.zeros(2, np.int64), np.array([10.0, 20.0]), site_kwh_ahead=np.array([15.0]), **kw)
    assert p.sum() == pytest.approx(15.0)
    # without the limit ahead each gets only what it must have alone
    p = split_classes(np.zeros(1), np.zeros(2, np.int64), np.array([10.0, 20.0]), **kw)
    np.testing.assert_allclose(p, [5.0, 5.0])


def test_fleet_classes_are_alike_and_bounded():
    rng = np.random.default_rng(11)
    prob = random_problem(rng, 300, 48, dt=0.5)
    for max_classes in (1, 8, 40, 96):
        lab = fleet_classes(prob, max_classes)
        a, d = prob.window
        assert lab.max() < max_classes and np.all(lab[d > a] >= 0) and np.all(lab[d <= a] == -1)
        np.testing.assert_array_equal(lab, fleet_classes(prob, max_classes))  # deterministic
    lab = fleet_classes(prob, 96)
    for g in range(lab.max() + 1):  # fine enough cells: one kind of vehicle per class
        m = lab == g
        assert np.unique(prob.p_dis_max_kw[m] > 0).size == 1


def test_class_plan_with_one_vehicle_per_class_is_the_exact_plan():
    # each vehicle its own class: the class LP is the exact LP (charge-only, needs that can be met)
    rng = np.random.default_rng(5)
    for _ in range(5):
        prob = random_problem(rng, 12, 16, dt=0.5, v2g=False)
        ex = plan_exact(prob)
        cp = plan_classes(prob, labels=np.arange(prob.n_vehicles))
        assert cp.objective_cny == pytest.approx(ex.objective_cny, rel=1e-6, abs=1e-6)
        plan = disaggregate_classes(prob, cp)
        assert plan.cost_cny == pytest.approx(ex.cost_cny, rel=1e-6, abs=1e-6)
        np.testing.assert_allclose(plan.unmet_need_kwh, ex.unmet_need_kwh, atol=1e-6)


def test_without_a_binding_limit_the_aggregate_path_is_the_value_split():
    prob = random_problem(np.random.default_rng(2), 30, 24, dt=1.0, site=False)
    assert not site_limit_can_bind(prob)
    assert aggregate_schedule(prob).cost_cny == pytest.approx(plan_exact(prob).cost_cny, rel=1e-9)
    assert isinstance(prob, DispatchProblem)
