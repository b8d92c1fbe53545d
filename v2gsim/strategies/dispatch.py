"""Charging / V2G dispatch as linear programs (HiGHS), and the splits of aggregate plans.

Pure functions of plain arrays; nothing here knows about the simulator. A strategy builds a
:class:`DispatchProblem` at each re-plan and calls one of

* :func:`plan_exact` -- one LP over every vehicle and step (n x T charge, discharge and energy
  variables), optimal for the stated problem; a time-limited MIP where a vehicle would charge
  and discharge at once; every plan checked by :func:`check_plan` (else :func:`safe_plan`);
* :func:`plan_aggregate` -- one LP over the fleet's aggregate flexibility (T-sized), followed by
  a split among the vehicles:

  - :func:`disaggregate_value` -- the LP's site-limit duals shift the prices, and every vehicle
    follows its own exact optimum against them (:func:`value_thresholds`, a vectorised backward
    pass over each vehicle's piecewise-linear cost-to-go; :func:`split_value` per step). Without
    binding site limits this *is* the exact plan; on the seeded random fleets of
    tests/test_value_split.py (20-200 vehicles, 24-96 steps, binding limits) it costs 0.0 %
    (charge-only) / at most 0.6 % (V2G) more than :func:`plan_exact`. With short stays leaving
    together under a binding limit it leaves needs unmet that the exact plan meets.
  - :func:`disaggregate_llf` -- each step's aggregate power split among the vehicles by least
    laxity first: on the same fleets up to 15.5 % more than exact charge-only and up to 63 % with
    V2G (a per-step split cannot know which vehicle's energy the plan sells later).
* :func:`plan_classes` -- one envelope per class of alike vehicles (:func:`fleet_classes`; at most
  :data:`MAX_CLASSES`), followed by :func:`disaggregate_classes` (each class's power least laxity
  first among its members, :func:`split_classes`). Meets the needs of vehicles leaving together
  under a binding limit; re-planned hourly within 2 % of exact on the binding fleets of
  tests/test_aggregate_binding.py.
* :func:`aggregate_schedule` -- what the centralized strategy runs: the better of the two (by
  :func:`schedule_score`) where the site's limit can bind (:func:`site_limit_can_bind`), the
  value split elsewhere.
* :func:`plan_grouped` -- the aggregate LP with one envelope per group of vehicles that leave
  together with the same chargers (:func:`departure_groups`; about 7 x groups x T variables),
  split per group: by LLF 0.1-1.6 % (mean 0.8 %) above :func:`plan_exact` charge-only, 4-18 %
  (mean 11 %) with V2G on the same fleets; with ``split="track"`` (one small per-vehicle LP per
  group within its share of the site limits) 0.0-0.3 % with V2G, 0.0-0.03 % charge-only.
* :func:`split_llf`, :func:`split_value`, :func:`split_classes` -- the per-step splits alone,
  over the vehicles plugged in that step (what a rolling strategy calls each step), each keeping
  every need reachable under the site limit (:func:`need_floor_kwh`); :func:`coarsen` -- the
  same problem on longer steps, for cheap aggregate profiles.

Conventions: ``p_kw > 0`` charges from the grid, ``< 0`` discharges into it (grid side). A vehicle
is plugged for steps ``arrival_step <= t < departure_step`` (departure is the driver's estimate).
Energy ``e_kwh[:, t]`` is the battery energy at the *start* of step t, shape (n, T + 1). Battery
energy changes by ``eta_ch * p_ch * dt_h - p_dis * dt_h / eta_dis``.

Modelling choices (documented, tested):

* Wear cost is charged on grid-side throughput: ``w_i * (p_ch + p_dis) * dt_h`` with
  ``w_i = wear_cny_per_kwh + wear_vehicle_cny_per_kwh[i]`` (a constant plus a per-vehicle
  marginal wear price, e.g. from a wear model).
* The reserve ``e_min_kwh`` is a hard lower bound while plugged; a vehicle that arrives below it
  may stay at its arrival energy (bound ``min(e_min, e0)``) rather than make the LP infeasible.
* The need ``e_need_kwh`` applies at departure. If departure is beyond the horizon, the need at
  the horizon end is reduced by what the vehicle can still charge after the horizon at full power,
  so that a re-planning strategy does not drain vehicles that leave later. The need is soft
  (``penalty_need_cny_per_kwh`` per kWh short); the shortfall is reported, never an exception.
* Site limits ``p_site_min_kw <= sum_i p_kw[i, t] <= p_site_max_kw`` are hard (zero power is
  always feasible since ``p_site_min_kw <= 0 <= p_site_max_kw``). Feeder headroom and grid
  requests (peak shaving, discharge calls) are soft upper bounds on site net power with penalty
  ``penalty_request_cny_per_kwh`` per kWh over; the shortfall per step is reported.
* No vehicle charges and discharges in the same step. The LP does so only where it earns money
  in itself (the V2G price above the purchase price plus twice the wear) or to get rid of
  energy; then :func:`plan_exact` nets it where that is provably as good, else solves a MIP
  with a charge-or-discharge binary per such vehicle-step, within a time limit, from a feasible
  start, and says in the plan's ``status`` whether the result is proven optimal.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import SimpleNamespace
from typing import Literal

import numpy as np
import scipy.sparse as sp

__all__ = [
    "GridRequest",
    "DispatchProblem",
    "DispatchPlan",
    "AggregatePlan",
    "plan_exact",
    "check_plan",
    "safe_plan",
    "EXACT_TIME_LIMIT_S",
    "plan_aggregate",
    "disaggregate_llf",
    "evaluate_schedule",
    "flexibility_envelopes",
    "split_llf",
    "value_thresholds",
    "plan_levels",
    "split_value",
    "disaggregate_value",
    "trusted_problem",
    "prepare_solver",
    "coarsen",
    "coarsen_blocks",
    "plan_grouped",
    "grouped_profiles",
    "departure_groups",
    "split_llf_segments",
    "need_floor_kwh",
    "fleet_classes",
    "ClassPlan",
    "plan_classes",
    "split_classes",
    "disaggregate_classes",
    "site_limit_can_bind",
    "aggregate_schedule",
    "schedule_score",
    "classes_do_better",
]

_TOL_KW = 1e-6
# Price band of a value split around an aggregate plan's site price (value_thresholds' band):
# half to one and a half times it. On the seeded fleets of tests/test_value_split.py plugged from
# a common start (alike vehicles, binding limits) it takes the worst case from 168 % above exact
# to 6.8 % with V2G (7.2 % to 2.3 % charge-only); (0, 2) does about as well, no band far worse.
VALUE_PRICE_BAND = (0.5, 1.5)


@dataclass(frozen=True)
class GridRequest:
    """A soft upper bound on site net power over steps ``[start_step, end_step)``.

    Use :meth:`peak_shaving` (net power <= target) or :meth:`discharge_call` (net power <= -X).
    """

    start_step: int
    end_step: int
    p_net_max_kw: float
    kind: Literal["peak_shaving", "discharge_call", "cap"] = "cap"

    @classmethod
    def peak_shaving(cls, start_step: int, end_step: int, target_kw: float) -> GridRequest:
        return cls(start_step, end_step, float(target_kw), "peak_shaving")

    @classmethod
    def discharge_call(cls, start_step: int, end_step: int, p_discharge_kw: float) -> GridRequest:
        if p_discharge_kw < 0:
            raise ValueError(f"discharge_call: p_discharge_kw must be >= 0; got {p_discharge_kw}")
        return cls(start_step, end_step, -float(p_discharge_kw), "discharge_call")


def _vec(name: str, x, n: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    a = np.broadcast_to(np.asarray(x, dtype=float), (n,)).copy() if np.ndim(x) == 0 else (
        np.asarray(x, dtype=float).copy()
    )
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    if lo is not None and np.any(a < lo):
        raise ValueError(f"{name} must be >= {lo}; got min {a.min():g}")
    if hi is not None and np.any(a > hi):
        raise ValueError(f"{name} must be <= {hi}; got max {a.max():g}")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class DispatchProblem:
    """All inputs of a dispatch plan. Arrays are copied, validated and made read-only.

    Per step (shape (T,)): ``price_buy_cny_per_kwh``, ``price_v2g_cny_per_kwh``,
    ``p_site_max_kw`` (>= 0), ``p_site_min_kw`` (<= 0), optional ``p_feeder_headroom_kw``
    (soft cap on site net power). Per vehicle (shape (n,)): ``arrival_step`` (plugged from, incl.),
    ``departure_step`` (exclusive; may lie outside [0, T]), ``e0_kwh``, ``e_cap_kwh``,
    ``e_min_kwh``, ``e_need_kwh``, ``p_ch_max_kw``, ``p_dis_max_kw`` (0: not bidirectional),
    ``eta_ch``, ``eta_dis`` (in (0, 1]). Scalars broadcast.
    """

    dt_h: float
    price_buy_cny_per_kwh: np.ndarray
    price_v2g_cny_per_kwh: np.ndarray
    arrival_step: np.ndarray
    departure_step: np.ndarray
    e0_kwh: np.ndarray
    e_cap_kwh: np.ndarray
    e_min_kwh: np.ndarray
    e_need_kwh: np.ndarray
    p_ch_max_kw: np.ndarray
    p_dis_max_kw: np.ndarray
    eta_ch: np.ndarray | float = 0.95
    eta_dis: np.ndarray | float = 0.95
    wear_cny_per_kwh: float = 0.0
    wear_vehicle_cny_per_kwh: np.ndarray | float = 0.0
    p_site_max_kw: np.ndarray | float = np.inf
    p_site_min_kw: np.ndarray | float = -np.inf
    p_feeder_headroom_kw: np.ndarray | float | None = None
    requests: tuple[GridRequest, ...] = ()
    penalty_need_cny_per_kwh: float = 1000.0
    penalty_request_cny_per_kwh: float = 100.0
    # Derived (filled in __post_init__)
    n_vehicles: int = field(init=False)
    n_steps: int = field(init=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        if not (np.isfinite(self.dt_h) and self.dt_h > 0):
            raise ValueError(f"dt_h must be > 0; got {self.dt_h}")
        buy = np.asarray(self.price_buy_cny_per_kwh, dtype=float)
        if buy.ndim != 1 or buy.size == 0:
            raise ValueError("price_buy_cny_per_kwh must be a non-empty 1-D array (one per step)")
        T = buy.size
        n = np.asarray(self.e0_kwh).size
        s(self, "n_steps", T)
        s(self, "n_vehicles", n)
        s(self, "price_buy_cny_per_kwh", _vec("price_buy_cny_per_kwh", buy, T))
        s(self, "price_v2g_cny_per_kwh", _vec("price_v2g_cny_per_kwh", self.price_v2g_cny_per_kwh, T))
        for name in ("arrival_step", "departure_step"):
            a = np.asarray(getattr(self, name))
            a = np.broadcast_to(a, (n,)) if a.ndim == 0 else a
            if a.shape != (n,) or not np.all(np.equal(np.mod(a, 1), 0)):
                raise ValueError(f"{name} must be {n} whole step numbers")
            a = a.astype(np.int64).copy()
            a.setflags(write=False)
            s(self, name, a)
        s(self, "e_cap_kwh", _vec("e_cap_kwh", self.e_cap_kwh, n, lo=0))
        for name in ("e0_kwh", "e_min_kwh", "e_need_kwh", "p_ch_max_kw", "p_dis_max_kw"):
            s(self, name, _vec(name, getattr(self, name), n, lo=0))
        for name in ("eta_ch", "eta_dis"):
            v = _vec(name, getattr(self, name), n, hi=1.0)
            if np.any(v <= 0):
                raise ValueError(f"{name} must be in (0, 1]")
            s(self, name, v)
        for name in ("e0_kwh", "e_min_kwh", "e_need_kwh"):
            if np.any(getattr(self, name) > self.e_cap_kwh + 1e-9):
                i = int(np.argmax(getattr(self, name) - self.e_cap_kwh))
                raise ValueError(f"{name} must be <= e_cap_kwh; vehicle {i} is not")
        smax = np.broadcast_to(np.asarray(self.p_site_max_kw, dtype=float), (T,)).copy()
        smin = np.broadcast_to(np.asarray(self.p_site_min_kw, dtype=float), (T,)).copy()
        if smax.shape != (T,) or np.any(smax < 0) or np.any(np.isnan(smax)):
            raise ValueError(f"p_site_max_kw must be >= 0 with shape ({T},)")
        if smin.shape != (T,) or np.any(smin > 0) or np.any(np.isnan(smin)):
            raise ValueError(f"p_site_min_kw must be <= 0 with shape ({T},)")
        for a in (smax, smin):
            a.setflags(write=False)
        s(self, "p_site_max_kw", smax)
        s(self, "p_site_min_kw", smin)
        if self.wear_cny_per_kwh < 0:
            raise ValueError("wear_cny_per_kwh must be >= 0")
        s(self, "wear_vehicle_cny_per_kwh", _vec("wear_vehicle_cny_per_kwh", self.wear_vehicle_cny_per_kwh, n, lo=0))
        if self.penalty_need_cny_per_kwh <= 0 or self.penalty_request_cny_per_kwh <= 0:
            raise ValueError("penalties must be > 0")
        s(self, "requests", tuple(self.requests))

    # -- derived arrays (computed once; treat as read-only) --------------------------------

    @property
    def wear_total_cny_per_kwh(self) -> np.ndarray:
        """Wear price per vehicle (n,): the constant plus the per-vehicle part."""
        return self.wear_cny_per_kwh + self.wear_vehicle_cny_per_kwh

    @cached_property
    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """Plugged window clipped to the horizon: (a, d), shape (n,) each, a <= d."""
        T = self.n_steps
        a = np.clip(self.arrival_step, 0, T)
        d = np.clip(self.departure_step, 0, T)
        return a, np.maximum(a, d)

    @cached_property
    def plugged(self) -> np.ndarray:
        """Boolean (n, T): vehicle i plugged during step t."""
        a, d = self.window
        t = np.arange(self.n_steps)
        return (t[None, :] >= a[:, None]) & (t[None, :] < d[:, None])

    @cached_property
    def e_lb_kwh(self) -> np.ndarray:
        """Energy lower bound (n,): the reserve, or the arrival energy if that is lower."""
        return np.minimum(self.e_min_kwh, self.e0_kwh)

    @cached_property
    def need_eff_kwh(self) -> np.ndarray:
        """Need at step ``window[1]`` (n,), -inf where the vehicle has no plugged step."""
        a, d = self.window
        beyond = np.maximum(self.departure_step - self.n_steps, 0)
        need = self.e_need_kwh - self.eta_ch * self.p_ch_max_kw * self.dt_h * beyond
        need = np.minimum(need, self.e_cap_kwh)
        return np.where(d > a, need, -np.inf)

    @cached_property
    def p_cap_kw(self) -> np.ndarray:
        """Soft cap on site net power (T,): min of feeder headroom and requests (inf if none)."""
        T = self.n_steps
        cap = np.full(T, np.inf)
        if self.p_feeder_headroom_kw is not None:
            cap = np.minimum(cap, np.broadcast_to(
                np.asarray(self.p_feeder_headroom_kw, dtype=float), (T,)))
        for r in self.requests:
            lo, hi = max(r.start_step, 0), min(r.end_step, T)
            if hi > lo:
                cap[lo:hi] = np.minimum(cap[lo:hi], r.p_net_max_kw)
        return cap


@dataclass(frozen=True, eq=False)
class DispatchPlan:
    """A per-vehicle schedule and its evaluation.

    Attributes:
        p_kw: (n, T) net grid-side power per vehicle, kW (> 0 charging).
        p_ch_kw, p_dis_kw: (n, T) its charge / discharge parts (>= 0, never both > 0).
        e_kwh: (n, T + 1) battery energy at step starts (recomputed from ``p_kw``).
        p_site_kw: (T,) site net power.
        cost_cny: energy cost - V2G revenue + wear (no penalties).
        energy_cost_cny, v2g_revenue_cny, wear_cost_cny: its parts.
        unmet_need_kwh: (n,) shortfall at departure (or at the horizon end, reduced need).
        cap_shortfall_kw: (T,) site net power above the soft cap (requests, feeder headroom).
        objective_cny: objective incl. penalties (NaN for disaggregated plans).
        status: how it was found. :func:`plan_exact`: "optimal" (proven, within a relative gap
            of 1e-6), "time_limit_feasible" (the MIP's best plan when its time limit stopped
            it), "fallback" (a feasible plan, no MIP result in time) or "safe" (a solve failed
            or a plan broke a limit: :func:`safe_plan`).
        solve_time_s: wall time of the solve(s).
        n_binary_steps: vehicle-steps that got a charge-xor-discharge binary (0 usually).
        objective_bound_cny: proven lower bound on the optimal objective (NaN if none).
    """

    p_kw: np.ndarray
    p_ch_kw: np.ndarray
    p_dis_kw: np.ndarray
    e_kwh: np.ndarray
    p_site_kw: np.ndarray
    cost_cny: float
    energy_cost_cny: float
    v2g_revenue_cny: float
    wear_cost_cny: float
    unmet_need_kwh: np.ndarray
    cap_shortfall_kw: np.ndarray
    objective_cny: float = float("nan")
    status: str = "optimal"
    solve_time_s: float = 0.0
    n_binary_steps: int = 0
    objective_bound_cny: float = float("nan")


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
            the site's limits imply (:func:`value_thresholds`).
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


# --------------------------------------------------------------------------------------------
# evaluation


def _energies(prob: DispatchProblem, p: np.ndarray) -> np.ndarray:
    """Battery energy (n, T + 1) at the step starts under the net schedule ``p`` (n, T)."""
    n, T, dt = prob.n_vehicles, prob.n_steps, prob.dt_h
    de = prob.eta_ch[:, None] * np.maximum(p, 0.0) * dt - np.maximum(-p, 0.0) * dt / prob.eta_dis[:, None]
    e = np.empty((n, T + 1))
    e[:, 0] = prob.e0_kwh
    np.cumsum(de, axis=1, out=e[:, 1:])
    e[:, 1:] += prob.e0_kwh[:, None]
    return e


def evaluate_schedule(
    prob: DispatchProblem, p_kw: np.ndarray, *, objective_cny: float = float("nan"),
    status: str = "optimal", solve_time_s: float = 0.0, n_binary_steps: int = 0,
    objective_bound_cny: float = float("nan"),
) -> DispatchPlan:
    """Evaluate a per-vehicle schedule ``p_kw`` (n, T): energies, cost parts, unmet needs."""
    p = np.asarray(p_kw, dtype=float)
    n, T = prob.n_vehicles, prob.n_steps
    if p.shape != (n, T):
        raise ValueError(f"p_kw must have shape ({n}, {T}); got {p.shape}")
    dt = prob.dt_h
    pc = np.maximum(p, 0.0)
    pd = np.maximum(-p, 0.0)
    e = _energies(prob, p)
    energy = float(dt * (pc.sum(0) @ prob.price_buy_cny_per_kwh))
    revenue = float(dt * (pd.sum(0) @ prob.price_v2g_cny_per_kwh))
    wear = float(dt * (prob.wear_total_cny_per_kwh @ (pc.sum(1) + pd.sum(1))))
    _, d = prob.window
    need = prob.need_eff_kwh
    unmet = np.maximum(need - e[np.arange(n), d], 0.0)
    site = p.sum(0)
    short = np.maximum(site - prob.p_cap_kw, 0.0)
    return DispatchPlan(
        p_kw=p, p_ch_kw=pc, p_dis_kw=pd, e_kwh=e, p_site_kw=site,
        cost_cny=energy - revenue + wear, energy_cost_cny=energy, v2g_revenue_cny=revenue,
        wear_cost_cny=wear, unmet_need_kwh=unmet, cap_shortfall_kw=short,
        objective_cny=objective_cny, status=status, solve_time_s=solve_time_s,
        n_binary_steps=n_binary_steps, objective_bound_cny=objective_bound_cny,
    )


# --------------------------------------------------------------------------------------------
# exact plan: an LP; where it would charge and discharge a vehicle at once, a time-limited MIP


_PRESOLVE_MIN_COLS = 5000  # smaller LPs solve faster without HiGHS's presolve (measured ~2x)
# Default bound on the solver time of one exact plan, s (plan_exact's time_limit_s; the
# centralized strategy's exact_time_limit_s). Only plans that need the MIP come near it: the LP
# of a 50-vehicle x 96-step site takes ~0.1 s. See bench/README.md for measured plan times.
EXACT_TIME_LIMIT_S = 5.0
_MIP_REL_GAP = 1e-6  # a plan within this relative gap of the proven bound counts as optimal
_FIX_ROUNDS = 3  # fallback LPs that fix offending steps before every bidirectional step is fixed
_highs = None
_log = logging.getLogger(__name__)


def prepare_solver():
    """The process's reused HiGHS instance, created (and highspy imported, ~70 ms) on first call.

    A strategy that will solve LPs calls this when it is built, so that the one-off set-up is
    part of building the model rather than of its first step."""
    global _highs
    if _highs is None:
        _highs = _new_highs()
    return _highs


def _new_highs():
    """A silent HiGHS instance."""
    import highspy

    # the core class: highspy.Highs() prints HiGHS's banner on construction
    core = getattr(getattr(highspy, "_core", None), "_Highs", None)
    h = core() if core is not None else highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def _run_highs(c, A, lo, hi, lb, ub, *, integer=None, x0=None, time_limit_s=np.inf):
    """Pass one model to HiGHS and run it. ``integer`` (bool per column) makes a MIP, ``x0``
    (all columns) is a feasible start for it. Untimed solves reuse the process's instance; a
    solve with a time limit gets a fresh one (0.04 ms), because HiGHS 1.x measures an LP's time
    limit against the instance's run time summed over all its solves (a MIP's against its own)."""
    import highspy

    if np.isfinite(time_limit_s):
        h = _new_highs()
        h.setOptionValue("time_limit", float(max(time_limit_s, 0.0)))
    else:
        h = prepare_solver()
        h.clearModel()
    mip = integer is not None
    h.setOptionValue("presolve", "choose" if mip or A.shape[1] >= _PRESOLVE_MIN_COLS else "off")
    h.setOptionValue("mip_rel_gap", _MIP_REL_GAP)
    Ar = A if A.format == "csr" else sp.csr_array(A)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_ = np.asarray(c, float)
    lp.col_lower_ = np.asarray(lb, float)
    lp.col_upper_ = np.asarray(ub, float)
    lp.row_lower_ = np.asarray(lo, float)
    lp.row_upper_ = np.asarray(hi, float)
    m = lp.a_matrix_
    m.format_ = highspy.MatrixFormat.kRowwise
    m.num_col_, m.num_row_ = A.shape[1], A.shape[0]
    m.start_, m.index_, m.value_ = Ar.indptr, Ar.indices, Ar.data
    if mip:
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[k] for k in np.asarray(integer, bool).astype(int).tolist()]
    h.passModel(lp)
    if x0 is not None:
        start = highspy.HighsSolution()
        start.col_value = np.asarray(x0, float)
        start.value_valid = True
        h.setSolution(start)
    h.run()
    return h


def _solve_lp(c, A, lo, hi, lb, ub, *, time_limit_s=np.inf) -> SimpleNamespace:
    """A plain LP through highspy directly (scipy's ``milp`` wrapper costs ~0.7 ms a call in
    option checks and validation, more than a small aggregate LP's solve). One reused solver per
    process; presolve off for small LPs. ``x`` is None unless solved to optimality."""
    import highspy

    h = _run_highs(c, A, lo, hi, lb, ub, time_limit_s=time_limit_s)
    st = h.getModelStatus()
    if st != highspy.HighsModelStatus.kOptimal:
        return SimpleNamespace(x=None, fun=float("nan"), status=1, message=h.modelStatusToString(st))
    sol = h.getSolution()
    return SimpleNamespace(x=np.array(sol.col_value), row_dual=np.array(sol.row_dual),
                           fun=float(h.getInfo().objective_function_value),
                           status=0, message="Optimization terminated successfully.")


def _solve_mip(c, A, lo, hi, lb, ub, integer, *, x0=None, time_limit_s=np.inf) -> SimpleNamespace:
    """A MIP (``integer``: bool per column) within ``time_limit_s``: its best solution ``x``
    (None if it found none), objective ``fun``, proven lower ``bound`` and whether it is
    ``optimal`` (within the relative gap ``_MIP_REL_GAP``)."""
    import highspy

    h = _run_highs(c, A, lo, hi, lb, ub, integer=integer, x0=x0, time_limit_s=time_limit_s)
    st = h.getModelStatus()
    info = h.getInfo()
    has_x = info.primal_solution_status == 2  # feasible
    return SimpleNamespace(
        x=np.array(h.getSolution().col_value) if has_x else None,
        fun=float(info.objective_function_value) if has_x else float("nan"),
        bound=float(info.mip_dual_bound), optimal=st == highspy.HighsModelStatus.kOptimal,
        message=h.modelStatusToString(st))


def _solve(c, A, lo, hi, lb, ub):
    """An LP without a time limit (the aggregate plans')."""
    return _solve_lp(c, A, lo, hi, lb, ub)


@dataclass(frozen=True, eq=False)
class _ExactModel:
    """:func:`plan_exact`'s LP. Columns: p_ch (n*T, vehicle-major), p_dis (n*T), e (n*(T+1)),
    need slack (n), soft-cap slack (T), tracking slacks above / below (T each, with a profile)."""

    prob: DispatchProblem
    c: np.ndarray
    A: sp.csr_array
    lo: np.ndarray
    hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    track_kw: np.ndarray | None

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
        return np.concatenate(parts)

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
    nv = o_tr + (2 * T if track_kw is not None else 0)
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
    c[o_tr:] = track_cny_per_kwh * dt

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
    A = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, nv)
    )
    return _ExactModel(prob, c, A, np.concatenate(rlo), np.concatenate(rhi), lb, ub, tr)


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
    one side throughout (on the flat-V2G-price sites of bench/bench_exact_plan.py, 10-50
    vehicles, the side of the net power gave plans costing 60-700 CNY a day more than this)."""
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
            ``track_cny_per_kwh`` per kWh of deviation either way (what :func:`plan_grouped`
            uses to follow one group's planned profile with its own vehicles).

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


# --------------------------------------------------------------------------------------------
# checking a plan, and the safe plan


def check_plan(prob: DispatchProblem, plan: DispatchPlan, tol: float = 1e-6) -> list[str]:
    """Every limit a per-vehicle plan must keep, checked from its powers: no power while
    unplugged, charger limits, no vehicle charging and discharging in the same step (its parts
    add up to its net power and one of them is exactly 0), the hard site limits, battery bounds
    ``[min(e_min, e0), e_cap]`` of the energies the powers imply (and the plan's own energies
    equal to those), and a reported unmet need no smaller than the real shortfall.

    Tolerances: ``tol`` kW on powers (times the site's vehicle count on site sums); on energies
    ``tol`` kWh per step (solver tolerances add up along the horizon).

    Returns:
        One sentence per violated limit (the worst case of each); empty if the plan is sound.
    """
    n, T = prob.n_vehicles, prob.n_steps
    p = np.asarray(plan.p_kw, dtype=float)
    if p.shape != (n, T):
        return [f"p_kw has shape {p.shape}; the problem has ({n}, {T})"]
    if not np.all(np.isfinite(p)):
        return ["p_kw has values that are not finite"]
    out = []

    def worst(excess: np.ndarray, lim: float, what) -> None:
        if excess.size and np.max(excess) > lim:
            out.append(what(np.unravel_index(int(np.argmax(excess)), excess.shape), float(np.max(excess))))

    pc, pd = np.asarray(plan.p_ch_kw, float), np.asarray(plan.p_dis_kw, float)
    worst(np.maximum(-pc, -pd), 0.0, lambda ix, x: f"negative charge or discharge part ({-x:g} kW) at vehicle {ix[0]}, step {ix[1]}")
    worst(np.minimum(pc, pd), 0.0, lambda ix, x: f"vehicle {ix[0]} charges and discharges at once in step {ix[1]} ({x:g} kW each way)")
    worst(np.abs(pc - pd - p), tol, lambda ix, x: f"charge minus discharge differs from p_kw by {x:g} kW at vehicle {ix[0]}, step {ix[1]}")
    worst(np.where(prob.plugged, 0.0, np.abs(p)), tol, lambda ix, x: f"vehicle {ix[0]} draws {x:g} kW in step {ix[1]}, when it is not plugged")
    worst(p - prob.p_ch_max_kw[:, None], tol, lambda ix, x: f"vehicle {ix[0]} charges {x:g} kW above p_ch_max_kw in step {ix[1]}")
    worst(-p - prob.p_dis_max_kw[:, None], tol, lambda ix, x: f"vehicle {ix[0]} discharges {x:g} kW above p_dis_max_kw in step {ix[1]}")
    site = p.sum(0)
    tol_site = tol * max(n, 1)
    worst(site - prob.p_site_max_kw, tol_site, lambda ix, x: f"site net power {x:g} kW above p_site_max_kw ({prob.p_site_max_kw[ix[0]]:g} kW) in step {ix[0]}")
    worst(prob.p_site_min_kw - site, tol_site, lambda ix, x: f"site net power {x:g} kW below p_site_min_kw ({prob.p_site_min_kw[ix[0]]:g} kW) in step {ix[0]}")
    e = _energies(prob, p)
    tol_e = tol * (np.arange(T + 1) + 1.0)
    worst(e - prob.e_cap_kwh[:, None] - tol_e, 0.0, lambda ix, x: f"vehicle {ix[0]} holds {x:g} kWh above e_cap_kwh at step {ix[1]}")
    worst(prob.e_lb_kwh[:, None] - e - tol_e, 0.0, lambda ix, x: f"vehicle {ix[0]} holds {x:g} kWh below its reserve at step {ix[1]}")
    worst(np.abs(np.asarray(plan.e_kwh, float) - e) - tol_e, 0.0,
          lambda ix, x: f"the plan's energy of vehicle {ix[0]} at step {ix[1]} is off by {x:g} kWh from its powers")
    _, d = prob.window
    unmet = np.maximum(prob.need_eff_kwh - e[np.arange(n), d], 0.0)
    worst(unmet - np.asarray(plan.unmet_need_kwh, float) - tol_e[d], 0.0,
          lambda ix, x: f"vehicle {ix[0]}'s unmet need is {x:g} kWh more than the plan reports")
    return out


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


# --------------------------------------------------------------------------------------------
# aggregate flexibility


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
        unidirectional_cap_at_need = bool(np.all(prob.price_buy_cny_per_kwh >= 0))
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
    t = np.arange(T)
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
    off = {"pc": o_pc, "pd": o_pd, "e": o_e, "d": o_d, "ve": o_ve, "vd": o_vd, "s": o_s}
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
    cap is as in :func:`plan_exact`. With ``interval_bounds`` (default) the net battery energy
    into the fleet over every interval of steps is also bounded by the sum of what the vehicles
    can take or give in that interval (T(T+1)/2 two-term rows). It is still a relaxation (energy
    can move between vehicles present together): split the result with :func:`disaggregate_llf`.
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
    return AggregatePlan(
        p_kw=p, p_ch_kw=pc, p_dis_kw=pd, e_kwh=x[o_e:o_d], e_lo_kwh=e_lo, e_hi_kwh=e_hi,
        e_departing_kwh=x[o_d:o_ve],
        envelope_shortfall_kwh=np.maximum(x[o_ve:o_vd], 0.0) + np.maximum(x[o_vd:o_s], 0.0),
        cap_shortfall_kw=np.maximum(p - cap, 0.0), objective_cny=float(res.fun),
        status="optimal" if res.status == 0 else str(res.message),
        solve_time_s=time.perf_counter() - t0, price_shift_cny_per_kwh=shift,
        limit_shift_cny_per_kwh=limit_shift,
    )


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


def _run_split(prob: DispatchProblem, step, t0: float) -> DispatchPlan:
    """Run a per-step split over the horizon (:func:`_split_powers`) and evaluate it."""
    return evaluate_schedule(prob, _split_powers(prob, step), solve_time_s=time.perf_counter() - t0)


def _split_powers(prob: DispatchProblem, step) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# per-vehicle value functions: disaggregation by each vehicle's own optimum


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
    shift and no site limits the policy is the exact plan (:func:`plan_exact`'s cost to 1e-9 on
    the random fleets of tests/test_value_split.py).

    With ``band=(a, b)`` (a <= 1 <= b) the levels span the policies for every shift between
    ``a`` and ``b`` times ``banded_shift_cny_per_kwh`` (a part of the shift; default all of it)
    plus the rest of the shift: the lowest levels of the dearer, the highest of the cheaper. An
    aggregate LP misprices its site's limits (its envelopes are a relaxation), and with many
    alike vehicles a slightly wrong price moves them all one way; within the band a split can let
    the planned site power decide instead (:func:`disaggregate_value`). Two price sets in one
    pass; no effect where the banded shift is zero.

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


def disaggregate_value(
    prob: DispatchProblem, plan: AggregatePlan | None = None, *, band: tuple[float, float] | None = VALUE_PRICE_BAND,
    levels: np.ndarray | None = None,
) -> DispatchPlan:
    """Split an aggregate plan by each vehicle's own optimum against the plan's implied prices.

    :func:`plan_levels` (each vehicle's levels at the plan's prices), then a loop over steps, each a :func:`split_value` over the
    vehicles plugged in that step: the plan's power where they are indifferent, within the site
    limits and the soft cap. Unlike a per-step split of the plan's profile
    (:func:`disaggregate_llf`), every vehicle's move looks ahead to its own departure, so energy
    is never sold now that the same vehicle must buy back dearly later. ``levels``: the plan's
    levels if already computed.

    Returns:
        DispatchPlan (``objective_cny`` is NaN; ``solve_time_s`` the split's wall time).
    """
    t0 = time.perf_counter()
    return _run_split(prob, _value_step(prob, plan, band, levels), t0)


def _value_step(prob: DispatchProblem, plan: AggregatePlan | None, band, levels: np.ndarray | None):
    """The step function of :func:`disaggregate_value` (see :func:`_split_powers`)."""
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


def _site_kwh(prob: DispatchProblem) -> np.ndarray | None:
    """Grid-side energy the site's import limit allows in each step (T,), kWh; None if unlimited."""
    if not np.isfinite(prob.p_site_max_kw).any():
        return None
    return prob.p_site_max_kw * np.broadcast_to(np.asarray(prob.dt_h, float), (prob.n_steps,))


def trusted_problem(**fields) -> DispatchProblem:
    """A :class:`DispatchProblem` from fields already in validated form, without its checks.

    For callers whose inputs are valid by construction (a strategy re-planning from fleet
    state, a problem derived from a validated one): per-step fields float64 arrays of shape
    (T,), per-vehicle fields float64 arrays of shape (n,), arrivals / departures int64, scalars
    as documented on :class:`DispatchProblem`; ``n_vehicles`` and ``n_steps`` are filled in
    when omitted. The arrays are made read-only (pass copies)."""
    fields.setdefault("n_vehicles", int(np.asarray(fields["e0_kwh"]).size))
    fields.setdefault("n_steps", int(np.asarray(fields["price_buy_cny_per_kwh"]).size))
    return _derived_problem(**fields)


def _derived_problem(**fields) -> DispatchProblem:
    """A :class:`DispatchProblem` from fields already in validated form (1-D float arrays of the
    right shapes, whole-step int64 arrivals / departures), without ``__post_init__``."""
    obj = object.__new__(DispatchProblem)
    for name, default in _problem_fields():
        v = fields.get(name, default)
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
        object.__setattr__(obj, name, v)
    return obj


@lru_cache(maxsize=1)
def _problem_fields() -> tuple[tuple[str, object], ...]:
    return tuple((f.name, f.default) for f in dataclasses.fields(DispatchProblem))


def coarsen_blocks(prob: DispatchProblem, blocks: np.ndarray) -> DispatchProblem:
    """The same problem on blocks of ``blocks[k]`` steps each (unequal lengths allowed; the
    last block may reach beyond the horizon, padded with the last step's values).

    The result has a per-block ``dt_h`` array and is meant for :func:`plan_aggregate` only
    (without interval bounds); ``np.repeat(plan.p_kw, blocks)[:T]`` maps its profile back.
    Block rules as in :func:`coarsen`; a need beyond the padded horizon is reduced by what the
    vehicle can charge after it at full power.
    """
    blocks = np.asarray(blocks, dtype=np.int64)
    if blocks.ndim != 1 or blocks.size == 0 or np.any(blocks < 1):
        raise ValueError("blocks must be a non-empty list of positive step counts")
    T = prob.n_steps
    edges = np.concatenate([[0], np.cumsum(blocks)])
    if edges[-1] < T:
        raise ValueError(f"blocks cover {edges[-1]} steps; the horizon has {T}")
    if np.all(blocks == blocks[0]):
        return coarsen(prob, int(blocks[0]))
    Tc, Tp = blocks.size, int(edges[-1])
    kb = np.repeat(np.arange(Tc), blocks)  # block of each (padded) fine step

    def pad(x):
        x = np.asarray(x, dtype=float)
        return np.concatenate([x, np.repeat(x[-1:], Tp - T)]) if Tp > T else x

    def mean(x):
        return np.bincount(kb, weights=pad(x), minlength=Tc) / blocks

    def red(x, fn):
        return fn.reduceat(pad(x), edges[:-1])

    cap = prob.p_cap_kw
    soft = red(cap, np.minimum) if np.isfinite(cap).any() else None
    arr = np.searchsorted(edges, prob.arrival_step, side="left")  # first whole block
    dep_in = np.searchsorted(edges, prob.departure_step, side="right") - 1  # block containing it
    beyond = np.maximum(prob.departure_step - Tp, 0)
    dep = np.where(prob.departure_step >= Tp, Tc + beyond, np.minimum(dep_in, Tc))
    dep = np.where(prob.departure_step <= 0, prob.departure_step, dep)
    dep = np.maximum(dep, np.minimum(arr, 0))
    out = _derived_problem(
        n_vehicles=prob.n_vehicles, n_steps=Tc, dt_h=prob.dt_h * blocks.astype(float),
        price_buy_cny_per_kwh=mean(prob.price_buy_cny_per_kwh),
        price_v2g_cny_per_kwh=mean(prob.price_v2g_cny_per_kwh),
        arrival_step=arr.astype(np.int64), departure_step=dep.astype(np.int64),
        e0_kwh=prob.e0_kwh, e_cap_kwh=prob.e_cap_kwh, e_min_kwh=prob.e_min_kwh,
        e_need_kwh=prob.e_need_kwh, p_ch_max_kw=prob.p_ch_max_kw, p_dis_max_kw=prob.p_dis_max_kw,
        eta_ch=prob.eta_ch, eta_dis=prob.eta_dis, wear_cny_per_kwh=prob.wear_cny_per_kwh,
        wear_vehicle_cny_per_kwh=prob.wear_vehicle_cny_per_kwh,
        p_site_max_kw=red(prob.p_site_max_kw, np.minimum),
        p_site_min_kw=red(prob.p_site_min_kw, np.maximum),
        p_feeder_headroom_kw=soft, requests=(),
        penalty_need_cny_per_kwh=prob.penalty_need_cny_per_kwh,
        penalty_request_cny_per_kwh=prob.penalty_request_cny_per_kwh,
    )
    # the need at the (coarse) horizon end, with the hours after it counted on the fine grid
    a, d = out.window
    need = np.minimum(prob.e_need_kwh - prob.eta_ch * prob.p_ch_max_kw * prob.dt_h * beyond, prob.e_cap_kwh)
    out.__dict__["need_eff_kwh"] = np.where(d > a, need, -np.inf)
    return out


def coarsen(prob: DispatchProblem, block: int) -> DispatchProblem:
    """The same problem on steps ``block`` times longer (``T`` -> ``ceil(T / block)`` steps).

    For planning a large fleet's aggregate profile cheaply (the per-step split follows it).
    Prices are block means; site limits and the soft cap are the tightest of the block (a request
    that covers part of a block applies to all of it: conservative); a vehicle is plugged from the
    first whole block after its arrival to the start of the block containing its departure
    (conservative: needs are met up to a block early). The last block is padded with the last
    step's values.
    """
    if block <= 1:
        return prob
    T = prob.n_steps
    Tc = -(-T // block)
    pad = Tc * block - T

    def blocks(x):
        x = np.asarray(x, dtype=float)
        if pad:
            x = np.concatenate([x, np.repeat(x[-1:], pad)])
        return x.reshape(Tc, block)

    cap = prob.p_cap_kw
    soft = None
    if np.isfinite(cap).any():
        soft = blocks(cap).min(1)
    # built from an already validated problem: skip the validation (a third of a small
    # aggregate plan's set-up time)
    return _derived_problem(
        n_vehicles=prob.n_vehicles, n_steps=Tc,
        dt_h=prob.dt_h * block,
        price_buy_cny_per_kwh=blocks(prob.price_buy_cny_per_kwh).mean(1),
        price_v2g_cny_per_kwh=blocks(prob.price_v2g_cny_per_kwh).mean(1),
        arrival_step=-(-prob.arrival_step // block),
        departure_step=prob.departure_step // block,
        e0_kwh=prob.e0_kwh, e_cap_kwh=prob.e_cap_kwh, e_min_kwh=prob.e_min_kwh,
        e_need_kwh=prob.e_need_kwh, p_ch_max_kw=prob.p_ch_max_kw, p_dis_max_kw=prob.p_dis_max_kw,
        eta_ch=prob.eta_ch, eta_dis=prob.eta_dis, wear_cny_per_kwh=prob.wear_cny_per_kwh,
        wear_vehicle_cny_per_kwh=prob.wear_vehicle_cny_per_kwh,
        p_site_max_kw=blocks(prob.p_site_max_kw).min(1), p_site_min_kw=blocks(prob.p_site_min_kw).max(1),
        p_feeder_headroom_kw=soft, requests=(),
        penalty_need_cny_per_kwh=prob.penalty_need_cny_per_kwh,
        penalty_request_cny_per_kwh=prob.penalty_request_cny_per_kwh,
    )


# --------------------------------------------------------------------------------------------
# grouped aggregate: one envelope per departure group


def _subset(prob: DispatchProblem, idx: np.ndarray) -> DispatchProblem:
    """The vehicles ``idx`` of ``prob`` alone, without site limits, soft cap or requests (its own
    need at the horizon end, also for a problem on unequal blocks from :func:`coarsen_blocks`)."""
    sub = _derived_problem(
        n_vehicles=int(idx.size), n_steps=prob.n_steps,
        dt_h=prob.dt_h, price_buy_cny_per_kwh=prob.price_buy_cny_per_kwh,
        price_v2g_cny_per_kwh=prob.price_v2g_cny_per_kwh,
        arrival_step=prob.arrival_step[idx], departure_step=prob.departure_step[idx],
        e0_kwh=prob.e0_kwh[idx], e_cap_kwh=prob.e_cap_kwh[idx], e_min_kwh=prob.e_min_kwh[idx],
        e_need_kwh=prob.e_need_kwh[idx], p_ch_max_kw=prob.p_ch_max_kw[idx],
        p_dis_max_kw=prob.p_dis_max_kw[idx], eta_ch=prob.eta_ch[idx], eta_dis=prob.eta_dis[idx],
        wear_cny_per_kwh=prob.wear_cny_per_kwh,
        wear_vehicle_cny_per_kwh=prob.wear_vehicle_cny_per_kwh[idx],
        p_site_max_kw=np.full(prob.n_steps, np.inf), p_site_min_kw=np.full(prob.n_steps, -np.inf),
        p_feeder_headroom_kw=None, requests=(),
        penalty_need_cny_per_kwh=prob.penalty_need_cny_per_kwh,
        penalty_request_cny_per_kwh=prob.penalty_request_cny_per_kwh,
    )
    sub.__dict__["need_eff_kwh"] = prob.need_eff_kwh[idx]
    return sub


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
    feeder headroom) in one LP (:func:`_group_lp`). Returns ``(subs, profiles, result)``:
    ``(indices, sub-problem)`` per group, each group's net power profile (T,) kW, and the
    solver's result."""
    lab = np.asarray(labels)
    P, res = _group_lp(prob, lab, interval_bounds=interval_bounds)
    subs = [(idx, _subset(prob, idx)) for idx in (np.flatnonzero(lab == g) for g in range(P.shape[0]))]
    return subs, list(P), res


def _group_lp(prob: DispatchProblem, labels: np.ndarray, *, interval_bounds: bool = False):
    """Solve the aggregate LP with one envelope per group (``labels``, -1: left out), built for
    all groups at once: each group's sums (envelopes, powers, efficiencies, wear) are one matrix
    product over the vehicles, and every group has the same rows as :func:`plan_aggregate`'s LP
    (energy balance, present and departing energy within the envelopes, lower bounds soft) but
    none of its own site or cap rows; the site limits and the soft cap are shared rows.

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
            sub = _subset(prob, idx)
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


# --------------------------------------------------------------------------------------------
# class plans: one envelope per class of alike vehicles, split least laxity first per class

# Classes of a class plan (:func:`fleet_classes`): an LP of about 7 x classes x T variables.
MAX_CLASSES = 96


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
    sharing the hard site limits and the soft cap in one LP (:func:`grouped_profiles`; about
    ``7 * classes * T`` variables however large the fleet). Split it with
    :func:`disaggregate_classes` (or per step with :func:`split_classes`)."""
    t0 = time.perf_counter()
    lab = fleet_classes(prob, max_classes) if labels is None else np.asarray(labels)
    P, res = _group_lp(prob, lab)
    return ClassPlan(labels=lab, p_class_kw=P, p_kw=P.sum(0), objective_cny=float(res.fun),
                     status="optimal" if res.status == 0 else str(res.message),
                     solve_time_s=time.perf_counter() - t0)


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


def site_limit_can_bind(prob: DispatchProblem) -> bool:
    """Whether the vehicles plugged together could exceed the site's import or export limit in
    some step (their charging or discharging power above it). Where they cannot, the vehicles do
    not compete for the site and each one's own optimum is the exact plan (:func:`disaggregate_value`)."""
    if not (np.isfinite(prob.p_site_max_kw).any() or np.isfinite(prob.p_site_min_kw).any()):
        return False
    plug = prob.plugged
    return bool(np.any(prob.p_ch_max_kw @ plug > prob.p_site_max_kw)
                or np.any(prob.p_dis_max_kw @ plug > -prob.p_site_min_kw))


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


def schedule_score(prob: DispatchProblem, p_kw: np.ndarray) -> float:
    """A schedule's cost with the problem's penalties: energy cost - V2G revenue + wear, unmet
    needs at the need penalty and site power above the soft cap at the request penalty -- what
    two candidate splits are compared by. (As :func:`evaluate_schedule`, also for steps of
    unequal length.)"""
    p = np.asarray(p_kw, float)
    n, T = prob.n_vehicles, prob.n_steps
    dt = np.broadcast_to(np.asarray(prob.dt_h, float), (T,))
    pc, pd = np.maximum(p, 0.0), np.maximum(-p, 0.0)
    e_end = prob.e0_kwh[:, None] + np.cumsum((prob.eta_ch[:, None] * pc - pd / prob.eta_dis[:, None]) * dt, axis=1)
    _, d = prob.window
    e_dep = np.where(d > 0, e_end[np.arange(n), np.maximum(d - 1, 0)], prob.e0_kwh)
    unmet = np.maximum(prob.need_eff_kwh - e_dep, 0.0)
    cost = pc.sum(0) @ (prob.price_buy_cny_per_kwh * dt) - pd.sum(0) @ (prob.price_v2g_cny_per_kwh * dt)
    cost += prob.wear_total_cny_per_kwh @ ((pc + pd) @ dt)
    short = np.maximum(p.sum(0) - prob.p_cap_kw, 0.0) @ dt
    return float(cost + prob.penalty_need_cny_per_kwh * unmet.sum() + prob.penalty_request_cny_per_kwh * short)


def disaggregate_classes(prob: DispatchProblem, plan: ClassPlan) -> DispatchPlan:
    """Split a :func:`plan_classes` plan among the vehicles: a loop over steps, each a
    :func:`split_classes` over the vehicles plugged in that step.

    Returns:
        DispatchPlan (``objective_cny`` is NaN; ``solve_time_s`` the split's wall time).
    """
    t0 = time.perf_counter()
    return _run_split(prob, _classes_step(prob, plan), t0)


def _classes_step(prob: DispatchProblem, plan: ClassPlan):
    """The step function of :func:`disaggregate_classes` (see :func:`_split_powers`)."""
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
    p_cls = _split_powers(prob, _classes_step(prob, class_plan))
    p_val = _split_powers(prob, _value_step(prob, agg_plan, VALUE_PRICE_BAND, levels))
    return schedule_score(prob, p_cls) < schedule_score(prob, p_val)
