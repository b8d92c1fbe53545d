"""Splits of a plan among the vehicles plugged in a step, and the choice between two splits.

* :func:`split_llf` / :func:`split_llf_segments` -- a site (or each class) power shared least
  laxity first;
* :func:`split_value` -- every vehicle towards its own optimal levels (:mod:`.levels`), the site
  taking the plan's power where they are indifferent;
* :func:`split_classes` -- a class plan's power per class, least laxity first among its members;
* :func:`need_floor_kwh` -- what each vehicle must gain now so that vehicles leaving together
  can all still reach their needs under the site's import limit (both splits above keep it);
* :func:`split_powers` runs a per-step split over a horizon (:func:`value_step`,
  :func:`classes_step`), and :func:`classes_do_better` compares the two splits of a re-plan.

Each split is vectorised over the vehicles (sorts and cumulative sums), never a loop over them.
"""

from __future__ import annotations

import numpy as np

from v2gsim.strategies.dispatch.aggregate import AggregatePlan, ClassPlan
from v2gsim.strategies.dispatch.levels import VALUE_PRICE_BAND, plan_levels
from v2gsim.strategies.dispatch.problem import _TOL_KW, DispatchProblem, schedule_score

__all__ = [
    "split_llf",
    "split_llf_segments",
    "split_value",
    "need_floor_kwh",
    "split_classes",
    "split_powers",
    "value_step",
    "classes_step",
    "classes_do_better",
]


def _fill(amount: float, cap: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Give ``amount`` to entries in ``order``, each up to ``cap``; vectorised greedy fill."""
    out = np.zeros_like(cap)
    if amount <= 0 or order.size == 0:
        return out
    c = cap[order]
    before = np.cumsum(c) - c
    out[order] = np.clip(amount - before, 0.0, c)
    return out


def _laxity(e_kwh, need_kwh, steps_left, ch_step_kwh) -> np.ndarray:
    """Steps left before departure minus the full-power charging steps still needed to reach the
    need (+inf without a need, -inf where the need cannot be charged at all)."""
    has_need = np.isfinite(need_kwh)
    gap = np.where(has_need, need_kwh, 0.0) - e_kwh
    with np.errstate(divide="ignore", invalid="ignore"):
        steps_needed = np.where(gap > 0, gap / ch_step_kwh, 0.0)
    lax = np.where(has_need, steps_left - steps_needed, np.inf)
    return np.where(np.isnan(lax), -np.inf, lax)  # need > e with no charging power


def _fill_seg(amount: np.ndarray, cap: np.ndarray, order: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """:func:`_fill` in every segment at once: segment ``s`` gives ``amount[s]`` to its entries in
    ``order`` (sorted by segment first), each up to ``cap``."""
    out = np.zeros_like(cap)
    if order.size == 0:
        return out
    c = cap[order]
    g = seg[order]
    before = np.cumsum(c) - c
    first = np.empty(g.size, bool)
    first[0] = True
    np.not_equal(g[1:], g[:-1], out=first[1:])
    before -= np.maximum.accumulate(np.where(first, before, 0.0))  # from each segment's start
    out[order] = np.clip(amount[g] - before, 0.0, c)
    return out


def split_llf(
    target_kw: float,
    e_kwh: np.ndarray,
    *,
    e_cap_kwh: np.ndarray,
    e_lb_kwh: np.ndarray,
    need_kwh: np.ndarray,
    steps_left: np.ndarray,
    p_ch_max_kw: np.ndarray,
    p_dis_max_kw: np.ndarray,
    eta_ch: np.ndarray,
    eta_dis: np.ndarray,
    dt_h: float,
    p_site_max_kw: float = np.inf,
    store_in_unidirectional: bool = False,
) -> np.ndarray:
    """Split one step's site power target among the vehicles plugged now, least laxity first.

    Vectorised over vehicles (a sort and cumulative sums; no loop). Every vehicle first gets the
    charging it *must* have now to still reach its need at full power over the steps left; if the
    target is higher, the rest goes towards unmet needs, least laxity first, then into spare
    capacity (bidirectional vehicles first, their energy can be sold later; vehicles that cannot
    discharge only with ``store_in_unidirectional``); if it is lower, vehicles discharge (up to
    discharge power, the reserve ``e_lb_kwh``, and without endangering their need), most laxity
    first. The sum never exceeds ``p_site_max_kw``, even if the mandatory charging would.
    Laxity = steps left - full-power charging steps still needed. (:func:`split_llf_segments`
    with one segment.)

    Args:
        target_kw: site net power wanted this step, kW (> 0 charging).
        e_kwh: battery energy now (k,), kWh.
        e_cap_kwh, e_lb_kwh: capacity and lowest allowed energy (k,), kWh.
        need_kwh: energy wanted at departure (k,), kWh; ``-inf`` (or NaN) for no need.
        steps_left: steps from this one to departure (k,), >= 1 (this step included).
        p_ch_max_kw, p_dis_max_kw: charger power and discharge power (0: cannot) (k,), kW.
        eta_ch, eta_dis: efficiencies (k,).
        dt_h: step length, h.
        p_site_max_kw: site import limit this step, kW.
        store_in_unidirectional: allow surplus charging of vehicles that cannot discharge.

    Returns:
        (k,) grid-side power per vehicle, kW.
    """
    return split_llf_segments(
        np.array([float(target_kw)]), np.zeros(e_kwh.size, np.int64), e_kwh, e_cap_kwh=e_cap_kwh,
        e_lb_kwh=e_lb_kwh, need_kwh=need_kwh, steps_left=steps_left, p_ch_max_kw=p_ch_max_kw,
        p_dis_max_kw=p_dis_max_kw, eta_ch=eta_ch, eta_dis=eta_dis, dt_h=dt_h,
        p_segment_max_kw=np.array([float(p_site_max_kw)]), store_in_unidirectional=store_in_unidirectional)


def split_llf_segments(
    target_kw: np.ndarray,
    segment: np.ndarray,
    e_kwh: np.ndarray,
    *,
    e_cap_kwh: np.ndarray,
    e_lb_kwh: np.ndarray,
    need_kwh: np.ndarray,
    steps_left: np.ndarray,
    p_ch_max_kw: np.ndarray,
    p_dis_max_kw: np.ndarray,
    eta_ch: np.ndarray,
    eta_dis: np.ndarray,
    dt_h: float,
    p_segment_max_kw: np.ndarray | None = None,
    floor_kwh: np.ndarray | None = None,
    store_in_unidirectional: bool = False,
) -> np.ndarray:
    """:func:`split_llf` in several segments of the vehicles at once: segment ``s`` (the vehicles
    with ``segment == s``) shares ``target_kw[s]`` by the rules of :func:`split_llf`, within
    ``p_segment_max_kw[s]`` (default none). One sort and segmented cumulative sums, no loop.

    ``floor_kwh`` (k,), optional: battery energy each vehicle must gain this step (< 0: the most
    it may lose), e.g. :func:`need_floor_kwh`; it raises the charging a vehicle must have and
    bounds what it may discharge.

    Returns:
        (k,) grid-side power per vehicle, kW.
    """
    k = e_kwh.size
    if k == 0:
        return np.zeros(0)
    S = target_kw.size
    seg = segment
    dt = dt_h
    if S == 1:  # the plain sums and fill (what split_llf calls each step: keep it lean)
        def seg_sum(x):
            return np.array([x.sum()])

        def fill(amount, cap, order):
            return _fill(float(amount[0]), cap, order)
    else:
        def seg_sum(x):
            return np.bincount(seg, x, S)

        def fill(amount, cap, order):
            return _fill_seg(amount, cap, order, seg)
    has_need = np.isfinite(need_kwh)
    need0 = np.where(has_need, need_kwh, 0.0)
    ch_step = eta_ch * p_ch_max_kw * dt  # battery kWh per full-power charging step
    left_after = np.maximum(steps_left - 1, 0)
    pc_max = np.clip((e_cap_kwh - e_kwh) / (eta_ch * dt), 0.0, p_ch_max_kw)
    req = np.where(has_need, need0 - e_kwh - ch_step * left_after, -np.inf)
    must = np.where(req > 0, np.minimum(req / (eta_ch * dt), pc_max), 0.0)
    if floor_kwh is not None:
        must = np.maximum(must, np.minimum(np.maximum(floor_kwh, 0.0) / (eta_ch * dt), pc_max))
    must0 = must
    s_must = seg_sum(must)
    seg_max = np.full(S, np.inf) if p_segment_max_kw is None else p_segment_max_kw
    lax = order = None

    def least_laxity_first():  # within each segment
        lx = _laxity(e_kwh, need_kwh, steps_left, ch_step)
        return lx, (np.argsort(lx, kind="stable") if S == 1 else np.lexsort((lx, seg)))

    over = s_must > seg_max
    if over.any():
        lax, order = least_laxity_first()
        must = fill(np.where(over, seg_max, s_must), must, order)
        s_must = seg_sum(must)
    up = target_kw >= s_must
    p = must
    # charging segments: first towards unmet needs (least laxity first), then into spare capacity
    extra = np.where(up, np.minimum(target_kw, seg_max) - s_must, 0.0)
    extra = np.where(extra > _TOL_KW, extra, 0.0)
    if extra.any():
        if order is None:
            lax, order = least_laxity_first()
        to_need = np.clip((need0 - e_kwh) / (eta_ch * dt), 0.0, None) - must
        tier1 = fill(extra, np.clip(np.minimum(pc_max - must, to_need), 0.0, None), order)
        rest = extra - seg_sum(tier1)
        rest = np.where(rest > _TOL_KW, rest, 0.0)
        p = must + tier1
        if rest.any():
            order_spare = np.lexsort((lax, -p_dis_max_kw) if S == 1 else (lax, -p_dis_max_kw, seg))
            spare_kw = np.clip(pc_max - must - tier1, 0.0, None)
            if not store_in_unidirectional:  # as in the aggregate envelope: no use storing in them
                spare_kw = np.where(p_dis_max_kw > 0, spare_kw, 0.0)
            p = p + fill(rest, spare_kw, order_spare)
    if not up.all():  # discharging segments: the most lax first
        # battery energy that may leave this step: above the reserve and not needed later
        spare = np.minimum(e_kwh - e_lb_kwh, np.where(has_need, -req, np.inf))
        if floor_kwh is not None:
            spare = np.minimum(spare, -floor_kwh)
        pd_max = np.where(must0 == 0, np.clip(spare * eta_dis / dt, 0.0, p_dis_max_kw), 0.0)
        if order is None:
            lax, order = least_laxity_first()
        order_dis = order[::-1]
        if S > 1:
            order_dis = order_dis[np.argsort(seg[order_dis], kind="stable")]
        p = p - fill(np.where(up, 0.0, s_must - target_kw), pd_max, order_dis)
    return p


def split_value(
    thresholds_kwh: np.ndarray,
    e_kwh: np.ndarray,
    *,
    up_kwh: np.ndarray,
    down_kwh: np.ndarray,
    eta_ch: np.ndarray,
    eta_dis: np.ndarray,
    dt_h: float,
    target_kw: float | None = None,
    p_site_min_kw: float = -np.inf,
    p_site_max_kw: float = np.inf,
    p_cap_kw: float = np.inf,
    need_kwh: np.ndarray,
    steps_left: np.ndarray,
    p_ch_max_kw: np.ndarray,
    site_kwh_ahead: np.ndarray | None = None,
    dis_step_kwh: np.ndarray | None = None,
    dis_total_kwh: np.ndarray | None = None,
) -> np.ndarray:
    """One step's powers for the vehicles plugged now, from their :func:`value_thresholds`.

    Each vehicle's optimal moves this step form a range (ties between equally valued steps).
    Within the ranges the site takes the aggregate plan's power ``target_kw``, shared in
    proportion to each range (without a target, every vehicle the bottom of its range: a tie is
    left to later steps, as the LP does), and never more than the soft cap ``p_cap_kw`` or
    outside the hard site limits. Where the ranges cannot fit those, vehicles go beyond them: the
    most lax give way first (charge less or discharge more; for the soft cap never below what
    they must charge now to still reach their need), or below ``p_site_min_kw`` the least lax
    discharge less first. If those moves leave a set of vehicles unable to reach their needs
    under the site's import limit (``site_kwh_ahead``; :func:`need_floor_kwh`), the step is
    split again with every vehicle at least at its floor.

    Args:
        thresholds_kwh: (k, 4) this step's levels from :func:`value_thresholds`.
        e_kwh: (k,) battery energy now.
        up_kwh, down_kwh: (k,) battery energy the vehicle can gain / lose this step (its
            charger, the step, its capacity and its reserve).
        eta_ch, eta_dis: (k,) efficiencies. dt_h: step length.
        target_kw: the site's planned net power this step, or None.
        p_site_min_kw, p_site_max_kw: hard site limits this step; p_cap_kw: soft cap.
        need_kwh, steps_left, p_ch_max_kw: (k,) as in :func:`split_llf` (for the laxity).
        site_kwh_ahead, dis_step_kwh, dis_total_kwh: as in :func:`need_floor_kwh` (None: no check).

    Returns:
        (k,) grid-side power, kW.
    """
    if e_kwh.size == 0:
        return np.zeros(0)
    args = (thresholds_kwh, e_kwh, up_kwh, down_kwh, eta_ch, eta_dis, dt_h, target_kw, p_site_min_kw,
            p_site_max_kw, p_cap_kw, need_kwh, steps_left, p_ch_max_kw)
    p = _split_value(*args, None)
    if site_kwh_ahead is None:
        return p
    ch_step = eta_ch * p_ch_max_kw * dt_h
    floor = need_floor_kwh(e_kwh, need_kwh, steps_left, ch_step, up_kwh, down_kwh, eta_ch, site_kwh_ahead,
                           dis_step_kwh=dis_step_kwh, dis_total_kwh=dis_total_kwh,
                           proposal_kwh=_battery_kwh(p, eta_ch, eta_dis, dt_h))
    return p if floor is None else _split_value(*args, floor)


def _split_value(thresholds_kwh, e_kwh, up_kwh, down_kwh, eta_ch, eta_dis, dt_h, target_kw, p_site_min_kw,
                 p_site_max_kw, p_cap_kw, need_kwh, steps_left, p_ch_max_kw, floor_kwh) -> np.ndarray:
    """:func:`split_value`, every vehicle gaining at least ``floor_kwh`` (None: its reserve)."""
    lo_phys = e_kwh - down_kwh
    lo_e, hi_e = (lo_phys if floor_kwh is None else np.maximum(lo_phys, e_kwh + floor_kwh)), e_kwh + up_kwh
    th = thresholds_kwh.T  # (4, k): the lowest and highest optimal level to charge / discharge to
    # the lowest and highest optimal energy after this step, (2, k): charge up to the charging
    # level, discharge down to the discharge level, within what the step allows
    y = np.minimum(np.maximum(np.minimum(np.maximum(e_kwh, th[:2]), th[2:]), lo_e), hi_e)

    def power(de):
        return np.where(de > 0, de / (eta_ch * dt_h), de * eta_dis / dt_h)

    p_lo, p_hi = power(y - e_kwh)
    s_lo, s_hi = float(p_lo.sum()), float(p_hi.sum())
    top = min(p_site_max_kw, max(p_cap_kw, p_site_min_kw))
    goal = s_lo if target_kw is None else min(max(target_kw, s_lo), s_hi)
    goal = max(min(goal, top), p_site_min_kw)
    if goal <= s_hi + _TOL_KW and goal >= s_lo - _TOL_KW:
        f = (goal - s_lo) / (s_hi - s_lo) if s_hi - s_lo > _TOL_KW else 0.0
        return p_lo + min(max(f, 0.0), 1.0) * (p_hi - p_lo)
    ch_step = eta_ch * p_ch_max_kw * dt_h
    lax = _laxity(e_kwh, need_kwh, steps_left, ch_step)
    if goal > s_hi:  # discharging more than the export limit allows
        room = np.clip(power(hi_e - e_kwh) - p_hi, 0.0, None)
        return p_hi + _fill(goal - s_hi, room, np.argsort(lax, kind="stable"))
    order = np.argsort(-lax, kind="stable")
    floor = power(lo_e - e_kwh)
    # beyond the optimal ranges: for the soft cap down to what each vehicle must charge now to
    # still reach its need (as the plan, whose need penalty outweighs the cap's), for the hard
    # limit down to the physical floor
    req = np.where(np.isfinite(need_kwh), need_kwh, 0.0) - e_kwh - ch_step * np.maximum(steps_left - 1, 0)
    must = np.where(np.isfinite(need_kwh) & (req > 0), np.minimum(req / (eta_ch * dt_h), power(up_kwh)), 0.0)
    p = p_lo - _fill(s_lo - goal, np.clip(p_lo - np.maximum(must, floor), 0.0, None), order)
    over = float(p.sum()) - p_site_max_kw
    if over > _TOL_KW:  # the hard limit: a vehicle keeps its own need reachable as long as it can
        alone = need_floor_kwh(e_kwh, need_kwh, steps_left, ch_step, up_kwh, down_kwh, eta_ch)
        p = _give_way(p, over, order, (power(alone), power(lo_phys - e_kwh)))
    return p


def need_floor_kwh(
    e_kwh: np.ndarray, need_kwh: np.ndarray, steps_left: np.ndarray, ch_step_kwh: np.ndarray,
    up_kwh: np.ndarray, down_kwh: np.ndarray, eta_ch: np.ndarray, site_kwh_ahead: np.ndarray | None = None,
    dis_step_kwh: np.ndarray | None = None, dis_total_kwh: np.ndarray | None = None,
    proposal_kwh: np.ndarray | None = None,
) -> np.ndarray | None:
    """Battery energy each vehicle must gain this step so that every need stays reachable, (k,)
    kWh (< 0: the most it may lose; ``-down_kwh`` where nothing binds).

    Alone, a vehicle must gain what it cannot charge in its later steps at full power. Under a
    site import limit that is not enough: vehicles leaving together may each have time alone, but
    not together. After this step, every set ``V`` of vehicles must still be able to receive its
    gaps: ``sum_V (gap_i - x_i) <= F(V)``, ``F(V) = sum_s min(site_s, sum_{i in V, plugged at s}
    ch_i)`` over the later steps. ``F`` is submodular, so the requirements ``x(V) >= gap(V) -
    F(V)`` form a contra-polymatroid, and greedy over one order of the vehicles gives a vector
    that meets every set's requirement at once (its total is the least the site must deliver
    now). The order is least laxity first: the tightest vehicles count on their later steps, the
    looser ones take what the limit will not let them have later. A vehicle that cannot take its
    share now passes it on (least laxity first). Each vehicle is assumed plugged until its
    departure; vehicles yet to arrive are not counted.

    With ``proposal_kwh`` (k,), the energies a split proposes: None when they already meet the
    requirement of every set of vehicles leaving by the same step (and of every vehicle alone);
    the vector above otherwise. (The vector fixes *who* gets the energy, which a plan may have
    decided differently and as well; so a split asks for it only when the proposal falls short.)
    The import limit is on net power, so in this check the vehicles leaving later may feed the
    site for those leaving earlier: up to ``dis_step_kwh`` a step and ``dis_total_kwh`` in all.
    Where some vehicle cannot take its share of the vector now, the needs cannot all be met any
    more (under these assumptions); then the proposal stands (None): which needs to miss is the
    plan's choice, made with the need penalty against the costs.

    Args:
        e_kwh, need_kwh: energy now and need at departure (k,), kWh (``-inf``: no need).
        steps_left: steps to departure, this one included (k,).
        ch_step_kwh: battery energy of a full-power charging step (k,), kWh.
        up_kwh, down_kwh: battery energy the vehicle can gain / lose this step (k,), kWh.
        eta_ch: charging efficiencies (k,) (the best of them turns the site's energy into
            battery energy).
        site_kwh_ahead: grid-side energy the site's import limit allows in each later step
            (H,), kWh (beyond H: none); None for no limit.
        dis_step_kwh, dis_total_kwh: grid-side energy each vehicle can feed in a step and in all
            (above its reserve) (k,), kWh (None: none).
    """
    out = -down_kwh.astype(float)
    gap = np.where(np.isfinite(need_kwh), need_kwh - e_kwh, 0.0)
    act = np.flatnonzero(gap > 0)
    if act.size == 0:
        return None if proposal_kwh is not None else out
    later = np.maximum(steps_left[act] - 1, 0)
    ch = ch_step_kwh[act]
    g = gap[act]
    x = g - ch * later  # alone
    H = int(later.max())
    ell = None
    if site_kwh_ahead is not None and H > 0:
        ell = np.zeros(H)
        h = min(H, site_kwh_ahead.size)
        ell[:h] = site_kwh_ahead[:h]
        if ch.sum() <= ell.min():  # the site can never hold them back
            ell = None
    eta = float(eta_ch[act].max()) if act.size else 1.0  # site energy into battery energy

    if proposal_kwh is not None:
        y = proposal_kwh[act]
        if np.any(y < x - 1e-9):
            pass  # a vehicle alone falls short
        elif ell is None:
            return None
        else:  # the sets of vehicles leaving by each step
            order = np.argsort(later, kind="stable")
            last = np.r_[later[order][1:] != later[order][:-1], True]
            C = _cum_charge(ch[order], later[order], H)[last]  # (sets, H), zero after each set leaves
            F = np.minimum(C, eta * ell).sum(1)
            if dis_step_kwh is not None:  # helped by vehicles leaving later feeding the site
                tau = later[order][last]
                late = np.maximum(steps_left - 1, 0)
                total = np.inf if dis_total_kwh is None else dis_total_kwh[None, :]
                feed = np.minimum(dis_step_kwh[None, :] * np.minimum(late[None, :], tau[:, None]), total)
                feed = np.where(late[None, :] > tau[:, None], feed, 0.0).sum(1)
                F += np.minimum(np.maximum(C - eta * ell, 0.0).sum(1), eta * feed)
            if np.all((np.cumsum(y[order]) - np.cumsum(g[order]))[last] + F >= -1e-9):
                return None
    lax = _laxity(e_kwh[act], need_kwh[act], steps_left[act], ch)
    if ell is not None:
        order = np.argsort(lax, kind="stable")
        x = np.empty_like(g)
        x[order] = g[order] - np.diff(np.minimum(_cum_charge(ch[order], later[order], H), eta * ell).sum(1), prepend=0.0)
    room = up_kwh[act]
    short = float(np.maximum(x - room, 0.0).sum())
    if short > 1e-9 and proposal_kwh is not None:
        return None  # needs that cannot all be met any more: which to miss is the plan's choice
    x = np.minimum(x, room)
    if short > 1e-12:  # passed on, least laxity first
        x += _fill(short, np.clip(room - np.maximum(x, 0.0), 0.0, None), np.argsort(lax, kind="stable"))
    out[act] = np.maximum(x, -down_kwh[act])
    return out


def _cum_charge(ch: np.ndarray, later: np.ndarray, H: int) -> np.ndarray:
    """(m, H): battery energy the first j + 1 vehicles can take in each of the next H steps at
    full power (vehicle i for its ``later[i]`` steps)."""
    return np.cumsum(np.where(np.arange(H)[None, :] < later[:, None], ch[:, None], 0.0), axis=0)


def _give_way(p: np.ndarray, amount: float, order: np.ndarray, floors) -> np.ndarray:
    """Lower ``p`` by ``amount`` in total, the vehicles in ``order`` first: down to each of
    ``floors`` in turn (the next only where the last was not enough)."""
    for floor in floors:
        if amount <= _TOL_KW:
            break
        cut = _fill(amount, np.clip(p - floor, 0.0, None), order)
        p = p - cut
        amount -= float(cut.sum())
    return p


def split_classes(
    target_kw: np.ndarray,
    labels: np.ndarray,
    e_kwh: np.ndarray,
    *,
    e_cap_kwh: np.ndarray,
    e_lb_kwh: np.ndarray,
    need_kwh: np.ndarray,
    steps_left: np.ndarray,
    p_ch_max_kw: np.ndarray,
    p_dis_max_kw: np.ndarray,
    eta_ch: np.ndarray,
    eta_dis: np.ndarray,
    dt_h: float,
    p_site_min_kw: float = -np.inf,
    p_site_max_kw: float = np.inf,
    p_cap_kw: float = np.inf,
    site_kwh_ahead: np.ndarray | None = None,
    store_in_unidirectional: bool = False,
) -> np.ndarray:
    """One step of a class plan for the vehicles plugged now.

    Each class shares its planned power ``target_kw[g]`` among its members least laxity first
    (:func:`split_llf_segments`: first what each must have now, then towards needs, then spare
    room); vehicles outside the plan (``labels == -1``: arrivals since) share what the classes
    leave of the planned total. The site's net power is then kept within the soft cap (the most
    lax give way first, not below what keeps their own needs reachable) and the hard limits. If
    that leaves a set of vehicles unable to reach their needs under the site's import limit
    (``site_kwh_ahead``; :func:`need_floor_kwh`), the step is split again with every vehicle at
    least at its floor.

    Args:
        target_kw: (G,) each class's planned net power this step, kW.
        labels: (k,) class of each vehicle plugged now, -1 outside the plan.
        e_kwh, e_cap_kwh, e_lb_kwh, need_kwh, steps_left, p_ch_max_kw, p_dis_max_kw, eta_ch,
            eta_dis, dt_h, store_in_unidirectional: as in :func:`split_llf`.
        p_site_min_kw, p_site_max_kw, p_cap_kw: hard site limits and soft cap this step, kW.
        site_kwh_ahead: grid-side energy the site's import limit allows in each later step, kWh.

    Returns:
        (k,) grid-side power per vehicle, kW.
    """
    if e_kwh.size == 0:
        return np.zeros(0)
    dt = dt_h
    ch_step = eta_ch * p_ch_max_kw * dt
    up = np.minimum(ch_step, np.maximum(e_cap_kwh - e_kwh, 0.0))
    down = np.minimum(p_dis_max_kw * dt / eta_dis, np.maximum(e_kwh - e_lb_kwh, 0.0))
    kw = dict(e_cap_kwh=e_cap_kwh, e_lb_kwh=e_lb_kwh, need_kwh=need_kwh, steps_left=steps_left,
              p_ch_max_kw=p_ch_max_kw, p_dis_max_kw=p_dis_max_kw, eta_ch=eta_ch, eta_dis=eta_dis, dt_h=dt,
              store_in_unidirectional=store_in_unidirectional)

    lax = _laxity(e_kwh, need_kwh, steps_left, ch_step)
    top = min(p_site_max_kw, max(p_cap_kw, p_site_min_kw))

    def split(floor):
        p = np.zeros(e_kwh.size)
        planned = labels >= 0
        if planned.any():
            p[planned] = split_llf_segments(target_kw, labels[planned], e_kwh[planned], floor_kwh=_at(floor, planned),
                                            **{k: _at(v, planned) for k, v in kw.items()})
        if not planned.all():
            rest = ~planned
            left = max(float(target_kw.sum()) - float(p[planned].sum()), 0.0)
            p[rest] = split_llf_segments(np.array([left]), np.zeros(int(rest.sum()), np.int64), e_kwh[rest],
                                         floor_kwh=_at(floor, rest), **{k: _at(v, rest) for k, v in kw.items()})
        # within the soft cap (not below the floors) and the hard limits: the most lax give way first
        s = float(p.sum())
        if s > top + _TOL_KW:
            order = np.argsort(-lax, kind="stable")
            alone = _grid_kw(need_floor_kwh(e_kwh, need_kwh, steps_left, ch_step, up, down, eta_ch), eta_ch, eta_dis, dt)
            p = _give_way(p, s - top, order, (alone if floor is None else _grid_kw(floor, eta_ch, eta_dis, dt),))
            # the hard limit: a vehicle keeps its own need reachable as long as it can
            p = _give_way(p, float(p.sum()) - p_site_max_kw, order, (alone, _grid_kw(-down, eta_ch, eta_dis, dt)))
        elif s < p_site_min_kw - _TOL_KW:
            p = p + _fill(p_site_min_kw - s, np.clip(_grid_kw(up, eta_ch, eta_dis, dt) - p, 0.0, None),
                          np.argsort(lax, kind="stable"))
        return p

    # first as planned; only if that leaves a set of vehicles short of their needs, again with
    # the floor (:func:`need_floor_kwh`)
    p = split(None)
    floor = need_floor_kwh(e_kwh, need_kwh, steps_left, ch_step, up, down, eta_ch, site_kwh_ahead,
                           dis_step_kwh=p_dis_max_kw * dt, dis_total_kwh=np.maximum(e_kwh - e_lb_kwh, 0.0) * eta_dis,
                           proposal_kwh=_battery_kwh(p, eta_ch, eta_dis, dt))
    return p if floor is None else split(floor)


def _grid_kw(de_kwh: np.ndarray, eta_ch, eta_dis, dt_h) -> np.ndarray:
    """Grid-side power that changes battery energy by ``de_kwh`` in a step of ``dt_h``."""
    return np.where(de_kwh > 0, de_kwh / (eta_ch * dt_h), de_kwh * eta_dis / dt_h)


def _battery_kwh(p_kw: np.ndarray, eta_ch, eta_dis, dt_h) -> np.ndarray:
    """Battery energy change of grid-side power ``p_kw`` over a step of ``dt_h``."""
    return np.where(p_kw > 0, p_kw * eta_ch * dt_h, p_kw * dt_h / eta_dis)


def _at(v, m):
    """``v[m]`` for an array, ``v`` itself otherwise (scalars, None)."""
    return v[m] if isinstance(v, np.ndarray) else v


def _site_kwh(prob: DispatchProblem) -> np.ndarray | None:
    """Grid-side energy the site's import limit allows in each step (T,), kWh; None if unlimited."""
    if not np.isfinite(prob.p_site_max_kw).any():
        return None
    return prob.p_site_max_kw * np.broadcast_to(np.asarray(prob.dt_h, float), (prob.n_steps,))


def split_powers(prob: DispatchProblem, step) -> np.ndarray:
    """(n, T) powers of a per-step split: ``step(t, m, e_m, dt)`` gives the powers of the
    vehicles ``m`` plugged in step t at energies ``e_m``; the energies follow from them."""
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    dt_t = np.broadcast_to(np.asarray(dt, float), (T,))
    plug = prob.plugged
    e = prob.e0_kwh.astype(float).copy()
    p = np.zeros((n, T))
    for t in range(T):
        m = np.flatnonzero(plug[:, t])
        if m.size == 0:
            continue
        h = float(dt_t[t])
        pt = step(t, m, e[m], h)
        p[m, t] = pt
        e[m] = e[m] + np.where(pt > 0, prob.eta_ch[m] * pt * h, pt * h / prob.eta_dis[m])
    return p


def value_step(prob: DispatchProblem, plan: AggregatePlan | None, band, levels: np.ndarray | None):
    """The value split of an aggregate plan, as a step function for :func:`split_powers`: each
    step a :func:`split_value` over the vehicles plugged in it, towards their levels at the
    plan's prices (:func:`~v2gsim.strategies.dispatch.levels.plan_levels` with ``band``;
    ``levels`` if already computed), the site taking the plan's power where they are indifferent.
    Without a plan: no price shift and no target. Every vehicle's move looks ahead to its own
    departure, so energy is never sold now that the same vehicle must buy back dearly later."""
    th = plan_levels(prob, plan, band=band) if levels is None else levels
    _, d = prob.window
    need = prob.need_eff_kwh
    cap = prob.p_cap_kw
    lim = _site_kwh(prob)

    def step(t, m, e, h):
        up = np.minimum(prob.eta_ch[m] * prob.p_ch_max_kw[m] * h, np.maximum(prob.e_cap_kwh[m] - e, 0.0))
        down = np.minimum(prob.p_dis_max_kw[m] * h / prob.eta_dis[m], np.maximum(e - prob.e_lb_kwh[m], 0.0))
        return split_value(
            th[m, t], e, up_kwh=up, down_kwh=down, eta_ch=prob.eta_ch[m], eta_dis=prob.eta_dis[m], dt_h=h,
            target_kw=None if plan is None else float(plan.p_kw[t]), p_site_min_kw=float(prob.p_site_min_kw[t]),
            p_site_max_kw=float(prob.p_site_max_kw[t]), p_cap_kw=float(cap[t]), need_kwh=need[m],
            steps_left=d[m] - t, p_ch_max_kw=prob.p_ch_max_kw[m],
            site_kwh_ahead=None if lim is None else lim[t + 1:], dis_step_kwh=prob.p_dis_max_kw[m] * h,
            dis_total_kwh=np.maximum(e - prob.e_lb_kwh[m], 0.0) * prob.eta_dis[m],
        )

    return step


def classes_step(prob: DispatchProblem, plan: ClassPlan):
    """A class plan's split, as a step function for :func:`split_powers`: each step a
    :func:`split_classes` over the vehicles plugged in it."""
    _, d = prob.window
    need = prob.need_eff_kwh
    cap = prob.p_cap_kw
    lim = _site_kwh(prob)
    store_uni = not bool(np.all(prob.price_buy_cny_per_kwh >= 0))

    def step(t, m, e, h):
        return split_classes(
            plan.p_class_kw[:, t], plan.labels[m], e, e_cap_kwh=prob.e_cap_kwh[m], e_lb_kwh=prob.e_lb_kwh[m],
            need_kwh=need[m], steps_left=d[m] - t, p_ch_max_kw=prob.p_ch_max_kw[m],
            p_dis_max_kw=prob.p_dis_max_kw[m], eta_ch=prob.eta_ch[m], eta_dis=prob.eta_dis[m], dt_h=h,
            p_site_min_kw=float(prob.p_site_min_kw[t]), p_site_max_kw=float(prob.p_site_max_kw[t]),
            p_cap_kw=float(cap[t]), site_kwh_ahead=None if lim is None else lim[t + 1:],
            store_in_unidirectional=store_uni,
        )

    return step


def classes_do_better(prob: DispatchProblem, agg_plan: AggregatePlan, class_plan: ClassPlan,
                      levels: np.ndarray | None = None) -> bool:
    """Whether the class plan's split scores better than the value split of the fleet-wide plan
    (:func:`schedule_score`), each run over the problem's steps (blocks of unequal length too).
    ``levels``: the fleet-wide plan's :func:`plan_levels` if already computed."""
    p_cls = split_powers(prob, classes_step(prob, class_plan))
    p_val = split_powers(prob, value_step(prob, agg_plan, VALUE_PRICE_BAND, levels))
    return schedule_score(prob, p_cls) < schedule_score(prob, p_val)
