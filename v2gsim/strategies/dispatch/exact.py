"""The exact site plan: one LP over every vehicle and step, a time-limited MIP where a vehicle
would charge and discharge at once, every plan checked before it is returned (else the safe plan).

The LP (n x T charge, discharge and energy variables) is optimal for the stated problem. It
charges and discharges a vehicle in the same step only where that earns money in itself (the V2G
price above the purchase price plus twice the wear) or to get rid of energy; then
:func:`plan_exact` nets it where that is provably as good, else solves a MIP with a
charge-or-discharge binary per such vehicle-step, within a time limit, from a feasible start,
and says in the plan's ``status`` whether the result is proven optimal.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from v2gsim.strategies.dispatch.grid_rows import GridRows, grid_rows
from v2gsim.strategies.dispatch.problem import (
    _TOL_KW,
    DispatchPlan,
    DispatchProblem,
    _energies,
    check_plan,
    evaluate_schedule,
)
from v2gsim.strategies.dispatch.solver import _MIP_REL_GAP, _solve_lp, _solve_mip

__all__ = ["EXACT_TIME_LIMIT_S", "plan_exact", "safe_plan"]


# Default bound on the solver time of one exact plan, s (plan_exact's time_limit_s; the
# centralized strategy's exact_time_limit_s). Only plans that need the MIP come near it; the LP
# alone is far quicker. Measured plan times: bench/README.md.
EXACT_TIME_LIMIT_S = 5.0
_FIX_ROUNDS = 3  # fallback LPs that fix offending steps before every bidirectional step is fixed
_log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class _ExactModel:
    """:func:`plan_exact`'s LP. Columns: p_ch (n*T, vehicle-major), p_dis (n*T), e (n*(T+1)),
    need slack (n), soft-cap slack (T), tracking slacks above / below (T each, with a profile),
    the planned site peak (1, with a peak charge), then a valley fill's and regulation's slacks
    (:mod:`.grid_rows`, with their rows below the others)."""

    prob: DispatchProblem
    c: np.ndarray
    A: sp.csr_array
    lo: np.ndarray
    hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    track_kw: np.ndarray | None
    grid: GridRows | None = None  # a valley fill's floor, regulation reserve (grid_rows)

    @property
    def nT(self) -> int:
        return self.prob.n_vehicles * self.prob.n_steps

    def parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Charge and discharge power (n*T each, >= 0) of a solution."""
        nT = self.nT
        return np.clip(x[:nT], 0.0, None), np.clip(x[nT:2 * nT], 0.0, None)

    def columns(self, p_kw: np.ndarray) -> np.ndarray:
        """The LP's columns for a schedule ``p_kw`` (n, T) that never charges and discharges a
        vehicle at once: its energies and the smallest slacks (a MIP's start; ``c @`` it is the
        schedule's objective)."""
        prob = self.prob
        n = prob.n_vehicles
        p = np.asarray(p_kw, float)
        e = _energies(prob, p)
        _, d = prob.window
        site = p.sum(0)
        cap = prob.p_cap_kw
        parts = [np.maximum(p, 0.0).ravel(), np.maximum(-p, 0.0).ravel(), e.ravel(),
                 np.maximum(prob.need_eff_kwh - e[np.arange(n), d], 0.0),
                 np.where(np.isfinite(cap), np.maximum(site - cap, 0.0), 0.0)]
        if self.track_kw is not None:
            parts += [np.maximum(site - self.track_kw, 0.0), np.maximum(self.track_kw - site, 0.0)]
        if prob.peak_cny_per_kw > 0:
            parts.append(np.array([max(prob.peak_ref_kw, float(site.max(initial=0.0)))]))
        x = np.concatenate(parts)
        return x if self.grid is None else np.concatenate([x, self.grid.slacks(x)])

    def objective(self, p_kw: np.ndarray) -> float:
        return float(self.c @ self.columns(p_kw))

    def arbitrage(self) -> np.ndarray:
        """Vehicle-steps (flat indices) where charging and discharging at once earns money in
        itself: both directions open and the V2G price above the purchase price plus twice the
        wear. The LP relaxation cannot price these right (the cost of a net power is concave
        there), so the MIP gives each a binary from the start."""
        prob = self.prob
        nT = self.nT
        margin = (prob.price_v2g_cny_per_kwh[None, :] - prob.price_buy_cny_per_kwh[None, :]
                  - 2.0 * prob.wear_total_cny_per_kwh[:, None])
        both_open = (self.ub[:nT] > 0) & (self.ub[nT:2 * nT] > 0)
        return np.flatnonzero(both_open & (margin.ravel() > 0))


def _exact_model(prob: DispatchProblem, track_kw, track_cny_per_kwh: float) -> _ExactModel:
    """Minimises ``sum_t dt * (buy_t * p_ch - v2g_t * p_dis + wear * (p_ch + p_dis))`` plus
    penalties for unmet needs, for site net power above the soft cap and (with a profile) for
    deviating from it, subject to the energy balance, energy bounds ``[min(e_min, e0), e_cap]``,
    charger limits while plugged and the hard site limits."""
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    nT = n * T
    o_pc, o_pd, o_e, o_u, o_s = 0, nT, 2 * nT, 2 * nT + n * (T + 1), 2 * nT + n * (T + 1) + n
    o_tr = o_s + T  # tracking slacks: above (T), below (T) the profile
    o_pk = o_tr + (2 * T if track_kw is not None else 0)  # the planned site peak (with a peak charge)
    peak = prob.peak_cny_per_kw > 0
    nv = o_pk + (1 if peak else 0)
    plug = prob.plugged.ravel()
    ii = np.repeat(np.arange(n), T)
    tt = np.tile(np.arange(T), n)

    lb = np.zeros(nv)
    ub = np.full(nv, np.inf)
    ub[o_pc:o_pc + nT] = np.where(plug, np.repeat(prob.p_ch_max_kw, T), 0.0)
    ub[o_pd:o_pd + nT] = np.where(plug, np.repeat(prob.p_dis_max_kw, T), 0.0)
    e_lb = np.repeat(prob.e_lb_kwh, T + 1).reshape(n, T + 1)
    e_ub = np.repeat(prob.e_cap_kwh, T + 1).reshape(n, T + 1)
    e_lb[:, 0] = prob.e0_kwh
    e_ub[:, 0] = prob.e0_kwh
    lb[o_e:o_u] = e_lb.ravel()
    ub[o_e:o_u] = e_ub.ravel()
    cap = prob.p_cap_kw
    ub[o_s:o_tr] = np.where(np.isfinite(cap), np.inf, 0.0)

    c = np.zeros(nv)
    w = np.repeat(prob.wear_total_cny_per_kwh, T)
    c[o_pc:o_pc + nT] = dt * (np.tile(prob.price_buy_cny_per_kwh, n) + w)
    c[o_pd:o_pd + nT] = dt * (w - np.tile(prob.price_v2g_cny_per_kwh, n))
    c[o_u:o_s] = prob.penalty_need_cny_per_kwh
    c[o_s:o_tr] = prob.penalty_request_cny_per_kwh * dt
    c[o_tr:o_pk] = track_cny_per_kwh * dt
    if peak:  # the peak is free up to the billing period's peak so far
        lb[o_pk] = prob.peak_ref_kw
        c[o_pk] = prob.peak_cny_per_kw

    rows, cols, vals, rlo, rhi = [], [], [], [], []
    # Energy balance, row r = i*T + t: e[i,t+1] - e[i,t] - eta_ch dt pc + dt/eta_dis pd = 0
    r = np.arange(nT)
    e_next = o_e + ii * (T + 1) + tt + 1
    rows += [r, r, r, r]
    cols += [e_next, e_next - 1, o_pc + r, o_pd + r]
    vals += [np.ones(nT), -np.ones(nT), -dt * prob.eta_ch[ii], dt / prob.eta_dis[ii]]
    rlo.append(np.zeros(nT))
    rhi.append(np.zeros(nT))
    nrow = nT
    # Site limits (two-sided), one row per step
    r = nrow + tt
    rows += [r, r]
    cols += [o_pc + np.arange(nT), o_pd + np.arange(nT)]
    vals += [np.ones(nT), -np.ones(nT)]
    rlo.append(prob.p_site_min_kw)
    rhi.append(prob.p_site_max_kw)
    nrow += T
    # Soft cap: site net - s_t <= cap_t (only where finite)
    fin = np.flatnonzero(np.isfinite(cap))
    if fin.size:
        sel = np.isin(tt, fin)
        rmap = np.full(T, -1)
        rmap[fin] = nrow + np.arange(fin.size)
        r = rmap[tt[sel]]
        idx = np.flatnonzero(sel)
        rows += [r, r, nrow + np.arange(fin.size)]
        cols += [o_pc + idx, o_pd + idx, o_s + fin]
        vals += [np.ones(idx.size), -np.ones(idx.size), -np.ones(fin.size)]
        rlo.append(np.full(fin.size, -np.inf))
        rhi.append(cap[fin])
        nrow += fin.size
    # Soft need: e[i, d_i] + u_i >= need_i
    need = prob.need_eff_kwh
    has = np.flatnonzero(np.isfinite(need))
    if has.size:
        _, d = prob.window
        r = nrow + np.arange(has.size)
        rows += [r, r]
        cols += [o_e + has * (T + 1) + d[has], o_u + has]
        vals += [np.ones(has.size), np.ones(has.size)]
        rlo.append(need[has])
        rhi.append(np.full(has.size, np.inf))
        nrow += has.size
    tr = None
    if track_kw is not None:
        # site net - above + below = track
        r = nrow + tt
        t_ = np.arange(T)
        rows += [r, r, nrow + t_, nrow + t_]
        cols += [o_pc + np.arange(nT), o_pd + np.arange(nT), o_tr + t_, o_tr + T + t_]
        vals += [np.ones(nT), -np.ones(nT), -np.ones(T), np.ones(T)]
        tr = np.asarray(track_kw, dtype=float)
        rlo.append(tr)
        rhi.append(tr)
        nrow += T
    if peak:
        # site net - peak <= 0, one row per step
        r = nrow + tt
        t_ = np.arange(T)
        rows += [r, r, nrow + t_]
        cols += [o_pc + np.arange(nT), o_pd + np.arange(nT), np.full(T, o_pk)]
        vals += [np.ones(nT), -np.ones(nT), -np.ones(T)]
        rlo.append(np.full(T, -np.inf))
        rhi.append(np.zeros(T))
        nrow += T
    A = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, nv)
    )
    lo, hi = np.concatenate(rlo), np.concatenate(rhi)
    bi = np.repeat(prob.p_dis_max_kw > 0, T)
    g = grid_rows(prob, nv, np.concatenate([o_pc + np.arange(nT), o_pd + np.arange(nT)]), np.concatenate([tt, tt]),
                  np.concatenate([np.ones(nT), -np.ones(nT)]), np.concatenate([bi, bi]),
                  (o_e + np.arange(n * (T + 1))).reshape(n, T + 1))
    if g is not None:
        c, A, lo, hi, lb, ub = g.stack(c, A, lo, hi, lb, ub)
    return _ExactModel(prob, c, A, lo, hi, lb, ub, tr, g)


def _with_binaries(m: _ExactModel, k: np.ndarray):
    """The MIP: one binary z per vehicle-step in ``k`` (flat indices); z = 1 allows charging,
    0 discharging: ``p_ch <= P_ch z``, ``p_dis <= P_dis (1 - z)``. Returns (c, A, lo, hi, lb,
    ub, integer)."""
    nb, nv, nT = k.size, m.c.size, m.nT
    pc_max, pd_max = m.ub[k], m.ub[nT + k]
    r = np.arange(nb)
    extra = sp.csr_array(
        (np.concatenate([np.ones(nb), -pc_max, np.ones(nb), pd_max]),
         (np.concatenate([r, r, nb + r, nb + r]), np.concatenate([k, nv + r, nT + k, nv + r]))),
        shape=(2 * nb, nv + nb))
    A = sp.vstack([sp.hstack([m.A, sp.csr_array((m.A.shape[0], nb))]), extra], format="csr")
    return (np.concatenate([m.c, np.zeros(nb)]), A,
            np.concatenate([m.lo, np.full(2 * nb, -np.inf)]), np.concatenate([m.hi, np.zeros(nb), pd_max]),
            np.concatenate([m.lb, np.zeros(nb)]), np.concatenate([m.ub, np.ones(nb)]),
            np.concatenate([np.zeros(nv, bool), np.ones(nb, bool)]))


def _with_hull(m: _ExactModel, k: np.ndarray):
    """The LP with ``p_ch / P_ch + p_dis / P_dis <= 1`` at the vehicle-steps ``k`` (flat): what
    the binaries imply there (the convex hull of charging or discharging), so a tighter bound
    than the LP's. Returns (c, A, lo, hi, lb, ub)."""
    nb, nT = k.size, m.nT
    r = np.arange(nb)
    rows = sp.csr_array((np.concatenate([1.0 / m.ub[k], 1.0 / m.ub[nT + k]]),
                         (np.concatenate([r, r]), np.concatenate([k, nT + k]))), shape=(nb, m.c.size))
    return (m.c, sp.vstack([m.A, rows], format="csr"), np.concatenate([m.lo, np.full(nb, -np.inf)]),
            np.concatenate([m.hi, np.ones(nb)]), m.lb, m.ub)


def _overlaps(m: _ExactModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A solution's net schedule (n, T) and the vehicle-steps (flat) where it charges and
    discharges at once by more than the solver's tolerance."""
    pc, pd = m.parts(x)
    p = (pc - pd).reshape(m.prob.n_vehicles, m.prob.n_steps)
    return p, np.flatnonzero(np.minimum(pc, pd) > _TOL_KW)


def _rounded_directions(m: _ExactModel, x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Whether each vehicle-step in ``k`` (flat, sorted) should charge (else discharge), from a
    solution ``x`` that may do both at once: each vehicle's charging share ``p_ch / (p_ch +
    p_dis)`` over its steps in ``k`` (0.5 where it does neither) is rounded by error diffusion
    along time, so that a vehicle the LP half-charges and half-discharges over a run of steps
    alternates between the two -- what the optimum does where cycling pays -- rather than taking
    one side throughout (taking the side of the net power gives far dearer plans where cycling
    pays; measured in bench/README.md, exact site plans)."""
    n, T = m.prob.n_vehicles, m.prob.n_steps
    pc, pd = m.parts(x)
    tot = pc[k] + pd[k]
    share = np.full((n, T), np.nan)
    share.ravel()[k] = np.where(tot > _TOL_KW, pc[k] / np.maximum(tot, _TOL_KW), 0.5)
    charge = np.zeros((n, T), bool)
    carry = np.zeros(n)
    for t in range(T):  # the carried error links the steps: a loop over steps, vectorised over vehicles
        on = ~np.isnan(share[:, t])
        f = np.where(on, share[:, t], 0.0)
        charge[:, t] = on & (carry + f >= 0.5)
        carry += f - charge[:, t]
    return charge.ravel()[k]


def _direction_fixed(m: _ExactModel, x: np.ndarray, k: np.ndarray, left) -> np.ndarray | None:
    """The fallback schedule: the LP again with each vehicle-step in ``k`` allowed one direction
    only (:func:`_rounded_directions` of ``x``), and the same for any step that then charges and
    discharges at once, for a few rounds; after those every bidirectional step is fixed, so the
    last LP cannot overlap. Zero power stays feasible throughout, so this fails only if the
    solver does (or the time is up): None."""
    nT = m.nT
    ub = m.ub.copy()
    for rnd in range(_FIX_ROUNDS + 1):
        if rnd == _FIX_ROUNDS:
            k = np.flatnonzero((ub[:nT] > 0) & (ub[nT:2 * nT] > 0))
        charge = _rounded_directions(m, x, k)
        ub[nT + k[charge]] = 0.0
        ub[k[~charge]] = 0.0
        res = _solve_lp(m.c, m.A, m.lo, m.hi, m.lb, ub, time_limit_s=left())
        if res.x is None:
            return None
        x = res.x
        p, k = _overlaps(m, x)
        if k.size == 0:
            return p
    return None  # not reached: the last round leaves no step with both directions open


def plan_exact(
    prob: DispatchProblem, *, time_limit_s: float = EXACT_TIME_LIMIT_S, track_kw: np.ndarray | None = None,
    track_cny_per_kwh: float = 0.0,
) -> DispatchPlan:
    """Optimal per-vehicle plan in which no vehicle charges and discharges in the same step.

    The model (:func:`_exact_model`) has separate charge/discharge/energy variables per vehicle
    and step. Solved as an LP it may charge and discharge a vehicle at once where that pays --
    where the V2G price exceeds the purchase price plus twice the wear (:meth:`_ExactModel.
    arbitrage`; the cost of a net power is not convex there), or to burn energy. So:

    1. The LP (a lower bound on the objective). No such step: the plan, ``"optimal"``.
    2. Otherwise its schedule with each overlap netted (site power unchanged, more energy kept:
       no dearer unless the step is an arbitrage step) is ``"optimal"`` if it keeps every limit
       and its objective is within ``_MIP_REL_GAP`` of the bound.
    3. Otherwise, over the arbitrage and overlapping vehicle-steps: the LP with what a binary
       implies there (:func:`_with_hull`, a tighter bound); the best feasible plan from either
       LP, netted or with those steps fixed to one direction (:func:`_direction_fixed`); then a
       MIP with a binary per such step, started from that plan and stopped by the time limit.
       A step that still overlaps where netting cannot repair it gets a binary too and the MIP
       runs again while time is left.

    The status is honest: ``"optimal"`` (proven within the gap), ``"time_limit_feasible"`` (the
    MIP's best plan when the time limit stopped it; ``objective_bound_cny`` says how far off it
    can be), ``"fallback"`` (no MIP result in time: the fallback plan), or ``"safe"`` (a solve
    failed, or a plan broke a limit -- logged): :func:`safe_plan`. Every plan returned has passed
    :func:`check_plan`.

    Args:
        prob: the problem.
        time_limit_s: bound on the solver time (LP, fallback and MIP together), s; > 0.
        track_kw: (T,) optional profile the summed net power is pulled towards, at a cost of
            ``track_cny_per_kwh`` per kWh of deviation either way (to follow a group's planned
            profile with the group's own vehicles: ``bench/planners.py``).

    Returns:
        DispatchPlan with ``p_kw`` (n, T) etc. (see its docstring).
    """
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0; got {time_limit_s}")
    t0 = time.perf_counter()

    def left() -> float:
        return time_limit_s - (time.perf_counter() - t0)

    m = _exact_model(prob, track_kw, track_cny_per_kwh)

    def done(p, status, bound, n_bin=0):
        plan = evaluate_schedule(prob, p, objective_cny=m.objective(p), status=status,
                                 solve_time_s=time.perf_counter() - t0, n_binary_steps=n_bin,
                                 objective_bound_cny=bound)
        return _checked(prob, plan, t0)

    res = _solve_lp(m.c, m.A, m.lo, m.hi, m.lb, m.ub, time_limit_s=left())
    if res.x is None:
        return _safe(prob, f"the LP failed: {res.message}", t0)
    bound = float(res.fun)
    p, both = _overlaps(m, res.x)
    if both.size == 0:
        return done(p, "optimal", bound)
    k = np.union1d(m.arbitrage(), both)
    starts = [res.x]
    hull = _solve_lp(*_with_hull(m, k), time_limit_s=left())
    if hull.x is not None:
        bound = max(bound, float(hull.fun))
        starts.append(hull.x)

    def proven(obj: float) -> bool:
        return obj - bound <= _MIP_REL_GAP * max(1.0, abs(bound)) + 1e-7

    best, best_obj = None, np.inf
    for x in starts:  # candidates: each relaxation netted, and rounded to one direction per step
        for cand in (_overlaps(m, x)[0], _direction_fixed(m, x, k, left)):
            if cand is not None and m.objective(cand) < best_obj and not check_plan(prob, evaluate_schedule(prob, cand)):
                best, best_obj = cand, m.objective(cand)
    if best is None:
        return _safe(prob, "no feasible fallback within the time limit", t0)
    status, n_bin = ("optimal" if proven(best_obj) else "fallback"), 0
    while status != "optimal" and left() > 0:
        c, A, lo, hi, lb, ub, integer = _with_binaries(m, k)
        x0 = np.concatenate([m.columns(best), (best.ravel()[k] >= 0).astype(float)])
        r = _solve_mip(c, A, lo, hi, lb, ub, integer, x0=x0, time_limit_s=left())
        if r.x is None:
            break
        n_bin = k.size
        bound = max(bound, r.bound)  # the MIP relaxes the problem (binaries on k only): a bound
        p, both = _overlaps(m, r.x[:m.c.size])
        feasible = not check_plan(prob, evaluate_schedule(prob, p))
        if feasible and m.objective(p) < best_obj:
            best, best_obj = p, m.objective(p)
        status = "optimal" if proven(best_obj) else "time_limit_feasible"
        if feasible or not r.optimal:
            break
        k = np.union1d(k, both)  # it overlaps where netting breaks a limit: those get binaries too
    return done(best, status, bound, n_bin)


def safe_plan(prob: DispatchProblem) -> DispatchPlan:
    """A plan that keeps every hard limit by construction, for when a solve fails: each vehicle
    charges (never discharges) at full power from arrival until it reaches its need, each step's
    charging scaled down to the site's import limit. Status ``"safe"``."""
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    plug = prob.plugged
    target = np.minimum(prob.need_eff_kwh, prob.e_cap_kwh)  # -inf: no need, no charging
    e = prob.e0_kwh.copy()
    p = np.zeros((n, T))
    for t in range(T):  # a step depends on the last: a loop over steps, vectorised over vehicles
        want = np.where(plug[:, t], np.clip((target - e) / (prob.eta_ch * dt), 0.0, prob.p_ch_max_kw), 0.0)
        total = want.sum()
        if total > prob.p_site_max_kw[t]:
            want *= prob.p_site_max_kw[t] / total
        p[:, t] = want
        e += prob.eta_ch * want * dt
    plan = evaluate_schedule(prob, p, status="safe")
    penalties = (prob.penalty_need_cny_per_kwh * plan.unmet_need_kwh.sum()
                 + prob.penalty_request_cny_per_kwh * prob.dt_h * plan.cap_shortfall_kw.sum())
    return dataclasses.replace(plan, objective_cny=plan.cost_cny + penalties)


def _safe(prob: DispatchProblem, why: str, t0: float) -> DispatchPlan:
    _log.warning("exact dispatch plan (%d vehicles x %d steps): %s; using the safe plan",
                 prob.n_vehicles, prob.n_steps, why)
    plan = safe_plan(prob)
    problems = check_plan(prob, plan)
    if problems:  # cannot happen: safe_plan keeps the limits by construction
        raise RuntimeError("the safe dispatch plan breaks a limit: " + "; ".join(problems))
    return dataclasses.replace(plan, solve_time_s=time.perf_counter() - t0)


def _checked(prob: DispatchProblem, plan: DispatchPlan, t0: float) -> DispatchPlan:
    """``plan`` if it keeps every limit (:func:`check_plan`), else the safe plan (logged)."""
    problems = check_plan(prob, plan)
    if problems:
        return _safe(prob, f"the {plan.status} plan breaks a limit: " + "; ".join(problems[:3]), t0)
    return plan
