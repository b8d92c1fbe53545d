"""Driver archetypes: one day's trip chain for a whole group at once.

Each archetype is a function ``plan(rng, n, weekday, km_scale) -> DayPlan`` that samples,
vectorised over the n drivers, a fixed number of legs (some masked off). A day starts and ends
at the driver's base (home, or the depot for buses); nights across midnight are not modelled.

Figures (tags A/B/C as in shared/DOMAIN.md):

- ``private_car_cn`` (calibrated; prefer it for Chinese cities). Source: China's national
  monitoring and management platform for new-energy vehicles, as reported in 《中国新能源汽车大数据
  研究报告（2021）》 §3.3.1 (private cars, 2020 data): mean trip 11.44 km (Table 3-5) [A], mean trip
  duration 0.42 h (Table 3-4) [A], 71.4 % of private cars with a mean trip under 0.5 h
  (Fig. 3-16) [A]. Hence ~27.2 km/h average speed. Each driver's trips share one length, drawn
  lognormal with mean 11.44 km and the sigma (0.59) that brings the share under 0.5 h closest
  to 71.4 % (72.3 %: a lognormal of that mean cannot go lower). tests/test_archetypes_cn.py
  checks the sampled plans against these three figures; docs/data.md shows the comparison.
  The number of trips a day and the departure times are *not* calibrated: no published Chinese
  distribution was found (see docs/data.md); they are the private commuter's [C] assumptions
  below, which give ~29 km per driving day, less than the 40-50 km/day for private BEVs [C] and
  the ~52 km/day for light-duty vehicles [B] in DOMAIN.md (those may count more trips a day).
- ``private_commuter`` (legacy, kept so that existing scenarios keep their numbers): daily
  distance ~ lognormal(mu=3.20, sigma=0.88) km, the classic Chinese load-model assumption [C],
  mean ~36 km; its trips average 14.1 km, 23 % longer than the platform's 11.44 km.
- both private archetypes: commute departures ~ N(07:45, 0.75 h), returns ~ N(17:45, 1 h),
  consistent with the classic assumption that charging starts ~ N(17.6 h, 3.4 h) [C]; 10 % of
  weekdays off, 30 % evening errands, 70 % outings on days off [C].
- ride-hailing/taxi 200-400 km/day [C]; city bus 150-250 km/day [C] (no better source found).
- ``v2g_visitor``: one visit a day to a V2G station to discharge for a reward (the Lianhua Hill
  pilot, ``scenarios/pilots/lianhua_hill.yaml``); see its docstring.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from v2gsim.population.fleet import DEPOT, HOME, PUBLIC, WORK

URBAN_SPEED_KM_PER_H = 11.4 / 0.42  # national platform 2020 [A]

# private_car_cn: per-driver trip length ~ lognormal(mu, sigma) km (module doc). sigma = sqrt(2 *
# ln(13.62 / 11.44)) minimises the share of drivers under 13.62 km (0.5 h) at a mean of 11.44 km:
# 72.3 %, the closest a lognormal with that mean comes to the published 71.4 %.
CN_TRIP_KM_MEAN = 11.44  # national platform 2020, Table 3-5 [A]
CN_TRIP_H_MEAN = 0.42  # national platform 2020, Table 3-4 [A]
CN_SHARE_UNDER_HALF_HOUR = 0.714  # share of private cars with mean trip < 0.5 h, 2020, Fig. 3-16 [A]
CN_TRIP_SIGMA = float(np.sqrt(2.0 * np.log(0.5 * CN_TRIP_KM_MEAN / CN_TRIP_H_MEAN / CN_TRIP_KM_MEAN)))
CN_TRIP_MU = float(np.log(CN_TRIP_KM_MEAN) - CN_TRIP_SIGMA**2 / 2.0)


@dataclass
class DayPlan:
    """Legs of one day for n drivers; shape (n, K) each. Times in hours after midnight.

    A leg departs at ``dep_h`` from where the previous leg ended (the base for the first leg),
    and arrives at ``dest`` at ``arr_h``, having driven ``km``. Inactive legs are ignored.
    """

    dep_h: np.ndarray
    arr_h: np.ndarray
    dest: np.ndarray
    km: np.ndarray
    active: np.ndarray


def _legs(n: int, k: int) -> DayPlan:
    # column-major: the planners and the engine (v2gsim.population.mobility) work a leg at a
    # time, on contiguous columns
    return DayPlan(*(np.zeros((n, k), t, order="F") for t in (float, float, np.int8, float, bool)))


def _normal(rng, mean, sd, lo, hi, n):
    return np.clip(rng.normal(mean, sd, n), lo, hi)


def _drive_h(km):
    return np.maximum(km / URBAN_SPEED_KM_PER_H, 5 / 60)


def private_commuter(rng: np.random.Generator, n: int, weekday: bool, km_scale: np.ndarray) -> DayPlan:
    """Home -> work -> home on commuting days (+ an evening errand), an outing on other days.

    The daily distance is the classic load-model lognormal [C]; the commute takes half of it (35 %
    each way on errand days, the errand 15 % each way), an outing half each way."""
    daily_km = np.clip(rng.lognormal(3.20, 0.88, n), 1.0, 400.0) * km_scale

    def legs(errand):
        return np.where(errand, 0.35, 0.5) * daily_km, 0.15 * daily_km, 0.5 * daily_km

    return _private_day(rng, n, weekday, legs)


def private_car_cn(rng: np.random.Generator, n: int, weekday: bool, km_scale: np.ndarray) -> DayPlan:
    """The private commuter's day with its trip lengths calibrated to China's national monitoring
    platform (2020): each driver's trips are ``trip_km`` long, lognormal with mean 11.44 km [A]
    and sigma chosen so that the share of drivers whose mean trip is under 0.5 h (13.6 km at the
    platform's 27.2 km/h) comes closest to the published 71.4 % [A] (see the module doc)."""
    trip_km = np.clip(rng.lognormal(CN_TRIP_MU, CN_TRIP_SIGMA, n), 0.5, 200.0) * km_scale

    def legs(errand):
        return trip_km, trip_km, trip_km

    return _private_day(rng, n, weekday, legs)


def _private_day(rng: np.random.Generator, n: int, weekday: bool, legs: Callable) -> DayPlan:
    """Legs 0-1 home->work->home and legs 2-3 an evening errand on commuting days; legs 0-1 an
    outing to a public place on other days. ``legs(errand)`` gives the km of a commute leg, an
    errand leg and an outing leg per driver (arrays of n)."""
    p = _legs(n, 4)
    commutes = (rng.random(n) < 0.9) if weekday else np.zeros(n, bool)  # 10 % of weekdays off [C]
    errand = commutes & (rng.random(n) < 0.3)  # 30 % add an evening errand [C]
    outing = ~commutes & (rng.random(n) < 0.7)  # 70 % go out on a day off [C]
    commute_km, errand_km, outing_km = legs(errand)

    dep0 = _normal(rng, 7.75, 0.75, 5.0, 10.0, n)
    arr0 = dep0 + _drive_h(commute_km)
    dep1 = np.maximum(_normal(rng, 17.75, 1.0, 15.0, 21.5, n), arr0 + 1.0)
    arr1 = dep1 + _drive_h(commute_km)
    dep2 = arr1 + rng.uniform(0.5, 2.0, n)
    arr2 = dep2 + _drive_h(errand_km)
    dep3 = arr2 + rng.uniform(0.5, 1.5, n)
    arr3 = dep3 + _drive_h(errand_km)
    out_dep = _normal(rng, 10.5, 2.0, 7.0, 18.0, n)
    out_arr = out_dep + _drive_h(outing_km)
    out_back = out_arr + rng.uniform(1.0, 4.0, n)
    out_home = out_back + _drive_h(outing_km)

    c, o = commutes, outing
    p.dep_h[:, 0] = np.where(c, dep0, out_dep)
    p.arr_h[:, 0] = np.where(c, arr0, out_arr)
    p.dest[:, 0] = np.where(c, WORK, PUBLIC)
    p.km[:, 0] = np.where(c, commute_km, outing_km)
    p.active[:, 0] = c | o
    p.dep_h[:, 1] = np.where(c, dep1, out_back)
    p.arr_h[:, 1] = np.where(c, arr1, out_home)
    p.dest[:, 1] = HOME
    p.km[:, 1] = p.km[:, 0]
    p.active[:, 1] = c | o
    p.dep_h[:, 2], p.arr_h[:, 2], p.dest[:, 2], p.km[:, 2], p.active[:, 2] = dep2, arr2, PUBLIC, errand_km, errand
    p.dep_h[:, 3], p.arr_h[:, 3], p.dest[:, 3], p.km[:, 3], p.active[:, 3] = dep3, arr3, HOME, errand_km, errand
    return p


def ride_hailing(rng: np.random.Generator, n: int, weekday: bool, km_scale: np.ndarray) -> DayPlan:
    """A long shift with a lunch and an afternoon break at public fast chargers."""
    p = _legs(n, 3)
    works = rng.random(n) < 6 / 7  # one day off a week [C]
    daily_km = np.clip(rng.normal(300.0, 60.0, n), 100.0, 500.0) * km_scale  # 200-400 km/day [C]
    dep0 = _normal(rng, 7.0, 0.75, 5.0, 9.5, n)
    arr0 = np.maximum(_normal(rng, 12.25, 0.5, 11.0, 13.5, n), dep0 + 1.0)
    dep1 = arr0 + rng.uniform(0.75, 1.5, n)
    arr1 = np.maximum(_normal(rng, 17.5, 0.5, 16.0, 19.0, n), dep1 + 1.0)
    dep2 = arr1 + rng.uniform(0.5, 1.0, n)
    arr2 = np.maximum(_normal(rng, 22.0, 0.75, 20.0, 23.75, n), dep2 + 0.5)
    for k, (d, a, dest, share) in enumerate(((dep0, arr0, PUBLIC, 0.4), (dep1, arr1, PUBLIC, 0.35), (dep2, arr2, HOME, 0.25))):
        p.dep_h[:, k], p.arr_h[:, k], p.dest[:, k], p.km[:, k], p.active[:, k] = d, a, dest, share * daily_km, works
    return p


def city_bus(rng: np.random.Generator, n: int, weekday: bool, km_scale: np.ndarray) -> DayPlan:
    """Two duty blocks a day from the depot, with a midday layover on the depot's chargers."""
    p = _legs(n, 2)
    daily_km = np.clip(rng.normal(200.0, 25.0, n), 100.0, 300.0) * km_scale  # 150-250 km/day [C]
    dep0 = _normal(rng, 6.0, 0.25, 5.0, 7.0, n)
    arr0 = _normal(rng, 12.5, 0.5, 11.0, 14.0, n)
    dep1 = arr0 + rng.uniform(1.5, 2.5, n)
    arr1 = np.maximum(_normal(rng, 22.0, 0.5, 20.0, 23.5, n), dep1 + 1.0)
    active = np.ones(n, bool)
    p.dep_h[:, 0], p.arr_h[:, 0], p.dest[:, 0], p.km[:, 0], p.active[:, 0] = dep0, arr0, DEPOT, 0.5 * daily_km, active
    p.dep_h[:, 1], p.arr_h[:, 1], p.dest[:, 1], p.km[:, 1], p.active[:, 1] = dep1, arr1, DEPOT, 0.5 * daily_km, active
    return p


def v2g_visitor(rng: np.random.Generator, n: int, weekday: bool, km_scale: np.ndarray) -> DayPlan:
    """A driver who answers a V2G station's discharge day (Shenzhen Lianhua Hill, 28 Mar 2025:
    4 CNY/kWh paid for energy fed back, against ~0.4 CNY/kWh to charge at night [A,
    eyeshenzhen.com 3 Apr 2025]): charged at home overnight, they drive to the station (the
    public site) once, arriving uniformly between 08:00 and 20:00 [C], stay 0.5-1 h [C] and drive
    home. Trip lengths are the national platform's (as ``private_car_cn``) [A]. Every day alike:
    it is a model of such a day, not of a week."""
    p = _legs(n, 2)
    trip_km = np.clip(rng.lognormal(CN_TRIP_MU, CN_TRIP_SIGMA, n), 0.5, 200.0) * km_scale
    arr0 = rng.uniform(8.0, 20.0, n)
    dep0 = arr0 - _drive_h(trip_km)
    dep1 = arr0 + rng.uniform(0.5, 1.0, n)
    arr1 = dep1 + _drive_h(trip_km)
    active = np.ones(n, bool)
    p.dep_h[:, 0], p.arr_h[:, 0], p.dest[:, 0], p.km[:, 0], p.active[:, 0] = dep0, arr0, PUBLIC, trip_km, active
    p.dep_h[:, 1], p.arr_h[:, 1], p.dest[:, 1], p.km[:, 1], p.active[:, 1] = dep1, arr1, HOME, trip_km, active
    return p


#: drivers sampled per kind of day by :func:`mean_daily_km`, and its own fixed seed (the figure is
#: a property of the archetype, the same in every run; no scenario stream is drawn)
MEAN_KM_SAMPLE = 4000
MEAN_KM_SEED = 20261203


@functools.cache
def mean_daily_km(archetype: str, workday_share: float) -> float:
    """An archetype's mean distance per calendar day, km (``km_scale`` 1): its own planner sampled
    for :data:`MEAN_KM_SAMPLE` drivers on a workday and on a day off (fixed seed), the two means
    weighted ``workday_share`` : ``1 - workday_share``. Days off, errands and outings count as the
    planner draws them (at a workday share of 0.68: ``private_car_cn`` 24.2 km, ``private_commuter``
    31.1 km, ``ride_hailing`` 254 km, ``city_bus`` 200 km). 0.0 for a name with no planner."""
    plan = PLANNERS.get(archetype)
    if plan is None:
        return 0.0
    n = MEAN_KM_SAMPLE
    km = []
    for k, weekday in enumerate((True, False)):
        rng = np.random.default_rng(np.random.SeedSequence(MEAN_KM_SEED, spawn_key=(k,)))
        p = plan(rng, n, weekday, np.ones(n))
        # summed in row-major order whatever the plan's layout (_legs: column-major), as always
        km.append(float(np.ascontiguousarray(p.km * p.active).sum()) / n)
    return workday_share * km[0] + (1.0 - workday_share) * km[1]


PLANNERS: dict[str, Callable[..., DayPlan]] = {
    "v2g_visitor": v2g_visitor,
    "private_commuter": private_commuter,
    "private_car_cn": private_car_cn,
    "ride_hailing": ride_hailing,
    "city_bus": city_bus,
}
