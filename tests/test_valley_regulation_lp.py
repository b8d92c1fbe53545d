"""A valley fill's floor and regulation capacity in the dispatch LPs (dispatch.grid_rows), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from v2gsim.strategies.dispatch.aggregate import plan_aggregate
from v2gsim.strategies.dispatch.exact import plan_exact
from v2gsim.strategies.dispatch.problem import DispatchProblem, schedule_score


def _one_vehicle(**kw) -> DispatchProblem:
    # one vehicle, 4 steps of 1 h, 50 kWh now, 60 needed at the end, 10 kW charger, no losses;
    # energy costs 0.3 CNY/kWh in steps 0-1 and 0.5 in steps 2-3
    args = dict(dt_h=1.0, price_buy_cny_per_kwh=[0.3, 0.3, 0.5, 0.5], price_v2g_cny_per_kwh=0.0, arrival_step=0,
                departure_step=4, e0_kwh=50.0, e_cap_kwh=100.0, e_min_kwh=0.0, e_need_kwh=60.0, p_ch_max_kw=10.0,
                p_dis_max_kw=0.0, eta_ch=1.0, eta_dis=1.0)
    return DispatchProblem(**(args | kw))


def _floor(kw: float, price: float) -> dict:
    return {"p_floor_kw": [-np.inf, -np.inf, kw, kw], "floor_price_cny_per_kwh": [0.0, 0.0, price, price]}


def test_without_a_floor_it_charges_in_the_cheap_hours():
    p = plan_exact(_one_vehicle()).p_kw[0]
    assert p[:2].sum() == pytest.approx(10.0) and p[2:] == pytest.approx([0.0, 0.0])


@pytest.mark.parametrize("planner", ["exact", "aggregate"])
def test_a_floor_worth_more_than_the_dearer_hours_is_met(planner):
    # a floor of 8 kW in steps 2-3, short kWh at 1 CNY: meeting it (16 kWh at 0.5 = 8 CNY, the need met
    # with it) beats the cheap hours plus the shortfall (10 x 0.3 + 16 x 1 = 19 CNY)
    prob = _one_vehicle(**_floor(8.0, 1.0))
    p = plan_exact(prob).p_kw[0] if planner == "exact" else plan_aggregate(prob, interval_bounds=False).p_kw
    assert p == pytest.approx([0.0, 0.0, 8.0, 8.0], abs=1e-6)


def test_a_cheap_floor_is_left_short():
    # short kWh at 0.1: a kWh in the window costs 0.5 and saves 0.1 + 0.3 (the cheap kWh it replaces): not worth it
    p = plan_exact(_one_vehicle(**_floor(8.0, 0.1))).p_kw[0]
    assert p[2:] == pytest.approx([0.0, 0.0], abs=1e-6) and p.sum() == pytest.approx(10.0)


def test_a_floor_the_vehicle_cannot_take_is_met_as_far_as_it_can():
    # room for 4 kWh only (cap 54): the LP stays feasible and fills what it can in the window
    prob = _one_vehicle(e_cap_kwh=54.0, e_need_kwh=54.0, **_floor(8.0, 1.0))
    p = plan_exact(prob).p_kw[0]
    assert p[2:].sum() == pytest.approx(4.0) and p[:2].sum() == pytest.approx(0.0, abs=1e-6)
    # the score counts the shortfall at its price: (16 - 4) kWh x 1 CNY on top of 4 kWh x 0.5
    assert schedule_score(prob, p[None, :]) == pytest.approx(4 * 0.5 + 12 * 1.0)


def _bidir(**kw) -> DispatchProblem:
    # a bidirectional vehicle, 2 steps of 1 h: needs 10 kWh more, cheaper in step 0
    args = dict(dt_h=1.0, price_buy_cny_per_kwh=[0.3, 0.5], price_v2g_cny_per_kwh=0.0, arrival_step=0, departure_step=2,
                e0_kwh=50.0, e_cap_kwh=100.0, e_min_kwh=20.0, e_need_kwh=60.0, p_ch_max_kw=10.0, p_dis_max_kw=10.0,
                eta_ch=1.0, eta_dis=1.0)
    return DispatchProblem(**(args | kw))


def test_regulation_holds_charger_headroom_down():
    assert plan_exact(_bidir()).p_kw[0] == pytest.approx([10.0, 0.0], abs=1e-6)
    # 4 kW held in step 0 (a kW not held costs 5 CNY/h): it may draw at most 10 - 4 kW then
    prob = _bidir(reserve_kw=[4.0, 0.0], reserve_price_cny_per_kwh=[5.0, 0.0])
    assert plan_exact(prob).p_kw[0] == pytest.approx([6.0, 4.0], abs=1e-6)


def test_regulation_holds_the_site_limit_both_ways():
    # site import limit 7 kW, 4 kW held in both steps: net at most 3 kW; the need (10 kWh) is then short
    # by 4 kWh, which costs less (penalty lowered to 1 CNY/kWh) than breaking the reserve (5 CNY/kW h)
    prob = _bidir(p_site_max_kw=7.0, p_site_min_kw=-7.0, reserve_kw=[4.0, 4.0], reserve_price_cny_per_kwh=[5.0, 5.0],
                  penalty_need_cny_per_kwh=1.0)
    p = plan_exact(prob).p_kw[0]
    assert p == pytest.approx([3.0, 3.0], abs=1e-6)


def test_regulation_holds_power_headroom_up():
    # V2G pays 2 CNY/kWh in step 0; with 4 kW held it may feed at most 10 - 4 kW there
    prob = _bidir(e_need_kwh=0.0, price_v2g_cny_per_kwh=[2.0, 0.0], reserve_kw=[4.0, 0.0], reserve_price_cny_per_kwh=[50.0, 0.0])
    assert plan_exact(prob).p_kw[0][0] == pytest.approx(-6.0, abs=1e-6)


def test_regulation_holds_energy_headroom():
    # 13 kWh above the 20 kWh reserve, 20 kW charger, V2G pays 2 CNY/kWh in step 0 only, 4 kW held
    # both ways with 1 h of energy behind it at the start of each step: it feeds 13 - 4 = 9 kWh
    prob = _bidir(e0_kwh=33.0, e_need_kwh=0.0, p_ch_max_kw=20.0, p_dis_max_kw=20.0, price_v2g_cny_per_kwh=[2.0, 0.0],
                  reserve_kw=[4.0, 4.0], reserve_price_cny_per_kwh=[50.0, 50.0], reserve_sustain_h=1.0)
    assert plan_exact(prob).p_kw[0][0] == pytest.approx(-9.0, abs=1e-6)
    # a quarter hour behind it: 13 - 1 = 12 kWh, but the power headroom keeps it to 20 - 4 = 16 kW: 12
    prob = _bidir(e0_kwh=33.0, e_need_kwh=0.0, p_ch_max_kw=20.0, p_dis_max_kw=20.0, price_v2g_cny_per_kwh=[2.0, 0.0],
                  reserve_kw=[4.0, 4.0], reserve_price_cny_per_kwh=[50.0, 50.0], reserve_sustain_h=0.25)
    assert plan_exact(prob).p_kw[0][0] == pytest.approx(-12.0, abs=1e-6)


@pytest.mark.parametrize("prob", [
    _one_vehicle(**_floor(8.0, 1.0)), _one_vehicle(e_cap_kwh=54.0, e_need_kwh=54.0, **_floor(8.0, 1.0)),
    _bidir(p_site_max_kw=7.0, p_site_min_kw=-7.0, reserve_kw=[4.0, 4.0], reserve_price_cny_per_kwh=[5.0, 5.0],
           penalty_need_cny_per_kwh=1.0),
    _bidir(e0_kwh=33.0, e_need_kwh=0.0, p_ch_max_kw=20.0, p_dis_max_kw=20.0, price_v2g_cny_per_kwh=[2.0, 0.0],
           reserve_kw=[4.0, 4.0], reserve_price_cny_per_kwh=[50.0, 50.0], reserve_sustain_h=1.0)])
def test_a_plans_objective_with_the_smallest_slacks_is_the_lps(prob):
    # the objective of a schedule (its smallest floor and reserve slacks, as a MIP start uses them)
    # equals the LP's optimum for the LP's own schedule
    plan = plan_exact(prob)
    assert plan.status == "optimal"
    assert plan.objective_cny == pytest.approx(plan.objective_bound_cny, abs=1e-6)
