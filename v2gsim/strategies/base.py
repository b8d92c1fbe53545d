"""Strategy registry and the interface between strategies and the engine.

A business model is a strategy: each step it receives a read-only :class:`Observation` and
returns a :class:`Dispatch` (the grid-side power it *wants* per plugged vehicle). The engine
clips every request to charger, vehicle, battery and site limits, so a buggy strategy cannot
break energy conservation or state-of-charge bounds.

Adding a business model is one config class and one strategy class registered with
:func:`register_strategy` (``v2gsim.register_strategy``), in a module of its own: a built-in one, a
scenario's ``plugins:`` or an installed package's entry point (see ``docs/extending.md``); the
scenario picks it by ``kind:``. There is no ``if kind == ...`` anywhere.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import Field

from v2gsim.engine.actor import SiteTable
from v2gsim.errors import Problem
from v2gsim.fields import ConfigModel
from v2gsim.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class StrategyConfig(ConfigModel):
    """Fields shared by every business-model entry of a scenario."""

    kind: str
    sites: list[str] | None = Field(
        default=None,
        description="site ids this business model controls; omitted = every site no other entry claims",
    )

    def reference_config(self) -> StrategyConfig:
        """This entry in the run's like-for-like reference (``reference: uncontrolled``): the
        same sites and actors, only the control changed. Default: uncontrolled charging of the
        same sites; a business model with agents of its own (swap stations) keeps them and
        overrides this."""
        from v2gsim.strategies.uncontrolled import UncontrolledConfig

        return UncontrolledConfig(sites=self.sites)

    def scenario_problems(self, scenario, path: str) -> list[Problem]:
        """Problems of this entry that only the whole validated scenario shows (its vehicles,
        sites, the other entries), each with a YAML path below ``path`` (e.g.
        ``"business_models[2]"``); found at validation, not when the model is built. Default: none."""
        return []

    def grid_requests(self, operator_id: str) -> list:
        """Grid requests this entry states with keys of its own (earlier versions' schemas),
        translated into :class:`v2gsim.market.events.GridRequest` addressed to ``operator_id``.
        Default: none (requests belong under ``grid_operator.requests``)."""
        return []


@dataclass(frozen=True)
class FleetView:
    """Read-only views of the fleet arrays a strategy may look at (all shape (N,)).

    Attributes:
        e_kwh: stored energy.
        capacity_kwh: usable capacity.
        e_stop_kwh: energy at which the driver considers the battery full.
        e_min_departure_kwh: energy the driver insists on at departure.
        p_plug_max_kw: grid-side power limit of the vehicle on its current charger (0 unplugged).
        can_discharge: vehicle and charger are both bidirectional.
        bidirectional: the vehicle can discharge (on a bidirectional charger).
        eta_charge, eta_discharge: conversion efficiencies.
        t_depart_est_step: driver's stated departure step (global step index).
        site: index of the site the vehicle is plugged at, -1 if none.
        wear_cost_cny_per_kwh: marginal battery-wear cost per kWh of throughput (0 until a wear
            model prices it).
        e_discharged_kwh: energy fed into the grid so far (accumulator, zeroed at the end of the
            warm-up), so a strategy can count what its requests actually delivered.
        v2g_wear_price: with the wear model pricing V2G (``wear.price_dispatch``), a callable
            ``idx -> (k,)``: the marginal wear of a kWh vehicles ``idx`` feed back now, CNY/kWh
            (read it through :func:`v2gsim.market.contracts.v2g_wear_cny_per_kwh`); else None.
    """

    e_kwh: np.ndarray
    capacity_kwh: np.ndarray
    e_stop_kwh: np.ndarray
    e_min_departure_kwh: np.ndarray
    p_plug_max_kw: np.ndarray
    can_discharge: np.ndarray
    bidirectional: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    t_depart_est_step: np.ndarray
    site: np.ndarray
    wear_cost_cny_per_kwh: np.ndarray
    e_discharged_kwh: np.ndarray
    v2g_wear_price: Callable | None = None


@dataclass
class Observation:
    """What a strategy sees at one step. Treat as read-only; arrays are non-writeable views.

    Attributes:
        step: global step index.
        time: wall-clock time of the step start.
        dt_h: step length in hours.
        price_cny_per_kwh: retail energy price for charging this step.
        v2g_price_cny_per_kwh: price paid for energy fed back this step.
        fleet: read-only fleet views.
        plugged: boolean mask (N,) of vehicles plugged at this strategy's sites.
        below_stop: boolean mask (N,) of vehicles whose energy is below the driver's full point.
        feeder_headroom_kw: how much more load the feeder can take this step (inf if unknown).
        requests: the grid requests addressed to this operator whose notice has passed
            (:class:`v2gsim.market.events.IssuedRequest`, oldest first; the same tuple object
            while nothing new is published).
    """

    step: int
    time: pd.Timestamp
    dt_h: float
    price_cny_per_kwh: float
    v2g_price_cny_per_kwh: float
    fleet: FleetView
    plugged: np.ndarray
    below_stop: np.ndarray
    feeder_headroom_kw: float = float("inf")
    requests: tuple = ()

    @cached_property
    def plugged_idx(self) -> np.ndarray:
        """Indices of plugged vehicles at this strategy's sites, shape (k,)."""
        return np.flatnonzero(self.plugged)

    @cached_property
    def wanting_idx(self) -> np.ndarray:
        """Indices of plugged vehicles below their full point, shape (k,)."""
        return np.flatnonzero(self.plugged & self.below_stop)


@dataclass(frozen=True)
class Dispatch:
    """A strategy's answer: requested grid-side power per vehicle.

    Attributes:
        idx: vehicle indices, shape (k,), int64, unique.
        p_kw: requested power, shape (k,); > 0 charges, < 0 discharges (V2G).
        price_cny_per_kwh: price these vehicles pay for energy drawn this step, if the
            aggregator sets its own (a price offer); None = the tariff's price.
        v2g_price_cny_per_kwh: price these vehicles are paid for energy fed back this step
            (e.g. an invitation's reward); None = the tariff's V2G price.
    """

    idx: np.ndarray
    p_kw: np.ndarray
    price_cny_per_kwh: float | None = None
    v2g_price_cny_per_kwh: float | None = None

    @staticmethod
    def empty() -> Dispatch:
        return Dispatch(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


@dataclass(frozen=True)
class StrategyContext:
    """Static facts a strategy may use when it is built (forecasts, its sites).

    Attributes:
        site_ids: ids of the sites this strategy controls.
        times: step start times of the whole run, length n_steps.
        dt_h: step length in hours.
        price_cny_per_kwh: price forecast for every step, shape (n_steps,).
        v2g_price_cny_per_kwh: V2G price for every step, shape (n_steps,).
        seed_seq: this business model's own random stream (model stream ``STREAM_STRATEGY``,
            spawn key ``(STREAM_STRATEGY, position in business_models)``); spawn from it.
        n_warmup: steps of warm-up at the start of ``times`` (not recorded).
        sites: the sites this strategy controls (:class:`v2gsim.engine.actor.SiteTable`): their
            index in the scenario, connection limit (inf: none), chargers, bidirectional share,
            bus, kind.
        operator_id: the business model's id in the ledger and in KPI names.
        base_load_forecast_kw: the feeder's base load (households, offices, PV netted) on the
            clock, shape (n_steps,), as the operator forecasts it; None when the scenario has no
            feeder-wide profile before the network is built. The engine passes the profile it
            will run (a perfect day-ahead forecast: an assumption, documented in
            docs/business_models.md, "Grid-aware control").
        feeder_rating_kw: the transformer's active-power rating (kVA x power factor; inf without one).
        demand_charge_cny_per_kw_month: the tariff's two-part demand charge per kW of a billing
            month's peak (0 without one; ``tariff.demand_charge_cny_per_kw_month``).
        contract: the terms of this operator's contracts with drivers, per vehicle
            (:class:`v2gsim.market.contracts.DriverTerms`); None without a contract.
        wear_price_published: the wear model is on and writes its marginal price into
            ``fleet.wear_cost_cny_per_kwh`` (``wear.model`` not off, ``wear.price_dispatch``).
    """

    site_ids: tuple[str, ...]
    times: pd.DatetimeIndex
    dt_h: float
    price_cny_per_kwh: np.ndarray
    v2g_price_cny_per_kwh: np.ndarray
    seed_seq: np.random.SeedSequence | None = None
    n_warmup: int = 0
    sites: SiteTable | None = None
    operator_id: str = ""
    base_load_forecast_kw: np.ndarray | None = None
    feeder_rating_kw: float = float("inf")
    demand_charge_cny_per_kw_month: float = 0.0
    contract: Any = None
    wear_price_published: bool = False

    def headroom_forecast_kw(self) -> np.ndarray:
        """Forecast room for EV load under the transformer rating per clock step, shape
        (n_steps,), kW: rating minus the base-load forecast (inf where either is unknown)."""
        n = len(self.times)
        if self.base_load_forecast_kw is None or not np.isfinite(self.feeder_rating_kw):
            return np.full(n, np.inf)
        return self.feeder_rating_kw - np.asarray(self.base_load_forecast_kw, dtype=float)[:n]

    @property
    def site_table(self) -> SiteTable:
        """``sites``, or (a context built by hand without it) the ``site_ids`` with no limits,
        at positions 0, 1, ..."""
        return self.sites if self.sites is not None else SiteTable.of(self.site_ids)


class Strategy:
    """Base class. Constructors only store what they are given; ``decide`` must not mutate
    the observation and must be deterministic given the same observations."""

    config_cls: ClassVar[type[StrategyConfig]]

    def __init__(self, config: StrategyConfig, context: StrategyContext):
        self.config = config
        self.context = context

    def decide(self, obs: Observation) -> Dispatch:  # pragma: no cover - abstract
        raise NotImplementedError

    #: the request kinds it bids for when they are put to clearing (others get no bid from it)
    bid_kinds: tuple[str, ...] = ("discharge_call",)

    def bid(self, request, obs: Observation):
        """Answer to a grid request put to clearing (:class:`v2gsim.market.events.IssuedRequest`):
        a :class:`v2gsim.market.clearing.Bid` of the power it offers over the window and its price
        per kWh, from its flexibility envelope as it stands at ``obs``; None: no bid. Default: none."""
        return None

    def kpis(self) -> dict[str, float]:
        """Counters of the recorded run this strategy keeps (flat name -> number); the results
        add them to their KPIs as ``<kind>_<name>``, except wall-clock figures (names ending in
        ``_time_s``), which go to the metadata's ``timings``. Default: none."""
        return {}

    def enrolled(self) -> np.ndarray | None:
        """Drivers enrolled in this business model's V2G programme, bool shape (N,), for the
        contracts' minimum guarantee (:mod:`v2gsim.market.contracts`); None (the default): every
        driver at its sites."""
        return None

    def actors(self, engine) -> list:
        """Called once by the engine when the model is built: the actors of this business model
        besides its aggregator (e.g. swap stations, :class:`v2gsim.agents.swap_station.SwapNetwork`),
        each a :class:`v2gsim.engine.actor.Actor` taking part in the phases it overrides.
        ``engine`` is the :class:`v2gsim.engine.actor.EngineView`. Default: none."""
        return []


def _check_strategy(kind: str, cls: object) -> None:
    """A registered business model is a Strategy whose config class is told apart by ``kind``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"@register_strategy({kind!r}) decorates a subclass of v2gsim.strategies.base.Strategy; got {cls!r}")
    cfg = getattr(cls, "config_cls", None)
    if not (isinstance(cfg, type) and issubclass(cfg, StrategyConfig)):
        raise TypeError(f"{cls.__name__}.config_cls must be a subclass of v2gsim.strategies.base.StrategyConfig; got {cfg!r}")
    field = cfg.model_fields["kind"]
    if typing.get_origin(field.annotation) is not Literal or typing.get_args(field.annotation) != (kind,) or field.default != kind:
        raise ValueError(f"{cfg.__name__} must declare  kind: Literal[{kind!r}] = {kind!r}  (scenarios pick it by kind:)")


#: Business models by ``kind:``. Built-ins register from these modules; installed packages through
#: the entry-point group ``v2gsim.strategies``; a scenario's ``plugins:`` by being imported.
STRATEGIES = Registry(
    "business model", "v2gsim.strategies",
    builtins=("v2gsim.strategies.uncontrolled", "v2gsim.strategies.distributed",
              "v2gsim.strategies.centralized", "v2gsim.strategies.battery_swap"),
    check=_check_strategy,
)

#: Class decorator: ``@register_strategy("my_model")`` makes a Strategy available as ``kind: my_model``.
register_strategy = STRATEGIES.register
register = register_strategy  # the built-in modules' name for it


def strategy_for(config: StrategyConfig) -> type[Strategy]:
    """The strategy class registered for a config's kind."""
    return STRATEGIES[config.kind]
