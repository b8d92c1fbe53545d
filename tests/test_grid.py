"""Feeder power flow, networks, placement and profiles (v2gsim.physics.grid / networks)."""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pandas as pd
import pytest

pp = pytest.importorskip("pandapower")
pytest.importorskip("lightsim2grid")
sb = pytest.importorskip("simbench")

from v2gsim.physics.grid import CapacityOnly, PowerFlow, headroom_kw  # noqa: E402
from v2gsim.physics.networks import (  # noqa: E402
    assign_buses,
    check_bus,
    load_buses,
    load_network,
    network_profiles,
)

SB_LV = "simbench:1-LV-semiurb4--0-sw"
SB_MV = "simbench:1-MV-urban--0-sw"


@functools.lru_cache(maxsize=None)
def _net(spec):
    return load_network(spec)


@functools.lru_cache(maxsize=None)
def _pf(spec):
    return PowerFlow(_net(spec))


def _nominal(net):
    sc = net.load["scaling"].to_numpy(float)
    return net.load["p_mw"].to_numpy(float) * sc, net.load["q_mvar"].to_numpy(float) * sc


def _runpp(net, p, q, p_sgen=None):
    net = copy.deepcopy(net)
    net.load["p_mw"] = p
    net.load["q_mvar"] = q
    net.load["scaling"] = 1.0
    if p_sgen is not None:
        net.sgen["p_mw"] = p_sgen
        net.sgen["scaling"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, numba=False, tolerance_mva=1e-10)
    return net


def test_switches_parallel_branches_and_dead_areas_match_pandapower():
    """Open bus-bus switch (a de-energised feeder), parallel lines and a parallel trafo."""
    net = load_network("cigre_lv")
    net.line.loc[net.line.index[[0, 3, 5]], "parallel"] = 2
    net.trafo.loc[net.trafo.index[0], "parallel"] = 2
    net.switch.loc[net.switch.index[1], "closed"] = False
    p, q = _nominal(net)
    res = PowerFlow(net).solve(p, q)
    ref = _runpp(net, p, q)
    vm_ref = ref.res_bus["vm_pu"].to_numpy()
    assert np.isnan(vm_ref).sum() > 0
    np.testing.assert_array_equal(np.isnan(res.vm_pu), np.isnan(vm_ref))
    np.testing.assert_allclose(res.vm_pu, vm_ref, atol=1e-6)
    np.testing.assert_allclose(res.line_loading_pct, ref.res_line["loading_percent"], atol=1e-3)
    np.testing.assert_allclose(res.trafo_loading_pct, ref.res_trafo["loading_percent"], atol=1e-3)
    assert np.isfinite(res.line_loading_max_pct) and res.line_max in net.line.index


def test_result_shapes_and_index():
    net, pf = _net(SB_LV), _pf(SB_LV)
    res = pf.solve(*_nominal(net))
    assert res.vm_pu.shape == (len(net.bus),)
    assert res.line_loading_pct.shape == (len(net.line),)
    assert res.trafo_loading_pct.shape == (len(net.trafo),)
    assert res.line_max in net.line.index
    with pytest.raises(ValueError, match="shape"):
        pf.solve(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("spec", ["case33bw", SB_LV])
def test_non_convergence_does_not_raise_and_recovers(spec):
    net = _net(spec)
    pf = PowerFlow(net)
    p0, q0 = _nominal(net)
    ok = pf.solve(p0, q0)
    assert ok.converged
    bad = pf.solve(p0 * 1000, q0 * 1000)
    assert not bad.converged
    assert np.all(np.isnan(bad.vm_pu)) and np.isnan(bad.trafo_loading_max_pct)
    assert np.isnan(bad.losses_kw) and np.isnan(headroom_kw(bad, pf))
    again = pf.solve(p0, q0)
    assert again.converged
    np.testing.assert_allclose(again.vm_pu, ok.vm_pu, atol=1e-9)
    nan_in = pf.solve(np.full_like(p0, np.nan), q0)
    assert not nan_in.converged
    assert pf.solve(p0, q0).converged


def test_unknown_network_name_is_clear():
    with pytest.raises(ValueError) as e:
        load_network("case33")
    msg = str(e.value)
    assert "case33bw" in msg and "did you mean" in msg and "cigre_lv" in msg
    with pytest.raises(ValueError, match="SimBench"):
        load_network("simbench:1-LV-semiurb9--0-sw")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_network("file:/nonexistent/nope.json")


def test_file_network_roundtrip(tmp_path):
    net = _net("case33bw")
    path = tmp_path / "net.json"
    pp.to_json(net, str(path))
    back = load_network(f"file:{path}")
    assert len(back.bus) == len(net.bus) and len(back.load) == len(net.load)


def test_load_network_returns_independent_copies():
    a = load_network("cigre_lv")
    a.load["p_mw"] = 99.0
    assert (load_network("cigre_lv").load["p_mw"] != 99.0).all()


def test_capacity_only_sums_loads_on_transformer():
    net = _net(SB_LV)
    cap = CapacityOnly(net)
    rng = np.random.default_rng(3)
    p0, q0 = _nominal(net)
    for _ in range(10):
        f = rng.uniform(0, 3, len(p0))
        ps = rng.uniform(0, 0.01, len(net.sgen))
        res = cap.solve(p0 * f, q0 * f, ps)
        p_tot = (p0 * f).sum() - ps.sum()
        q_tot = (q0 * f).sum() - (net.sgen["q_mvar"] * net.sgen["scaling"]).sum()
        sn = (net.trafo["sn_mva"] * net.trafo["parallel"] * net.trafo["df"]).sum()
        assert res.trafo_loading_max_pct == pytest.approx(np.hypot(p_tot, q_tot) / sn * 100, rel=1e-12)
        assert res.p_trafo_kw.sum() == pytest.approx(p_tot * 1e3, rel=1e-12)
        assert np.all(np.isnan(res.vm_pu)) and np.isnan(res.vm_min_pu)
    # close to the AC result when losses are small
    ac = _pf(SB_LV).solve(p0, q0)
    assert cap.solve(p0, q0).trafo_loading_max_pct == pytest.approx(ac.trafo_loading_max_pct, rel=0.05)


@pytest.mark.parametrize("spec", ["kerber_landnetz_freileitung_1", SB_LV])
def test_headroom_kw_reaches_the_limit(spec):
    """Adding the headroom behind the binding element brings it to ~100 % (linear estimate)."""
    net = _net(spec)
    pf = PowerFlow(net)
    p0, q0 = _nominal(net)
    res = pf.solve(p0 * 0.3, q0 * 0.3)
    h = headroom_kw(res, pf)
    assert h > 0
    k = net.line.index.get_loc(res.line_max)
    bus = net.line["to_bus"].iloc[k]
    on_bus = np.flatnonzero(net.load["bus"].to_numpy() == bus)
    i = on_bus[0] if len(on_bus) else int(np.argmax(p0))
    p = p0 * 0.3
    p[i] += h / 1e3
    after = pf.solve(p, q0 * 0.3)
    worst = max(after.trafo_loading_max_pct, after.line_loading_pct[k])
    assert 85 < worst < 115, (h, worst)
    assert headroom_kw(res, pf, limit_pct=50) < h
    # the transformer-only estimate never falls below the combined one
    assert headroom_kw(res) >= h - 1e-9


# ----------------------------------------------------------------------------- placement


def test_load_buses_weights():
    net = _net(SB_LV)
    buses, w = load_buses(net)
    assert np.isclose(w.sum(), 1.0) and np.all(w > 0)
    p = net.load.groupby("bus")["p_mw"].sum()
    np.testing.assert_allclose(w, (p / p.sum()).loc[buses].to_numpy())


def test_assign_buses_proportional_and_deterministic():
    net = _net(SB_LV)
    buses, w = load_buses(net)
    a = assign_buses(20000, net, np.random.default_rng(7))
    b = assign_buses(20000, net, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    counts = pd.Series(a).value_counts().reindex(buses, fill_value=0).to_numpy()
    assert np.all(np.abs(counts - 20000 * w) <= 1.0)  # systematic sampling: within one item
    c = assign_buses(20000, net, np.random.default_rng(8))
    assert not np.array_equal(a, c)
    assert set(np.unique(a)) <= set(buses)


def test_assign_buses_explicit_and_check_bus():
    net = _net("case33bw")
    ids = [f"v{i}" for i in range(10)]
    out = assign_buses(10, net, np.random.default_rng(0), explicit={"v3": 5}, ids=ids)
    assert out[3] == 5
    assert assign_buses(10, net, np.random.default_rng(0), explicit={"7": 9})[7] == 9
    assert check_bus(net, 5) is None
    msg = check_bus(net, 999)
    assert "999" in msg and "does not exist" in msg
    assert check_bus(net, "x") is not None
    with pytest.raises(ValueError, match="999"):
        assign_buses(10, net, np.random.default_rng(0), explicit={"v3": 999}, ids=ids)


# ----------------------------------------------------------------------------- profiles


def test_profile_shapes_and_energy_conservation():
    net = _net(SB_LV)
    start = pd.Timestamp("2026-07-06 00:00")
    p15, pv15 = network_profiles(net, start, 15, 96 * 7)
    p60, pv60 = network_profiles(net, start, 60, 24 * 7)
    assert p15.shape == (96 * 7, len(net.load)) and pv15.shape == (96 * 7, len(net.sgen))
    assert p60.shape == (24 * 7, len(net.load))
    np.testing.assert_allclose(p60.sum(0) * 1.0, p15.sum(0) * 0.25, rtol=1e-12)
    np.testing.assert_allclose(pv60.sum(0) * 1.0, pv15.sum(0) * 0.25, rtol=1e-12)
    np.testing.assert_allclose(p60, p15.reshape(24 * 7, 4, -1).mean(1), rtol=1e-12)
    # below 15 min: hold
    p5, _ = network_profiles(net, start, 5, 12)
    np.testing.assert_allclose(p5, np.repeat(p15[:4], 3, axis=0), rtol=1e-12)
    assert np.all(pv15 >= 0) and pv15.max() > 0


def test_simbench_profile_values_match_package():
    net = _net(SB_LV)
    absval = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    ref_p = absval[("load", "p_mw")]
    ref_pv = absval[("sgen", "p_mw")]
    # hand-picked: (scenario time, 2016 slot with the same month/day/time)
    cases = [("2016-01-01 00:00", 0), ("2026-07-06 12:30", (pd.Timestamp("2016-07-06").dayofyear - 1) * 96 + 50),
             ("2024-02-29 23:45", (60 - 1) * 96 + 95), ("2025-12-31 18:15", 365 * 96 + 73)]
    for when, slot in cases:
        p, pv = network_profiles(net, pd.Timestamp(when), 15, 1)
        np.testing.assert_allclose(p[0], ref_p.iloc[slot].to_numpy() * 1e3, rtol=1e-12)
        np.testing.assert_allclose(pv[0], ref_pv.iloc[slot].to_numpy() * 1e3, rtol=1e-12)


def test_profiles_tile_over_years_and_timezones():
    net = _net(SB_LV)
    a, _ = network_profiles(net, pd.Timestamp("2026-03-01"), 60, 24)
    b, _ = network_profiles(net, pd.Timestamp("2030-03-01"), 60, 24)
    np.testing.assert_array_equal(a, b)
    c, _ = network_profiles(net, pd.Timestamp("2026-03-01", tz="Asia/Shanghai"), 60, 24)
    np.testing.assert_array_equal(a, c)
    # a two-year horizon wraps around New Year
    d, _ = network_profiles(net, pd.Timestamp("2026-12-31"), 1440, 400)
    assert d.shape == (400, len(net.load)) and np.all(np.isfinite(d))


def test_standard_profile_for_non_simbench_net():
    net = _net("cigre_lv")
    p, pv = network_profiles(net, pd.Timestamp("2026-01-15"), 15, 96 * 14)
    nominal_kw = net.load["p_mw"].to_numpy() * net.load["scaling"].to_numpy() * 1e3
    assert p.shape == (96 * 14, len(net.load)) and pv.shape == (96 * 14, 0)
    assert np.all(p <= nominal_kw + 1e-9) and np.all(p >= 0)
    # every load follows the same shape: ratios constant over time
    ratio = p / nominal_kw
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(len(net.load), 1), rtol=1e-9)
    assert ratio.max() > 0.3  # H0 winter evening peak is near the annual peak
