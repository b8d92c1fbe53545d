"""private_car_cn against the published figures it is calibrated to (national monitoring platform
for new-energy vehicles, 2020 report: Tables 3-4, 3-5 and Fig. 3-16; see the archetypes module).

Large fixed-seed samples of the vectorised plan; tolerances are stated per target."""

import numpy as np
import pytest

import v2gsim
from v2gsim.population.archetypes import (
    CN_SHARE_UNDER_HALF_HOUR,
    CN_TRIP_H_MEAN,
    CN_TRIP_KM_MEAN,
    PLANNERS,
    private_car_cn,
    private_commuter,
)

N = 200_000


def sample(planner, weekday=True, seed=7):
    p = planner(np.random.default_rng(seed), N, weekday, np.ones(N))
    act = p.active
    trips_h = np.where(act, p.arr_h - p.dep_h, 0.0)
    per_driver_h = trips_h.sum(axis=1) / np.maximum(act.sum(axis=1), 1)
    drives = act.any(axis=1)
    return {
        "trip_km": p.km[act].mean(),
        "trip_h": (p.arr_h - p.dep_h)[act].mean(),
        "share_under_half_hour": (per_driver_h[drives] < 0.5).mean(),
        "daily_km": np.where(act, p.km, 0.0).sum(axis=1)[drives].mean(),
        "plan": p,
    }


def test_trip_length_and_duration_match_the_platform():
    s = sample(private_car_cn)
    assert s["trip_km"] == pytest.approx(CN_TRIP_KM_MEAN, rel=0.02)  # 11.44 km, within 2 %
    assert s["trip_h"] == pytest.approx(CN_TRIP_H_MEAN, rel=0.02)  # 0.42 h, within 2 %
    # 71.4 % of cars make trips under 0.5 h on average; a lognormal with the published mean
    # cannot go below 72.3 %: within 1.5 points
    assert s["share_under_half_hour"] == pytest.approx(CN_SHARE_UNDER_HALF_HOUR, abs=0.015)


def test_the_legacy_commuter_is_not_calibrated_to_those_figures():
    # the classic lognormal(3.20, 0.88) daily distance gives trips about 23 % longer (14.1 km) than the
    # platform's: the reason private_car_cn exists (the legacy one stays for its scenarios)
    s = sample(private_commuter)
    assert s["trip_km"] > 1.2 * CN_TRIP_KM_MEAN


def test_days_off_are_outings_and_the_plan_is_ordered():
    s = sample(private_car_cn, weekday=False)
    p = s["plan"]
    assert not p.active[:, 2:].any()  # no commute, no errand
    assert p.active[:, 0].mean() == pytest.approx(0.7, abs=0.01)  # 70 % go out [C]
    a = p.active
    assert (p.arr_h[a] >= p.dep_h[a]).all() and (p.dep_h[:, 1][a[:, 1]] >= p.arr_h[:, 0][a[:, 1]]).all()


def test_km_scale_scales_the_trips():
    p = private_car_cn(np.random.default_rng(1), 1000, True, np.full(1000, 2.0))
    q = private_car_cn(np.random.default_rng(1), 1000, True, np.ones(1000))
    np.testing.assert_allclose(p.km, 2.0 * q.km)


def test_a_scenario_runs_with_private_car_cn():
    sc = v2gsim.load_scenario("smoke", {"population.0.archetype": "private_car_cn"})
    assert "private_car_cn" in PLANNERS and sc.population[0].archetype == "private_car_cn"
    r = v2gsim.run(sc)
    assert r.kpis["energy_charged_kwh"] > 0
    assert set(r.vehicles["archetype"].astype(str)) >= {"private_car_cn"}
