"""The v2g_visitor archetype (Lianhua Hill pilot): one visit a day to the public site, between
08:00 and 20:00, 0.5-1 h long, home by the national platform's trip length."""

import numpy as np

from v2gsim.population.archetypes import CN_TRIP_KM_MEAN, v2g_visitor
from v2gsim.population.fleet import HOME, PUBLIC


def test_one_visit_a_day_in_the_window():
    n = 20_000
    p = v2g_visitor(np.random.default_rng(4), n, True, np.ones(n))
    assert p.active.all() and p.dest[:, 0].tolist() == [PUBLIC] * n and (p.dest[:, 1] == HOME).all()
    assert (p.arr_h[:, 0] >= 8.0).all() and (p.arr_h[:, 0] <= 20.0).all()
    stay = p.dep_h[:, 1] - p.arr_h[:, 0]
    assert (stay >= 0.5).all() and (stay <= 1.0).all()
    assert (p.dep_h[:, 0] < p.arr_h[:, 0]).all() and (p.arr_h[:, 1] > p.dep_h[:, 1]).all() and (p.arr_h[:, 1] < 24).all()
    assert np.array_equal(p.km[:, 0], p.km[:, 1])
    # trips are the national platform's: mean 11.44 km [A] (clipped tails move it a little)
    assert abs(p.km[:, 0].mean() - CN_TRIP_KM_MEAN) < 0.2
    # arrivals spread evenly over the 12 hours: each hour holds about 1/12 of them
    hours = np.bincount(np.floor(p.arr_h[:, 0] - 8).astype(int), minlength=12)[:12] / n
    assert np.allclose(hours, 1 / 12, atol=0.01)
