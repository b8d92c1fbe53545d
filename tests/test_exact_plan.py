"""The exact plan where an LP is not enough: flat V2G prices above the purchase price (a vehicle
would charge and discharge at once), binding site limits, vehicles leaving together. Checked
against an independent MILP (dense, cumulative energies, a binary per vehicle-step), by
property tests over random small sites, and through its error paths (``check_plan``, the safe
plan, the time limit)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from v2gsim.strategies.dispatch import DispatchProblem, GridRequest, check_plan, evaluate_schedule, exact, plan_exact, safe_plan

# ------------------------------------------------------------------------------------------
# independent optimum: no energy variables (cumulative sums), a binary per vehicle-step


def independent_milp(prob: DispatchProblem) -> float:
    """Optimal objective (cost + penalties) with no vehicle charging and discharging at once,
    built densely from the problem's raw arrays and solved by ``scipy.optimize.milp``.
    x = [p_ch (n*T), p_dis (n*T), z (n*T), unmet need (n), cap excess (T)]."""
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    nT = n * T
    nv = 3 * nT + n + T
    w = prob.wear_cny_per_kwh + prob.wear_vehicle_cny_per_kwh
    c = np.concatenate([(dt * (prob.price_buy_cny_per_kwh[None, :] + w[:, None])).ravel(),
                        (dt * (w[:, None] - prob.price_v2g_cny_per_kwh[None, :])).ravel(), np.zeros(nT),
                        np.full(n, prob.penalty_need_cny_per_kwh), np.full(T, prob.penalty_request_cny_per_kwh * dt)])
    rows, lo, hi = [], [], []
    cum = np.tril(np.ones((T, T)))  # row t: steps 0..t -> energy at the end of step t
    t_idx = np.arange(T)
    for i in range(n):
        blk = np.zeros((T, nv))
        blk[:, i * T:(i + 1) * T] = cum * prob.eta_ch[i] * dt
        blk[:, nT + i * T:nT + (i + 1) * T] = -cum * dt / prob.eta_dis[i]
        e0 = prob.e0_kwh[i]
        rows.append(blk)
        lo.append(np.full(T, min(prob.e_min_kwh[i], e0) - e0))
        hi.append(np.full(T, prob.e_cap_kwh[i] - e0))
        # plugged for arrival <= t < departure, clipped to the horizon
        a, d = np.clip(prob.arrival_step[i], 0, T), np.clip(prob.departure_step[i], 0, T)
        if d > a:
            # need at departure (or at the horizon end, less what full power adds after it)
            need = min(prob.e_need_kwh[i] - prob.eta_ch[i] * prob.p_ch_max_kw[i] * dt * max(prob.departure_step[i] - T, 0),
                       prob.e_cap_kwh[i])
            row = blk[d - 1].copy()
            row[3 * nT + i] = 1.0
            rows.append(row[None])
            lo.append([need - e0])
            hi.append([np.inf])
        # at most one direction per step: p_ch <= P_ch z, p_dis <= P_dis (1 - z)
        sw = np.zeros((2 * T, nv))
        sw[t_idx, i * T + t_idx] = 1.0
        sw[t_idx, 2 * nT + i * T + t_idx] = -prob.p_ch_max_kw[i]
        sw[T + t_idx, nT + i * T + t_idx] = 1.0
        sw[T + t_idx, 2 * nT + i * T + t_idx] = prob.p_dis_max_kw[i]
        rows.append(sw)
        lo.append(np.full(2 * T, -np.inf))
        hi.append(np.concatenate([np.zeros(T), np.full(T, prob.p_dis_max_kw[i])]))
    site = np.zeros((T, nv))
    for i in range(n):
        site[:, i * T:(i + 1) * T] += np.eye(T)
        site[:, nT + i * T:nT + (i + 1) * T] -= np.eye(T)
    rows.append(site)
    lo.append(prob.p_site_min_kw)
    hi.append(prob.p_site_max_kw)
    cap = np.full(T, np.inf)
    for r in prob.requests:
        cap[max(r.start_step, 0):min(r.end_step, T)] = np.minimum(cap[max(r.start_step, 0):min(r.end_step, T)], r.p_net_max_kw)
    fin = np.isfinite(cap)
    soft = site.copy()
    soft[:, 3 * nT + n:] = -np.eye(T)
    rows.append(soft[fin])
    lo.append(np.full(fin.sum(), -np.inf))
    hi.append(cap[fin])
    plug = np.array([[prob.arrival_step[i] <= t < prob.departure_step[i] for t in range(T)] for i in range(n)])
    ub = np.concatenate([np.where(plug, prob.p_ch_max_kw[:, None], 0.0).ravel(),
                         np.where(plug, prob.p_dis_max_kw[:, None], 0.0).ravel(), np.ones(nT),
                         np.full(n, np.inf), np.where(fin, np.inf, 0.0)])
    res = milp(c, constraints=LinearConstraint(np.vstack(rows), np.concatenate(lo), np.concatenate(hi)),
               bounds=Bounds(np.zeros(nv), ub), integrality=np.concatenate([np.zeros(2 * nT), np.ones(nT), np.zeros(n + T)]),
               options={"mip_rel_gap": 1e-9, "time_limit": 60})
    assert res.status == 0, res.message
    return float(res.fun)


def flat_v2g_site(rng, n, T, *, dt=1.0, same_departure=True, requests=()):
    """A small site: a flat V2G price (often above the cheapest purchase price), a binding site
    limit, most vehicles bidirectional, and (``same_departure``) all leaving at one step."""
    a = rng.integers(0, 2, n)
    d = np.full(n, int(rng.integers(T - 2, T + 2))) if same_departure else rng.integers(2, T + 3, n)
    cap = rng.uniform(20.0, 60.0, n)
    e0 = cap * rng.uniform(0.1, 0.9, n)
    p = rng.choice([7.0, 11.0, 22.0], n)
    limit = float(rng.uniform(0.2, 0.8) * p.sum())
    return DispatchProblem(
        dt_h=dt, price_buy_cny_per_kwh=rng.choice([0.25, 0.6, 1.1], T), price_v2g_cny_per_kwh=np.full(T, rng.uniform(0.3, 0.9)),
        arrival_step=a, departure_step=d, e0_kwh=e0, e_cap_kwh=cap, e_min_kwh=cap * rng.uniform(0.1, 0.5, n),
        e_need_kwh=np.clip(e0 + rng.uniform(-0.2, 0.5, n) * cap, 0.0, cap), p_ch_max_kw=p,
        p_dis_max_kw=np.where(rng.random(n) < 0.8, p, 0.0), eta_ch=rng.uniform(0.85, 0.97, n),
        eta_dis=rng.uniform(0.85, 0.97, n), wear_cny_per_kwh=float(rng.choice([0.0, 0.02])),
        p_site_max_kw=limit, p_site_min_kw=-limit * rng.uniform(0.3, 1.0), requests=requests)


def assert_sound(prob, plan):
    assert check_plan(prob, plan) == []
    assert np.all(np.minimum(plan.p_ch_kw, plan.p_dis_kw) == 0.0)
    assert plan.p_site_kw.max() <= prob.p_site_max_kw.max() + 1e-6
    assert plan.p_site_kw.min() >= prob.p_site_min_kw.min() - 1e-6
    assert plan.objective_bound_cny <= plan.objective_cny + 1e-6 * max(1.0, abs(plan.objective_cny))


# ------------------------------------------------------------------------------------------
# the failure seen: a site limit broken by a plan called optimal


def binaries_run_out_problem():
    # Step 0 pays 1.0 for V2G and charges 0.1; later steps pay nothing for V2G. No vehicle may
    # end below its arrival energy, so without charging and discharging at once nothing pays:
    # the optimum is 0. Charging and discharging at once would earn (a vehicle keeps its energy
    # if it charges 1 / eta^2 for every kWh it discharges), within the 1.3 kW site limit on
    # the net; the most efficient vehicle does it best, then the next. The old MILP fallback
    # gave binaries to the offending vehicle-steps round by round (5 rounds), each round moving
    # the trade to the next vehicle, then zeroed the smaller side: 8.5 kW over the 1.3 kW limit,
    # status "optimal", objective -6.3 (below the true optimum).
    n = 8
    eta = 0.97 - 0.01 * np.arange(n)
    return DispatchProblem(
        dt_h=1.0, price_buy_cny_per_kwh=[0.1, 2.0, 2.0], price_v2g_cny_per_kwh=[1.0, 0.0, 0.0],
        arrival_step=0, departure_step=3, e0_kwh=np.full(n, 20.0), e_cap_kwh=60.0 + np.arange(n),
        e_min_kwh=np.full(n, 20.0), e_need_kwh=np.full(n, 20.0), p_ch_max_kw=22.0, p_dis_max_kw=22.0,
        eta_ch=eta, eta_dis=eta, p_site_max_kw=1.3, p_site_min_kw=-1.3)


def test_site_limit_kept_where_charging_and_discharging_at_once_would_pay():
    prob = binaries_run_out_problem()
    plan = plan_exact(prob)
    assert_sound(prob, plan)
    assert plan.status == "optimal"
    assert plan.objective_cny == pytest.approx(independent_milp(prob), abs=1e-6)
    assert plan.objective_cny == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------------
# against the independent MILP


@pytest.mark.parametrize("seed", range(6))
def test_flat_v2g_price_many_leaving_together_matches_independent_milp(seed):
    rng = np.random.default_rng(seed)
    reqs = (GridRequest.discharge_call(3, 5, 10.0),) if seed % 2 else ()
    prob = flat_v2g_site(rng, 4, 8, requests=reqs)
    plan = plan_exact(prob)
    assert_sound(prob, plan)
    assert plan.status == "optimal"
    ref = independent_milp(prob)
    assert plan.objective_cny == pytest.approx(ref, rel=2e-6, abs=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 4), T=st.integers(4, 8), same=st.booleans(),
       dt=st.sampled_from([0.25, 1.0]))
def test_property_plan_is_sound_and_optimal(seed, n, T, same, dt):
    prob = flat_v2g_site(np.random.default_rng(seed), n, T, dt=dt, same_departure=same)
    plan = plan_exact(prob, time_limit_s=60.0)  # optimality is the question here, not time
    assert_sound(prob, plan)
    assert plan.status == "optimal"  # small sites: the MIP is done long before the time limit
    ref = independent_milp(prob)
    assert plan.objective_cny == pytest.approx(ref, rel=2e-6, abs=1e-6)
    # the schedule's evaluation is the objective: cost plus penalties
    pen = (prob.penalty_need_cny_per_kwh * plan.unmet_need_kwh.sum()
           + prob.penalty_request_cny_per_kwh * prob.dt_h * plan.cap_shortfall_kw.sum())
    assert plan.cost_cny + pen == pytest.approx(plan.objective_cny, rel=1e-9, abs=1e-9)


def tight_site(rng):
    """Many vehicles that must keep (about) their arrival energy, a site limit of a few kW on
    the net, V2G paying more than charging costs in some steps, every vehicle of its own
    efficiency: the LP would trade through the vehicles that lose least, one after the other
    (the family of :func:`binaries_run_out_problem`)."""
    n, T = int(rng.integers(4, 9)), int(rng.integers(2, 6))
    eta = rng.uniform(0.85, 0.98, n)
    e0 = rng.uniform(10.0, 40.0, n)
    limit = float(rng.uniform(0.5, 5.0))
    return DispatchProblem(
        dt_h=1.0, price_buy_cny_per_kwh=rng.choice([0.1, 0.3, 2.0], T), price_v2g_cny_per_kwh=rng.choice([0.0, 0.5, 1.0], T),
        arrival_step=0, departure_step=T, e0_kwh=e0, e_cap_kwh=e0 + rng.uniform(5.0, 30.0, n),
        e_min_kwh=e0 * rng.uniform(0.9, 1.0, n), e_need_kwh=e0, p_ch_max_kw=rng.choice([11.0, 22.0], n),
        p_dis_max_kw=rng.choice([11.0, 22.0], n), eta_ch=eta, eta_dis=eta, p_site_max_kw=limit, p_site_min_kw=-limit)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)  # fixed examples: a random hard one can need more than the time limit on a busy machine
@given(seed=st.integers(0, 2**32 - 1))
def test_property_many_vehicles_tight_site_limit(seed):
    # the old round-limited MILP broke the site limit or a reserve on 32 of 200 such sites
    prob = tight_site(np.random.default_rng(seed))
    plan = plan_exact(prob, time_limit_s=60.0)  # some take seconds (so does the reference MILP)
    assert_sound(prob, plan)
    assert plan.status == "optimal"
    assert plan.objective_cny == pytest.approx(independent_milp(prob), rel=2e-6, abs=1e-6)


# ------------------------------------------------------------------------------------------
# the time limit


def big_flat_site(n=30, T=96, dt=0.25):
    rng = np.random.default_rng(1)
    p = rng.choice([30.0, 60.0], n)
    cap = rng.choice([44.9, 52.5, 60.0], n)
    t_h = np.arange(T) * dt
    return DispatchProblem(
        dt_h=dt, price_buy_cny_per_kwh=np.where(t_h < 8, 0.247, np.where(t_h < 14, 0.65, 1.105)),
        price_v2g_cny_per_kwh=np.full(T, 0.6), arrival_step=np.zeros(n, np.int64),
        departure_step=np.where(np.arange(n) < n // 4, T // 2, rng.integers(T // 4, T + 8, n)),
        e0_kwh=cap * rng.uniform(0.15, 0.7, n), e_cap_kwh=cap, e_min_kwh=0.2 * cap, e_need_kwh=0.9 * cap,
        p_ch_max_kw=p, p_dis_max_kw=np.where(rng.random(n) < 0.5, p, 0.0), eta_ch=0.95, eta_dis=0.95,
        wear_cny_per_kwh=0.05, p_site_max_kw=0.4 * p.sum(), p_site_min_kw=-0.4 * p.sum())


def test_time_limit_bounds_the_plan_and_its_status_says_so():
    # 30 vehicles cycling through a valley under a flat V2G price: the MIP is far from proven
    # after two seconds (it was unbounded before: such site plans ran for minutes).
    prob = big_flat_site()
    plan = plan_exact(prob, time_limit_s=2.0)
    assert plan.status in ("time_limit_feasible", "fallback")
    assert_sound(prob, plan)
    assert plan.solve_time_s < 2.0 + 5.0  # the limit, plus building the model on a loaded machine
    assert plan.objective_bound_cny < plan.objective_cny  # not proven: the gap is reported
    # the plan earns from the cycling (the LP's bound is far lower still)
    assert plan.objective_cny < plan.objective_bound_cny + 0.5 * abs(plan.objective_bound_cny)
    with pytest.raises(ValueError, match="time_limit_s must be > 0"):
        plan_exact(prob, time_limit_s=0.0)


# ------------------------------------------------------------------------------------------
# check_plan and the error path


def small_problem():
    return DispatchProblem(
        dt_h=1.0, price_buy_cny_per_kwh=[0.3, 0.6, 1.0], price_v2g_cny_per_kwh=[0.2, 0.4, 0.8],
        arrival_step=[0, 1], departure_step=[3, 3], e0_kwh=[10.0, 20.0], e_cap_kwh=[30.0, 25.0],
        e_min_kwh=[5.0, 5.0], e_need_kwh=[20.0, 20.0], p_ch_max_kw=[10.0, 10.0], p_dis_max_kw=[10.0, 0.0],
        eta_ch=0.9, eta_dis=0.9, p_site_max_kw=12.0, p_site_min_kw=-8.0)


@pytest.mark.parametrize("p, part, message", [
    ([[10.0, 10.0, 0.0], [0.0, 5.0, 0.0]], None, "site net power 3 kW above p_site_max_kw"),
    ([[-9.0, 0.0, 0.0], [0.0, 0.0, 0.0]], None, "site net power 1 kW below p_site_min_kw"),
    ([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]], None, "vehicle 1 draws 2 kW in step 0, when it is not plugged"),
    ([[0.0, 0.0, 0.0], [0.0, -1.0, 0.0]], None, "vehicle 1 discharges 1 kW above p_dis_max_kw"),
    ([[10.0, 10.0, 5.0], [0.0, 0.0, 0.0]], None, "vehicle 0 holds 2.5 kWh above e_cap_kwh at step 3"),
    ([[-6.0, 0.0, 0.0], [0.0, 0.0, 0.0]], None, "below its reserve at step 1"),
    ([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "both", "vehicle 0 charges and discharges at once in step 0"),
    ([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "unmet", "unmet need is 5.5 kWh more than the plan reports"),
])
def test_check_plan_names_each_broken_limit(p, part, message):
    prob = small_problem()
    plan = evaluate_schedule(prob, np.array(p))
    if part == "both":  # net 5 kW as 7 in and 2 out
        plan = dataclasses.replace(plan, p_ch_kw=plan.p_ch_kw + np.where(plan.p_ch_kw > 0, 2.0, 0.0),
                                   p_dis_kw=plan.p_dis_kw + np.where(plan.p_ch_kw > 0, 2.0, 0.0))
    if part == "unmet":
        plan = dataclasses.replace(plan, unmet_need_kwh=np.zeros(2))
    problems = check_plan(prob, plan)
    assert any(message in s for s in problems), problems
    assert check_plan(prob, evaluate_schedule(prob, np.zeros((2, 3)))) == []


def test_a_solver_plan_breaking_a_limit_is_replaced_by_the_safe_plan(monkeypatch, caplog):
    # A solver answer that breaks the site limit (as a wrong answer from any solver would) must
    # not be used: plan_exact logs it and returns the safe plan.
    prob = small_problem()
    real = exact._solve_lp

    def over_the_limit(*args, **kw):
        res = real(*args, **kw)
        res.x[0] += 15.0  # vehicle 0 charges 15 kW more in step 0
        return res

    monkeypatch.setattr(exact, "_solve_lp", over_the_limit)
    with caplog.at_level(logging.WARNING, logger="v2gsim.strategies.dispatch"):
        plan = plan_exact(prob)
    assert plan.status == "safe"
    assert check_plan(prob, plan) == []
    assert "breaks a limit" in caplog.text and "above p_site_max_kw" in caplog.text


def test_safe_plan_keeps_every_limit_with_a_binding_site_limit():
    rng = np.random.default_rng(4)
    prob = flat_v2g_site(rng, 6, 10, same_departure=True)
    plan = safe_plan(prob)
    assert plan.status == "safe"
    assert check_plan(prob, plan) == []
    assert np.all(plan.p_kw >= 0.0)  # never discharges
    assert plan.p_site_kw.max() <= prob.p_site_max_kw.max() + 1e-9
    # as early as it can: a vehicle that still needs energy charges at full power unless the
    # site limit binds in that step
    assert plan.objective_cny >= plan_exact(prob).objective_cny - 1e-6
