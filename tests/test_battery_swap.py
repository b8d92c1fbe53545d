"""Battery swapping: pack conservation, one pack each way, energy balance, limits, queues."""

import numpy as np
import pandas as pd
import pytest

from v2gsim.agents.swap_station import SwapNetwork, SwapStation
from v2gsim.engine.actor import Signals
from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.scenario.schema import Scenario
from v2gsim.strategies.battery_swap import BatterySwapConfig, station_presets

from helpers import scenario


def _swap_scenario(stations=None, count=40, nio=20, **bm) -> Scenario:
    pop = [
        {"archetype": "ride_hailing", "count": count, "vehicle": "roewe_ei5_52", "home_site": "homes", "home_charger_share": 0.3,
         "public_site": "dc", "swap_below_soc": 0.35},
        {"archetype": "ride_hailing", "count": max(nio, 1), "vehicle": "nio_75_swappable", "home_site": "homes", "public_site": "dc"},
        {"archetype": "private_commuter", "count": 10, "vehicle": "byd_dolphin_44", "home_site": "homes"},
    ]
    st = stations if stations is not None else [{"id": "a1", "preset": "aulton", "packs": 10}, {"id": "n1", "preset": "nio_gen3"},
                                                 {"id": "n2", "preset": "nio_gen4"}]
    return scenario(population=pop, tariff={"preset": "guangdong"}, feeder={"transformer_kva": 5000, "households": 40},
                    business_models=[{"kind": "battery_swap", "stations": st,
                                      "discharge_requests": [{"start": "2026-07-06T18:00", "hours": 2, "reward_cny_per_kwh": 1.0}], **bm}])


def _check_layout(net: SwapNetwork, fleet) -> None:
    pk = net.packs
    rack = pk.station >= 0
    # every pack is in exactly one place
    assert np.all(rack ^ (pk.vehicle >= 0))
    np.testing.assert_array_equal(np.sort(net.slot_pack), np.flatnonzero(rack))
    np.testing.assert_array_equal(pk.station[net.slot_pack], net.slot_station)
    np.testing.assert_array_equal(pk.slot[net.slot_pack], np.arange(net.slot_pack.size))
    veh = np.flatnonzero(net.veh_pack >= 0)
    np.testing.assert_array_equal(pk.vehicle[net.veh_pack[veh]], veh)
    assert np.unique(net.veh_pack[veh]).size == veh.size
    # and a swapped-in pack's energy is the vehicle's
    e_rack = pk.e_kwh[net.slot_pack]
    assert np.all(e_rack >= -1e-9) and np.all(e_rack <= pk.capacity_kwh[net.slot_pack] + 1e-9)


def test_presets_carry_domain_figures():
    p = station_presets()
    assert (p["nio_gen3"].packs, p["nio_gen3"].max_swaps_per_day, p["nio_gen3"].grid_limit_kw) == (21, 408, 500)
    assert (p["nio_gen4"].packs, p["nio_gen4"].swap_time_s, p["nio_gen4"].max_swaps_per_day) == (23, 144, 480)
    assert p["aulton"].swap_time_s == 20
    assert p["nio_gen2"].packs == 13


def run_checking_packs(m) -> int:
    """Step ``m`` to its end, checking after every step that no pack is created or lost (in
    total, per standard, per rack), that a swap moves exactly one pack each way and that the
    stations keep their grid limit; returns the number of swaps."""
    net, f = m.actors_of(SwapNetwork)[0], m.fleet
    P0 = net.packs.n
    per_std0 = np.bincount(net.packs.standard, minlength=len(net.standards))
    per_station0 = np.bincount(net.slot_station, minlength=net.n_stations)
    _check_layout(net, f)
    n_swaps = 0
    for _ in range(m.n_clock):
        before = net.veh_pack.copy()
        rack_before = set(net.slot_pack.tolist())
        m.step()
        _check_layout(net, f)
        assert net.packs.n == P0
        np.testing.assert_array_equal(np.bincount(net.packs.standard, minlength=len(net.standards)), per_std0)
        np.testing.assert_array_equal(np.bincount(net.packs.station[net.packs.station >= 0], minlength=net.n_stations), per_station0)
        changed = np.flatnonzero(before != net.veh_pack)
        n_swaps += changed.size
        # exactly one pack each way: each swapped vehicle's old pack is now racked, its new one came from a rack
        assert set(before[changed].tolist()) <= set(net.slot_pack.tolist())
        assert set(net.veh_pack[changed].tolist()) <= rack_before
        assert np.all(np.abs(net.p_kw) <= net.st_grid_limit_kw + 1e-6)
    return n_swaps


def test_packs_conserved_one_each_way_energy_balanced_and_limits():
    m = V2GModel(_swap_scenario())
    net = m.actors_of(SwapNetwork)[0]
    f = m.fleet
    e0_f = f.e_kwh.copy()
    e0_rack = net.packs.e_kwh[net.slot_pack].sum()
    n_swaps = run_checking_packs(m)
    assert n_swaps > 20
    res_tables = net.tables(m.times, m.clock)
    sw = res_tables["swaps"]
    assert (sw["outcome"] == "swapped").sum() == n_swaps
    # energy: into packs and vehicles = drawn - fed back - losses - driven
    pk = net.packs
    d_store = (f.e_kwh.sum() - e0_f.sum()) + (pk.e_kwh[net.slot_pack].sum() - e0_rack)
    drawn = f.e_charged_kwh.sum() + pk.e_charged_kwh.sum()
    fed = f.e_discharged_kwh.sum() + pk.e_discharged_kwh.sum()
    lost = f.e_loss_kwh.sum() + pk.e_loss_kwh.sum()
    assert d_store == pytest.approx(drawn - fed - lost - f.e_driven_kwh.sum(), abs=1e-6)
    # per vehicle, the swaps close the vehicle identity
    lhs = f.e_kwh - e0_f
    rhs = f.e_charged_kwh - f.e_discharged_kwh - f.e_loss_kwh - f.e_driven_kwh + net.veh_swap_net_kwh
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)
    # station power recorded equals the packs' grid energy
    st = res_tables["stations"]
    assert st["charge_kw"].sum() * m.dt_h == pytest.approx(pk.e_charged_kwh.sum(), rel=1e-9)
    assert st["discharge_kw"].sum() * m.dt_h == pytest.approx(pk.e_discharged_kwh.sum(), rel=1e-9, abs=1e-9)


def test_results_tables_kpis_and_net_load():
    m = V2GModel(_swap_scenario())
    r = m.run()
    st, sw = r.extra["stations"], r.extra["swaps"]
    assert set(st["station_id"].unique()) == {"a1", "n1", "n2"}
    assert r.kpis["swaps_served"] == (sw["outcome"] == "swapped").sum() > 0
    assert 0 < r.kpis["swap_utilisation_pct"] < 100
    assert r.kpis["swap_wait_p95_min"] >= r.kpis["swap_wait_mean_min"] >= 0
    s = r.system
    np.testing.assert_allclose(s["net_load_kw"], s["base_load_kw"] + s["ev_charge_kw"] - s["v2g_discharge_kw"] + s["swap_charge_kw"]
                               - s["swap_discharge_kw"], atol=1e-6)
    # the discharge request (18-20 h on day 1) is answered by the bidirectional NIO stations
    win = st[(st["time"] >= "2026-07-06 18:00") & (st["time"] < "2026-07-06 20:00") & st["station_id"].isin(["n1", "n2"])]
    assert win["discharge_kw"].sum() > 0
    assert st.loc[st["station_id"] == "a1", "discharge_kw"].sum() == 0  # Aulton preset: not bidirectional


def test_deterministic_and_saved(tmp_path):
    a, b = V2GModel(_swap_scenario()).run(), V2GModel(_swap_scenario()).run()
    pd.testing.assert_frame_equal(a.extra["swaps"], b.extra["swaps"])
    pd.testing.assert_frame_equal(a.extra["stations"], b.extra["stations"])
    a.save(tmp_path / "r", plots=False)
    from v2gsim.results import Results

    back = Results.load(tmp_path / "r")
    assert set(back.extra) == {"stations", "swaps", "site_service", "operator_service", "operators", "operator_requests"}
    assert len(back.extra["swaps"]) == len(a.extra["swaps"])


def test_queue_fifo_and_drivers_leave():
    # one tiny Aulton station, one pack: queues form; nobody waits longer than the limit
    sc = _swap_scenario(stations=[{"id": "a1", "preset": "aulton", "packs": 1, "slot_p_max_kw": 10}], count=40, nio=0, max_wait_min=30)
    r = V2GModel(sc).run()
    sw = r.extra["swaps"]
    assert r.kpis["swap_drivers_left"] > 0
    assert sw["wait_min"].max() <= 30 + 15 + 1e-9  # the limit plus the step resolution
    assert (sw.loc[sw["outcome"] == "waited too long", "wait_min"] > 30).all()


def test_stations_are_agents_and_default_config_has_none():
    m = V2GModel(_swap_scenario())
    agents = list(m.agents_by_type[SwapStation])
    assert [a.station_id for a in agents] == ["a1", "n1", "n2"]
    assert agents[1].packs_ready <= 21 and agents[1].pack_ids.size == 21
    assert BatterySwapConfig().stations == []
    m0 = V2GModel(scenario(business_models=[{"kind": "battery_swap"}]))
    assert m0.actors_of(SwapNetwork) == []


def test_bad_station_configs_are_reported():
    with pytest.raises(Exception, match="unknown swap-station preset"):
        _swap_scenario(stations=[{"id": "x", "preset": "nio_gen9"}])
    with pytest.raises(ScenarioError, match="no vehicle carries pack standard 'choco'"):
        V2GModel(_swap_scenario(stations=[{"id": "c", "preset": "catl_choco"}]))


def test_station_on_a_network_bus():
    sc = _swap_scenario(stations=[{"id": "n1", "preset": "nio_gen3", "bus": 17}])
    sc = sc.model_copy(update={"feeder": sc.feeder.model_copy(update={"network": "case33bw", "transformer_kva": None})})
    m = V2GModel(sc)
    fd = m.feeder
    assert fd.ev_buses[fd._hook_slot[0]] == 17
    for _ in range(8):
        m.step()
        ev_mw = fd.last_p_mw[fd.n_base:].sum()
        assert ev_mw * 1e3 == pytest.approx(m.fleet.p_kw.sum() + m.actors_of(SwapNetwork)[0].p_kw.sum(), abs=1e-6)
    assert m.actors_of(SwapNetwork)[0].p_kw[0] > 0  # the rack charges at night


def test_station_configuration_problems_are_found_at_validate_with_lines(tmp_path):
    """Found by the fuzzer: a duplicated station passed `validate` and failed when the model was built."""
    import v2gsim
    from v2gsim.errors import ScenarioError
    from v2gsim.scenario import bundled_scenarios

    text = bundled_scenarios()["battery_swapping"].read_text()
    p = tmp_path / "s.yaml"
    p.write_text(text)
    sc = v2gsim.load_scenario(p)
    first = sc.business_models[0].stations[0].id
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(p, {"business_models.0.stations.1.id": first})
    (pr,) = exc.value.problems
    assert pr.path == "business_models[0].stations[1].id" and f"duplicate station id {first!r}" in pr.message
    # a standard no vehicle carries and no station sizes
    with pytest.raises(ScenarioError, match="stations.0.\\.pack_capacity_kwh.*no vehicle carries pack standard 'choco'"):
        v2gsim.load_scenario(p, {"business_models.0.stations.0.preset": "catl_choco"})
    # the same checks guard a Scenario built in Python (no YAML lines there)
    bad = sc.model_copy(update={"business_models": [sc.business_models[0].model_copy(update={
        "stations": [sc.business_models[0].stations[0]] * 2})]})
    with pytest.raises(ScenarioError, match="duplicate station id"):
        v2gsim.V2GModel(bad)


def test_urgent_rack_charging_keeps_within_the_feeder_headroom():
    # Drivers queue at every station and no pack is ready: every station's packs are urgent.
    # The feeder has room for 150 kW more than the racks drew last step (50 kW): the racks get
    # 200 kW in all, the urgent packs first, each station's next pack before any station's second.
    import dataclasses

    m = V2GModel(_swap_scenario())
    net, ems = m.actors_of(SwapNetwork)[0], m.actors_of(SwapNetwork)[0].strategy
    ems.config = ems.config.model_copy(update={"headroom_margin": 0.0})  # the margin: checked below
    net.packs.e_kwh[net.slot_pack] = 0.2 * net.packs.capacity_kwh[net.slot_pack]
    s = 40  # 10:00, a peak hour: no cheap filling of idle packs
    sig = Signals(s, s, m.clock[s], m.dt_h, float(m.price_cny_per_kwh[s]), float(m.v2g_price_cny_per_kwh[s]), float("inf"))
    obs = dataclasses.replace(net.observation(sig), queue=np.full(net.n_stations, 4), feeder_headroom_kw=150.0,
                              prev_charge_kw=50.0)
    p = ems.plan_packs(obs)
    assert np.maximum(p, 0.0).sum() == pytest.approx(200.0, abs=1e-9)
    # with a planning margin of 10 % of the rating, that much less
    rating_kw = ems.context.feeder_rating_kw
    ems.config = ems.config.model_copy(update={"headroom_margin": 0.1})
    wide = dataclasses.replace(obs, feeder_headroom_kw=150.0 + 0.1 * rating_kw)
    assert np.maximum(ems.plan_packs(wide), 0.0).sum() == pytest.approx(200.0, abs=1e-6)
    ems.config = ems.config.model_copy(update={"headroom_margin": 0.0})
    # without the headroom each station's urgent packs would take far more than that
    free = ems.plan_packs(dataclasses.replace(obs, feeder_headroom_kw=np.inf))
    assert np.maximum(free, 0.0).sum() > 1000.0
    # the first packs in line at each station (one per station) are served before any second one
    first = np.zeros(p.size, bool)
    for k in range(net.n_stations):
        lo, hi = net.slot_start[k], net.slot_start[k + 1]
        first[lo + np.argmax(obs.e_kwh[lo:hi])] = True  # all equal: the first slot
    np.testing.assert_allclose(p[first], free[first])
    # a run on a small transformer: the racks never charge beyond the room the feeder showed
    sc = _swap_scenario()
    sc = sc.model_copy(update={"feeder": sc.feeder.model_copy(update={"transformer_kva": 400})})
    m = V2GModel(sc)
    sy = m.run().system
    headroom = m.feeder.rating_kw - sy["net_load_kw"].to_numpy()  # what the feeder reports after each step
    charge = sy["swap_charge_kw"].to_numpy()
    margin_kw = sc.business_models[0].headroom_margin * m.feeder.rating_kw  # the planning margin kept free
    room = np.maximum(headroom[:-1] + charge[:-1] - margin_kw, 0.0)
    assert np.all(charge[1:] <= room + 1e-6)
    assert np.max(charge[1:] / np.maximum(room, 1e-9)) > 0.95  # and the bound was reached


# ---------------------------------------------------------------- grid-aware station EMS

# battery_swapping's fast DC guns before drivers unplugged full cars (v2gsim.population.idle)
DC_BEFORE = "sites.1.leave_when_done=false"


def _bundled_swap(days: float, *overrides):
    import v2gsim

    return v2gsim.load_scenario("battery_swapping", [f"time.horizon_days={days}", *overrides])


def test_discharge_request_is_honoured():
    """battery_swapping, 3 days, the request of day 3 (15:00-17:00): a station whose ready packs
    cover its queue, the reserve and the next hour's swaps does not charge; the stations feed
    back. The rule before charged through the request.

    Since the drivers' before-trip swaps the stations start the request with fewer ready packs
    (NIO Gen 4: 8-9) and the next hour's swaps were taken as the 3 h horizon's mean rate, which
    carries the 17:00 rush into 15:00: the station charged 130 kW at the request's first step. The
    rule now counts the next 60 minutes' forecast swaps. Measured: nothing charges 15:00-16:00
    (before: 405 kWh); to 16:30 186 against 2,081 kW summed over steps (0.09x); from 16:00 the next
    hour reaches into the rush and NIO Gen 4 charges for it, so the whole window draws 500 of the
    old rule's 839 kWh (0.60x; before the drivers' swaps the bound here was 0.4x of the whole
    window, when the rush charging started at 16:30); 408 kWh fed back (0 before)."""
    import v2gsim

    def window(res):
        st = res.extra["stations"]
        t = pd.to_datetime(st["time"])
        return st[(t >= pd.Timestamp("2026-07-08 15:00")) & (t < pd.Timestamp("2026-07-08 17:00"))]

    new = window(v2gsim.V2GModel(_bundled_swap(3)).run())
    old = window(v2gsim.V2GModel(_bundled_swap(3, "business_models.0.honour_requests=false")).run())
    assert old["charge_kw"].sum() > 0  # what the rule fixes
    assert new["discharge_kw"].sum() > 0
    t_new, t_old = pd.to_datetime(new["time"]), pd.to_datetime(old["time"])
    # the first hour: the ready packs cover the queue (none), the reserve and the next hour: no
    # station charges, where the rule before charged every step
    first = t_new < pd.Timestamp("2026-07-08 16:00")
    assert (old.loc[t_old < pd.Timestamp("2026-07-08 16:00")].groupby("time")["charge_kw"].sum() > 0).all()
    assert (new.loc[first, "charge_kw"] == 0).all()
    assert (new.loc[first, "packs_ready"] >= new.loc[first, "queue"] + 2).all()  # the reserve (2) at least
    # to 16:30 (the rush an hour ahead) a tenth of what the rule before drew
    early_new = new.loc[t_new < pd.Timestamp("2026-07-08 16:30"), "charge_kw"].sum()
    early_old = old.loc[t_old < pd.Timestamp("2026-07-08 16:30"), "charge_kw"].sum()
    assert early_new < 0.1 * early_old
    # and never charging and discharging at one station at once
    assert not ((new["charge_kw"] > 1e-9) & (new["discharge_kw"] > 1e-9)).any()


def test_valley_fill_keeps_battery_swapping_below_its_reference_peak():
    """2 days: the rule before peaked at 2,245 kW (all idle packs at 12:00, the start of a cheap
    period) against the reference's 2,212 kW; grid-aware it stays below."""
    import v2gsim

    # the fast DC guns as they were then (full cars stayed plugged: docs/mobility.md, "Full cars leave
    # public chargers"): with drivers unplugging them more cars charge there and the reference peak
    # rises to 2,615 kW, above the rule before's 2,484
    new = v2gsim.run(_bundled_swap(2, DC_BEFORE)).kpis
    old = v2gsim.run(_bundled_swap(2, DC_BEFORE, "business_models.0.cheap_fill=full_power", "business_models.0.honour_requests=false",
                                   "business_models.0.headroom_margin=0", "business_models.0.peak_aware=false")).kpis
    assert old["peak_load_kw"] > old["reference_peak_kw"]
    assert new["peak_load_kw"] <= new["reference_peak_kw"]
    assert new["reference_peak_kw"] == pytest.approx(old["reference_peak_kw"], rel=1e-12)  # same reference


def test_valley_fill_spreads_the_cheap_period_start():
    """The first step of the 12:00 cheap run: full power puts every idle pack on at once."""
    import v2gsim

    # the valley fill of one cheap run, as it was before peak_aware (tests/test_swap_peak_aware.py: with it)
    full = v2gsim.V2GModel(_bundled_swap(1, "business_models.0.cheap_fill=full_power", "business_models.0.headroom_margin=0",
                                         "business_models.0.peak_aware=false")).run().system
    fill = v2gsim.V2GModel(_bundled_swap(1, "business_models.0.headroom_margin=0", "business_models.0.peak_aware=false")).run().system
    at = pd.Timestamp("2026-07-06 12:00")
    assert fill.loc[at, "swap_charge_kw"] < 0.85 * full.loc[at, "swap_charge_kw"]  # 1,533 vs 1,895 kW (a 2-h cheap run)
