"""The swap operator answers valley fills and regulation (issue 16): its EMS draws a visible valley
fill's floor from packs that can take energy, holds regulation from its rack, the grid operator
meters the rack's regulation capacity, and the operator bids for both kinds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
