"""Battery wear inside the model: attribution, V2G share, continuation, feedback, price, second life."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.physics.wear import NaumannLfp
from v2gsim.scenario.schema import Scenario
from v2gsim.strategies.base import Dispatch, Observation, Strategy, StrategyConfig

# Commuters with V2G cars and bidirectional home piles, hourly steps (fast multi-year runs).
V2G_BASE = {
    "name": "wear test",
    "seed": 5,
    "time": {"start": "2026-01-05T00:00", "step_min": 60, "horizon_days": 30, "warmup_days": 0},
    "feeder": {"transformer_kva": 500, "households": 50},
    "tariff": {"preset": "guangdong"},
    "sites": [{"id": "homes", "kind": "home", "p_max_kw": 7, "bidirectional_share": 1.0}],
    "population": [
        {"archetype": "private_commuter", "count": 12, "vehicle": "byd_dolphin_44_v2g", "home_site": "homes",
         "home_charger_share": 1.0, "soc_min_departure_mean": 0.3, "soc_min_departure_sd": 0.0,
         # new packs: the hand-computed laws below start at age 0 (the default is China's NEV stock ages)
         "initial_age_years": 0},
    ],
    "outputs": {"session_sample": 0, "plots": False},
    "wear": {"model": "auto", "ambient": {"preset": "guangzhou"}},
}


def sc(**over) -> Scenario:
    d = copy.deepcopy(V2G_BASE)
    for k, v in over.items():
        node = d
        parts = k.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[parts[-1]] = v
    return Scenario.model_validate(d)


class _Cfg(StrategyConfig):
    kind: str = "test_daily_v2g"


class DailyV2G(Strategy):
    """Test rig: discharge ``kwh_per_day`` (grid side) per V2G vehicle at 19:00-22:00, else charge at full power."""

    config_cls = _Cfg

    def __init__(self, kwh_per_day: float, p_kw: float = 7.0, hours=(19, 22)):
        super().__init__(_Cfg(), None)
        self.kwh_per_day, self.p_kw, self.hours = kwh_per_day, p_kw, hours
        self._day = None
        self._left = None

    def decide(self, obs: Observation) -> Dispatch:
        f = obs.fleet
        day = obs.time.normalize()
        if day != self._day:
            self._day, self._left = day, np.full(f.e_kwh.size, float(self.kwh_per_day))
        idx = obs.plugged_idx
        p = np.zeros(idx.size)
        wanting = obs.below_stop[idx]
        p[wanting] = np.minimum(f.p_plug_max_kw[idx][wanting], (f.e_stop_kwh[idx][wanting] - f.e_kwh[idx][wanting]) / (f.eta_charge[idx][wanting] * obs.dt_h))
        if self.kwh_per_day > 0 and self.hours[0] <= obs.time.hour < self.hours[1]:
            can = f.can_discharge[idx]
            room_kwh = np.maximum(f.e_kwh[idx] - f.e_min_departure_kwh[idx], 0.0) * f.eta_discharge[idx]
            e = np.minimum.reduce([self._left[idx], room_kwh, np.full(idx.size, self.p_kw * obs.dt_h)])
            dis = can & (e > 1e-9)
            p[dis] = -e[dis] / obs.dt_h
            self._left[idx[dis]] -= e[dis]
        return Dispatch(idx, p)


def run(scenario, kwh_per_day=0.0, seed=None):
    m = V2GModel(scenario, seed=seed)
    m.aggregators[0].strategy = DailyV2G(kwh_per_day)
    res = m.run()
    return m, res


def test_wear_off_by_default_and_no_tables():
    d = copy.deepcopy(V2G_BASE)
    del d["wear"]
    m = V2GModel(Scenario.model_validate(d))
    assert m.wear is None
    res = m.run()
    assert "wear" not in res.extra and "wear_fade_mean_pct" not in res.kpis


def test_no_v2g_means_zero_v2g_fade():
    m, res = run(sc(), kwh_per_day=0.0)
    w = res.extra["wear"]
    assert (w["fade_pct"] > 0).all()
    assert (w["fade_v2g_pct"] == 0.0).all()
    # V2G requested but no bidirectional pile: also exactly zero
    m, res = run(sc(sites=[{"id": "homes", "kind": "home", "p_max_kw": 7, "bidirectional_share": 0.0}]), kwh_per_day=10.0)
    assert res.kpis["v2g_energy_kwh"] == 0.0
    assert (res.extra["wear"]["fade_v2g_pct"] == 0.0).all()


def test_attribution_adds_up_and_doubling_v2g_raises_its_fade():
    fades = []
    for kwh in (5.0, 10.0):
        m, res = run(sc(time__horizon_days=60), kwh_per_day=kwh)
        w = res.extra["wear"]
        parts = w[["fade_calendar_pct", "fade_driving_pct", "fade_charging_pct", "fade_v2g_pct"]].sum(axis=1)
        np.testing.assert_allclose(parts, w["fade_pct"], rtol=0, atol=1e-12)
        assert res.kpis["v2g_energy_kwh"] > 0
        fades.append(w["fade_v2g_pct"].mean())
    assert fades[1] > fades[0] > 0


@pytest.mark.slow
def test_v2g_share_over_five_years_in_published_band():
    """Daily evening-peak V2G for 5 years: the V2G share of fade sits in the +1..6 percentage-point
    band of published studies (Thingvad et al. 2020: +1-2 % over 5 years on top of 7-12 %;
    RWTH/The Mobility House lab: +1.7..5.8 points over 10 years).

    The rig discharges up to 20 kWh (grid side, ~45 % of the 44.9 kWh pack) each evening
    19:00-22:00 above the driver's reserve. Measured (Guangzhou): +1.07 points, of which cycling
    adds ~+2.6 and the lower mean SOC takes ~-1.5 off calendar ageing (Naumann's SOC term); at
    10 kWh a day the share is +0.95 points (cycling +1.5, calendar -0.6), just below the band.
    """
    t0 = time.perf_counter()
    m, res = run(sc(time__horizon_days=5 * 365), kwh_per_day=20.0)
    w = res.extra["wear"]
    share = w["fade_v2g_pct"].mean()
    pop = m.wear.pop
    cyc = 100 * (pop.state.q_loss_cyc - pop.shadow.q_loss_cyc).mean()
    cal = 100 * (pop.state.q_loss_cal - pop.shadow.q_loss_cal).mean()
    print(f"5-year V2G share {share:.2f} pp (cycling {cyc:+.2f}, calendar {cal:+.2f}), total fade {w['fade_pct'].mean():.2f} %, "
          f"V2G {res.kpis['v2g_energy_kwh'] / len(w) / 1825:.1f} kWh/vehicle/day, {time.perf_counter() - t0:.1f} s")
    assert 1.0 <= share <= 6.0
    assert cyc > 0 > cal  # more throughput, lower mean SOC
    # total fade of the order of the 7-12 % of driving and calendar ageing the studies report, plus V2G
    assert 7.0 < w["fade_pct"].mean() < 25.0


def test_virtual_time_continuation_at_model_level():
    """Parked cars at constant temperature: the calendar fade does not depend on how the run is
    cut into update periods, and matches the closed form for one piece."""
    out = []
    for period_h in (1, 24, 24 * 7):
        s = sc(time__horizon_days=28, population__0__daily_km_scale=1e-6, population__0__soc_initial_min=1.0,
               population__0__soc_initial_max=1.0, wear={"model": "naumann_lfp", "update_period_h": period_h, "heating_k_per_c_rate": 0.0,
                                                         "ambient": {"constant_degc": 30.0}})
        m, res = run(s, kwh_per_day=0.0)
        out.append(m.wear.pop.state.q_loss_cal.copy())
        soc = m.fleet.e_kwh / m.fleet.capacity_kwh  # constant: parked, full
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)
    np.testing.assert_allclose(out[2], out[1], rtol=1e-6)
    closed = NaumannLfp().calendar_loss(28 * 86400.0, soc, 30.0)
    np.testing.assert_allclose(out[1], closed, rtol=1e-5)
    # an additive (wrong) continuation of sqrt(t) would give sqrt(28) times more for daily pieces
    assert np.all(out[1] < 1.5 * closed)


def test_capacity_feedback_and_energy_booking():
    s = sc(time__horizon_days=2 * 365, wear={"model": "auto", "ambient": {"preset": "guangzhou", "offset_degc": 10.0}})
    m = V2GModel(s)
    m.aggregators[0].strategy = DailyV2G(5.0)
    f = m.fleet
    e0, cap0, full0, pmax0 = f.e_kwh.copy(), f.capacity_kwh.copy(), f.e_full_kwh.copy(), f.p_batt_max_kw.copy()
    res = m.run()
    w = res.extra["wear"]
    soh = w["soh"].to_numpy()
    assert (soh < 0.95).all()
    np.testing.assert_allclose(f.capacity_kwh, cap0 * soh, rtol=1e-12)
    np.testing.assert_allclose(f.p_batt_max_kw, pmax0 * soh, rtol=1e-12)  # charging power (and so time) follows
    assert (w["range_km"].to_numpy() < full0 / f.consumption_kwh_per_km).all()
    assert (f.e_kwh <= f.e_full_kwh + 1e-9).all()
    # battery energy balance, with the energy lost with the capacity booked
    lhs = f.e_kwh - e0
    rhs = f.e_charged_kwh * f.eta_charge - f.e_discharged_kwh / f.eta_discharge - f.e_driven_kwh + w["e_capacity_change_kwh"].to_numpy()
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-6)
    assert (w["e_capacity_change_kwh"] < 0).all()


def test_deterministic_under_seed():
    a = run(sc(time__horizon_days=20), kwh_per_day=6.0, seed=3)[1].extra["wear"]
    b = run(sc(time__horizon_days=20), kwh_per_day=6.0, seed=3)[1].extra["wear"]
    assert a.equals(b)


def test_marginal_price_written_for_strategies():
    m, res = run(sc(time__horizon_days=10), kwh_per_day=5.0)
    p = m.fleet.wear_cost_cny_per_kwh
    assert np.isfinite(p).all() and (p > 0.01).all() and (p < 5).all()
    np.testing.assert_array_equal(p, res.extra["wear"]["marginal_wear_cny_per_kwh_throughput"].to_numpy())
    m, _ = run(sc(time__horizon_days=3, wear={"model": "auto", "price_dispatch": False}))
    assert (m.fleet.wear_cost_cny_per_kwh == 0).all()


def test_retirement_and_second_life():
    s = sc(time__horizon_days=60, wear={"model": "auto", "retirement_soh": 0.97, "ambient": {"constant_degc": 40.0},
                                         "second_life": {"site": "homes", "end_of_life_soh": 0.9}})
    m, res = run(s, kwh_per_day=5.0)
    w, packs, k = res.extra["wear"], res.extra["wear_packs"], res.kpis
    assert k["packs_retired"] >= len(w)  # every pack passed 3 % fade within two months at 40 degC
    assert len(packs) == k["packs_retired"] == w["packs_replaced"].sum()
    assert k["pack_replacement_cost_cny"] == pytest.approx((w["packs_replaced"] * w["capacity_nominal_kwh"] * 650.0).sum())
    assert k["second_life_energy_discharged_kwh"] > 0 and k["second_life_revenue_cny"] > 0  # Guangdong peak-valley spread
    assert (packs["soh"] <= packs["soh_at_retirement"]).all() and (packs["fade_second_life_pct"] > 0).any()
    assert (w["soh"] > 0.97 - 1e-9).all()  # vehicles run on fresh packs after replacement


def test_wear_config_errors():
    with pytest.raises(Exception, match="did you mean 'beijing'"):
        sc(wear={"model": "auto", "ambient": {"preset": "bejing"}})
    with pytest.raises(ScenarioError, match="whole number"):
        V2GModel(sc(wear={"model": "auto", "update_period_h": 1.5}))


def test_results_round_trip_and_plots(tmp_path):
    m, res = run(sc(time__horizon_days=5), kwh_per_day=5.0)
    from v2gsim.plotting import plot_fade_distribution, plot_fade_vs_v2g

    plot_fade_distribution(res)
    plot_fade_vs_v2g(res)
    res.save(tmp_path / "r", plots=True)
    assert (tmp_path / "r" / "fade_distribution.png").is_file()
    from v2gsim.results import Results

    back = Results.load(tmp_path / "r")
    assert back.extra["wear"].shape == res.extra["wear"].shape
