"""Distributed business model: drivers answer prices and invitations (v2gsim.strategies.distributed)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim.market.events import own_requests
from v2gsim.model import V2GModel
from v2gsim.scenario.schema import Scenario
from v2gsim.strategies.base import FleetView, Observation, StrategyContext
from v2gsim.strategies.distributed import (
    SHENZHEN_2024_DISCHARGED,
    SHENZHEN_2024_ENROLLED,
    Distributed,
    DistributedConfig,
    DriverBehaviour,
    solve_intercept,
)

from helpers import v2g_fleet

ROOT = Path(__file__).resolve().parents[1]
COMMUNITY = yaml.safe_load((ROOT / "scenarios" / "distributed_community.yaml").read_text())


# --------------------------------------------------------------------------- synthetic fleets (helpers.v2g_fleet)


def _shenzhen_strategy(seed: int, reward: float = 4.0, **cfg) -> Distributed:
    times = pd.date_range("2024-05-15 00:00", periods=96, freq="15min")
    config = DistributedConfig(
        invitations=[{"start": "2024-05-15T13:30", "hours": 1, "reward_cny_per_kwh": reward, "announced_h_ahead": 0}],
        drivers={"enrol_probability": 1.0}, **cfg)
    ctx = StrategyContext(("s",), times, 0.25, np.full(96, 0.65), np.full(96, 0.45),
                          seed_seq=np.random.SeedSequence(seed, spawn_key=(20, 0)))
    return Distributed(config, ctx)


def _visible(strat: Distributed, step: int) -> tuple:
    """Its invitations as the grid operator publishes them at ``step``."""
    return tuple(q for q in own_requests(strat.config, strat.context) if q.visible_step <= step)


def _answers(strat: Distributed, fleet: FleetView, step: int = 54) -> np.ndarray:
    """Vehicles that discharge at the event's first step (everyone is plugged and able)."""
    n = fleet.e_kwh.size
    obs = Observation(step, strat.context.times[step], 0.25, 0.65, 0.45, fleet, np.ones(n, bool), fleet.e_kwh < fleet.e_stop_kwh,
                      requests=_visible(strat, step))
    d = strat.decide(obs)
    out = np.zeros(n, bool)
    out[d.idx[d.p_kw < 0]] = True
    return out


def _at_reference_margin(strat: Distributed, n: int, seed: int = 0) -> FleetView:
    """A fleet whose SOC margins above the reserve are spread as the anchor event's fleet."""
    f = v2g_fleet(n)
    strat._traits(n)
    d = strat.config.drivers
    m = d.soc_margin_ref + d.soc_margin_sd_ref * np.random.default_rng(seed).standard_normal(n)
    e = strat.reserve_kwh(f) + m * f.capacity_kwh
    return v2g_fleet(n, e_kwh=e)


def test_calibration_reproduces_shenzhen_2024_event():
    """1,473 enrolled EVs, 53 discharged at 4 CNY/kWh (15 May 2024): 3.6 %."""
    target = SHENZHEN_2024_DISCHARGED / SHENZHEN_2024_ENROLLED
    d = DriverBehaviour()
    assert d.anchor_share == pytest.approx(target) and d.anchor_reward_cny_per_kwh == 4.0
    shares, counts = [], []
    for seed in range(40):
        strat = _shenzhen_strategy(seed)
        yes = _answers(strat, _at_reference_margin(strat, SHENZHEN_2024_ENROLLED, seed))
        counts.append(int(yes.sum()))
        shares.append(yes.mean())
    # 40 × 1,473 answers: the standard error of the mean share is 0.12 points
    assert np.mean(shares) == pytest.approx(target, abs=0.004)
    # a single event lands within three binomial standard deviations of 53 (sd ≈ 7)
    assert abs(counts[0] - SHENZHEN_2024_DISCHARGED) <= 22
    # the analytic expectation the intercept was solved for
    strat = _shenzhen_strategy(0)
    rng = np.random.default_rng(1)
    strat.z_anx, strat.z_wear = rng.standard_normal(10**6), rng.standard_normal(10**6)
    margin = d.soc_margin_ref + d.soc_margin_sd_ref * rng.standard_normal(10**6)
    p = strat.answer_probability(4.0, margin, np.arange(10**6))
    assert p.mean() == pytest.approx(target, abs=0.001)


def test_intercept_follows_the_anchor():
    lo = solve_intercept(DriverBehaviour(anchor_share=0.01))
    hi = solve_intercept(DriverBehaviour(anchor_share=0.2))
    assert lo < hi


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), r1=st.floats(0, 20), dr=st.floats(0.01, 20))
def test_higher_reward_never_lowers_participation(seed, r1, dr):
    rng = np.random.default_rng(seed)
    n = 400
    e = rng.uniform(10, 50, n)
    a = _answers(_shenzhen_strategy(seed, r1), v2g_fleet(n, e_kwh=e))
    b = _answers(_shenzhen_strategy(seed, r1 + dr), v2g_fleet(n, e_kwh=e))
    assert not np.any(a & ~b), "a driver who answered yes at a lower reward said no at a higher one"
    assert b.sum() >= a.sum()


def test_reward_must_beat_buyback_and_wear():
    n = 2000
    cheap = _shenzhen_strategy(3, 0.9, wear_cny_per_kwh=0.5)  # 0.65/0.85 + 0.5/0.92 ≈ 1.31 > 0.9
    assert not _answers(cheap, v2g_fleet(n, e_kwh=np.full(n, 49.0))).any()
    free = _shenzhen_strategy(3, 0.9, wear_cny_per_kwh=0.5, discharge_only_if_profitable=False)
    assert _answers(free, v2g_fleet(n, e_kwh=np.full(n, 49.0))).any()
    model_wear = _shenzhen_strategy(3, 0.9, wear_cny_per_kwh="model")  # zero wear: 0.77 < 0.9
    assert _answers(model_wear, v2g_fleet(n, e_kwh=np.full(n, 49.0))).any()


def test_synthetic_discharge_stops_at_reserve():
    n = 500
    strat = _shenzhen_strategy(5, 30.0)  # a reward nearly everyone accepts
    f = v2g_fleet(n)
    strat._traits(n)
    reserve = strat.reserve_kwh(f)
    e = reserve + np.linspace(-2, 3, n)  # some below their reserve, some just above
    fv = v2g_fleet(n, e_kwh=e)
    obs = Observation(54, strat.context.times[54], 0.25, 0.65, 0.45, fv, np.ones(n, bool), fv.e_kwh < fv.e_stop_kwh,
                      requests=_visible(strat, 54))
    d = strat.decide(obs)
    p = np.zeros(n)
    p[d.idx] = d.p_kw
    assert np.all(p[e <= reserve] >= 0), "discharge requested below the driver's reserve"
    e_after = e + np.minimum(p, 0) * 0.25 / 0.92
    assert np.all(e_after >= np.minimum(e, reserve) - 1e-9)
    assert d.v2g_price_cny_per_kwh == 30.0


# --------------------------------------------------------------------------- full runs


def _community(**changes) -> Scenario:
    d = copy.deepcopy(COMMUNITY)
    for key, value in changes.items():
        node, parts = d, key.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = value
    return Scenario.model_validate(d)


def _eager(**bm):
    """Enrol everyone and pay a reward most accept, so V2G happens in a small community."""
    base = {"kind": "distributed", "invitations": [{"start": "2026-07-08T18:00", "hours": 2, "reward_cny_per_kwh": 10, "announced_h_ahead": 2}],
            "drivers": {"enrol_probability": 1.0}}
    base.update(bm)
    return [base]


def test_bundled_scenario_runs_and_reports_event_kpis():
    res = V2GModel(_community()).run()
    k = res.kpis
    for name in ("invitations", "invitations_sent", "drivers_responding", "participation_rate", "event_energy_kwh", "energy_per_event_kwh"):
        assert f"distributed_{name}" in k
    assert k["distributed_invitations"] == 1
    assert k["distributed_invitations_sent"] > 0
    assert 0 <= k["distributed_participation_rate"] <= 1
    assert k["distributed_event_energy_kwh"] == pytest.approx(k["v2g_energy_kwh"], rel=1e-9, abs=1e-9)


def test_no_discharge_below_reserve_and_only_at_bidirectional_piles():
    m = V2GModel(_community(business_models=_eager(), time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 4, "warmup_days": 0}))
    strat = m.aggregators[0].strategy
    f = m.fleet
    seen_v2g = False
    for _ in range(m.n_clock):
        m.step()
        dis = f.p_kw < -1e-12
        if dis.any():
            seen_v2g = True
            reserve = strat.reserve_kwh(m.fleet_view)
            assert np.all(f.e_kwh[dis] >= reserve[dis] - 1e-9), "discharged below the driver's reserve"
            assert np.all(f.can_discharge[dis]), "discharge at a pile or vehicle that cannot"
            assert np.all(f.bidirectional[dis])
    assert seen_v2g


def test_no_v2g_without_bidirectional_piles_and_more_with_more():
    """Standard-fragmentation study: the share of bidirectional piles drives V2G energy."""
    energy = []
    for share in (0.0, 0.5, 1.0):
        sc = _community(business_models=_eager(), sites__0__bidirectional_share=share, sites__1__bidirectional_share=share)
        res = V2GModel(sc).run()
        energy.append(res.kpis["v2g_energy_kwh"])
        if share == 0.0:
            assert res.kpis["distributed_drivers_accepting"] > 0  # drivers said yes but could not
    assert energy[0] == 0.0
    assert energy[0] < energy[1] < energy[2]


def _valley_share(res) -> float:
    s = res.system
    valley = s.index.hour < 8  # Guangdong valley 0-8
    return float(s.ev_charge_kw[valley].sum() / s.ev_charge_kw.sum())


def test_smart_charging_moves_load_to_the_valley_and_meets_min_soc():
    exact = {f"population__{i}__departure_estimate_sd_h": 0.0 for i in range(4)}
    dist = V2GModel(_community(business_models=[{"kind": "distributed", "drivers": {"smart_charging_share": 1.0}}], **exact))
    unc = V2GModel(_community(business_models=[{"kind": "uncontrolled"}], **exact))
    rd, ru = dist.run(), unc.run()
    assert _valley_share(rd) > _valley_share(ru) + 0.3
    assert rd.kpis["charging_cost_cny"] < ru.kpis["charging_cost_cny"]
    # every session whose stay could have reached the driver's minimum leaves with it
    s = rd.sessions.dropna(subset=["departure"])
    s = s[s.departure == s.stated_departure]
    f = dist.fleet
    v = s.vehicle.to_numpy()
    site = np.array([dist.config.site_index()[str(x)] for x in s.site_id])
    p_max = np.minimum(dist.site_p_max_kw[site], np.where(dist.site_is_dc[site], f.p_dc_max_kw[v], f.p_ac_max_kw[v]))
    stay_h = (s.departure - s.arrival).dt.total_seconds().to_numpy() / 3600
    e_arr = s.soc_arrival.to_numpy() * f.capacity_kwh[v]
    feasible = e_arr + p_max * f.eta_charge[v] * (stay_h - 0.5) >= f.e_min_departure_kwh[v]
    e_dep = s.soc_departure.to_numpy() * f.capacity_kwh[v]
    assert feasible.sum() > 50
    short = feasible & (e_dep < f.e_min_departure_kwh[v] - 1e-6)
    assert not short.any(), s[short].head()


def test_deterministic_under_a_seed():
    sc = _community(business_models=_eager(), time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 3, "warmup_days": 0})
    a, b = V2GModel(sc).run(), V2GModel(sc).run()
    pd.testing.assert_frame_equal(a.system, b.system)
    assert a.kpis == pytest.approx(b.kpis, nan_ok=True)
    c = V2GModel(sc, seed=7)  # traits are drawn on the first decision, from the run's seed
    c.step()
    m = V2GModel(sc)
    m.step()
    assert not np.array_equal(m.aggregators[0].strategy.z_anx, c.aggregators[0].strategy.z_anx)


def test_energy_conserved_and_event_paid_the_reward():
    sc = _community(business_models=_eager(), time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 4, "warmup_days": 0})
    m = V2GModel(sc)
    f = m.fleet
    e0 = f.e_kwh.copy()
    res = m.run()
    balance = f.e_charged_kwh - f.e_discharged_kwh - f.e_loss_kwh - f.e_driven_kwh
    np.testing.assert_allclose(f.e_kwh - e0, balance, atol=1e-9)
    assert res.kpis["v2g_energy_kwh"] > 0
    # all discharge happens in the invitation and is paid its reward, not the tariff's V2G price
    assert res.kpis["v2g_revenue_cny"] == pytest.approx(10.0 * res.kpis["v2g_energy_kwh"], rel=1e-9)
    assert res.kpis["distributed_event_energy_kwh"] == pytest.approx(res.kpis["v2g_energy_kwh"], rel=1e-9)


def test_price_offer_is_settled_and_attracts_charging():
    offer = {"start": "2026-07-07T20:00", "hours": 2, "price_cny_per_kwh": 0.05}
    sc = _community(business_models=[{"kind": "distributed", "price_offers": [offer], "drivers": {"smart_charging_share": 1.0}}],
                    time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 3, "warmup_days": 0})
    m = V2GModel(sc)
    res = m.run()
    s = res.system
    win = (s.index >= "2026-07-07 20:00") & (s.index < "2026-07-07 22:00")
    same_hours_next_day = (s.index >= "2026-07-08 20:00") & (s.index < "2026-07-08 22:00")
    assert s.ev_charge_kw[win].sum() > 2 * s.ev_charge_kw[same_hours_next_day].sum()
    # the offer's price is what drivers paid in its window
    paid_elsewhere = (s.ev_charge_kw[~win] * s.price_cny_per_kwh[~win]).sum() * 0.25
    paid_offer = s.ev_charge_kw[win].sum() * 0.25 * 0.05
    assert res.kpis["charging_cost_cny"] == pytest.approx(paid_elsewhere + paid_offer, rel=1e-9)


def test_overlapping_invitations_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        DistributedConfig(invitations=[{"start": "2026-07-08T18:00", "hours": 2}, {"start": "2026-07-08T19:00", "hours": 1}])


# ---------------------------------------------------------------- grid-aware orderly charging

def test_water_level_hand_cases():
    from v2gsim.strategies.distributed import water_level

    # base 10, 20, 30 kW, 1 h steps: 5 kWh fills the lowest step to 15 kW
    assert water_level(np.array([30.0, 10.0, 20.0]), 5.0, 1.0) == pytest.approx(15.0)
    # 30 kWh: 10 raises the lowest to 20, the remaining 20 over two steps -> 30 kW
    assert water_level(np.array([30.0, 10.0, 20.0]), 30.0, 1.0) == pytest.approx(30.0)
    # 60 kWh: all three steps, (60 + 60) / 3 = 40 kW; 15-min steps need 4x the power
    assert water_level(np.array([30.0, 10.0, 20.0]), 60.0, 1.0) == pytest.approx(40.0)
    assert water_level(np.array([30.0, 10.0, 20.0]), 15.0, 0.25) == pytest.approx(40.0)
    assert water_level(np.array([30.0, 10.0, 20.0]), 0.0, 1.0) == pytest.approx(10.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 500), min_size=1, max_size=40), st.floats(0, 5000), st.sampled_from([0.25, 0.5, 1.0]))
def test_water_level_fills_exactly_the_energy(base, e_kwh, dt_h):
    from v2gsim.strategies.distributed import water_level

    b = np.array(base)
    level = water_level(b, e_kwh, dt_h)
    assert dt_h * np.maximum(0.0, level - b).sum() == pytest.approx(e_kwh, rel=1e-9, abs=1e-6)


def _two_days(mode: str, **extra):
    sc = _community(time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 2, "warmup_days": 1}, **extra)
    sc = sc.model_copy(update={"business_models": [sc.business_models[0].model_copy(
        update={"orderly": sc.business_models[0].orderly.model_copy(update={"mode": mode})})]})
    import v2gsim

    return v2gsim.run(sc)


def _night_max_kw(res) -> float:
    s = res.system
    return float(s.loc[s.index.hour < 8, "net_load_kw"].max())


def test_valley_fill_keeps_the_peak_below_the_reference_and_the_timer_rule():
    """distributed_community, 2 days: timers herding at 00:00 (random_delay, the rule before)
    put the night's highest load at the valley's start; the aggregator's start slots spread it,
    keep the run's peak below the uncontrolled reference, with at most 5 % more unmet energy.

    Since the drivers' public queues and detours (issue 15 item 1) the run's peak in both modes is
    the evening's public fast charging at ``gate_dc`` (queued drivers charging at once: 328.5 kW at
    18:30, the same in both modes, which the orderly mode does not touch), and the reference's peak
    is that evening too (397.5 kW). So the herding is compared where it happens, in the valley
    (00-08 h): timers 329.2 kW at 01:00 against the reference's 125.3 kW there; valley fill
    158.4 kW (before the queues the whole-run peaks told it: 347 vs 333 kW reference)."""
    vf, rd = _two_days("valley_fill"), _two_days("random_delay")
    rd_night, vf_night = _night_max_kw(rd), _night_max_kw(vf)
    s_rd = rd.system[rd.system.index.hour < 8]
    assert s_rd["net_load_kw"].idxmax().hour < 2  # the herding the rule fixes: at the valley's start (01:00)
    assert vf.kpis["peak_load_kw"] <= vf.kpis["reference_peak_kw"]  # 328.5 vs 397.5 kW
    assert vf_night < 0.9 * rd_night
    assert vf.kpis["peak_load_kw"] <= rd.kpis["peak_load_kw"] + 1e-6
    assert vf.kpis["unmet_energy_kwh"] <= rd.kpis["unmet_energy_kwh"] * 1.05  # 147.2 vs 147.4 kWh
    # the valley's first hour no longer carries the night's highest EV load
    ev = vf.system["ev_charge_kw"].resample("1h").mean()
    night = ev[ev.index.hour < 8]
    assert night[night.index.hour == 0].max() < night.max() or night.max() < 100


def test_valley_fill_keeps_the_night_under_a_small_transformer_where_timers_overload_it():
    """A 250 kVA transformer (237.5 kW), every driver smart: the timers put 374 kW on it at
    00:00; the aggregator's slots keep the whole night below the rating. (Where the drivers' needs
    exceed the room, drivers without slack still charge: a 150 kVA one sees 191 kW.)"""
    def night_max(mode):
        sc = _community(time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 2, "warmup_days": 1},
                        business_models=[{"kind": "distributed", "drivers": {"smart_charging_share": 1.0}, "orderly": {"mode": mode}}],
                        feeder__transformer_kva=250)
        s = V2GModel(sc).run().system
        night = s[s.index.hour < 8]
        return float((night["base_load_kw"] + night["ev_charge_kw"]).max())

    rating_kw = 250 * 0.95
    assert night_max("random_delay") > rating_kw
    assert night_max("valley_fill") <= rating_kw


def test_invitation_sized_to_deliver():
    """A target the 4 CNY/kWh invitation cannot meet makes the aggregator raise the reward; the
    per-invitation KPIs report requested, expected and delivered energy."""
    inv = {"start": "2026-07-08T18:00", "hours": 2, "reward_cny_per_kwh": 4, "announced_h_ahead": 24}
    base = V2GModel(_community(business_models=[{"kind": "distributed", "invitations": [inv], "drivers": {"enrol_probability": 1.0}}])).run().kpis
    sized = V2GModel(_community(business_models=[{"kind": "distributed", "drivers": {"enrol_probability": 1.0},
                                                  "invitations": [{**inv, "target_kwh": 60, "max_reward_cny_per_kwh": 10}]}])).run().kpis
    assert base["distributed_event0_reward_cny_per_kwh"] == 4.0
    assert np.isnan(base["distributed_event0_requested_kwh"])
    assert base["distributed_event0_expected_kwh"] < 60
    assert 4.0 < sized["distributed_event0_reward_cny_per_kwh"] <= 10.0
    assert sized["distributed_event0_requested_kwh"] == 60
    assert sized["distributed_event0_expected_kwh"] > base["distributed_event0_expected_kwh"]
    assert sized["distributed_event0_energy_kwh"] > base["distributed_event0_energy_kwh"]
    assert sized["distributed_event0_delivered_share"] == pytest.approx(sized["distributed_event0_energy_kwh"] / 60)


def test_max_reward_below_reward_is_rejected():
    with pytest.raises(Exception, match="max_reward_cny_per_kwh"):
        DistributedConfig(invitations=[{"start": "2026-07-08T18:00", "reward_cny_per_kwh": 4, "max_reward_cny_per_kwh": 3}])
