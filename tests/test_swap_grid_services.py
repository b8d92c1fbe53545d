"""The swap operator answers valley fills and regulation (issue 16): its EMS draws a visible valley
fill's floor from packs that can take energy, holds regulation from its rack, the grid operator
meters the rack's regulation capacity, and the operator bids for both kinds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from helpers import scenario
from ledger_checks import check_ledger
from v2gsim.agents.swap_station import SwapNetwork
from v2gsim.model import V2GModel
from v2gsim.physics.battery import charge_to

WINDOW = ("2026-07-06 10:00", "2026-07-06 12:00")


def _small(requests=None, **bm):
    """20 NIO ride-hailing cars and one 10-pack NIO Gen 3 station (bidirectional, 60 kW slots,
    500 kW connection), 5 warm-up days so the grid operator has a baseline."""
    pop = [{"archetype": "ride_hailing", "count": 20, "vehicle": "nio_75_swappable", "home_site": "homes", "public_site": "dc",
            "swap_below_soc": 0.4}]
    kw = dict(population=pop, tariff={"preset": "guangdong"}, feeder={"transformer_kva": 2000, "households": 40},
              time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 1, "warmup_days": 5},
              business_models=[{"kind": "battery_swap", "stations": [{"id": "s1", "preset": "nio_gen3", "packs": 10}], **bm}])
    if requests is not None:
        kw["grid_operator"] = {"requests": requests}
    return scenario(**kw)


def _run(requests=None, **bm):
    m = V2GModel(_small(requests, **bm))
    return m, m.run()


def _in(st, a, b):
    t = pd.to_datetime(st["time"])
    return st[(t >= pd.Timestamp(a)) & (t < pd.Timestamp(b))]


def test_a_valley_fill_is_drawn_from_the_rack_and_shifts_its_refill():
    fill = [{"id": "fill", "kind": "valley_fill", "start": "2026-07-06T10:00", "hours": 2, "p_kw": 100,
             "price_cny_per_kwh": 0.6, "to": ["battery_swap"]}]
    _, plain = _run()
    m = V2GModel(_small(fill))
    net = m.actors_of(SwapNetwork)[0]
    # what the rack's packs could take each step (every slot at full power under its CC-CV taper,
    # the physics' rule), read from the EMS's own observation as the run goes (an observer, the plan is untouched)
    ems, room = net.strategy.plan_packs, {}

    def observed(obs):
        p_b = obs.slot_p_max_kw * obs.eta_charge
        e1 = charge_to(obs.e_kwh, obs.capacity_kwh, obs.e_knee_kwh, obs.e_full_kwh, p_b, p_b, obs.dt_h)
        room[obs.step] = float(((e1 - obs.e_kwh) / (obs.eta_charge * obs.dt_h)).sum())
        return ems(obs)

    net.strategy.plan_packs = observed
    r = m.run()
    w, w0 = _in(r.extra["stations"], *WINDOW), _in(plain.extra["stations"], *WINDOW)
    draw = w["p_kw"].to_numpy()
    clock = pd.DatetimeIndex(m.clock)
    room_kw = np.array([room[int(clock.get_loc(t))] for t in pd.to_datetime(w["time"])])
    # each step: at least the floor, or all the rack could take (1 % for the taper at a lower power)
    assert np.all(draw >= np.minimum(100.0, room_kw) * 0.99 - 1e-6), (draw, room_kw)
    assert draw[0] >= 100.0 - 1e-6 and room_kw[0] > 100.0  # the rack had room at the window's start
    assert w["charge_kw"].sum() > w0["charge_kw"].sum() + 4 * 100.0  # well over an hour at the floor more than without
    # refill moved, not added: less charging after the window than without the request
    after, after0 = _in(r.extra["stations"], WINDOW[1], "2026-07-07"), _in(plain.extra["stations"], WINDOW[1], "2026-07-07")
    assert after["charge_kw"].sum() < after0["charge_kw"].sum()
    assert w["discharge_kw"].sum() == 0.0  # nothing sold for price under the floor
    s = r.extra["grid_settlement"].iloc[0]
    assert s["operator_id"] == "battery_swap" and s["delivered_kwh"] > 0 and s["paid_cny"] > 0
    check_ledger(r)
    # outside the window the run is the one without the request until the window starts
    before, before0 = _in(r.extra["stations"], "2026-07-06", WINDOW[0]), _in(plain.extra["stations"], "2026-07-06", WINDOW[0])
    np.testing.assert_array_equal(before["p_kw"].to_numpy(), before0["p_kw"].to_numpy())


def test_the_rack_regulation_meter_by_hand():
    m = V2GModel(_small())
    net = m.actors_of(SwapNetwork)[0]
    cap, _, e_full, eta_c, eta_d, _ = net._slot_static()
    assert cap.size == 10 and np.allclose(net.slot_p_max_kw, 60.0) and net.st_grid_limit_kw[0] == 500.0
    # every pack at 45 kWh (60 %), idle: each can feed 60 kW for 15 min above the 30 % floor (22.5 kWh x eta_d / 0.25 h
    # > 60) and draw 60 kW (room to full / eta_c / 0.25 h > 60): 600 kW both ways, within the 500 kW connection
    net.packs.e_kwh[net.slot_pack] = 45.0
    net._p_slot_kw = np.zeros(10)
    net.p_kw = np.zeros(1)
    up, down = net.regulation_kw(0.25)
    assert (up[0], down[0]) == pytest.approx((500.0, 500.0))
    # charging 100 kW (10 per slot): up 100 + 600 capped at 100 + 500; down 600 - 100 capped at 500 - 100
    net._p_slot_kw = np.full(10, 10.0)
    net.p_kw = np.array([100.0])
    up, down = net.regulation_kw(0.25)
    assert (up[0], down[0]) == pytest.approx((600.0, 400.0))
    # packs 1 kWh above the floor: each feeds (1 x eta_d / 0.25 h) kW for 15 min
    net.packs.e_kwh[net.slot_pack] = 0.3 * cap + 1.0
    net._p_slot_kw = np.zeros(10)
    net.p_kw = np.zeros(1)
    up, _ = net.regulation_kw(0.25)
    assert up[0] == pytest.approx(float((eta_d / 0.25).sum()))
    # a full rack cannot draw more; a unidirectional station holds nothing
    net.packs.e_kwh[net.slot_pack] = e_full
    assert net.regulation_kw(0.25)[1][0] == pytest.approx(0.0)
    net.st_bidirectional[:] = False
    assert net.regulation_kw(0.25)[0][0] == 0.0


@pytest.mark.parametrize("p_kw", [100.0, 400.0])
def test_regulation_held_by_the_rack_is_metered_and_paid(p_kw):
    reg = [{"id": "fm", "kind": "regulation", "start": "2026-07-06T10:00", "hours": 2, "p_kw": p_kw,
            "capacity_price_cny_per_kw": 1.0, "mileage_price_cny_per_mw": 10.0, "to": ["battery_swap"]}]
    _, r = _run(reg)
    s = r.extra["grid_settlement"].iloc[0]
    if p_kw == 100.0:  # 10 packs at 60 kW both ways around their refill: the rack holds 100 kW
        assert s["availability"] == pytest.approx(1.0)
        assert s["capacity_cny"] == pytest.approx(100.0)  # 1 CNY/kW x 100 kW x 1.0
        assert s["mileage_mw"] == pytest.approx(5 * 0.1 * 2)  # 5 MW per MW-h x 0.1 MW x 2 h
        assert s["mileage_paid_cny"] == pytest.approx(10.0)
    else:  # the ready packs are nearly full: the rack cannot draw 400 kW more for 15 min
        assert 0.0 < s["availability"] < 1.0
    led = r.ledger
    for reason, col in (("capacity_payment", "capacity_cny"), ("mileage_payment", "mileage_paid_cny")):
        got = led[led["reason"].astype(str) == reason]
        assert got["amount_cny"].sum() == pytest.approx(s[col])
    check_ledger(r)


def _issued(kind, **kw):
    from v2gsim.market.events import GridRequest, IssuedRequest

    r = GridRequest(kind=kind, start="2026-07-06T10:00", hours=2, p_kw=100, to=["battery_swap"], **kw)
    return IssuedRequest(0, "x", r, ((500, 508),), 0, {"battery_swap": 0})


def _bid_obs(m):
    from types import SimpleNamespace

    return SimpleNamespace(step=480, time=m.clock[480], dt_h=0.25, price_cny_per_kwh=0.5, v2g_price_cny_per_kwh=0.4,
                           feeder_headroom_kw=float("inf"))


def test_the_swap_bids_by_hand():
    m = V2GModel(_small())
    net = m.actors_of(SwapNetwork)[0]
    s = net.strategy
    cap, _, e_full, _, _, _ = net._slot_static()
    net.packs.e_kwh[net.slot_pack] = 45.0
    # regulation: every pack feeds and draws 60 kW for 15 min: 600 kW each way, the 500 kW connection binds;
    # price: half the 0.1 CNY/kWh round-trip wear per kWh through the pack x 1000 / 5 MW per MW-h = 10 CNY/MW
    b = s.bid(_issued("regulation", capacity_price_cny_per_kw=1.0, mileage_price_cny_per_mw=15.0), _bid_obs(m))
    assert (b.operator_id, b.p_kw, b.price_cny_per_kwh) == ("battery_swap", pytest.approx(500.0), pytest.approx(10.0))
    # valley fill: the idle packs (beyond those the window's forecast swaps, the queue and the 2 reserve keep)
    # offer their room over the 2 h window, at most 60 kW each. Forecast 0.5 swaps an hour: 3 h x 0.5 -> 2 packs
    # + the 2 reserve kept, the 6 emptiest idle
    s.forecast[:] = 0.5
    so, rank, keep, hours = s._bid_rack(_issued("valley_fill"), _bid_obs(m))
    assert hours == 2.0 and keep[0] == 4
    idle = rank >= keep[so.slot_station]
    room_kw = np.minimum(60.0, (e_full - 45.0) / so.eta_charge / 2.0)
    b = s.bid(_issued("valley_fill", price_cny_per_kwh=0.5), _bid_obs(m))
    assert b.p_kw == pytest.approx(min(float(room_kw[idle].sum()), 500.0)) and idle.sum() == 6
    # price: the window's mean price less the day's cheapest from its start, plus the wear of a grid
    # kWh charged: eta_c battery kWh in, half their 0.1 CNY/kWh round trip (0.046, not 0.05)
    prices = np.asarray(s.context.price_cny_per_kwh)
    assert b.price_cny_per_kwh == pytest.approx(max(prices[500:508].mean() - prices[500:596].min(), 0.0) + 0.05 * so.eta_charge.mean())
    assert so.eta_charge.min() == so.eta_charge.max() == pytest.approx(0.92)
    # a full rack offers no valley fill and no room to draw: no regulation
    net.packs.e_kwh[net.slot_pack] = e_full
    assert s.bid(_issued("valley_fill", price_cny_per_kwh=0.5), _bid_obs(m)).p_kw == pytest.approx(0.0)
    assert s.bid(_issued("regulation", capacity_price_cny_per_kw=1.0), _bid_obs(m)).p_kw == pytest.approx(0.0)


def _rack_obs(e):
    """One bidirectional station, 4 slots of 60 kW, 100 kWh packs full at 100 (no taper), lossless, 500 kW."""
    from types import SimpleNamespace

    e = np.asarray(e, float)
    n = e.size
    return SimpleNamespace(slot_station=np.zeros(n, np.int64), n_stations=1, dt_h=0.25, e_kwh=e, st_grid_limit_kw=np.array([500.0]),
                           slot_p_max_kw=np.full(n, 60.0), e_full_kwh=np.full(n, 100.0), capacity_kwh=np.full(n, 100.0),
                           eta_charge=np.ones(n), eta_discharge=np.ones(n), st_bidirectional=np.array([True]), e_knee_kwh=None)


def test_the_ems_band_for_regulation_and_floor_for_valley_fill_by_hand():
    s = V2GModel(_small()).actors_of(SwapNetwork)[0].strategy
    e = np.array([40.0, 40.0, 95.0, 95.0])
    obs = _rack_obs(e)
    order = np.lexsort((-e, obs.slot_station))  # fullest first: 2, 3, 0, 1
    reserved = np.array([False, False, True, True])
    urgent = np.zeros(4, bool)
    # regulation 100 kW, 15 min: feed above the 30 kWh floor [40, 40, 60, 60] = 200; draw [60, 60, 20, 20] = 160.
    # charging 120 kW leaves 40 to draw more: cut to 60 (the band is -100..60), the emptiest idle pack first
    got = s._grid_service(obs, np.array([60.0, 60.0, 0.0, 0.0]), urgent, reserved, order, 0.0, 100.0, 0.25)
    np.testing.assert_allclose(got, [60.0, 0.0, 0.0, 0.0])
    # urgent packs are never cut: the rack then holds less
    got = s._grid_service(obs, np.array([60.0, 60.0, 0.0, 0.0]), np.ones(4, bool), reserved, order, 0.0, 100.0, 0.25)
    np.testing.assert_allclose(got, [60.0, 60.0, 0.0, 0.0])
    # packs 1 kWh above the floor feed 4 kW each (16): the rack charges 84 kW so that it can drop by 100
    low = np.full(4, 31.0)
    got = s._grid_service(_rack_obs(low), np.zeros(4), urgent, np.zeros(4, bool), np.lexsort((-low, np.zeros(4))), 0.0, 100.0, 0.25)
    np.testing.assert_allclose(got, [60.0, 24.0, 0.0, 0.0])
    # valley fill 150 kW: the idle packs first (60 + 60), then the reserved ones (20, their room, + 10)
    got = s._grid_service(obs, np.zeros(4), urgent, reserved, order, 150.0, 0.0, 0.25)
    np.testing.assert_allclose(got, [60.0, 60.0, 20.0, 10.0])
    # a floor the rack cannot take: all it can (160 < 200); a floor already drawn: unchanged
    np.testing.assert_allclose(s._grid_service(obs, np.zeros(4), urgent, reserved, order, 200.0, 0.0, 0.25), [60.0, 60.0, 20.0, 20.0])
    np.testing.assert_allclose(s._grid_service(obs, np.array([60.0, 60, 20, 20]), urgent, reserved, order, 100.0, 0.0, 0.25),
                               [60.0, 60.0, 20.0, 20.0])


_STRAT = None


@settings(max_examples=80, deadline=None)
@given(hs.lists(hs.tuples(hs.floats(30, 100), hs.floats(0, 1), hs.booleans(), hs.booleans()), min_size=1, max_size=8),
       hs.floats(0, 400), hs.floats(0, 300), hs.floats(50, 500))
def test_the_ems_service_stays_in_bounds(slots, valley_kw, reg_kw, limit_kw):
    global _STRAT
    if _STRAT is None:
        _STRAT = V2GModel(_small()).actors_of(SwapNetwork)[0].strategy
    e = np.array([x for x, *_ in slots])
    obs = _rack_obs(e)
    obs.st_grid_limit_kw = np.array([limit_kw])
    draw_max = np.minimum(60.0, (100.0 - e) / 0.25)
    p = np.array([f for _, f, _, _ in slots]) * draw_max  # a plan each pack can take
    reserved = np.array([r for *_, r, _ in slots])
    urgent = np.array([u for *_, u in slots]) & reserved
    order = np.lexsort((-e, obs.slot_station))
    got = _STRAT._grid_service(obs, p, urgent, reserved, order, valley_kw, reg_kw, 0.25)
    assert np.all(got >= -1e-9) and np.all(got <= np.maximum(p, draw_max) + 1e-9)  # never past a pack's room
    assert np.all(got[urgent] >= p[urgent] - 1e-12)  # urgent packs are never cut
    if reg_kw == 0:
        # the floor: met, or every pack at its room, or the station limit reached (added charging within it)
        assert got.sum() <= max(p.sum(), limit_kw) + 1e-6
        assert got.sum() >= min(valley_kw, draw_max.sum(), max(p.sum(), limit_kw)) - 1e-6
