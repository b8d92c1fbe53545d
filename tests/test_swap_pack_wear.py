"""Swap-station packs age like vehicles (a second population), follow the pack, feed back into
usable capacity and the EMS wear price, retire into second life; second-life storage on the feeder."""

from __future__ import annotations

import numpy as np
import pytest

from test_battery_swap import _check_layout, _swap_scenario
from test_wear_integration import run as wear_run
from test_wear_integration import sc as wear_sc
from v2gsim.agents.swap_station import SwapNetwork
from v2gsim.model import V2GModel
from v2gsim.physics.wear import SchmalstiegNmc
from v2gsim.scenario.schema import Scenario


def _with_wear(sc: Scenario, wear: dict, **time) -> Scenario:
    d = sc.model_dump(mode="json")
    d["wear"] = {"model": "auto", **wear}
    d["time"].update(time)
    return Scenario.model_validate(d)


def _carried_capacity_matches(net, f):
    v = np.flatnonzero(net.veh_pack >= 0)
    pk = net.veh_pack[v]
    np.testing.assert_allclose(f.capacity_kwh[v], net.packs.capacity_kwh[pk] * net.packs.soh[pk], rtol=1e-12)


def test_conservation_holds_with_pack_wear_and_retirement():
    # hot and a high retirement threshold: packs fade, feed back and retire (in racks and in cars) within the run
    sc = _with_wear(_swap_scenario(wear_cny_per_kwh="model"),
                    {"update_period_h": 6, "retirement_soh": 0.99, "ambient": {"constant_degc": 55.0}, "second_life": {"end_of_life_soh": 0.5}})
    m = V2GModel(sc)
    net, f, w = m.actors_of(SwapNetwork)[0], m.fleet, m.wear
    pw = w.pack_wears[0]
    P0 = net.packs.n
    e0_f = f.e_kwh.copy()
    e0_rack = net.packs.e_kwh[net.slot_pack].sum()
    n_swaps = 0
    for _ in range(m.n_clock):
        before = net.veh_pack.copy()
        m.step()
        _check_layout(net, f)
        _carried_capacity_matches(net, f)
        assert net.packs.n == P0
        n_swaps += int((before != net.veh_pack).sum())
        rack = net.slot_pack
        assert np.all(net.packs.e_kwh[rack] <= net.usable_kwh(rack) + 1e-9)
    assert n_swaps > 20
    w.finish(m.step_index)
    pk = net.packs
    assert pw.packs_replaced.sum() > 0 and (pk.soh < 1).any()
    assert (pw.packs_replaced[pk.vehicle >= 0] > 0).any() and (pw.packs_replaced[pk.vehicle < 0] > 0).any()
    assert len(pw.second_life) == pw.packs_replaced.sum()
    # energy: stores change by drawn - fed back - losses - driven + capacity change (vehicles and racks)
    d_store = (f.e_kwh.sum() - e0_f.sum()) + (pk.e_kwh[net.slot_pack].sum() - e0_rack)
    drawn = f.e_charged_kwh.sum() + pk.e_charged_kwh.sum()
    fed = f.e_discharged_kwh.sum() + pk.e_discharged_kwh.sum()
    lost = f.e_loss_kwh.sum() + pk.e_loss_kwh.sum()
    booked = w.e_capacity_change_kwh.sum() + pw.e_capacity_change_kwh.sum()
    assert booked != 0.0
    assert d_store == pytest.approx(drawn - fed - lost - f.e_driven_kwh.sum() + booked, abs=1e-6)
    # per vehicle, with the swaps' net energy and the booked capacity change
    lhs = f.e_kwh - e0_f
    rhs = f.e_charged_kwh - f.e_discharged_kwh - f.e_loss_kwh - f.e_driven_kwh + net.veh_swap_net_kwh + w.e_capacity_change_kwh
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)
    # driver-owned vehicles keep their own feedback; leased ones are not retired by the vehicle model
    assert (w.packs_replaced[w.leased] == 0).all()


def test_racked_pack_ages_by_calendar_and_rack_charging_adds_cycles():
    # an Aulton rack (no discharge) of full packs that nobody swaps: pure calendar ageing at SOC 1 (Roewe packs: NMC, Schmalstieg)
    sc = _with_wear(_swap_scenario(stations=[{"id": "a1", "preset": "aulton", "packs": 6, "initial_soc": 1.0},
                                             {"id": "a2", "preset": "aulton", "packs": 6, "initial_soc": 0.2}], count=1, nio=0),
                    {"heating_k_per_c_rate": 0.0, "ambient": {"constant_degc": 30.0}})
    d = sc.model_dump(mode="json")
    d["population"][0]["swap_below_soc"] = 0.0  # nobody swaps
    m = V2GModel(Scenario.model_validate(d))
    res = m.run()
    net, pw = m.actors_of(SwapNetwork)[0], m.wear.pack_wears[0]
    full = net.slot_pack[:6]
    st = pw.pop.state
    t_s = m.n_steps * m.dt_h * 3600.0
    np.testing.assert_allclose(st.q_loss_cal[full], SchmalstiegNmc().calendar_loss(t_s, 1.0, 30.0), rtol=1e-6)
    assert (st.q_loss_cyc[full] == 0).all() and (st.fec[full] == 0).all()
    # the empty rack was charged: cycle throughput and a lower calendar fade (lower mean SOC)
    low = net.slot_pack[6:12]
    assert (st.fec[low] > 0.5 * 0.7).all() and (st.q_loss_cyc[low] > 0).all()
    assert (st.q_loss_cal[low] < st.q_loss_cal[full]).all()
    # state of health feeds the usable capacity of the rack slots
    np.testing.assert_allclose(net.slot_capacity_kwh(), net.packs.capacity_kwh[net.slot_pack] * (1 - st.q_loss[net.slot_pack]))
    t = res.extra["swap_pack_wear"]
    assert len(t) == net.packs.n and res.kpis["swap_pack_fade_mean_pct"] > 0


def test_pack_ageing_follows_the_pack_not_the_vehicle():
    sc = _with_wear(_swap_scenario(), {"update_period_h": 6})
    m = V2GModel(sc)
    net, f, pw = m.actors_of(SwapNetwork)[0], m.fleet, m.wear.pack_wears[0]
    moved = np.zeros(net.packs.n, bool)
    for _ in range(m.n_clock):
        before = net.packs.vehicle.copy()
        m.step()
        moved |= before != net.packs.vehicle
    m.wear.finish(m.step_index)
    st = pw.pop.state
    # every pack that was in a car at some time carries cycles (driving, charging)
    car_time = moved | (net.packs.vehicle >= 0)
    assert (st.fec[car_time] > 0).mean() > 0.9
    # vehicles' capacities are those of the packs they carry now, not of the vehicle's own history
    _carried_capacity_matches(net, f)
    sw = net.packs.n_swaps > 0
    assert sw.sum() > 10
    swapped_v = net.packs.vehicle[sw & (net.packs.vehicle >= 0)]
    own_history = m.wear.pop.state.soh[swapped_v]
    assert not np.allclose(f.capacity_kwh[swapped_v] / m.wear.cap_nom_kwh[swapped_v], own_history, rtol=1e-9)
    assert np.unique(np.round(net.packs.soh[sw], 12)).size > 1


def test_station_ems_reads_the_pack_wear_price():
    kwh = []
    for cost in (0.0, 5000.0):
        sc = _with_wear(_swap_scenario(wear_cny_per_kwh="model", discharge_requests=[]),
                        {"replacement_cost_cny_per_kwh": cost, "ambient": {"constant_degc": 25.0}})
        d = sc.model_dump(mode="json")
        d["tariff"] = {"preset": "guangdong"}
        m = V2GModel(Scenario.model_validate(d))
        r = m.run()
        price = m.actors_of(SwapNetwork)[0].packs.wear_cost_cny_per_kwh
        if cost == 0:
            assert (price == 0).all()
        else:
            assert np.isfinite(price).all() and (price > 0.5).all()
            # the table's column is per kWh of grid-side throughput: a battery kWh discharged and
            # recharged is 2 / ((eta_c + 1 / eta_d) / 2) of them
            net = m.actors_of(SwapNetwork)[0]
            np.testing.assert_allclose(price * 0.25 * (net.pack_eta_c + 1.0 / net.pack_eta_d),
                                       r.extra["swap_pack_wear"]["marginal_wear_cny_per_kwh_throughput"].to_numpy(), rtol=1e-12)
        kwh.append(r.kpis["swap_station_energy_discharged_kwh"])
    assert kwh[0] > 0 and kwh[1] < 0.5 * kwh[0]


def _second_life_checks(r):
    s, k = r.system, r.kpis
    dt = r.dt_h
    other = s.get("swap_charge_kw", 0.0) - s.get("swap_discharge_kw", 0.0)
    np.testing.assert_allclose(s["net_load_kw"], s["base_load_kw"] + s["ev_charge_kw"] - s["v2g_discharge_kw"] + other
                               + s["second_life_charge_kw"] - s["second_life_discharge_kw"], atol=1e-6)
    assert s["second_life_discharge_kw"].sum() * dt == pytest.approx(k["second_life_energy_discharged_kwh"], rel=1e-9)
    assert (s["second_life_charge_kw"] + s["second_life_discharge_kw"]).sum() * dt == pytest.approx(k["second_life_throughput_kwh"], rel=1e-9)
    settled = ((s["second_life_discharge_kw"] - s["second_life_charge_kw"]) * s["price_cny_per_kwh"]).sum() * dt
    assert settled == pytest.approx(k["second_life_revenue_cny"], rel=1e-9, abs=1e-9)
    assert k["second_life_energy_discharged_kwh"] > 0


def test_vehicle_second_life_power_reaches_the_net_load():
    s = wear_sc(time__horizon_days=60, wear={"model": "auto", "retirement_soh": 0.97, "ambient": {"constant_degc": 40.0},
                                              "second_life": {"site": "homes", "end_of_life_soh": 0.9}})
    _, res = wear_run(s, kwh_per_day=5.0)
    _second_life_checks(res)


def test_swap_second_life_at_the_station_bus_and_settled():
    sc = _with_wear(_swap_scenario(stations=[{"id": "n1", "preset": "nio_gen3", "bus": 17}]),
                    {"update_period_h": 6, "retirement_soh": 0.99, "ambient": {"constant_degc": 55.0}, "second_life": {"end_of_life_soh": 0.5}})
    d = sc.model_dump(mode="json")
    d["feeder"] = {"network": "case33bw", "base_load": {"source": "network_profiles"}}
    d["tariff"] = {"preset": "guangdong"}
    d["time"]["horizon_days"] = 4  # NIO packs (LFP) pass 1 % fade on the second day at 55 degC
    m = V2GModel(Scenario.model_validate(d))
    fd = m.feeder
    slot = fd._hook_slot[0]
    seen = 0
    for _ in range(m.n_clock):
        m.step()
        p_sl = m.wear.pack_wears[0].second_life.p_kw  # retired swap packs, at the station
        p_veh = m.wear.second_life.p_kw  # retired vehicle packs, no site: spread over the EV connections
        ev_kw = fd.last_p_mw[fd.n_base:] * 1e3
        assert ev_kw.sum() == pytest.approx(m.fleet.p_kw.sum() + m.actors_of(SwapNetwork)[0].p_kw.sum() + p_sl + p_veh, abs=1e-6)
        if p_sl != 0.0:
            seen += 1
            assert ev_kw[slot] == pytest.approx(m.actors_of(SwapNetwork)[0].p_kw[0] + p_sl + p_veh / fd.n_ev + _site_kw_at(m, slot), abs=1e-6)
    assert seen > 0
    from v2gsim.results import Results

    r = Results.from_model(m)
    _second_life_checks(r)
    packs = r.extra["wear_packs"]
    sw = packs[packs["origin"] == "swap"]
    assert len(sw) == r.kpis["swap_packs_retired"] > 0 and (sw["station"] == "n1").all()


def _site_kw_at(m, slot):
    f = m.fleet
    idx = np.flatnonzero(f.plugged)
    return float(m.feeder.ev_bus_kw(idx, f.p_kw[idx], f.site[idx])[slot])
