"""Each vehicle's own optimum against the prices: its charge-to and discharge-to levels.

What the value split (:func:`~v2gsim.strategies.dispatch.split.split_value`) steers every
vehicle by: :func:`value_thresholds` solves each vehicle's problem alone, exactly and vectorised
over the vehicles, at prices shifted by what an aggregate plan says the site's limits are worth
(:func:`plan_levels`).
"""

from __future__ import annotations

import numpy as np

from v2gsim.strategies.dispatch.aggregate import AggregatePlan
from v2gsim.strategies.dispatch.problem import DispatchProblem

__all__ = ["VALUE_PRICE_BAND", "value_thresholds", "plan_levels"]

# Price band of a value split around an aggregate plan's site price (value_thresholds' band):
# half to one and a half times it. With alike vehicles under binding limits a band cuts the
# worst cost above the exact plan several-fold (measured: bench/README.md).
VALUE_PRICE_BAND = (0.5, 1.5)


def value_thresholds(
    prob: DispatchProblem, price_shift_cny_per_kwh=None, *, band: tuple[float, float] | None = None,
    banded_shift_cny_per_kwh=None,
) -> np.ndarray:
    """Each vehicle's optimal policy against the prices, alone: charge-to / discharge-to levels.

    Without site limits the dispatch problem splits into one small LP per vehicle: a battery with
    power and energy bounds facing known prices. Its cost-to-go ``V_t(e)`` is convex and
    piecewise linear in the battery energy, and one step back is the infimal convolution of
    ``V_{t+1}`` with the step's cost of moving energy: in slopes, the step adds a segment as long
    as a full-power step's charge at slope ``-(buy + wear) / eta_ch`` and one as long as its
    discharge at ``-(v2g - wear) * eta_dis``, and the energy bounds cut as much off the ends.
    Every slope is one of the step prices (one per distinct price; per vehicle, as efficiencies
    and wear differ) or a terminal one (the need penalty below the need, 0 above), so ``V_t`` is
    held as the cumulative segment lengths over each vehicle's sorted slopes, and the backward
    pass is T vectorised updates over all vehicles: no LP, no loop over vehicles, and exact (no
    energy grid). Vehicles that cannot discharge need no pass: their levels have a closed form
    (:func:`_charge_only_levels`). The optimal move from energy ``e`` in step ``t`` is to charge
    up to where ``V_{t+1}``'s slope reaches the charging cost, or discharge down to where it
    reaches the V2G revenue (a two-level, base-stock policy); ties give a range of optimal levels.

    With ``price_shift_cny_per_kwh`` (T,) -- e.g. :attr:`AggregatePlan.price_shift_cny_per_kwh`,
    the value of site power implied by the site's limits -- both prices are shifted first, so the
    vehicles respond to the limits the aggregate plan saw (a Lagrangian split of the coupled
    problem). A V2G price above the same step's purchase price counts as the purchase price (a
    vehicle cannot charge and discharge at once; the pass needs each step's cost convex). With no
    shift and no site limits the policy is the exact plan (:func:`~v2gsim.strategies.dispatch.exact.plan_exact`'s cost to 1e-9 on
    the random fleets of tests/test_value_split.py).

    With ``band=(a, b)`` (a <= 1 <= b) the levels span the policies for every shift between
    ``a`` and ``b`` times ``banded_shift_cny_per_kwh`` (a part of the shift; default all of it)
    plus the rest of the shift: the lowest levels of the dearer, the highest of the cheaper. An
    aggregate LP misprices its site's limits (its envelopes are a relaxation), and with many
    alike vehicles a slightly wrong price moves them all one way; within the band a split can let
    the planned site power decide instead (:func:`~v2gsim.strategies.dispatch.split.split_value`).
    Two price sets in one pass; no effect where the banded shift is zero.

    Returns:
        (n, T, 4) battery energies, kWh: for the end of step t, the lowest and highest optimal
        level to charge up to, and the lowest and highest optimal level to discharge down to.
    """
    n, T = prob.n_vehicles, prob.n_steps
    shift = np.zeros(T) if price_shift_cny_per_kwh is None else np.asarray(price_shift_cny_per_kwh, float)
    shifts = [shift]
    var = shift if banded_shift_cny_per_kwh is None else np.asarray(banded_shift_cny_per_kwh, float)
    if band is not None and np.any(var):
        lo, hi = band
        if not lo <= 1.0 <= hi:
            raise ValueError(f"band must be (a, b) with a <= 1 <= b; got {band}")
        shifts = [shift + (hi - 1.0) * var, shift + (lo - 1.0) * var]  # the two ends of the band
    # a V2G price above the purchase price of the same step counts as the purchase price: a
    # vehicle cannot charge and discharge at once, and the pass needs each step's cost convex
    buy = [prob.price_buy_cny_per_kwh + sh for sh in shifts]
    v2g = [np.minimum(prob.price_v2g_cny_per_kwh + sh, b) for sh, b in zip(shifts, buy)]
    bi = prob.p_dis_max_kw > 0
    out = np.empty((n, T, 4))
    if not bi.all():
        uni = np.flatnonzero(~bi)
        out[uni] = _widest(*(_charge_only_levels(prob, uni, b) for b in buy))
    if bi.any():  # the price sets in one pass, the vehicles once per set
        bid = np.flatnonzero(bi)
        k, m = bid.size, len(shifts)
        if m == 1:
            out[bid] = _value_pass(prob, bid, buy[0], v2g[0])
        else:
            lv = _value_pass(prob, np.tile(bid, m), np.repeat(np.stack(buy), k, axis=0),
                             np.repeat(np.stack(v2g), k, axis=0))
            out[bid] = _widest(*(lv[i * k:(i + 1) * k] for i in range(m)))
    return out


def _widest(*levels: np.ndarray) -> np.ndarray:
    """The union of optimal ranges: lowest low ends, highest high ends (levels (..., 4))."""
    if len(levels) == 1:
        return levels[0]
    out = np.minimum(*levels)
    out[..., 1::2] = np.maximum(*(lv[..., 1::2] for lv in levels))
    return out


def _charge_only_levels(prob: DispatchProblem, idx: np.ndarray, price: np.ndarray) -> np.ndarray:
    """:func:`value_thresholds` of vehicles that cannot discharge, in closed form.

    With charging only, each step back just takes its charge off the bottom of the cost-to-go,
    so a level's position after the remaining steps is its terminal position less the charge of
    every later step priced at most (or below) the current step's, floored at zero: charge now
    up to the need less what later, cheaper steps can still bring (up to capacity where the
    price plus wear is negative). One matrix product over the steps; the same levels as the
    value pass (tested)."""
    T, dt = prob.n_steps, prob.dt_h
    w = prob.wear_total_cny_per_kwh[idx]
    lb, cap = prob.e_lb_kwh[idx], prob.e_cap_kwh[idx]
    span = cap - lb
    need = prob.need_eff_kwh[idx]
    below = np.minimum(np.maximum(np.where(np.isfinite(need), need, lb) - lb, 0.0), span)
    dt_t = np.asarray(dt, float) if np.ndim(dt) else np.full(T, float(dt))
    c = np.where(prob.plugged[idx], (prob.eta_ch * prob.p_ch_max_kw)[idx, None] * dt_t[None, :], 0.0)
    later = np.arange(T)[:, None] > np.arange(T)[None, :]  # [s, t]: s after t
    at_most = c @ ((price[:, None] <= price[None, :]) & later).astype(float)  # later steps priced <= step t's
    cheaper = c @ ((price[:, None] < price[None, :]) & later).astype(float)
    pays = price[None, :] + w[:, None]  # < 0: energy beyond the need is worth storing
    rest = (span - below)[:, None]
    lo = lb[:, None] + np.maximum(below[:, None] + np.where(pays < 0, rest, 0.0) - at_most, 0.0)
    hi = lb[:, None] + np.maximum(below[:, None] + np.where(pays <= 0, rest, 0.0) - cheaper, 0.0)
    full = np.broadcast_to(cap[:, None], lo.shape)
    return np.stack([lo, hi, full, full], axis=-1)


def _value_pass(prob: DispatchProblem, idx: np.ndarray, buy: np.ndarray, v2g: np.ndarray) -> np.ndarray:
    """:func:`value_thresholds` of the vehicles ``idx`` by the backward pass (see there), for the
    step prices ``buy`` and ``v2g``, (T,) or one row per vehicle."""
    n, T, dt = idx.size, prob.n_steps, prob.dt_h
    # Slopes, one per distinct price (steps with equal prices share one; a TOU day has few):
    # -charging cost per battery kWh, -discharge revenue per battery kWh, the need penalty, zero.
    one_set = buy.ndim == 1  # every vehicle the same prices
    u_b, i_b = _unique_inverse(buy.ravel())
    u_v, i_v = _unique_inverse(v2g.ravel())
    if not one_set:  # each vehicle's price of each step, (n, T)
        i_b, i_v = i_b.reshape(n, T), i_v.reshape(n, T)
    nb, nv = u_b.size, u_v.size
    K = nb + nv + 2
    w = prob.wear_total_cny_per_kwh[idx][:, None]
    S = np.empty((n, K))
    np.divide(-u_b[None, :] - w, prob.eta_ch[idx][:, None], out=S[:, :nb])
    np.multiply(w - u_v[None, :], prob.eta_dis[idx][:, None], out=S[:, nb:nb + nv])
    S[:, -2] = -prob.penalty_need_cny_per_kwh
    S[:, -1] = 0.0
    rows = np.arange(n)[:, None]
    kk = np.arange(K)
    order = np.argsort(S, axis=1, kind="stable")  # per vehicle: efficiencies and wear differ
    rank = np.empty_like(order)
    rank[rows, order] = kk
    # each slope's tie group in the sorted order: [first position, one past the last)
    S_sorted = S[rows, order]
    same = S_sorted[:, 1:] == S_sorted[:, :-1]
    if same.any():
        z = np.zeros((n, 1), bool)
        first = np.maximum.accumulate(np.where(np.concatenate([z, same], 1), 0, kk), axis=1)
        stop = np.minimum.accumulate(np.where(np.concatenate([same, z], 1), K, kk + 1)[:, ::-1], axis=1)[:, ::-1]
        first, stop = first[rows, rank], stop[rows, rank]
    else:
        first, stop = rank, rank + 1
    # V_t as G[:, j], the total length of its segments at the j lowest slopes (j = 0..K); the
    # domain is [lb, cap] at every step (the need is soft: no energy within the bounds is
    # infeasible), so the total is cap - lb throughout. Terminal: the need penalty below the
    # need, nothing above.
    lb, cap = prob.e_lb_kwh[idx], prob.e_cap_kwh[idx]
    need = prob.need_eff_kwh[idx]
    span = cap - lb
    below = np.minimum(np.maximum(np.where(np.isfinite(need), need, lb) - lb, 0.0), span)
    j = np.arange(K + 1)
    G = (np.where(j > rank[:, -2:-1], below[:, None], 0.0)
         + np.where(j > rank[:, -1:], (span - below)[:, None], 0.0))
    dt_t = np.asarray(dt, float) if np.ndim(dt) else np.full(T, float(dt))
    plug = prob.plugged[idx].T
    c_kwh = np.where(plug, dt_t[:, None] * (prob.eta_ch[idx] * prob.p_ch_max_kw[idx])[None, :], 0.0)  # (T, n)
    d_kwh = np.where(plug, dt_t[:, None] * (prob.p_dis_max_kw[idx] / prob.eta_dis[idx])[None, :], 0.0)
    # One step back: a full-power step's charge goes in at the step's charging slope and as much
    # is cut off at the bottom; its discharge at the discharge slope, cut off at the top. In G
    # that is: minus the charge at and below the charging slope's position, plus the discharge
    # above the discharge slope's, clipped to [0, cap - lb]. Masks per distinct price, (n, ., K+1).
    at_or_below_c = j <= rank[:, :nb, None]
    above_d = j > rank[:, nb:nb + nv, None]
    r1 = np.arange(n)
    snap = np.empty((n, T, K + 1))  # G_{t+1}, from which step t's levels are read
    hi = span[:, None]
    for t in range(T - 1, -1, -1):
        snap[:, t] = G
        if one_set:
            m_c, m_d = at_or_below_c[:, i_b[t]], above_d[:, i_v[t]]
        else:
            m_c, m_d = at_or_below_c[r1, i_b[:, t]], above_d[r1, i_v[:, t]]
        np.subtract(G, c_kwh[t][:, None], out=G, where=m_c)
        np.add(G, d_kwh[t][:, None], out=G, where=m_d)
        np.maximum(G, 0.0, out=G)
        np.minimum(G, hi, out=G)
    # the levels: G_{t+1} at the ends of the tie group of step t's charging / discharge slope
    flat = snap.reshape(-1)
    base = (rows * T + np.arange(T)) * (K + 1)  # (n, T): where each G_{t+1} of vehicle i starts
    def at(a, ix):
        return a[:, ix] if one_set else np.take_along_axis(a, ix, 1)

    return np.stack([flat[base + at(first, i_b)], flat[base + at(stop, i_b)],
                     flat[base + at(first, nb + i_v)], flat[base + at(stop, nb + i_v)]], axis=-1) + lb[:, None, None]


def _unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(x, return_inverse=True)`` for a short 1-D array, without its overhead."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.empty(x.size, bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    inv = np.empty(x.size, np.int64)
    inv[order] = np.cumsum(new) - 1
    return xs[new], inv


def plan_levels(
    prob: DispatchProblem, plan: AggregatePlan | None, *, band: tuple[float, float] | None = VALUE_PRICE_BAND
) -> np.ndarray:
    """Each vehicle's levels (:func:`value_thresholds`) at an aggregate plan's prices: its price
    shift, with ``band`` around the part from the hard site limits (the soft cap carries the
    plan's own penalty price, taken as it is). No shift without a plan."""
    if plan is None:
        return value_thresholds(prob)
    return value_thresholds(prob, plan.price_shift_cny_per_kwh, band=band,
                            banded_shift_cny_per_kwh=plan.limit_shift_cny_per_kwh)
