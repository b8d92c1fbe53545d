"""Centralized V2G: an operator's platform dispatches its stations or depots by linear program.

The operator (one ``business_models`` entry, ``kind: centralized``) plans the charging and
discharging of every vehicle plugged at its sites on a rolling horizon: it minimises energy cost
minus V2G revenue plus battery-wear cost subject to each vehicle's energy need at the driver's
*stated* departure, the reserve the driver insists on, charger and site limits, the feeder's
headroom and the grid's requests (peak shaving or discharge calls for a time window, listed in
the scenario). The LPs are :mod:`v2gsim.strategies.dispatch` (HiGHS): one per controlled site,
exact per-vehicle for small sites, aggregate for large ones.

Exact sites: the strategy holds the per-vehicle plan and returns its column for the current step.
It re-plans every ``replan_every_min`` minutes, at the end of the plan, and (with
``replan_on_events``) whenever a vehicle arrived, re-plugged, or left before its stated
departure since the last plan. A site plan in which no vehicle may charge and discharge in the
same step is an LP unless doing both at once would pay (a V2G price above the purchase price
plus twice the wear); then a MIP, stopped after ``exact_time_limit_s`` with its best plan
(:func:`~v2gsim.strategies.dispatch.plan_exact`). Every plan is checked against every limit
before it is used; one that fails is replaced by a safe plan (charge only, as early as the
limits allow).

Aggregate sites (``mode: aggregate``, or ``auto`` at a site with more than ``exact_max_vehicles``
charging points, or once more than that many are plugged there; it then stays aggregate):
every ``replan_every_min`` only, the site's power profile is planned on the aggregate
energy/power envelopes of the vehicles plugged there, on ``aggregate_step_min`` blocks for
``aggregate_near_h``, ``aggregate_far_step_min`` blocks after that, until the last stated
departure (an LP of about 7T variables however many vehicles). How the plan reaches the vehicles
(``aggregate_split``):

* ``auto`` (default): where the vehicles plugged at the site could together exceed its limit,
  both splits below are run over the plan's blocks and the one that scores better (cost plus
  penalties) is kept (:func:`~v2gsim.strategies.dispatch.classes_do_better`); elsewhere
  ``value``, which is then the exact plan.
* ``value``: the LP's duals of the site limits and soft cap say what a kWh of site
  power is worth beyond its price in each block; with the prices shifted by that, every planned
  vehicle gets its own optimal policy, exactly and vectorised
  (:func:`~v2gsim.strategies.dispatch.value_thresholds`: a level to charge up to and one to
  discharge down to, per block). Each step the planned vehicles move towards their levels, the
  site taking the planned power where they are indifferent, and within the site limits and
  the soft cap (:func:`~v2gsim.strategies.dispatch.split_value`); vehicles that arrived since the
  plan share the planned power the others leave, least laxity first. Each vehicle looks ahead to
  its own departure, so energy is not sold now that the same vehicle must buy back dearly later
  -- the failure of a per-step split of the site's profile.
* ``classes``: the plan is one LP over classes of alike vehicles (same departure and arrival
  bins, close in need and headroom in hours of their own power;
  :func:`~v2gsim.strategies.dispatch.plan_classes`), each class's power shared among its members
  least laxity first each step (:func:`~v2gsim.strategies.dispatch.split_classes`); vehicles that
  arrived since share what the classes leave, and trigger a re-plan (at most every
  ``aggregate_step_min``). Vehicles leaving together get what they need before they leave.
* ``llf``: the profile's value is split each step among the vehicles plugged *now* by least
  laxity first (:func:`~v2gsim.strategies.dispatch.split_llf`).

Every vehicle's must-charge-now minimum is guaranteed, and (``auto``, ``value`` where the limit
can bind, ``classes``) so is what a set of vehicles leaving together must have now under the
site limit (:func:`~v2gsim.strategies.dispatch.need_floor_kwh`). Arrivals (except at a site on a
class plan) and early departures do not trigger a re-plan there, and a due re-plan is skipped (up
to ``replan_skip_max_h`` after the plan) while the vehicles that arrived or left early since the plan add up to at most
``replan_skip_tolerance`` of the charging power and energy need it assumed.

With ``charge_early_cny_per_kwh_h`` > 0 the plan's purchase prices carry a small time
preference: among equally priced hours it charges the earliest, so drivers who leave before
their stated time leave fuller, but the site's charging bunches at the start of each price
period (without it the LP's optimum happens to charge as late as it may).

The engine still clips every request to the physical limits and applies the CC-CV taper, so the
plan is an intention; re-planning corrects the drift.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time as _time
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from v2gsim.data.cn_calendar import is_workday
from v2gsim.fields import ConfigModel, LocalDateTime
from v2gsim.strategies.base import (
    Dispatch,
    Observation,
    Strategy,
    StrategyConfig,
    StrategyContext,
    register,
)
from v2gsim.strategies.dispatch.aggregate import plan_aggregate, plan_classes
from v2gsim.strategies.dispatch.exact import EXACT_TIME_LIMIT_S, plan_exact
from v2gsim.strategies.dispatch.levels import plan_levels
from v2gsim.strategies.dispatch.problem import (
    DispatchProblem,
    GridRequest,
    coarsen_blocks,
    site_limit_can_bind,
    trusted_problem,
)
from v2gsim.strategies.dispatch.solver import prepare_solver
from v2gsim.strategies.dispatch.split import classes_do_better, split_classes, split_llf, split_value

__all__ = ["CentralizedConfig", "GridRequestConfig", "Centralized"]

_log = logging.getLogger(__name__)


class GridRequestConfig(ConfigModel):
    """A grid-operator request to the operator's sites for a time window.

    ``peak_shaving``: the sites' net power must stay at or below ``p_kw`` (kW import).
    ``discharge_call``: the sites must feed at least ``p_kw`` (kW export), i.e. net power
    <= -p_kw. Both are soft in the plan (a large penalty per kWh missed); the planned shortfall
    is counted in the strategy's ``stats``.
    """

    kind: Literal["peak_shaving", "discharge_call"]
    start: LocalDateTime = Field(description="window start, local wall-clock time of the scenario")
    hours: Annotated[float, Field(gt=0, le=24 * 366, description="window length, h")]
    p_kw: Annotated[float, Field(ge=0, le=1e7, description="peak_shaving: import cap, kW; discharge_call: export, kW")]
    daily: bool = Field(default=False, description="repeat the window every day of the run at the same time of day")
    site: str | None = Field(
        default=None,
        description="site id the request is for; omitted = all sites of this operator, split in proportion to their plugged power",
    )


class CentralizedConfig(StrategyConfig):
    """Centralized dispatch by the station/depot operator (see module docstring)."""

    kind: Literal["centralized"] = "centralized"
    replan_every_min: Annotated[int, Field(ge=1, le=1440, description="re-plan at least every this many minutes")] = 60
    replan_on_events: bool = Field(
        default=True, description="also re-plan when vehicles arrived, re-plugged or left before their stated departure"
    )
    horizon_h: Annotated[float, Field(gt=0, le=168, description="planning horizon, h")] = 24.0
    mode: Literal["exact", "aggregate", "auto"] = Field(
        default="auto",
        description="exact: one LP over every vehicle; aggregate: LP over the fleet envelope, split by aggregate_split; "
        "auto: exact for a site with at most exact_max_vehicles charging points while at most that many vehicles are "
        "plugged there, aggregate from the first re-plan with more (and from the start at larger sites)",
    )
    exact_max_vehicles: Annotated[int, Field(
        ge=1, le=100_000, description="auto mode: largest site planned exactly, in charging points and in vehicles plugged",
    )] = 50
    exact_time_limit_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=EXACT_TIME_LIMIT_S,
        description="exact sites: bound on the solver time of one site plan, s. Only a plan the LP cannot settle (a "
        "vehicle would charge and discharge at once, e.g. a V2G price above the purchase price plus twice the wear) "
        "comes near it: a MIP then runs until this limit and the best plan it has (never one breaking a limit) is used",
    )
    aggregate_step_min: Annotated[int, Field(ge=1, le=1440)] = Field(
        default=15,
        description="aggregate mode: step of the site's planned profile, min (rounded to whole simulation steps); "
        "requests covering part of a block apply to all of it",
    )
    aggregate_far_step_min: Annotated[int, Field(ge=1, le=1440)] = Field(
        default=180,
        description="aggregate mode: step of the profile beyond aggregate_near_h, min (coarser far out: a smaller LP; "
        "only the first hours are executed before the next re-plan); set equal to aggregate_step_min for even blocks",
    )
    aggregate_near_h: Annotated[float, Field(ge=0, le=168)] = Field(
        default=2.0, description="aggregate mode: hours planned on aggregate_step_min blocks before the coarser ones",
    )
    aggregate_split: Literal["auto", "value", "classes", "llf"] = Field(
        default="auto",
        description="aggregate mode: how the site's plan reaches its vehicles. value: each vehicle planned in the "
        "plan follows its own optimum against the prices, shifted by what the site's limits are worth in the plan "
        "(dispatch.value_thresholds); classes: the plan is one LP over classes of alike vehicles and each class's "
        "power is split among its vehicles least laxity first (dispatch.plan_classes); auto: at a site whose limit "
        "the vehicles plugged there could exceed (their charging or discharging power above it) both, and the one "
        "that does better over the plan (dispatch.classes_do_better), value elsewhere; llf: one fleet-wide profile "
        "split each step least laxity first",
    )
    aggregate_interval_bounds: bool = Field(
        default=False,
        description="aggregate mode: add the interval-energy bounds to the aggregate LP (tighter, about 5x slower)",
    )
    replan_skip_tolerance: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.5,
        description="aggregate sites: skip a due hourly re-plan while the vehicles that arrived or left early since "
        "the plan add up to at most this share of the plugged charging power and of the energy need the plan "
        "assumed (0: never skip)",
    )
    replan_skip_max_h: Annotated[float, Field(ge=0, le=24)] = Field(
        default=6.0, description="aggregate sites: re-plan at least this often however little the fleet drifted, h",
    )
    need: Literal["stop", "min_departure"] = Field(
        default="stop",
        description="energy each vehicle must have at its stated departure: the driver's full point (stop) or their minimum",
    )
    departure_margin_min: Annotated[int, Field(ge=0, le=720)] = Field(
        default=30,
        description="plan to meet each need this many minutes before the driver's stated departure (buffer for "
        "early departures and the charging taper)",
    )
    charge_early_cny_per_kwh_h: Annotated[float, Field(ge=0, le=0.01)] = Field(
        default=0.0,
        description="plan-only time preference: a kWh charged h hours from now costs h times this much more in the "
        "plan, so that among equally priced hours it charges the earliest and drivers who leave before their stated "
        "time leave fuller, at the price of a higher site peak (1e-4 is enough: 0.0024 CNY/kWh over a day, far below "
        "any tariff step); 0 (default): off",
    )
    allow_v2g: bool = Field(default=True, description="discharge bidirectional vehicles at bidirectional chargers")
    wear_cny_per_kwh: Annotated[float, Field(ge=0, le=10)] | Literal["model", "auto"] = Field(
        default="auto",
        description="battery-wear cost per kWh of grid-side throughput, CNY/kWh; 'model' reads from the wear model half "
        "each vehicle's price of a kWh fed back and recharged at its own V2G cycle (contracts.v2g_wear_cny_per_kwh); 'auto' (default): 'model' when the scenario's wear "
        "model publishes its price, else 0.05",
    )
    demand_charge_cny_per_kw_month: Annotated[float, Field(ge=0, le=500)] | Literal["tariff"] = Field(
        default="tariff",
        description="two-part demand charge the plan pays per kW by which a site's planned net load rises above its "
        "peak so far in the billing month, CNY/kW/month; 'tariff': the scenario's "
        "tariff.demand_charge_cny_per_kw_month (0 when the tariff has none)",
    )
    peak_penalty_cny_per_kw: Annotated[float, Field(ge=0, le=500)] = Field(
        default=0.2,
        description="plan-only charge per kW by which a site's planned net load rises above its peak so far in the "
        "billing month, added to the demand charge: it spreads charging over equally priced steps instead of "
        "starting every car at once at a cheap period's first step (the rebound peak); 0: off",
    )
    arrival_forecast: bool = Field(
        default=True,
        description="plan with a persistence forecast of the vehicles that will plug in (queued cars "
        "included): those that plugged in at the site at the same time of day on the most recent earlier day of the "
        "same type (workday, or rest day: weekends and public holidays on China's calendar; the day before when the "
        "run has none within two weeks), with their energy "
        "need, charging power and stay, as vehicles of the plan that are not dispatched (they make room for the "
        "arrivals under the peak charge, the site limit, the feeder headroom and the requests)",
    )
    requests: list[GridRequestConfig] = Field(default_factory=list, description="grid requests (peak shaving, discharge calls); "
                                              "kept for earlier scenarios: use grid_operator.requests")
    respect_feeder_headroom: bool = Field(
        default=True, description="keep the sites' load within the feeder's headroom (soft in the plan, enforced each step)"
    )
    feeder_forecast_in_plan: bool = Field(
        default=True, description="with respect_feeder_headroom: the plan's soft cap after the current step is the feeder's "
        "forecast headroom (transformer rating less the base-load forecast less the other operators' last draw); false: "
        "the current step only (the rule before)")
    penalty_need_cny_per_kwh: Annotated[float, Field(gt=0, le=1e6, description="plan penalty per kWh of need unmet")] = 1000.0
    penalty_request_cny_per_kwh: Annotated[
        float, Field(gt=0, le=1e6, description="plan penalty per kWh above a request's cap or the feeder headroom")
    ] = 100.0

    def grid_requests(self, operator_id: str) -> list:
        """``requests`` in the one schema (:mod:`v2gsim.market.events`): peak_shaving is a
        peak_cut with the same cap; known before the run starts, as these always were."""
        from v2gsim.market.events import GridRequest

        return [GridRequest(kind="peak_cut" if r.kind == "peak_shaving" else "discharge_call", start=r.start, hours=r.hours,
                            p_kw=r.p_kw, daily=r.daily, site=r.site, notice_h=None, to=[operator_id],
                            settlement="operator") for r in self.requests]

    @model_validator(mode="after")
    def _request_sites(self):
        if self.sites is not None:
            bad = [r.site for r in self.requests if r.site is not None and r.site not in self.sites]
            if bad:
                raise ValueError(f"requests name sites {bad} that this business model does not control ({self.sites})")
        return self


FORECAST_LOOKBACK_DAYS = 14  # covers the longest run of days off (Spring Festival, National Day: 7-9 days)


def _same_day_type_lag(times: pd.DatetimeIndex, day_steps: int) -> np.ndarray:
    """Per clock step t, the steps back to the same clock time on the most recent earlier day of
    the same type (workday or rest day, :func:`v2gsim.data.cn_calendar.is_workday`) within
    ``FORECAST_LOOKBACK_DAYS`` on the clock, else one day (yesterday's persistence), shape (n,).

    So Saturday's arrivals are forecast from the Sunday before rather than from Friday, and
    Monday's from Friday rather than Sunday."""
    work = is_workday(times)
    n = work.size
    lag_days = np.zeros(n, np.int64)
    t = np.arange(n)
    for d in range(1, FORECAST_LOOKBACK_DAYS + 1):  # a loop over days back, not over steps
        src = t - d * day_steps
        hit = (lag_days == 0) & (src >= 0)
        hit[hit] &= work[src[hit]] == work[hit]
        lag_days[hit] = d
    return np.where(lag_days > 0, lag_days, 1) * day_steps


@dataclass(frozen=True)
class _ValuePlan:
    """An aggregate site's plan as each planned vehicle's optimal levels (``aggregate_split:
    value``): the vehicles (sorted) and their stated departure step when planned, the levels
    (k, blocks, 4) from :func:`plan_levels`, each block's end (steps from the plan's start),
    the soft cap per step (kW), and the planned vehicles' parameters (k,) as the plan saw them."""

    idx: np.ndarray
    dep: np.ndarray
    levels: np.ndarray
    ends: list[int]
    cap_kw: np.ndarray
    e_cap: np.ndarray
    e_min: np.ndarray
    need: np.ndarray  # -inf where the departure is unknown
    p_ch: np.ndarray
    eta_ch: np.ndarray
    eta_dis: np.ndarray
    up_kwh: np.ndarray  # battery energy a full step can add / take (charger, discharge power)
    down_kwh: np.ndarray


@dataclass(frozen=True)
class _ClassSitePlan:
    """An aggregate site's class plan (``aggregate_split: classes``): the vehicles planned
    (sorted), their stated departure step when planned, their classes (k,), each class's power
    per step from the plan's start (G, T), kW, and the soft cap per step, kW."""

    idx: np.ndarray
    dep: np.ndarray
    labels: np.ndarray
    p_class_kw: np.ndarray
    cap_kw: np.ndarray


@register("centralized")
class Centralized(Strategy):
    """Rolling-horizon LP dispatch of the operator's plugged vehicles.

    Attributes:
        stats: counters for KPIs (read after a run): ``replans`` (re-planning rounds),
            ``solve_time_s``, ``solve_failures`` (site plans that failed: an aggregate LP, or an
            exact plan replaced by the safe plan), ``exact_solves``, ``exact_time_limited`` (exact
            site plans stopped by ``exact_time_limit_s`` before they were proven optimal; feasible),
            ``aggregate_solves`` (one per site LP), ``aggregate_replans_skipped`` (due
            aggregate-site re-plans skipped: the fleet had not drifted from the plan,
            ``replan_skip_tolerance``),
            ``planned_cap_shortfall_kwh`` (energy the executed plan columns sat above a request
            cap or the feeder headroom), ``headroom_curtailed_kwh`` (charging held back each step
            to stay within the feeder headroom).
    """

    config_cls = CentralizedConfig

    def __init__(self, config: CentralizedConfig, context: StrategyContext):
        super().__init__(config, context)
        prepare_solver()
        sites = context.site_table
        self._site_index = sites.index
        self._site_limit = sites.p_limit_kw
        self._site_ports = sites.ports
        self._site_pos = {int(k): i for i, k in enumerate(self._site_index)}  # model site index -> position here
        dt_h = context.dt_h
        self._replan_steps = max(1, int(round(config.replan_every_min / 60.0 / dt_h)))
        self._margin_steps = int(round(config.departure_margin_min / 60.0 / dt_h))
        self._horizon_steps = max(1, int(np.ceil(config.horizon_h / dt_h - 1e-9)))
        # the grid requests visible to it (Observation.requests) as windows on the clock; a plan
        # made before a new one became visible is re-made at once
        self._req_seen: tuple = ()
        self._windows: list[tuple[int, int, float, str, str | None, float, float]] = []
        self._requests_changed = False
        self._signal_cache: dict[int, np.ndarray] = {}  # request number -> its regulation signal
        self._signals_on = False  # a visible regulation request carries a signal
        sites_all = context.site_table
        self._dis_cap_kw = float((sites_all.p_max_kw * sites_all.ports * sites_all.bidirectional_share).sum())
        # wear per kWh of throughput: the wear model's marginal price ('model', or 'auto' when the
        # scenario's wear model publishes one), else a constant ('auto' without one: 0.05 [C])
        w = config.wear_cny_per_kwh
        self._wear_from_model = w == "model" or (w == "auto" and context.wear_price_published)
        self._wear_fixed_cny_per_kwh = 0.05 if w in ("auto", "model") else float(w)
        self._block = max(1, int(round(config.aggregate_step_min / 60.0 / dt_h)))
        self._far_block = max(1, int(round(config.aggregate_far_step_min / 60.0 / dt_h)))
        self._near_steps = int(round(config.aggregate_near_h / dt_h))
        # surplus charging into vehicles that cannot discharge never pays while prices are >= 0
        self._store_uni = bool(np.any(np.asarray(context.price_cny_per_kwh) < 0))
        self._room_fc_kw = context.headroom_forecast_kw()  # rating less the base-load forecast (inf: unknown)
        self._base_fc_kw = (np.zeros(len(context.times)) if context.base_load_forecast_kw is None
                            else np.asarray(context.base_load_forecast_kw, float))
        # aggregate sites: site index -> (plan step, site profile (T,) kW, planned cap shortfall (T,) kW)
        self._agg: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        # aggregate sites: site index -> (vehicles planned (sorted), their stated departures, charger
        # power, need gap kWh) at plan time, and the next step a due re-plan is checked
        self._agg_ref: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._agg_next: dict[int, int] = {}
        # aggregate sites with aggregate_split "value": site index -> its vehicles' levels
        self._agg_val: dict[int, _ValuePlan] = {}
        # aggregate sites planned by classes: site index -> the class plan; and those where a
        # vehicle arrived since their plan
        self._agg_cls: dict[int, _ClassSitePlan] = {}
        self._agg_arrived: set[int] = set()
        self._skip_max_steps = int(round(config.replan_skip_max_h / dt_h))
        self._agg_lut: np.ndarray | None = None  # site index -> is an aggregate site
        self._agg_lut_keys = 0
        # the plan held between re-plans
        self._idx = np.empty(0, dtype=np.int64)  # sorted vehicle indices
        self._dep = np.empty(0, dtype=np.int64)  # stated departure at plan time
        self._P = np.zeros((0, 0))
        self._short = np.zeros(0)
        self._t0 = -(10**9)
        self._prev_net_kw = 0.0
        dc = config.demand_charge_cny_per_kw_month
        self._peak_cny_per_kw = (context.demand_charge_cny_per_kw_month if dc == "tariff" else float(dc)) + config.peak_penalty_cny_per_kw
        # each site's highest dispatched net load so far in the billing month (recorded run only), kW
        self._peak_kw = np.zeros(len(self._site_index))
        self._month = np.asarray(context.times.year * 12 + context.times.month) if len(context.times) else np.zeros(0, int)
        # the arrival forecast: per site and clock step, what the vehicles that plugged in then
        # needed (grid-side kWh), their charging power (kW) and their stays x need (steps x kWh)
        n_clock, n_here = len(context.times), len(self._site_index)
        self._day_steps = max(1, int(round(24.0 / dt_h)))
        self._arr_kwh = np.zeros((n_here, n_clock))
        self._arr_p_kw = np.zeros((n_here, n_clock))
        self._arr_stay_kwh = np.zeros((n_here, n_clock))
        self._fc_lag_steps = _same_day_type_lag(context.times, self._day_steps)
        self._seen_idx = np.empty(0, dtype=np.int64)  # plugged last step (sorted), their stated departure
        self._seen_dep = np.empty(0, dtype=np.int64)
        self.stats: dict[str, float] = {
            "replans": 0, "solve_time_s": 0.0, "solve_failures": 0, "exact_solves": 0, "exact_time_limited": 0,
            "aggregate_solves": 0,
            "aggregate_replans_skipped": 0,
            "planned_cap_shortfall_kwh": 0.0, "headroom_curtailed_kwh": 0.0,
        }

    # ------------------------------------------------------------------ set-up

    def _request_windows(self, requests: tuple) -> list[tuple[int, int, float, str, str | None, float, float]]:
        """The visible requests it plans for (in scenario order) as global clock steps: (start,
        end, p_kw, kind, site, price, sustain_h). Peak cuts and discharge calls are caps on the sites' net
        power (p_kw the cap, < 0 an export; a discharge call without a power asks for every
        bidirectional charger of its sites at full power); a valley fill is a floor (p_kw), a kWh
        below it costing its price; regulation is capacity held both ways (p_kw), a kW not held
        for an hour costing the capacity price per kW and hour of the window plus the mileage it
        would have earned (:data:`v2gsim.market.regulation.MILEAGE_PER_MW_H` unless given)."""
        from v2gsim.market.regulation import MILEAGE_PER_MW_H

        out = []
        for q in sorted(requests, key=lambda q: q.number):
            r = q.request
            price = 0.0
            if q.kind == "peak_cut":
                p_net, kind = r.p_kw, "peak_shaving"
            elif q.kind == "discharge_call":
                p_net, kind = -(r.p_kw if r.p_kw is not None else self._dis_cap_kw), "discharge_call"
            elif q.kind == "valley_fill":
                p_net, kind, price = r.p_kw, "valley_fill", r.price_cny_per_kwh
            else:  # regulation
                ratio = MILEAGE_PER_MW_H if r.mileage_per_mw_h is None else r.mileage_per_mw_h
                p_net, kind = r.p_kw, "regulation"
                price = r.capacity_price_cny_per_kw / r.window_h + r.mileage_price_cny_per_mw * ratio / 1000.0
            out += [(a, b, float(p_net), kind, r.site, float(price), r.sustain_min / 60.0) for a, b in q.windows]
        return out

    # ------------------------------------------------------------------ each step

    def decide(self, obs: Observation) -> Dispatch:
        s = obs.step
        f = obs.fleet
        cur = obs.plugged_idx
        if s == getattr(self.context, "n_warmup", 0):  # count the recorded run only
            self.stats.update({k: type(v)(0) for k, v in self.stats.items()})
        if s == getattr(self.context, "n_warmup", 0) or (0 < s < self._month.size and self._month[s] != self._month[s - 1]):
            self._peak_kw[:] = 0.0  # a new billing period (the bills count the recorded run only)
        if obs.requests is not self._req_seen:
            self._req_seen = obs.requests
            windows = self._request_windows(obs.requests)
            self._signals_on = any(q.kind == "regulation" and q.request.signal is not None for q in obs.requests)
            if windows != self._windows:
                self._windows = windows
                self._requests_changed = bool(self._agg) or self._idx.size > 0  # a plan exists that did not know them
        site_cur = f.site[cur]
        if self.config.arrival_forecast:
            self._note_arrivals(obs, cur, site_cur)
        agg_rows = self._agg_rows(site_cur)
        due = [k for k, (t0, prof, _) in self._agg.items()
               if s - t0 >= min(prof.size, self._replan_steps) and s >= self._agg_next.get(k, s)]
        if due and self.config.replan_skip_tolerance > 0:
            due = [k for k in due if not self._skip_agg(obs, k, cur[site_cur == k])]
        # a class plan holds no power for vehicles that arrived since: re-plan for them (at most
        # every aggregate_step_min)
        due += [k for k in self._agg_arrived if k not in due and s - self._agg[k][0] >= self._block]
        exact_due = self._needs_replan(obs, cur[~agg_rows])
        if self._requests_changed:  # a request became visible: every plan is made again
            due, exact_due = list(self._agg), exact_due or bool(np.any(~agg_rows)) or self._idx.size > 0
            self._requests_changed = False
        if due or exact_due:
            self._replan(obs, cur, due, exact_due)
            agg_rows = self._agg_rows(site_cur)
        p = np.zeros(cur.size)
        ex = np.flatnonzero(~agg_rows)
        if ex.size:
            p[ex] = self._exact_column(obs, cur[ex])
        for k, (t0, prof, short) in self._agg.items():
            rows = np.flatnonzero(site_cur == k)
            col = s - t0
            if col < short.size:
                self.stats["planned_cap_shortfall_kwh"] += float(short[col]) * obs.dt_h
            if rows.size:
                p[rows] = self._split(obs, cur[rows], k, float(prof[col]) if col < prof.size else 0.0, col)
        # The plan assumes linear charging; the battery tapers near full and drivers may overstay or
        # the plan may be stale. Never give a vehicle less than it must have now to reach its need
        # at full power over the steps left before its stated departure.
        must = self._must_kw(obs, cur)
        p = np.where(must > 0, np.maximum(p, must), p)
        p_max = f.p_plug_max_kw[cur]
        p = np.minimum(np.maximum(p, -p_max * (f.can_discharge[cur] & self.config.allow_v2g)), p_max)
        if self._signals_on:
            p = self._follow_signals(obs, cur, site_cur, p)
        if self.config.respect_feeder_headroom and np.isfinite(obs.feeder_headroom_kw):
            p = self._within_headroom(obs, cur, p)
        self._prev_net_kw = float(p.sum())
        if self._peak_cny_per_kw > 0 and cur.size:
            sites_u, inv = np.unique(site_cur, return_inverse=True)
            pos = np.fromiter((self._site_pos.get(int(k), -1) for k in sites_u), np.int64, sites_u.size)
            net = np.bincount(inv, weights=p, minlength=sites_u.size)
            ok = pos >= 0
            self._peak_kw[pos[ok]] = np.maximum(self._peak_kw[pos[ok]], net[ok])
        keep = p != 0.0  # vehicles left out draw nothing; the engine need not step them
        return Dispatch(cur[keep], p[keep])

    def _follow_signals(self, obs: Observation, cur: np.ndarray, site_cur: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Visible regulation requests with a signal, in their windows: the plugged bidirectional
        vehicles of the addressed sites move their power by ``-mean(signal over the step) x p_kw``
        (+1: the net load falls), each by its room (:func:`v2gsim.market.regulation.follow_signal`)."""
        from v2gsim.market.regulation import follow_signal, read_signal

        s, f = obs.step, obs.fleet
        for q in obs.requests:
            r = q.request
            if q.kind != "regulation" or r.signal is None:
                continue
            for a, b in q.windows:
                if not a <= s < b:
                    continue
                x = self._signal_cache.get(q.number)
                if x is None:
                    x, problems = read_signal(r.signal, f"grid_operator.requests[{q.number}].signal")
                    if problems:
                        from v2gsim.errors import ScenarioError

                        raise ScenarioError(problems)
                    self._signal_cache[q.number] = x
                mean = float(x.reshape(b - a, -1)[s - a].mean())
                on = f.can_discharge[cur] & self.config.allow_v2g
                if r.site is not None:
                    at = [k for k in self._site_pos if self._site_id(k) == r.site]  # a loop over sites
                    on &= np.isin(site_cur, at)
                k = np.flatnonzero(on)
                if k.size == 0:
                    continue
                v = cur[k]
                p[k] = follow_signal(p[k], -mean * float(r.p_kw), f.p_plug_max_kw[v], f.p_plug_max_kw[v], f.e_kwh[v],
                                     f.e_min_departure_kwh[v], f.capacity_kwh[v], f.eta_charge[v], f.eta_discharge[v], obs.dt_h)
        return p

    def _note_arrivals(self, obs: Observation, cur: np.ndarray, site_cur: np.ndarray) -> None:
        """Record the vehicles that plugged in this step (or came back with a new stated departure)
        at each site: their grid-side energy need, charging power and stay (the arrival forecast)."""
        f = obs.fleet
        s = obs.step
        dep = f.t_depart_est_step[cur]
        if self._seen_idx.size:
            pos = np.minimum(np.searchsorted(self._seen_idx, cur), self._seen_idx.size - 1)
            new = (self._seen_idx[pos] != cur) | (self._seen_dep[pos] != dep)
        else:
            new = np.ones(cur.size, bool)
        self._seen_idx, self._seen_dep = cur, dep.copy()
        v = cur[new]
        if not v.size or s >= self._arr_kwh.shape[1]:
            return
        sites_u, inv = np.unique(site_cur[new], return_inverse=True)  # a loop over sites, not vehicles
        pos_site = np.fromiter((self._site_pos.get(int(k), -1) for k in sites_u), np.int64, sites_u.size)[inv]
        ok = (pos_site >= 0) & (dep[new] > s)
        if not ok.any():
            return
        v, ps = v[ok], pos_site[ok]
        gap = np.maximum(self._need_kwh(f, v) - f.e_kwh[v], 0.0) / f.eta_charge[v]
        stay = (f.t_depart_est_step[v] - s).astype(float)
        n_here = self._arr_kwh.shape[0]
        self._arr_kwh[:, s] += np.bincount(ps, weights=gap, minlength=n_here)
        self._arr_p_kw[:, s] += np.bincount(ps, weights=f.p_plug_max_kw[v] * (gap > 0), minlength=n_here)
        self._arr_stay_kwh[:, s] += np.bincount(ps, weights=stay * gap, minlength=n_here)

    def _agg_rows(self, site_cur: np.ndarray) -> np.ndarray:
        """Which of the plugged vehicles (by their sites ``site_cur``) are at aggregate sites."""
        if not self._agg:
            return np.zeros(site_cur.size, bool)
        if self._agg_lut is None or self._agg_lut_keys != len(self._agg):
            keys = np.fromiter(self._agg, dtype=np.int64)
            lut = np.zeros(max(int(keys.max()), int(site_cur.max(initial=0))) + 1, bool)
            lut[keys] = True
            self._agg_lut, self._agg_lut_keys = lut, len(self._agg)
        lut = self._agg_lut
        if site_cur.size and site_cur.max() >= lut.size:
            lut = np.concatenate([lut, np.zeros(int(site_cur.max()) + 1 - lut.size, bool)])
            self._agg_lut = lut
        return lut[np.maximum(site_cur, 0)] & (site_cur >= 0)

    def _skip_agg(self, obs: Observation, k: int, v: np.ndarray) -> bool:
        """Whether aggregate site ``k``'s due re-plan can wait (and count it): its plan still runs
        ``replan_skip_max_h`` from its start and at least one re-plan period beyond now, and the
        vehicles ``v`` plugged there now differ from those it planned for (arrivals, early
        departures) by at most ``replan_skip_tolerance`` of its charging power and energy need."""
        s = obs.step
        t0, prof, _ = self._agg[k]
        col = s - t0
        ref = self._agg_ref.get(k)
        if ref is None or col + self._replan_steps > min(self._skip_max_steps, prof.size - self._replan_steps):
            return False
        idx, dep, pch, gap = ref
        f = obs.fleet
        tol = self.config.replan_skip_tolerance
        pos = np.minimum(np.searchsorted(idx, v), max(idx.size - 1, 0))
        # arrivals, and vehicles that left and came back with a new stated departure
        new = (idx[pos] != v) | (dep[pos] != f.t_depart_est_step[v]) if idx.size else np.ones(v.size, bool)
        stay = (dep > s) | (dep < 0)  # planned to be plugged now (-1: departure unknown)
        left = stay & ~obs.plugged[idx]
        p_ref, gap_ref = float(pch[stay].sum()), float(gap.sum())
        vn = v[new]
        p_drift = float(f.p_plug_max_kw[vn].sum() + pch[left].sum())
        gap_drift = float(np.maximum(self._need_kwh(f, vn) - f.e_kwh[vn], 0.0).sum() + gap[left].sum())
        if p_drift > tol * p_ref or gap_drift > tol * max(gap_ref, 1e-9):
            return False
        self.stats["aggregate_replans_skipped"] += 1
        self._agg_next[k] = s + self._replan_steps
        return True

    def _exact_column(self, obs: Observation, cur: np.ndarray) -> np.ndarray:
        """The held exact plan's power for the vehicles ``cur`` this step (k,), kW."""
        f = obs.fleet
        col = obs.step - self._t0
        pos = np.searchsorted(self._idx, cur)
        pos_c = np.minimum(pos, max(self._idx.size - 1, 0))
        known = self._idx[pos_c] == cur if self._idx.size else np.zeros(cur.size, bool)
        p = np.zeros(cur.size)
        if col < self._P.shape[1]:
            p[known] = self._P[pos_c[known], col]
            if self._short.size > col:
                self.stats["planned_cap_shortfall_kwh"] += float(self._short[col]) * obs.dt_h
        if not known.all():  # unplanned arrivals (replan_on_events off): charge as they would uncontrolled
            u = cur[~known]
            p[~known] = np.minimum(f.p_plug_max_kw[u], np.maximum(f.e_stop_kwh[u] - f.e_kwh[u], 0.0) / (f.eta_charge[u] * obs.dt_h))
        return p

    def _split(self, obs: Observation, v: np.ndarray, site_k: int, target_kw: float, col: int) -> np.ndarray:
        """This step (``col`` steps into the plan) of an aggregate site's plan for its plugged
        vehicles ``v``: vehicles in the plan follow their own optimal levels (``aggregate_split:
        value``), the others (arrivals since) share the planned power those leave unused, least
        laxity first; with ``llf`` all share the planned power least laxity first."""
        f = obs.fleet
        s = obs.step
        dt = obs.dt_h
        limit = self._limit(site_k)
        cp = self._agg_cls.get(site_k)
        if cp is not None:
            return self._split_classes(obs, v, site_k, cp, col, limit)
        p = np.zeros(v.size)
        rest = slice(None)
        vp = self._agg_val.get(site_k)
        b = bisect.bisect_right(vp.ends, col) if vp is not None else 0
        if vp is not None and b < vp.levels.shape[1] and vp.idx.size:
            pos = np.minimum(np.searchsorted(vp.idx, v), vp.idx.size - 1)
            # in the plan, and in the same stay (a driver who left and came back is not)
            known = (vp.idx[pos] == v) & (vp.dep[pos] == f.t_depart_est_step[v])
            kn = np.flatnonzero(known)
            q = pos[kn]
            cap = vp.e_cap[q]
            e = np.minimum(f.e_kwh[v[kn]], cap)
            dep = vp.dep[q]
            # a block's levels are for its end: move there evenly over the steps it has left
            # (at once with a time preference: the earliest of equally priced steps)
            left = 1 if self.config.charge_early_cny_per_kwh_h > 0 else vp.ends[b] - col
            ek = e[:, None]
            cap_kw = float(vp.cap_kw[col]) if col < vp.cap_kw.size else np.inf
            steps_left = np.maximum(dep - (self._margin_steps + s), 1)
            # where the site's limit can bind (aggregate_split: value there), keep every need reachable
            # (none to keep when every car plugged now came after the plan: the look-ahead has no length)
            binds = bool(kn.size and np.isfinite(limit) and vp.p_ch.sum() > limit)
            p[kn] = split_value(
                ek + (vp.levels[q, b] - ek) / left, e,
                up_kwh=np.minimum(vp.up_kwh[q], cap - e), down_kwh=np.minimum(vp.down_kwh[q], np.maximum(e - vp.e_min[q], 0.0)),
                eta_ch=vp.eta_ch[q], eta_dis=vp.eta_dis[q], dt_h=dt, target_kw=target_kw, p_site_min_kw=-limit,
                p_site_max_kw=limit, p_cap_kw=cap_kw, need_kwh=vp.need[q], steps_left=steps_left, p_ch_max_kw=vp.p_ch[q],
                site_kwh_ahead=np.full(int(steps_left.max()), limit * dt) if binds else None,
                dis_step_kwh=vp.down_kwh[q] * vp.eta_dis[q], dis_total_kwh=np.maximum(e - vp.e_min[q], 0.0) * vp.eta_dis[q],
            )
            # arrivals take up planned charging the planned vehicles leave, and help keep a
            # request's cap that those could not (else they charge what they must: decide())
            sum_kn = float(p[kn].sum())
            target_kw = min(max(target_kw - sum_kn, 0.0), cap_kw - sum_kn)
            if abs(target_kw) <= 1e-6 or kn.size == v.size:
                return p
            rest = np.flatnonzero(~known)
        r = v[rest]
        cap = f.capacity_kwh[r]
        e = np.minimum(f.e_kwh[r], cap)
        dep_est = f.t_depart_est_step[r]
        stated = dep_est >= 0
        p_ch = f.p_plug_max_kw[r]
        room = limit - float(p.sum())
        p[rest] = split_llf(
            min(max(target_kw, -limit), room), e, e_cap_kwh=cap,
            e_lb_kwh=np.minimum(np.minimum(f.e_min_departure_kwh[r], cap), e),
            need_kwh=np.where(stated, self._need_kwh(f, r), -np.inf),
            steps_left=np.where(stated, np.maximum(dep_est - self._margin_steps - s, 1), 1), p_ch_max_kw=p_ch,
            p_dis_max_kw=p_ch * (f.can_discharge[r] & self.config.allow_v2g), eta_ch=f.eta_charge[r],
            eta_dis=f.eta_discharge[r], dt_h=dt, p_site_max_kw=max(room, 0.0),
            store_in_unidirectional=self._store_uni,
        )
        return p

    def _split_classes(self, obs: Observation, v: np.ndarray, site_k: int, cp: _ClassSitePlan, col: int,
                       limit: float) -> np.ndarray:
        """This step of a class plan for the site's plugged vehicles ``v``
        (:func:`~v2gsim.strategies.dispatch.split_classes`): each class's planned power least
        laxity first among its members plugged now, arrivals since the plan sharing what the
        classes leave, every need kept reachable under the site limit, within the limits."""
        f = obs.fleet
        s = obs.step
        dt = obs.dt_h
        pos = np.minimum(np.searchsorted(cp.idx, v), max(cp.idx.size - 1, 0))
        known = ((cp.idx[pos] == v) & (cp.dep[pos] == f.t_depart_est_step[v])) if cp.idx.size else np.zeros(v.size, bool)
        if not known.all():
            self._agg_arrived.add(site_k)
        G = cp.p_class_kw.shape[0]
        target = cp.p_class_kw[:, col] if col < cp.p_class_kw.shape[1] else np.zeros(G)
        cap = f.capacity_kwh[v]
        e = np.minimum(f.e_kwh[v], cap)
        dep_est = f.t_depart_est_step[v]
        stated = dep_est >= 0
        steps_left = np.where(stated, np.maximum(dep_est - self._margin_steps - s, 1), 1)
        p_ch = f.p_plug_max_kw[v]
        return split_classes(
            target, np.where(known, cp.labels[pos], -1), e, e_cap_kwh=cap,
            e_lb_kwh=np.minimum(np.minimum(f.e_min_departure_kwh[v], cap), e),
            need_kwh=np.where(stated, self._need_kwh(f, v), -np.inf), steps_left=steps_left, p_ch_max_kw=p_ch,
            p_dis_max_kw=p_ch * (f.can_discharge[v] & self.config.allow_v2g), eta_ch=f.eta_charge[v],
            eta_dis=f.eta_discharge[v], dt_h=dt, p_site_min_kw=-limit, p_site_max_kw=limit,
            p_cap_kw=float(cp.cap_kw[col]) if col < cp.cap_kw.size else np.inf,
            site_kwh_ahead=np.full(int(steps_left.max()), limit * dt) if np.isfinite(limit) else None,
            store_in_unidirectional=self._store_uni,
        )

    def _needs_replan(self, obs: Observation, cur: np.ndarray) -> bool:
        """Whether the exact plan (vehicles ``cur``, those plugged at non-aggregate sites) is due."""
        if cur.size == 0 and self._idx.size == 0:
            return False  # nobody to plan exactly, and nobody planned
        col = obs.step - self._t0
        if col >= min(self._P.shape[1], self._replan_steps) or col < 0:
            return True
        if not self.config.replan_on_events:
            return False
        f = obs.fleet
        if cur.size:
            if self._idx.size == 0:
                return True
            pos = np.minimum(np.searchsorted(self._idx, cur), self._idx.size - 1)
            if np.any(self._idx[pos] != cur):
                return True  # arrivals
            if np.any(f.t_depart_est_step[cur] != self._dep[pos]):
                return True  # left and came back (a new stated departure)
        if self._idx.size:
            gone = ~obs.plugged[self._idx]
            if np.any(gone & (self._dep > obs.step)):
                return True  # left before the stated departure
        return False

    def _within_headroom(self, obs: Observation, cur: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Scale discretionary charging down so that the sites' net load fits the feeder.

        The feeder's headroom is measured after the last step, which included this operator's
        own (requested) load; the room this step is that headroom plus the last net request.
        Charging a vehicle must have now to still reach its need at full power later is kept.
        """
        room = obs.feeder_headroom_kw + self._prev_net_kw
        net = float(p.sum())
        if net <= room + 1e-9:
            return p
        dt = obs.dt_h
        must = np.minimum(self._must_kw(obs, cur), np.maximum(p, 0.0))
        flex = np.maximum(p, 0.0) - must
        over = net - room
        total_flex = flex.sum()
        if total_flex <= 0:
            return p
        cut = min(over, total_flex)
        out = p - flex * (cut / total_flex)
        self.stats["headroom_curtailed_kwh"] += cut * dt
        return out

    def _must_kw(self, obs: Observation, cur: np.ndarray) -> np.ndarray:
        """Charging power each vehicle needs now to still reach its need at full power by the
        stated departure less ``departure_margin_min`` (k,), kW, at most the charger's."""
        f = obs.fleet
        dt = obs.dt_h
        if cur.size == 0:
            return np.zeros(0)
        dep_est = f.t_depart_est_step[cur]
        after = np.maximum(dep_est - (self._margin_steps + obs.step + 1), 0)
        eta, p_max = f.eta_charge[cur], f.p_plug_max_kw[cur]
        must = (self._need_kwh(f, cur) - f.e_kwh[cur]) / (eta * dt) - p_max * after
        return np.where(dep_est >= 0, np.minimum(np.maximum(must, 0.0), p_max), 0.0)

    def _need_kwh(self, f, idx: np.ndarray) -> np.ndarray:
        need = f.e_stop_kwh[idx] if self.config.need == "stop" else f.e_min_departure_kwh[idx]
        return np.minimum(need, f.capacity_kwh[idx])

    # ------------------------------------------------------------------ planning

    def _replan(self, obs: Observation, cur: np.ndarray, agg_due: list[int], exact_due: bool) -> None:
        """Re-plan the aggregate sites in ``agg_due`` and, if ``exact_due``, every other site
        (a site there that is too large for the exact LP becomes an aggregate site)."""
        cfg = self.config
        f = obs.fleet
        s = obs.step
        n_clock = len(self.context.times)
        T = max(1, min(self._horizon_steps, n_clock - s))
        t_start = _time.perf_counter()
        self.stats["replans"] += 1
        site = f.site[cur]
        groups = np.unique(site)
        # the share of each site in an operator-wide request or the feeder headroom
        gi = np.searchsorted(groups, site)
        pch_site = np.bincount(gi, weights=f.p_plug_max_kw[cur], minlength=groups.size)
        can = f.can_discharge[cur] & cfg.allow_v2g
        pdis_site = np.bincount(gi, weights=f.p_plug_max_kw[cur] * can, minlength=groups.size)
        headroom = obs.feeder_headroom_kw + self._prev_net_kw if cfg.respect_feeder_headroom else np.inf
        counts = np.bincount(gi, minlength=groups.size)

        def problem(rows, site_k, T=T):
            g = np.searchsorted(groups, site_k)
            in_g = g < groups.size and groups[min(g, groups.size - 1)] == site_k
            return self._problem(obs, cur[rows], int(site_k), T,
                                 pch_share=pch_site[g] / max(pch_site.sum(), 1e-12) if in_g else 0.0,
                                 pdis_share=pdis_site[g] / max(pdis_site.sum(), 1e-12) if in_g else 0.0,
                                 headroom_kw=headroom)

        def plan_agg(site_k):
            rows = np.flatnonzero(site == site_k)
            prof = np.zeros(T)
            short = np.zeros(T)
            self._agg_val.pop(int(site_k), None)
            self._agg_cls.pop(int(site_k), None)
            self._agg_arrived.discard(int(site_k))
            if rows.size:
                try:
                    # plan until the last stated departure: nothing happens there after (the plan
                    # holds no future arrivals)
                    dep = f.t_depart_est_step[cur[rows]]
                    T_site = T if dep.min() < 0 else max(1, min(T, int(dep.max()) - self._margin_steps - s))
                    blocks = self._blocks(T_site)
                    # with the forecast arrivals (rows after the plugged vehicles'): the planned profile
                    # makes room for them; the vehicles that do arrive share what the plan leaves
                    coarse = coarsen_blocks(self._with_arrivals(problem(rows, site_k, T_site), int(site_k), s), blocks)
                    n_real = rows.size
                    cap_kw = np.repeat(coarse.p_cap_kw, blocks)[:T_site]
                    mode = cfg.aggregate_split
                    by_classes = mode == "classes" or (mode == "auto" and site_limit_can_bind(coarse))
                    ag = levels = None
                    if mode != "classes":
                        ag = plan_aggregate(coarse, interval_bounds=cfg.aggregate_interval_bounds)
                        prof[:T_site] = np.repeat(ag.p_kw, blocks)[:T_site]
                        short[:T_site] = np.repeat(ag.cap_shortfall_kw, blocks)[:T_site]
                        levels = plan_levels(coarse, ag) if mode != "llf" else None
                    if by_classes:
                        cp = plan_classes(coarse)
                        # auto: the class plan only if it does better than the value split (each
                        # run over the plan's blocks; one-shot: bench/planners.aggregate_schedule)
                        if ag is None or classes_do_better(coarse, ag, cp, levels):
                            prof[:T_site] = np.repeat(cp.p_kw, blocks)[:T_site]
                            short[:T_site] = np.maximum(prof[:T_site] - cap_kw, 0.0)
                            vi = cur[rows]
                            self._agg_cls[int(site_k)] = _ClassSitePlan(
                                idx=vi, dep=f.t_depart_est_step[vi].copy(), labels=cp.labels[:n_real],
                                p_class_kw=np.repeat(cp.p_class_kw, blocks, axis=1)[:, :T_site], cap_kw=cap_kw)
                    if levels is not None and int(site_k) not in self._agg_cls:
                        # vehicles that leave before the first block ends are not in the plan
                        a_c, d_c = coarse.window
                        inp = np.flatnonzero(d_c[:n_real] > a_c[:n_real])
                        vi = cur[rows][inp]
                        dep_i = f.t_depart_est_step[vi]
                        p_ch, eta_c, eta_d = coarse.p_ch_max_kw[inp], coarse.eta_ch[inp], coarse.eta_dis[inp]
                        self._agg_val[int(site_k)] = _ValuePlan(
                            idx=vi, dep=dep_i.copy(), levels=levels[inp],
                            ends=np.cumsum(blocks).tolist(), cap_kw=cap_kw,
                            e_cap=coarse.e_cap_kwh[inp], e_min=coarse.e_min_kwh[inp],
                            need=np.where(dep_i >= 0, coarse.e_need_kwh[inp], -np.inf),
                            p_ch=p_ch, eta_ch=eta_c, eta_dis=eta_d, up_kwh=eta_c * p_ch * obs.dt_h,
                            down_kwh=coarse.p_dis_max_kw[inp] * obs.dt_h / eta_d)
                except (RuntimeError, ValueError) as exc:  # keep the run going: must-charge only
                    self.stats["solve_failures"] += 1
                    _log.warning("centralized aggregate plan failed at step %d (site %d, %d vehicles): %s",
                                 s, site_k, rows.size, exc)
                self.stats["aggregate_solves"] += 1
            self._agg[int(site_k)] = (s, prof, short)
            self._agg_next.pop(int(site_k), None)
            if cfg.replan_skip_tolerance > 0:
                v = cur[rows]
                self._agg_ref[int(site_k)] = (
                    v, f.t_depart_est_step[v].copy(), f.p_plug_max_kw[v].copy(),
                    np.maximum(self._need_kwh(f, v) - f.e_kwh[v], 0.0))

        for site_k in agg_due:
            plan_agg(site_k)
        if not exact_due:
            self.stats["solve_time_s"] += _time.perf_counter() - t_start
            return
        # sites too large for the exact LP become aggregate sites (for the rest of the run)
        for g, site_k in enumerate(groups):
            if int(site_k) in self._agg:
                continue
            if cfg.mode == "aggregate" or (cfg.mode == "auto" and max(counts[g], self._ports(site_k)) > cfg.exact_max_vehicles):
                plan_agg(site_k)
        exact = ~np.isin(site, np.fromiter(self._agg, dtype=np.int64)) if self._agg else np.ones(cur.size, bool)
        ex_rows = np.flatnonzero(exact)
        self._idx = cur[ex_rows]  # plugged_idx is sorted
        self._dep = f.t_depart_est_step[self._idx].copy()
        self._P = np.zeros((ex_rows.size, T))
        self._short = np.zeros(T)
        self._t0 = s
        ex_site = site[ex_rows]
        for site_k in np.unique(ex_site):
            sub = np.flatnonzero(ex_site == site_k)
            # every plan plan_exact returns keeps the limits (dispatch.check_plan); one it could not
            # solve is its safe plan (charge only, as early as the limits allow; logged there)
            plan = plan_exact(self._with_arrivals(problem(ex_rows[sub], site_k), int(site_k), s),
                              time_limit_s=cfg.exact_time_limit_s)
            self.stats["exact_solves"] += 1
            if plan.status == "safe":
                self.stats["solve_failures"] += 1
            elif plan.status != "optimal":
                self.stats["exact_time_limited"] += 1
            self._P[sub] = plan.p_kw[:sub.size]  # the forecast arrivals (rows after) are not dispatched
            self._short += plan.cap_shortfall_kw
        self.stats["solve_time_s"] += _time.perf_counter() - t_start

    def _blocks(self, T: int) -> np.ndarray:
        """Block lengths (steps) of an aggregate plan over T steps: ``aggregate_step_min`` blocks
        for the first ``aggregate_near_h``, ``aggregate_far_step_min`` ones after (even blocks
        with interval bounds, which need them); the last block may reach beyond T."""
        b, fb = self._block, self._far_block
        if self.config.aggregate_interval_bounds or fb == b:
            return np.full(-(-T // b), b)
        n_near = min(-(-self._near_steps // b), -(-T // b))
        rest = T - n_near * b
        return np.concatenate([np.full(n_near, b), np.full(max(0, -(-rest // fb)), fb)]).astype(np.int64)

    def _problem(self, obs: Observation, v: np.ndarray, site_k: int, T: int, *, pch_share: float,
                 pdis_share: float, headroom_kw: float) -> DispatchProblem:
        """The dispatch problem of the vehicles ``v`` (plugged at site ``site_k``) from this step."""
        cfg = self.config
        f = obs.fleet
        s = obs.step
        cap = f.capacity_kwh[v]
        e0 = np.minimum(f.e_kwh[v], cap)
        dep_est = f.t_depart_est_step[v]
        # Departure relative to now: a driver already past the stated time leaves any moment (1 step);
        # an unknown departure (< 0) is taken as beyond the horizon.
        dep = np.where(dep_est < 0, T + self._horizon_steps, np.maximum(dep_est - self._margin_steps - s, 1))
        p_ch = f.p_plug_max_kw[v]
        p_dis = p_ch * (f.can_discharge[v] & cfg.allow_v2g)
        limit = self._limit(site_k)
        if self._wear_from_model:
            wear_c, wear_v = 0.0, self._wear_throughput_cny_per_kwh(f, v)
        else:
            wear_c, wear_v = self._wear_fixed_cny_per_kwh, 0.0
        reqs = []
        site_id = self._site_id(site_k)
        floor = floor_price = reserve = reserve_price = None
        sustain_h = 0.0
        for a, b, p_net, kind, rsite, price, sus_h in self._windows:
            if b <= s or a >= s + T:
                continue
            if rsite is not None:
                if rsite != site_id:
                    continue
                share = 1.0
            else:
                share = pch_share if kind in ("peak_shaving", "valley_fill") else pdis_share
            lo, hi = max(a - s, 0), min(b - s, T)
            if kind == "valley_fill":  # a soft floor on the site's net import
                if floor is None:
                    floor, floor_price = np.full(T, -np.inf), np.zeros(T)
                floor[lo:hi] = np.maximum(floor[lo:hi], p_net * share)
                floor_price[lo:hi] = np.maximum(floor_price[lo:hi], price)
            elif kind == "regulation":  # capacity held both ways around the plan
                if reserve is None:
                    reserve, reserve_price = np.zeros(T), np.zeros(T)
                reserve[lo:hi] += p_net * share
                reserve_price[lo:hi] = np.maximum(reserve_price[lo:hi], price)
                sustain_h = sus_h
            else:
                reqs.append(GridRequest(a - s, b - s, p_net * share, kind))
        headroom = None
        if np.isfinite(headroom_kw):
            # this step: the room the feeder measured; later steps: its forecast (rating less the
            # base-load forecast) less what the other operators drew last step beyond the base,
            # assumed to go on (persistence); inf where no forecast is known
            headroom = np.full(T, np.inf)
            if cfg.feeder_forecast_in_plan:
                room_fc = self._room_fc_kw[s:s + T]
                if room_fc.size and np.isfinite(room_fc).any():
                    base_prev = self._base_fc_kw[s - 1] if s > 0 else self._base_fc_kw[0]
                    others_kw = max(0.0, self.context.feeder_rating_kw - headroom_kw - base_prev)
                    headroom[:room_fc.size] = np.maximum(room_fc - others_kw, 0.0) * pch_share
            headroom[0] = max(headroom_kw, 0.0) * pch_share
        sl = slice(s, s + T)
        buy = self.context.price_cny_per_kwh[sl].astype(float)
        if cfg.charge_early_cny_per_kwh_h > 0:  # ties between equal prices go to the earliest hour
            buy += cfg.charge_early_cny_per_kwh_h * obs.dt_h * np.arange(buy.size)
        # every array is a fresh float64 copy of validated fleet state: skip DispatchProblem's
        # checks (a large part of a small site re-plan's time)
        return trusted_problem(
            dt_h=obs.dt_h,
            price_buy_cny_per_kwh=buy,
            price_v2g_cny_per_kwh=self.context.v2g_price_cny_per_kwh[sl].astype(float),
            arrival_step=np.zeros(v.size, dtype=np.int64),
            departure_step=dep.astype(np.int64),
            e0_kwh=e0,
            e_cap_kwh=cap,
            e_min_kwh=np.minimum(f.e_min_departure_kwh[v], cap),
            e_need_kwh=self._need_kwh(f, v),
            p_ch_max_kw=p_ch,
            p_dis_max_kw=p_dis.astype(float),
            eta_ch=f.eta_charge[v].astype(float),
            eta_dis=f.eta_discharge[v].astype(float),
            wear_cny_per_kwh=wear_c,
            wear_vehicle_cny_per_kwh=wear_v if np.ndim(wear_v) else np.full(v.size, wear_v),
            p_site_max_kw=np.full(T, limit),
            p_site_min_kw=np.full(T, -limit),
            p_feeder_headroom_kw=headroom,
            requests=tuple(reqs),
            penalty_need_cny_per_kwh=cfg.penalty_need_cny_per_kwh,
            penalty_request_cny_per_kwh=cfg.penalty_request_cny_per_kwh,
            peak_cny_per_kw=self._peak_cny_per_kw,
            peak_ref_kw=self._site_peak_kw(site_k),
            p_floor_kw=floor, floor_price_cny_per_kwh=floor_price,
            reserve_kw=reserve, reserve_price_cny_per_kwh=reserve_price, reserve_sustain_h=sustain_h,
        )

    def _with_arrivals(self, prob: DispatchProblem, site_k: int, s: int) -> DispatchProblem:
        """``prob`` with the forecast arrivals at site ``site_k`` appended as vehicles (a
        persistence forecast by day type: those that plugged in at the same time of day on the
        most recent earlier day of the same type, workday or rest day on China's calendar, else the
        day before; one vehicle per step with their summed need and power and their mean stay; they
        do not discharge). Unchanged without ``arrival_forecast`` or without arrivals to forecast."""
        pos = self._site_pos.get(int(site_k))
        T = prob.n_steps
        if not self.config.arrival_forecast or pos is None or T < 2:
            return prob
        k = np.arange(1, min(T, self._day_steps))
        # the same clock time on the most recent day of the target's type (always before s)
        src = s + k - self._fc_lag_steps[np.minimum(s + k, self._fc_lag_steps.size - 1)]
        ok = src >= 0
        k, src = k[ok], src[ok]
        gap = self._arr_kwh[pos, src]
        has = gap > 1e-9
        if not has.any():
            return prob
        k, src, gap = k[has], src[has], gap[has]
        # one forecast vehicle per step with arrivals (merged per hour they would start together: a
        # higher planned peak, measured 1,045 against 905 kW on centralized_hub)
        p_kw = np.maximum(self._arr_p_kw[pos, src], 1e-6)
        stay_kwh = self._arr_stay_kwh[pos, src]
        stay = np.maximum(np.rint(stay_kwh / gap) - self._margin_steps, 1).astype(np.int64)
        m = k.size
        fields = {f.name: getattr(prob, f.name) for f in dataclasses.fields(prob) if f.init}

        def cat(name, extra):
            return np.concatenate([np.asarray(fields[name]), np.asarray(extra, dtype=np.asarray(fields[name]).dtype)])

        zeros = np.zeros(m)
        fields.update(
            arrival_step=cat("arrival_step", k), departure_step=cat("departure_step", k + stay),
            e0_kwh=cat("e0_kwh", zeros), e_cap_kwh=cat("e_cap_kwh", gap), e_min_kwh=cat("e_min_kwh", zeros),
            e_need_kwh=cat("e_need_kwh", gap), p_ch_max_kw=cat("p_ch_max_kw", p_kw), p_dis_max_kw=cat("p_dis_max_kw", zeros),
            eta_ch=cat("eta_ch", np.ones(m)), eta_dis=cat("eta_dis", np.ones(m)),
            wear_vehicle_cny_per_kwh=cat("wear_vehicle_cny_per_kwh", zeros),
        )
        return trusted_problem(**fields)

    def _site_peak_kw(self, site_k: int) -> float:
        """Site ``site_k``'s highest dispatched net load so far in the billing month, kW."""
        pos = self._site_pos.get(int(site_k))
        return 0.0 if pos is None else float(self._peak_kw[pos])

    def _ports(self, site_k: int) -> int:
        """Charging points of site ``site_k`` (0 if unknown)."""
        pos = self._site_pos.get(int(site_k))
        return 0 if pos is None else int(self._site_ports[pos])

    def _limit(self, site_k: int) -> float:
        pos = self._site_pos.get(int(site_k))
        return np.inf if pos is None else float(self._site_limit[pos])

    def _site_id(self, site_k: int) -> str | None:
        pos = self._site_pos.get(int(site_k))
        return None if pos is None else self.context.site_ids[pos]

    def _wear_throughput_cny_per_kwh(self, f, v) -> np.ndarray:
        """The wear model's price per kWh of grid-side throughput for vehicles ``v``. A vehicle
        the plan may discharge: read through the one function contracts use
        (:func:`~v2gsim.market.contracts.v2g_wear_cny_per_kwh`, the price of a kWh fed back and
        recharged, for the V2G cycle it would run now at its own stressors); the plan charges
        wear on charging and on discharging, so each direction carries half of it and a V2G round
        trip costs it. A vehicle it only charges: the published throughput price
        (``fleet.wear_cost_cny_per_kwh``), its charging being no V2G cycle."""
        from v2gsim.market.contracts import v2g_wear_cny_per_kwh

        w = np.maximum(np.asarray(f.wear_cost_cny_per_kwh[v], dtype=float), 0.0)
        d = np.asarray(f.can_discharge[v], bool) & self.config.allow_v2g
        if d.any():
            w[d] = 0.5 * v2g_wear_cny_per_kwh(f, v[d])
        return w

    bid_kinds = ("discharge_call", "valley_fill", "regulation")

    def bid(self, request, obs: Observation):
        """Its offer to a request put to clearing, from the envelope of the vehicles plugged now.

        * discharge call: each bidirectional vehicle staying past the window gives its charger
          power, at most what its energy above the driver's minimum gives over the window; each
          site at most its limit. Price: buying the energy back at the cheapest price of the 24 h
          after the window, through both conversion losses, plus the wear of a kWh fed and of
          the charging that replaces it as the plan counts them (means over those vehicles).
        * valley fill (:meth:`_bid_valley`) and regulation (:meth:`_bid_regulation`)."""
        if request.kind == "valley_fill":
            return self._bid_valley(request, obs)
        if request.kind == "regulation":
            return self._bid_regulation(request, obs)
        from v2gsim.market.clearing import Bid

        a, b = request.windows[0]
        f, v = obs.fleet, obs.plugged_idx
        dep = f.t_depart_est_step[v]
        v = v[(f.can_discharge[v] & self.config.allow_v2g) & ((dep >= b) | (dep < 0))]
        if v.size == 0:
            return Bid(self.context.operator_id, 0.0, float("inf"))
        hours = (b - a) * obs.dt_h
        room_kwh = np.maximum(f.e_kwh[v] - f.e_min_departure_kwh[v], 0.0) * f.eta_discharge[v]
        p = np.minimum(f.p_plug_max_kw[v], room_kwh / hours)
        site = f.site[v]
        per_site = np.bincount(site, weights=p, minlength=int(site.max()) + 1)
        limits = np.array([self._limit(k) for k in range(per_site.size)])
        p_kw = float(np.minimum(per_site, limits).sum())
        prices = np.asarray(self.context.price_cny_per_kwh, float)
        buyback = float(prices[b:b + int(round(24 / obs.dt_h))].min()) if b < prices.size else float(prices[a:b].min())
        eta_c, eta_d = float(f.eta_charge[v].mean()), float(f.eta_discharge[v].mean())
        # the wear of a kWh fed back as the plan counts it: its discharge and the 1/(eta_c eta_d) grid
        # kWh of charging that replace it, each at the plan's wear per kWh (with the wear model half
        # the V2G price of the cycle offered: each vehicle at its bid power over the window, down
        # to at most the minimum at departure); wear / eta_d counted about half of it
        if self._wear_from_model:
            from v2gsim.market.contracts import v2g_wear_cny_per_kwh

            floor = np.maximum(f.e_min_departure_kwh[v], f.e_kwh[v] - p * hours / f.eta_discharge[v])
            wear = 0.5 * float(v2g_wear_cny_per_kwh(f, v, floor).mean())
        else:
            wear = self._wear_fixed_cny_per_kwh
        return Bid(self.context.operator_id, p_kw, buyback / (eta_c * eta_d) + wear * (1.0 + 1.0 / (eta_c * eta_d)))

    def _site_capped_kw(self, f, v: np.ndarray, p: np.ndarray) -> float:
        """``p`` (kW per vehicle ``v``) summed per site, each site at most its limit, kW."""
        site = f.site[v]
        per_site = np.bincount(site, weights=p, minlength=int(site.max()) + 1)
        limits = np.array([self._limit(k) for k in range(per_site.size)])  # a loop over sites
        return float(np.minimum(per_site, limits).sum())

    def _bid_valley(self, request, obs: Observation):
        """A valley fill put to clearing: each vehicle plugged now that stays past the window
        offers its charger power, at most what its room below full takes over the window; each
        site at most its limit. Price per kWh: the window's mean purchase price less the cheapest
        of the 24 h from the window's start (what moving charging into the window costs it; at
        least 0) plus the wear per kWh charged."""
        from v2gsim.market.clearing import Bid

        a, b = request.windows[0]
        f, v = obs.fleet, obs.plugged_idx
        dep = f.t_depart_est_step[v]
        v = v[(dep >= b) | (dep < 0)]
        if v.size == 0:
            return Bid(self.context.operator_id, 0.0, float("inf"))
        hours = (b - a) * obs.dt_h
        room_kwh = np.maximum(f.capacity_kwh[v] - f.e_kwh[v], 0.0) / f.eta_charge[v]
        p_kw = self._site_capped_kw(f, v, np.minimum(f.p_plug_max_kw[v], room_kwh / hours))
        prices = np.asarray(self.context.price_cny_per_kwh, float)
        day = int(round(24 / obs.dt_h))
        shift = max(float(prices[a:b].mean()) - float(prices[a:a + day].min()), 0.0)
        if self._wear_from_model:
            # a grid kWh charged puts eta_c battery kWh in: one direction of the round trip of
            # eta_c eta_d grid kWh fed back, half the price of a kWh fed back (v2g_wear_cny_per_kwh)
            # for each; half that price per grid kWh counted 1/(eta_c eta_d) too much. A vehicle
            # only charged: the published throughput price, per grid kWh already
            d = np.asarray(f.can_discharge[v], bool) & self.config.allow_v2g
            eta = np.where(d, f.eta_charge[v] * f.eta_discharge[v], 1.0)
            wear = float((eta * self._wear_throughput_cny_per_kwh(f, v)).mean())
        else:
            wear = self._wear_fixed_cny_per_kwh  # a constant per kWh of throughput, as the plan counts it
        return Bid(self.context.operator_id, p_kw, shift + wear)

    def _bid_regulation(self, request, obs: Observation):
        """Regulation put to clearing: the symmetric capacity its bidirectional vehicles plugged
        now and staying past the window can hold (:func:`v2gsim.market.regulation.headroom_kw`
        around zero power, with ``sustain_min`` of energy; the smaller of up and down; each site
        at most its limit). Price per MW of mileage: its wear only -- a MW held for an hour
        travels ``MILEAGE_PER_MW_H`` MW (or the request's ratio) and moves at most 1 MWh through
        the batteries, so a MW of mileage costs at most the wear of 1000 / ratio kWh."""
        from v2gsim.market.clearing import Bid
        from v2gsim.market.regulation import MILEAGE_PER_MW_H, headroom_kw

        a, b = request.windows[0]
        r = request.request
        f, v = obs.fleet, obs.plugged_idx
        dep = f.t_depart_est_step[v]
        v = v[(f.can_discharge[v] & self.config.allow_v2g) & ((dep >= b) | (dep < 0))]
        if v.size == 0:
            return Bid(self.context.operator_id, 0.0, float("inf"))
        up, down = headroom_kw(np.zeros(v.size), f.p_plug_max_kw[v], f.p_plug_max_kw[v], f.e_kwh[v], f.e_min_departure_kwh[v],
                               f.capacity_kwh[v], f.eta_charge[v], f.eta_discharge[v], r.sustain_min / 60.0)
        p_kw = min(self._site_capped_kw(f, v, up), self._site_capped_kw(f, v, down))
        ratio = MILEAGE_PER_MW_H if r.mileage_per_mw_h is None else r.mileage_per_mw_h
        wear = float(self._wear_throughput_cny_per_kwh(f, v).mean()) if self._wear_from_model else self._wear_fixed_cny_per_kwh
        return Bid(self.context.operator_id, p_kw, wear * 1000.0 / max(ratio, 1e-9))

    def kpis(self) -> dict[str, float]:
        """Operator-side counters of the recorded run, flat name -> number (the results add them
        to their KPIs as ``centralized_<name>``)."""
        return {k: float(v) for k, v in self.stats.items()}
