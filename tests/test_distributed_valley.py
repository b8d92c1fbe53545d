"""The distributed aggregator answers valley fills: charging invitations (v2gsim.strategies.distributed_valley)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_checks import check_ledger
from v2gsim.market.events import GridRequest, IssuedRequest
from v2gsim.model import V2GModel
from v2gsim.scenario.schema import Scenario
from v2gsim.strategies.base import FleetView, Observation, StrategyContext
from v2gsim.strategies.distributed import Distributed, DistributedConfig, DriverBehaviour
from v2gsim.strategies.distributed_valley import valley_answer_probability, valley_room_kwh

from helpers import v2g_fleet

ROOT = Path(__file__).resolve().parents[1]
COMMUNITY = yaml.safe_load((ROOT / "scenarios" / "distributed_community.yaml").read_text())




def _strategy(**cfg) -> Distributed:
    times = pd.date_range("2026-07-08 00:00", periods=96, freq="15min")
    config = DistributedConfig(drivers={"enrol_probability": 1.0, "smart_charging_share": 0.0}, **cfg)
    ctx = StrategyContext(("s",), times, 0.25, np.full(96, 0.65), np.full(96, 0.45), seed_seq=np.random.SeedSequence(7, spawn_key=(20, 0)),
                          operator_id="distributed")
    return Distributed(config, ctx)


def _fill(reward: float, visible: int = 40, window=(56, 60)) -> tuple:
    r = GridRequest(kind="valley_fill", start="2026-07-08T14:00", hours=1, p_kw=50, price_cny_per_kwh=reward)
    return (IssuedRequest(0, "fill", r, (window,), visible, {"distributed": 0}),)


def _power(strat: Distributed, f: FleetView, step: int, requests: tuple) -> np.ndarray:
    n = f.e_kwh.size
    obs = Observation(step, strat.context.times[step], 0.25, 0.65, 0.45, f, np.ones(n, bool), f.e_kwh < f.e_stop_kwh, requests=requests)
    d = strat.decide(obs)
    p = np.zeros(n)
    p[d.idx] = d.p_kw
    return p


def test_answer_probability_by_hand():
    d = DriverBehaviour()  # reward slope 0.6, SOC slope 4, reference margin 0.5
    # b0 = -1, 2 CNY/kWh, 0.3 of capacity of room: u = -1 + 1.2 + 4 (0.3 - 0.5) = -0.6
    p = valley_answer_probability(-1.0, d, 2.0, np.array([0.3, 0.0]))
    assert p[0] == pytest.approx(1 / (1 + np.exp(0.6)), abs=1e-12) and p[1] == 0.0  # no room: no yes
    # room: 10 kWh below full through 92 % charging losses, at most 20 kW for 0.25 h
    f = v2g_fleet(2, e_kwh=np.array([40.0, 49.0]))
    assert valley_room_kwh(f, np.arange(2), None, 0.25) == pytest.approx([5.0, 1.0 / 0.92])
    assert valley_room_kwh(v2g_fleet(1, e_stop_kwh=np.array([45.0])), np.arange(1), 0.9, 1.0) == pytest.approx([5.0 / 0.92])


@settings(max_examples=25, deadline=None)
@given(r1=st.floats(0, 20), dr=st.floats(0, 20), room=st.floats(0, 1))
def test_a_higher_reward_never_lowers_the_answer(r1, dr, room):
    d = DriverBehaviour()
    lo, hi = valley_answer_probability(-5.0, d, r1, np.array([room])), valley_answer_probability(-5.0, d, r1 + dr, np.array([room]))
    assert hi[0] >= lo[0] and 0.0 <= lo[0] <= 1.0


def test_accepting_drivers_wait_for_the_window_and_charge_in_it():
    strat = _strategy()
    n = 6
    # vehicles 0-3 stay past the window (step 90), 4 leaves inside it (step 58), 5 is full
    f = v2g_fleet(n, t_depart_est_step=np.array([90, 90, 90, 90, 58, 90]), e_kwh=np.array([40.0, 40, 40, 40, 40, 50]))
    req = _fill(30.0)  # a reward nearly every driver with room accepts
    # before the notice, every driver (none smart) charges at once: 20 kW
    assert _power(strat, f, 30, ()) == pytest.approx([20, 20, 20, 20, 20, 0])
    p = _power(strat, f, 44, req)
    ev = strat.vf_events[0]
    yes = ev["yes"]
    assert ev["invited"] == n and ev["accepted"] == int(yes.sum()) and yes[:5].all() and not yes[5]
    # after the notice the accepting drivers who stay past the window wait for it; the one leaving in it charges on
    assert p == pytest.approx([0, 0, 0, 0, 20, 0])
    # in the window they charge at full power: min(20 kW, 10 kWh / (0.92 x 0.25 h) = 43.5 kW)
    assert _power(strat, f, 56, req) == pytest.approx([20, 20, 20, 20, 20, 0])
    # expected energy: each one's answer probability times min(10 / 0.92, 20 kW x 1 h) kWh
    assert ev["expected_kwh"] == pytest.approx(float(np.sum(np.where(np.arange(n) < 5, 1.0, 0.0) * 10 / 0.92)), rel=0.01)


def test_top_up_past_the_full_point_in_the_window():
    strat = _strategy(valley_top_up_soc=0.9)
    # full points 40 and 45 kWh, the targets 45 (0.9 x 50)
    f = v2g_fleet(2, e_stop_kwh=np.array([40.0, 45.0]), e_kwh=np.array([44.0, 45.0]))
    req = _fill(30.0)
    _power(strat, f, 44, req)
    assert list(strat.vf_events[0]["yes"]) == [True, False]  # the second is at its target already: no room, no yes
    # up to 0.9 x 50 = 45 kWh: 1 kWh / (0.92 x 0.25 h) = 4.35 kW
    assert _power(strat, f, 56, req) == pytest.approx([1.0 / (0.92 * 0.25), 0.0])


def test_no_reward_no_room_no_yes():
    strat = _strategy()
    f = v2g_fleet(200, e_kwh=np.full(200, 50.0))  # everyone full: nothing to fill
    _power(strat, f, 44, _fill(30.0))
    assert strat.vf_events[0]["accepted"] == 0


# --------------------------------------------------------------------------- full runs


def _community(fill: dict | None, invitations: list | None = None, **bm) -> Scenario:
    d = copy.deepcopy(COMMUNITY)
    d["time"] = {"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 4, "warmup_days": 0}
    b = d["business_models"][0]
    b["invitations"] = invitations or []
    b["drivers"]["enrol_probability"] = 1.0
    b.update(bm)
    if fill is not None:
        d["grid_operator"] = {"baseline_days": 1, "requests": [fill]}
    return Scenario.model_validate(d)


FILL = {"id": "fill", "kind": "valley_fill", "start": "2026-07-08T20:00", "hours": 2, "p_kw": 300, "notice_h": 12, "price_cny_per_kwh": 10}


def _window_kwh(res, a="2026-07-08 20:00", b="2026-07-08 22:00") -> float:
    t = pd.to_datetime(res.system.index)
    return float(res.system.loc[(t >= a) & (t < b), "ev_charge_kw"].sum()) * res.dt_h


def test_a_valley_fill_raises_the_window_draw_and_pays_the_drivers():
    base = V2GModel(_community(None)).run()
    res = V2GModel(_community(FILL)).run()
    k = res.kpis
    assert _window_kwh(res) > _window_kwh(base) + 5.0  # 46.8 -> 60.6 kWh when written
    s = res.extra["grid_settlement"].iloc[0]
    assert s["operator_id"] == "distributed" and s["delivered_kwh"] > 0
    assert k["distributed_valley_drivers_accepting"] > 0 and k["distributed_valley_energy_kwh"] > 0
    # the drivers are paid the request's price per kWh they drew in the window, by the operator
    t = res.ledger
    vr = t[t["reason"].astype(str) == "valley_reward"]
    assert set(vr["payer"].astype(str)) == {"distributed"} and set(vr["payee"].astype(str)) == {"drivers"}
    assert float(vr["amount_cny"].sum()) == pytest.approx(10.0 * k["distributed_valley_energy_kwh"], rel=1e-9)
    assert float(vr["energy_kwh"].sum()) == pytest.approx(k["distributed_valley_energy_kwh"], rel=1e-9)
    assert float(res.vehicles["valley_reward_cny"].sum()) == pytest.approx(k["distributed_valley_reward_cny"], rel=1e-9)
    # the grid operator pays the operator against its baseline; money is conserved at every step
    paid = t[(t["reason"].astype(str) == "request_payment") & (t["payee"].astype(str) == "distributed")]
    assert float(paid["amount_cny"].sum()) == pytest.approx(s["paid_cny"])
    check_ledger(res)


def test_without_a_valley_fill_nothing_changes():
    res = V2GModel(_community(None)).run()
    assert not any("valley_invitations" in name for name in res.kpis)
    assert "valley_reward_cny" not in res.vehicles
    assert not (res.ledger["reason"].astype(str) == "valley_reward").any()


def test_valley_fill_answers_leave_the_discharge_answers_alone():
    # a discharge call first (its rank, the key of its answers' stream, is 0 in both runs), then a
    # valley fill announced after the discharge window (an earlier notice would hold charging and
    # so move the SOC the discharge answers see)
    call = {"id": "call", "kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 2, "notice_h": 2, "price_cny_per_kwh": 10}
    late = dict(FILL, start="2026-07-08T22:00", notice_h=1)
    a_sc, b_sc = _community(call), _community(call)
    b_sc.grid_operator.requests.append(b_sc.grid_operator.requests[0].model_validate(late))
    a, b = V2GModel(a_sc).run().kpis, V2GModel(b_sc).run().kpis
    assert b["distributed_valley_drivers_accepting"] > 0
    assert b["distributed_drivers_accepting"] == a["distributed_drivers_accepting"] > 0
    assert b["distributed_event_energy_kwh"] == pytest.approx(a["distributed_event_energy_kwh"], rel=1e-12)


def test_reward_sized_to_the_target_up_to_the_cap():
    n = 400
    f = v2g_fleet(n, e_kwh=np.full(n, 30.0))  # 20 kWh of room each, at most 20 kWh in 1 h at 20 kW
    def sized(e_kwh, cap):
        strat = _strategy()
        r = GridRequest(kind="valley_fill", start="2026-07-08T14:00", hours=1, p_kw=50, e_kwh=e_kwh, price_cny_per_kwh=1.0,
                        price_cap_cny_per_kwh=cap)
        _power(strat, f, 44, (IssuedRequest(0, "fill", r, ((56, 60),), 40, {"distributed": 0}),))
        return strat.vf_events[0]
    room = min(20.0 / 0.92, 20.0 * 1.0)  # at most the plug power over the hour
    ev = sized(1000.0, 30.0)
    # the lowest reward on the 0.25 grid whose expected energy reaches the target, the one below it short
    d, b0 = DriverBehaviour(), _strategy().b0
    exp = lambda r: float(valley_answer_probability(b0, d, r, np.full(n, 0.4)).sum() * room)  # noqa: E731
    assert exp(ev["reward"]) >= 1000.0 > exp(ev["reward"] - 0.25)
    assert ev["expected_kwh"] == pytest.approx(exp(ev["reward"]))
    # a target out of reach: the cap; none: the price
    assert sized(1e6, 30.0)["reward"] == 30.0
    assert sized(1000.0, 1.0)["reward"] == 1.0


def test_nobody_waits_more_than_a_day_for_a_window():
    strat = _strategy()
    times = pd.date_range("2026-07-08 00:00", periods=96 * 3, freq="15min")
    strat = Distributed(strat.config, StrategyContext(("s",), times, 0.25, np.full(288, 0.65), np.full(288, 0.45),
                                                      seed_seq=np.random.SeedSequence(7, spawn_key=(20, 0)), operator_id="distributed"))
    f = v2g_fleet(3, t_depart_est_step=np.full(3, 280))
    req = _fill(30.0, visible=0, window=(200, 204))  # visible at once, the window two days later
    p = _power(strat, f, 10, req)
    assert strat.vf_events[0]["yes"].all()
    assert p == pytest.approx([20, 20, 20])  # more than a day ahead: charging as usual
    assert _power(strat, f, 110, req) == pytest.approx([0, 0, 0])  # within the day before it: waiting
