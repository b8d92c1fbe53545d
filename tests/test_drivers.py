"""Drivers short of charge for the next trip (wait, detour, shorten, cancel) and public FIFO queues.

Hand-built cases replace the sampled day with events written here (one vehicle, one trip), so
every number below is computed by hand from the vehicle's figures; a hypothesis property checks
the invariants on sampled days.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import v2gsim
from v2gsim.model import V2GModel
from v2gsim.population.fleet import HOME, PUBLIC, WORK
from v2gsim.population.mobility import ARR_KEYS, DEP_KEYS, DayEvents
from v2gsim.scenario.schema import Scenario

from helpers import scenario

RESERVE_SOC = 0.05
CAP = 44.9  # BYD Dolphin 44.9 kWh
RESERVE = RESERVE_SOC * CAP


def _model(pile_share: float, dc_chargers: int = 1, **group) -> V2GModel:
    sc = Scenario.model_validate({
        "name": "drivers", "seed": 3,
        "time": {"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 1, "warmup_days": 0},
        "feeder": {"transformer_kva": 200, "households": 10},
        "tariff": {"flat_cny_per_kwh": 0.5},
        "sites": [{"id": "homes", "kind": "home", "p_max_kw": 7}, {"id": "office", "kind": "work", "p_max_kw": 7, "chargers": 5},
                  {"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": dc_chargers}],
        "population": [{"archetype": "private_commuter", "count": 1, "vehicle": "byd_dolphin_44", "home_site": "homes",
                        "home_charger_share": pile_share, "work_site": "office", "public_site": "dc",
                        "trip_reserve_soc": RESERVE_SOC, **group}],
        "business_models": [{"kind": "uncontrolled"}],
    })
    return V2GModel(sc)


class _Hand:
    """A mobility source with hand-written events: deps (step, vehicle, trip_kwh, km, dest, travel_steps),
    arrs (step, vehicle, loc, site, trip_kwh, km, depart_est_step, next_trip_kwh)."""

    def __init__(self, deps, arrs):
        self.deps, self.arrs = deps, arrs

    def day(self, d):
        if d:
            return DayEvents.build(d * 96, 96, _cols(DEP_KEYS, []), _cols(ARR_KEYS, []))
        dep = _cols(DEP_KEYS, self.deps)
        arr = {"step": [], "vehicle": [], "loc": [], "site": [], "trip_kwh": [], "km": [], "e_set_kwh": [], "p_max_kw": [],
               "depart_est_step": [], "next_trip_kwh": []}
        for s, v, loc, site, kwh, km, est, nxt in self.arrs:
            for k, x in zip(arr, (s, v, loc, site, kwh, km, math.nan, math.inf, est, nxt)):
                arr[k].append(x)
        return DayEvents.build(0, 96, dep, {k: np.asarray(x, ARR_KEYS[k]) for k, x in arr.items()})


def _cols(keys, rows):
    return {k: np.asarray([r[i] for r in rows], t) for i, (k, t) in enumerate(keys.items())}


def _run(m, upto):
    for _ in range(upto):
        m.step()


def test_plugged_driver_waits_until_the_car_holds_the_trip_then_arrives_as_late():
    m = _model(pile_share=1.0)
    f = m.fleet
    f.e_kwh[0] = 5.0
    trip = 10.0
    # leave at step 1 on a 4-step trip to work; the original arrival is step 5
    m.sources = [_Hand([(1, 0, trip, 70.0, WORK, 4)], [(5, 0, WORK, 1, trip, 70.0, 60, 0.0)])]
    need = trip + RESERVE
    per_step = 7.0 * f.eta_charge[0] * 0.25  # below the knee the pile's full power
    # charged in steps 0..k; at the start of step k+1 the car holds e0 + (k+1) * per_step
    release = int(math.ceil((need - 5.0) / per_step - 1e-12))
    _run(m, release)
    assert f.plugged[0] and f.location[0] == HOME  # still waiting
    m.step()  # step `release`: it leaves
    assert not f.plugged[0]
    assert f.delayed_departures[0] == 1 and f.delay_min[0] == 15.0 * (release - 1)
    _run(m, release + 4 - m.steps)  # the original arrival would have been long ago; now in transit
    assert f.location[0] != WORK
    m.step()  # arrives 4 steps after it left
    assert f.location[0] == WORK and f.plugged[0]
    assert f.e_driven_kwh[0] == pytest.approx(trip) and f.stranded_trips[0] == 0
    assert f.e_kwh[0] >= RESERVE - 1e-9


def test_unplugged_driver_detours_to_the_fast_charger_and_charges_just_enough():
    m = _model(pile_share=0.0)
    f = m.fleet
    f.e_kwh[0] = 3.0
    trip = 10.0
    m.sources = [_Hand([(2, 0, trip, 70.0, WORK, 4)], [(6, 0, WORK, 1, trip, 70.0, 60, 0.0)])]
    _run(m, 3)  # step 2: detours to dc and plugs in there
    assert f.plugged[0] and f.location[0] == PUBLIC and f.site[0] == 2 and f.detours[0] == 1
    # a detour session asks only for what the trip needs
    assert f.session_e_request_kwh[0] == pytest.approx((trip + RESERVE - 3.0) / f.eta_charge[0])
    m.step()  # 60 kW for 15 min adds ~13 kWh: enough; it leaves at step 3
    assert not f.plugged[0]
    assert f.detour_min[0] == 15.0 + 15.0  # one step charging + the detour's 15 extra minutes
    _run(m, 3 + 4 + 1 - m.steps)  # travel 4 steps + 1 step of extra detour driving
    assert f.location[0] != WORK
    m.step()
    assert f.location[0] == WORK and f.stranded_trips[0] == 0 and f.e_driven_kwh[0] == pytest.approx(trip)


def test_driver_who_cannot_charge_shortens_or_cancels():
    # no pile, no detours: 8 kWh covers (8 - 2.245) / 10 = 57.5 % of the trip (>= 50 %): shortened
    m = _model(pile_share=0.0, detour_max_charge_min=0)
    f = m.fleet
    f.e_kwh[0] = 8.0
    m.sources = [_Hand([(2, 0, 10.0, 70.0, WORK, 4)], [(6, 0, WORK, 1, 10.0, 70.0, 60, 0.0)])]
    _run(m, 7)
    share = (8.0 - RESERVE) / 10.0
    assert f.trips_shortened[0] == 1 and f.km_lost[0] == pytest.approx(70.0 * (1 - share))
    # it drives down to the reserve (then charges at work)
    assert f.distance_km[0] == pytest.approx(70.0 * share) and f.e_driven_kwh[0] == pytest.approx(8.0 - RESERVE)
    # 3 kWh covers 7.5 %: cancelled, the car stays home and its arrival never happens
    m = _model(pile_share=0.0, detour_max_charge_min=0)
    f = m.fleet
    f.e_kwh[0] = 3.0
    m.sources = [_Hand([(2, 0, 10.0, 70.0, WORK, 4)], [(6, 0, WORK, 1, 10.0, 70.0, 60, 0.0)])]
    _run(m, 10)
    assert f.trips_cancelled[0] == 1 and f.km_lost[0] == 70.0 and f.distance_km[0] == 0
    assert f.location[0] == HOME and f.e_kwh[0] == 3.0 and f.n_departures[0] == 0 and f.stranded_trips[0] == 0


def test_a_trip_home_is_never_cancelled_the_car_limps_home():
    # at work without a charger, 3 kWh for a 10 kWh trip home: it covers 7.5 %, yet the car comes
    # home (the rest of the way by other means), with the reserve left
    m = _model(pile_share=1.0, detour_max_charge_min=0)
    f = m.fleet
    m.sources = [_Hand([(2, 0, 10.0, 70.0, HOME, 4)], [(6, 0, HOME, 0, 10.0, 70.0, 60, 0.0)])]
    m.step()
    m._leave(1, np.array([0]))  # take it off its pile: it is away, not plugged
    f.e_kwh[0] = 3.0
    _run(m, 6)
    share = (3.0 - RESERVE) / 10.0
    assert f.trips_cancelled[0] == 0 and f.trips_shortened[0] == 1
    assert f.km_lost[0] == pytest.approx(70.0 * (1 - share)) and f.e_driven_kwh[0] == pytest.approx(3.0 - RESERVE)
    assert f.location[0] == HOME and f.plugged[0] and f.stranded_trips[0] == 0


def test_a_departure_while_still_held_is_cancelled():
    # waits plugged from step 1 (a huge trip); its next departure (step 3) comes first
    m = _model(pile_share=1.0, max_departure_delay_min=240)
    f = m.fleet
    f.e_kwh[0] = 5.0
    m.sources = [_Hand([(1, 0, 30.0, 200.0, WORK, 1), (3, 0, 5.0, 30.0, HOME, 1)],
                       [(2, 0, WORK, 1, 30.0, 200.0, 3, 5.0), (4, 0, HOME, 0, 5.0, 30.0, 60, 0.0)])]
    _run(m, 5)
    assert f.trips_cancelled[0] == 1 and f.km_lost[0] == 30.0 and f.location[0] == HOME and f.plugged[0]
    _run(m, 40)
    assert f.stranded_trips[0] == 0 and f.delayed_departures[0] == 1
    assert f.distance_km[0] == pytest.approx(200.0) and f.location[0] == WORK  # the long trip, late


def _waits_for_charge_then_leaves():
    """A car plugged at home with 5 kWh whose 10 kWh trip to work (1 step of driving) needs the
    reserve on top: it waits charging at 7 kW and leaves at step ``release``, arriving late, in
    step release + 1. (model, fleet, trip_kwh, release)"""
    m = _model(pile_share=1.0)
    f = m.fleet
    f.e_kwh[0] = 5.0
    trip = 10.0
    per_step = 7.0 * f.eta_charge[0] * 0.25
    return m, f, trip, int(math.ceil((trip + RESERVE - 5.0) / per_step - 1e-12))


def test_a_late_arrival_due_in_the_step_of_the_next_departure_makes_that_trip():
    # waits plugged at home from step 1 (10 kWh trip to work, 1 step of driving): it leaves at
    # step `release` and arrives late, in step release + 1, the very step its trip home is due.
    # The late arrival comes before the step's departures, so the trip home is made (old order:
    # the departure found the car still on the road and was cancelled, the car left at work).
    m, f, trip, release = _waits_for_charge_then_leaves()
    back = release + 1
    m.sources = [_Hand([(1, 0, trip, 70.0, WORK, 1), (back, 0, 1.0, 6.0, HOME, 1)],
                       [(2, 0, WORK, 1, trip, 70.0, back, 1.0), (back + 1, 0, HOME, 0, 1.0, 6.0, 90, 0.0)])]
    _run(m, back)
    assert not f.plugged[0] and f.location[0] not in (HOME, WORK)  # on the road, due at `back`
    m.step()  # step `back`: arrives at work with the reserve, then its trip home is due
    assert f.trips_cancelled[0] == 0 and f.distance_km[0] == pytest.approx(70.0)
    # 1 kWh + the reserve is more than the reserve it arrived with: it waits plugged at work
    assert f.location[0] == WORK and f.plugged[0] and f.delayed_departures[0] == 2
    _run(m, 10)
    assert f.trips_cancelled[0] == 0 and f.km_lost[0] == 0 and f.stranded_trips[0] == 0
    assert f.location[0] == HOME and f.distance_km[0] == pytest.approx(76.0)
    assert f.e_driven_kwh[0] == pytest.approx(trip + 1.0)


def test_a_trip_due_while_the_car_is_still_on_the_road_starts_when_it_arrives():
    # as above, but the trip home is due one step before the late arrival (step release + 1):
    # the driver starts it on arriving, 15 minutes late, and it arrives as much later
    m, f, trip, release = _waits_for_charge_then_leaves()
    back = release  # due while the car is still on the road (it arrives at release + 1)
    m.sources = [_Hand([(1, 0, trip, 70.0, WORK, 1), (back, 0, 0.0, 6.0, HOME, 2)],
                       [(2, 0, WORK, 1, trip, 70.0, back, 0.0), (back + 2, 0, HOME, 0, 0.0, 6.0, 90, 0.0)])]
    _run(m, back + 1)  # step `back`: it left in this very step, its trip home is due: deferred
    assert f.trips_cancelled[0] == 0 and f.location[0] not in (HOME, WORK)
    m.step()  # step back + 1: arrives at work, leaves for home at once (0 kWh trip: not short)
    assert f.distance_km[0] == pytest.approx(70.0) and not f.plugged[0] and f.location[0] not in (HOME, WORK)
    assert f.delayed_departures[0] == 2 and f.n_departures[0] == 2
    delay_first = 15.0 * (release - 1)
    assert f.delay_min[0] == pytest.approx(delay_first + 15.0)
    m.step()  # step back + 2: the planned arrival home; held back one step
    assert f.location[0] not in (HOME, WORK)
    m.step()  # step back + 3: home
    assert f.location[0] == HOME and f.plugged[0] and f.distance_km[0] == pytest.approx(76.0)
    assert f.trips_cancelled[0] == 0 and f.km_lost[0] == 0 and f.stranded_trips[0] == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(due=st.integers(-1, 2), kwh=st.floats(0.0, 8.0), travel=st.integers(1, 3))
def test_property_a_trip_colliding_with_a_late_arrival_is_made_or_counted(due, kwh, travel):
    # the late trip to work arrives at release + 1; the trip home is due a step before (still
    # waiting plugged: cancelled), in the step it leaves, as it arrives, or after: every planned
    # departure is made or counted cancelled, energy stays within the battery, nobody strands
    m = _model(pile_share=1.0)
    f = m.fleet
    f.e_kwh[0] = 5.0
    per_step = 7.0 * f.eta_charge[0] * 0.25
    release = int(math.ceil((10.0 + RESERVE - 5.0) / per_step - 1e-12))
    back = release + due
    m.sources = [_Hand([(1, 0, 10.0, 70.0, WORK, 1), (back, 0, kwh, 6.0, HOME, travel)],
                       [(2, 0, WORK, 1, 10.0, 70.0, back, kwh), (back + travel, 0, HOME, 0, kwh, 6.0, 90, 0.0)])]
    for _ in range(back + travel + 20):
        m.step()
        assert -1e-9 <= f.e_kwh[0] <= CAP + 1e-9
    assert f.stranded_trips[0] == 0
    assert f.n_departures[0] + f.trips_cancelled[0] == 2
    if due >= 0:  # the car was on the road or arriving: the trip home is made, late if need be
        assert f.trips_cancelled[0] == 0 and f.location[0] == HOME
        assert f.distance_km[0] == pytest.approx(76.0) and f.e_driven_kwh[0] == pytest.approx(10.0 + kwh)
    else:  # still waiting plugged at home when it came due: dropped (module doc)
        assert f.trips_cancelled[0] == 1 and f.location[0] == WORK


def test_public_queue_is_first_come_first_served_with_a_waiting_limit():
    m = _model(pile_share=0.0)
    f = m.fleet
    m.sources = [_Hand([], [])]
    m.step()
    q = m.queues
    v = np.array([0])
    # the one charger is taken; the driver queues, is served when it frees, not after the limit
    m.site_occupied[2] = 1
    m._arrive(1, v, np.array([PUBLIC], np.int8), np.array([2]), np.zeros(1), np.zeros(1), np.full(1, np.nan), np.full(1, np.inf),
              np.array([80]), np.zeros(1))
    assert q.n_queued == 1 and f.queued[0] == 1 and f.no_charger_events[0] == 1 and not f.plugged[0]
    m._serve_queues(2)
    assert q.n_queued == 1  # still busy, 15 of 30 minutes waited
    m.site_occupied[2] = 0
    m._serve_queues(3)
    assert f.plugged[0] and q.n_queued == 0 and f.queue_wait_min[0] == 30.0 and f.queue_left[0] == 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(km_scale=st.floats(0.5, 6.0), share=st.floats(0.0, 1.0), dc=st.integers(1, 3), delay=st.sampled_from([0, 60, 240]),
       detour=st.sampled_from([0, 30, 90]), min_share=st.floats(0.0, 1.0), seed=st.integers(0, 50))
def test_property_energy_never_negative_and_nobody_strands(km_scale, share, dc, delay, detour, min_share, seed):
    sc = scenario(population__0__daily_km_scale=km_scale, population__0__home_charger_share=share,
                  population__0__max_departure_delay_min=delay, population__0__detour_max_charge_min=detour,
                  population__0__shorten_min_share=min_share, population__1__daily_km_scale=km_scale,
                  sites__2__chargers=dc, seed=seed)
    m = V2GModel(sc)
    f = m.fleet
    for _ in range(m.n_clock):
        m.step()
        assert (f.e_kwh >= -1e-9).all()
        assert (m.site_occupied <= m.site_ports).all()
        assert (m.queues.length == np.bincount(m.queues.site[m.queues.site >= 0], minlength=m.n_sites)).all()
        assert not (f.plugged & (m.queues.site >= 0)).any()  # queued cars are not plugged
    assert f.stranded_trips.sum() == 0
    assert (f.km_lost >= 0).all() and (f.delay_min >= 0).all() and (f.queue_wait_min >= 0).all()


def test_agents_stepping_matches_population_with_drivers_acting():
    sc = scenario(population__0__daily_km_scale=4.0, population__0__home_charger_share=0.5, sites__2__chargers=1)
    pop = V2GModel(sc, vehicle_stepping="population")
    ags = V2GModel(sc, vehicle_stepping="agents")
    for _ in range(pop.n_clock):
        pop.step()
        ags.step()
    acted = pop.fleet.delayed_departures.sum() + pop.fleet.detours.sum() + pop.fleet.trips_cancelled.sum()
    assert acted > 0 and pop.fleet.queued.sum() > 0  # the case exercises the new rules
    for name in ("e_kwh", "plugged", "delayed_departures", "delay_min", "detours", "detour_min", "trips_shortened",
                 "trips_cancelled", "km_lost", "queued", "queue_wait_min", "queue_left", "distance_km"):
        np.testing.assert_array_equal(getattr(pop.fleet, name), getattr(ags.fleet, name), err_msg=name)


def test_results_carry_each_outcome():
    r = v2gsim.run(scenario(population__0__daily_km_scale=4.0, population__0__home_charger_share=0.5, sites__2__chargers=1))
    cols = {"delayed_departures": "delayed_departures", "delay_min": "departure_delay_min", "detours": "detours",
            "detour_min": "detour_min", "trips_shortened": "trips_shortened", "trips_cancelled": "trips_cancelled",
            "km_lost": "km_lost", "queued": "queued_at_public", "queue_wait_min": "queue_wait_min", "queue_left": "queue_left"}
    for col, kpi in cols.items():
        assert r.kpis[kpi] == pytest.approx(r.vehicles[col].sum())
    assert r.kpis["stranded_trips"] == 0


def test_swappable_cars_short_before_a_trip_swap_and_go_on():
    # the NIO pilot: 120 ride-hailing cars, no piles, one swap station, no public chargers
    m = V2GModel(v2gsim.load_scenario("pilots/nio_gen3_station"))
    r = m.run()
    k = r.kpis
    assert k["stranded_trips"] == 0 and k["trips_cancelled"] == 0
    assert k["detours"] > 0  # swap-station detours before a trip
    sw = r.extra["swaps"]
    assert (sw["reason"] == "long_trip").any()
    assert (m.driver_choices.hold == 0).sum() + m.driver_choices.held.size == m.fleet.n  # the held list is exact


@pytest.mark.parametrize("act", ["all", "give_up_only"])
def test_the_per_step_skips_change_nothing(act):
    """release, due_arrivals and filter_arrivals skip their pass when a flag or bound says it
    would find nothing (population/drivers.py); with the skips defeated before every step (every
    pass runs) the run is the same, on a case where drivers wait, detour, cancel and queue, and on
    one where short drivers can only shorten or cancel (no wait, no detour)."""
    rules = {} if act == "all" else {"population__0__max_departure_delay_min": 0, "population__0__detour_max_charge_min": 0,
                                     "population__1__max_departure_delay_min": 0, "population__1__detour_max_charge_min": 0}
    sc = scenario(population__0__daily_km_scale=4.0, population__0__home_charger_share=0.5, sites__2__chargers=1, time__horizon_days=2, **rules)
    fast, full = V2GModel(sc), V2GModel(sc)
    dc, fdc = full.driver_choices, fast.driver_choices
    skipped = 0
    for s in range(fast.n_clock):
        skipped += (not fdc._parked) + (not fdc._pending) + (s < fdc._due_from < np.iinfo(np.int64).max)
        dc._parked, dc._pending, dc._due_from = True, True, np.iinfo(np.int64).min
        fast.step()
        full.step()
    f = fast.fleet
    assert skipped > 0 and f.trips_cancelled.sum() + f.trips_shortened.sum() > 0
    if act == "all":
        assert f.delayed_departures.sum() > 0 and f.detours.sum() > 0 and f.queued.sum() > 0
    for name in ("e_kwh", "plugged", "location", "delayed_departures", "delay_min", "detours", "detour_min", "trips_shortened",
                 "trips_cancelled", "km_lost", "queued", "queue_wait_min", "queue_left", "distance_km", "n_departures"):
        np.testing.assert_array_equal(getattr(f, name), getattr(full.fleet, name), err_msg=name)
