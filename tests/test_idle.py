"""Full cars at public chargers leave after a grace period, or pay an idle fee (v2gsim.population.idle).

Hand cases replace the sampled days with events written here (cars arriving at one DC gun), so
the timing is checked step by step; a hypothesis property checks the port, queue and energy
invariants on sampled days with the rule's settings drawn.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.population.fleet import PUBLIC
from v2gsim.population.mobility import ARR_KEYS, DEP_KEYS, DayEvents
from v2gsim.scenario.schema import Scenario

from helpers import BASE, scenario

DC = 1  # the gun's site index in _model


def _raw(n: int = 2, wait_min: float = 600.0, **dc) -> dict:
    return {
        "name": "idle", "seed": 3,
        "time": {"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 1, "warmup_days": 0},
        "feeder": {"transformer_kva": 200, "households": 10},
        "tariff": {"flat_cny_per_kwh": 0.5},
        "sites": [{"id": "homes", "kind": "home", "p_max_kw": 7}, {"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 1, **dc}],
        "population": [{"archetype": "private_commuter", "count": n, "vehicle": "byd_dolphin_44", "home_site": "homes",
                        "home_charger_share": 0.0, "public_site": "dc", "max_charger_wait_min": wait_min}],
        "business_models": [{"kind": "uncontrolled"}],
    }


class _Arrivals:
    """A mobility source of day 0 only: no departures, arrivals (step, vehicle) at the DC gun."""

    def __init__(self, arrs):
        self.arrs = arrs

    def day(self, d):
        dep = {k: np.asarray([], t) for k, t in DEP_KEYS.items()}
        rows = self.arrs if d == 0 else []
        arr = {"step": [s for s, _ in rows], "vehicle": [v for _, v in rows], "loc": [PUBLIC] * len(rows), "site": [DC] * len(rows),
               "trip_kwh": [0.0] * len(rows), "km": [0.0] * len(rows), "e_set_kwh": [math.nan] * len(rows),
               "p_max_kw": [math.inf] * len(rows), "depart_est_step": [95] * len(rows), "next_trip_kwh": [0.0] * len(rows)}
        return DayEvents.build(d * 96, 96, dep, {k: np.asarray(x, ARR_KEYS[k]) for k, x in arr.items()})


def _model(arrs, e0_kwh, n=2, **dc) -> V2GModel:
    m = V2GModel(Scenario.model_validate(_raw(n, **dc)))
    m.sources = [_Arrivals(arrs)]
    m.fleet.e_kwh[:] = e0_kwh
    m.fleet.below_stop[:] = m.fleet.e_kwh < m.fleet.e_stop_kwh - 1e-9
    return m


def _trace(m):
    """Step the whole day; per step (after it): car 0 and car 1 plugged, car 0's energy."""
    f = m.fleet
    rows = []
    for _ in range(m.n_clock):
        m.step()
        rows.append((bool(f.plugged[0]), bool(f.plugged[1]) if f.n > 1 else False, float(f.e_kwh[0])))
    return rows


def _done_step(m, rows):
    """The first step at whose start car 0 holds its target (the physics of the step before filled it)."""
    stop = m.fleet.e_stop_kwh[0]
    return next(s for s, (_, _, e) in enumerate(rows) if e >= stop - 1e-6) + 1


@pytest.mark.parametrize("grace_min", [0.0, 15.0, 30.0])
def test_second_car_charges_when_the_first_is_full_plus_grace_not_next_morning(grace_min):
    m = _model([(1, 0), (2, 1)], 20.0, grace_min=grace_min)
    f = m.fleet
    rows = _trace(m)
    d = _done_step(m, rows)
    leave = d + int(grace_min // 15)
    assert rows[1] == (True, False, rows[1][2])  # car 0 took the gun; car 1 queued behind it
    assert all(r[0] for r in rows[1:leave]) and not any(r[1] for r in rows[:leave])
    assert not rows[leave][0] and rows[leave][1]  # at leave car 0 unplugged and car 1 took the gun at once
    assert f.location[0] == PUBLIC and not f.plugged[0] and f.n_departures[0] == 0  # parked, unplugged, until its next trip
    assert f.e_kwh[0] == pytest.approx(rows[d - 1][2])  # it charges no more
    assert f.queue_wait_min[1] == (leave - 2) * 15.0 and f.queue_left[1] == 0
    assert f.n_sessions[0] == 1 and f.unmet_kwh[0] == pytest.approx(0.0, abs=1e-6)
    assert m.idle.n_left >= 1 and m.site_occupied[DC] <= 1


def test_without_the_rule_the_full_car_holds_the_gun_and_the_second_gives_up():
    # the old behaviour, kept for public AC sites and sites that turn the rule off
    m = _model([(1, 0), (2, 1)], 20.0, leave_when_done=False)
    rows = _trace(m)
    assert all(r[0] for r in rows[1:]) and not any(r[1] for r in rows)
    assert m.fleet.queue_left[1] == 1 and m.fleet.queue_wait_min[1] == 600.0
    assert m.idle is None  # no site has a rule: the engine builds none


def test_a_queue_of_six_drains_behind_one_gun():
    n = 6
    m = _model([(1, v) for v in range(n)], 30.0, n=n, grace_min=15.0)
    f = m.fleet
    for _ in range(m.n_clock):
        m.step()
        assert m.site_occupied[DC] == int((f.plugged & (f.site == DC)).sum()) <= 1
    assert m.queues.n_queued == 0 and f.queue_left.sum() == 0  # every driver was served, none gave up
    assert (f.e_kwh >= f.e_stop_kwh - 1e-6).all()  # and every car is full
    assert m.idle.n_left >= n - 1


def test_public_ac_keeps_the_old_rule_by_default_and_v2g_stations_too():
    raw = _raw()
    raw["sites"] += [{"id": "ac", "kind": "public", "p_max_kw": 7, "chargers": 2},
                     {"id": "v2g", "kind": "public", "p_max_kw": 60, "chargers": 2, "bidirectional_share": 1.0},
                     {"id": "work", "kind": "work", "p_max_kw": 60, "chargers": 2}]
    sc = Scenario.model_validate(raw)
    assert [s.leaves_when_done for s in sc.sites] == [False, True, False, False, False]


def test_idle_fee_after_the_grace_period_with_its_cap_posted_to_the_ledger():
    fee, grace = 1.5, 15.0
    m = _model([(1, 0)], 20.0, n=1, leave_when_done=False, grace_min=grace, idle_fee_cny_per_min=fee)
    rows = _trace(m)
    d = _done_step(m, rows)
    paid_steps = m.n_clock - (d + 1)  # past the grace period from step d + 1 to the last step
    assert m.idle.fee_cny == pytest.approx(paid_steps * 15 * fee)
    assert m.idle.idle_min == paid_steps * 15
    t = m.ledger.table(m.times)
    booked = t[t["reason"].astype(str) == "idle_fee"]
    assert set(booked["payer"].astype(str)) == {"drivers"} and set(booked["payee"].astype(str)) == {"uncontrolled"}
    assert booked["amount_cny"].sum() == pytest.approx(m.idle.fee_cny) and booked["energy_kwh"].sum() == 0.0
    # with a cap (NIO's 50 CNY a session) the fee stops there
    capped = _model([(1, 0)], 20.0, n=1, leave_when_done=False, grace_min=grace, idle_fee_cny_per_min=fee, idle_fee_cap_cny=50.0)
    _trace(capped)
    assert capped.idle.fee_cny == pytest.approx(min(50.0, paid_steps * 15 * fee))
    assert capped.recording()[0].kpis["idle_fee_cny"] == pytest.approx(capped.idle.fee_cny)


def test_drivers_who_ignore_the_rule_stay_and_pay():
    m = _model([(1, 0), (2, 1)], 20.0, leave_share=0.0, idle_fee_cny_per_min=1.0)
    rows = _trace(m)
    assert all(r[0] for r in rows[1:]) and m.idle.n_left == 0 and m.idle.fee_cny > 0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grace=st.sampled_from([0.0, 15.0, 45.0, 120.0]), share=st.floats(0.0, 1.0), fee=st.sampled_from([0.0, 0.5, 2.0]),
       cap=st.sampled_from([None, 10.0]), dc=st.integers(1, 3), km_scale=st.floats(0.5, 4.0), seed=st.integers(0, 50))
def test_property_ports_queues_and_energy_hold_with_the_rule(grace, share, fee, cap, dc, km_scale, seed):
    sc = scenario(sites__2={**BASE["sites"][2], "chargers": dc, "grace_min": grace, "leave_share": share, "idle_fee_cny_per_min": fee,
                            "idle_fee_cap_cny": cap},
                  population__0__daily_km_scale=km_scale, population__0__home_charger_share=0.3, seed=seed)
    m = V2GModel(sc)
    f = m.fleet
    e_start = f.e_kwh.copy()
    rule = m.idle
    for _ in range(m.n_clock):
        m.step()
        assert (f.e_kwh >= -1e-9).all()
        shared = ~m.site_private
        occupied = np.bincount(f.site[f.plugged], minlength=m.n_sites)
        assert (m.site_occupied[shared] == occupied[shared]).all() and (m.site_occupied <= m.site_ports).all()
        assert (m.queues.length == np.bincount(m.queues.site[m.queues.site >= 0], minlength=m.n_sites)).all()
        assert not (f.plugged & (m.queues.site >= 0)).any()
        # the rule's mask is exactly the cars plugged at the gun
        assert (rule.at == (f.plugged & (f.site == 2))).all()
        assert (f.site[~f.plugged] == -1).all()
        assert (rule.fee_session <= (cap if cap is not None else np.inf) + 1e-9).all()
    balance = f.e_charged_kwh - f.e_discharged_kwh - f.e_loss_kwh - f.e_driven_kwh
    np.testing.assert_allclose(f.e_kwh - e_start, balance, atol=1e-9)
    assert f.stranded_trips.sum() == 0
    if fee == 0.0:
        assert rule.fee_cny == 0.0
    if share == 0.0:
        assert rule.n_left == 0


@pytest.mark.parametrize("site, path, words", [
    ({"id": "homes", "kind": "home", "p_max_kw": 7, "leave_when_done": True}, "sites[0].leave_when_done", "public"),
    ({"id": "homes", "kind": "home", "p_max_kw": 7, "idle_fee_cny_per_min": 1.0}, "sites[0].idle_fee_cny_per_min", "public"),
    ({"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 2, "grace_min": -5}, "sites[0].grace_min", "0"),
    ({"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 2, "leave_share": 1.5}, "sites[0].leave_share", "1"),
    ({"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 2, "idle_fee_cny_per_min": -1}, "sites[0].idle_fee_cny_per_min", "0"),
    ({"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 2, "idle_fee_cap_cny": 0}, "sites[0].idle_fee_cap_cny", "0"),
])
def test_bad_values_name_the_yaml_path(site, path, words):
    from v2gsim.scenario import loader, validate_scenario

    raw = _raw()
    raw["sites"] = [site] + [s for s in raw["sites"] if s["id"] != site["id"]]
    with pytest.raises(ScenarioError) as e:
        validate_scenario(raw, loader.LineMap())
    hits = [p for p in e.value.problems if p.path == path]
    assert hits, [p.path for p in e.value.problems]
    assert words in (hits[0].message + " " + (hits[0].hint or ""))


def test_default_grace_and_the_operator_rules_match_the_source():
    # 扉旅汽车 2025-01-23 [B]: Li Auto 15 min free then 2 CNY/min, "120 CNY an hour", cap 200 a
    # session; XPeng 1 CNY/min after 30 min, cap 100; NIO 0.5 CNY/min after 15 min, cap 50;
    # Tesla 3.20 or 6.40 CNY/min, no cap
    from v2gsim.population.idle import OPERATOR_RULES
    from v2gsim.scenario.schema import Site

    grace, fee, cap = OPERATOR_RULES["li_auto"]
    assert fee * 60 == 120.0 and grace == 15.0 and cap == 200.0
    assert OPERATOR_RULES["xpeng"] == (30.0, 1.0, 100.0) and OPERATOR_RULES["nio"] == (15.0, 0.5, 50.0)
    assert OPERATOR_RULES["tesla_busy"][1] == 2 * OPERATOR_RULES["tesla"][1] == 6.4 and OPERATOR_RULES["tesla"][2] is None
    site = Site(id="dc", kind="public", p_max_kw=60, chargers=1)
    assert site.grace_min == OPERATOR_RULES["nio"][0] == OPERATOR_RULES["li_auto"][0]
    assert site.idle_fee_cny_per_min == 0.0 and site.leaves_when_done


def test_the_docs_example_validates_with_the_rules_it_states():
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[1] / "docs" / "mobility.md").read_text()
    block = text.split("## Full cars leave public chargers", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    raw = _raw()
    raw["sites"] = [raw["sites"][0], *yaml.safe_load(block)["sites"]]
    raw["population"][0]["public_site"] = "gate_dc"
    sc = Scenario.model_validate(raw)
    rules = {s.id: (s.leaves_when_done, s.grace_min, s.idle_fee_cny_per_min, s.idle_fee_cap_cny) for s in sc.sites}
    assert rules["gate_dc"] == (True, 15.0, 0.0, None)
    assert rules["mall_ac"][0] is False
    assert rules["hub_dc"] == (False, 15.0, 0.5, 50.0)
    V2GModel(sc)  # and builds


def test_replayed_sessions_keep_their_recorded_plug_out(tmp_path):
    # two replayed sessions at one public DC gun: the first (5 kWh) is full within the hour but
    # its recorded departure is 22:00, so the second, arriving at 19:30, still leaves the queue
    # after its 30 minutes, turned away, as the data says
    import textwrap

    import v2gsim
    from test_sessions import SCENARIO, write

    sc_text = SCENARIO.replace("{id: fast, kind: public, p_max_kw: 11, chargers: 1}", "{id: fast, kind: public, p_max_kw: 60, chargers: 1}")
    assert sc_text != SCENARIO
    csv = textwrap.dedent("""\
        arrival,departure,energy_kwh,site_id
        2026-07-06 19:00,2026-07-06 22:00,5,fast
        2026-07-06 19:30,2026-07-06 21:00,5,fast
        """)
    sc = v2gsim.load_scenario(write(tmp_path, scenario=sc_text, csv=csv))
    m = V2GModel(sc)
    assert m.idle is not None and sc.sites[1].leaves_when_done
    for _ in range(m.n_clock):
        m.step()
        assert not m.idle.at.any()
    assert m.fleet.sessions_turned_away.tolist() == [0, 1] and m.idle.n_left == 0


def test_a_car_discharged_below_its_target_starts_its_grace_period_again():
    # the rule alone over a two-car fleet: car 0 full at step 0, pulled below its target (V2G) at
    # step 1, full again at step 2: it leaves at step 4 (30 min after step 2), not step 2
    from types import SimpleNamespace

    from v2gsim.population.idle import IdleRule
    from v2gsim.scenario.schema import Site

    sites = [Site(id="dc", kind="public", p_max_kw=60, chargers=2, grace_min=30)]
    f = SimpleNamespace(n=2, below_stop=np.array([False, True]), site=np.array([0, 0]))
    rule = IdleRule(f, sites, 15, 0, np.zeros(2), np.ones(2, bool), np.zeros(2, np.int8), np.array([-1]), [])
    rule.plugged(np.arange(2), np.zeros(2, np.int64))
    got = {}
    for step, below in enumerate([False, True, False, False, False]):
        f.below_stop[0] = below
        got[step] = rule.due(step).tolist()
    assert got == {0: [], 1: [], 2: [], 3: [], 4: [0]} and rule.n_left == 1


class _ScanRule:
    """The rule's pass as first written, for the test below: every step a scan of the whole fleet
    for done cars at rule sites, the grace test as minutes every step, and the departures and the
    rule's done cars closing their sessions in two unplug calls."""

    def init(self, rule):
        rule.ref_since = np.full(rule.fleet.n, -1, np.int64)
        rule.ref_seen = np.full(rule.fleet.n, -2, np.int64)

    @staticmethod
    def plugged(rule, v, site):
        type(rule).plugged(rule, v, site)
        rule.ref_seen[v] = -2

    @staticmethod
    def due(rule, step):
        f = rule.fleet
        c = np.flatnonzero(rule.at & ~f.below_stop)
        c = c[rule.held[c] == 0]
        new = rule.ref_seen[c] != step - 1
        rule.ref_since[c[new]] = step
        rule.ref_seen[c] = step
        site = f.site[c]
        past = (step - rule.ref_since[c]) * rule.step_min >= rule.grace_min[site] - 1e-9
        c, site = c[past], site[past]
        go = rule.leave[site] & (rule.comply_u[c] < rule.share[site])
        stay, s_stay = c[~go], site[~go]
        if stay.size and step >= rule.n_warmup:
            rule.idle_min += stay.size * rule.step_min
            pay = np.minimum(rule.fee[s_stay] * rule.step_min, np.maximum(rule.cap[s_stay] - rule.fee_session[stay], 0.0))
            rule.fee_session[stay] += pay
            rule.fee_cny += float(pay.sum())
            rule._fee_by_payee += np.bincount(rule.site_payee[s_stay], weights=pay, minlength=len(rule.payees))
        if step >= rule.n_warmup:
            rule.n_left += go.sum()
        return c[go]


@pytest.mark.parametrize("rule", [{"leave_share": 1.0}, {"leave_share": 0.5, "grace_min": 30, "idle_fee_cny_per_min": 0.5, "idle_fee_cap_cny": 10}])
def test_the_compact_list_and_the_shared_unplug_call_change_nothing(rule):
    """The rule's pass reads a compact list of the cars at rule sites, tests the grace period in
    whole steps, and its done cars close their sessions in the departures' unplug call
    (population/idle.py, model._leave): against the pass as first written (a scan of the fleet,
    minutes, a call of their own) every table of the run is the same to the last bit, on a busy
    gun with a queue, drivers who stay and pay, and a cap."""
    import pandas as pd

    sc = scenario(sites__2={**BASE["sites"][2], "chargers": 3, **rule}, population__0__count=60, population__0__daily_km_scale=3.0,
                  population__0__home_charger_share=0.2, time__horizon_days=3, seed=5)
    fast, ref = V2GModel(sc), V2GModel(sc)
    scan = _ScanRule()
    scan.init(ref.idle)
    ref.idle.plugged = lambda v, site: scan.plugged(ref.idle, v, site)
    ref.idle.due = lambda step: scan.due(ref.idle, step)
    leave = ref._leave
    ref._leave = lambda step, v, **kw: leave(step, v, **{k: x for k, x in kw.items() if k != "with_done"})
    shared_calls = 0
    for _ in range(fast.n_clock):
        fast.step()
        ref.step()
        shared_calls += fast._done_closed_step == fast.steps - 1
        listed = fast.idle._plugged_here()
        assert np.array_equal(np.sort(listed), np.flatnonzero(fast.idle.at))  # the list is the mask, each car once
        assert np.array_equal(fast.fleet.e_kwh, ref.fleet.e_kwh) and np.array_equal(fast.fleet.plugged, ref.fleet.plugged)
    a, b = fast.run(), ref.run()
    assert shared_calls > 0 and a.kpis["unplugged_when_done"] > 0 and a.kpis["queued_at_public"] > 0
    if rule["leave_share"] < 1:
        assert a.kpis["idle_fee_cny"] > 0 and a.kpis["idle_min"] > 0
    assert a.kpis == b.kpis
    raw_a, raw_b = fast.recorder.sessions(), ref.recorder.sessions()  # in the order closed (Results sorts them)
    assert raw_a.keys() == raw_b.keys() and all(np.array_equal(raw_a[k], raw_b[k]) for k in raw_a)
    assert np.array_equal(fast.recorder.site_unmet_kwh, ref.recorder.site_unmet_kwh)
    for name in ("system", "sites", "vehicles", "sessions", "departure_soc", "ledger"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.extra.keys() == b.extra.keys()
    for k in a.extra:
        pd.testing.assert_frame_equal(a.extra[k], b.extra[k], check_exact=True)
