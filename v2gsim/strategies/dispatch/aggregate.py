"""Aggregate plans: LPs over the vehicles' flexibility envelopes instead of every vehicle.

* :func:`plan_aggregate` -- one LP over the fleet's summed envelopes (about 7T variables),
  optionally with interval-energy bounds; its site-limit duals price the limits for the value
  split (:mod:`.levels`).
* :func:`plan_classes` -- one envelope per class of alike vehicles (:func:`fleet_classes`; at most
  :data:`MAX_CLASSES`), the classes sharing the site limits in one LP (:func:`grouped_lp`).

Both are relaxations (energy can move between vehicles of one envelope); :mod:`.split` shares
their power among the vehicles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from v2gsim.strategies.dispatch.grid_rows import grid_rows
from v2gsim.strategies.dispatch.problem import DispatchProblem, subset_problem
from v2gsim.strategies.dispatch.solver import _solve

__all__ = [
    "AggregatePlan",
    "flexibility_envelopes",
    "plan_aggregate",
    "MAX_CLASSES",
    "fleet_classes",
    "ClassPlan",
    "plan_classes",
    "grouped_lp",
]


@dataclass(frozen=True, eq=False)
class AggregatePlan:
    """Fleet-level plan from :func:`plan_aggregate` (all arrays over the horizon).

    Attributes:
        p_kw: (T,) aggregate net grid-side power, kW.
        p_ch_kw, p_dis_kw: (T,) aggregate charge / discharge parts.
        e_kwh: (T + 1,) battery energy of the vehicles present at each step boundary.
        e_lo_kwh, e_hi_kwh: (T + 1,) the flexibility envelope it had to stay within.
        e_departing_kwh: (T + 1,) energy leaving with the vehicles that depart at each boundary.
        envelope_shortfall_kwh: (T + 1,) how far below the lower envelopes (present energy plus
            departing energy) it had to go (soft bounds; > 0 means needs cannot all be met).
        cap_shortfall_kw: (T,) site net power above the soft cap.
        objective_cny: LP objective incl. penalties.
        status, solve_time_s: solver outcome.
        price_shift_cny_per_kwh: (T,) what a kWh of site net power is worth beyond its price in
            each step: minus the duals of the site-limit and soft-cap rows per kWh (> 0 where the
            import limit or the cap binds, < 0 where the export limit binds). Added to both the
            purchase and the V2G price, it lets each vehicle optimise alone against the prices
            the site's limits imply (:func:`~v2gsim.strategies.dispatch.levels.value_thresholds`).
        limit_shift_cny_per_kwh: (T,) the part of that shift from the hard site limits.
    """

    p_kw: np.ndarray
    p_ch_kw: np.ndarray
    p_dis_kw: np.ndarray
    e_kwh: np.ndarray
    e_lo_kwh: np.ndarray
    e_hi_kwh: np.ndarray
    e_departing_kwh: np.ndarray
    envelope_shortfall_kwh: np.ndarray
    cap_shortfall_kw: np.ndarray
    objective_cny: float
    status: str
    solve_time_s: float
    price_shift_cny_per_kwh: np.ndarray | None = None
    limit_shift_cny_per_kwh: np.ndarray | None = None


def flexibility_envelopes(
    prob: DispatchProblem, *, unidirectional_cap_at_need: bool | None = None
) -> dict[str, np.ndarray]:
    """Per-vehicle and fleet flexibility envelopes.

    Returns:
        dict with ``e_hi_kwh`` / ``e_lo_kwh`` (n, T + 1): the highest / lowest battery energy
        vehicle i can have at the start of step t (fastest charging from arrival, capped at
        capacity / fastest discharge down to the reserve, but never below what it needs to still
        reach its need by departure at full power); ``p_ch_max_kw`` / ``p_dis_max_kw`` (T,): the
        plugged fleet's charge / discharge power; ``eta_ch`` / ``eta_dis`` (T,): the
        power-weighted mean efficiencies of the plugged fleet (1 where nobody is plugged).
        With ``unidirectional_cap_at_need`` (default: when all purchase prices are >= 0) the
        upper envelope of vehicles that cannot discharge stops at their need.
    """
    if unidirectional_cap_at_need is None:
        # (a valley fill's floor can pay for energy beyond the need too)
        unidirectional_cap_at_need = bool(np.all(prob.price_buy_cny_per_kwh >= 0)) and prob.p_floor_kw is None
    T, dt = prob.n_steps, prob.dt_h
    a, d = prob.window
    t = np.arange(T + 1)
    if np.ndim(dt) == 0:
        before = np.clip(t[None, :] - a[:, None], 0, (d - a)[:, None])
        after = (d - a)[:, None] - before
        dt_s = dt
    else:  # steps of unequal length (coarsen with a block list): count hours instead of steps
        cum = np.concatenate([[0.0], np.cumsum(dt)])
        tc = np.clip(t[None, :], a[:, None], d[:, None])
        before = cum[tc] - cum[a][:, None]
        after = cum[d][:, None] - cum[tc]
        dt_s = 1.0
    e0 = prob.e0_kwh[:, None]
    ch = (prob.eta_ch * prob.p_ch_max_kw * dt_s)[:, None]
    dis = (prob.p_dis_max_kw * dt_s / prob.eta_dis)[:, None]
    hi = np.minimum(prob.e_cap_kwh[:, None], e0 + ch * before)
    if unidirectional_cap_at_need:
        # A vehicle that cannot discharge gains nothing from energy beyond its need (prices and
        # wear >= 0), and letting the envelope reach capacity makes the aggregate much looser.
        cap_need = np.where(np.isfinite(prob.need_eff_kwh),
                            np.maximum(prob.need_eff_kwh, prob.e0_kwh), prob.e0_kwh)
        uni = (prob.p_dis_max_kw <= 0)[:, None]
        hi = np.where(uni, np.minimum(hi, cap_need[:, None]), hi)
    lo = np.maximum(prob.e_lb_kwh[:, None], e0 - dis * before)
    need = prob.need_eff_kwh[:, None]
    lo = np.maximum(lo, np.where(np.isfinite(need), need - ch * after, -np.inf))
    lo = np.minimum(lo, hi)  # infeasible needs: the soft bound in the LP reports the shortfall
    # the plugged fleet's powers and power-weighted efficiencies per step, in one product
    pch, pdis, w_c, w_d = np.stack(
        [prob.p_ch_max_kw, prob.p_dis_max_kw, prob.p_ch_max_kw * prob.eta_ch, prob.p_dis_max_kw * prob.eta_dis]
    ) @ prob.plugged.astype(float)
    eta_c = np.divide(w_c, pch, out=np.ones(T), where=pch > 0)
    eta_d = np.divide(w_d, pdis, out=np.ones(T), where=pdis > 0)
    return {"e_hi_kwh": hi, "e_lo_kwh": lo, "p_ch_max_kw": pch, "p_dis_max_kw": pdis,
            "eta_ch": eta_c, "eta_dis": eta_d}


def _interval_bounds(
    prob: DispatchProblem, env: dict[str, np.ndarray], chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Sum over vehicles of bounds on ``e_i(t) - e_i(s)``, shape (T + 1, T + 1) each."""
    T, dt = prob.n_steps, prob.dt_h
    a, d = prob.window
    tb = np.arange(T + 1)
    L = np.zeros((T + 1, T + 1))
    U = np.zeros((T + 1, T + 1))
    ch_all = prob.eta_ch * prob.p_ch_max_kw * dt
    dis_all = prob.p_dis_max_kw * dt / prob.eta_dis
    for i0 in range(0, prob.n_vehicles, chunk):
        sl = slice(i0, i0 + chunk)
        before = np.clip(tb[None, :] - a[sl, None], 0, (d[sl] - a[sl])[:, None])
        k = before[:, None, :] - before[:, :, None]  # [i, s, t] plugged steps in [s, t)
        hi, lo = env["e_hi_kwh"][sl], env["e_lo_kwh"][sl]
        u = np.minimum(ch_all[sl, None, None] * k, hi[:, None, :] - lo[:, :, None])
        l_ = np.maximum(-dis_all[sl, None, None] * k, lo[:, None, :] - hi[:, :, None])
        U += u.sum(0)
        L += l_.sum(0)
    return L, U


@dataclass(frozen=True)
class _CsrParts:
    """A CSR matrix as its raw parts (what :func:`_solve_lp` passes to HiGHS)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]
    format = "csr"

    def scipy(self) -> sp.csr_array:
        return sp.csr_array((self.data, self.indices, self.indptr), shape=self.shape)


@lru_cache(maxsize=64)
def _aggregate_structure(T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparsity of the aggregate LP's base rows for T steps, in CSR order: the permutation that
    puts :func:`_aggregate_lp`'s value list in row-major order, the column indices and the row
    pointers (the pattern depends on T only; a strategy re-plans the same T every hour).

    Rows: energy balance (T), site power (T), present-energy envelope (T + 1), departing-energy
    envelope (T + 1), soft cap (T). Columns: Pc (T), Pd (T), E (T + 1), D (T + 1), vE (T + 1),
    vD (T + 1), s (T)."""
    o_pc, o_pd, o_e = 0, T, 2 * T
    o_d = o_e + T + 1
    o_ve = o_d + T + 1
    o_vd = o_ve + T + 1
    o_s = o_vd + T + 1
    t = np.arange(T)
    t1 = np.arange(T + 1)
    r_bal, r_site, r_e, r_d, r_cap = 0, T, 2 * T, 3 * T + 1, 4 * T + 2
    rows = np.concatenate([
        r_bal + t, r_bal + t, r_bal + t, r_bal + t, r_bal + t,
        r_site + t, r_site + t,
        r_e + t1, r_e + t1,
        r_d + t1, r_d + t1,
        r_cap + t, r_cap + t, r_cap + t,
    ])
    cols = np.concatenate([
        o_e + t + 1, o_e + t, o_pc + t, o_pd + t, o_d + t + 1,
        o_pc + t, o_pd + t,
        o_e + t1, o_ve + t1,
        o_d + t1, o_vd + t1,
        o_pc + t, o_pd + t, o_s + t,
    ])
    perm = np.lexsort((cols, rows))
    indices = cols[perm].astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=5 * T + 2))]).astype(np.int32)
    for a in (perm, indices, indptr):  # shared by every call through the cache
        a.setflags(write=False)
    return perm, indices, indptr


def _aggregate_lp(prob: DispatchProblem, interval_bounds: bool):
    """Arrays of the aggregate LP of :func:`plan_aggregate` and its variable offsets."""
    T, dt = prob.n_steps, prob.dt_h
    env = flexibility_envelopes(prob)
    a, d = prob.window
    active = d > a
    tb = np.arange(T + 1)
    present = active[:, None] & (tb[None, :] >= a[:, None]) & (tb[None, :] < d[:, None])
    departs = active[:, None] & (tb[None, :] == d[:, None])
    arrives = active[:, None] & (tb[None, :] == a[:, None])
    lo_i, hi_i = env["e_lo_kwh"], env["e_hi_kwh"]
    e_lo = (lo_i * present).sum(0)
    e_hi = (hi_i * present).sum(0)
    d_lo = (lo_i * departs).sum(0)
    d_hi = (hi_i * departs).sum(0)
    e_arr = (prob.e0_kwh[:, None] * arrives).sum(0)
    # variables: Pc (T), Pd (T), E (T+1), D (T+1), vE (T+1), vD (T+1), s (T)
    o_pc, o_pd, o_e = 0, T, 2 * T
    o_d = o_e + T + 1
    o_ve = o_d + T + 1
    o_vd = o_ve + T + 1
    o_s = o_vd + T + 1
    nv = o_s + T
    cap = prob.p_cap_kw
    lb = np.zeros(nv)
    ub = np.full(nv, np.inf)
    ub[o_pc:o_pd] = env["p_ch_max_kw"]
    ub[o_pd:o_e] = env["p_dis_max_kw"]
    ub[o_e:o_d] = e_hi
    lb[o_e] = ub[o_e] = e_arr[0]  # vehicles present at the start, with their current energy
    ub[o_d:o_ve] = d_hi
    ub[o_d] = 0.0  # departures at t = 0 are vehicles with no plugged step: excluded
    ub[o_ve] = 0.0
    ub[o_vd] = 0.0
    ub[o_s:] = np.where(np.isfinite(cap), np.inf, 0.0)
    # per-step wear price of the plugged fleet, weighted by charger power (the constant alone
    # when there is no per-vehicle part)
    wv = prob.wear_vehicle_cny_per_kwh
    w = np.full(T, prob.wear_cny_per_kwh)
    if np.any(wv > 0):
        plug_f = prob.plugged.astype(float)
        wgt = plug_f.T @ np.maximum(prob.p_ch_max_kw, prob.p_dis_max_kw)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = w + np.where(wgt > 0, (plug_f.T @ (wv * np.maximum(prob.p_ch_max_kw, prob.p_dis_max_kw))) / wgt, 0.0)
    c = np.zeros(nv)
    c[o_pc:o_pd] = dt * (prob.price_buy_cny_per_kwh + w)
    c[o_pd:o_e] = dt * (w - prob.price_v2g_cny_per_kwh)
    c[o_ve:o_s] = prob.penalty_need_cny_per_kwh
    c[o_s:] = prob.penalty_request_cny_per_kwh * dt
    ones, ones1 = np.ones(T), np.ones(T + 1)
    perm, indices, indptr = _aggregate_structure(T)
    vals = np.concatenate([
        ones, -ones, -dt * env["eta_ch"], dt / env["eta_dis"], ones,
        ones, -ones,
        ones1, ones1,
        ones1, ones1,
        ones, -ones, -ones,
    ])
    # the solver takes the CSR parts as they are; scipy's constructor checks cost as much as a
    # small LP's solve, so the matrix is wrapped only where it is combined with others
    A = _CsrParts(vals[perm], indices, indptr, (5 * T + 2, nv))
    lo = np.concatenate([e_arr[1:], prob.p_site_min_kw, e_lo, d_lo, np.full(T, -np.inf)])
    hi = np.concatenate([e_arr[1:], prob.p_site_max_kw, np.full(2 * (T + 1), np.inf),
                         np.where(np.isfinite(cap), cap, np.inf)])
    if interval_bounds:
        r0 = A.shape[0]
        rows2, cols2, vals2, lo2, hi2, c2, lb2, ub2 = _interval_block(prob, env, o_pc, o_pd, nv)
        A2 = sp.csr_array((vals2, (r0 + rows2, cols2)), shape=(r0 + lo2.size, nv + c2.size))
        A = sp.vstack([sp.hstack([A.scipy(), sp.csr_array((r0, c2.size))]), A2[r0:]], format="csr")
        c, lo, hi = np.concatenate([c, c2]), np.concatenate([lo, lo2]), np.concatenate([hi, hi2])
        lb, ub = np.concatenate([lb, lb2]), np.concatenate([ub, ub2])
    g = grid_rows(prob, c.size, np.concatenate([o_pc + np.arange(T), o_pd + np.arange(T)]),
                  np.concatenate([np.arange(T), np.arange(T)]), np.concatenate([ones, -ones]))
    if g is not None:  # a valley fill's floor, regulation reserve (before the peak rows: their duals are the last T)
        n_rows0 = A.shape[0]
        c, A, lo, hi, lb, ub = g.stack(c, A, lo, hi, lb, ub)
    if prob.peak_cny_per_kw > 0:
        # the planned site peak z >= Pc_t - Pd_t, free up to the billing period's peak so far
        # (DispatchProblem.peak_cny_per_kw)
        A0 = A.scipy() if isinstance(A, _CsrParts) else A
        r0, n0 = A0.shape
        t_ = np.arange(T)
        rows_pk = np.concatenate([t_, t_, t_])
        cols_pk = np.concatenate([o_pc + t_, o_pd + t_, np.full(T, n0)])
        vals_pk = np.concatenate([ones, -ones, -ones])
        A = sp.vstack([sp.hstack([A0, sp.csr_array((r0, 1))]),
                       sp.csr_array((vals_pk, (rows_pk, cols_pk)), shape=(T, n0 + 1))], format="csr")
        c = np.concatenate([c, [prob.peak_cny_per_kw]])
        lo, hi = np.concatenate([lo, np.full(T, -np.inf)]), np.concatenate([hi, np.zeros(T)])
        lb, ub = np.concatenate([lb, [prob.peak_ref_kw]]), np.concatenate([ub, [np.inf]])
    off = {"pc": o_pc, "pd": o_pd, "e": o_e, "d": o_d, "ve": o_ve, "vd": o_vd, "s": o_s,
           "floor_rows": n_rows0 + g.floor_rows if g is not None else np.empty(0, np.int64),
           "floor_steps": g.floor_steps if g is not None else np.empty(0, np.int64)}
    return c, A, lo, hi, lb, ub, off, e_lo, e_hi


def _interval_block(prob: DispatchProblem, env: dict[str, np.ndarray], o_pc: int, o_pd: int, col0: int):
    """The interval bounds of the aggregate LP for the vehicles of ``prob`` (envelopes ``env``),
    whose summed charge / discharge columns start at ``o_pc`` / ``o_pd``: cumulative battery
    energy ``Y_t`` into them (new columns from ``col0``), and for every interval [s, t) of steps
    the sums of the per-vehicle bounds on ``e_i(t) - e_i(s)``. This stops one vehicle's charger
    from being used for another vehicle's energy in a cheap window (the sum-of-envelopes
    relaxation's main looseness). Upper bounds hard (zero power satisfies them), lower ones soft.

    Returns the new rows as triplets (rows from 0, columns, values), their bounds, and the new
    columns' costs and bounds."""
    T, dt = prob.n_steps, prob.dt_h
    if np.ndim(dt) > 0:
        raise ValueError("interval_bounds needs steps of equal length")
    L, U = _interval_bounds(prob, env)
    t = np.arange(T)
    ones = np.ones(T)
    s_idx, t_idx = np.triu_indices(T + 1, k=1)
    K = s_idx.size
    o_y, o_w = col0, col0 + T + 1
    lb = np.zeros(T + 1 + K)
    ub = np.full(T + 1 + K, np.inf)
    ub[0] = 0.0
    lb[1:T + 1] = -np.inf
    c = np.concatenate([np.zeros(T + 1), np.full(K, prob.penalty_need_cny_per_kwh)])
    k = np.arange(K)
    rows = np.concatenate([t, t, t, t, T + k, T + k, T + K + k, T + K + k, T + K + k])
    cols = np.concatenate([o_y + t + 1, o_y + t, o_pc + t, o_pd + t, o_y + t_idx, o_y + s_idx,
                           o_y + t_idx, o_y + s_idx, o_w + k])
    vals = np.concatenate([ones, -ones, -dt * env["eta_ch"], dt / env["eta_dis"],
                           np.ones(K), -np.ones(K), np.ones(K), -np.ones(K), np.ones(K)])
    lo = np.concatenate([np.zeros(T), np.full(K, -np.inf), L[s_idx, t_idx]])
    hi = np.concatenate([np.zeros(T), U[s_idx, t_idx], np.full(K, np.inf)])
    return rows, cols, vals, lo, hi, c, lb, ub


def plan_aggregate(prob: DispatchProblem, *, interval_bounds: bool = True) -> AggregatePlan:
    """LP over the aggregate flexibility of the fleet (about 7T variables instead of 3nT).

    The state is the energy of the vehicles *present* at each step boundary,
    ``E_t = sum_{i: a_i <= t < d_i} e_i(t)``. Arrivals add their arrival energy; departures remove
    an energy ``D_t`` (a variable) that must lie within the departing vehicles' envelopes at
    departure, so energy cannot be taken back from a vehicle that has left. ``E_t`` stays within the
    sums of the present vehicles' envelopes (:func:`flexibility_envelopes`); the lower bounds of
    ``E_t`` and ``D_t`` are soft (penalty per kWh, reported). Charge / discharge power stays within
    the plugged fleet's totals with power-weighted mean efficiencies; site limits are hard; the soft
    cap is as in the exact plan. With ``interval_bounds`` (default) the net battery energy into
    the fleet over every interval of steps is also bounded by the sum of what the vehicles can
    take or give in that interval (T(T+1)/2 two-term rows). It is still a relaxation (energy can
    move between vehicles present together): split the result among the vehicles
    (:mod:`v2gsim.strategies.dispatch.split`).
    """
    t0 = time.perf_counter()
    T = prob.n_steps
    cap = prob.p_cap_kw
    c, A, lo, hi, lb, ub, off, e_lo, e_hi = _aggregate_lp(prob, interval_bounds)
    o_pc, o_pd, o_e, o_d, o_ve, o_vd, o_s = (off[k] for k in ("pc", "pd", "e", "d", "ve", "vd", "s"))
    res = _solve(c, A, lo, hi, lb, ub)
    if res.x is None:
        raise RuntimeError(f"aggregate dispatch LP failed: {res.message}")
    x = res.x
    pc = np.maximum(x[o_pc:o_pd], 0.0)
    pd = np.maximum(x[o_pd:o_e], 0.0)
    p = pc - pd
    y = res.row_dual
    limit_shift = -y[T:2 * T] / prob.dt_h  # site-limit rows
    shift = limit_shift - y[4 * T + 2:5 * T + 2] / prob.dt_h  # and the soft-cap rows
    if prob.peak_cny_per_kw > 0:  # and the peak rows (the last T): what a kW more at the peak costs
        shift = shift - y[y.size - T:] / prob.dt_h
    if off["floor_rows"].size:  # and a valley fill's floor: what a kWh more in its window earns
        fs = off["floor_steps"]
        shift[fs] = shift[fs] - y[off["floor_rows"]] / np.broadcast_to(np.asarray(prob.dt_h, float), (T,))[fs]
    return AggregatePlan(
        p_kw=p, p_ch_kw=pc, p_dis_kw=pd, e_kwh=x[o_e:o_d], e_lo_kwh=e_lo, e_hi_kwh=e_hi,
        e_departing_kwh=x[o_d:o_ve],
        envelope_shortfall_kwh=np.maximum(x[o_ve:o_vd], 0.0) + np.maximum(x[o_vd:o_s], 0.0),
        cap_shortfall_kw=np.maximum(p - cap, 0.0), objective_cny=float(res.fun),
        status="optimal" if res.status == 0 else str(res.message),
        solve_time_s=time.perf_counter() - t0, price_shift_cny_per_kwh=shift,
        limit_shift_cny_per_kwh=limit_shift,
    )


# Classes of a class plan (:func:`fleet_classes`): an LP of about 7 x classes x T variables.
MAX_CLASSES = 96
# (departure bins, arrival bins) tried in turn until there are at most max_classes cells of them
_CLASS_CELLS = ((16, 8), (16, 4), (12, 4), (8, 2), (4, 1), (2, 1), (1, 1))


def _value_bins(x: np.ndarray, k: int) -> np.ndarray:
    """Bin of each value: its rank among the distinct values if there are at most ``k``, else
    one of ``k`` equal-count bins (equal values share a bin)."""
    u = np.unique(x)
    if u.size <= k:
        return np.searchsorted(u, x)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, k + 1)[1:-1], method="lower"))
    return np.searchsorted(edges, x, side="right")


def _rank_bins(x: np.ndarray, k: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Equal-count bins of ``x`` within each cell: ``k`` (per entry) bins by rank."""
    order = np.lexsort((x, cell))
    c = cell[order]
    i = np.arange(c.size)
    first = np.r_[True, c[1:] != c[:-1]]
    pos = i - np.maximum.accumulate(np.where(first, i, 0))
    out = np.empty(c.size, np.int64)
    out[order] = pos * k[order] // np.bincount(c)[c]
    return out


def fleet_classes(prob: DispatchProblem, max_classes: int = MAX_CLASSES) -> np.ndarray:
    """Class of each vehicle (n,), 0..G-1 with G <= ``max_classes`` (-1: no plugged step).

    Vehicles of a class are alike as the aggregate LP sees them: in the same departure and
    arrival bins, all able to discharge or none, and close in their energy need and discharge
    headroom counted in hours of their own full power (``(need - e0) / (eta_ch * p_ch)`` and
    ``(e0 - reserve) * eta_dis / p_dis``). Why: the sum of the envelopes of vehicles whose
    feasible schedules are scaled copies of one another (same window, same energies in hours of
    their power) *is* their joint flexibility; the fleet-wide sum is not, and under a binding
    site limit its plan lets energy be delivered that no vehicle can take before it leaves.

    The cells (departure bin x arrival bin x can discharge) are as fine as ``max_classes``
    allows (``_CLASS_CELLS``, finest first; a bin holds equal values together); the classes
    left over go to the cells in proportion to their vehicles, each cell cut into equal-count
    bins by need (charge-only) or by need and then headroom (bidirectional)."""
    n = prob.n_vehicles
    a, d = prob.window
    act = np.flatnonzero(d > a)
    lab = np.full(n, -1, np.int64)
    if act.size == 0:
        return lab
    need = np.where(np.isfinite(prob.need_eff_kwh), prob.need_eff_kwh, prob.e0_kwh)[act]
    e0 = prob.e0_kwh[act]
    pch, pdis = prob.p_ch_max_kw[act], prob.p_dis_max_kw[act]
    bi = pdis > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_h = np.where(pch > 0, np.maximum(need - e0, 0.0) / (prob.eta_ch[act] * pch), np.inf)
        head_h = np.where(bi, np.maximum(e0 - prob.e_lb_kwh[act], 0.0) * prob.eta_dis[act] / pdis, 0.0)
    for dep_k, arr_k in _CLASS_CELLS:
        _, cell = np.unique(np.stack([_value_bins(d[act], dep_k), _value_bins(a[act], arr_k), bi]), axis=1,
                            return_inverse=True)
        cell = cell.reshape(-1)
        n_cells = int(cell.max()) + 1
        if n_cells <= max_classes:
            break
    else:  # fewer classes than kinds of vehicle: one class
        cell, n_cells = np.zeros(act.size, np.int64), 1
    size = np.bincount(cell)
    k = (1 + (max(max_classes - n_cells, 0) * size) // act.size)[cell]  # classes per cell
    k_gap = np.where(bi, np.ceil(np.sqrt(k)).astype(np.int64), k)
    gb = _rank_bins(gap_h, k_gap, cell)
    _, sub = np.unique(np.stack([cell, gb]), axis=1, return_inverse=True)
    hb = _rank_bins(head_h, np.maximum(k // k_gap, 1), sub.reshape(-1))
    _, g = np.unique(np.stack([cell, gb, hb]), axis=1, return_inverse=True)
    lab[act] = g.reshape(-1)
    return lab


@dataclass(frozen=True, eq=False)
class ClassPlan:
    """Plan of :func:`plan_classes`.

    Attributes:
        labels: (n,) class of each vehicle (-1: not planned).
        p_class_kw: (G, T) each class's planned net power, kW.
        p_kw: (T,) the site's planned net power (their sum), kW.
        objective_cny: the LP's objective incl. penalties.
        status, solve_time_s: solver outcome.
    """

    labels: np.ndarray
    p_class_kw: np.ndarray
    p_kw: np.ndarray
    objective_cny: float
    status: str
    solve_time_s: float


def plan_classes(prob: DispatchProblem, *, max_classes: int = MAX_CLASSES, labels: np.ndarray | None = None) -> ClassPlan:
    """Aggregate plan with one flexibility envelope per class of alike vehicles
    (:func:`fleet_classes`): the aggregate model of :func:`plan_aggregate` per class, the classes
    sharing the hard site limits and the soft cap in one LP (:func:`grouped_lp`; about
    ``7 * classes * T`` variables however large the fleet). Split it per step with
    :func:`~v2gsim.strategies.dispatch.split.split_classes`."""
    t0 = time.perf_counter()
    lab = fleet_classes(prob, max_classes) if labels is None else np.asarray(labels)
    P, res = grouped_lp(prob, lab)
    return ClassPlan(labels=lab, p_class_kw=P, p_kw=P.sum(0), objective_cny=float(res.fun),
                     status="optimal" if res.status == 0 else str(res.message),
                     solve_time_s=time.perf_counter() - t0)


def grouped_lp(prob: DispatchProblem, labels: np.ndarray, *, interval_bounds: bool = False):
    """Solve the aggregate LP with one envelope per group (``labels``, -1: left out), built for
    all groups at once: each group's sums (envelopes, powers, efficiencies, wear) are one matrix
    product over the vehicles, and every group has the same rows as :func:`plan_aggregate`'s LP
    (energy balance, present and departing energy within the envelopes, lower bounds soft) but
    none of its own site or cap rows; the site limits and the soft cap are shared rows. With
    ``interval_bounds`` each group also gets :func:`plan_aggregate`'s interval-energy bounds (the
    class plan does not use them; the grouped planners of ``bench/planners.py`` do).

    Returns ``(P, result)``: each group's net power (G, T), kW, and the solver's result."""
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    lab = np.asarray(labels)
    G = int(lab.max()) + 1 if n and lab.size else 0
    if G == 0:
        return np.zeros((0, T)), SimpleNamespace(fun=0.0, status=0, message="no groups", x=np.zeros(0))
    M = sp.csr_array((np.ones(int((lab >= 0).sum())), (lab[lab >= 0], np.flatnonzero(lab >= 0))), shape=(G, n))
    env = flexibility_envelopes(prob)
    a, d = prob.window
    active = d > a
    tb = np.arange(T + 1)
    present = active[:, None] & (tb[None, :] >= a[:, None]) & (tb[None, :] < d[:, None])
    departs = active[:, None] & (tb[None, :] == d[:, None])
    arrives = active[:, None] & (tb[None, :] == a[:, None])
    lo_i, hi_i = env["e_lo_kwh"], env["e_hi_kwh"]
    e_lo, e_hi = M @ (lo_i * present), M @ (hi_i * present)  # (G, T + 1)
    d_lo, d_hi = M @ (lo_i * departs), M @ (hi_i * departs)
    e_arr = M @ (prob.e0_kwh[:, None] * arrives)
    plug = prob.plugged.astype(float)
    pch, pdis = M @ (prob.p_ch_max_kw[:, None] * plug), M @ (prob.p_dis_max_kw[:, None] * plug)  # (G, T)
    eta_c = np.divide(M @ ((prob.p_ch_max_kw * prob.eta_ch)[:, None] * plug), pch, out=np.ones((G, T)), where=pch > 0)
    eta_d = np.divide(M @ ((prob.p_dis_max_kw * prob.eta_dis)[:, None] * plug), pdis, out=np.ones((G, T)), where=pdis > 0)
    w = np.full((G, T), prob.wear_cny_per_kwh)
    wv = prob.wear_vehicle_cny_per_kwh
    if np.any(wv > 0):  # each group's per-vehicle wear, weighted by charger power, per step
        pm = np.maximum(prob.p_ch_max_kw, prob.p_dis_max_kw)
        wgt = M @ (pm[:, None] * plug)
        w = w + np.divide(M @ ((wv * pm)[:, None] * plug), wgt, out=np.zeros((G, T)), where=wgt > 0)
    dt_t = np.broadcast_to(np.asarray(dt, float), (T,))
    # per group: columns Pc (T), Pd (T), E (T+1), D (T+1), vE (T+1), vD (T+1); rows: balance (T),
    # present-energy envelope (T+1), departing-energy envelope (T+1)
    nc, nr = 6 * T + 4, 3 * T + 2
    o_pc, o_pd, o_e, o_d, o_ve, o_vd = 0, T, 2 * T, 3 * T + 1, 4 * T + 2, 5 * T + 3
    t, t1 = np.arange(T), np.arange(T + 1)
    rows = np.concatenate([t, t, t, t, t, T + t1, T + t1, 2 * T + 1 + t1, 2 * T + 1 + t1])
    cols = np.concatenate([o_e + t + 1, o_e + t, o_pc + t, o_pd + t, o_d + t + 1,
                           o_e + t1, o_ve + t1, o_d + t1, o_vd + t1])
    one, one1 = np.ones((G, T)), np.ones((G, T + 1))
    vals = np.concatenate([one, -one, -dt_t * eta_c, dt_t / eta_d, one, one1, one1, one1, one1], axis=1)
    g0 = np.arange(G)[:, None]
    R, C, V = [(rows + g0 * nr).ravel()], [(cols + g0 * nc).ravel()], [vals.ravel()]
    lb = np.zeros((G, nc))
    ub = np.full((G, nc), np.inf)
    ub[:, o_pc:o_pd], ub[:, o_pd:o_e] = pch, pdis
    ub[:, o_e:o_d] = e_hi
    lb[:, o_e] = ub[:, o_e] = e_arr[:, 0]  # present at the start, with their current energy
    ub[:, o_d:o_ve] = d_hi
    ub[:, o_d] = ub[:, o_ve] = ub[:, o_vd] = 0.0  # departures at t = 0: no plugged step
    c = np.zeros((G, nc))
    c[:, o_pc:o_pd] = dt_t * (prob.price_buy_cny_per_kwh + w)
    c[:, o_pd:o_e] = dt_t * (w - prob.price_v2g_cny_per_kwh)
    c[:, o_ve:] = prob.penalty_need_cny_per_kwh
    lo = np.concatenate([e_arr[:, 1:], e_lo, d_lo], axis=1)
    hi = np.concatenate([e_arr[:, 1:], np.full((G, 2 * (T + 1)), np.inf)], axis=1)
    c, lb, ub, lo, hi = (x.ravel() for x in (c, lb, ub, lo, hi))
    nv, nrow = G * nc, G * nr
    if interval_bounds:  # each group's interval bounds, after all groups' columns and rows
        extra = []
        for g in range(G):
            idx = np.flatnonzero(lab == g)
            sub = subset_problem(prob, idx)
            env_g = {k: env[k][idx] for k in ("e_lo_kwh", "e_hi_kwh")}
            env_g.update(eta_ch=eta_c[g], eta_dis=eta_d[g])
            r2, c2, v2, lo2, hi2, cc, lb2, ub2 = _interval_block(sub, env_g, g * nc + o_pc, g * nc + o_pd, nv)
            R.append(nrow + r2), C.append(c2), V.append(v2)
            extra.append((lo2, hi2, cc, lb2, ub2))
            nv, nrow = nv + cc.size, nrow + lo2.size
        lo, hi, c, lb, ub = (np.concatenate([x] + [e[i] for e in extra]) for i, x in enumerate((lo, hi, c, lb, ub)))
    # shared rows: site limits (T), soft cap (T) with its slack S (T) after all columns
    cap = prob.p_cap_kw
    fin = np.isfinite(cap)
    gc = np.repeat(np.arange(G) * nc, T)
    tt = np.tile(t, G)
    for r0 in (nrow, nrow + T):
        R += [r0 + tt, r0 + tt]
        C += [gc + o_pc + tt, gc + o_pd + tt]
        V += [np.ones(G * T), -np.ones(G * T)]
    R.append(nrow + T + t), C.append(nv + t), V.append(-np.ones(T))
    A = sp.csr_array((np.concatenate(V), (np.concatenate(R), np.concatenate(C))), shape=(nrow + 2 * T, nv + T))
    lo = np.concatenate([lo, prob.p_site_min_kw, np.full(T, -np.inf)])
    hi = np.concatenate([hi, prob.p_site_max_kw, np.where(fin, cap, np.inf)])
    lb = np.concatenate([lb, np.zeros(T)])
    ub = np.concatenate([ub, np.where(fin, np.inf, 0.0)])
    c = np.concatenate([c, np.full(T, prob.penalty_request_cny_per_kwh) * dt_t])
    res = _solve(c, A, lo, hi, lb, ub)
    if res.x is None:
        raise RuntimeError(f"grouped aggregate dispatch LP failed: {res.message}")
    x = res.x[:G * nc].reshape(G, nc)
    return np.clip(x[:, o_pc:o_pd], 0.0, None) - np.clip(x[:, o_pd:o_e], 0.0, None), res
