"""Dispatch LPs: hand-solved case, independent formulation, aggregate + LLF, limits.

The research planners (grouped envelopes) and the plan-quality guards are tested next to them,
in bench/test_planners.py.
"""

import numpy as np
import pytest
from scipy.optimize import linprog

from planners import disaggregate_llf
from v2gsim.strategies.dispatch import (
    DispatchProblem,
    GridRequest,
    coarsen,
    coarsen_blocks,
    evaluate_schedule,
    plan_aggregate,
    plan_exact,
)

# ------------------------------------------------------------------------------------------
# helpers


def random_problem(rng, n, T, dt=0.25, v2g=True, site=True, requests=()):
    """A seeded random fleet; V2G price below purchase price (no same-step arbitrage)."""
    a = rng.integers(-2, T // 2, n)
    dur = rng.integers(4, T + 4, n)
    d = a + dur
    cap = rng.uniform(30, 80, n)
    e0 = cap * rng.uniform(0.15, 0.6, n)
    pch = rng.choice([7.0, 11.0, 22.0], n)
    pdis = np.where(rng.random(n) < 0.5, pch, 0.0) if v2g else np.zeros(n)
    plugged = np.clip(np.minimum(d, T) - np.maximum(a, 0), 0, None)
    need = np.minimum(cap, e0 + rng.uniform(0, 0.8, n) * pch * plugged * dt * 0.9)
    t_h = np.arange(T) * dt
    buy = 0.65 + 0.45 * np.sin(2 * np.pi * (t_h - 6) / 24) + 0.1 * rng.random(T)
    v2g_price = 0.8 * buy
    p_tot = pch.sum()
    return DispatchProblem(
        dt_h=dt, price_buy_cny_per_kwh=buy, price_v2g_cny_per_kwh=v2g_price,
        arrival_step=a, departure_step=d, e0_kwh=e0, e_cap_kwh=cap, e_min_kwh=0.2 * cap,
        e_need_kwh=need, p_ch_max_kw=pch, p_dis_max_kw=pdis,
        eta_ch=rng.uniform(0.9, 0.97, n), eta_dis=rng.uniform(0.9, 0.97, n),
        wear_cny_per_kwh=0.05,
        p_site_max_kw=(0.5 * p_tot if site else np.inf),
        p_site_min_kw=(-0.3 * p_tot if site else -np.inf),
        requests=requests,
    )


def assert_limits(prob, plan, tol=1e-6):
    p = plan.p_kw
    plug = prob.plugged
    assert np.all(np.abs(p[~plug]) <= tol), "power while unplugged"
    assert np.all(p <= prob.p_ch_max_kw[:, None] + tol)
    assert np.all(-p <= prob.p_dis_max_kw[:, None] + tol)
    assert np.all(plan.p_site_kw <= prob.p_site_max_kw + tol)
    assert np.all(plan.p_site_kw >= prob.p_site_min_kw - tol)
    assert np.all(plan.e_kwh <= prob.e_cap_kwh[:, None] + tol)
    assert np.all(plan.e_kwh >= prob.e_lb_kwh[:, None] - tol)
    assert np.all(np.minimum(plan.p_ch_kw, plan.p_dis_kw) == 0.0), "simultaneous ch/dis"
    # the schedule's energies follow from its powers
    np.testing.assert_allclose(plan.e_kwh, evaluate_schedule(prob, p).e_kwh, atol=1e-9)


# ------------------------------------------------------------------------------------------
# hand-solved case


def hand_problem(**kw):
    # dt = 1 h. v0: unidirectional, plugged steps 0-1, needs +10 kWh, eta 1.
    # v1: bidirectional, plugged steps 1-3, eta 0.9/0.9, starts at 20 kWh, cap 30, needs 20.
    # Site import limit 15 kW at step 1 (the cheap step) makes them compete.
    args = dict(
        dt_h=1.0,
        price_buy_cny_per_kwh=[1.0, 0.2, 0.5, 2.0],
        price_v2g_cny_per_kwh=[0.5, 0.1, 0.4, 1.5],
        wear_cny_per_kwh=0.1,
        arrival_step=[0, 1], departure_step=[2, 4],
        e0_kwh=[10.0, 20.0], e_cap_kwh=[40.0, 30.0], e_min_kwh=[5.0, 10.0],
        e_need_kwh=[20.0, 20.0], p_ch_max_kw=[10.0, 10.0], p_dis_max_kw=[0.0, 10.0],
        eta_ch=[1.0, 0.9], eta_dis=[1.0, 0.9],
        p_site_max_kw=[100.0, 15.0, 100.0, 100.0], p_site_min_kw=-100.0,
    )
    args.update(kw)
    return DispatchProblem(**args)


def test_hand_solved_two_vehicles_four_steps():
    # By hand: v0 must take 10 kWh at step 0 (1.0 + 0.1 wear) or step 1 (0.2 + 0.1); step 1 wins
    # by 0.8/kWh, more than v1 would save there (0.3/kWh vs step 2), so v0 gets 10 kW at step 1
    # and v1 the remaining 5 kW (20 + 0.9*5 = 24.5 kWh). v1 fills to its 30 kWh cap at step 2
    # (5.5 kWh / 0.9 = 6.111 kW at 0.5 + 0.1),
    # since discharging at step 3 earns (1.5 - 0.1) * 0.9 = 1.26 per battery kWh > 0.6/0.9.
    # It then discharges down to its 20 kWh need: 10 kWh * 0.9 = 9 kW grid-side.
    plan = plan_exact(hand_problem())
    expected = np.array([[0.0, 10.0, 0.0, 0.0], [0.0, 5.0, 55 / 9, -9.0]])
    np.testing.assert_allclose(plan.p_kw, expected, atol=1e-6)
    # cost = 10*0.3 + 5*0.3 + 6.111*0.6 - 9*(1.5 - 0.1) = 3 + 1.5 + 3.6667 - 12.6 = -4.4333
    assert plan.cost_cny == pytest.approx(3 + 1.5 + 55 / 9 * 0.6 - 12.6, abs=1e-6)
    assert plan.objective_cny == pytest.approx(-4.43333333, abs=1e-6)
    np.testing.assert_allclose(plan.e_kwh[:, -1], [20.0, 20.0], atol=1e-6)
    np.testing.assert_allclose(plan.unmet_need_kwh, 0.0, atol=1e-9)
    assert plan.status == "optimal"
    assert_limits(hand_problem(), plan)


def test_hand_case_infeasible_need_is_soft_and_reported():
    # v0 needs 30 kWh more but can take at most 2 x 10 kWh: 10 kWh unmet, no exception.
    prob = hand_problem(e_need_kwh=[40.0, 20.0], p_site_max_kw=100.0)
    plan = plan_exact(prob)
    assert plan.unmet_need_kwh[0] == pytest.approx(10.0, abs=1e-6)
    np.testing.assert_allclose(plan.p_kw[0, :2], [10.0, 10.0], atol=1e-6)


def test_discharge_call_soft_shortfall_reported():
    # Ask for 50 kW export at step 3: v1 can give at most 10 kW -> shortfall 40 kW.
    prob = hand_problem(requests=(GridRequest.discharge_call(3, 4, 50.0),))
    plan = plan_exact(prob)
    assert plan.p_kw[1, 3] == pytest.approx(-9.0, abs=1e-6)  # still limited by its need
    assert plan.cap_shortfall_kw[3] == pytest.approx(41.0, abs=1e-6)
    np.testing.assert_allclose(plan.cap_shortfall_kw[:3], 0.0)


def test_peak_shaving_request_moves_charging():
    # Cap site net power at 8 kW in steps 1-2. By hand: v1 fills step 2 (8 kW -> 7.2 kWh); its
    # marginal grid kWh at step 1 is worth 0.9 * 1.26 - 0.3 = 0.834 > v0's 0.8 saving, so v1 takes
    # the 2.8 kWh it still lacks (3.111 kW) and v0 the rest (4.889 kW), v0 buys 5.111 at step 0.
    prob = hand_problem(requests=(GridRequest.peak_shaving(1, 3, 8.0),))
    plan = plan_exact(prob)
    expected = np.array([[46 / 9, 44 / 9, 0.0, 0.0], [0.0, 28 / 9, 8.0, -9.0]])
    np.testing.assert_allclose(plan.p_kw, expected, atol=1e-6)
    np.testing.assert_allclose(plan.cap_shortfall_kw, 0.0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# independent formulation: dense, no energy variables (cumulative sums), linprog


def independent_optimum(prob, charge_allowed=None):
    """Optimal objective of the same problem, built densely without energy variables.

    ``charge_allowed`` (n, T) bool, optional: True forbids discharging, False forbids charging.
    """
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    plug = prob.plugged
    ch_ok = np.ones((n, T), bool) if charge_allowed is None else charge_allowed
    dis_ok = np.ones((n, T), bool) if charge_allowed is None else ~charge_allowed
    nT = n * T
    # x = [pc (n,T), pd (n,T), u (n), s (T)]
    nv = 2 * nT + n + T
    c = np.zeros(nv)
    c[:nT] = (dt * (prob.price_buy_cny_per_kwh[None, :] + prob.wear_cny_per_kwh)
              * np.ones((n, 1))).ravel()
    c[nT:2 * nT] = (dt * (prob.wear_cny_per_kwh - prob.price_v2g_cny_per_kwh[None, :])
                    * np.ones((n, 1))).ravel()
    c[2 * nT:2 * nT + n] = prob.penalty_need_cny_per_kwh
    c[2 * nT + n:] = prob.penalty_request_cny_per_kwh * dt
    A, b = [], []
    lower_tri = np.tril(np.ones((T, T)))  # row k: steps 0..k -> energy at boundary k+1
    for i in range(n):
        blk = np.zeros((T, nv))
        blk[:, i * T:(i + 1) * T] = lower_tri * prob.eta_ch[i] * dt
        blk[:, nT + i * T:nT + (i + 1) * T] = -lower_tri * dt / prob.eta_dis[i]
        A.append(blk)  # e0 + blk x <= cap
        b.append(np.full(T, prob.e_cap_kwh[i] - prob.e0_kwh[i]))
        A.append(-blk)  # e0 + blk x >= lb
        b.append(np.full(T, prob.e0_kwh[i] - prob.e_lb_kwh[i]))
        need = prob.need_eff_kwh[i]
        _, d = prob.window
        if np.isfinite(need) and d[i] > 0:
            row = -blk[d[i] - 1].copy()
            row[2 * nT + i] = -1.0
            A.append(row[None, :])
            b.append(np.array([prob.e0_kwh[i] - need]))
    site = np.zeros((T, nv))
    for i in range(n):
        site[:, i * T:(i + 1) * T] += np.eye(T)
        site[:, nT + i * T:nT + (i + 1) * T] -= np.eye(T)
    A += [site, -site]
    b += [prob.p_site_max_kw, -prob.p_site_min_kw]
    cap = prob.p_cap_kw
    fin = np.isfinite(cap)
    soft = site.copy()
    soft[:, 2 * nT + n:] = -np.eye(T)
    A.append(soft[fin])
    b.append(cap[fin])
    A = np.vstack(A)
    b = np.concatenate(b)
    keep = np.isfinite(b)
    bounds = ([(0, prob.p_ch_max_kw[i] if plug[i, t] and ch_ok[i, t] else 0) for i in range(n)
               for t in range(T)]
              + [(0, prob.p_dis_max_kw[i] if plug[i, t] and dis_ok[i, t] else 0)
                 for i in range(n) for t in range(T)]
              + [(0, None)] * n + [(0, None if fin[t] else 0) for t in range(T)])
    res = linprog(c, A_ub=A[keep], b_ub=b[keep], bounds=bounds, method="highs-ipm")
    assert res.status == 0, res.message
    return res.fun


@pytest.mark.parametrize("seed", range(12))
def test_plan_exact_agrees_with_independent_formulation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    T = int(rng.integers(3, 13))
    reqs = ()
    if seed % 3 == 0:
        reqs = (GridRequest.peak_shaving(1, T - 1, 5.0), GridRequest.discharge_call(T - 2, T, 8.0))
    prob = random_problem(rng, n, T, dt=0.5, requests=reqs)
    plan = plan_exact(prob)
    ref = independent_optimum(prob)
    assert plan.objective_cny == pytest.approx(ref, rel=1e-6, abs=1e-6)
    # the objective is the schedule's cost plus its penalties
    pen = (prob.penalty_need_cny_per_kwh * plan.unmet_need_kwh.sum()
           + prob.penalty_request_cny_per_kwh * prob.dt_h * plan.cap_shortfall_kw.sum())
    assert plan.cost_cny + pen == pytest.approx(plan.objective_cny, rel=1e-6, abs=1e-6)
    assert_limits(prob, plan)


# ------------------------------------------------------------------------------------------
# no simultaneous charge and discharge


def test_no_simultaneous_when_same_step_arbitrage_pays():
    # V2G price 4 >> buy price 0.3: an LP would charge and discharge the same vehicle in the
    # same step (burning energy for profit). The plan must not, and must be the best plan that
    # does not: checked by brute force over every charge-or-discharge pattern (2^(n*T) LPs).
    T = 4
    prob = DispatchProblem(
        dt_h=1.0, price_buy_cny_per_kwh=[0.3, 0.3, 0.5, 0.3],
        price_v2g_cny_per_kwh=[4.0, 4.0, 3.0, 4.0],
        arrival_step=[0, 1], departure_step=[T, T], e0_kwh=[30.0, 30.0], e_cap_kwh=[60.0, 40.0],
        e_min_kwh=[10.0, 10.0], e_need_kwh=[30.0, 35.0], p_ch_max_kw=[10.0, 7.0],
        p_dis_max_kw=[10.0, 7.0], eta_ch=0.95, eta_dis=0.9, wear_cny_per_kwh=0.0,
        p_site_max_kw=15.0,
    )
    plan = plan_exact(prob)
    assert plan.n_binary_steps > 0  # the LP alone would have done it
    assert np.all(np.minimum(plan.p_ch_kw, plan.p_dis_kw) == 0.0)
    assert_limits(prob, plan)
    best = min(
        independent_optimum(prob, charge_allowed=np.array(bits).reshape(2, T).astype(bool))
        for bits in np.ndindex(*(2,) * (2 * T))
    )
    assert plan.objective_cny == pytest.approx(best, abs=1e-6)
    lp_only = independent_optimum(prob)  # without the rule: strictly better (so binding)
    assert lp_only < best - 1e-3


def test_no_simultaneous_with_zero_wear_and_ties():
    rng = np.random.default_rng(7)
    prob = random_problem(rng, 20, 24)
    prob = DispatchProblem(**{**{k: getattr(prob, k) for k in (
        "dt_h", "price_buy_cny_per_kwh", "arrival_step", "departure_step", "e0_kwh",
        "e_cap_kwh", "e_min_kwh", "e_need_kwh", "p_ch_max_kw", "p_dis_max_kw")},
        "price_v2g_cny_per_kwh": prob.price_buy_cny_per_kwh, "eta_ch": 1.0, "eta_dis": 1.0,
        "wear_cny_per_kwh": 0.0})
    plan = plan_exact(prob)
    assert np.all(np.minimum(plan.p_ch_kw, plan.p_dis_kw) == 0.0)
    assert_limits(prob, plan)


# ------------------------------------------------------------------------------------------
# aggregate + LLF


def test_aggregate_llf_meets_needs_and_limits():
    rng = np.random.default_rng(3)
    prob = random_problem(rng, 60, 48)
    ex = plan_exact(prob)
    assert ex.unmet_need_kwh.max() < 1e-6
    ds = disaggregate_llf(prob, plan_aggregate(prob))
    assert_limits(prob, ds)
    assert ds.unmet_need_kwh.max() < 1e-6


def test_llf_follows_a_feasible_target_without_v2g():
    # Charging only, no site limit: LLF must deliver every need and never exceed the target by
    # more than the mandatory charging.
    rng = np.random.default_rng(11)
    prob = random_problem(rng, 40, 32, v2g=False, site=False)
    ex = plan_exact(prob)
    ds = disaggregate_llf(prob, ex.p_site_kw)
    assert ds.unmet_need_kwh.max() < 1e-6
    assert_limits(prob, ds)


def test_aggregate_is_a_relaxation_of_the_exact_plan():
    for seed in range(5):
        prob = random_problem(np.random.default_rng(100 + seed), 30, 32)
        ag = plan_aggregate(prob)
        ex = plan_exact(prob)
        assert ag.objective_cny <= ex.objective_cny + 1e-6


# ------------------------------------------------------------------------------------------
# input validation


@pytest.mark.parametrize("kw, msg", [
    ({"e0_kwh": [50.0, 20.0]}, "e0_kwh must be <= e_cap_kwh; vehicle 0 is not"),
    ({"eta_ch": [1.2, 0.9]}, "eta_ch must be <= 1.0"),
    ({"p_site_min_kw": 5.0}, "p_site_min_kw must be <= 0"),
    ({"dt_h": 0.0}, "dt_h must be > 0"),
    ({"price_v2g_cny_per_kwh": [1.0, 2.0]}, "price_v2g_cny_per_kwh must have shape (4,)"),
    ({"arrival_step": [0.5, 1]}, "arrival_step must be 2 whole step numbers"),
])
def test_bad_inputs_raise_clear_errors(kw, msg):
    with pytest.raises(ValueError, match=None) as exc:
        hand_problem(**kw)
    assert msg in str(exc.value)


def test_coarsen_blocks_unequal_plan_meets_needs_and_uniform_matches_coarsen():
    prob = random_problem(np.random.default_rng(11), 80, 96, dt=0.25)
    blocks = [4] * 6 + [12] * 6
    coarse = coarsen_blocks(prob, blocks)
    assert coarse.n_steps == 12
    np.testing.assert_allclose(coarse.dt_h, 0.25 * np.array(blocks))
    ag = plan_aggregate(coarse, interval_bounds=False)
    assert ag.status == "optimal"
    plan = disaggregate_llf(prob, np.repeat(ag.p_kw, blocks)[:96])
    assert plan.unmet_need_kwh.max() < 1e-6
    assert_limits(prob, plan)
    # even blocks fall back to coarsen (same plan)
    a1 = plan_aggregate(coarsen_blocks(prob, [4] * 24), interval_bounds=False)
    a2 = plan_aggregate(coarsen(prob, 4), interval_bounds=False)
    np.testing.assert_allclose(a1.objective_cny, a2.objective_cny)
    with pytest.raises(ValueError, match="interval_bounds"):
        plan_aggregate(coarse, interval_bounds=True)
