"""The swap EMS's ``peak_aware`` refill (issue 14 item 5): spare packs refilled under each station's
peak so far, valley filling over the next 24 h's cheap steps, the switch back to the rule before."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import v2gsim
from v2gsim.agents.swap_station import SwapNetwork
from v2gsim.model import V2GModel

from test_battery_swap import DC_BEFORE, _bundled_swap, _swap_scenario


def _strategy():
    return V2GModel(_swap_scenario()).actors_of(SwapNetwork)[0].strategy


def _obs(e_kwh, station, n_stations=2):
    e = np.asarray(e_kwh, float)
    return SimpleNamespace(step=0, dt_h=0.25, n_stations=n_stations, slot_station=np.asarray(station, np.int64),
                           e_kwh=e, e_full_kwh=np.full(e.size, 100.0), eta_charge=np.ones(e.size))


def test_peak_aware_off_is_the_rule_before_bit_for_bit():
    # pinned from the code before peak_aware (the golden battery_swapping run of commit de84018, 2 days):
    # switched off, the EMS is that code
    r = V2GModel(_bundled_swap(2, DC_BEFORE, "business_models.0.peak_aware=false")).run()
    assert r.system["net_load_kw"].sum() == pytest.approx(195090.76159540785, rel=1e-12)
    assert r.system["swap_charge_kw"].sum() == pytest.approx(114692.34259009853, rel=1e-12)
    assert r.kpis["peak_load_kw"] == pytest.approx(2126.1039219456557, rel=1e-12)
    assert (r.kpis["swaps_served"], r.kpis["swap_drivers_left"]) == (647, 66)
    # and the reference keeps the rule before whatever the switch (reference_config turns it off)
    assert _bundled_swap(2).business_models[0].reference_config().peak_aware is False


def test_spare_refill_stays_under_the_peak_so_far_hand_computed():
    s = _strategy()
    n = s.request_soon.size
    # station 0: packs short 10 + 60 kWh (eta 1), 10 cheap hours ahead: flat rate 7 kW; peak so far
    # 30 kW; firm 5 kW -> 25 kW left for spare packs, the fullest (slot 0) first. Station 1: nothing
    # short, peak so far 50 kW -> its 20 kW pass.
    s.request_soon = np.zeros(n, bool)
    s.h_cheap_next_day = np.full(n, 10.0)
    s.peak_so_far_kw = np.array([30.0, 50.0, 0.0])
    obs = _obs([90.0, 40.0, 100.0], [0, 0, 1], 3)
    got = s._under_peak(obs, np.array([40.0, 40.0, 20.0]), np.array([5.0, 0.0, 0.0]), np.array([0, 1, 2]))
    np.testing.assert_allclose(got, [25.0, 0.0, 20.0])
    # a flat rate above the peak so far lifts the cap: 70 kWh over 1 h
    s.h_cheap_next_day = np.full(n, 1.0)
    got = s._under_peak(obs, np.array([40.0, 40.0, 20.0]), np.array([5.0, 0.0, 0.0]), np.array([0, 1, 2]))
    np.testing.assert_allclose(got, [40.0, 25.0, 20.0])  # cap 70 - firm 5 = 65
    # before a request window: the flat rate to the window's start (2 h: 35 kW), the peak so far
    # does not count (station 1, nothing short: no spare refill)
    s.request_soon = np.ones(n, bool)
    s.h_to_request = np.full(n, 2.0)
    got = s._under_peak(obs, np.array([40.0, 40.0, 20.0]), np.array([5.0, 0.0, 0.0]), np.array([0, 1, 2]))
    np.testing.assert_allclose(got, [30.0, 0.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.tuples(hs.integers(0, 2), hs.floats(0, 100), hs.floats(0, 200), hs.floats(0, 50)), min_size=1, max_size=12),
       hs.lists(hs.floats(0, 500), min_size=3, max_size=3), hs.floats(0.25, 24))
def test_spare_refill_never_raises_a_station_above_its_allowance(slots, peak, h_cheap):
    s = _STRAT
    n = s.request_soon.size
    s.request_soon = np.zeros(n, bool)
    s.h_cheap_next_day = np.full(n, h_cheap)
    s.peak_so_far_kw = np.asarray(peak, float)
    st = np.array([k for k, *_ in slots], np.int64)
    e = np.array([x for _, x, _, _ in slots])
    extra = np.array([x for *_, x, _ in slots])
    firm = np.array([x for *_, x in slots])
    obs = _obs(e, st, 3)
    order = np.lexsort((-e, st))
    got = s._under_peak(obs, extra, firm, order)
    assert (got >= 0).all() and (got <= extra + 1e-9).all()
    firm_st = np.bincount(st, weights=firm, minlength=3)
    flat = np.bincount(st, weights=100.0 - e, minlength=3) / h_cheap
    cap = np.maximum(np.maximum(peak, flat), firm_st)
    total = firm_st + np.bincount(st, weights=got, minlength=3)
    assert (total <= cap + 1e-6).all()
    # what fits under the allowance is granted in full
    fits = firm_st + np.bincount(st, weights=extra, minlength=3) <= cap - 1e-6
    np.testing.assert_allclose(np.bincount(st, weights=got, minlength=3)[fits], np.bincount(st, weights=extra, minlength=3)[fits])


_STRAT = _strategy()


def test_battery_swapping_no_more_drivers_leave_and_the_station_meters_peak_lower():
    """battery_swapping, 2 days: peak-aware, fewer drivers leave the queue (58 against 66), the
    stations' own peaks (what their demand meters bill) sum lower (2,247 against 2,290 kW), the
    feeder peak stays below the reference (2,170 against 2,293 kW; 2,126 before)."""
    # with the fast DC guns as they were then: since drivers unplug full cars there (v2gsim.population.idle)
    # the two-day stations' peaks sum 2,302 kW peak-aware against 2,272 without (a follow-up for the EMS)
    new = v2gsim.run(_bundled_swap(2, DC_BEFORE))
    old = v2gsim.run(_bundled_swap(2, DC_BEFORE, "business_models.0.peak_aware=false"))
    assert new.kpis["swap_drivers_left"] < old.kpis["swap_drivers_left"]

    def metered_kw(r):
        return float(r.extra["stations"].groupby("station_id", observed=True)["p_kw"].max().clip(lower=0).sum())

    assert metered_kw(new) < metered_kw(old)
    assert new.kpis["peak_load_kw"] <= new.kpis["reference_peak_kw"]
    assert new.kpis["reference_peak_kw"] == pytest.approx(old.kpis["reference_peak_kw"], rel=1e-12)


@pytest.mark.slow
def test_mixed_city_thursday_noon_rack_refill_spread():
    """mixed_city's week peak before peak_aware: Thursday 9 July 12:00, the swap station's rack at
    414 kW (discharged for price at 10:00-11:00, refilled when the price fell; 383 kW since full
    cars leave the public DC guns, v2gsim.population.idle). Peak-aware it keeps the packs the swaps
    need before the valley refill and spreads the rest: 146 kW (58 kW now)."""
    at = pd.Timestamp("2026-07-09 12:00")
    new = V2GModel(v2gsim.load_scenario("mixed_city", ["time.horizon_days=5"])).run().system
    old = V2GModel(v2gsim.load_scenario("mixed_city", ["time.horizon_days=5", "business_models.2.peak_aware=false"])).run().system
    assert old.loc[at, "swap_charge_kw"] > 350
    assert new.loc[at, "swap_charge_kw"] < 0.5 * old.loc[at, "swap_charge_kw"]


def test_swap_stations_pay_the_demand_charge_on_their_own_peaks():
    """With a two-part tariff each swap station is a metered customer: its operator pays the rate
    x the station's highest 15-min draw of the month x the month's share simulated, in the ledger
    as in the two_part KPIs, on top of its sites' (battery_swapping's operator owns its two sites)."""
    from v2gsim.market.bills import _site_power, demand_charge_cny, two_part_kpis

    r = v2gsim.run(_bundled_swap(2, "tariff.demand_charge_cny_per_kw_month=44"))
    led = r.ledger
    paid = led.loc[(led["payer"] == "battery_swap") & (led["reason"] == "demand_charge"), "amount_cny"].sum()
    st = r.extra["stations"].pivot_table(index="time", columns="station_id", values="p_kw", observed=False, aggfunc="sum")
    days = len(r.system) * 15 / 1440
    stations = 44.0 * float(st.clip(lower=0).max().sum()) * days / 31  # July; 15-min steps = 15-min windows
    sites = sum(demand_charge_cny(c, 44.0, step_min=15) for _, c in _site_power(r).items())
    assert stations > 0.5 * paid  # the stations' meters are most of it
    assert paid == pytest.approx(stations + sites, rel=1e-9)
    assert two_part_kpis(r)["demand_charge_cny"] == pytest.approx(paid, rel=1e-9)
