"""Battery-swap stations: pack inventories as arrays, swap bays, FIFO queues, rack charging.

:class:`SwapNetwork` holds the state of all stations of one ``battery_swap`` business model
and is one of the engine's actors (:mod:`v2gsim.engine.actor`); :class:`SwapStation` agents are
thin Mesa views of one station each (``station.packs_ready``, ``station.queue_length`` ...).

Packs (struct of arrays, :class:`Packs`, shape (P,)): every pack of every swappable vehicle
(a vehicle with a ``pack_standard`` for which the scenario has a station) and every rack pack.
A pack is either in a vehicle (``vehicle >= 0``, ``station == slot == -1``) or in a rack slot
(``station``, ``slot`` >= 0, ``vehicle == -1``). Packs are never created or destroyed: a swap
moves exactly one pack each way, so the count per standard and per rack is constant. While a
pack is in a vehicle the fleet's ``e_kwh`` is its live energy (``Packs.e_kwh`` is synced at
each swap and by :meth:`SwapNetwork.pack_e_kwh`). Rack slots are laid out station by station:
slot ``r`` of the global slot arrays belongs to ``slot_station[r]``; ``slot_pack[r]`` is the
pack in it.

Wear: ``Packs.soh`` (state of health; usable capacity is ``capacity_kwh * soh``),
``e_throughput_kwh`` (battery-side |dE| while racked), ``e_rack_discharged_kwh`` and
``wear_cost_cny_per_kwh`` (the price published at the last wear period's stressors; the EMS with
``wear_cny_per_kwh: model`` prices each discharge at its own, ``Racks.cycle_wear_cny_per_kwh``)
are per-pack arrays.
With the scenario's wear model on, :class:`~v2gsim.physics.ageing.SwapPackWear` (``self.wear``)
(built by :meth:`~v2gsim.physics.ageing.FleetWear.pack_wear`) ages every pack, rack or vehicle, sets ``soh`` and the wear price once per period and replaces
retired packs in place (same pack id); a vehicle's capacity arrays follow the pack it carries.

Mobility (the engine's arrival phase): a swappable vehicle first goes to a compatible station
(same pack standard; the one with most ready packs net of its queue, its own preferred station
on ties) when it arrives

- with less than its group's ``swap_below_soc`` (reason ``low_soc``), or
- before a long trip (reason ``long_trip``, only if its group sets
  ``swap_before_trip_reserve_soc``): its *next* trip's energy (known on arrival, like the
  stated departure; ``DayEvents.arr_next_trip_kwh``) would leave less than that reserve. Only
  the next trip counts, not the rest of the day: that is what a driver plans for at a stop, and
  the low-SOC trigger already catches the drain of the later stops (counting the whole day
  would send every multi-leg driver to a station at the first stop). Drivers who plug in at
  their own pile at this stop are left out: they charge there before leaving.

It joins the station's FIFO queue and, once a bay is free and a charged pack ready, swaps; then
it continues to its destination and arrives there in the step of the swap (the detour's
distance and time within the step are not modelled). Drivers who wait longer than
``max_wait_min``, or whose next trip starts, leave without a swap (counted) and go on to their
destination as they are. Swaps are counted by reason (``swaps.reason``, station columns
``swaps_low_soc`` and ``swaps_long_trip``, which add up to ``swaps``). A station serves at most
``min(bays * step / swap_time, max_swaps_per_day * step / 1 day)`` swaps per step (fractions
carried over). Waiting time: whole steps waited plus the position in the step's service order
times the service interval; its resolution is one step.
"""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd

from v2gsim.engine.actor import Actor, EngineView, GridInjections, Signals
from v2gsim.market.settlement import DRIVERS, GRID_COMPANY
from v2gsim.population.fleet import CHEMISTRIES
from v2gsim.swap.packs import Packs, wear_cny_per_kwh_discharged
from v2gsim.swap.queue import LONG_TRIP, LOW_SOC, REASONS, SwapQueues
from v2gsim.swap.rack import Racks, StationObservation

__all__ = ["SwapNetwork", "SwapStation", "Packs", "StationObservation", "REASONS", "LOW_SOC", "LONG_TRIP", "STATION_COLUMNS"]

STREAM_SWAP = 90  # SeedSequence(seed, spawn_key=(STREAM_SWAP,)): preferred stations
STREAM_PACK_AGE = 91  # SeedSequence(seed, spawn_key=(STREAM_PACK_AGE, station)): initial pack ages
STATION_COLUMNS = ("p_kw", "charge_kw", "discharge_kw", "packs_ready", "queue", "swaps", "swaps_low_soc", "swaps_long_trip", "left",
                   "swap_capacity", "e_rack_kwh", "cost_cny", "revenue_cny", "wear_cost_cny")


class SwapStation(mesa.Agent):
    """One swap station: a view of row ``index`` of its :class:`SwapNetwork`."""

    def __init__(self, model, network: SwapNetwork, index: int):
        super().__init__(model)
        self.network = network
        self.index = int(index)
        self.station_id = network.station_ids[index]

    @property
    def pack_ids(self) -> np.ndarray:
        """Packs in the rack now, shape (packs,)."""
        n = self.network
        return n.slot_pack[n.slot_start[self.index] : n.slot_start[self.index + 1]].copy()

    @property
    def packs_ready(self) -> int:
        return int(self.network.ready_counts()[self.index])

    @property
    def queue_length(self) -> int:
        return int(self.network.queue_counts()[self.index])

    @property
    def p_kw(self) -> float:
        return float(self.network.p_kw[self.index])


class SwapNetwork(SwapQueues, Racks, Actor):
    """All swap stations of one business model, an actor of the engine (its parts:
    :mod:`v2gsim.swap.queue` for the drivers, :mod:`v2gsim.swap.rack` for the racks).

    Phases: :meth:`depart` and :meth:`arrive` (mobility: queued drivers leave, low drivers join
    a queue), :meth:`release` (end of mobility: queues served, swapped or leaving drivers go on),
    :meth:`decide` (the strategy's EMS plans the racks), :meth:`physics` (rack charging within
    slot and station limits), :meth:`grid` (station power at each station's bus),
    :meth:`settle` (energy bought and sold per station), :meth:`record` (the system columns it
    declares and the station table). ``connections`` gives each station's feeder bus spec.
    Results: :meth:`tables` (``stations``, ``swaps``).
    """

    def __init__(self, engine: EngineView, strategy):
        cfg = strategy.config
        self.strategy = strategy
        self.operator_id = strategy.context.operator_id or cfg.kind  # the operator in the ledger
        self.cfg = cfg
        self.fleet = f = engine.fleet
        self.n_warmup = engine.n_warmup
        self._site_private = engine.sites.private
        dt_h = engine.dt_h
        self.dt_h = dt_h
        self.step_min = dt_h * 60.0
        specs = [s.resolved() for s in cfg.stations]
        self.station_ids = [s.id for s in cfg.stations]
        self.buses = [s.bus for s in cfg.stations]
        self.connections = tuple(self.buses)
        self.standards = sorted({p.pack_standard for p in specs})
        S = len(specs)
        self.n_stations = S
        st_std = np.array([self.standards.index(p.pack_standard) for p in specs], np.int64)
        self.st_standard = st_std
        # vehicles' standards from their groups' vehicle specs
        n = f.n
        veh_std = np.full(n, -1, np.int64)
        below = np.zeros(n)
        trip_reserve = np.full(n, -np.inf)  # -inf: never swaps before a trip
        std_vspec: dict[int, object] = {}
        for b in engine.blocks:
            ps = b.vehicle.pack_standard
            if ps is None or ps not in self.standards or b.group is None:
                continue
            k = self.standards.index(ps)
            sl = slice(b.start, b.start + b.count)
            veh_std[sl] = k
            below[sl] = getattr(b.group, "swap_below_soc", 0.25) * b.vehicle.capacity_kwh
            reserve_soc = getattr(b.group, "swap_before_trip_reserve_soc", None)
            if reserve_soc is not None:
                trip_reserve[sl] = reserve_soc * b.vehicle.capacity_kwh
            std_vspec.setdefault(k, b.vehicle)
        std_capacity = np.zeros(len(self.standards))
        std_chem = np.zeros(len(self.standards), np.int8)
        std_knee = np.full(len(self.standards), 0.8)
        std_cutoff = np.full(len(self.standards), 0.05)
        std_eta_c = np.full(len(self.standards), 0.95)
        std_eta_d = np.full(len(self.standards), 0.95)
        for k in range(len(self.standards)):
            v = std_vspec.get(k)
            if v is not None:
                std_capacity[k] = v.capacity_kwh
                std_chem[k] = CHEMISTRIES.index(v.chemistry)
                std_knee[k], std_cutoff[k] = v.soc_knee, v.taper_cutoff_frac
                std_eta_c[k], std_eta_d[k] = v.eta_charge, v.eta_discharge
            else:
                # validation (BatterySwapConfig.scenario_problems) made sure a station gives it
                std_capacity[k] = next(p.pack_capacity_kwh for p in specs if p.pack_standard == self.standards[k] and p.pack_capacity_kwh)
        # station (S,) arrays
        self.st_packs = np.array([p.packs for p in specs], np.int64)
        self.st_grid_limit_kw = np.array([p.grid_limit_kw for p in specs], float)
        self.st_bidirectional = np.array([p.bidirectional for p in specs], bool)
        self.st_max_swaps_per_day = np.array([p.max_swaps_per_day for p in specs], float)
        self.st_rate_per_step = np.minimum(
            np.array([p.bays * dt_h * 3600.0 / p.swap_time_s for p in specs]), self.st_max_swaps_per_day * dt_h / 24.0
        )
        self.st_interval_min = self.step_min / self.st_rate_per_step
        self._credits = np.zeros(S)
        self.slot_start = np.concatenate([[0], np.cumsum(self.st_packs)]).astype(np.int64)
        R = int(self.slot_start[-1])
        self.slot_station = np.repeat(np.arange(S), self.st_packs)
        self.slot_p_max_kw = np.repeat([p.slot_p_max_kw for p in specs], self.st_packs).astype(float)

        # packs: first one per swappable vehicle, then the racks
        swappable = np.flatnonzero(veh_std >= 0)
        nv = swappable.size
        P = nv + R
        pk_std = np.concatenate([veh_std[swappable], st_std[self.slot_station]]).astype(np.int8)
        init_soc = np.repeat([s.initial_soc for s in cfg.stations], self.st_packs)
        cap = std_capacity[pk_std]
        self.packs = Packs(
            standard=pk_std,
            chemistry=std_chem[pk_std],
            capacity_kwh=cap,
            soh=np.ones(P),
            e_kwh=np.concatenate([f.e_kwh[swappable], init_soc * cap[nv:]]),
            station=np.concatenate([np.full(nv, -1), self.slot_station]).astype(np.int32),
            slot=np.concatenate([np.full(nv, -1), np.arange(R)]).astype(np.int32),
            vehicle=np.concatenate([swappable, np.full(R, -1)]).astype(np.int64),
            e_charged_kwh=np.zeros(P), e_discharged_kwh=np.zeros(P), e_loss_kwh=np.zeros(P),
            e_throughput_kwh=np.zeros(P), e_rack_discharged_kwh=np.zeros(P),
            n_swaps=np.zeros(P, np.int32), wear_cost_cny_per_kwh=np.zeros(P),
        )
        self.pack_knee = std_knee[pk_std]
        self.pack_cutoff = std_cutoff[pk_std]
        self.pack_eta_c = std_eta_c[pk_std]  # rack chargers as efficient as the vehicles' own
        self.pack_eta_d = std_eta_d[pk_std]
        self.slot_pack = np.arange(nv, P, dtype=np.int64)
        self.veh_pack = np.full(n, -1, np.int64)
        self.veh_pack[swappable] = np.arange(nv)
        self.veh_below_kwh = np.where(veh_std >= 0, below, -np.inf)
        self.veh_trip_reserve_kwh = np.where(veh_std >= 0, trip_reserve, -np.inf)
        self.veh_standard = veh_std
        # preferred station per vehicle: random among the compatible ones (a proxy for where they drive)
        rng = np.random.default_rng(np.random.SeedSequence(engine.seed, spawn_key=(STREAM_SWAP,)))
        self.veh_pref = np.full(n, -1, np.int64)
        for k in range(len(self.standards)):
            sts = np.flatnonzero(st_std == k)
            vk = np.flatnonzero(veh_std == k)
            if sts.size and vk.size:
                self.veh_pref[vk] = sts[rng.integers(0, sts.size, vk.size)]
        self.compat = st_std[None, :] == np.arange(len(self.standards))[:, None]  # (standards, S)
        # queues: per vehicle (FIFO by sequence number)
        self.q_station = np.full(n, -1, np.int64)
        self.q_seq = np.zeros(n, np.int64)
        self.q_since = np.zeros(n, np.int64)
        self.q_loc = np.zeros(n, np.int8)
        self.q_site = np.full(n, -1, np.int32)
        self.q_p_max = np.zeros(n)
        self.q_est = np.zeros(n, np.int64)
        self.q_reason = np.zeros(n, np.int8)  # LOW_SOC or LONG_TRIP
        self._seq = 0
        self.n_queued = 0
        self._qcount = np.zeros(S, np.int64)
        self._slot_version = object()  # replaced at every swap: invalidates the per-slot cache
        self._slot_cache = None
        # per-step counters and recording
        self.p_kw = np.zeros(S)
        self._demand = np.zeros(S)
        self._swaps_step = np.zeros(S)
        self._swaps_long_trip_step = np.zeros(S)
        self._left_step = np.zeros(S)
        self.st_cost_cny = np.zeros(S)
        self.st_revenue_cny = np.zeros(S)
        self.st_wear_cny = np.zeros(S)
        self.veh_swap_net_kwh = np.zeros(n)  # energy a vehicle gained by swaps (in - out), per vehicle
        self.n_rec = engine.n_steps
        self.rec = {c: np.zeros((self.n_rec, S)) for c in STATION_COLUMNS}
        self._rows: list[dict] = []
        self.price = engine.price_cny_per_kwh
        self.v2g_price = engine.v2g_price_cny_per_kwh
        self.agents = [SwapStation(engine.mesa_model, self, k) for k in range(S)]
        # this step's plan and physics, per slot (R,) and per station (S,)
        self._req_kw = np.zeros(R)
        self._charge_kw = np.zeros(S)
        self._dis_kw = np.zeros(S)
        self._e_rack_kwh = np.zeros(S)
        self._rack_out_kwh = np.zeros(R)  # battery-side energy each slot's pack gave this step
        self._wear_seen = np.zeros(R)  # the wear price per slot the EMS planned with this step (settle books at it)
        self._p_slot_kw = np.zeros(R)  # each slot's grid-side power this step (the regulation meter's operating point)
        self.cost_cny = np.zeros(S)  # this step's money per station (the settle phase)
        self.revenue_cny = np.zeros(S)
        self.wear_cny = np.zeros(S)
        # the packs' ageing (a physics.ageing.SwapPackWear) when the scenario's wear model is on
        self.initial_pack_age = self._initial_pack_age(cfg, engine.seed) if engine.wear is not None else None
        self.wear = engine.wear.pack_wear(self) if engine.wear is not None else None

    def _initial_pack_age(self, cfg, seed: int):
        """(age in years, soh or NaN) per pack from each station's ``initial_age_years`` /
        ``initial_soh`` (a carried pack: its vehicle's preferred station's); None if all are new."""
        from v2gsim.physics.ageing.initial import draw, is_new

        if all(is_new(s.initial_age_years, s.initial_soh) for s in cfg.stations):
            return None
        pk = self.packs
        st = np.where(pk.station >= 0, pk.station, self.veh_pref[np.maximum(pk.vehicle, 0)])
        age = np.zeros(pk.n)
        soh = np.full(pk.n, np.nan)
        for j, s in enumerate(cfg.stations):
            sel = np.flatnonzero(st == j)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_PACK_AGE, j)))
            age[sel] = draw(s.initial_age_years, sel.size, rng, 0.0)
            soh[sel] = draw(s.initial_soh, sel.size, rng, np.nan)
        return age, soh

    # ------------------------------------------------------------------ views (more in Racks and SwapQueues)


    def pack_e_kwh(self) -> np.ndarray:
        """Live energy of every pack (rack and vehicles), shape (P,)."""
        e = self.packs.e_kwh.copy()
        inv = self.packs.vehicle >= 0
        e[inv] = self.fleet.e_kwh[self.packs.vehicle[inv]]
        return e

    def metered_kw(self) -> float:
        """The stations' net power this step (their operator's load, for the grid operator's meter)."""
        return float(self.p_kw.sum())

    def grid(self, sig: Signals, injections: GridInjections) -> None:
        """Each station's power at its own bus."""
        injections.add(float(self.p_kw.sum()), lambda feeder: feeder.connection_bus_kw(self, self.p_kw))

    def settle(self, sig: Signals, ledger) -> None:
        """Energy bought at the tariff, fed back at the V2G price (+ a request's reward); the
        operator's wear cost of discharging packs (per station, CNY)."""
        step, dt = sig.step, self.dt_h
        reward = self.strategy.request_reward[step]
        self.cost_cny = self._charge_kw * dt * self.price[step]
        self.revenue_cny = self._dis_kw * dt * (self.v2g_price[step] + reward)
        # at the price the EMS weighed this step's discharge against (its stressors, Racks.observation)
        wear_each = wear_cny_per_kwh_discharged(self.cfg.wear_cny_per_kwh, self._wear_seen)
        self.wear_cny = np.bincount(self.slot_station, weights=self._rack_out_kwh * wear_each, minlength=self.n_stations)
        self.st_cost_cny += self.cost_cny
        self.st_revenue_cny += self.revenue_cny
        self.st_wear_cny += self.wear_cny
        # the ledger: the operator buys the racks' energy and sells what they feed back; the
        # reward of a discharge request is the grid company's too. (Wear is the operator's own cost.)
        op, row = self.operator_id, sig.row
        e_in, e_out = float(self._charge_kw.sum()) * dt, float(self._dis_kw.sum()) * dt
        ledger.post(row, op, GRID_COMPANY, "energy_purchase", e_in, float(self.cost_cny.sum()))
        ledger.post(row, GRID_COMPANY, op, "energy_sale", e_out, e_out * self.v2g_price[step])
        if reward:
            ledger.post(row, GRID_COMPANY, op, "request_reward", e_out, e_out * reward)
        # the swap fees the drivers swapped this step pay the operator (docs/business_models.md)
        if self._fee_v:
            v, kwh = np.concatenate(self._fee_v), np.concatenate(self._fee_kwh)
            cfg = self.cfg
            fee = (cfg.swap_fee_cny + cfg.swap_service_fee_cny_per_kwh * np.maximum(kwh, cfg.swap_fee_min_kwh)
                   + (kwh * self.price[step] if cfg.swap_energy_billed else 0.0))
            np.add.at(self.fleet.cost_cny, v, fee)
            ledger.post(row, DRIVERS, op, "swap_fee", float(kwh.sum()), float(fee.sum()))

    def record(self, sig: Signals) -> None:
        r = sig.row
        if r >= 0:
            rec = self.rec
            rec["p_kw"][r] = self.p_kw
            rec["charge_kw"][r] = self._charge_kw
            rec["discharge_kw"][r] = self._dis_kw
            rec["packs_ready"][r] = self.ready_counts()
            rec["queue"][r] = self.queue_counts()
            rec["swaps"][r] = self._swaps_step
            rec["swaps_low_soc"][r] = self._swaps_step - self._swaps_long_trip_step
            rec["swaps_long_trip"][r] = self._swaps_long_trip_step
            rec["left"][r] = self._left_step
            rec["swap_capacity"][r] = self.st_rate_per_step
            rec["e_rack_kwh"][r] = self._e_rack_kwh
            rec["cost_cny"][r] = self.cost_cny
            rec["revenue_cny"][r] = self.revenue_cny
            rec["wear_cost_cny"][r] = self.wear_cny
            sy = self._system
            sy["swap_charge_kw"][r] += self._charge_kw.sum()
            sy["swap_discharge_kw"][r] += self._dis_kw.sum()
            sy["swap_packs_ready"][r] += rec["packs_ready"][r].sum()
        self._left_step[:] = 0.0

    def declare(self, recorder) -> None:
        """System columns (per recorded step, summed over stations and operators):
        swap_charge_kw, swap_discharge_kw (both >= 0), swap_packs_ready."""
        self._system = {c: recorder.declare_system(c) for c in ("swap_charge_kw", "swap_discharge_kw", "swap_packs_ready")}

    def begin_recording(self, step: int) -> None:
        """End of the warm-up: zero the accumulators (state is kept)."""
        pk = self.packs
        for a in (pk.e_charged_kwh, pk.e_discharged_kwh, pk.e_loss_kwh, pk.e_throughput_kwh, pk.e_rack_discharged_kwh, pk.n_swaps,
                  self.st_cost_cny, self.st_revenue_cny, self.st_wear_cny, self.veh_swap_net_kwh, self._left_step):
            a[:] = 0
        self._rows.clear()

    # ------------------------------------------------------------------ results

    def tables(self, times: pd.DatetimeIndex, clock: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
        """``stations``: long table (time, station_id, one column per STATION_COLUMNS, units in
        names); ``swaps``: one row per driver at a station (swapped or left), with the
        ``outcome`` and the ``reason`` they came (``low_soc`` or ``long_trip``)."""
        S = self.n_stations
        cats = pd.Categorical(np.tile(self.station_ids, len(times)), categories=self.station_ids)
        stations = pd.DataFrame({"time": np.repeat(times.values, S), "station_id": cats,
                                 **{c: self.rec[c].ravel() for c in STATION_COLUMNS}})
        for c in ("packs_ready", "queue", "swaps", "swaps_low_soc", "swaps_long_trip", "left"):
            stations[c] = stations[c].astype(np.int64)
        if self._rows:
            d = {k: np.concatenate([r[k] for r in self._rows]) for k in self._rows[0]}
        else:
            d = {"step": np.empty(0, np.int64), "station": np.empty(0, np.int64), "vehicle": np.empty(0, np.int64),
                 "pack_out": np.empty(0, np.int64), "pack_in": np.empty(0, np.int64), "e_out_kwh": np.empty(0),
                 "e_in_kwh": np.empty(0), "wait_min": np.empty(0), "outcome": np.empty(0, object), "reason": np.empty(0, np.int8)}
        cap = self.fleet.capacity_kwh[d["vehicle"]]
        swaps = pd.DataFrame({
            "time": pd.DatetimeIndex(clock.values[d["step"]]),
            "station_id": pd.Categorical.from_codes(d["station"], categories=self.station_ids),
            "vehicle": d["vehicle"], "pack_out": d["pack_out"], "pack_in": d["pack_in"],
            "soc_out": d["e_out_kwh"] / cap, "soc_in": d["e_in_kwh"] / cap,
            "e_out_kwh": d["e_out_kwh"], "e_in_kwh": d["e_in_kwh"], "wait_min": d["wait_min"],
            "outcome": pd.Categorical(d["outcome"], categories=["swapped", "waited too long", "departed"]),
            "reason": pd.Categorical.from_codes(d["reason"], categories=list(REASONS)),
        })
        return {"stations": stations, "swaps": swaps}

    def summary(self) -> dict[str, float]:
        return {
            "station_cost_cny": float(self.st_cost_cny.sum()),
            "station_revenue_cny": float(self.st_revenue_cny.sum()),
            "station_wear_cost_cny": float(self.st_wear_cny.sum()),
            "station_loss_kwh": float(self.packs.e_loss_kwh.sum()),
        }
