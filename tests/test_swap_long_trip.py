"""Battery swapping before a long trip: the trigger, its count by reason, conservation, the off-switch."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from v2gsim.agents.swap_station import LONG_TRIP, LOW_SOC
from v2gsim.agents.swap_station import SwapNetwork
from v2gsim.engine.actor import Arrivals
from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.population.fleet import HOME, PUBLIC
from v2gsim.scenario import load_scenario
from v2gsim.scenario.schema import Scenario

from helpers import scenario
from test_battery_swap import _check_layout, _swap_scenario, run_checking_packs

BUNDLED = Path(__file__).resolve().parents[1] / "scenarios" / "battery_swapping.yaml"
OFF = ["population.0.swap_before_trip_reserve_soc=null", "population.1.swap_before_trip_reserve_soc=null"]


def _with_reserve(sc: Scenario, reserve_soc, groups=(0, 1)) -> Scenario:
    d = sc.model_dump(mode="json")
    for g in groups:
        d["population"][g]["swap_before_trip_reserve_soc"] = reserve_soc
    return Scenario.model_validate(d)


def test_next_trip_energy_is_the_next_arrivals_trip():
    # what the driver knows on arrival is exactly the trip the mobility source drives next
    m = V2GModel(_swap_scenario())
    src = m.sources[0]
    days = [src.day(d) for d in (0, 1, 2)]
    v = np.concatenate([e.arr_vehicle for e in days])
    step = np.concatenate([e.arr_step for e in days])
    trip = np.concatenate([e.arr_trip_kwh for e in days])
    nxt = np.concatenate([e.arr_next_trip_kwh for e in days])
    day = np.concatenate([np.full(e.arr_vehicle.size, k) for k, e in enumerate(days)])
    o = np.lexsort((step, v))
    v, trip, nxt, day = v[o], trip[o], nxt[o], day[o]
    same = v[1:] == v[:-1]
    # day 0 arrivals followed by one today or tomorrow: that one's trip energy
    known = same & (day[:-1] == 0) & (day[1:] <= 1)
    assert known.sum() > 100
    np.testing.assert_array_equal(nxt[:-1][known], trip[1:][known])
    # no trip tomorrow: no trip energy known
    last_today = (day == 0) & ~np.concatenate([known, [False]])
    assert (nxt[last_today] == 0).all()


def test_hand_built_long_trip_swaps_short_trip_does_not():
    sc = scenario(
        population=[{"archetype": "ride_hailing", "count": 6, "vehicle": "roewe_ei5_52", "home_site": "homes", "public_site": "dc",
                     "swap_below_soc": 0.4, "swap_before_trip_reserve_soc": 0.1}],
        business_models=[{"kind": "battery_swap", "stations": [{"id": "a1", "preset": "aulton", "packs": 6, "initial_soc": 1.0}]}],
    )
    m = V2GModel(sc)
    net, f = m.actors_of(SwapNetwork)[0], m.fleet
    cap = f.capacity_kwh[0]
    homes, dc = sc.site_index()["homes"], sc.site_index()["dc"]
    v = np.arange(6)
    # all above swap_below_soc (0.4) except vehicle 4; next trips: 0.45 of a pack is long (0.5 - 0.45 < 0.1), 0.2 is short
    soc = np.array([0.5, 0.5, 0.5, 0.5, 0.3, 0.5])
    next_soc = np.array([0.45, 0.2, 0.45, 0.45, 0.45, 0.0])
    site = np.array([dc, dc, homes, dc, dc, dc], np.int32)  # vehicle 2 plugs in at its own pile: it charges there instead
    replay = np.array([False, False, False, True, False, False])  # vehicle 3 replays a session
    f.e_kwh[v] = soc * cap
    loc = np.where(site == homes, HOME, PUBLIC).astype(np.int8)
    packs_before = net.veh_pack[v].copy()
    held = net.arrive(0, Arrivals(v, f.e_kwh[v].copy(), loc, site, np.full(6, np.inf), np.full(6, 40), replay, next_soc * cap))
    np.testing.assert_array_equal(held, [True, False, False, False, True, False])
    assert net.q_reason[0] == LONG_TRIP and net.q_reason[4] == LOW_SOC
    rel = net.release(0)
    np.testing.assert_array_equal(np.sort(rel.v), [0, 4])
    _check_layout(net, f)
    # one pack each way, a full one in: the long-trip vehicle now makes its trip with room to spare
    assert (net.veh_pack[[0, 4]] != packs_before[[0, 4]]).all() and (net.veh_pack[[1, 2, 3, 5]] == packs_before[[1, 2, 3, 5]]).all()
    assert f.e_kwh[0] == pytest.approx(cap) and f.e_kwh[0] - next_soc[0] * cap >= 0.1 * cap
    sw = net.tables(m.times, m.clock)["swaps"].set_index("vehicle")
    assert sw.loc[0, "reason"] == "long_trip" and sw.loc[4, "reason"] == "low_soc"
    assert (sw["outcome"] == "swapped").all()


def test_long_trip_swaps_conserve_packs_and_are_counted_by_reason():
    m = V2GModel(_with_reserve(_swap_scenario(), 0.2))
    net, f = m.actors_of(SwapNetwork)[0], m.fleet
    e0_f = f.e_kwh.copy()
    run_checking_packs(m)
    lhs = f.e_kwh - e0_f
    rhs = f.e_charged_kwh - f.e_discharged_kwh - f.e_loss_kwh - f.e_driven_kwh + net.veh_swap_net_kwh
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)
    t = net.tables(m.times, m.clock)
    sw, st = t["swaps"], t["stations"]
    served = sw[sw["outcome"] == "swapped"]
    n_long = int((served["reason"] == "long_trip").sum())
    assert n_long > 0 and (served["reason"] == "low_soc").sum() > 0
    # they came above their group's swap_below_soc (0.35 Aulton, 0.25 NIO), so not for the low trigger
    below = np.where(served["station_id"] == "a1", 0.35, 0.25)
    assert (served["soc_out"][served["reason"] == "long_trip"] >= below[served["reason"] == "long_trip"] - 1e-12).all()
    np.testing.assert_array_equal(st["swaps_low_soc"] + st["swaps_long_trip"], st["swaps"])
    assert st["swaps_long_trip"].sum() == n_long
    from v2gsim.metrics import swap_kpis

    k = swap_kpis(st, sw, m.dt_h)
    assert k["swaps_served_long_trip"] == n_long
    assert k["swaps_served_low_soc"] + k["swaps_served_long_trip"] == k["swaps_served"] == len(served)


def _short_bundled(overrides=()):
    return V2GModel(load_scenario(BUNDLED, ["time.horizon_days=2", *overrides])).run()


# the station EMS's rule before grid-aware control (cheap hours at full power, requests not
# honoured, no planning margin): with it the pins below still hold bit for bit
EMS_BEFORE = ["sites.1.leave_when_done=false",  # and full cars kept the fast DC guns (v2gsim.population.idle)
              "business_models.0.cheap_fill=full_power", "business_models.0.honour_requests=false", "business_models.0.peak_aware=false",
              "business_models.0.headroom_margin=0"]


def test_off_switch_is_the_old_behaviour_bit_for_bit():
    off = _short_bundled([*OFF, *EMS_BEFORE])
    sw = off.extra["swaps"]
    # switched off, no driver swaps on arriving before a long trip; the long-trip swaps left are
    # drivers short of charge as they leave (v2gsim.population.drivers), each a counted detour
    n_long = int((sw["reason"] == "long_trip").sum())
    assert off.kpis["swaps_served_long_trip"] <= n_long <= off.kpis["detours"]
    # pinned from the code before the long-trip trigger existed (commit 4878c3a), same scenario and
    # horizon; the full tables were compared bit for bit then. Re-pin only for an intended change.
    # Re-pinned once: urgent rack charging now stays within the feeder headroom (was 689 / 646,
    # 195558.91776405554, 119545.14937656766, 10942.4636732153, 10100.16). Re-pinned twice: drivers
    # short of charge for the next trip now wait, detour or cancel, and public sites queue
    # (v2gsim.population.drivers; was 688 / 645, 196383.69105402485, 119496.97587763156,
    # 10991.526916148334, 10087.64).
    assert (len(sw), int((sw["outcome"] == "swapped").sum())) == (672, 629)
    assert off.system["net_load_kw"].sum() == pytest.approx(196400.3718718135, rel=1e-12)
    assert off.extra["stations"]["charge_kw"].sum() == pytest.approx(115231.20491705961, rel=1e-12)
    assert sw["e_out_kwh"].sum() == pytest.approx(10906.870409596562, rel=1e-12)
    assert sw["wait_min"].sum() == pytest.approx(9703.32, rel=1e-12)
    # and, switched off, the next-trip energies do not matter at all
    from v2gsim.population import mobility

    day = mobility.GeneratedMobility.day

    def long_day(self, d):
        ev = day(self, d)
        ev.arr_next_trip_kwh = ev.arr_next_trip_kwh * 100.0
        return ev

    mp = pytest.MonkeyPatch()
    mp.setattr(mobility.GeneratedMobility, "day", long_day)
    try:
        perturbed = _short_bundled([*OFF, *EMS_BEFORE])
    finally:
        mp.undo()
    pd.testing.assert_frame_equal(off.system, perturbed.system, check_exact=True)
    pd.testing.assert_frame_equal(off.extra["swaps"], perturbed.extra["swaps"], check_exact=True)
    pd.testing.assert_frame_equal(off.extra["stations"], perturbed.extra["stations"], check_exact=True)


def test_bundled_scenario_swaps_before_long_trips():
    r = _short_bundled()
    assert r.kpis["swaps_served_long_trip"] > 0
    assert r.kpis["swaps_served_low_soc"] + r.kpis["swaps_served_long_trip"] == r.kpis["swaps_served"]


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "lots"])
def test_bad_reserve_is_a_scenario_error_naming_the_yaml_path(bad):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(BUNDLED, [f"population.1.swap_before_trip_reserve_soc={bad}"])
    paths = [p.path for p in exc.value.problems]
    assert paths == ["population[1].swap_before_trip_reserve_soc"], paths
