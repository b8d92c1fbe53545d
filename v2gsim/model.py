"""V2GModel: builds a scenario's world and steps it through fixed phases.

One step (:meth:`V2GModel.step`, DESIGN.md): 1 signals, 2 mobility, 3 decide, 4 physics, 5 grid,
6 settle and record. In each phase the engine runs its own fleet kernels and calls the actors
(:mod:`v2gsim.engine.actor`) that take part in it, in the order of ``model.actors``. The
population is stepped as a whole through kernels over index arrays; ``Vehicle`` agents call the
same kernels with their own index (``vehicle_stepping="agents"``).
"""

from __future__ import annotations

import time as _time
from dataclasses import fields, replace
from functools import partial

import mesa
import numpy as np
import pandas as pd

from v2gsim.agents import Aggregator, Driver, Feeder, NetworkFeeder, Vehicle
from v2gsim.data.profiles import coverage_problems, profile_on_clock, read_load_csv, series_to_clock
from v2gsim.engine.limits import binding, deliverable_discharge_kw, direction_sums, first_in_line, limit_export, limit_import
from v2gsim.engine.actor import PHASES, Actor, Arrivals, EngineView, GridInjections, Signals, SiteTable, VehiclePower, takes_part
from v2gsim.errors import Problem, ScenarioError, SimulationError
from v2gsim.agents.grid_operator import GridOperator
from v2gsim.market.events import issue, operator_ids, scenario_requests
from v2gsim.market.settlement import DRIVERS, GRID_COMPANY, Ledger, TwoPartBilling
from v2gsim.market.tariffs import Tariff
from v2gsim.physics.battery import apply_power
from v2gsim.population.drivers import DETOUR, DriverChoices, PublicQueues
from v2gsim.population.idle import IdleRule
from v2gsim.population.fleet import ARCHETYPES, DEPOT, DRIVING, HOME, PUBLIC, build_fleet
from v2gsim.population.mobility import DayEvents, GeneratedMobility, SessionMobility, merge_days, read_sessions_config
from v2gsim.recorder import Recorder, Recording
from v2gsim.scenario.schema import Scenario, model_checks
from v2gsim.standards.actor import StandardsActor
from v2gsim.standards.compat import build_table, v2g_share
from v2gsim.strategies.base import FleetView, StrategyContext, strategy_for

# Named random streams, each from SeedSequence(seed, spawn_key=(stream,)).
STREAM_POPULATION, STREAM_MOBILITY, STREAM_PORTS, STREAM_SAMPLES, STREAM_MESA, STREAM_PLACEMENT = 0, 1, 2, 3, 4, 5
# which drivers follow a public site's leave_when_done (v2gsim.population.idle): one draw per driver
STREAM_IDLE = 6
# Business-model strategies: entry k of business_models gets SeedSequence(seed, spawn_key=(20, k))
# as ``StrategyContext.seed_seq`` (distributed: per-driver traits, invitation answers).
STREAM_STRATEGY = 20
# Initial pack ages of population group g: SeedSequence(seed, spawn_key=(STREAM_PACK_AGE, g)).
STREAM_PACK_AGE = 30


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


class V2GModel(mesa.Model):
    """The simulation of one scenario.

    Args:
        scenario: a validated :class:`Scenario`.
        seed: overrides ``scenario.seed`` if given.
        vehicle_stepping: ``"population"`` (kernels over all vehicles at once) or ``"agents"``
            (each ``Vehicle`` agent steps itself; same result, slower; for checks and teaching).
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None, vehicle_stepping: str = "population"):
        self.seed_value = scenario.seed if seed is None else int(seed)
        super().__init__(rng=int(np.random.SeedSequence(self.seed_value, spawn_key=(STREAM_MESA,)).generate_state(1)[0]))
        if vehicle_stepping not in ("population", "agents"):
            raise ValueError(f"vehicle_stepping must be 'population' or 'agents'; got {vehicle_stepping!r}")
        self.config = scenario  # (Mesa reserves model.scenario for its own Scenario class)
        problems = model_checks(scenario)  # load_scenario ran them with YAML lines; a Scenario built in Python has not
        if problems:
            raise ScenarioError(problems)
        self.vehicle_stepping = vehicle_stepping
        tc = scenario.time
        self.dt_h = tc.dt_h
        self.n_steps = tc.n_steps  # recorded steps
        self.steps_per_day = tc.steps_per_day
        # the clock starts warmup_days early so that the recorded run begins in a settled state
        self.n_warmup = tc.warmup_days * self.steps_per_day
        self.n_clock = self.n_warmup + self.n_steps
        self.clock = tc.clock()  # naive local wall-clock times of tc.timezone
        self.times = self.clock[self.n_warmup :]
        # the clock is Mesa's: model.steps counts the steps done (Mesa adds one before each step)

        # 1. signals for the whole run, precomputed
        tariff = Tariff.from_config(scenario.tariff)
        self.price_cny_per_kwh = np.asarray(tariff.price_cny_per_kwh(self.clock), dtype=np.float64)
        self.v2g_price_cny_per_kwh = np.asarray(tariff.v2g_price_cny_per_kwh(self.clock), dtype=np.float64)
        self.base_load_kw = self._base_load()

        # sites
        sites = scenario.sites
        self.n_sites = len(sites)
        self.site_p_max_kw = np.array([s.p_max_kw for s in sites], dtype=np.float64)
        self.site_is_dc = np.array([s.is_dc for s in sites], dtype=bool)
        self.site_is_home = np.array([s.kind == "home" for s in sites], dtype=bool)
        self.site_is_public = np.array([s.kind == "public" for s in sites], dtype=bool)  # FIFO queues when full
        self.site_bidir_share = np.array([v2g_share(s) for s in sites], dtype=np.float64)  # with standards: types speaking a protocol
        self.site_p_limit_kw = np.array([s.p_limit_kw or np.inf for s in sites], dtype=np.float64)
        self._any_site_limit = bool(np.isfinite(self.site_p_limit_kw).any())

        # population
        sessions = None
        if scenario.mobility_sessions is not None:
            ms = scenario.mobility_sessions
            sessions, problems = read_sessions_config(ms, [s.id for s in sites], tc.timezone,
                                                      (self.clock[0], self.clock[-1] + pd.Timedelta(minutes=tc.step_min)))
            if problems:
                raise ScenarioError(problems)
        self.fleet, self.blocks, self.vehicle_models = build_fleet(
            scenario, sessions.n_vehicles if sessions else 0, _rng(self.seed_value, STREAM_POPULATION)
        )
        #: charger types and vehicle classes (v2gsim.standards): who can charge and discharge where
        self.standards = build_table(scenario)
        self.standards_actor = StandardsActor(self.fleet) if self.standards.uses_standards else None
        f = self.fleet
        n = f.n
        # home sites have one private pile per owner; shared sites have their stated chargers
        bases = f.site_at[:, [HOME, DEPOT]].ravel()
        owners = np.bincount(bases[bases >= 0], minlength=self.n_sites)
        self.site_ports = np.array(
            [owners[i] if (s.kind == "home" and s.chargers is None) else (s.chargers or 0) for i, s in enumerate(sites)],
            dtype=np.int64,
        )
        too_many = [(i, s) for i, s in enumerate(sites) if s.kind == "home" and s.chargers is not None and owners[i] > s.chargers]
        if too_many:
            raise ScenarioError(
                [
                    Problem(f"sites[{i}].chargers", f"site {s.id!r} has {s.chargers} private piles but {owners[i]} drivers own one there",
                            "raise chargers or lower the groups' home_charger_share")
                    for i, s in too_many
                ]
            )
        self.site_private = np.array([s.kind == "home" and s.chargers is None for s in sites], dtype=bool)
        self.site_occupied = np.zeros(self.n_sites, dtype=np.int64)
        self.sites = SiteTable(tuple(s.id for s in sites), np.arange(self.n_sites), tuple(s.kind for s in sites), self.site_p_max_kw,
                               self.site_p_limit_kw, self.site_ports, self.site_private, self.site_bidir_share, self.site_is_dc,
                               tuple(s.bus for s in sites))
        self._port_rng = _rng(self.seed_value, STREAM_PORTS)
        # drivers short of charge for the next trip, and queues at full public sites (v2gsim.population.drivers)
        self.queues = PublicQueues(f, self.n_sites, tc.step_min)
        self.driver_choices = DriverChoices(self, f, tc.step_min, (self.site_is_public | self.site_is_dc) & ~self.site_private)

        # mobility sources
        self.sources = []
        if scenario.population:
            self.sources.append(GeneratedMobility(f, self.blocks, self.clock[0], tc.step_min, self.seed_value))
        # replayed sessions the clock cannot replay as given (counted, reported as KPIs)
        self.session_stats = {"sessions_dropped_outside_horizon": 0.0, "sessions_energy_capped": 0.0, "session_energy_capped_kwh": 0.0}
        if sessions is not None:
            sm = SessionMobility(sessions, f, self.blocks[-1].start, self.clock[0], tc.step_min, self.n_clock, scenario.site_index())
            self.session_stats = sm.stats
            self.sources.append(sm)
        self._day = None
        self._events: DayEvents | None = None
        # steps from midnight to the clock's start (the mobility sources count days from midnight)
        self._day_offset = int((self.clock[0] - self.clock[0].normalize()) / pd.Timedelta(minutes=tc.step_min))
        self._clock_values = self.clock.values  # datetime64: cheaper to box one per step than to index the pandas clock

        self.vehicle_power = VehiclePower()  # the fleet's physics of the current step (actors read it)
        self._prev_idx = np.empty(0, dtype=np.int64)
        self.fleet_view = FleetView(**{fld.name: _readonly(getattr(f, fld.name)) for fld in fields(FleetView) if fld.name != "v2g_wear_price"})
        self._below_stop_ro = _readonly(f.below_stop)

        # battery ageing (v2gsim.physics.ageing): stressors every step, fade once per period
        self.wear = None
        site_idx = scenario.site_index()
        if scenario.wear.enabled:
            from v2gsim.physics.ageing.fleet import FleetWear
            from v2gsim.population.fleet import CHEMISTRIES

            sl_site = scenario.wear.second_life.site
            self.wear = FleetWear(scenario.wear, f, self.clock, tc.step_min, self.n_warmup, self.n_clock, self.price_cny_per_kwh, CHEMISTRIES,
                                  zone=tc.timezone, power=self.vehicle_power, second_life_site=site_idx.get(sl_site) if sl_site else None,
                                  initial=self._initial_pack_age(scenario, f))
            if scenario.wear.price_dispatch:  # V2G priced at each cycle's own stressors (docs/wear.md "Price", "Timing")
                self.fleet_view = replace(self.fleet_view, v2g_wear_price=self.wear.v2g_price_cny_per_kwh)
        engine = EngineView(self, f, tuple(self.blocks), self.clock, self.dt_h, self.n_warmup, self.n_steps, self.seed_value,
                            self.price_cny_per_kwh, self.v2g_price_cny_per_kwh, self.sites, self.vehicle_power, self.wear)

        # strategies: one Aggregator per business-model entry, owning its sites
        claimed = {sid for bm in scenario.business_models if bm.sites for sid in bm.sites}
        #: each business model's id as an actor of the ledger and in KPI names (``<kind>``, or ``<kind><k>`` for a repeated kind)
        self.operator_ids = operator_ids(bm.kind for bm in scenario.business_models)
        self._owner_v = np.full(n, -1, dtype=np.int64)
        #: contracts between operators and drivers (v2gsim.market.contracts); None without any
        self.contracts = None
        if not scenario.contracts.empty:
            from v2gsim.market.contracts import ContractBook, v2g_wear_cny_per_kwh

            swappable = np.array([b.vehicle.pack_standard is not None for b in self.blocks], bool)[f.group]
            self.contracts = ContractBook(scenario.contracts, self.operator_ids, np.asarray(f.group), swappable, _readonly(f.bidirectional),
                                          self.times, [lambda k=k: self.aggregators[k].strategy.enrolled() for k in range(len(self.operator_ids))],
                                          _readonly(f.plugged), _readonly(self._owner_v),
                                          partial(v2g_wear_cny_per_kwh, self.fleet_view))
        self.site_owner = np.full(self.n_sites, -1, dtype=np.int64)
        # the business model whose site each vehicle is plugged at (-1: unplugged or an unowned
        # site), kept by _plug / _leave (in place: the contracts hold a view): cheaper than
        # looking it up from the site every step
        strategies, masks = [], []
        for k, bm in enumerate(scenario.business_models):
            ids = bm.sites if bm.sites is not None else [s.id for s in sites if s.id not in claimed]
            mask = np.zeros(self.n_sites, bool)
            mask[[site_idx[i] for i in ids]] = True
            self.site_owner[mask & (self.site_owner < 0)] = k
            ctx = StrategyContext(tuple(ids), self.clock, self.dt_h, self.price_cny_per_kwh, self.v2g_price_cny_per_kwh,
                                  seed_seq=np.random.SeedSequence(self.seed_value, spawn_key=(STREAM_STRATEGY, k)), n_warmup=self.n_warmup,
                                  operator_id=self.operator_ids[k], sites=self.sites.subset([site_idx[i] for i in ids]),
                                  base_load_forecast_kw=None if self.base_load_kw is None else _readonly(np.asarray(self.base_load_kw, float)),
                                  feeder_rating_kw=(scenario.feeder.transformer_kva * scenario.feeder.power_factor
                                                    if scenario.feeder.transformer_kva else float("inf")),
                                  demand_charge_cny_per_kw_month=float(scenario.tariff.demand_charge_cny_per_kw_month or 0.0),
                                  wear_price_published=bool(scenario.wear.enabled and scenario.wear.price_dispatch),
                                  contract=self.contracts.terms_for(k) if self.contracts is not None else None)
            strategies.append(strategy_for(bm)(bm, ctx))
            masks.append(mask)
        sole = len(strategies) == 1 and bool(masks[0].all())
        self._sole_operator = sole
        self.aggregators: list[Aggregator] = [
            Aggregator(self, st, mask, k, fleet_view=self.fleet_view, owner=_readonly(self._owner_v), plugged=_readonly(f.plugged),
                       below_stop=self._below_stop_ro, sole=sole, operator_id=self.operator_ids[k])
            for k, (st, mask) in enumerate(zip(strategies, masks))
        ]
        # business models with actors of their own (swap stations)
        own_actors: list[Actor] = [a for agg in self.aggregators for a in agg.strategy.actors(engine)]
        self._own_actors = own_actors

        # Vehicle and Driver agents (thin views of the arrays) are created in bulk on first use
        # (model.vehicles, .drivers, .agents, .agents_by_type): the run itself never needs them, and
        # 200,000 of them cost 0.7 s CPU for 100,000 vehicles (bench_core scenario)
        self._views: tuple[list[Vehicle], list[Driver]] | None = None
        self.has_network = scenario.feeder.network is not None
        if self.has_network:
            self.feeder = NetworkFeeder(self, self.base_load_kw, _rng(self.seed_value, STREAM_PLACEMENT), own_actors)
            self.base_load_kw = self.feeder.base_total_kw
        else:
            self.feeder = Feeder(self, scenario.feeder.transformer_kva, scenario.feeder.power_factor)

        # the grid operator: every request of the scenario in one schema, published as its notice passes
        requests = scenario_requests(scenario)
        self.grid_operator = GridOperator(self, issue(requests, self.clock, self.dt_h, self.operator_ids),
                                          scenario.grid_operator, operators=tuple(self.operator_ids), clock=self.clock, dt_h=self.dt_h,
                                          n_warmup=self.n_warmup, meter=self._meter, site_index=site_idx,
                                          bidders={agg.operator_id: agg for agg in self.aggregators},
                                          reg_meter=self._reg_meter, signals=self._regulation_signals(requests))
        self._own_metered = [(self.operator_ids.index(a.operator_id), a) for a in own_actors if a.operator_id in self.operator_ids]

        #: Every actor, in the order each phase calls them: the grid operator (first of the signals
        #: phase: it publishes the requests the others then see), the aggregators (their strategies),
        #: the business models' own actors (swap networks), second-life storage, the contracts (their
        #: monthly clauses settle after every operator), the feeder (last of the grid phase: it solves
        #: what the others injected), fleet wear (last of the
        #: record phase: at a period's end it changes capacities for the next step).
        self.actors: list[Actor] = [self.grid_operator, *self.aggregators, *own_actors]
        #: full cars at public chargers leave after a grace period or pay an idle fee (None: no site has the rule)
        self.idle = None
        self._done_closed_step = -1  # the step whose departures also unplugged the rule's done cars
        if IdleRule.active(sites):
            eligible = np.ones(n, bool)
            if sessions is not None:  # replayed sessions keep their recorded plug-out
                eligible[self.blocks[-1].start:] = False
            self.idle = IdleRule(f, sites, tc.step_min, self.n_warmup, _rng(self.seed_value, STREAM_IDLE).random(n), eligible,
                                 self.driver_choices.hold, self.site_owner, self.operator_ids)
            self.actors.append(self.idle)
        if self.standards_actor is not None:
            self.actors.append(self.standards_actor)
        if self.wear is not None:
            from v2gsim.market.second_life import SecondLifeActor

            self.actors.append(SecondLifeActor(self.wear))
        if self.contracts is not None:  # monthly clauses, after every operator's own settlement
            self.actors.append(self.contracts)
        self.actors.append(self.feeder)
        if self.wear is not None:
            self.actors.append(self.wear)
        # per phase, the actors that take part in it (decided once, not probed every step)
        self._phase = {ph: [a for a in self.actors if takes_part(a, ph)] for ph in PHASES}

        # recording
        sample_rng = _rng(self.seed_value, STREAM_SAMPLES)
        self.session_sampled = np.zeros(n, bool)
        self.session_sampled[sample_rng.permutation(n)[: scenario.outputs.session_sample]] = True
        trace_idx = np.sort(sample_rng.permutation(n)[: scenario.outputs.trace_sample])
        self.recorder = Recorder(self.n_steps, self.n_sites, trace_idx)
        self.ledger = Ledger(self.n_steps)  # every money transfer, written in the settle phase
        self.two_part = self._two_part_billing(scenario)
        if self.has_network:
            self.recorder.enable_network(self.feeder.n_bus if scenario.outputs.bus_voltages else 0)
        self.recorder.enable_service(n, len(self.aggregators))
        for a in self.actors:
            a.declare(self.recorder)
        self._request_kw = np.zeros(n) if vehicle_stepping == "agents" else None
        # settlement prices per vehicle, used only at steps where a dispatch sets its own prices
        self._buy_price_v, self._v2g_price_v, self._own_prices = np.zeros(n), np.zeros(n), False
        self.signals: Signals | None = None  # the current step's
        self.wall_time_s = 0.0
        self.finished = False  # finish() closed the open sessions
        self._initial_plug_in()

    # ------------------------------------------------------------------ the agents, on first use

    def _initial_pack_age(self, scenario: Scenario, f):
        """(age in years, soh or NaN, km per day) per vehicle from its group's ``initial_age_years``
        / ``initial_soh`` and its archetype's mean daily distance (× ``daily_km_scale``; the cycle
        history of a pack aged without ``initial_soh``); None when every group's packs are new
        (replayed sessions: new)."""
        from v2gsim.data.cn_calendar import WORKDAY, year_day_types
        from v2gsim.physics.ageing.initial import draw, is_new
        from v2gsim.population.archetypes import mean_daily_km

        groups = scenario.population or []
        if all(is_new(g.initial_age_years, g.initial_soh) for g in groups):
            return None
        # the history's days off: China's official calendar over the year before the run
        workday_share = float(np.mean(year_day_types(int(self.clock[0].year) - 1) == WORKDAY))
        gi = np.asarray(f.group, np.int64)
        age = np.zeros(f.n)
        soh = np.full(f.n, np.nan)
        km = np.zeros(f.n)
        for k, g in enumerate(groups):
            sel = np.flatnonzero(gi == k)
            rng = np.random.default_rng(np.random.SeedSequence(self.seed_value, spawn_key=(STREAM_PACK_AGE, k)))
            age[sel] = draw(g.initial_age_years, sel.size, rng, 0.0)
            soh[sel] = draw(g.initial_soh, sel.size, rng, np.nan)
            km[sel] = mean_daily_km(g.archetype, round(workday_share, 6)) * f.daily_km_scale[sel]
        return age, soh, km

    def _agent_views(self) -> tuple[list[Vehicle], list[Driver]]:
        if self._views is None:
            n = self.fleet.n
            self._views = ([Vehicle(self, i) for i in range(n)], [Driver(self, i) for i in range(n)])
        return self._views

    @property
    def vehicles(self) -> list[Vehicle]:
        """The Vehicle agents, one per fleet row (created with the drivers on first use)."""
        return self._agent_views()[0]

    @property
    def drivers(self) -> list[Driver]:
        """The Driver agents, one per fleet row (created with the vehicles on first use)."""
        return self._agent_views()[1]

    @property
    def agents(self):
        """Mesa's set of every agent (the vehicles and drivers join on first look)."""
        self._agent_views()
        return super().agents

    @property
    def agents_by_type(self):
        """Mesa's agents by type (the vehicles and drivers join on first look)."""
        self._agent_views()
        return super().agents_by_type

    @property
    def agent_types(self) -> list[type]:
        self._agent_views()
        return super().agent_types

    @property
    def step_index(self) -> int:
        """Steps done so far (Mesa's ``steps``); during a step, that step's clock position is ``steps - 1``."""
        return self.steps

    def actors_of(self, cls: type) -> list:
        """The actors that are instances of ``cls`` (e.g. ``SwapNetwork``), in phase order."""
        return [a for a in self.actors if isinstance(a, cls)]

    # ------------------------------------------------------------------ building helpers

    def _base_load(self) -> np.ndarray:
        fc = self.config.feeder
        bl = fc.base_load
        if fc.base_load.source == "network_profiles":
            return None  # per network load, built by the NetworkFeeder
        if bl.csv is not None:
            series, problems = read_load_csv(bl.csv, "feeder.base_load.csv", self.config.time.timezone)
            problems = problems or coverage_problems(series, self.times[0], self.times[-1], "feeder.base_load.csv")
            if problems:
                raise ScenarioError(problems)
            return series_to_clock(series, self.clock)
        shape = profile_on_clock(bl.profile, self.clock, self.config.time.step_min)
        return shape * (bl.annual_kwh_per_household * fc.households / 8760.0)

    def _initial_plug_in(self) -> None:
        """Vehicles start the run parked at their base; owners of a pile there are plugged in."""
        f = self.fleet
        v = np.flatnonzero(f.location != DRIVING)
        loc = f.location[v]
        site = f.site_at[v, loc]
        est = np.full(v.size, self.steps_per_day // 3, dtype=np.int64)  # stated: leave ~08:00 on day one
        self._arrive(0, v, loc, site, np.zeros(v.size), np.zeros(v.size), np.full(v.size, np.nan), np.full(v.size, np.inf), est, held_by_actors=False)

    # ------------------------------------------------------------------ phase 2: mobility kernels

    def _depart(self, s: int, dep: tuple, *, with_done: bool = False) -> None:
        """Departures ``dep`` (vehicle, trip_kwh, km, travel_steps, dest) of step ``s``: the drivers
        decide (wait, detour, shorten, cancel), those leaving as planned leave. ``with_done``: the
        step's last departures; the idle rule's done cars unplug with them (:meth:`_leave`)."""
        go = self.driver_choices.depart(s, *dep)
        if go.size:
            self._leave(s, go, with_done=with_done)

    def _day_events(self, step: int) -> DayEvents:
        offset = self._day_offset
        day = (step + offset) // self.steps_per_day
        if day != self._day:
            evs = [src.day(day) for src in self.sources]
            ev = evs[0]
            for other in evs[1:]:
                ev = merge_days(ev, other, day * self.steps_per_day - offset, self.steps_per_day)
            self._day, self._events = day, ev
            self._day_first_step = day * self.steps_per_day - offset
        return self._events

    def _leave(self, step: int, v: np.ndarray, *, count: bool = True, notify: bool = True, with_done: bool = False) -> None:
        """Vehicles ``v`` drive off: out of a public queue, unplugged (their sessions closed), driving.

        ``count``: a departure (False: the driver left before, for a detour, and now goes on);
        ``notify``: tell the actors (False: an actor has just taken them in, before the trip);
        ``with_done``: the step's departures, after which the idle rule's done cars unplug
        (:meth:`_leave_when_done`): both close their sessions in one call (see there)."""
        f = self.fleet
        if self.queues.n_queued:
            s_v = self.queues.site[v]  # read before leaving: leave forgets the site
            in_q = s_v >= 0
            if in_q.any():  # most steps none of the leaving drivers queue: skip the rest
                q = self.queues.leave(step, v)
                qs = s_v[in_q]  # leave returns v's queued vehicles in v's order
                r = self.queues.replay[q]
                self._turned_away(q[r], qs[r])
        for a in self._phase["depart"] if notify else ():  # e.g. drivers queued at a swap station leave it
            a.depart(step, v)
        vp = v[f.plugged[v]]
        done, split = None, None
        if with_done:
            # the rule's pass runs after the departures left its list, as it would after their
            # own unplug call (it reads nothing else the unplug changes); its cars' sessions then
            # close in the same call, the departures' first, in the order of two separate calls
            self.idle.unplugged(vp)
            done = self.idle.due(step)
            self._done_closed_step = step
            if done.size:
                split = vp.size if vp.size else None
                vp = np.concatenate([vp, done])
        self._unplug(step, vp, split=split)
        if count:
            f.n_departures[v] += 1
            e = f.e_kwh[v]
            f.departures_below_min[v] += e < f.e_min_departure_kwh[v] - 1e-9
            self.recorder.departure_soc(e / f.capacity_kwh[v])
        self._unplugged_state(v if done is None or not done.size else np.concatenate([v, done]))
        f.location[v] = DRIVING

    def _unplug(self, step: int, vp: np.ndarray, split: int | None = None) -> None:
        """Plugged vehicles ``vp`` unplug: their sessions close, their chargers are free (the
        caller clears their plug state with :meth:`_unplugged_state`). ``split``: ``vp`` joins
        two groups that were closed by two calls, ``vp[:split]`` then the rest (the per-site
        unmet energy is summed per group, so the totals are the same to the last bit)."""
        if vp.size:
            f = self.fleet
            unmet = np.maximum(0.0, f.session_e_request_kwh[vp] - f.session_grid_kwh[vp])
            site = f.site[vp]
            n_site = np.bincount(site, minlength=self.n_sites)
            self._close_sessions(vp, unmet, step, site=site, n_site=n_site, split=split)
            self.site_occupied -= n_site
            if self.idle is not None:
                self.idle.unplugged(vp)

    def _unplugged_state(self, v: np.ndarray) -> None:
        f = self.fleet
        f.plugged[v] = False
        f.site[v] = -1
        self._owner_v[v] = -1
        f.p_plug_max_kw[v] = 0.0
        f.can_discharge[v] = False
        f.p_kw[v] = 0.0

    def _leave_when_done(self, step: int) -> None:
        """Full cars at public chargers past their grace period unplug (v2gsim.population.idle) and
        stay parked where they are until their next trip; their chargers are free for the queue."""
        if self._done_closed_step == step:  # the step's departures closed them already (_leave)
            return
        v = self.idle.due(step)
        if v.size:
            self._unplug(step, v)
            self._unplugged_state(v)

    def _turned_away(self, v: np.ndarray, site: np.ndarray) -> None:
        """Replayed sessions ``v`` found no charger at ``site``: they have nowhere else to charge,
        their whole request is unmet (there, for the per-site service table)."""
        if v.size:
            f = self.fleet
            need = np.maximum(0.0, f.e_stop_kwh[v] - f.e_kwh[v]) / f.eta_charge[v]
            f.sessions_turned_away[v] += 1
            f.unmet_turned_away_kwh[v] += need
            f.unmet_kwh[v] += need
            self.recorder.turned_away(site, need)

    def _before_trip(self, step: int, v: np.ndarray, need_kwh: np.ndarray) -> np.ndarray:
        """Offer drivers short of charge for their trip to the actors (swap queues); mask of those taken."""
        taken = np.zeros(v.size, bool)
        for a in self._phase["before_trip"]:
            rest = np.flatnonzero(~taken)
            if not rest.size:
                break
            got = a.before_trip(step, v[rest], self.fleet.e_kwh[v[rest]], need_kwh[rest])
            if got is not None:
                taken[rest[got]] = True
        return taken

    def _serve_queues(self, step: int) -> None:
        """Public queues: queued drivers take freed chargers, first come first; those not served who have waited their limit leave."""
        q = self.queues
        order = q.ordered()
        qs = q.site[order]
        got = np.zeros(order.size, bool)
        free = self.site_ports - self.site_occupied
        if (free[qs] > 0).any():  # a charger freed where someone waits: the first in line at each site take them
            w = np.flatnonzero(first_in_line(qs, free))
            got[w] = self._plug(step, order[w], qs[w], q.p_max_kw[order[w]], q.est_step[order[w]], q.replay[order[w]], queue_if_full=False)
            pv = order[got]
            if pv.size:
                q.served(step, pv)
                self.driver_choices._detour_session(step, pv[self.driver_choices.hold[pv] == DETOUR])
        late = q.late(step, order[~got])
        if late.size:
            late_site = q.site[late]
            q.leave(step, late)
            r = q.replay[late]
            self._turned_away(late[r], late_site[r])
            det = late[self.driver_choices.hold[late] == DETOUR]
            if det.size:
                self.driver_choices.queue_gave_up(step, det)

    def _arrive(self, step, v, loc, site, trip_kwh, km, e_set_kwh, p_max_kw, est_step, next_trip_kwh=None, held_by_actors=True) -> None:
        f = self.fleet
        e = f.e_kwh[v]
        stranded = trip_kwh > e + 1e-12
        used = np.minimum(trip_kwh, e)
        replay = ~np.isnan(e_set_kwh)
        e_new = np.where(replay, e_set_kwh, e - used)
        if np.count_nonzero(stranded):
            vs = v[stranded]
            f.stranded_trips[vs] += 1
            f.stranded_kwh[vs] += (trip_kwh - used)[stranded]
        f.e_driven_kwh[v] += used
        f.distance_km[v] += km
        f.e_kwh[v] = e_new
        for a in self._phase["arrive"] if held_by_actors else ():  # e.g. swappable vehicles low on charge queue at a swap station first
            held = a.arrive(step, Arrivals(v, e_new, loc, site, p_max_kw, est_step, replay, next_trip_kwh))
            if held is not None and held.any():
                k = ~held
                v, loc, site, e_new, replay, p_max_kw, est_step = v[k], loc[k], site[k], e_new[k], replay[k], p_max_kw[k], est_step[k]
                next_trip_kwh = next_trip_kwh[k]
        # drivers without a charger where they park, and low on charge, park at their public site
        detour = (site < 0) & ~replay & (e_new < f.e_public_below_kwh[v])
        if np.count_nonzero(detour):
            public = f.site_at[v, PUBLIC]
            detour &= public >= 0
            loc = np.where(detour, PUBLIC, loc)
            site = np.where(detour, public, site)
        f.location[v] = loc
        f.below_stop[v] = e_new < f.e_stop_kwh[v] - 1e-9
        self._plug(step, v, site, p_max_kw, est_step, replay, queue_if_full=True)

    def _plug(self, step, v, site, p_max_kw, est_step, replay, queue_if_full: bool) -> np.ndarray:
        """Vehicles ``v`` (parked, energy in ``fleet.e_kwh``) take a free charger at ``site`` (-1:
        none), first come first served in the order given; returns the mask of those plugged in.
        With ``queue_if_full`` (an arrival) those finding a public site full join its queue and the
        others count a ``no_charger_event`` (a replayed session turned away)."""
        f = self.fleet
        out = np.zeros(v.size, bool)
        cand = (site >= 0).nonzero()[0]
        if cand.size and self.standards.uses_standards:
            # a car that no charger type of the site fits cannot charge there (v2gsim.standards)
            fits = self.standards.fits(f.std_class[v[cand]], site[cand])
            if not fits.all():
                self.standards_actor.incompatible(v[cand[~fits]], site[cand[~fits]])
                bad = cand[~fits]
                if queue_if_full:
                    f.no_charger_events[v[bad]] += 1
                    ra = bad[replay[bad]]
                    self._turned_away(v[ra], site[ra])
                cand = cand[fits]
        if cand.size == 0:
            return out
        s = site[cand]
        gets = self.site_private[s]  # private piles always free for their owner
        shared = (~gets).nonzero()[0]
        if shared.size:
            gets[shared] = first_in_line(s[shared], self.site_ports - self.site_occupied)
        away = cand[~gets] if queue_if_full else cand[:0]
        if away.size:  # most arrivals find a charger: skip the bookkeeping of those who do not
            f.no_charger_events[v[away]] += 1
            pub = self.site_is_public[site[away]]
            wait = away[pub]
            if wait.size:
                self.queues.join(step, v[wait], site[wait], p_max_kw[wait], est_step[wait], replay[wait])
            away = away[~pub]
            ra = away[replay[away]]
            self._turned_away(v[ra], site[ra])
        c = cand[gets]
        if c.size == v.size:  # every vehicle takes a charger (c is 0..k-1): no gathers
            out[:] = True
            vv, ss, p_max_c, est_c = v, site, p_max_kw, est_step
        else:
            out[c] = True
            vv, ss, p_max_c, est_c = v[c], site[c], p_max_kw[c], est_step[c]
        e_stop = f.e_stop_kwh[vv]
        e_now = f.e_kwh[vv]
        self.site_occupied += np.bincount(ss, minlength=self.n_sites)
        if self.idle is not None:
            self.idle.plugged(vv, ss)
        f.plugged[vv] = True
        f.site[vv] = ss
        self._owner_v[vv] = self.site_owner[ss]
        veh_max = np.where(self.site_is_dc[ss], f.p_dc_max_kw[vv], f.p_ac_max_kw[vv])
        f.p_plug_max_kw[vv] = np.minimum(np.minimum(self.site_p_max_kw[ss], veh_max), p_max_c)
        can = f.home_pile_bidir[vv]
        at_shared = ~self.site_is_home[ss]
        any_shared = bool(np.count_nonzero(at_shared))
        if any_shared:  # a shared site's charger types (bidirectional or not) are taken by chance, by share
            vs, cls = vv[at_shared], f.std_class[vv[at_shared]]
            u = self._port_rng.random(vs.size)
            if self.standards.uses_standards:
                typ = self.standards.draw_type(cls, ss[at_shared], u)
                can[at_shared] = self.standards.can_discharge(cls, typ)
            else:  # the same draw without standards (tests/test_standards.py), 50x cheaper
                can[at_shared] = u < self.site_bidir_share[ss[at_shared]]
        if self.standards_actor is not None:  # a bidirectional car at a bidirectional charger without a common protocol
            blocked = np.zeros(vv.size, bool)
            if any_shared:
                blocked[at_shared] = (typ >= 0) & self.standards.type_v2g[np.maximum(typ, 0)] & f.bidirectional[vs] & ~can[at_shared]
            self.standards_actor.plugged(vv, blocked, at_shared)
        f.can_discharge[vv] = f.bidirectional[vv] & can
        f.t_depart_est_step[vv] = est_c
        f.session_start_step[vv] = step
        f.session_e_start_kwh[vv] = e_now
        f.session_e_request_kwh[vv] = np.maximum(0.0, e_stop - e_now) / f.eta_charge[vv]
        f.session_grid_kwh[vv] = 0.0
        return out

    def _close_sessions(self, v: np.ndarray, unmet_kwh: np.ndarray, step: int | None, site: np.ndarray | None = None,
                        n_site: np.ndarray | None = None, split: int | None = None) -> None:
        """Count the sessions of plugged vehicles ``v`` as ended with ``unmet_kwh`` each (step None: at the horizon).

        ``site`` (their sites) and ``n_site`` (their count per site) when the caller has them;
        ``split``: see :meth:`_unplug`."""
        f = self.fleet
        f.unmet_kwh[v] += unmet_kwh
        f.n_sessions[v] += 1
        rc = self.recorder
        rc.sessions_closed(v, f.site[v] if site is None else site, self._owner_v[v] if rc.served.shape[0] else None, unmet_kwh,
                           n_site=n_site, split=split)
        rec = self.session_sampled[v]
        if np.count_nonzero(rec):
            rc.session_rows(v[rec], f, step, unmet_kwh[rec])

    def finish(self) -> None:
        """Close the sessions still open at the end of the run, once (``run`` calls it; stepping on is refused).

        Each counts in ``sessions``. Its unmet energy is the part of the remaining request that
        can no longer be delivered by the driver's stated departure even at the plug's full power
        (none while there is time; all of it once the stated departure has passed), so a run cut
        off in the middle of the night does not count cars that would still be charged as unmet.
        The whole remaining request is ``Results.vehicles.pending_kwh``.
        """
        if self.finished:
            return
        self.finished = True
        f = self.fleet
        v = np.flatnonzero(f.plugged)
        if v.size:
            remaining = np.maximum(0.0, f.session_e_request_kwh[v] - f.session_grid_kwh[v])
            hours_left = np.maximum(0, f.t_depart_est_step[v] - self.steps) * self.dt_h
            self._close_sessions(v, np.maximum(0.0, remaining - f.p_plug_max_kw[v] * hours_left), None)
        for a in self._phase["finish"]:  # e.g. wear closes its last (partial) period
            a.finish(self.steps)

    # ------------------------------------------------------------------ phase 4: physics

    def apply_physics(self, idx: np.ndarray) -> np.ndarray:
        """Physics for vehicles ``idx`` with the current requests; returns their grid-side kW (k,)."""
        return apply_power(self.fleet, idx, self._request_for(idx), self.dt_h)

    def _request_for(self, idx):
        if self._request_kw is not None:
            return self._request_kw[idx]
        return self._req_p

    def _apply(self, idx: np.ndarray, p_req: np.ndarray) -> np.ndarray:
        """Physics for vehicles ``idx`` at requests ``p_req`` (population kernel, or each Vehicle agent)."""
        if self._request_kw is not None:
            self._request_kw[idx] = p_req
            for i_v in idx:
                self.vehicles[i_v].step()
            return self.fleet.p_kw[idx]
        self._req_p = p_req
        return self.apply_physics(idx)

    # ------------------------------------------------------------------ the step

    def step(self) -> None:
        """One step: the six phases, each running the engine's fleet kernels and the actors that
        take part in it, in the order of :attr:`actors`."""
        s = self.steps - 1  # Mesa counted this step before calling it
        if s >= self.n_clock or self.finished:
            self.steps -= 1  # not done
            if self.finished:
                raise SimulationError("the run was finished (its open sessions are closed); build a new model to step further")
            raise SimulationError(f"the run has {self.n_clock} steps; step {s} is past its horizon")
        if s == self.n_warmup:
            self._begin_recording(s)
        sig = self._signals(s)  # 1
        self._mobility(s)  # 2
        self._decide(sig)  # 3
        self._physics(sig)  # 4
        self._grid(sig)  # 5
        self._settle(sig)  # 6
        self._record(sig)

    def _begin_recording(self, s: int) -> None:
        if s > 0:  # without a warm-up the initial plug-in belongs to the recorded run
            self.fleet.reset_accumulators()
            self.recorder.reset_events()
        for a in self._phase["begin_recording"]:
            a.begin_recording(s)

    def _signals(self, s: int) -> Signals:
        """Phase 1: the step's prices and the feeder's headroom after the last step."""
        sig = Signals(s, s - self.n_warmup, pd.Timestamp(self._clock_values[s]), self.dt_h, float(self.price_cny_per_kwh[s]), float(self.v2g_price_cny_per_kwh[s]),
                      self.feeder.headroom_kw)
        self.signals = sig
        for a in self._phase["signals"]:
            a.signals(sig)
        return sig

    def _mobility(self, s: int) -> None:
        """Phase 2: held drivers leave once charged; departures (short drivers wait, detour, shorten
        or cancel; a car whose late arrival is due now arrives just before it leaves again); full
        cars at public chargers past their grace period unplug (v2gsim.population.idle); public
        queues served; arrivals (held-back ones first; actors may hold some); then the vehicles
        actors held released."""
        ev = self._day_events(s)
        i = s - self._day_first_step
        dc = self.driver_choices
        dc.release(s)
        due, p = dc.take_due(s)  # late (held-back) arrivals due now; they arrive with the step's arrivals below
        lo, hi = ev.dep_bounds[i], ev.dep_bounds[i + 1]
        dep = None
        if hi > lo:
            sl = slice(lo, hi)
            dep = (ev.dep_vehicle[sl], ev.dep_trip_kwh[sl], ev.dep_km[sl], ev.dep_travel_steps[sl], ev.dep_dest[sl])
        first = dc.leave_again(due, None if dep is None else dep[0]) if due.size else None
        if first is None:
            if dep is not None:
                self._depart(s, dep, with_done=self.idle is not None)
        else:
            # A car whose late arrival is due in the step it leaves again (a trip due now, or one
            # that came while it was still on the road) arrives first and then leaves on that trip
            # (the other way round its departure found it still on the road and was dropped).
            # Only those cars: every other departure still comes before the step's arrivals, so
            # the chargers it frees serve them as before.
            again = None if dep is None else dc.mark(due[first], dep[0])
            if again is not None:
                self._depart(s, tuple(a[~again] for a in dep))
            elif dep is not None:
                self._depart(s, dep)
            self._arrive(s, due[first], *(p[k][first] for k in _ARRIVAL_FIELDS))
            dc.start_deferred(s, due[first])
            if again is not None:
                self._depart(s, tuple(a[again] for a in dep))
            due, p = due[~first], {k: a[~first] for k, a in p.items()}
        if self.idle is not None:
            self._leave_when_done(s)
        if self.queues.n_queued:
            self._serve_queues(s)
        lo, hi = ev.arr_bounds[i], ev.arr_bounds[i + 1]
        v, arr = None, None
        if hi > lo:
            sl = slice(lo, hi)
            v = ev.arr_vehicle[sl]
            arr = {k: getattr(ev, "arr_" + k)[sl] for k in _ARRIVAL_FIELDS}
            keep = dc.filter_arrivals(v, arr)
            if keep is not None:  # positions once, for the 9 arrays (a mask is re-scanned by each)
                keep = np.flatnonzero(keep)
                v, arr = v[keep], {k: a.take(keep) for k, a in arr.items()}
            # a held trip's arrival event captured just now may already be due (a trip shortened
            # at a detour arrives before its planned arrival): it arrives in this step too
            due2, p2 = dc.take_due(s)
            if due2.size and due.size:
                due, p = np.concatenate([due, due2]), {k: np.concatenate([p[k], p2[k]]) for k in _ARRIVAL_FIELDS}
            elif due2.size:
                due, p = due2, p2
        if due.size:  # held-back arrivals first (they were due earlier), then the step's own
            if v is not None:
                v, arr = np.concatenate([due, v]), {k: np.concatenate([p[k], arr[k]]) for k in _ARRIVAL_FIELDS}
            else:
                v, arr = due, p
        if v is not None and v.size:
            self._arrive(s, v, *(arr[k] for k in _ARRIVAL_FIELDS))
        for a in self._phase["release"]:  # e.g. swap queues served: swapped (or leaving) drivers go on to their destination
            rel = a.release(s)
            if rel is not None:
                on = rel.loc == DRIVING  # taken in before a trip: they go on with it
                if on.any():
                    dc.after_swap(s, rel.v[on])
                    k = ~on
                    rel = type(rel)(rel.v[k], rel.loc[k], rel.site[k], rel.p_max_kw[k], rel.est_step[k])
                z = np.zeros(rel.v.size)
                self._arrive(s, rel.v, rel.loc, rel.site, z, z, np.full(z.size, np.nan), rel.p_max_kw, rel.est_step, held_by_actors=False)

    def _decide(self, sig: Signals) -> None:
        """Phase 3: every actor decides; the aggregators' dispatches are the fleet's requests."""
        for a in self._phase["decide"]:
            a.decide(sig)
        s = sig.step
        idx_parts, p_parts, own = [], [], []
        for agg in self.aggregators:
            d = agg.dispatch
            idx_parts.append(np.asarray(d.idx, dtype=np.int64))
            p_parts.append(np.asarray(d.p_kw, dtype=np.float64))
            if d.price_cny_per_kwh is not None or d.v2g_price_cny_per_kwh is not None:
                own.append(d)
        self._own_prices = bool(own)
        if own:  # the aggregator's own prices for its vehicles, the tariff's for everyone else
            for part in idx_parts:
                self._buy_price_v[part] = self.price_cny_per_kwh[s]
                self._v2g_price_v[part] = self.v2g_price_cny_per_kwh[s]
            for d in own:
                if d.price_cny_per_kwh is not None:
                    self._buy_price_v[d.idx] = d.price_cny_per_kwh
                if d.v2g_price_cny_per_kwh is not None:
                    self._v2g_price_v[d.idx] = d.v2g_price_cny_per_kwh
        if not idx_parts:
            idx, p_req = np.empty(0, np.int64), np.empty(0)
        else:
            idx = np.concatenate(idx_parts) if len(idx_parts) > 1 else idx_parts[0]
            p_req = np.concatenate(p_parts) if len(p_parts) > 1 else p_parts[0]
        f = self.fleet
        if idx.size and not f.plugged[idx].all():
            bad = idx[~f.plugged[idx]][:5]
            raise SimulationError(f"a strategy asked for power for unplugged vehicles {bad.tolist()}; dispatch only obs.plugged vehicles")
        self._req_idx, self._req_p = idx, p_req

    def _physics(self, sig: Signals) -> None:
        """Phase 4: the fleet's requests clipped to each charger, then to each site's connection
        (:mod:`v2gsim.engine.limits`: the net within the limit), and applied; then the actors' physics."""
        f = self.fleet
        idx = self._req_idx
        f.p_kw[self._prev_idx] = 0.0  # vehicles left out of this dispatch draw nothing
        if self._request_kw is not None:
            self._request_kw[:] = 0.0
        p_max = f.p_plug_max_kw[idx]
        p_req = np.clip(self._req_p, -p_max * f.can_discharge[idx], p_max)
        lim, n_sites = self.site_p_limit_kw, self.n_sites
        two_pass = False
        if idx.size and self._any_site_limit:
            site = f.site[idx]
            bind = binding(p_req, site, lim, n_sites)
            if bind.any():
                dis = (p_req < 0) & bind[site]
                if dis.any():  # ask discharging vehicles at a binding site only for what they can give
                    v = idx[dis]
                    floor = np.minimum(f.e_kwh[v], f.e_min_departure_kwh[v])
                    p_req[dis] = -np.minimum(-p_req[dis], deliverable_discharge_kw(f.e_kwh[v], floor, f.eta_discharge[v], self.dt_h))
                p_req = limit_import(p_req, site, lim, n_sites)
                two_pass = bool((direction_sums(p_req, site, n_sites)[1] > lim).any())
        if not two_pass:
            p = self._apply(idx, p_req)
        else:  # charging first; the export limit is taken against what it delivered
            ch = p_req >= 0
            p = np.empty(idx.size)
            p[ch] = self._apply(idx[ch], p_req[ch])
            charged_kw = np.bincount(site[ch], weights=p[ch], minlength=n_sites)
            out = ~ch
            p[out] = self._apply(idx[out], limit_export(p_req[out], site[out], lim, n_sites, charged_kw))
        self._prev_idx = idx
        self.vehicle_power.idx, self.vehicle_power.p_kw = idx, p
        for a in self._phase["physics"]:
            a.physics(sig)

    def _grid(self, sig: Signals) -> None:
        """Phase 5: the fleet's power and every actor's injections on the feeder, which solves (it is the last actor)."""
        f = self.fleet
        s = sig.step
        idx, p = self.vehicle_power.idx, self.vehicle_power.p_kw
        site_of_idx = f.site[idx]
        self._site_p = np.bincount(site_of_idx, weights=p, minlength=self.n_sites) if idx.size else np.zeros(self.n_sites)
        pos = p > 0
        if np.count_nonzero(pos) == p.size:  # all charging (or none at all): the same sums without the masks
            self._ev_kw, self._v2g_kw = float(p.sum()), 0.0
        else:
            self._ev_kw = float(p[pos].sum())
            self._v2g_kw = float(np.maximum(-p, 0.0).sum())
        inj = GridInjections(self.base_load_kw[s] + self._ev_kw - self._v2g_kw, self.feeder if self.has_network else None,
                             self.feeder.ev_bus_kw(idx, p, site_of_idx) if self.has_network else None)
        for a in self._phase["grid"]:
            a.grid(sig, inj)
        self._net_kw = inj.net_kw

    def _settle(self, sig: Signals) -> None:
        """Phase 6a: money, into :attr:`ledger`. The fleet's energy first: each vehicle pays its
        price for energy drawn and is paid for energy fed back (``cost_cny`` / ``revenue_cny``);
        the drivers pay the operator of the site (its own price, or the tariff's), which buys
        the energy from the grid company at the tariff (and sells V2G energy back at the tariff's
        V2G price). Then every actor's settlement."""
        s, row = sig.step, sig.row
        f = self.fleet
        idx, p = self.vehicle_power.idx, self.vehicle_power.p_kw
        if idx.size:
            e_grid = p * self.dt_h
            own = self._own_prices
            buy, sell = (self._buy_price_v[idx], self._v2g_price_v[idx]) if own else (self.price_cny_per_kwh[s], self.v2g_price_cny_per_kwh[s])
            e_in, e_out = np.maximum(e_grid, 0.0), np.maximum(-e_grid, 0.0)
            cost, revenue = e_in * buy, e_out * sell
            f.cost_cny[idx] += cost
            f.revenue_cny[idx] += revenue
            if row >= 0:
                self._post_fleet(row, idx, e_in, e_out, cost, revenue, sig)
                if self.contracts is not None:
                    self.contracts.settle_fleet(row, idx, self._owner_v[idx], e_out, revenue, self.ledger)
        for a in self._phase["settle"]:
            a.settle(sig, self.ledger)
        if self.two_part is not None:
            # the swap stations are metered customers too, after the sites (_two_part_billing)
            site_p = np.concatenate([self._site_p, *(n.p_kw for n in self._metered_stations)]) if self._metered_stations else self._site_p
            self.two_part.settle(row, site_p, self._net_kw, self.ledger)

    def _two_part_billing(self, scenario) -> TwoPartBilling | None:
        """The two-part tariff's charges in the ledger (None without them): a site's demand
        charge paid by its owner, each swap station's by its operator (a station has its own
        connection and meter), the feeder-wide ones split by installed charger power."""
        from v2gsim.agents.swap_station import SwapNetwork

        t = scenario.tariff
        self._metered_stations = self.actors_of(SwapNetwork)
        if t.demand_charge_cny_per_kw_month is None and t.capacity_charge_cny_per_kva_month is None:
            return None
        payer = [self.operator_ids[k] if k >= 0 else DRIVERS for k in self.site_owner]
        payer += [n.operator_id for n in self._metered_stations for _ in range(n.n_stations)]
        power = self.sites.p_max_kw * self.sites.ports
        power = np.where(np.isfinite(power), power, 0.0)
        owners = [k for k in range(len(self.operator_ids))]
        w = np.array([float(power[self.site_owner == k].sum()) for k in owners])
        kva = t.capacity_kva or self.feeder.transformer_kva or 0.0
        return TwoPartBilling(self.clock[self.n_warmup:], scenario.time.step_min, demand_rate=t.demand_charge_cny_per_kw_month,
                              window_min=int(t.demand_window_min or 15), meter=t.demand_meter,
                              capacity_rate=t.capacity_charge_cny_per_kva_month, capacity_kva=float(kva),
                              site_payers=payer, shared_payers=[self.operator_ids[k] for k in owners], shared_weights=w)

    def _meter(self, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The grid operator's meters this step: net kW per operator (its sites' vehicles and its
        own actors' ``p_kw``, e.g. swap stations), shape (n_operators,), and at ``sites`` (k,)."""
        idx, p = self.vehicle_power.idx, self.vehicle_power.p_kw
        n_ops = len(self.aggregators)
        ops = np.bincount(self._owner_v[idx] + 1, weights=p, minlength=n_ops + 1)[1:] if idx.size else np.zeros(n_ops)
        for k, a in self._own_metered:
            ops[k] += a.metered_kw()
        at = np.bincount(self.fleet.site[idx], weights=p, minlength=self.n_sites)[sites] if idx.size and sites.size else np.zeros(sites.size)
        return ops, at

    def _reg_meter(self, sites: np.ndarray, sustain_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Regulation capacity held both ways this step, kW: per operator (n_operators,) and at
        ``sites`` (k,): each plugged bidirectional vehicle's headroom around its power this step
        (:func:`v2gsim.market.regulation.headroom_kw`), up and down summed per site and kept within
        the site's connection limit around its power, then summed over the operator's sites, plus
        its swap racks' (``SwapNetwork.regulation_kw``, per station within its grid limit); the
        smaller of the two sums. Vectorised over the plugged vehicles and rack packs."""
        from v2gsim.market.regulation import headroom_kw

        f = self.fleet
        v = np.flatnonzero(f.plugged & f.can_discharge & (f.site >= 0))
        p_now = np.zeros(f.e_kwh.size)
        p_now[self.vehicle_power.idx] = self.vehicle_power.p_kw
        up, down = headroom_kw(p_now[v], f.p_plug_max_kw[v], f.p_plug_max_kw[v], f.e_kwh[v], f.e_min_departure_kwh[v],
                               f.capacity_kwh[v], f.eta_charge[v], f.eta_discharge[v], sustain_h)
        # per site, within its connection limit around its power this step (every vehicle there)
        n = self.n_sites
        up_s = np.bincount(f.site[v], weights=up, minlength=n)
        down_s = np.bincount(f.site[v], weights=down, minlength=n)
        idx = self.vehicle_power.idx
        p_site = np.bincount(f.site[idx], weights=self.vehicle_power.p_kw, minlength=n) if idx.size else np.zeros(n)
        lim = self.site_p_limit_kw
        up_s = np.minimum(up_s, np.maximum(p_site + lim, 0.0))
        down_s = np.minimum(down_s, np.maximum(lim - p_site, 0.0))
        n_ops = len(self.aggregators)
        owner = self.site_owner + 1
        up_o = np.bincount(owner, weights=up_s, minlength=n_ops + 1)[1:]
        down_o = np.bincount(owner, weights=down_s, minlength=n_ops + 1)[1:]
        for k, a in self._own_metered:  # the operator's own actors that hold regulation (swap racks)
            if hasattr(a, "regulation_kw"):
                up_a, down_a = a.regulation_kw(sustain_h)
                up_o[k] += float(up_a.sum())
                down_o[k] += float(down_a.sum())
        ops = np.minimum(up_o, down_o)
        at = np.minimum(up_s, down_s)[sites] if sites.size else np.zeros(0)
        return ops, at

    @staticmethod
    def _regulation_signals(requests) -> dict[int, np.ndarray]:
        """Each regulation request's signal (request number in ``requests``, the scenario's in one
        schema -> samples), read from its CSV (checked at validation: v2gsim.scenario)."""
        from v2gsim.errors import ScenarioError
        from v2gsim.market.regulation import read_signal

        out = {}
        for n, r in enumerate(requests):
            if r.signal is not None:
                x, problems = read_signal(r.signal, f"grid_operator.requests[{n}].signal")
                if problems:
                    raise ScenarioError(problems)
                out[n] = x
        return out

    def _post_fleet(self, row, idx, e_in, e_out, cost, revenue, sig: Signals) -> None:
        """The step's fleet money per operator (bincount over the owner of each vehicle's site)."""
        if self._sole_operator:  # one business model at every site: no grouping
            groups = [(1, float(e_in.sum()), float(e_out.sum()), float(cost.sum()), float(revenue.sum()))]
        else:
            owner = self._owner_v[idx] + 1  # 0: a site no business model owns (the drivers deal with the grid company)
            sums = [np.bincount(owner, weights=w, minlength=len(self.aggregators) + 1) for w in (e_in, e_out, cost, revenue)]
            groups = [(k, *(float(x[k]) for x in sums)) for k in np.flatnonzero(sums[0] + sums[1])]
        ledger = self.ledger
        for k, kwh_in, kwh_out, paid, got in groups:
            op = self.operator_ids[k - 1] if k else GRID_COMPANY
            ledger.post(row, DRIVERS, op, "charging", kwh_in, paid)
            ledger.post(row, op, DRIVERS, "v2g", kwh_out, got)
            if k:  # the operator buys the energy at the tariff and sells V2G energy back at it
                ledger.post(row, op, GRID_COMPANY, "energy_purchase", kwh_in, kwh_in * sig.price_cny_per_kwh)
                ledger.post(row, GRID_COMPANY, op, "energy_sale", kwh_out, kwh_out * sig.v2g_price_cny_per_kwh)

    def _record(self, sig: Signals) -> None:
        """Phase 6b: the system row, then each actor's record."""
        s, r = sig.step, sig.row
        if r >= 0:
            f = self.fleet
            p = self.vehicle_power.p_kw
            self.recorder.system(r, self.base_load_kw[s], self._ev_kw, self._v2g_kw, self._net_kw, self.feeder.loading_pct,
                                 self.price_cny_per_kwh[s], self.v2g_price_cny_per_kwh[s], int(np.count_nonzero(f.plugged)),
                                 int(np.count_nonzero(p > 0)), self._site_p, f)
            if self.has_network:
                self.recorder.network(r, s, self.feeder)
        for a in self._phase["record"]:
            a.record(sig)

    def run(self, progress: bool = False):
        """Step to the horizon (Mesa's ``run_for``, a day at a time) and return :class:`~v2gsim.results.Results`."""
        from tqdm.auto import tqdm

        from v2gsim.results import Results

        t0 = _time.perf_counter()
        bar = tqdm(total=self.n_clock, unit="step", disable=not progress, desc=self.config.name[:30], mininterval=0.5)
        while self.steps < self.n_clock:
            self.run_for(min(self.steps_per_day, self.n_clock - self.steps))
            bar.update(self.steps - bar.n)
        bar.close()
        self.finish()
        self.wall_time_s = _time.perf_counter() - t0
        return Results.from_recording(*self.recording())

    # ------------------------------------------------------------------ hand-over to Results

    def recording(self) -> tuple[Recording, dict]:
        """Finish the run (once) and hand over what it recorded and its metadata, for
        :meth:`v2gsim.results.Results.from_recording` (which never sees the model)."""
        from v2gsim.results import package_version, scenario_hash

        self.finish()
        rec, f = self.recorder, self.fleet
        group_names = [b.group.archetype + f"#{i}" if b.group else "sessions" for i, b in enumerate(self.blocks)]
        vehicles = {
            "vehicle": np.arange(f.n),
            "group": pd.Categorical.from_codes(f.group, categories=group_names),
            "archetype": pd.Categorical.from_codes(f.archetype, categories=list(ARCHETYPES)),
            "vehicle_model": pd.Categorical.from_codes(f.vehicle_model, categories=self.vehicle_models),
            **{name: getattr(f, attr).copy() for name, attr in _VEHICLE_COLUMNS},
            "plugged_at_end": f.plugged.copy(),
            "pending_kwh": np.where(f.plugged, np.maximum(0.0, f.session_e_request_kwh - f.session_grid_kwh), 0.0),
            "cost_cny": f.cost_cny.copy(),
            "revenue_cny": f.revenue_cny.copy(),
            **(self.contracts.vehicle_columns() if self.contracts is not None else {}),
            # business models' own actors' per-vehicle columns (a distributed valley fill's rewards)
            **{k: c for a in self._own_actors if hasattr(a, "vehicle_columns") for k, c in a.vehicle_columns().items()},
            "soc_final": f.e_kwh / f.capacity_kwh,
        }
        tables: dict[str, pd.DataFrame] = {}
        kpis = dict(self.session_stats)
        for a in self.actors:
            for name, t in a.tables(self.times, self.clock).items():
                tables[name] = pd.concat([tables[name], t], ignore_index=True) if name in tables else t
            kpis.update(a.kpis())
        tables.update(self._service_tables())
        recording = Recording(
            times=self.times, clock=self.clock, dt_h=self.dt_h, system={**rec.cols, **rec.actor_cols}, site_ids=self.sites.ids,
            site_p_kw=rec.site_p_kw, vehicles=vehicles, sessions=rec.sessions(), trace_idx=rec.trace_idx, traces_soc=rec.traces_soc,
            departure_soc_counts=rec.departure_soc_counts,
            bus_labels=self.feeder.net.bus.index.to_numpy() if rec.bus_vm_pu is not None else None, bus_vm_pu=rec.bus_vm_pu,
            tables=tables, kpis=kpis, ledger=self.ledger.table(self.times),
        )
        scenario_json = self.config.model_dump(mode="json")
        scenario_json["seed"] = self.seed_value
        metadata = {"scenario": scenario_json, "scenario_hash": scenario_hash(scenario_json), "seed": self.seed_value,
                    "version": package_version(), "wall_time_s": self.wall_time_s, "n_steps": self.n_steps, "n_vehicles": f.n,
                    "transformer_kva": self.feeder.transformer_kva}
        return recording, metadata


    def _service_tables(self) -> dict[str, pd.DataFrame]:
        """Who owns what and whom it served, as the engine decided it (one rule, recorded):
        ``site_service`` (per site: the operator that owns it, sessions ended there and their
        unmet energy) and ``operator_service`` (per business model: operator id, kind and the
        distinct drivers with a session at its sites)."""
        ids = ["", *self.operator_ids]
        rec = self.recorder
        site = pd.DataFrame({"site_id": list(self.sites.ids), "operator_id": [ids[k + 1] for k in self.site_owner],
                             "sessions": rec.site_sessions.copy(), "unmet_kwh": rec.site_unmet_kwh.copy()})
        ops = pd.DataFrame({"operator_id": self.operator_ids, "kind": [bm.kind for bm in self.config.business_models],
                            "drivers_served": rec.served[:, 1:].sum(axis=0).astype(np.int64)})
        return {"site_service": site, "operator_service": ops}

# an arrival's fields, in the order of _arrive's arguments (DayEvents.arr_<field>)
_ARRIVAL_FIELDS = ("loc", "site", "trip_kwh", "km", "e_set_kwh", "p_max_kw", "depart_est_step", "next_trip_kwh")

# per-vehicle result columns read straight from fleet arrays: (column, Fleet attribute)
_VEHICLE_COLUMNS = (
    ("capacity_kwh", "capacity_kwh"), ("e_charged_kwh", "e_charged_kwh"), ("e_discharged_kwh", "e_discharged_kwh"),
    ("e_loss_kwh", "e_loss_kwh"), ("e_driven_kwh", "e_driven_kwh"), ("distance_km", "distance_km"), ("unmet_kwh", "unmet_kwh"),
    ("stranded_trips", "stranded_trips"), ("stranded_kwh", "stranded_kwh"), ("sessions", "n_sessions"), ("departures", "n_departures"),
    ("departures_below_min", "departures_below_min"), ("no_charger_events", "no_charger_events"),
    ("sessions_turned_away", "sessions_turned_away"), ("unmet_turned_away_kwh", "unmet_turned_away_kwh"),
    ("delayed_departures", "delayed_departures"), ("delay_min", "delay_min"), ("detours", "detours"), ("detour_min", "detour_min"),
    ("trips_shortened", "trips_shortened"), ("trips_cancelled", "trips_cancelled"), ("km_lost", "km_lost"), ("queued", "queued"),
    ("queue_wait_min", "queue_wait_min"), ("queue_left", "queue_left"),
)


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v
