"""The one limiter (v2gsim.engine.limits) for sites and swap stations -- the net power of a
connection within its limit -- and the typed site table strategies get (StrategyContext.sites)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import scenario
from v2gsim.engine.limits import deliverable_discharge_kw, first_in_line, limit_export, limit_import
from v2gsim.model import V2GModel
from v2gsim.strategies.base import Dispatch
from v2gsim.strategies import STRATEGIES

Uncontrolled = STRATEGIES["uncontrolled"]  # through the registry: importing a built-in module first would change the registration order


def test_by_hand():
    # site 0 (limit 10): 8 + 6 charging, 3 discharging: net 11 -> charging scaled by (10 + 3) / 14.
    # Site 1: 8 + 4 charging and 3 discharging is net 9: within, untouched although 12 > 10.
    # Site 2 (no limit) untouched.
    p = np.array([8.0, 6.0, -3.0, 8.0, 4.0, -3.0, 50.0, -50.0])
    g = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    lim = np.array([10.0, 10.0, np.inf])
    out = limit_import(p, g, lim, 3)
    np.testing.assert_allclose(out, [8 * 13 / 14, 6 * 13 / 14, -3.0, 8.0, 4.0, -3.0, 50.0, -50.0], rtol=1e-15)
    # export: 7 + 7 fed back while 2 kW charged at limit 7 -> discharging scaled by (7 + 2) / 14
    np.testing.assert_allclose(limit_export(np.array([-7.0, -7.0, 2.0]), np.zeros(3, np.int64), np.array([7.0]), 1, np.array([2.0])),
                               [-4.5, -4.5, 2.0])
    # a battery 2 kWh above its floor, 95 % efficient, gives at most 2 * 0.95 / 0.25 = 7.6 kW for 15 minutes
    assert deliverable_discharge_kw(np.array([12.0]), np.array([10.0]), np.array([0.95]), 0.25)[0] == pytest.approx(7.6)


powers = st.lists(st.floats(-500, 500, allow_nan=False, allow_subnormal=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(powers, st.lists(st.floats(0.1, 800), min_size=3, max_size=3), st.randoms(use_true_random=False))
def test_net_within_the_limit_pro_rata(p, limits, rnd):
    p = np.array(p)
    g = np.array([rnd.randrange(3) for _ in p])
    lim = np.array(limits)
    out = limit_import(p, g, lim, 3)
    charged = np.bincount(g, weights=np.maximum(out, 0), minlength=3)
    out = limit_export(out, g, lim, 3, charged)
    assert np.all(np.sign(out) * np.sign(p) >= 0) and np.all(np.abs(out) <= np.abs(p) + 1e-12)
    for k in range(3):
        m = g == k
        net = out[m].sum()
        assert -lim[k] * (1 + 1e-12) - 1e-9 <= net <= lim[k] * (1 + 1e-12) + 1e-9
        for d in (p[m] > 0, p[m] < 0):  # one factor per direction and connection
            if d.sum() > 1:
                r = out[m][d] / p[m][d]
                np.testing.assert_allclose(r, r[0], rtol=1e-9)
        if abs(p[m].sum()) <= lim[k]:  # a connection within its limit is not touched
            np.testing.assert_array_equal(out[m], p[m])


def test_a_site_charging_and_discharging_at_once_keeps_its_net_after_the_batteries(monkeypatch):
    # half the office's cars charge at full power while the others discharge at full power (and
    # reach their departure floor): the net at the 15 kW connection stays within +-15 kW after the
    # batteries answer, while the charging alone goes above 15 kW (the net, not each direction)
    def decide(self, obs):
        idx = obs.plugged_idx
        f = obs.fleet
        p = np.where(idx % 2 == 0, f.p_plug_max_kw[idx], -f.p_plug_max_kw[idx] * f.can_discharge[idx])
        return Dispatch(idx, p)

    monkeypatch.setattr(Uncontrolled, "decide", decide)
    sc = scenario(sites=[{"id": "homes", "kind": "home", "p_max_kw": 7},
                         {"id": "office", "kind": "work", "p_max_kw": 11, "chargers": 12, "bidirectional_share": 1.0, "p_limit_kw": 15}],
                  population=[{"archetype": "private_commuter", "count": 16, "vehicle": "byd_dolphin_44_v2g", "home_site": "homes",
                               "home_charger_share": 0.0, "work_site": "office"}])
    m = V2GModel(sc)
    office = sc.site_index()["office"]
    gross_over = 0
    for _ in range(m.n_clock):
        m.step()
        at = m.fleet.site == office
        p = m.fleet.p_kw[at]
        assert -15.0 - 1e-9 <= p.sum() <= 15.0 + 1e-9
        gross_over += np.maximum(p, 0).sum() > 15.0 + 1e-6
    assert gross_over > 0


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


def test_first_in_line_serves_each_site_in_arrival_order_up_to_its_free_places():
    # arrivals at sites 2, 0, 2, 2, 0, 1 in this order; free places: site 0 one, site 1 none, site 2 two
    site = np.array([2, 0, 2, 2, 0, 1])
    free = np.array([1, 0, 2])
    np.testing.assert_array_equal(first_in_line(site, free), [True, True, True, False, False, False])
    assert first_in_line(np.zeros(0, np.int64), free).size == 0
    # room for everyone at every site (the counted shortcut): all get a place
    np.testing.assert_array_equal(first_in_line(site, np.array([2, 1, 3])), [True] * 6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=40), st.lists(st.integers(0, 6), min_size=5, max_size=5))
def test_first_in_line_equals_serving_one_by_one(sites, free_places):
    """Against the rule written as a loop: in array order, each entry takes a place at its site
    while one is left (both the shortcut, where all fit, and the ranked path)."""
    site, free = np.array(sites, np.int64), np.array(free_places, np.int64)
    left = free.copy()
    want = np.zeros(site.size, bool)
    for i, s_i in enumerate(sites):
        if left[s_i] > 0:
            want[i], left[s_i] = True, left[s_i] - 1
    np.testing.assert_array_equal(first_in_line(site, free), want)
