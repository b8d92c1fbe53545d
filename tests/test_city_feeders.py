"""The city on many feeders (issue 15 item 2): ``replicate:<N>:<network>`` networks, shared
sites spread over the district (``bus: spread``), and the bundled city on ten MV grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.physics.networks import is_simbench, load_network, spec_problem
from v2gsim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
LV = ROOT / "scenarios" / "lv_feeder.yaml"


def test_copies_are_islands_that_solve_like_the_original():
    one = load_network("case33bw")
    three = load_network("replicate:3:case33bw")
    assert len(three.bus) == 3 * len(one.bus) and len(three.line) == 3 * len(one.line)
    assert len(three.ext_grid) == 3 and len(set(three.ext_grid.bus)) == 3
    pp.runpp(one)
    pp.runpp(three)
    # each island carries the original's loads with its own slack: the same flows three times
    n = len(one.line)
    for k in range(3):
        np.testing.assert_allclose(three.res_line.loading_percent.to_numpy()[k * n:(k + 1) * n],
                                   one.res_line.loading_percent.to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(three.res_ext_grid.p_mw.to_numpy(), one.res_ext_grid.p_mw.iloc[0], rtol=1e-9)


def test_simbench_copies_keep_their_profiles():
    net = load_network("replicate:2:simbench:1-LV-semiurb4--0-sw")
    one = load_network("simbench:1-LV-semiurb4--0-sw")
    assert is_simbench(net) and len(net.load) == 2 * len(one.load)
    assert net.load.profile.tolist() == 2 * one.load.profile.tolist()


@pytest.mark.parametrize("spec, words", [
    ("replicate:0:case33bw", "1..200 copies"),
    ("replicate:x:case33bw", "whole number of copies"),
    ("replicate:3", "1..200 copies"),
    ("replicate:2:case33b", "unknown network"),
    ("replicate:2:replicate:2:case33bw", "replicate of a replicate"),
])
def test_bad_replicate_specs_are_named(spec, words):
    problem = spec_problem(spec)
    assert problem is not None and words in problem[0]


def test_bad_replicate_in_a_scenario_names_the_path():
    with pytest.raises(ScenarioError) as e:
        load_scenario(LV, {"feeder.network": "replicate:0:simbench:1-LV-semiurb4--0-sw"})
    assert any(p.path == "feeder.network" for p in e.value.problems)


def test_spread_site_draws_at_each_vehicles_own_second_bus():
    sc = load_scenario(LV, {"time.horizon_days": 1, "outputs.bus_voltages": False, "sites.1.bus": "spread",
                            "sites.1.chargers": 40, "population.0.count": 60})
    m = V2GModel(sc)
    f = m.feeder
    assert f.site_bus[1] == -1 and f._site_away.tolist() == [False, True]
    v = np.arange(m.fleet.n)
    p = np.ones(v.size)
    # the same vehicles at home and at the spread public site draw at different (own) buses
    at_home = f.ev_bus_kw(v, p, np.zeros(v.size, np.int64))
    at_public = f.ev_bus_kw(v, p, np.ones(v.size, np.int64))
    np.testing.assert_array_equal(at_home, np.bincount(f._veh_slot, minlength=f.n_ev))
    np.testing.assert_array_equal(at_public, np.bincount(f._veh_slot_away, minlength=f.n_ev))
    assert at_public.sum() == at_home.sum() == v.size
    assert not np.array_equal(f._veh_slot, f._veh_slot_away)
    # spread over the load buses, not one: no single bus takes a tenth of the public site's vehicles
    assert at_public.max() < 0.2 * v.size
    r = m.run()
    assert r.kpis["energy_charged_kwh"] > 0


def test_a_network_without_spread_sites_keeps_its_placement():
    # drawing the away buses only when a spread site exists keeps other scenarios' streams
    sc = load_scenario(LV, {"time.horizon_days": 1, "outputs.bus_voltages": False})
    f = V2GModel(sc).feeder
    assert f._veh_slot_away is None and f.site_bus[1] == 25
