"""The dispatch problem, its plans, and the rules every plan is judged by.

A strategy builds a :class:`DispatchProblem` at each re-plan (from validated fleet state,
:func:`trusted_problem`); the planners (:mod:`.exact`, :mod:`.aggregate`, :mod:`.split`) turn it
into a :class:`DispatchPlan`. Here: the problem and plan types, a schedule's evaluation
(:func:`evaluate_schedule`, :func:`schedule_score`), the check of every limit
(:func:`check_plan`), and problems derived from a validated one (:func:`coarsen`,
:func:`coarsen_blocks`, :func:`subset_problem`).

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
* Peak charge (``peak_cny_per_kw`` > 0): the plan pays ``peak_cny_per_kw`` per kW by which the
  site's highest planned net power rises above ``peak_ref_kw`` (the billing period's peak so
  far) -- a demand charge seen from a rolling horizon ("peak-so-far" state: Risbeck & Rawlings,
  IEEE TAC 65(7), 2020). Below the reference the peak is free; above it the plan spreads
  charging over equally priced steps rather than bunching it at the start of a cheap period.
* No vehicle charges and discharges in the same step (:func:`check_plan`; how the exact plan
  ensures it: :mod:`.exact`).
* A valley fill (``p_floor_kw``) is a soft floor on site net power, each kWh below it costing
  ``floor_price_cny_per_kwh``; regulation (``reserve_kw``) is capacity held both ways around the
  planned power, a kW not held for an hour costing ``reserve_price_cny_per_kwh``. Their rows:
  :mod:`.grid_rows` (the exact and the aggregate LP; :func:`schedule_score` counts the floor).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Literal

import numpy as np

__all__ = [
    "GridRequest",
    "DispatchProblem",
    "DispatchPlan",
    "evaluate_schedule",
    "schedule_score",
    "check_plan",
    "site_limit_can_bind",
    "trusted_problem",
    "coarsen",
    "coarsen_blocks",
    "subset_problem",
]


_TOL_KW = 1e-6  # kW: power differences below this are solver noise


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
    peak_cny_per_kw: float = 0.0
    peak_ref_kw: float = 0.0
    # valley fill: soft floor on site net power (T,), -inf where none; a kWh below it costs
    # floor_price_cny_per_kwh (T,) (the request's price: what the grid pays for it)
    p_floor_kw: np.ndarray | None = None
    floor_price_cny_per_kwh: np.ndarray | None = None
    # regulation: capacity to hold both ways around the planned power (T,), kW (0 where none);
    # a kW not held for a step costs reserve_price_cny_per_kwh (T,) x dt; the energy headroom
    # asked is reserve_sustain_h of the capacity (a signal that may sit at +-p that long)
    reserve_kw: np.ndarray | None = None
    reserve_price_cny_per_kwh: np.ndarray | None = None
    reserve_sustain_h: float = 0.25
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
        if not (np.isfinite(self.peak_cny_per_kw) and self.peak_cny_per_kw >= 0):
            raise ValueError(f"peak_cny_per_kw must be finite and >= 0; got {self.peak_cny_per_kw}")
        if not (np.isfinite(self.peak_ref_kw) and self.peak_ref_kw >= 0):
            raise ValueError(f"peak_ref_kw must be finite and >= 0; got {self.peak_ref_kw}")
        s(self, "requests", tuple(self.requests))
        for name in ("p_floor_kw", "floor_price_cny_per_kwh", "reserve_kw", "reserve_price_cny_per_kwh"):
            v = getattr(self, name)
            if v is not None:
                a = np.broadcast_to(np.asarray(v, dtype=float), (T,)).copy()
                if np.isnan(a).any() or (name != "p_floor_kw" and (np.any(a < 0) or not np.all(np.isfinite(a)))):
                    raise ValueError(f"{name} must be {'>= 0 and finite' if name != 'p_floor_kw' else 'a number or -inf'} "
                                     f"with shape ({T},)")
                a.setflags(write=False)
                s(self, name, a)
        if (self.p_floor_kw is None) != (self.floor_price_cny_per_kwh is None):
            raise ValueError("give p_floor_kw and floor_price_cny_per_kwh together")
        if (self.reserve_kw is None) != (self.reserve_price_cny_per_kwh is None):
            raise ValueError("give reserve_kw and reserve_price_cny_per_kwh together")
        if not self.reserve_sustain_h >= 0:
            raise ValueError(f"reserve_sustain_h must be >= 0; got {self.reserve_sustain_h}")

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
        objective_cny: objective incl. penalties (NaN for plans from a per-step split).
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


def schedule_score(prob: DispatchProblem, p_kw: np.ndarray) -> float:
    """A schedule's cost with the problem's penalties: energy cost - V2G revenue + wear, unmet
    needs at the need penalty, site power above the soft cap at the request penalty and the peak
    above ``peak_ref_kw`` at ``peak_cny_per_kw`` -- what
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
    if prob.p_floor_kw is not None:  # a valley fill's floor: each kWh below it at its price
        cost += (np.maximum(prob.p_floor_kw - p.sum(0), 0.0) * prob.floor_price_cny_per_kwh) @ dt
    if prob.peak_cny_per_kw > 0 and T:
        cost += prob.peak_cny_per_kw * max(float(p.sum(0).max()) - prob.peak_ref_kw, 0.0)
    return float(cost + prob.penalty_need_cny_per_kwh * unmet.sum() + prob.penalty_request_cny_per_kwh * short)


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


def site_limit_can_bind(prob: DispatchProblem) -> bool:
    """Whether the vehicles plugged together could exceed the site's import or export limit in
    some step (their charging or discharging power above it). Where they cannot, the vehicles do
    not compete for the site and each one's own optimum is the exact plan (the value split,
    :func:`~v2gsim.strategies.dispatch.split.split_value` without a price shift)."""
    if not (np.isfinite(prob.p_site_max_kw).any() or np.isfinite(prob.p_site_min_kw).any()):
        return False
    plug = prob.plugged
    return bool(np.any(prob.p_ch_max_kw @ plug > prob.p_site_max_kw)
                or np.any(prob.p_dis_max_kw @ plug > -prob.p_site_min_kw))


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
    # built from an already validated problem: skip the validation (a large part of a small
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
        peak_cny_per_kw=prob.peak_cny_per_kw, peak_ref_kw=prob.peak_ref_kw,
        **_coarse_extras(prob, lambda x, fn: fn.reduce(blocks(x), axis=1), lambda x: blocks(x).mean(1)),
    )


def _coarse_extras(prob: DispatchProblem, red, mean) -> dict:
    """The floor and the regulation reserve on coarse blocks: the highest of each block (a
    request covering part of a block applies to all of it, as the soft cap does), prices the
    block mean."""
    out = {"reserve_sustain_h": prob.reserve_sustain_h}
    if prob.p_floor_kw is not None:
        out |= {"p_floor_kw": red(prob.p_floor_kw, np.maximum), "floor_price_cny_per_kwh": mean(prob.floor_price_cny_per_kwh)}
    if prob.reserve_kw is not None:
        out |= {"reserve_kw": red(prob.reserve_kw, np.maximum),
                "reserve_price_cny_per_kwh": mean(prob.reserve_price_cny_per_kwh)}
    return out


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
        peak_cny_per_kw=prob.peak_cny_per_kw, peak_ref_kw=prob.peak_ref_kw,
        **_coarse_extras(prob, red, mean),
    )
    # the need at the (coarse) horizon end, with the hours after it counted on the fine grid
    a, d = out.window
    need = np.minimum(prob.e_need_kwh - prob.eta_ch * prob.p_ch_max_kw * prob.dt_h * beyond, prob.e_cap_kwh)
    out.__dict__["need_eff_kwh"] = np.where(d > a, need, -np.inf)
    return out


def subset_problem(prob: DispatchProblem, idx: np.ndarray) -> DispatchProblem:
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
