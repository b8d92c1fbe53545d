"""Battery swapping: the operator owns the packs; its stations' energy management is the strategy.

A ``battery_swap`` entry of ``business_models`` lists swap stations. At build time the strategy
creates a :class:`~v2gsim.agents.swap_station.SwapNetwork` (the stations as Mesa agents, every
pack of every swappable vehicle and rack as arrays) and hands it to the engine, which then
(phase 2) redirects low vehicles to a station, queues them and swaps packs; (phase 3) asks this
strategy's :meth:`BatterySwap.plan_packs` — the station EMS — for a power per rack pack;
(phase 4) clips and applies it; (phase 5) puts each station's power on the feeder.

For vehicles plugged at chargers of the sites this entry controls (if any), the strategy charges
like ``uncontrolled``: the swap operator does not run those chargers. With its defaults (no
stations) it is uncontrolled charging.

The EMS, vectorised over all rack packs (``R`` of them):

1. Forecast: swaps expected at each station in each hour of the day, an exponential average of
   the demand seen on past days (seeded with ``forecast_prior_utilisation`` of the station's
   daily capacity, so the first day starts prudent).
2. Packs needed ready over the next ``forecast_horizon_h`` hours (+ the queue + a reserve). The
   fullest packs of each station, up to that number, are *reserved*. Those for the queue, the
   reserve and the next hour's swaps are *urgent*: if not ready they charge at full slot power
   whatever the price. The other reserved packs charge at the pace that has them ready when the
   forecast expects to need them.
3. Other rack packs are *idle*: they charge when the price is cheap (at or below the
   ``cheap_quantile`` of the next 24 h) or a request window starts within the horizon. Packs
   beyond those the forecast needs until the next cheap hour discharge (bidirectional stations
   only) down to ``discharge_floor_soc`` when a grid request window is active, or when it pays:
   ``v2g_price * eta_d - wear_cost > min price of the next 24 h / eta_c + v2g_margin`` (per
   battery kWh; ``wear_cost`` per battery kWh discharged and later recharged, the unit of a
   numeric ``wear_cny_per_kwh``; with ``model`` the wear model's price of this discharge, at slot
   power down to the floor, :meth:`v2gsim.swap.rack.Racks.cycle_wear_cny_per_kwh`; one reader,
   :func:`v2gsim.swap.packs.wear_cny_per_kwh_discharged`).
4. All charging stays within the feeder's headroom (as seen in the last step) less a planning
   margin (``headroom_margin`` of the transformer rating): urgent packs first, by their place in
   their station's line (every station's fullest before any station's next), then the others;
   the station's grid limit is shared fullest pack first (reserved packs are the fullest);
   discharge is shared the same way.
5. In cheap hours (``cheap_fill: valley_fill``) the idle packs do not all start at the first
   cheap step: their energy is spread over the rest of the cheap run so that the feeder's
   forecast load is filled to a flat level (valley filling, Gan, Topcu & Low 2013).
6. During a grid discharge request (``honour_requests``) a station charges nothing while its
   ready packs cover its queue, the reserve and the next hour's expected swaps (only the packs
   it lacks charge, and then it does not feed back); every pack beyond those the window and
   ``request_keep_h_after`` hours after it need feeds back down to ``discharge_floor_soc``.
7. ``peak_aware`` (the two-part tariff's demand charge, as the centralized plan's peak-so-far
   term): the refill of packs no forecast swap needs yet never raises a station's draw above
   max(its peak so far this billing month, its firm charging, the flat rate that refills its
   rack over the next 24 h's cheap hours; before a request window, the flat rate to its start);
   the valley fill puts into the current cheap run only the packs needed before the next cheap
   run (and the forecast horizon after its start) and spreads the rest over every cheap step of
   the next 24 h; packs are sold for price only if not needed before the lowest-price refill.
8. A visible valley fill or regulation window addressed to the operator (not to one of its
   sites): the stations draw at least the valley fill's floor where their packs can take it
   (idle packs first), and keep the bidirectional stations' charging where their racks can move
   the regulation's ``p_kw`` both ways for ``sustain_min`` (:meth:`BatterySwap._grid_service`);
   no pack is sold for price in either. The operator bids for both kinds from its racks
   (:meth:`BatterySwap.bid`).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import Field, field_validator

from v2gsim.errors import Problem
from v2gsim.fields import ID_PATTERN, ConfigModel, LocalDateTime
from v2gsim.physics.ageing.initial import InitialAge, InitialSoh, Spread
from v2gsim.strategies.base import Dispatch, Observation, Strategy, StrategyConfig, register
from v2gsim.swap.packs import wear_cny_per_kwh_discharged


class SwapStationPreset(ConfigModel):
    name: str
    pack_standard: str
    packs: Annotated[int, Field(gt=0, le=1000)]
    bays: Annotated[int, Field(gt=0, le=20)] = 1
    swap_time_s: Annotated[float, Field(gt=0, le=3600)]
    max_swaps_per_day: Annotated[float, Field(gt=0, le=100_000)]
    slot_p_max_kw: Annotated[float, Field(gt=0, le=1000)]
    grid_limit_kw: Annotated[float, Field(gt=0, le=100_000)]
    bidirectional: bool = False
    pack_capacity_kwh: Annotated[float, Field(gt=0, le=1500)] | None = None


@functools.cache
def station_presets() -> dict[str, SwapStationPreset]:
    """The bundled swap-station presets (``scenario/presets/swap_stations.yaml``), by name."""
    text = resources.files("v2gsim").joinpath("scenario/presets/swap_stations.yaml").read_text()
    return {k: SwapStationPreset.model_validate(v) for k, v in yaml.safe_load(text).items()}


class SwapStationConfig(ConfigModel):
    """One swap station; any preset figure can be overridden."""

    id: Annotated[str, Field(pattern=ID_PATTERN, description="unique station id")]
    preset: str = Field(default="nio_gen3", description="station generation: nio_gen2, nio_gen3, nio_gen4, aulton, catl_choco")
    bus: Annotated[int, Field(ge=0)] | Literal["auto"] | None = Field(
        default=None, description="feeder.network bus of the station (auto: a load bus drawn by load, the default with a network)"
    )
    packs: Annotated[int, Field(gt=0, le=1000, description="packs in the rack (one charging slot each)")] | None = None
    bays: Annotated[int, Field(gt=0, le=20, description="swap lanes")] | None = None
    swap_time_s: Annotated[float, Field(gt=0, le=3600, description="time of one swap")] | None = None
    max_swaps_per_day: Annotated[float, Field(gt=0, le=100_000, description="daily swap capacity")] | None = None
    slot_p_max_kw: Annotated[float, Field(gt=0, le=1000, description="power of one rack slot, grid side")] | None = None
    grid_limit_kw: Annotated[float, Field(gt=0, le=100_000, description="station grid connection, both directions")] | None = None
    bidirectional: bool | None = Field(default=None, description="the rack can discharge packs into the grid")
    pack_standard: str | None = Field(default=None, description="overrides the preset's pack standard")
    pack_capacity_kwh: Annotated[float, Field(gt=0, le=1500)] | None = Field(
        default=None, description="pack capacity if no vehicle of the scenario carries this standard"
    )
    initial_soc: Annotated[float, Field(ge=0, le=1, description="state of charge of the rack packs at the start")] = 0.9
    initial_age_years: InitialAge = Field(
        default=Spread.of(0.0), description="age of the station's packs at the start, years (a number or a distribution; default 0: new, docs/wear.md, "
        "Initial age): the rack's packs and the packs of the vehicles that prefer this station")
    initial_soh: InitialSoh | None = Field(
        default=None, description="state of health of the station's packs at the start; null: the calendar fade of the age alone")

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str) -> str:
        known = station_presets()
        if v not in known:
            import difflib

            close = difflib.get_close_matches(v, list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown swap-station preset {v!r}; {hint}known: {', '.join(known)}")
        return v

    def resolved(self) -> SwapStationPreset:
        """The preset with this station's overrides applied."""
        base = station_presets()[self.preset].model_dump()
        for k in base:
            v = getattr(self, k, None)
            if v is not None and k != "name":
                base[k] = v
        return SwapStationPreset.model_validate(base)


class DischargeRequest(ConfigModel):
    """A grid operator's call on the swap stations to feed back during a window."""

    start: LocalDateTime = Field(description="start of the window, local time")
    hours: Annotated[float, Field(gt=0, le=24, description="length of the window")]
    p_kw: Annotated[float, Field(gt=0)] | None = Field(default=None, description="requested discharge per station; None = as much as idle packs give")
    reward_cny_per_kwh: Annotated[float, Field(ge=0, le=100, description="paid per kWh fed back on top of the V2G price")] = 0.0


class BatterySwapConfig(StrategyConfig):
    kind: Literal["battery_swap"] = "battery_swap"
    stations: list[SwapStationConfig] = Field(default_factory=list, description="the operator's swap stations")
    ready_soc: Annotated[float, Field(gt=0.3, le=1.0, description="a rack pack at or above this SOC can be swapped in")] = 0.9
    max_wait_min: Annotated[float, Field(ge=0, le=1440, description="drivers waiting longer than this leave without a swap")] = 30.0
    reserve_packs: Annotated[int, Field(ge=0, le=100, description="ready packs kept on top of the forecast")] = 2
    forecast_horizon_h: Annotated[float, Field(ge=0.25, le=24, description="hours of forecast swaps kept ready")] = 3.0
    forecast_prior_utilisation: Annotated[
        float, Field(ge=0, le=1, description="share of the daily swap capacity assumed before any demand is seen")
    ] = 0.3
    cheap_quantile: Annotated[float, Field(ge=0, le=1, description="idle packs charge when the price is at or below this quantile of the next 24 h")] = 0.35
    v2g: bool = Field(default=True, description="discharge idle packs when the V2G price pays (bidirectional stations)")
    v2g_margin_cny_per_kwh: Annotated[
        float, Field(ge=0, le=10, description="idle packs feed back for price only when it earns this much per kWh over refilling")
    ] = 0.1
    discharge_floor_soc: Annotated[float, Field(ge=0, le=0.9, description="idle packs are not discharged below this SOC")] = 0.3
    # What a driver pays per swap. NIO's scheme until 24 Sep 2024: a fixed service fee of 30 or 50 CNY
    # a swap (by site) plus the electricity fee x the energy gained; since then (electricity +
    # a per-kWh service fee varying by site and month) x the energy gained, the service fee on at
    # least 20 kWh [B: evnewschannel.com/?p=13318, NIO announcement of 15 Sep 2024]. Defaults: the
    # old scheme's lower fee and the tariff's price of the step as the electricity fee.
    swap_fee_cny: Annotated[float, Field(ge=0, le=1000, description="fixed service fee a driver pays per swap, CNY")] = 30.0
    swap_service_fee_cny_per_kwh: Annotated[float, Field(ge=0, le=10, description=(
        "service fee per kWh gained in a swap, CNY/kWh, charged on at least swap_fee_min_kwh (NIO since Sep 2024)"))] = 0.0
    swap_fee_min_kwh: Annotated[float, Field(ge=0, le=200, description="smallest energy the per-kWh service fee is charged on, kWh")] = 20.0
    swap_energy_billed: bool = Field(default=True, description="the driver also pays the energy gained at the tariff's price of the step")
    wear_cny_per_kwh: Annotated[float, Field(ge=0, le=10)] | Literal["model"] = Field(
        default=0.1,
        description="battery wear cost per battery kWh discharged from a pack and later recharged (the round trip's): a "
        "constant, or 'model': the wear model's price of each discharge considered, at its own stressors (slot power, depth to "
        "discharge_floor_soc, the pack's state of health), in that same unit",
    )
    discharge_requests: list[DischargeRequest] = Field(default_factory=list, description="grid request windows; kept for "
                                                       "earlier scenarios: use grid_operator.requests (discharge_call)")
    honour_requests: bool = Field(
        default=True, description="during a discharge request: no charging while ready packs serve the queue, and every pack "
        "the window's expected swaps do not need feeds back (false: the rule before, which kept packs until the next cheap refill)")
    request_keep_h_after: Annotated[float, Field(ge=0, le=12, description="during a discharge request, packs for the swaps "
                                                 "expected this long after the window are kept too")] = 1.0
    # [C] assumption: 0 h fed back 445-481 kW in mixed_city but left the NIO rack empty at
    # 17:00 (drivers leaving 20 -> 50 in 3 days); the forecast horizon (3 h) kept every pack
    headroom_margin: Annotated[float, Field(ge=0, le=0.5, description="share of the transformer's rating the stations' charging "
                                            "leaves free (urgent packs included)")] = 0.1
    # [C] assumption: a planning margin as distribution operators keep on transformers; with it
    # battery_swapping (2 days) stays below its reference peak (0: 2,254 vs 2,212 kW)
    cheap_fill: Literal["valley_fill", "full_power"] = Field(
        default="valley_fill", description="in cheap hours: valley_fill spreads the idle packs' charging so the feeder's forecast "
        "load is flat over the cheap period; full_power charges every pack at once (the rule before)")
    peak_aware: bool = Field(
        default=True, description="refill against each station's peak so far in the billing month (the two-part tariff's "
        "demand charge): packs not needed for the forecast swaps, the queue and the reserve never raise a station's draw "
        "above max(its peak so far, what the needed packs draw, the flat rate that refills its rack over the cheap hours "
        "of the next 24 h), and valley filling spreads over every cheap step of the next 24 h, not only the current cheap "
        "run (false: the rule before)")

    def reference_config(self) -> BatterySwapConfig:
        """The stations stay (drivers still swap there, the same packs come back); only their
        energy manager loses its control: no discharge, no grid requests, and every hour counts
        as cheap, so packs charge as they come back."""
        return self.model_copy(update={"v2g": False, "discharge_requests": [], "cheap_quantile": 1.0, "cheap_fill": "full_power",
                                        "headroom_margin": 0.0, "peak_aware": False})

    def grid_requests(self, operator_id: str) -> list:
        """``discharge_requests`` in the one schema (:mod:`v2gsim.market.events`): discharge calls for
        ``p_kw`` per station times the stations (the operator's total), the reward as the price,
        known before the run starts, as these always were."""
        from v2gsim.market.events import GridRequest

        n = len(self.stations)
        return [GridRequest(kind="discharge_call", start=r.start, hours=r.hours, p_kw=None if r.p_kw is None else r.p_kw * n,
                            price_cny_per_kwh=r.reward_cny_per_kwh, notice_h=None, to=[operator_id],
                            settlement="operator") for r in self.discharge_requests]

    def scenario_problems(self, scenario, path: str) -> list[Problem]:
        """Station ids unique over every battery_swap entry; one pack capacity per standard among
        the vehicles that carry it; a capacity for every standard no vehicle carries."""
        from v2gsim.population.fleet import vehicle_spec

        out: list[Problem] = []
        me = next(k for k, bm in enumerate(scenario.business_models) if bm is self)
        earlier = {st.id for bm in scenario.business_models[:me] if bm.kind == self.kind for st in bm.stations}
        seen: set[str] = set()
        for j, st in enumerate(self.stations):
            if st.id in earlier or st.id in seen:
                out.append(Problem(f"{path}.stations[{j}].id", f"duplicate station id {st.id!r}", "station ids must be unique"))
            seen.add(st.id)
        caps: dict[str, dict[float, int]] = {}  # standard -> capacity -> first group carrying it
        for i, g in enumerate(scenario.population):
            v = vehicle_spec(g.vehicle)
            if v.pack_standard is not None:
                caps.setdefault(v.pack_standard, {}).setdefault(v.capacity_kwh, i)
        for j, st in enumerate(self.stations):
            spec = st.resolved()
            found = caps.get(spec.pack_standard, {})
            if len(found) > 1:
                groups = ", ".join(f"population[{i}] {c:g} kWh" for c, i in found.items())
                out.append(Problem(f"{path}.stations[{j}]", f"vehicles with pack standard {spec.pack_standard!r} carry packs "
                                   f"of different capacities ({groups})", "one pack capacity per standard: use one vehicle model per swap standard"))
            elif not found and spec.pack_capacity_kwh is None:
                out.append(Problem(f"{path}.stations[{j}].pack_capacity_kwh", f"no vehicle carries pack standard {spec.pack_standard!r}, "
                                   "so the pack capacity is unknown", "give pack_capacity_kwh or add vehicles with that pack_standard"))
        return list(dict.fromkeys(out))


def _window_stats(x: np.ndarray, w: int, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Per position i: quantile q and minimum of x[i : i + w] (the window clipped at the end)."""
    pad = np.concatenate([x, np.full(w - 1, np.nan)])
    win = np.lib.stride_tricks.sliding_window_view(pad, w)
    return np.nanquantile(win, q, axis=1), np.nanmin(win, axis=1)


@register("battery_swap")
class BatterySwap(Strategy):
    """Uncontrolled charging at its sites plus the swap stations' energy management."""

    config_cls = BatterySwapConfig

    def __init__(self, config: BatterySwapConfig, context):
        super().__init__(config, context)
        self.network = None

    # ------------------------------------------------------------------ the engine's actors

    def actors(self, engine) -> list:
        """The swap stations (one :class:`~v2gsim.agents.swap_station.SwapNetwork`; none
        without stations)."""
        if not self.config.stations:
            return []
        from v2gsim.agents.swap_station import SwapNetwork

        self.network = SwapNetwork(engine, self)
        self._plan_forecast()
        return [self.network]

    def _plan_forecast(self) -> None:
        ctx = self.context
        n = len(ctx.times)
        spd = int(round(24 / ctx.dt_h))
        self.cheap_price, self.refill_price = _window_stats(np.asarray(ctx.price_cny_per_kwh, float), spd, self.config.cheap_quantile)
        self._req_seen: tuple = ()
        self._set_requests(())
        times = ctx.times
        # hours until the next cheap step (within a day), to protect packs until they can be refilled cheaply
        price = np.asarray(ctx.price_cny_per_kwh, float)
        cheap_idx = np.flatnonzero(price <= self.cheap_price + 1e-12)
        nxt = cheap_idx[np.minimum(np.searchsorted(cheap_idx, np.arange(n)), cheap_idx.size - 1)] if cheap_idx.size else np.full(n, n)
        self.h_to_cheap = np.clip((nxt - np.arange(n)) * ctx.dt_h, 0.0, 24.0)
        # hours left in the cheap run (and in the request window) each step belongs to: idle packs
        # fill at the pace that has them full at its end, not all at its first step
        self.h_cheap_left = _run_hours_left(price <= self.cheap_price + 1e-12, ctx.dt_h)
        # peak_aware: the cheap steps of the next 24 h (valley filling and the flat refill rate
        # look over all of them) and each station's peak so far in its billing month
        self._cheap_step = price <= self.cheap_price + 1e-12
        cum = np.r_[0, np.cumsum(self._cheap_step)]
        self.h_cheap_next_day = (cum[np.minimum(np.arange(n) + spd, n)] - cum[:n]) * ctx.dt_h
        self._spd = spd
        self._month_of_step = np.asarray(times.year * 12 + times.month, np.int64)
        self._month = int(self._month_of_step[0])
        # hours to the step where the refill price (the lowest of the next 24 h, the one the V2G
        # test weighs against) is reached: packs sold for price are those not needed before it
        pad = np.r_[price, np.full(spd - 1, np.inf)]
        self.h_to_refill = np.argmin(np.lib.stride_tricks.sliding_window_view(pad, spd), axis=1) * ctx.dt_h
        net = self.network
        s_n = net.n_stations
        self.hour_of_step = np.asarray(times.hour, np.int64)
        self._hour_frac_of_step = np.asarray(times.minute, float) / 60.0  # how far into its hour each step starts
        prior = self.config.forecast_prior_utilisation * net.st_max_swaps_per_day / 24.0
        self.forecast = np.repeat(prior[:, None], 24, axis=1)  # swaps per hour of day, (S, 24)
        self._today = np.zeros((s_n, 24))
        self._day_of_step = np.asarray((times - times[0].normalize()).days, np.int64)
        self._day = int(self._day_of_step[0])
        self.peak_so_far_kw = np.zeros(s_n)  # each station's highest draw this billing month (kW, one step)

    def _set_requests(self, requests: tuple) -> None:
        """The visible discharge calls addressed here (:class:`v2gsim.market.events.IssuedRequest`)
        on the clock: power asked per station (the call's total shared equally; inf: as much as
        idle packs give), the reward on top of the V2G price, and the steps in and just before a window."""
        ctx = self.context
        n = len(ctx.times)
        self._req_seen = requests
        self.request_p_kw = np.zeros(n)  # inf = as much as possible
        self.request_reward = np.zeros(n)
        self.request_active = np.zeros(n, bool)
        n_st = max(1, len(self.config.stations))
        # valley fills: the floor on the stations' summed draw (kW) each step; regulation: the
        # capacity held both ways (kW) and the minutes the rack must sit at it (the largest asked)
        self.valley_p_kw = np.zeros(n)
        self.reg_p_kw = np.zeros(n)
        self.reg_sustain_h = np.zeros(n)
        for q in sorted(requests, key=lambda q: q.number):
            r = q.request
            if q.kind in ("valley_fill", "regulation"):
                if r.site is not None:
                    continue  # asked of one of its sites (their uncontrolled chargers), not of its stations
                for a, b in q.windows:
                    if q.kind == "valley_fill":
                        self.valley_p_kw[a:b] = np.maximum(self.valley_p_kw[a:b], float(r.p_kw or 0.0))
                    else:
                        self.reg_p_kw[a:b] += float(r.p_kw or 0.0)
                        self.reg_sustain_h[a:b] = np.maximum(self.reg_sustain_h[a:b], r.sustain_min / 60.0)
                continue
            if q.kind != "discharge_call":
                continue  # peak cuts: settled on what the stations do (docs/market.md)
            for a, b in q.windows:
                self.request_active[a:b] = True
                self.request_p_kw[a:b] = r.p_kw / n_st if r.p_kw is not None else np.inf
                # on top of the V2G price as earlier versions paid it; a baseline settlement is the grid operator's
                self.request_reward[a:b] = r.price_cny_per_kwh if r.settlement == "operator" else 0.0
        # a request starts within the forecast horizon: fill idle packs for it
        ahead = max(1, int(round(self.config.forecast_horizon_h / ctx.dt_h)))
        act = np.concatenate([self.request_active, np.zeros(ahead + 1, bool)])
        self.request_soon = np.zeros(n, bool)
        for k in range(1, ahead + 1):
            self.request_soon |= act[k : k + n]
        self.request_soon &= ~self.request_active
        self.h_request_left = _run_hours_left(self.request_active, ctx.dt_h)
        self.h_to_request = _run_hours_left(self.request_soon, ctx.dt_h)  # before a window: hours to its start

    def decide(self, obs: Observation) -> Dispatch:
        if self.network is not None and obs.requests is not self._req_seen:
            self._set_requests(obs.requests)
        idx = obs.wanting_idx
        f = obs.fleet
        p_to_stop_kw = (f.e_stop_kwh[idx] - f.e_kwh[idx]) / (f.eta_charge[idx] * obs.dt_h)
        return Dispatch(idx, np.minimum(f.p_plug_max_kw[idx], p_to_stop_kw))

    bid_kinds = ("discharge_call", "valley_fill", "regulation")

    def bid(self, request, obs: Observation):
        """Its offer to a request put to clearing (valley fills: :meth:`_bid_valley`; regulation:
        :meth:`_bid_regulation`). To a discharge call: the ready packs (at or above ready SOC)
        that the swaps expected in the window, the queue and the reserve do not need, each at its
        slot power, at most what it holds above the discharge floor over the window, within each
        bidirectional station's grid limit. Price: refilling at the cheapest price of the next
        day through both losses, plus the wear per kWh (means over the packs)."""
        from v2gsim.market.clearing import Bid

        op = self.context.operator_id
        if self.network is None or request.kind not in self.bid_kinds:
            return Bid(op, 0.0, float("inf"))
        if request.kind == "regulation":
            return self._bid_regulation(request, obs)
        cfg = self.config
        a, b = request.windows[0]
        so, rank, keep, hours = self._bid_rack(request, obs)
        st, e = so.slot_station, so.e_kwh
        if request.kind == "valley_fill":
            return self._bid_valley(request, obs, so, rank, keep, hours)
        spare = (e >= so.e_ready_kwh - 1e-9) & (rank >= keep[st]) & so.st_bidirectional[st]
        floor = cfg.discharge_floor_soc * so.capacity_kwh
        p = np.where(spare, np.minimum(so.slot_p_max_kw, np.maximum(e - floor, 0.0) * so.eta_discharge / hours), 0.0)
        p_kw = float(np.minimum(np.bincount(st, weights=p, minlength=so.n_stations), so.st_grid_limit_kw).sum())
        # the wear of the discharge offered: each spare pack at its offered power down to the floor
        wear = self._offered_wear_cny_per_kwh(so, a, floor, np.maximum(e, floor), p)
        refill = float(self.refill_price[min(b, self.refill_price.size - 1)])
        eta_c, eta_d = float(so.eta_charge.mean()), float(so.eta_discharge.mean())
        return Bid(op, p_kw, refill / (eta_c * eta_d) + wear / eta_d)

    def _offered_wear_cny_per_kwh(self, so, step: int, e_lo_kwh, e_hi_kwh, p_kw, per_slot=1.0) -> float:
        """The wear per battery kWh discharged and recharged of what the rack offers: each slot's
        pack cycled between ``e_lo_kwh`` and ``e_hi_kwh`` at its offered grid power ``p_kw`` (R,)
        (:meth:`v2gsim.swap.rack.Racks.cycle_wear_cny_per_kwh`, the stressors of that cycle),
        times ``per_slot`` (scalar or (R,): battery kWh per grid kWh of the bid's direction),
        weighted by the power offered (the rack's mean if it offers none); a numeric
        ``wear_cny_per_kwh`` as it is."""
        w = per_slot * wear_cny_per_kwh_discharged(self.config.wear_cny_per_kwh,
                                                   self.network.cycle_wear_cny_per_kwh(step, e_lo_kwh, e_hi_kwh, p_kw))
        p_kw = np.asarray(p_kw, float)
        return float(np.average(w, weights=p_kw)) if p_kw.sum() > 0 else float(w.mean())

    def _bid_rack(self, request, obs: Observation):
        """The rack as its EMS sees it now, each slot's rank in its station (fullest first), the
        packs each station keeps for the swaps expected in the window and ``request_keep_h_after``
        after it, the queue and the reserve (S,), and the window's hours."""
        from v2gsim.engine.actor import Signals

        cfg = self.config
        a, b = request.windows[0]
        so = self.network.observation(Signals(obs.step, -1, obs.time, obs.dt_h, obs.price_cny_per_kwh, obs.v2g_price_cny_per_kwh,
                                              obs.feeder_headroom_kw))
        st, e = so.slot_station, so.e_kwh
        order = np.lexsort((-e, st))
        rank = np.empty(e.size, np.int64)
        rank[order] = np.arange(e.size) - so.slot_start[st[order]]
        hours = (b - a) * obs.dt_h
        h0 = int(self.hour_of_step[min(a, self.hour_of_step.size - 1)])
        cols = (h0 + np.arange(int(np.ceil(hours + cfg.request_keep_h_after)))) % 24
        keep = np.ceil(self.forecast[:, cols].sum(1) - 1e-9).astype(np.int64) + so.queue + cfg.reserve_packs
        return so, rank, keep, hours

    def _bid_valley(self, request, obs: Observation, so, rank, keep, hours):
        """A valley fill put to clearing: the idle packs (those the swaps expected in and just after
        the window, the queue and the reserve do not need: the emptiest) offer their slot power, at
        most what their room below full takes over the window (grid side); each station at most
        its grid limit. Price per kWh as the centralized bid's: the window's mean purchase price
        less the cheapest of the 24 h from its start (moving refill into the window; at least 0)
        plus the wear per kWh charged."""
        from v2gsim.market.clearing import Bid

        a, b = request.windows[0]
        st = so.slot_station
        idle = rank >= keep[st]
        room_kwh = np.maximum(so.e_full_kwh - so.e_kwh, 0.0) / so.eta_charge
        p = np.where(idle, np.minimum(so.slot_p_max_kw, room_kwh / hours), 0.0)
        p_kw = float(np.minimum(np.bincount(st, weights=p, minlength=so.n_stations), so.st_grid_limit_kw).sum())
        prices = np.asarray(self.context.price_cny_per_kwh, float)
        day = int(round(24 / obs.dt_h))
        shift = max(float(prices[a:b].mean()) - float(prices[a:a + day].min()), 0.0)
        # the wear of a grid kWh charged: it puts eta_c battery kWh into the pack, one direction of
        # their round trip (half its price per battery kWh), here the cycle of the charge offered
        # (each idle pack up to full at its power); w / 2 per grid kWh counted 1/eta_c too much
        e_to = np.minimum(so.e_kwh + p * hours * so.eta_charge, np.maximum(so.e_full_kwh, so.e_kwh))
        wear = 0.5 * self._offered_wear_cny_per_kwh(so, a, so.e_kwh, e_to, p, per_slot=so.eta_charge)
        return Bid(self.context.operator_id, p_kw, shift + wear)

    def _bid_regulation(self, request, obs: Observation):
        """Regulation put to clearing: the symmetric capacity the racks of its bidirectional
        stations hold now (:func:`v2gsim.market.regulation.headroom_kw` around zero power: feeding
        down to ``discharge_floor_soc`` and drawing up to full, each for ``sustain_min``; each
        station at most its grid limit; the smaller of up and down). Price per MW of mileage as
        the centralized bid's: its wear only, wear per kWh x 1000 / the mileage per MW-h."""
        from v2gsim.market.clearing import Bid
        from v2gsim.market.regulation import MILEAGE_PER_MW_H, headroom_kw

        r = request.request
        so = self._bid_rack(request, obs)[0]
        st, S = so.slot_station, so.n_stations
        bi = so.st_bidirectional[st].astype(bool)
        up, down = headroom_kw(np.zeros(st.size), so.slot_p_max_kw, so.slot_p_max_kw, so.e_kwh,
                               self.config.discharge_floor_soc * so.capacity_kwh, so.e_full_kwh, so.eta_charge,
                               so.eta_discharge, r.sustain_min / 60.0)
        lim = so.st_grid_limit_kw
        p_kw = min(float(np.minimum(np.bincount(st, weights=np.where(bi, up, 0.0), minlength=S), lim).sum()),
                   float(np.minimum(np.bincount(st, weights=np.where(bi, down, 0.0), minlength=S), lim).sum()))
        ratio = MILEAGE_PER_MW_H if r.mileage_per_mw_h is None else r.mileage_per_mw_h
        # the wear per kWh through a pack (half the round trip's) of the cycle held: each pack fed
        # at the power it holds both ways for sustain_min, down from where it is (at most to the floor)
        a = request.windows[0][0]
        p_held = np.where(bi, np.minimum(up, down), 0.0)
        floor = self.config.discharge_floor_soc * so.capacity_kwh
        e_lo = np.maximum(so.e_kwh - p_held * (r.sustain_min / 60.0) / so.eta_discharge, np.minimum(floor, so.e_kwh))
        wear = 0.5 * self._offered_wear_cny_per_kwh(so, a, e_lo, so.e_kwh, p_held)
        return Bid(self.context.operator_id, p_kw, wear * 1000.0 / max(ratio, 1e-9))

    def kpis(self) -> dict[str, float]:
        return {}  # the swap KPIs come from the stations/swaps tables (v2gsim.metrics.swap_kpis)

    # ------------------------------------------------------------------ the station EMS

    def _valley_fill(self, obs, p: np.ndarray, room: np.ndarray, order: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Extra charging power per slot (R,) for the idle packs in a cheap step: the water level
        over the rest of the cheap run that their energy fills, above the forecast load."""
        from v2gsim.strategies.distributed import water_level

        ctx, s, dt = self.context, obs.step, obs.dt_h
        steps = max(1, int(round(self.h_cheap_left[s] / dt)))
        n = len(ctx.times)
        base = (np.zeros(n) if ctx.base_load_forecast_kw is None else np.asarray(ctx.base_load_forecast_kw, float))
        b = base[s:min(n, s + steps)]
        if b.size < steps:  # past the clock: the last known value
            b = np.r_[b, np.full(steps - b.size, base[-1])]
        # the others' load beyond the base, measured last step, assumed to persist
        others = 0.0
        if np.isfinite(ctx.feeder_rating_kw) and np.isfinite(obs.feeder_headroom_kw) and s > 0:
            others = max(0.0, ctx.feeder_rating_kw - obs.feeder_headroom_kw - obs.prev_charge_kw - base[s - 1])
        firm = float(p.sum())
        extra_max = np.where(room, np.maximum(0.0, obs.slot_p_max_kw - p), 0.0)
        load = b + others + firm
        short_kwh = np.minimum(extra_max * dt * steps, np.maximum(0.0, obs.e_full_kwh - obs.e_kwh) / obs.eta_charge)
        if not self.config.peak_aware:
            e_kwh = float(short_kwh.sum())
            allowed = max(0.0, water_level(load, e_kwh, dt) - load[0])
        else:
            # Only the packs the forecast swaps need before the next cheap run must fill in this
            # one (see h_before); the others' energy spreads over every cheap step of the next 24 h (the others'
            # load and the firm charging measured now carried into them as into this run: carried
            # into this run only, the estate's valley charging at 00:00 pushed the rack's refill
            # to the next noon). A short cheap run after a price step down (12:00-14:00 in July)
            # no longer takes every idle pack's energy at once.
            h_gap = float(self.h_to_cheap[min(s + steps, n - 1)]) if s + steps < n else 0.0
            # ... and the forecast horizon beyond its start: the packs reserved then must be ready
            # then, or they charge at full power at that run's first step (the 19:00 price step)
            h_before = min(24.0, steps * dt + h_gap + self.config.forecast_horizon_h)
            h_now = int(self.hour_of_step[s])
            whole = int(h_before)
            cols = (h_now + np.arange(whole + 1)) % 24
            swaps = self.forecast[:, cols[:-1]].sum(1) + (h_before - whole) * self.forecast[:, cols[-1]]
            n_before = np.minimum(obs.st_packs, np.ceil(swaps - 1e-9).astype(np.int64) + obs.queue + self.config.reserve_packs)
            must = rank < n_before[obs.slot_station]
            later = s + steps + np.flatnonzero(self._cheap_step[s + steps:min(n, s + self._spd)])
            load_all = np.r_[load, base[later] + others + firm]
            e_must = float(short_kwh[must].sum())
            e_all = float(np.minimum(extra_max * dt * load_all.size, np.maximum(0.0, obs.e_full_kwh - obs.e_kwh) / obs.eta_charge).sum())
            level = max(water_level(load, e_must, dt) if e_must > 0 else -np.inf, water_level(load_all, e_all, dt))
            e_kwh = e_all
            allowed = max(0.0, level - load[0])
            # the packs needed before the next run first, then the fullest
            order = order[np.argsort(~must[order], kind="stable")]
        if e_kwh <= 0 or allowed <= 0:
            return np.zeros_like(p)
        zero = np.zeros(p.size, np.int64)
        return _share(extra_max, zero, np.array([allowed]), order, 1)

    def _under_peak(self, obs, extra: np.ndarray, p_firm: np.ndarray, order: np.ndarray) -> np.ndarray:
        """The refill of packs no forecast swap needs yet (``extra``, kW per slot (R,)) cut so that
        no station draws more than max(its peak so far this billing month, its firm charging, its
        flat refill rate): the two-part tariff bills the month's peak, so refilling spare packs
        above it costs a demand charge that waiting does not (the peak-so-far form of Risbeck &
        Rawlings 2020, as in the centralized plan, here as a rule instead of an LP term). The flat
        refill rate — the rack's whole shortfall (grid side) over the cheap hours of the next 24 h,
        or over the hours left before a grid request window — lets the peak grow to what a full
        refill needs, not more. Shared in ``order`` (the fullest first)."""
        s, S, st = obs.step, obs.n_stations, obs.slot_station
        short_kwh = np.bincount(st, weights=np.maximum(0.0, obs.e_full_kwh - obs.e_kwh) / obs.eta_charge, minlength=S)
        h_fill = float(self.h_to_request[s]) if self.request_soon[s] else float(self.h_cheap_next_day[s])
        p_flat = short_kwh / max(h_fill, obs.dt_h)
        firm_st = np.bincount(st, weights=p_firm, minlength=S)
        # before a request window the rack fills at its flat rate whatever the peak so far: a full-power
        # fill three hours ahead was a step of its own (mixed_city, Wednesday 12:00)
        allowance = p_flat if self.request_soon[s] else np.maximum(self.peak_so_far_kw, p_flat)
        cap = np.maximum(allowance, firm_st)
        return _share(extra, st, np.maximum(0.0, cap - firm_st), order, S)

    def _grid_service(self, obs, p, urgent, reserved, order, valley_kw: float, reg_kw: float, sustain_h: float) -> np.ndarray:
        """The planned charging per slot (R,) moved for a visible valley fill and regulation window.

        * valley fill: the stations together draw at least ``valley_kw``: the packs below full
          add charging, idle packs (no forecast swap needs them yet) first, then the reserved
          ones, fullest first -- refill they would have done later, moved into the window --
          each station within its grid limit;
        * regulation: the bidirectional stations' summed charging ``P`` is kept where the rack
          can move ``reg_kw`` both ways: ``P + F >= reg_kw`` (feed: discharging down to
          ``discharge_floor_soc`` for ``sustain_h``) and ``D - P >= reg_kw`` (draw: slot power
          with room below full for ``sustain_h``), ``F`` and ``D`` summed per station within its
          grid limit (the meter's rule, v2gsim.swap.rack). Charging is added (idle packs first)
          when ``P`` is below the band and cut (never the urgent packs) when above; when no
          ``P`` fits both, the one balancing them.
        The feeder headroom rule applies afterwards, as to every plan. Vectorised over slots."""
        from v2gsim.market.regulation import headroom_kw

        st, S, dt, e = obs.slot_station, obs.n_stations, obs.dt_h, obs.e_kwh
        limit = obs.st_grid_limit_kw
        # what each slot can draw this step: its slot power, under its pack's CC-CV taper (the
        # physics phase's own rule), at most its room below full
        if obs.e_knee_kwh is not None:
            from v2gsim.physics.battery import charge_to

            p_b = obs.slot_p_max_kw * obs.eta_charge
            e1 = charge_to(e, obs.capacity_kwh, obs.e_knee_kwh, obs.e_full_kwh, p_b, p_b, dt)
            draw_max = np.maximum(e1 - e, 0.0) / (obs.eta_charge * dt)
        else:
            draw_max = np.minimum(obs.slot_p_max_kw, np.maximum(obs.e_full_kwh - e, 0.0) / (obs.eta_charge * dt))
        p_eff = np.minimum(p, draw_max)  # what the plan's charging really draws
        fill_order = order[np.argsort(reserved[order], kind="stable")]  # idle first, then reserved; fullest first in each
        zero = np.zeros(e.size, np.int64)

        def top_up(p, want_kw: float, mask: np.ndarray) -> np.ndarray:
            extra = np.where(mask, np.maximum(draw_max - p, 0.0), 0.0)
            st_room = np.maximum(limit - np.bincount(st, weights=p, minlength=S), 0.0)
            extra = _share(extra, st, st_room, fill_order, S)
            p_new = p + _share(extra, zero, np.array([want_kw]), fill_order, 1)
            # a pack granted all it can take is asked its slot power: in the taper a lower setpoint
            # held over the step takes less than the step's mean at full power
            if obs.e_knee_kwh is None:
                return p_new
            return np.where(mask & (p_new >= draw_max - 1e-9) & (p_new > p), np.maximum(p_new, obs.slot_p_max_kw), p_new)

        if valley_kw > 0:
            short_kw = valley_kw - float(p_eff.sum())
            if short_kw > 1e-9:
                p = top_up(p, short_kw, np.ones(e.size, bool))
        if reg_kw > 0:
            bi = obs.st_bidirectional[st].astype(bool)
            floor = self.config.discharge_floor_soc * obs.capacity_kwh
            feed, draw = headroom_kw(np.zeros(e.size), obs.slot_p_max_kw, obs.slot_p_max_kw, e, floor, obs.e_full_kwh,
                                     obs.eta_charge, obs.eta_discharge, sustain_h)
            f_kw = float(np.minimum(np.bincount(st, weights=np.where(bi, feed, 0.0), minlength=S), limit).sum())
            d_kw = float(np.minimum(np.bincount(st, weights=np.where(bi, draw, 0.0), minlength=S), limit).sum())
            p_bi = float(p_eff[bi].sum())
            lo, hi = reg_kw - f_kw, d_kw - reg_kw
            target = max(min(max(p_bi, lo), hi) if lo <= hi else 0.5 * (d_kw - f_kw), 0.0)
            if target > p_bi + 1e-9:
                p = top_up(p, target - p_bi, bi)
            elif target < p_bi - 1e-9:  # the emptiest idle packs give up their charging first
                cut_order = order[::-1][np.argsort(reserved[order[::-1]], kind="stable")]
                cut = _share(np.where(bi & ~urgent, p, 0.0), zero, np.array([p_bi - target]), cut_order, 1)
                p = p - cut
        return p

    def plan_packs(self, obs) -> np.ndarray:
        """Requested grid-side power per rack slot, shape (R,); > 0 charges, < 0 discharges.

        ``obs`` is a :class:`~v2gsim.agents.swap_station.StationObservation` (read-only).
        """
        cfg = self.config
        s = obs.step
        if cfg.peak_aware:  # the stations' demand meters: the highest draw so far this billing month
            month = int(self._month_of_step[s])
            if month != self._month:  # a new billing month: last step's draw was billed in the old one
                self.peak_so_far_kw[:] = 0.0
                self._month = month
            elif obs.st_prev_charge_kw is not None:
                np.maximum(self.peak_so_far_kw, obs.st_prev_charge_kw, out=self.peak_so_far_kw)
        # learn the demand by hour of day (a day's counts fold in when the day is over)
        day = int(self._day_of_step[s])
        if day != self._day:
            self.forecast = 0.5 * self.forecast + 0.5 * self._today
            self._today[:] = 0.0
            self._day = day
        self._today[:, self.hour_of_step[s]] += obs.demand
        # swaps expected over the horizon, from the hourly forecast (fractional hours pro rata)
        h_now = self.hour_of_step[s]
        hours = cfg.forecast_horizon_h
        whole = int(hours)
        cols = (h_now + np.arange(whole + 1)) % 24
        expected = self.forecast[:, cols[:-1]].sum(1) + (hours - whole) * self.forecast[:, cols[-1]]
        need = np.minimum(obs.st_packs, np.ceil(expected - 1e-9).astype(np.int64) + obs.queue + cfg.reserve_packs)

        st = obs.slot_station
        e = obs.e_kwh
        cap = obs.capacity_kwh
        # rank of each slot within its station by energy, fullest first
        order = np.lexsort((-e, st))
        rank = np.empty(e.size, np.int64)
        rank[order] = np.arange(e.size) - obs.slot_start[st[order]]
        reserved = rank < need[st]
        ready = e >= obs.e_ready_kwh - 1e-9
        room = obs.e_full_kwh - e > 1e-6
        p_max = obs.slot_p_max_kw
        cheap = obs.price <= self.cheap_price[s] + 1e-12
        # urgent: packs for the queue, the reserve and the next hour's swaps charge at full power;
        # the other reserved packs at the pace that has them ready when the forecast needs them
        rate_h = expected / hours  # swaps per hour
        n_urgent = obs.queue + cfg.reserve_packs + np.ceil(rate_h - 1e-9).astype(np.int64)
        short = reserved & ~ready & room
        urgent = short & (rank < n_urgent[st])
        t_need_h = np.maximum((rank - n_urgent[st] + 1) / np.maximum(rate_h[st], 1e-9), obs.dt_h)
        pace = np.minimum(p_max, (obs.e_ready_kwh - e) / (obs.eta_charge * t_need_h))
        p = np.where(urgent, p_max, 0.0)
        p = np.where(short & ~urgent, pace, p)
        # cheap hours, or before a request: fill every pack. In cheap hours (valley_fill) the
        # idle packs' energy is spread over what is left of the cheap run so that the feeder's
        # forecast load (base forecast plus what the others and the firm charging draw now) is
        # filled to a flat level (Gan, Topcu & Low 2013) — all at full power from the first
        # cheap step was a rebound peak (battery_swapping: every station at 12:00)
        p_firm = p
        if cfg.cheap_fill == "valley_fill" and cheap and not self.request_soon[s]:
            p = p + self._valley_fill(obs, p, room, order, rank)
        else:
            p = np.where(room & (cheap | self.request_soon[s]), p_max, p)
        if cfg.peak_aware:
            p = p_firm + self._under_peak(obs, p - p_firm, p_firm, order)
        # a visible valley fill or regulation window: the floor on the draw, the band around it
        valley_kw, reg_kw = float(self.valley_p_kw[s]), float(self.reg_p_kw[s])
        service = valley_kw > 0 or reg_kw > 0
        if service:
            p = self._grid_service(obs, p, urgent, reserved, order, valley_kw, reg_kw, float(self.reg_sustain_h[s]))
        asked = bool(self.request_active[s])
        ready_n = np.bincount(st, weights=ready.astype(float), minlength=obs.n_stations)
        if asked and cfg.honour_requests:
            # during the grid's discharge request no pack charges while the ready packs can
            # serve the queue; where they cannot, only the packs the queue lacks charge
            # the next hour's swaps from the hourly forecast (the 60 minutes from now, pro rata), not
            # the horizon's mean rate: that one carries the evening rush hours ahead into the request's
            # first hour and charged through it (battery_swapping, after the drivers' before-trip swaps)
            frac = self._hour_frac_of_step[s]
            next_h = (1.0 - frac) * self.forecast[:, h_now] + frac * self.forecast[:, (h_now + 1) % 24]
            n_req = obs.queue + cfg.reserve_packs + np.ceil(next_h - 1e-9).astype(np.int64)
            lacking = np.maximum(0, n_req - ready_n.astype(np.int64))  # queue, reserve and the next hour's swaps
            p = np.where(short & reserved & (rank < ready_n.astype(np.int64)[st] + lacking[st]), np.where(urgent, p, p_max), 0.0)
        # all charging stays within the feeder's headroom (seen last step, with the racks' own
        # charging then): the urgent packs first, by rank at their station, then the rest
        margin_kw = cfg.headroom_margin * self.context.feeder_rating_kw if np.isfinite(self.context.feeder_rating_kw) else 0.0
        budget = max(0.0, obs.feeder_headroom_kw + obs.prev_charge_kw - margin_kw)
        if p.sum() > budget:
            zero = np.zeros(e.size, np.int64)
            p_urgent = _share(np.where(urgent, p, 0.0), zero, np.array([budget]), np.lexsort((st, rank)), 1)
            rest = budget - float(p_urgent.sum())
            p = p_urgent + _share(np.where(urgent, 0.0, p), zero, np.array([max(rest, 0.0)]), order, 1)
        # discharge idle packs when asked or when it pays
        floor = cfg.discharge_floor_soc * cap
        # only packs not needed before the next cheap refill may be discharged
        # (peak_aware: before the refill at the lowest price the V2G test assumes; selling packs
        # the swaps need before a flat-price run made that run's first step a peak: mixed_city,
        # discharging 10:00-11:00, refilling at 12:00)
        h_keep = max(hours, float(self.h_to_refill[s] if cfg.peak_aware else self.h_to_cheap[s]))
        cols_k = (h_now + np.arange(int(np.ceil(h_keep)))) % 24
        keep = np.minimum(obs.st_packs, np.ceil(self.forecast[:, cols_k].sum(1) - 1e-9).astype(np.int64) + obs.queue + cfg.reserve_packs)
        if asked and cfg.honour_requests:
            # during a request, keep only the packs the swaps expected in the window and
            # request_keep_h_after after it, the queue and the reserve need; the rest feed back
            h_req = min(24.0, float(self.h_request_left[s]) + cfg.request_keep_h_after)
            whole_r = int(h_req)
            cols_r = (h_now + np.arange(whole_r + 1)) % 24
            swaps_r = self.forecast[:, cols_r[:-1]].sum(1) + (h_req - whole_r) * self.forecast[:, cols_r[-1]]
            keep = np.minimum(obs.st_packs, np.ceil(swaps_r - 1e-9).astype(np.int64) + obs.queue + cfg.reserve_packs)
            # a station still charging packs it lacks does not feed back at the same time
            can = obs.st_bidirectional[st] & (rank >= keep[st]) & (e > floor + 1e-6) & (lacking[st] == 0)
        else:
            can = obs.st_bidirectional[st] & (rank >= np.maximum(need, keep)[st]) & (e > floor + 1e-6)
        # the wear of this discharge (slot power down to the floor), not the last period's price
        wear = wear_cny_per_kwh_discharged(cfg.wear_cny_per_kwh, obs.wear_discharge_cny_per_kwh)
        pays = cfg.v2g and obs.v2g_price * obs.eta_discharge - wear > self.refill_price[s] / obs.eta_charge + cfg.v2g_margin_cny_per_kwh
        # no pack is sold for price in a valley fill (it would undo the floor) or a regulation
        # window (a pack at full discharge holds no room to feed more)
        dis = can & (np.logical_and(pays, not service) | asked)
        p = np.where(dis, -p_max, p)
        # share the station limit in priority order: reserved first, then the fullest (charge)
        # or the fullest (discharge)
        limit = obs.st_grid_limit_kw
        p_c = _share(np.maximum(p, 0.0), st, limit, order, obs.n_stations)
        lim_d = np.minimum(limit, self.request_p_kw[s]) if asked and not np.any(pays) else limit
        p_d = _share(np.maximum(-p, 0.0), st, lim_d, order, obs.n_stations) if dis.any() else 0.0
        return p_c - p_d


def _run_hours_left(mask: np.ndarray, dt_h: float) -> np.ndarray:
    """Per step: hours from its start to the end of the run of True steps it lies in (0 outside)."""
    n = mask.size
    ends = np.r_[mask[1:] != mask[:-1], True] if n else np.empty(0, bool)
    run_end = np.minimum.accumulate(np.where(ends, np.arange(n) + 1, n)[::-1])[::-1] if n else np.empty(0, np.int64)
    return np.where(mask, (run_end - np.arange(n)) * dt_h, 0.0)


def _share(p: np.ndarray, station: np.ndarray, limit: np.ndarray, order: np.ndarray, n_st: int) -> np.ndarray:
    """Grant non-negative requests ``p`` in ``order`` (grouped by station) until each station's
    ``limit`` is used up; shapes (R,), (R,), (S,), (R,)."""
    ps = p[order]
    ss = station[order]
    cum = np.cumsum(ps)
    totals = np.bincount(ss, weights=ps, minlength=n_st)
    start = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    before = cum - ps - start[ss]
    granted = np.clip(limit[ss] - before, 0.0, ps)
    out = np.empty_like(p)
    out[order] = granted
    return out
