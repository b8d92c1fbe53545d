"""Driver archetypes: one day's trip chain for a whole group at once.

Each archetype is a function ``plan(rng, n, weekday, km_scale) -> DayPlan`` that samples,
vectorised over the n drivers, a fixed number of legs (some masked off). A day starts and ends
at the driver's base (home, or the depot for buses); nights across midnight are not modelled.

Figures (see ../shared/DOMAIN.md; tags A/B/C as there):
- private trips: mean 11.4 km in 0.42 h, so ~27 km/h average urban speed [A];
- private daily distance ~ lognormal(mu=3.20, sigma=0.88) km, the classic Chinese load-model
  assumption [C], mean ~36 km, close to the 40-50 km/day for private BEVs [C];
- ride-hailing/taxi 200-400 km/day [C]; city bus 150-250 km/day [C];
- departure and return times: commute peaks around 07:45 and 17:45, consistent with the classic
  assumption that charging starts ~ N(17.6 h, 3.4 h) [C]. Shares of commuting days, errands and
  weekend outings are assumptions [C], stated next to each number below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from v2gsim.population.fleet import DEPOT, HOME, PUBLIC, WORK

URBAN_SPEED_KM_PER_H = 11.4 / 0.42  # national platform 2020 [A]


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
    return DayPlan(
        np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k), np.int8), np.zeros((n, k)), np.zeros((n, k), bool)
    )


def _normal(rng, mean, sd, lo, hi, n):
    return np.clip(rng.normal(mean, sd, n), lo, hi)


def _drive_h(km):
    return np.maximum(km / URBAN_SPEED_KM_PER_H, 5 / 60)


def private_commuter(rng: np.random.Generator, n: int, weekday: bool, km_scale: np.ndarray) -> DayPlan:
    """Home -> work -> home on commuting days (+ an evening errand), an outing on other days."""
    p = _legs(n, 4)
    daily_km = np.clip(rng.lognormal(3.20, 0.88, n), 1.0, 400.0) * km_scale
    commutes = (rng.random(n) < 0.9) if weekday else np.zeros(n, bool)  # 10 % of weekdays off [C]
    errand = commutes & (rng.random(n) < 0.3)  # 30 % add an evening errand [C]
    outing = ~commutes & (rng.random(n) < 0.7)  # 70 % go out on a day off [C]
    commute_km = np.where(errand, 0.35, 0.5) * daily_km

    # commuting days: legs 0-1 home->work->home, legs 2-3 the errand
    dep0 = _normal(rng, 7.75, 0.75, 5.0, 10.0, n)
    arr0 = dep0 + _drive_h(commute_km)
    dep1 = np.maximum(_normal(rng, 17.75, 1.0, 15.0, 21.5, n), arr0 + 1.0)
    arr1 = dep1 + _drive_h(commute_km)
    dep2 = arr1 + rng.uniform(0.5, 2.0, n)
    errand_km = 0.15 * daily_km
    arr2 = dep2 + _drive_h(errand_km)
    dep3 = arr2 + rng.uniform(0.5, 1.5, n)
    arr3 = dep3 + _drive_h(errand_km)
    # days off: legs 0-1 an outing to a public place
    out_dep = _normal(rng, 10.5, 2.0, 7.0, 18.0, n)
    out_arr = out_dep + _drive_h(0.5 * daily_km)
    out_back = out_arr + rng.uniform(1.0, 4.0, n)
    out_home = out_back + _drive_h(0.5 * daily_km)

    c, o = commutes, outing
    p.dep_h[:, 0] = np.where(c, dep0, out_dep)
    p.arr_h[:, 0] = np.where(c, arr0, out_arr)
    p.dest[:, 0] = np.where(c, WORK, PUBLIC)
    p.km[:, 0] = np.where(c, commute_km, 0.5 * daily_km)
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


PLANNERS: dict[str, Callable[..., DayPlan]] = {
    "private_commuter": private_commuter,
    "ride_hailing": ride_hailing,
    "city_bus": city_bus,
}
