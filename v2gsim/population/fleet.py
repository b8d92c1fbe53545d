"""Struct-of-arrays state of every vehicle and its driver.

One numpy array per attribute, length N. Mesa agents (:mod:`v2gsim.agents`) are thin views
onto these arrays; kernels are functions over index arrays. Energy is float64 so that
conservation holds to rounding over a year of steps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from v2gsim.scenario.schema import PopulationGroup, Scenario, VehicleSpec, vehicle_presets
from v2gsim.standards.compat import assign_classes, build_table

# Location codes of a parked (or driving) vehicle.
DRIVING, HOME, WORK, PUBLIC, DEPOT = -1, 0, 1, 2, 3
N_LOCATIONS = 4
LOCATION_NAMES = {DRIVING: "driving", HOME: "home", WORK: "work", PUBLIC: "public", DEPOT: "depot"}
ARCHETYPES = ("private_commuter", "ride_hailing", "city_bus", "session", "private_car_cn", "v2g_visitor")
CHEMISTRIES = ("LFP", "NMC")
ACCUMULATORS = (
    "e_charged_kwh e_discharged_kwh e_loss_kwh e_driven_kwh distance_km unmet_kwh stranded_trips stranded_kwh "
    "n_sessions n_departures departures_below_min no_charger_events sessions_turned_away unmet_turned_away_kwh cost_cny revenue_cny "
    "delayed_departures delay_min detours detour_min trips_shortened trips_cancelled km_lost queued queue_wait_min queue_left"
).split()
# driver choices before a trip and at a full public site (v2gsim.population.drivers), per vehicle;
# minutes as float arrays
DRIVER_PARAMS = ("e_trip_reserve_kwh", "max_departure_delay_min", "detour_max_charge_min", "detour_extra_min",
                 "max_charger_wait_min", "shorten_min_share")


@dataclass
class Fleet:
    """Vehicle and driver state, all arrays shape (N,) unless noted.

    Static vehicle attributes come from the vehicle spec; driver attributes are sampled once;
    dynamic state changes every step; accumulators only grow.
    """

    # --- vehicle (static)
    capacity_kwh: np.ndarray
    consumption_kwh_per_km: np.ndarray
    p_ac_max_kw: np.ndarray
    p_dc_max_kw: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    soc_knee: np.ndarray
    p_batt_max_kw: np.ndarray  # most the battery accepts (below the knee), battery side
    e_full_kwh: np.ndarray  # where CC-CV charging terminates (taper cut-off)
    bidirectional: np.ndarray
    chemistry: np.ndarray  # index into CHEMISTRIES
    vehicle_model: np.ndarray  # index into Population.vehicle_models
    # --- driver (static)
    group: np.ndarray  # index into scenario.population (sessions: len(population))
    archetype: np.ndarray  # index into ARCHETYPES
    e_stop_kwh: np.ndarray  # driver's "full" point
    e_min_departure_kwh: np.ndarray  # range anxiety: energy insisted on at departure
    e_public_below_kwh: np.ndarray  # without a charger where they park, below this they go public
    site_at: np.ndarray  # (N, N_LOCATIONS) int32: site index usable at each location, -1 none
    home_pile_bidir: np.ndarray  # the private pile at home can discharge this vehicle (a common protocol)
    std_class: np.ndarray  # vehicle class of v2gsim.standards (connectors, protocols)
    departure_estimate_sd_h: np.ndarray
    daily_km_scale: np.ndarray
    e_trip_reserve_kwh: np.ndarray  # kept on top of the next trip's energy at departure
    max_departure_delay_min: np.ndarray  # longest a plugged driver delays a departure to charge
    detour_max_charge_min: np.ndarray  # longest charge at a fast-charger detour before a trip
    detour_extra_min: np.ndarray  # driving time a detour to a fast charger adds
    max_charger_wait_min: np.ndarray  # longest wait in a public site's queue for a charger
    shorten_min_share: np.ndarray  # below this share of the trip feasible, the trip is cancelled
    wear_cost_cny_per_kwh: np.ndarray  # marginal battery-wear cost of one more kWh of throughput (set by the wear model)
    # --- dynamic
    e_kwh: np.ndarray
    location: np.ndarray
    site: np.ndarray  # site plugged at, -1 if not plugged
    plugged: np.ndarray
    below_stop: np.ndarray  # e_kwh below e_stop_kwh (kept current by the kernels)
    p_plug_max_kw: np.ndarray  # grid-side limit on the current charger, 0 when unplugged
    can_discharge: np.ndarray
    t_depart_est_step: np.ndarray
    p_kw: np.ndarray  # grid power of the last physics phase
    session_start_step: np.ndarray
    session_e_request_kwh: np.ndarray
    session_grid_kwh: np.ndarray
    session_e_start_kwh: np.ndarray
    # --- accumulators
    e_charged_kwh: np.ndarray  # drawn from the grid
    e_discharged_kwh: np.ndarray  # fed into the grid
    e_loss_kwh: np.ndarray  # conversion losses, both directions
    e_driven_kwh: np.ndarray
    distance_km: np.ndarray
    unmet_kwh: np.ndarray
    stranded_trips: np.ndarray
    stranded_kwh: np.ndarray
    n_sessions: np.ndarray
    n_departures: np.ndarray
    departures_below_min: np.ndarray
    no_charger_events: np.ndarray
    sessions_turned_away: np.ndarray  # replayed sessions that found no free charger
    unmet_turned_away_kwh: np.ndarray  # their requested energy (also in unmet_kwh)
    cost_cny: np.ndarray
    revenue_cny: np.ndarray
    delayed_departures: np.ndarray  # departures delayed while plugged, to charge for the trip
    delay_min: np.ndarray  # minutes of those delays
    detours: np.ndarray  # detours to a public fast charger before a trip
    detour_min: np.ndarray  # time those detours added (charging, queueing, extra driving)
    trips_shortened: np.ndarray
    trips_cancelled: np.ndarray
    km_lost: np.ndarray  # km of the shortened and cancelled trips not driven
    queued: np.ndarray  # arrivals at a full public site that joined its queue
    queue_wait_min: np.ndarray  # minutes waited in such queues (served or not)
    queue_left: np.ndarray  # left a queue without a charger (waiting limit, or the next trip)

    def reset_accumulators(self) -> None:
        """Zero every accumulator (end of the warm-up); state is kept."""
        for name in ACCUMULATORS:
            getattr(self, name)[:] = 0

    @property
    def n(self) -> int:
        return self.e_kwh.shape[0]

    @property
    def soc(self) -> np.ndarray:
        return self.e_kwh / self.capacity_kwh

    def copy(self) -> Fleet:
        return Fleet(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


@dataclass(frozen=True)
class GroupSpec:
    """One block of the fleet: a population group or the imported sessions."""

    start: int
    count: int
    archetype: str
    vehicle: VehicleSpec
    group: PopulationGroup | None


def vehicle_spec(ref: str | VehicleSpec) -> VehicleSpec:
    return ref if isinstance(ref, VehicleSpec) else vehicle_presets()[ref]


def _zeros(n, dtype=np.float64):
    return np.zeros(n, dtype=dtype)


def build_fleet(
    scenario: Scenario, n_session_vehicles: int, rng: np.random.Generator
) -> tuple[Fleet, list[GroupSpec], list[str]]:
    """Sample every driver-vehicle pair of the scenario, vectorised per group.

    Returns the fleet, its blocks (in index order) and the names of the vehicle models used.
    """
    site_idx = scenario.site_index()
    blocks: list[GroupSpec] = []
    start = 0
    for g in scenario.population:
        blocks.append(GroupSpec(start, g.count, g.archetype, vehicle_spec(g.vehicle), g))
        start += g.count
    if n_session_vehicles:
        blocks.append(GroupSpec(start, n_session_vehicles, "session", vehicle_spec(scenario.mobility_sessions.vehicle), None))
        start += n_session_vehicles
    n = start
    models: list[str] = []

    f = Fleet(
        **{
            name: _zeros(n)
            for name in (
                "capacity_kwh consumption_kwh_per_km p_ac_max_kw p_dc_max_kw eta_charge eta_discharge soc_knee p_batt_max_kw "
                "e_full_kwh e_stop_kwh e_min_departure_kwh e_public_below_kwh wear_cost_cny_per_kwh departure_estimate_sd_h daily_km_scale e_kwh "
                "p_plug_max_kw p_kw session_e_request_kwh session_grid_kwh session_e_start_kwh e_charged_kwh "
                "e_discharged_kwh e_loss_kwh e_driven_kwh distance_km unmet_kwh unmet_turned_away_kwh stranded_kwh cost_cny revenue_cny "
                "delay_min detour_min km_lost queue_wait_min"
            ).split()
            + list(DRIVER_PARAMS)
        },
        bidirectional=_zeros(n, bool),
        chemistry=_zeros(n, np.int8),
        vehicle_model=_zeros(n, np.int16),
        group=_zeros(n, np.int16),
        archetype=_zeros(n, np.int8),
        site_at=np.full((n, N_LOCATIONS), -1, dtype=np.int32),
        home_pile_bidir=_zeros(n, bool),
        std_class=_zeros(n, np.int16),
        location=np.full(n, HOME, dtype=np.int8),
        site=np.full(n, -1, dtype=np.int32),
        plugged=_zeros(n, bool),
        below_stop=_zeros(n, bool),
        can_discharge=_zeros(n, bool),
        t_depart_est_step=np.full(n, -1, dtype=np.int64),
        session_start_step=np.full(n, -1, dtype=np.int64),
        stranded_trips=_zeros(n, np.int32),
        n_sessions=_zeros(n, np.int32),
        n_departures=_zeros(n, np.int32),
        departures_below_min=_zeros(n, np.int32),
        no_charger_events=_zeros(n, np.int32),
        sessions_turned_away=_zeros(n, np.int32),
        **{name: _zeros(n, np.int32) for name in ("delayed_departures", "detours", "trips_shortened", "trips_cancelled", "queued", "queue_left")},
    )
    table = build_table(scenario)
    for gi, b in enumerate(blocks):
        sl = slice(b.start, b.start + b.count)
        classes, shares = table.group_classes[gi]
        # a group's vehicle types (v2gsim.standards): drawn only where it states them, so the
        # random streams of scenarios without standards are untouched, and always where it does
        # (one type too), so two scenarios differing only in their mixes draw the same cars after
        stated = b.group is not None and b.group.standards is not None
        f.std_class[sl] = classes[assign_classes(b.count, shares, rng)] if stated else classes[0]
        v = b.vehicle
        if v.name not in models:
            models.append(v.name)
        f.capacity_kwh[sl] = v.capacity_kwh
        f.consumption_kwh_per_km[sl] = v.consumption_kwh_per_km
        f.p_ac_max_kw[sl] = v.p_ac_max_kw
        f.p_dc_max_kw[sl] = v.p_dc_max_kw
        f.eta_charge[sl] = v.eta_charge
        f.eta_discharge[sl] = v.eta_discharge
        f.soc_knee[sl] = v.soc_knee
        f.p_batt_max_kw[sl] = max(v.p_dc_max_kw, v.p_ac_max_kw) * v.eta_charge
        f.e_full_kwh[sl] = v.capacity_kwh * (1.0 - v.taper_cutoff_frac * (1.0 - v.soc_knee))
        f.bidirectional[sl] = v.bidirectional
        f.chemistry[sl] = CHEMISTRIES.index(v.chemistry)
        f.vehicle_model[sl] = models.index(v.name)
        f.group[sl] = gi
        f.archetype[sl] = ARCHETYPES.index(b.archetype)
        g = b.group
        if g is None:  # imported sessions: energy is set by each session, drivers want "full"
            f.e_stop_kwh[sl] = f.e_full_kwh[sl]
            # replayed sessions have no trips; at a full public site they wait as a group's default driver would
            f.max_charger_wait_min[sl] = PopulationGroup.model_fields["max_charger_wait_min"].default
            f.location[sl] = DRIVING
            continue
        f.e_stop_kwh[sl] = np.minimum(f.e_full_kwh[sl], g.soc_target * v.capacity_kwh)
        soc_min = np.clip(rng.normal(g.soc_min_departure_mean, g.soc_min_departure_sd, b.count), 0.0, 0.9)
        f.e_min_departure_kwh[sl] = np.minimum(soc_min * v.capacity_kwh, f.e_stop_kwh[sl])
        f.e_kwh[sl] = rng.uniform(g.soc_initial_min, g.soc_initial_max, b.count) * v.capacity_kwh
        f.e_public_below_kwh[sl] = g.public_charge_below_soc * v.capacity_kwh
        f.departure_estimate_sd_h[sl] = g.departure_estimate_sd_h
        f.daily_km_scale[sl] = g.daily_km_scale
        f.e_trip_reserve_kwh[sl] = g.trip_reserve_soc * v.capacity_kwh
        f.max_departure_delay_min[sl] = g.max_departure_delay_min
        f.detour_max_charge_min[sl] = g.detour_max_charge_min
        f.detour_extra_min[sl] = g.detour_extra_min
        f.max_charger_wait_min[sl] = g.max_charger_wait_min
        f.shorten_min_share[sl] = g.shorten_min_share
        base_loc = DEPOT if b.archetype == "city_bus" else HOME
        f.location[sl] = base_loc
        if g.home_site is not None:
            owners = np.zeros(b.count, bool)
            owners[rng.permutation(b.count)[: int(round(g.home_charger_share * b.count))]] = True
            f.site_at[sl, base_loc] = np.where(owners, site_idx[g.home_site], -1)
            # the pile's type among those the car fits, by share (without standards: bidirectional
            # with the site's bidirectional_share, the same draw as ever)
            pile = table.draw_type(f.std_class[sl], np.full(b.count, site_idx[g.home_site]), rng.random(b.count))
            f.home_pile_bidir[sl] = owners & table.can_discharge(f.std_class[sl], pile)
        if g.work_site is not None:
            f.site_at[sl, WORK] = site_idx[g.work_site]
        if g.public_site is not None:
            f.site_at[sl, PUBLIC] = site_idx[g.public_site]
    f.e_kwh = np.minimum(f.e_kwh, f.e_full_kwh)
    f.below_stop[:] = f.e_kwh < f.e_stop_kwh
    return f, blocks, models
