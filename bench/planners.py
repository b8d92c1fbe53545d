"""Whole-horizon dispatch planners for tests and benchmarks; not part of v2gsim.

The centralized strategy plans and splits step by step within its re-plans
(``v2gsim/strategies/centralized.py``); these functions run the same pieces of
``v2gsim.strategies.dispatch`` over a whole horizon in one call, so tests and
``bench_aggregate_quality.py`` can compare a schedule with the exact plan:

* :func:`disaggregate_value`, :func:`disaggregate_classes`, :func:`disaggregate_llf` -- an
  aggregate plan split step by step (value split, class split, least laxity first);
* :func:`aggregate_schedule` -- the choice the strategy makes (``aggregate_split: auto``), one-shot;
* :func:`plan_grouped` -- a research variant the strategy does not run: one envelope per
  departure group (:func:`departure_groups`), split per group by least laxity or by a small
  per-vehicle LP per group (``split="track"``). Measured: ``bench/README.md``.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from v2gsim.strategies.dispatch.aggregate import AggregatePlan, ClassPlan, grouped_lp, plan_aggregate, plan_classes
from v2gsim.strategies.dispatch.exact import plan_exact
from v2gsim.strategies.dispatch.levels import VALUE_PRICE_BAND
from v2gsim.strategies.dispatch.problem import (
    DispatchPlan,
    DispatchProblem,
    evaluate_schedule,
    schedule_score,
    site_limit_can_bind,
    subset_problem,
)
from v2gsim.strategies.dispatch.split import classes_step, split_llf, split_powers, value_step


def _run_split(prob: DispatchProblem, step, t0: float) -> DispatchPlan:
    """Run a per-step split over the horizon (:func:`split_powers`) and evaluate it."""
    return evaluate_schedule(prob, split_powers(prob, step), solve_time_s=time.perf_counter() - t0)


def disaggregate_llf(prob: DispatchProblem, p_agg_kw: np.ndarray | AggregatePlan) -> DispatchPlan:
    """Split an aggregate power profile among the vehicles, least laxity first.

    A loop over steps, each a call of :func:`split_llf` over the vehicles plugged in that step
    (see there for the rules). Where the mandatory charging cannot be met the need shortfall is
    reported.

    Args:
        prob: the problem.
        p_agg_kw: (T,) target site net power, or an :class:`AggregatePlan`.

    Returns:
        DispatchPlan (``objective_cny`` is NaN; realised ``p_site_kw`` may differ from the target
        where the vehicles cannot follow it).
    """
    t0 = time.perf_counter()
    target = p_agg_kw.p_kw if isinstance(p_agg_kw, AggregatePlan) else np.asarray(p_agg_kw, float)
    T = prob.n_steps
    if target.shape != (T,):
        raise ValueError(f"p_agg_kw must have shape ({T},); got {target.shape}")
    target = np.clip(target, prob.p_site_min_kw, prob.p_site_max_kw)
    _, d = prob.window
    need = prob.need_eff_kwh
    store_uni = not bool(np.all(prob.price_buy_cny_per_kwh >= 0))

    def step(t, m, e, h):
        return split_llf(
            float(target[t]), e, e_cap_kwh=prob.e_cap_kwh[m], e_lb_kwh=prob.e_lb_kwh[m],
            need_kwh=need[m], steps_left=d[m] - t, p_ch_max_kw=prob.p_ch_max_kw[m],
            p_dis_max_kw=prob.p_dis_max_kw[m], eta_ch=prob.eta_ch[m], eta_dis=prob.eta_dis[m],
            dt_h=h, p_site_max_kw=float(prob.p_site_max_kw[t]), store_in_unidirectional=store_uni,
        )

    return _run_split(prob, step, t0)


def disaggregate_value(
    prob: DispatchProblem, plan: AggregatePlan | None = None, *, band: tuple[float, float] | None = VALUE_PRICE_BAND,
    levels: np.ndarray | None = None,
) -> DispatchPlan:
    """Split an aggregate plan by each vehicle's own optimum against the plan's implied prices.

    Each vehicle's levels at the plan's prices (``plan_levels``), then a loop over steps, each a
    ``split_value`` over the vehicles plugged in that step (``value_step``): the plan's power where
    they are indifferent, within the site limits and the soft cap. Unlike a per-step split of the plan's profile
    (:func:`disaggregate_llf`), every vehicle's move looks ahead to its own departure, so energy
    is never sold now that the same vehicle must buy back dearly later. ``levels``: the plan's
    levels if already computed.

    Returns:
        DispatchPlan (``objective_cny`` is NaN; ``solve_time_s`` the split's wall time).
    """
    t0 = time.perf_counter()
    return _run_split(prob, value_step(prob, plan, band, levels), t0)


def disaggregate_classes(prob: DispatchProblem, plan: ClassPlan) -> DispatchPlan:
    """Split a :func:`plan_classes` plan among the vehicles: a loop over steps, each a
    :func:`split_classes` over the vehicles plugged in that step.

    Returns:
        DispatchPlan (``objective_cny`` is NaN; ``solve_time_s`` the split's wall time).
    """
    t0 = time.perf_counter()
    return _run_split(prob, classes_step(prob, plan), t0)


def aggregate_schedule(prob: DispatchProblem, *, split: Literal["auto", "value", "classes"] = "auto") -> DispatchPlan:
    """The aggregate path for one plan, as the centralized strategy takes it (``aggregate_split``).

    ``value``: the fleet-wide LP with each vehicle on its own optimum (:func:`plan_aggregate`,
    :func:`disaggregate_value`); ``classes``: a class plan split least laxity first per class
    (:func:`plan_classes`, :func:`disaggregate_classes`); ``auto``: where the site's limit can
    bind (:func:`site_limit_can_bind`) both, and the better of them (:func:`schedule_score`),
    else the value split (then the exact plan). Neither is best everywhere: with alike windows
    (vehicles leaving together) the class plan meets needs the value split misses; with windows
    all different, classes of them are loose and the value split is the better (measured:
    ``bench/bench_aggregate_quality.py``)."""
    value = None
    if split != "classes":
        value = disaggregate_value(prob, plan_aggregate(prob, interval_bounds=False))
        if split == "value" or not site_limit_can_bind(prob):
            return value
    classes = disaggregate_classes(prob, plan_classes(prob))
    return classes if value is None or schedule_score(prob, classes.p_kw) < schedule_score(prob, value.p_kw) else value


def departure_groups(prob: DispatchProblem, max_groups: int = 96, by_power: bool = True) -> np.ndarray:
    """Group label per vehicle (n,), 0..G-1 (-1: no plugged step in the horizon).

    By departure step within the horizon, at most ``max_groups // 2`` departure bins (equal-count
    bins of the departure steps when there are more distinct ones), and within a bin by power
    class (charge and discharge power; with ``by_power=False`` only by whether the vehicle can
    discharge). Vehicles of one group leave together with the same chargers, so the sum of their
    envelopes is close to their joint flexibility."""
    a, d = prob.window
    active = d > a
    dd = d.astype(np.int64)
    uniq = np.unique(dd[active])
    n_bins = max(1, max_groups // 2)
    if uniq.size > n_bins:
        edges = np.unique(np.quantile(dd[active], np.linspace(0, 1, n_bins + 1)[1:-1],
                                      method="lower"))
        dbin = np.searchsorted(edges, dd, side="right")
    else:
        dbin = np.searchsorted(uniq, dd)
    _, pcls = np.unique(np.stack([prob.p_ch_max_kw, prob.p_dis_max_kw]), axis=1, return_inverse=True)
    lab = (dbin * (pcls.max() + 1) + pcls.reshape(-1)) if by_power else dbin * 2 + (prob.p_dis_max_kw > 0)
    _, lab = np.unique(np.where(active, lab, -1), return_inverse=True)
    lab = lab.reshape(-1)
    if not active.all():
        lab = np.where(active, lab - 1 if (~active).any() else lab, -1)
    return lab


def grouped_profiles(prob: DispatchProblem, labels: np.ndarray, *, interval_bounds: bool = False):
    """The grouped aggregate LP of :func:`plan_grouped` for any grouping of the vehicles.

    Each group ``labels == g`` (0..G-1; -1: left out) gets the aggregate model of
    :func:`plan_aggregate`; the groups share the hard site limits and the soft cap (requests,
    feeder headroom) in one LP (:func:`grouped_lp`). Returns ``(subs, profiles, result)``:
    ``(indices, sub-problem)`` per group, each group's net power profile (T,) kW, and the
    solver's result."""
    lab = np.asarray(labels)
    P, res = grouped_lp(prob, lab, interval_bounds=interval_bounds)
    subs = [(idx, subset_problem(prob, idx)) for idx in (np.flatnonzero(lab == g) for g in range(P.shape[0]))]
    return subs, list(P), res


def plan_grouped(
    prob: DispatchProblem, *, max_groups: int = 96, interval_bounds: bool = False,
    split: Literal["llf", "track"] = "llf", track_cny_per_kwh: float = 0.01,
) -> DispatchPlan:
    """Aggregate plan with one flexibility envelope per departure group, then LLF per group.

    The vehicles are grouped by :func:`departure_groups` (departure bin x can discharge); each
    group gets the aggregate model of :func:`plan_aggregate` (its own energy, departure and power
    variables), the groups share the hard site limits and the soft cap in one LP
    (about ``7 * groups * T`` variables), and each group's profile is split among its vehicles by
    :func:`disaggregate_llf`. Vehicles that leave together with the same chargers can hardly pass
    energy to each other through the envelope sum, and the split knows which group's energy the
    plan sells, so this is much closer to :func:`plan_exact` than one fleet-wide envelope. On the
    seeded random fleets of tests/test_dispatch.py (20-200 vehicles, 24-48 steps, 12 seeds) it
    costs 0.1-1.6 % (mean 0.8 %) more than the exact plan charge-only, and 4-18 % (mean 11 %)
    with V2G (the per-step split cannot keep every group member's surplus where the plan will
    sell it). With ``split="track"`` each group's members instead solve one small per-vehicle
    LP (:func:`_track_groups`): within the group's share of the site limits and soft cap, at
    real cost plus ``track_cny_per_kwh`` per kWh away from the group's profile; on the same
    fleets that costs 0.0-0.3 % (mean 0.1 %) more than exact with V2G and 0.0-0.03 %
    charge-only, but it is as many LP variables in total as :func:`plan_exact` in up to
    ``max_groups`` small LPs (slower than the one exact LP at these sizes, 0.02-0.2 s against
    0.005-0.06 s; it bounds the size of each LP, not their sum). Returns the per-vehicle plan
    (``objective_cny`` is the grouped LP's objective).
    """
    t0 = time.perf_counter()
    n, T = prob.n_vehicles, prob.n_steps
    subs, profs, res = grouped_profiles(prob, departure_groups(prob, max_groups), interval_bounds=interval_bounds)
    p = None
    if split == "track":
        p = _track_groups(prob, subs, profs, track_cny_per_kwh)
    if p is None:
        p = np.zeros((n, T))
        for (idx, sub), prof in zip(subs, profs):
            p[idx] = disaggregate_llf(sub, prof).p_kw
    return evaluate_schedule(prob, p, objective_cny=float(res.fun),
                             status="optimal" if res.status == 0 else str(res.message),
                             solve_time_s=time.perf_counter() - t0)


def _track_groups(prob: DispatchProblem, subs, profs, track_cny_per_kwh: float) -> np.ndarray | None:
    """Each group's vehicles follow its planned profile: one small per-vehicle LP per group
    (:func:`plan_exact` over the group's members, at their real cost plus ``track_cny_per_kwh``
    per kWh of deviation from the profile). The grouped plan couples the groups: each group's
    net power is held within its profile plus a share (by charger power) of the site's spare
    room up to the hard limits (widened to contain zero) and up to the soft cap. None if the
    groups together leave a site limit (the caller then splits by LLF).

    Measured on the fleets of tests/test_dispatch.py: a strong pull (deviation priced at the
    purchase price) follows the grouped profile closely and costs 3.5-11.7 % more than exact
    with V2G -- the profile itself spends energy the envelope sum lets groups' members share;
    a tie-breaking pull (0.01 CNY/kWh) leaves the groups free within their share of the site
    limits: 0.0-0.3 % with V2G."""
    n, T = prob.n_vehicles, prob.n_steps
    w = track_cny_per_kwh
    P = np.sum(profs, axis=0) if profs else np.zeros(T)
    up = np.clip(prob.p_site_max_kw - P, 0.0, None)
    dn = np.clip(P - prob.p_site_min_kw, 0.0, None)
    pw = np.array([max(float(sub.p_ch_max_kw.sum() + sub.p_dis_max_kw.sum()), 1e-9) for _, sub in subs])
    share = pw / pw.sum() if pw.size else pw
    cap = prob.p_cap_kw
    fin = np.isfinite(cap)
    room = np.where(fin, np.clip(cap - P, 0.0, None), 0.0)
    p = np.zeros((n, T))
    for (idx, sub), prof, sh in zip(subs, profs, share):
        hi = np.where(np.isfinite(up), prof + sh * up, np.inf)
        lo = np.where(np.isfinite(dn), prof - sh * dn, -np.inf)
        object.__setattr__(sub, "p_site_max_kw", np.maximum(hi, 0.0))
        object.__setattr__(sub, "p_site_min_kw", np.minimum(lo, 0.0))
        if fin.any():  # the soft cap (requests, headroom): the profile plus a share of the room
            sub.__dict__["p_cap_kw"] = np.where(fin, prof + sh * room, np.inf)
        p[idx] = plan_exact(sub, track_kw=prof, track_cny_per_kwh=w).p_kw
    site = p.sum(0)
    if np.any(site > prob.p_site_max_kw + 1e-6) or np.any(site < prob.p_site_min_kw - 1e-6):
        return None
    return p
