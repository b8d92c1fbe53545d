"""The one limiter (v2gsim.engine.limits) for sites and swap stations, and the typed site table
strategies get (StrategyContext.sites)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import scenario
from v2gsim.engine.limits import limit_pro_rata
from v2gsim.model import V2GModel


def test_by_hand():
    # site 0 (limit 10): 8 + 4 charging -> scaled by 10/12; 3 discharging stays. Site 1 (no limit) untouched.
    p = np.array([8.0, 4.0, -3.0, 50.0, -50.0])
    out = limit_pro_rata(p, np.array([0, 0, 0, 1, 1]), np.array([10.0, np.inf]), 2)
    np.testing.assert_allclose(out, [8 * 10 / 12, 4 * 10 / 12, -3.0, 50.0, -50.0], rtol=1e-15)
    # discharging over the limit: 7 + 7 fed back at limit 7 -> half each
    np.testing.assert_allclose(limit_pro_rata(np.array([-7.0, -7.0, 2.0]), np.zeros(3, np.int64), np.array([7.0]), 1), [-3.5, -3.5, 2.0])


powers = st.lists(st.floats(-500, 500, allow_nan=False, allow_subnormal=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(powers, st.lists(st.floats(0.1, 800), min_size=3, max_size=3), st.randoms(use_true_random=False))
def test_each_direction_within_its_limit_pro_rata(p, limits, rnd):
    p = np.array(p)
    g = np.array([rnd.randrange(3) for _ in p])
    lim = np.array(limits)
    out = limit_pro_rata(p, g, lim, 3)
    assert np.all(np.sign(out) == np.sign(p)) and np.all(np.abs(out) <= np.abs(p) + 1e-12)
    for k in range(3):
        m = g == k
        load, feed = np.maximum(out[m], 0).sum(), np.maximum(-out[m], 0).sum()
        assert load <= lim[k] * (1 + 1e-12) and feed <= lim[k] * (1 + 1e-12)
        for d in (p[m] > 0, p[m] < 0):  # one factor per direction and connection
            if d.sum() > 1:
                r = out[m][d] / p[m][d]
                np.testing.assert_allclose(r, r[0], rtol=1e-12)
        # a direction within its limit is not touched
        if np.maximum(p[m], 0).sum() <= lim[k]:
            np.testing.assert_array_equal(out[m][p[m] > 0], p[m][p[m] > 0])


def test_strategies_get_the_typed_site_table():
    sc = scenario(sites=[{"id": "homes", "kind": "home", "p_max_kw": 7},
                         {"id": "office", "kind": "work", "p_max_kw": 11, "chargers": 3, "p_limit_kw": 20},
                         {"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 2}],
                  business_models=[{"kind": "uncontrolled", "sites": ["dc", "office"]}, {"kind": "uncontrolled"}])
    m = V2GModel(sc)
    t = m.aggregators[0].strategy.context.sites
    assert t.ids == ("dc", "office") and t.kind == ("public", "work")
    np.testing.assert_array_equal(t.index, [2, 1])
    np.testing.assert_array_equal(t.p_limit_kw, [np.inf, 20.0])
    np.testing.assert_array_equal(t.ports, [2, 3])
    assert not t.p_limit_kw.flags.writeable
    res = m.run()
    office = res.sites[res.sites["site_id"] == "office"]["p_kw"]
    assert office.max() <= 20.0 + 1e-9
