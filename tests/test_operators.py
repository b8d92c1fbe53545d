"""Per-operator accounting (v2gsim.operators): a two-operator case computed by hand, the files,
the report's operator rows, and each grid request's delivered energy against what the business
models count themselves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from operator_checks import check_operators

import v2gsim
from v2gsim.operators import NO_OPERATOR, _windows, actor_money, operator_list
from v2gsim.results import Results

HAND = """\
name: two operators by hand
seed: 3
time: {start: 2026-07-06T00:00, step_min: 15, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: 50, households: 0}
tariff: {flat_cny_per_kwh: 0.5}
sites:
  - {id: lot, kind: public, p_max_kw: 7, chargers: 2}
  - {id: fast, kind: public, p_max_kw: 20, chargers: 1, current: dc}
business_models:
  - {kind: uncontrolled, sites: [lot]}
  - {kind: distributed, sites: [fast], drivers: {smart_charging_share: 0.0},
     price_offers: [{start: 2026-07-06T19:00, hours: 1, price_cny_per_kwh: 1.2}]}
mobility_sessions:
  csv: sessions.csv
  vehicle: {capacity_kwh: 100, consumption_kwh_per_km: 0.15, p_ac_max_kw: 7, p_dc_max_kw: 1000, eta_charge: 0.9}
"""
# a at the lot (7 kW) 18:00-20:00, c at the fast charger (20 kW) 19:00-19:30; both ask 30 kWh
SESSIONS = """\
arrival,departure,energy_kwh,site_id,max_power_kw,vehicle_id
2026-07-06 18:00,2026-07-06 20:00,30,lot,,a
2026-07-06 19:00,2026-07-06 19:30,30,fast,,c
"""


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    d = tmp_path_factory.mktemp("hand")
    (d / "s.yaml").write_text(HAND)
    (d / "sessions.csv").write_text(SESSIONS)
    return v2gsim.run(v2gsim.load_scenario(d / "s.yaml"))


def test_two_operators_by_hand(hand):
    t = hand.extra["operators"].set_index("operator_id")
    assert list(t.index) == ["uncontrolled", "distributed"]
    assert t.loc["uncontrolled", "sites"] == "lot" and t.loc["distributed", "sites"] == "fast"
    # energy: 7 kW for 2 h at the lot, 20 kW for 0.5 h at the fast charger (no base load)
    assert t["energy_drawn_kwh"].tolist() == pytest.approx([14.0, 10.0])
    assert t["energy_fed_back_kwh"].tolist() == [0.0, 0.0]
    # the feeder's peak is 19:00-19:30, 7 + 20 = 27 kW; each operator's load there and its share
    assert hand.kpis["peak_load_kw"] == pytest.approx(27.0)
    assert t["feeder_peak_load_kw"].tolist() == pytest.approx([7.0, 20.0])
    assert t["feeder_peak_share_pct"].tolist() == pytest.approx([7 / 27 * 100, 20 / 27 * 100])
    assert t["own_peak_kw"].tolist() == pytest.approx([7.0, 20.0])
    # money at 0.5 CNY/kWh from the grid; the aggregator sells at its own 1.2 CNY/kWh offer
    assert t.loc["uncontrolled", ["cost_cny", "revenue_cny", "net_cny"]].tolist() == pytest.approx([7.0, 7.0, 0.0])
    assert t.loc["distributed", ["cost_cny", "revenue_cny", "net_cny"]].tolist() == pytest.approx([5.0, 12.0, 7.0])
    money = actor_money(hand.ledger)
    assert money.loc["drivers", "net_cny"] == pytest.approx(-19.0) and money.loc["grid_company", "net_cny"] == pytest.approx(12.0)
    # service: one driver and one session each; 30 kWh asked, 14 and 10 delivered
    assert t["drivers_served"].tolist() == [1.0, 1.0] and t["sessions"].tolist() == [1.0, 1.0]
    assert t["unmet_energy_kwh"].tolist() == pytest.approx([16.0, 20.0])
    # KPIs <operator_id>_<name>, beside the strategies' own
    assert hand.kpis["distributed_feeder_peak_share_pct"] == pytest.approx(20 / 27 * 100)
    assert hand.kpis["uncontrolled_energy_drawn_kwh"] == pytest.approx(14.0)
    check_operators(hand)


def test_the_reference_reports_each_operator_under_the_runs_id(hand, tmp_path):
    ref = hand.extra["reference_operators"].set_index("operator_id")
    # the reference keeps both entries in place, uncontrolled: the aggregator's offer is gone
    assert list(ref.index) == ["uncontrolled", "distributed"] and list(ref["kind"]) == ["uncontrolled", "uncontrolled"]
    assert ref["energy_drawn_kwh"].tolist() == pytest.approx([14.0, 10.0])
    assert ref.loc["distributed", ["cost_cny", "revenue_cny", "net_cny"]].tolist() == pytest.approx([5.0, 5.0, 0.0])
    assert ref["feeder_peak_load_kw"].sum() == pytest.approx(hand.kpis["reference_peak_kw"])  # no base load here
    back = Results.load(hand.save(tmp_path / "r", plots=False))
    pd.testing.assert_frame_equal(back.extra["reference_operators"], hand.extra["reference_operators"])


def test_the_table_is_saved_and_read_back(hand, tmp_path):
    out = hand.save(tmp_path / "r", plots=True)
    assert (out / "operators.parquet").is_file() and (out / "operator_requests.parquet").is_file()
    assert (out / "operators.png").stat().st_size > 10_000
    back = Results.load(out)
    pd.testing.assert_frame_equal(back.extra["operators"], hand.extra["operators"])
    assert operator_list(back).index.tolist() == ["uncontrolled", "distributed"]


def test_results_without_ownership_records_are_named():
    res = type("R", (), {"extra": {}, "metadata": {"scenario": {"business_models": []}}})()
    with pytest.raises(ValueError, match="run the scenario again"):
        operator_list(res)


@pytest.fixture(scope="module")
def mixed3():
    return v2gsim.run(v2gsim.load_scenario("mixed_city", {"time.horizon_days": 3}), baseline=False)


def test_requests_delivered_match_what_the_business_models_count(mixed3):
    r = mixed3
    req = r.extra["operator_requests"]
    dt_h = r.dt_h
    # the hub's daily discharge call, once a day in the three recorded days, 19:00-20:00, 200 kW
    calls = req[req["operator_id"] == "centralized"]
    assert len(calls) == 3 and (calls["steps"] == 4).all() and (calls["asked_kwh"] == 200.0).all()
    assert list(calls["start"].dt.hour) == [19, 19, 19]
    hub = r.sites[r.sites["site_id"].astype(str) == "hub"].set_index("time")["p_kw"]
    for _, c in calls.iterrows():
        w = hub[(hub.index >= c["start"]) & (hub.index < c["end"])]
        # the hub is its only site: its net power is the site's; what it fed back (gross, some
        # vehicles may charge meanwhile) is at least the site's net export
        assert c["net_kw_mean"] == pytest.approx(float(w.mean())) and c["import_max_kw"] == pytest.approx(float(w.max()))
        assert c["delivered_kwh"] >= float((-w).clip(lower=0).sum() * dt_h) - 1e-9
        assert c["shortfall_kwh"] == pytest.approx(float((200.0 - (-w).clip(lower=0)).clip(lower=0).sum() * dt_h))
    # the invitation (translated into a discharge call): the grid's 50 kWh is what it asked
    inv = req[req["operator_id"] == "distributed"].iloc[0]
    assert inv["kind"] == "discharge_call" and inv["asked"] == "export 50 kWh" and inv["asked_kwh"] == 50.0
    assert inv["shortfall_kwh"] == pytest.approx(max(50.0 - inv["delivered_kwh"], 0.0))
    # the swap station's request: its discharge in the window
    sw = req[req["operator_id"] == "battery_swap"].iloc[0]
    st_ = r.extra["stations"]
    in_w = (st_["time"] >= sw["start"]) & (st_["time"] < sw["end"])
    assert sw["delivered_kwh"] == pytest.approx(float(st_.loc[in_w, "discharge_kw"].sum() * dt_h), abs=1e-9)
    t = r.extra["operators"].set_index("operator_id")
    assert t.loc["centralized", "v2g_delivered_in_requests_kwh"] == pytest.approx(calls["delivered_kwh"].sum())
    check_operators(r)


def test_an_invitation_delivers_what_the_aggregator_booked_to_it():
    # every enrolled driver plugged at a V2G pile, a reward they take: the event delivers
    sc = v2gsim.load_scenario("distributed_community", {
        "time.horizon_days": 3, "sites.1.bidirectional_share": 1.0, "business_models.0.drivers.enrol_probability": 0.9,
        "business_models.0.discharge_only_if_profitable": False, "business_models.0.invitations.0.reward_cny_per_kwh": 20})
    r = v2gsim.run(sc, baseline=False)
    inv = r.extra["operator_requests"].iloc[0]
    assert inv["kind"] == "discharge_call" and inv["reward_cny_per_kwh"] == 20.0
    assert inv["delivered_kwh"] > 100.0
    # the aggregator counts its event from the vehicles' discharged energy, the table from the ledger
    assert inv["delivered_kwh"] == pytest.approx(r.kpis["distributed_event0_energy_kwh"], rel=1e-9)
    check_operators(r)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 95), st.integers(1, 48), st.booleans())
def test_a_window_holds_the_steps_that_start_in_it(first, n_steps, daily):
    times = pd.date_range("2026-07-06", periods=96 * 3, freq="15min")
    start = times[first]
    got = _windows(times, start, n_steps * 0.25, daily)
    want = [(a, min(a + n_steps, times.size)) for a in range(first, times.size, 96 if daily else times.size)]
    if daily and first + n_steps > 96:  # the previous day's window reaches into the first day
        want = [(0, first + n_steps - 96), *want]
    assert got == want
    for a, b in got:
        assert np.all(times[a:b] >= times[a]) and (b - a) <= n_steps


def test_sites_no_operator_owns_get_a_row_of_their_own():
    from helpers import scenario

    sc = scenario(business_models=[{"kind": "centralized", "sites": ["dc"]}], time__horizon_days=1)
    r = v2gsim.run(sc, baseline=False)
    t = r.extra["operators"].set_index("operator_id")
    assert list(t.index) == ["centralized", NO_OPERATOR]
    assert t.loc[NO_OPERATOR, "sites"] == "homes, office" and t.loc["centralized", "sites"] == "dc"
    # no business model runs those chargers, so nothing is drawn there: the row holds their
    # sessions and unmet energy, so that the operators' rows add up to the run's counters
    assert t.loc[NO_OPERATOR, "sessions"] > 0 and t.loc[NO_OPERATOR, "unmet_energy_kwh"] > 0
    assert not any(k.startswith(NO_OPERATOR) for k in r.kpis)
    check_operators(r)
