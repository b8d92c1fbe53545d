"""Packs that start aged: initial_age_years / initial_soh per population group and swap station."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.physics.ageing.initial import STORAGE_SOC, Spread
from v2gsim.physics.wear import NaumannLfp
from v2gsim.scenario.schema import Scenario
from tests.test_wear_integration import V2G_BASE, DailyV2G, sc

YEAR_S = 365.25 * 86400.0


def parked(age, soh=None, days=28, **wear):
    """Commuters that (almost) never drive, parked at STORAGE_SOC at a constant 30 degC."""
    pop = {"daily_km_scale": 1e-6, "soc_initial_min": STORAGE_SOC, "soc_initial_max": STORAGE_SOC, "soc_target": STORAGE_SOC,
           "soc_min_departure_mean": 0.1, "initial_age_years": age}
    if soh is not None:
        pop["initial_soh"] = soh
    return sc(time__horizon_days=days, population=[{**V2G_BASE["population"][0], **pop}],
              wear={"model": "naumann_lfp", "heating_k_per_c_rate": 0.0, "ambient": {"constant_degc": 30.0}, **wear})


def test_calendar_fade_continues_from_the_age_hand_computed():
    """A pack of age a parked at constant SOC and temperature: fade over a run of t is
    law(a + t) - law(a), with law the closed-form Naumann calendar loss."""
    law = NaumannLfp().calendar_loss
    a_s, t_s = 3 * YEAR_S, 28 * 86400.0
    m = V2GModel(parked(3.0))
    cap_nom = m.wear.cap_nom_kwh
    q0 = law(a_s, STORAGE_SOC, 30.0)
    # applied at build: the capacity is the aged pack's, before the first step (the parked cars'
    # 1e-6 of a day's distance leaves a cycle history of ~1e-6 fade, kept apart here)
    q0_cyc = m.wear.pop.q0_cyc
    assert (q0_cyc < 1e-5).all()
    np.testing.assert_allclose(m.fleet.capacity_kwh, cap_nom * (1.0 - q0 - q0_cyc), rtol=1e-12)
    m.aggregators[0].strategy = DailyV2G(0.0)
    res = m.run()
    w = res.extra["wear"]
    expected = law(a_s + t_s, STORAGE_SOC, 30.0) - q0
    np.testing.assert_allclose(w["fade_calendar_pct"].to_numpy() / 100, expected, rtol=1e-6)
    # the same run on new packs loses far more (sqrt(t) front-loads): here ~ sqrt(t) / (sqrt(a+t) - sqrt(a))
    new = law(t_s, STORAGE_SOC, 30.0)
    assert new > 10 * expected
    # soh is the real state of health; fade_pct the run's
    np.testing.assert_allclose(w["soh"].to_numpy(), 1.0 - law(a_s + t_s, STORAGE_SOC, 30.0) - m.wear.pop.state.q_loss_cyc, rtol=1e-9)
    parts = w[["fade_calendar_pct", "fade_driving_pct", "fade_charging_pct", "fade_v2g_pct"]].sum(axis=1)
    np.testing.assert_allclose(parts, w["fade_pct"], rtol=0, atol=1e-12)


def test_initial_soh_sets_the_start_and_splits_calendar_and_cycle():
    law = NaumannLfp().calendar_loss
    m = V2GModel(parked(2.0, soh=0.9, days=2))
    st = m.wear.pop.state
    np.testing.assert_allclose(st.soh, 0.9, rtol=1e-12)
    np.testing.assert_allclose(st.q_loss_cal, law(2 * YEAR_S, STORAGE_SOC, 30.0), rtol=1e-12)
    np.testing.assert_allclose(st.q_loss_cyc, 0.1 - law(2 * YEAR_S, STORAGE_SOC, 30.0), rtol=1e-12)
    np.testing.assert_allclose(m.fleet.capacity_kwh, 0.9 * m.wear.cap_nom_kwh, rtol=1e-12)
    # a soh above what the age's calendar fade allows: the calendar part is capped (no cycle part)
    m = V2GModel(parked(8.0, soh=0.99, days=2))
    np.testing.assert_allclose(m.wear.pop.state.soh, 0.99, rtol=1e-12)
    assert (m.wear.pop.state.q_loss_cyc == 0).all()


def test_distributions_are_bounded_seeded_and_per_group():
    g0 = {**V2G_BASE["population"][0], "count": 200, "initial_age_years": {"dist": "uniform", "low": 1, "high": 4}}
    g1 = {**V2G_BASE["population"][0], "count": 100, "initial_age_years": {"dist": "normal", "mean": 2, "sd": 3, "low": 0, "high": 5},
          "initial_soh": {"dist": "uniform", "low": 0.85, "high": 0.95}}
    s = sc(time__horizon_days=1, population=[g0, g1])
    m = V2GModel(s)
    age, soh, _ = m._initial_pack_age(s, m.fleet)
    assert (age[:200] >= 1).all() and (age[:200] <= 4).all() and np.isnan(soh[:200]).all()
    assert (age[200:] >= 0).all() and (age[200:] <= 5).all() and (age[200:] == 0).any() and (age[200:] == 5).any()  # clipped
    np.testing.assert_allclose(m.wear.pop.state.soh[200:], soh[200:], rtol=1e-12)
    assert abs(age[:200].mean() - 2.5) < 0.25
    age2, _, _ = V2GModel(s)._initial_pack_age(s, m.fleet)
    np.testing.assert_array_equal(age, age2)


def test_swap_station_pack_pool_ages():
    text = open("scenarios/wear_v2g_fleet.yaml").read()
    d = yaml.safe_load(text)
    d["time"].update(horizon_days=2)
    d["business_models"][0]["stations"][0]["initial_age_years"] = 2.0
    d["business_models"][0]["stations"][0]["initial_soh"] = 0.95
    m = V2GModel(Scenario.model_validate(d))
    pw = m.wear.pack_wears[0]
    np.testing.assert_allclose(pw.net.packs.soh, 0.95, rtol=1e-12)
    veh = pw.veh
    np.testing.assert_allclose(m.fleet.capacity_kwh[veh], 0.95 * m.wear.cap_nom_kwh[veh], rtol=1e-12)
    res = m.run()
    t = res.extra["swap_pack_wear"]
    assert (t["fade_pct"] >= 0).all() and (t["fade_pct"] < 1).all()  # the run's fade, not the 5 % before it
    assert (t["soh"] < 0.95).all()


@pytest.mark.parametrize("bad, where, hint", [
    ({"dist": "uniform", "low": 1}, "initial_age_years", "give high"),
    ({"dist": "uniform", "low": 4, "high": 1}, "initial_age_years", "swap low and high"),
    ({"dist": "normal", "mean": 2, "sd": 1, "low": 0, "high": 40}, "initial_age_years", "within 0.0..30.0"),
    (-1.0, "initial_age_years", "within 0.0..30.0"),
])
def test_validation_names_path_line_and_fix(tmp_path, bad, where, hint):
    from v2gsim.scenario.loader import load

    d = copy.deepcopy(V2G_BASE)
    d["population"][0][where] = bad
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ScenarioError) as e:
        load(p, Scenario)
    text = str(e.value)
    assert f"population[0].{where}" in text or f"population.0.{where}" in text, text
    assert hint in text, text
    assert "line" in text, text


def test_soh_range_checked():
    with pytest.raises(Exception, match="initial_soh"):
        sc(population=[{**V2G_BASE["population"][0], "initial_soh": 0.3}])


def test_spread_draw_fixed():
    assert (Spread(dist="fixed", value=2.0).draw(3, np.random.default_rng(0)) == 2.0).all()


def _priced_v2g_run(soh: float, days: int = 365):
    """Daily evening V2G (5 kWh grid side per car) on packs of 3 years and state of health ``soh``;
    returns (attributed V2G wear cost, its cycle part, sum over days of V2G throughput x the
    published price, sum over days of V2G energy x the V2G price of the day's cycle)."""
    from v2gsim.results import Results

    pop = {**V2G_BASE["population"][0], "initial_age_years": 3.0, "initial_soh": soh}
    m = V2GModel(sc(time__horizon_days=days, population=[pop]))
    rig = DailyV2G(5.0)
    m.aggregators[0].strategy = rig
    f = m.fleet
    # grid-side throughput V2G causes: the discharge and the charging that replaces it
    per_kwh_discharged = 1.0 + 1.0 / (f.eta_charge * f.eta_discharge)
    priced, priced_cycle, dis0 = 0.0, 0.0, f.e_discharged_kwh.copy()
    v = np.arange(f.n)
    before = int(round(rig.hours[0] / m.dt_h))  # the clock starts at midnight: steps to 19:00
    while m.steps < m.n_clock:
        price = f.wear_cost_cny_per_kwh.copy()  # what dispatch sees during the day (set at the last period end)
        m.run_for(min(before, m.n_clock - m.steps))
        # at 19:00, the V2G price of the cycle the rig is about to run: 5 kWh fed back, not below
        # the minimum at departure (FleetWear.v2g_price_cny_per_kwh, docs/wear.md "The fleet's timing")
        floor = np.maximum(f.e_kwh - 5.0 / f.eta_discharge, f.e_min_departure_kwh)
        cycle_price = m.wear.v2g_price_cny_per_kwh(v, floor)
        m.run_for(min(m.steps_per_day - before, m.n_clock - m.steps))
        d = f.e_discharged_kwh - dis0
        priced += float((price * d * per_kwh_discharged).sum())
        priced_cycle += float((cycle_price * d).sum())
        dis0 = f.e_discharged_kwh.copy()
    res = Results.from_recording(*m.recording())
    pop_ = m.wear.pop
    cyc = float(((pop_.state.q_loss_cyc - pop_.shadow.q_loss_cyc) * m.wear.cost_per_q_cny).sum())
    return float(res.extra["wear"]["wear_cost_v2g_cny"].sum()), cyc, priced, priced_cycle


def test_v2g_throughput_times_marginal_price_reconciles_with_attribution():
    """Over a year of daily V2G on aged packs, V2G throughput x the published marginal price
    (``fleet.wear_cost_cny_per_kwh``, the day's price) against the attributed V2G wear cost.

    Measured (12 cars, Guangzhou, LFP, 3 years, soh 0.92): attributed 2,184 CNY, priced 2,054 CNY,
    ratio 1.06. Tolerance: a factor 4/3 either way, because the two are not the same quantity:
    the price is the cycle fade per kWh at the period's stressors held fixed, while the
    attribution (real minus a no-V2G shadow) also holds (a) V2G's deeper cycles raising the cycle
    rate of all throughput (cycle part alone = 1.42 x the price here) and (b) V2G's lower mean SOC
    slowing calendar fade (-729 CNY here), which is no throughput cost. (a) and (b) offset here;
    they need not: at soh 0.88 the calendar relief exceeds the cycle cost and the attributed V2G
    wear is negative (-69 CNY against 523 priced; cycle part 1.32 x). The cycle part stays 1.0-1.6 x the price in both.
    New packs (sqrt(FEC) front-loading) put the cycle part at 1.53 x and the total at 1.21 x.
    """
    total, cyc, priced, cycle_priced = _priced_v2g_run(0.92)
    assert priced > 500  # a year of V2G was priced
    assert 0.75 <= total / priced <= 4 / 3, (total, cyc, priced)
    assert 1.0 <= cyc / priced <= 1.6, (total, cyc, priced)
    total88, cyc88, priced88, cycle_priced88 = _priced_v2g_run(0.88)
    assert 1.0 <= cyc88 / priced88 <= 1.6, (total88, cyc88, priced88)
    assert total88 < 0.5 * priced88  # the calendar relief: the total does not reconcile on its own here
    # the V2G price of each day's cycle at 19:00 (what dispatch and contracts read) reconciles the
    # cycle part closer: measured 1.18 x and 1.07 x (1.41 x and 1.31 x for the published price)
    assert 0.85 <= cyc / cycle_priced <= 1.3, (cyc, cycle_priced)
    assert 0.85 <= cyc88 / cycle_priced88 <= 1.3, (cyc88, cycle_priced88)
    assert abs(cyc / cycle_priced - 1) < abs(cyc / priced - 1) and abs(cyc88 / cycle_priced88 - 1) < abs(cyc88 / priced88 - 1)


def test_china_fleet_age_figures_match_the_source():
    from v2gsim.physics.ageing.initial import CHINA_FLEET_AGE_EXAMPLE, CHINA_NEV_2023, china_nev_mean_age_years

    # MPS via Xinhua (11 Jan 2024): 20.41 M in use, 7.43 M registered in 2023, 2.07 M more than 2022
    assert CHINA_NEV_2023["stock_end_2023"] == 20.41 and CHINA_NEV_2023["registered_2023"] == 7.43
    assert abs(CHINA_NEV_2023["registered_2022"] - 5.36) < 1e-9
    young = (CHINA_NEV_2023["registered_2023"] + CHINA_NEV_2023["registered_2022"]) / CHINA_NEV_2023["stock_end_2023"]
    assert abs(young - 0.627) < 0.001
    lo, hi = china_nev_mean_age_years(2.5), china_nev_mean_age_years(5.0)
    assert abs(lo - 1.51) < 0.01 and abs(hi - 2.44) < 0.01
    ex = Spread(**CHINA_FLEET_AGE_EXAMPLE)
    assert lo <= (ex.low + ex.high) / 2 <= hi
    sc(population=[{**V2G_BASE["population"][0], "initial_age_years": CHINA_FLEET_AGE_EXAMPLE}])  # valid in a scenario


# ---------------------------------------------------------------- default: China's NEV stock ages

def test_cn_nev_figures_match_the_source_and_each_other():
    from v2gsim.physics.ageing.initial import CHINA_NEV_2023, CN_NEV_MPS_MILLIONS as mps

    # as announced by the MPS each January (Xinhua / CnEVPost / agencies, cited in initial.py)
    assert mps[2024] == (31.40, 11.25) and mps[2023] == (20.41, 7.43) and mps[2022] == (13.10, 5.35)
    assert mps[2021] == (7.84, 2.95) and mps[2020][0] == 4.92 and mps[2019][1] == 1.20
    assert abs(mps[2020][1] - 1.17) < 1e-9 and abs(mps[2019][0] - 3.81) < 1e-9  # "1.78 M more" / "1.11 M more"
    assert mps[2023][0] == CHINA_NEV_2023["stock_end_2023"] and abs(mps[2022][1] - CHINA_NEV_2023["registered_2022"]) < 0.015
    # the stock grows by the registrations less a little scrapping: never by more
    for y in range(2020, 2025):
        growth = mps[y][0] - mps[y - 1][0]
        assert 0.9 * mps[y][1] <= growth <= mps[y][1] + 1e-9, y  # scrapped: 0.03-0.26 M a year


def test_cn_nev_stock_bins_hand_computed():
    from v2gsim.physics.ageing.initial import cn_nev_stock_age_bins

    edges, shares = cn_nev_stock_age_bins()
    np.testing.assert_array_equal(edges, [0, 1, 2, 3, 4, 5, 6, 10])
    older = 31.40 - (11.25 + 7.43 + 5.35 + 2.95 + 1.17 + 1.20)  # 2.05 M registered before 2019, still in use
    np.testing.assert_allclose(shares, np.array([11.25, 7.43, 5.35, 2.95, 1.17, 1.20, older]) / 31.40, rtol=1e-12)
    mean = float(((edges[:-1] + edges[1:]) / 2 * shares).sum())
    assert abs(mean - 2.189) < 0.001
    # the end-2023 stock from the same table: 63 % under two years, as the 2023 figures say
    e23, s23 = cn_nev_stock_age_bins(2023)
    assert abs(s23[:2].sum() - 0.627) < 0.002
    with pytest.raises(ValueError, match="2018"):
        cn_nev_stock_age_bins(2018)


def test_cn_nev_stock_draw_matches_shares_within_sampling_error():
    from v2gsim.physics.ageing.initial import cn_nev_stock_age_bins

    n = 100_000
    age = Spread(dist="cn_nev_stock").draw(n, np.random.default_rng(7))
    edges, shares = cn_nev_stock_age_bins()
    counts = np.histogram(age, bins=edges)[0] / n
    sd = np.sqrt(shares * (1 - shares) / n)
    assert (np.abs(counts - shares) < 4 * sd).all(), (counts, shares)
    # uniform within a bin: the first half of each bin holds half its share
    first_half = np.histogram(age, bins=np.sort(np.r_[edges, (edges[:-1] + edges[1:]) / 2]))[0][::2] / n
    assert (np.abs(first_half - shares / 2) < 4 * np.sqrt(shares / 2 / n) + 1e-12).all()
    mean = float(((edges[:-1] + edges[1:]) / 2 * shares).sum())
    assert abs(age.mean() - mean) < 4 * age.std() / np.sqrt(n)
    assert age.min() >= 0 and age.max() <= 10


def test_empirical_spread_draws_its_bins():
    s = Spread(dist="empirical", edges=[0, 1, 3], shares=[0.25, 0.75])
    x = s.draw(40_000, np.random.default_rng(3))
    assert s.bounds() == (0.0, 3.0)
    assert abs((x < 1).mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 40_000)
    assert abs(x.mean() - (0.25 * 0.5 + 0.75 * 2.0)) < 0.02


@pytest.mark.parametrize("bad, hint", [
    ({"dist": "empirical", "edges": [0, 1, 3], "shares": [1.0]}, "edges [0, 1, 3] go with shares [0.6, 0.4]"),
    ({"dist": "empirical", "edges": [0, 2, 1], "shares": [0.5, 0.5]}, "increasing order"),
    ({"dist": "empirical", "edges": [0, 1, 3], "shares": [0.5, 0.6]}, "divide each share by their sum"),
    ({"dist": "empirical", "edges": [0, 1, 40], "shares": [0.5, 0.5]}, "within 0.0..30.0"),
    ({"dist": "empirical", "shares": [1.0]}, "give edges"),
])
def test_empirical_validation_names_path_and_fix(tmp_path, bad, hint):
    test_validation_names_path_line_and_fix(tmp_path, bad, "initial_age_years", hint)


def _default_group(**over):
    g = {k: v for k, v in V2G_BASE["population"][0].items() if k != "initial_age_years"}
    return {**g, **over}


def test_default_age_is_the_cn_nev_stock_when_wear_is_on():
    s = sc(time__horizon_days=1, population=[_default_group(count=3000)])
    assert s.population[0].initial_age_years.dist == "cn_nev_stock"
    m = V2GModel(s)
    age, soh, _ = m._initial_pack_age(s, m.fleet)
    assert abs(age.mean() - 2.189) < 4 * age.std() / np.sqrt(age.size) and age.max() <= 10 and np.isnan(soh).all()
    assert (m.fleet.capacity_kwh < m.wear.cap_nom_kwh).all()  # aged at build
    # initial_age_years: 0 keeps new packs
    m0 = V2GModel(sc(time__horizon_days=1, population=[_default_group(count=3000, initial_age_years=0)]))
    np.testing.assert_array_equal(m0.fleet.capacity_kwh, m0.wear.cap_nom_kwh)
    assert m0._initial_pack_age(s, m0.fleet) is not None  # (the scenario s still draws ages)


def test_default_age_leaves_a_run_without_wear_unchanged():
    kw = dict(time__horizon_days=2, wear={"model": "off"})
    a = V2GModel(sc(population=[_default_group()], **kw)).run()
    b = V2GModel(sc(population=[_default_group(initial_age_years=0)], **kw)).run()
    assert a.kpis == b.kpis
    assert "wear" not in a.extra


from hypothesis import given, settings, strategies as hst


@settings(max_examples=60, deadline=None)
@given(widths=hst.lists(hst.floats(0.1, 5.0), min_size=1, max_size=6),
       weights=hst.lists(hst.floats(0.0, 1.0), min_size=6, max_size=6), seed=hst.integers(0, 2**32 - 1))
def test_empirical_draws_fall_in_bins_with_a_share(widths, weights, seed):
    edges = np.r_[0.0, np.cumsum(widths)]
    w = np.asarray(weights[:len(widths)]) + 1e-3 * (np.arange(len(widths)) == 0)  # at least one bin with a share
    s = Spread(dist="empirical", edges=edges.tolist(), shares=(w / w.sum()).tolist())
    x = s.draw(500, np.random.default_rng(seed))
    assert x.shape == (500,) and (x >= edges[0]).all() and (x <= edges[-1]).all()
    k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(widths) - 1)
    assert (np.asarray(s.shares)[k] > 0).all()


# ---------------------------------------------------------------- cycle history of pre-aged packs
from v2gsim.physics.ageing.initial import HISTORY_SOH_FLOOR, TYPICAL_C_RATE, history_fec, history_stressors, pre_age  # noqa: E402
from v2gsim.physics.wear import WEAR_MODELS, WearState  # noqa: E402
from v2gsim.population.archetypes import mean_daily_km  # noqa: E402
from v2gsim.data.cn_calendar import WORKDAY, year_day_types  # noqa: E402


def test_cycle_history_hand_computed():
    """5 years of 40 km/day at 0.14 kWh/km on a 44.9 kWh pack: 40 x 0.14 = 5.6 kWh driven a day and
    5.6 recharged, 11.2 kWh / (2 x 44.9) = 0.12472 FEC a day, x 365.25 x 5 = 227.77 FEC; the day's
    depth 5.6 / 44.9 = 0.12472; C-rate half traction (0.14 x 30 / 44.9 = 0.093541) half 0.2 charging:
    0.14677. Naumann: (0.0630 x 0.14677 + 0.0971) x (4.0253 x (0.12472 - 0.6)^3 + 1.0923) / 100
    = 7.0204e-4 per sqrt(FEC), x sqrt(227.77) = 1.0595 % cycle fade."""
    fec = history_fec(5.0, 40.0, 0.14, 44.9)
    assert fec == pytest.approx(227.7728, rel=1e-6)
    dod, c = history_stressors(40.0, 0.14, 44.9, 0.14 * 30.0 / 44.9)
    assert float(dod) == pytest.approx(0.124722, rel=1e-5) and float(c) == pytest.approx(0.146771, rel=1e-5)
    st = WearState.zeros(1)
    pre_age(st, [NaumannLfp()], np.zeros(1, np.int64), np.array([5.0]), np.array([np.nan]), 22.0, fec=fec, dod=dod, c_rate=c)
    assert st.q_loss_cyc[0] == pytest.approx(7.0204e-4 * np.sqrt(227.7728), rel=1e-4)
    assert st.q_loss_cyc[0] == pytest.approx(0.010595, rel=1e-4)
    assert st.fec[0] == pytest.approx(227.7728, rel=1e-6)
    # with the calendar law at SOC 0.6, 22 degC (about Guangzhou's annual mean): 8.91 % + 1.06 % =
    # 9.97 % fade, SOH 0.90 after 5 years; Thingvad 2020 (DOMAIN.md): 7-12 % from driving and
    # calendar ageing over 5 years (docs/wear.md, Initial age)
    assert st.q_loss_cal[0] == pytest.approx(0.089072, rel=1e-4)
    assert 0.07 <= st.q_loss[0] <= 0.12
    # a given initial_soh keeps its split (no cycle history on top)
    st2 = WearState.zeros(1)
    pre_age(st2, [NaumannLfp()], np.zeros(1, np.int64), np.array([5.0]), np.array([0.85]), 22.0, fec=fec, dod=dod, c_rate=c)
    assert st2.soh[0] == pytest.approx(0.85, rel=1e-12) and st2.fec[0] == 0.0
    assert st2.q_loss_cal[0] == pytest.approx(0.089072, rel=1e-4)


def test_model_ages_each_group_by_its_own_driving():
    """A group's packs (no initial_soh) start with the cycles of their archetype's mean daily distance
    x daily_km_scale over their age; a group with initial_soh has none; the run's FEC columns count
    the run only."""
    g0 = {**V2G_BASE["population"][0], "count": 4, "initial_age_years": 3.0, "daily_km_scale": 1.5}
    g1 = {**V2G_BASE["population"][0], "count": 4, "initial_age_years": 3.0, "initial_soh": 0.9}
    m = V2GModel(sc(time__horizon_days=2, population=[g0, g1]))
    w, f = m.wear, m.fleet
    share = float(np.mean(year_day_types(2025) == WORKDAY))  # the year before the run's 2026 start
    km = mean_daily_km("private_commuter", round(share, 6)) * 1.5
    assert 40 < km < 55  # 31 km/day x 1.5
    a = np.arange(4)
    fec = 2 * km * f.consumption_kwh_per_km[a] * 365.25 * 3.0 / (2 * w.cap_nom_kwh[a])
    np.testing.assert_allclose(w.pop.q0_fec[a], fec, rtol=1e-12)
    depth = km * f.consumption_kwh_per_km[a] / w.cap_nom_kwh[a]
    c = 0.5 * (f.consumption_kwh_per_km[a] * w.cfg.driving_speed_kmh / w.cap_nom_kwh[a] + TYPICAL_C_RATE)
    np.testing.assert_allclose(w.pop.q0_cyc[a], NaumannLfp().cycle_loss(fec, depth, c), rtol=1e-12)
    np.testing.assert_allclose(f.capacity_kwh[a], w.cap_nom_kwh[a] * (1 - w.pop.q0_cal[a] - w.pop.q0_cyc[a]), rtol=1e-12)
    b = np.arange(4, 8)
    assert (w.pop.q0_fec[b] == 0).all()
    np.testing.assert_allclose(w.pop.state.soh[b], 0.9, rtol=1e-12)
    res = m.run()
    t = res.extra["wear"]
    assert (t["fec"] >= 0).all() and (t["fec"] < 3).all()  # two days' cycles, not the history's ~190


_MODELS = ("naumann_lfp", "schmalstieg_nmc", "xu_rainflow")


def _history_fade(model: str, age, km, cap=50.0, cons=0.15):
    n = np.size(age)
    st = WearState.zeros(n)
    fec = history_fec(age, km, cons, cap)
    dod, c = history_stressors(km, cons, cap, cons * 30.0 / cap)
    pre_age(st, [WEAR_MODELS[model]()], np.zeros(n, np.int64), np.asarray(age, float), np.full(n, np.nan), 25.0,
            fec=fec, dod=dod, c_rate=c)
    return st


@settings(max_examples=60, deadline=None)
@given(model=hst.sampled_from(_MODELS), age=hst.floats(0.0, 15.0), d_age=hst.floats(0.0, 5.0), km=hst.floats(0.0, 400.0),
       d_km=hst.floats(0.0, 200.0), cap=hst.floats(20.0, 120.0), cons=hst.floats(0.1, 0.3))
def test_history_fade_is_monotone_in_age_and_distance(model, age, d_age, km, d_km, cap, cons):
    """Pre-aged fade (calendar + cycle history) never falls with a longer age or a longer daily
    distance; 0 years is a new pack (no fade, no cycles) whatever the distance."""
    st = _history_fade(model, np.array([age, age + d_age, age, age]), np.array([km, km, km + d_km, km]), cap, cons)
    q = st.q_loss
    tol = 1e-12
    assert q[1] >= q[0] - tol and q[2] >= q[0] - tol
    assert (st.q_loss <= max(1 - HISTORY_SOH_FLOOR, float(st.q_loss_cal.max())) + tol).all()  # the history's floor
    if q.max() < 1 - HISTORY_SOH_FLOOR - 1e-9:  # below the floor the cycle part alone grows too
        assert (st.q_loss_cyc[1] >= st.q_loss_cyc[0] - tol) and (st.q_loss_cyc[2] >= st.q_loss_cyc[0] - tol)
    new = _history_fade(model, np.array([0.0]), np.array([km]), cap, cons)
    assert new.q_loss[0] == 0.0 and new.fec[0] == 0.0 and new.t_s[0] == 0.0


def test_cycle_history_stops_at_the_floor():
    """A ride-hailing NMC pack 6 years at a constant 55 degC: calendar 0.89 of fade alone; the cycle
    history adds nothing past HISTORY_SOH_FLOOR (a state of health of 0 left the capacity arrays
    NaN, tests/test_swap_pack_wear.py), the calendar part is not capped."""
    st = WearState.zeros(2)
    m = WEAR_MODELS["schmalstieg_nmc"]()
    fec = history_fec(np.array([6.0, 1.0]), 254.0, 0.15, 52.5)
    dod, c = history_stressors(254.0, 0.15, 52.5, 0.15 * 30 / 52.5)
    pre_age(st, [m], np.zeros(2, np.int64), np.array([6.0, 1.0]), np.full(2, np.nan), 55.0, fec=fec, dod=dod, c_rate=c)
    assert st.q_loss_cal[0] > 0.85 and st.q_loss_cyc[0] == 0.0 and st.soh[0] > 0.1  # measured 0.886, 0, 0.114
    assert st.q_loss_cyc[1] > 0.1 and st.soh[1] > HISTORY_SOH_FLOOR  # 1 year: 0.231 + 0.129, not capped
