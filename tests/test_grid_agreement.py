"""`PowerFlow` against ``pandapower.runpp`` on the same injections: every network family the docs
call supported, and hand-built topologies (several infeeds, islands, open ends, out-of-service
elements, PV generators, shunts, storage)."""

from __future__ import annotations

import functools
import os
import zlib

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")
pytest.importorskip("lightsim2grid")
sb = pytest.importorskip("simbench")

from pf_reference import assert_agrees, check_network, disagreement, runpp_reference  # noqa: E402

from v2gsim.physics.grid import PowerFlow, unsupported_reason  # noqa: E402
from v2gsim.physics.networks import load_network, simbench_unsupported_reason  # noqa: E402

# ------------------------------------------------------------------- the networks the docs list

# Each network family, with and without switches, scenarios 0 to 2 (every one of the 265
# networks is in bench/bench_feeder.py --agreement: loading them all takes over an hour).
FAST = ["case33bw", "cigre_lv", "cigre_mv", "mv_oberrhein", "kerber_landnetz_freileitung_1",
        "kb_extrem_vorstadtnetz_trafo_2", "simbench:1-LV-semiurb4--0-sw",
        "simbench:1-MV-urban--0-sw", "simbench:1-HV-mixed--0-sw"]
SLOW = ["lv_schutterwald", "kerber_vorstadtnetz_kabel_1", "simbench:1-LV-rural1--0-sw",
        "simbench:1-LV-rural2--1-sw", "simbench:1-LV-urban6--2-no_sw", "simbench:1-MV-rural--2-no_sw",
        "simbench:1-MV-semiurb--0-sw", "simbench:1-MV-comm--1-sw", "simbench:1-HV-urban--2-sw",
        "simbench:1-HV-mixed--1-no_sw", "simbench:1-HVMV-mixed-2.102-0-sw",
        "simbench:1-HVMV-urban-3.201-1-no_sw", "simbench:1-MVLV-rural-1.108-2-sw",
        "simbench:1-MVLV-comm-4.416-0-no_sw",
        # heavily loaded: after a large jump in load a warm start can settle on another solution
        "simbench:1-EHVHV-mixed-all-0-sw"]


@pytest.fixture(scope="session")
def net_of(request):
    """``load_network`` with the SimBench grids kept (without profiles) as pandapower JSON in the
    pytest cache: loading one takes 3–20 s, reading it back under a second."""
    cache = request.config.cache.mkdir(f"v2gsim-simbench-{sb.__version__}")

    @functools.lru_cache(maxsize=None)
    def load(spec):
        if not spec.startswith("simbench:"):
            return load_network(spec)
        path = cache / (spec.removeprefix("simbench:") + ".json")
        if path.is_file():
            return pp.from_json(str(path))
        net = load_network(spec)
        net.pop("profiles", None)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        pp.to_json(net, str(tmp))
        tmp.replace(path)  # atomic: xdist workers may write the same grid
        return net

    return load


def _supported(net, spec) -> bool:
    """Validation (SimBench: by the code alone) and the net itself agree that it is supported."""
    by_code = simbench_unsupported_reason(spec.removeprefix("simbench:")) is None \
        if spec.startswith("simbench:") else True
    assert by_code == (unsupported_reason(net) is None), (spec, unsupported_reason(net))
    return by_code


@pytest.mark.parametrize("spec", FAST)
def test_listed_networks_agree_with_runpp(spec, net_of):
    assert _supported(net_of(spec), spec)
    assert_agrees(check_network(net_of(spec), 10, zlib.crc32(spec.encode())))


@pytest.mark.slow
@pytest.mark.parametrize("spec", SLOW)
def test_more_listed_networks_agree_with_runpp(spec, net_of):
    assert _supported(net_of(spec), spec)
    assert_agrees(check_network(net_of(spec), 2, zlib.crc32(spec.encode())))


@pytest.mark.slow
def test_simbench_grids_with_dc_lines_are_rejected_by_their_code(net_of):
    spec = "simbench:1-EHV-mixed--1-no_sw"
    net = net_of(spec)
    assert not _supported(net, spec)
    assert "dcline" in unsupported_reason(net)
    with pytest.raises(ValueError, match="dcline"):
        PowerFlow(net)


# ------------------------------------------------------------------- hand-built topologies


def _feeder(n_ext_grids=1):
    """A meshed 20 kV feeder behind a 110/20 kV trafo (shift 150°), loads on every MV bus."""
    net = pp.create_empty_network()
    hv = pp.create_bus(net, 110.0)
    mv = pp.create_buses(net, 8, 20.0)
    pp.create_ext_grid(net, hv, vm_pu=1.02)
    pp.create_transformer(net, hv, mv[0], "25 MVA 110/20 kV")
    net.trafo["shift_degree"] = 150.0
    for a, b in zip(mv[:-1], mv[1:]):
        pp.create_line(net, a, b, 2.0, "NA2XS2Y 1x240 RM/25 12/20 kV")
    pp.create_line(net, mv[7], mv[3], 3.0, "NA2XS2Y 1x240 RM/25 12/20 kV")  # a ring
    for b in mv[1:]:
        pp.create_load(net, b, p_mw=1.2, q_mvar=0.4)
    if n_ext_grids > 1:
        pp.create_ext_grid(net, mv[5], vm_pu=1.01, va_degree=-152.0)
    return net, hv, mv


def _solve_both(net, factor=1.0):
    sc = net.load["scaling"].to_numpy(float)
    p = net.load["p_mw"].to_numpy(float) * sc * factor
    q = net.load["q_mvar"].to_numpy(float) * sc * factor
    res = PowerFlow(net).solve(p, q)
    assert res.converged
    return res, runpp_reference(net, p, q)


def test_several_infeeds_in_one_network_each_hold_their_angle():
    net, hv, mv = _feeder(n_ext_grids=2)
    res, ref = _solve_both(net)
    assert_agrees(disagreement(res, ref))
    # the second infeed holds its own angle and magnitude; a shared (distributed) slack would let
    # its angle float
    assert res.va_degree[mv[5]] == pytest.approx(-152.0, abs=1e-9)
    assert res.vm_pu[mv[5]] == pytest.approx(1.01, abs=1e-9)
    assert res.va_degree[hv] == pytest.approx(0.0, abs=1e-9)
    # after a step that does not converge, the flat restart holds both angles again
    pf = PowerFlow(net)
    p, q = net.load["p_mw"].to_numpy(float), net.load["q_mvar"].to_numpy(float)
    assert not pf.solve(p * 100, q * 100).converged
    again = pf.solve(p, q)
    np.testing.assert_allclose(again.va_degree, res.va_degree, atol=1e-7)


def test_islands_each_with_an_infeed_are_all_solved():
    net, hv, mv = _feeder(n_ext_grids=2)
    # cut the feeder between bus 3 and 4 and the ring: two islands, each with an infeed
    net.line.loc[[3, 7], "in_service"] = False
    res, ref = _solve_both(net)
    assert res.n_bus_unsolved == 0 and not np.isnan(res.vm_pu).any()
    assert_agrees(disagreement(res, ref))


def test_island_without_infeed_is_unsolved_and_counted():
    net, hv, mv = _feeder()
    net.line.loc[[3, 7], "in_service"] = False  # buses mv[4..7] lose their supply
    res, ref = _solve_both(net)
    assert res.n_bus_unsolved == 4
    assert np.isnan(res.vm_pu[mv[4:]]).all() and np.isfinite(res.vm_pu[mv[:4]]).all()
    assert np.isnan(res.line_loading_pct[[4, 5, 6]]).all()
    assert_agrees(disagreement(res, ref))


def test_line_switched_open_towards_a_dead_island_keeps_its_charging():
    """A long cable, open at its far end, feeds its charging current from the live end."""
    net, hv, mv = _feeder()
    net.line.loc[3, "length_km"] = 15.0
    net.line.loc[7, "in_service"] = False
    pp.create_switch(net, mv[4], 3, et="l", closed=False)  # line 3 open at bus 4: 4..7 dead
    res, ref = _solve_both(net, 0.1)
    assert res.n_bus_unsolved == 4
    assert res.line_loading_pct[3] > 1.0  # charging current only
    assert_agrees(disagreement(res, ref))


def test_line_open_at_both_ends_and_out_of_service_elements():
    net, hv, mv = _feeder()
    pp.create_switch(net, mv[2], 2, et="l", closed=False)
    pp.create_switch(net, mv[3], 2, et="l", closed=False)  # line 2 open at both ends
    net.load.loc[0, "in_service"] = False
    net.line.loc[7, "in_service"] = False
    res, ref = _solve_both(net)
    assert res.n_bus_unsolved == 5
    assert_agrees(disagreement(res, ref))


def test_out_of_service_bus_opens_the_lines_ends_and_drops_its_trafo():
    net, hv, mv = _feeder()
    lv = pp.create_bus(net, 0.4)
    pp.create_transformer(net, mv[2], lv, "0.63 MVA 20/0.4 kV")
    pp.create_load(net, lv, p_mw=0.2)
    net.bus.loc[[mv[6], lv], "in_service"] = False  # line 5 and 6 end at an out-of-service bus
    res, ref = _solve_both(net)
    assert np.isnan(res.trafo_loading_pct[1])
    assert_agrees(disagreement(res, ref))


def test_trafo_switched_open_on_one_side_and_parallel_branches():
    net, hv, mv = _feeder()
    lv = pp.create_bus(net, 0.4)
    pp.create_transformer(net, mv[2], lv, "0.63 MVA 20/0.4 kV")
    pp.create_switch(net, lv, 1, et="t", closed=False)  # idling trafo: magnetising only
    net.line.loc[[0, 1], "parallel"] = 2
    net.trafo.loc[0, "parallel"] = 2
    res, ref = _solve_both(net)
    assert res.n_bus_unsolved == 1
    assert 0 < res.trafo_loading_pct[1] < 5
    assert_agrees(disagreement(res, ref))


def test_pv_generators_shunts_storage_and_bus_bus_switches():
    net, hv, mv = _feeder()
    pp.create_gen(net, mv[6], p_mw=3.0, vm_pu=1.03, scaling=0.8)  # voltage-controlled (PV)
    pp.create_shunt(net, mv[4], q_mvar=-0.8, p_mw=0.01, step=2, max_step=3, vn_kv=21.0)
    pp.create_storage(net, mv[3], p_mw=-0.5, max_e_mwh=2.0, q_mvar=0.1, scaling=0.5)
    pp.create_sgen(net, mv[7], p_mw=1.0, q_mvar=-0.1)
    extra = pp.create_bus(net, 20.0)
    pp.create_switch(net, mv[7], extra, et="b", closed=True)  # fused with mv[7]
    pp.create_load(net, extra, p_mw=0.3)
    res, ref = _solve_both(net)
    assert res.vm_pu[mv[6]] == pytest.approx(1.03, abs=1e-9)
    assert_agrees(disagreement(res, ref))


def test_slack_generator_instead_of_external_grid():
    net, hv, mv = _feeder()
    net.ext_grid["in_service"] = False
    pp.create_gen(net, hv, p_mw=0.0, vm_pu=1.02, slack=True)
    res, ref = _solve_both(net)
    assert_agrees(disagreement(res, ref))


# ------------------------------------------------------------------- what is rejected, and why


@pytest.mark.parametrize("build, words", [
    (lambda n, mv: pp.create_impedance(n, mv[1], mv[2], 0.01, 0.01, 1.0), "impedance"),
    (lambda n, mv: pp.create_ward(n, mv[1], 0.1, 0.1, 0.0, 0.0), "ward"),
    (lambda n, mv: pp.create_dcline(n, mv[1], mv[6], 1.0, 0.0, 0.0, 1.0, 1.0), "dcline"),
    (lambda n, mv: n.load.__setitem__("const_z_p_percent", 50.0), "voltage-dependent"),
    (lambda n, mv: pp.create_switch(n, mv[1], pp.create_bus(n, 20.0), et="b", z_ohm=0.5), "z_ohm"),
    (lambda n, mv: n.ext_grid.__setitem__("in_service", False), "no in-service external grid"),
    (lambda n, mv: pp.create_gen(n, mv[3], 0.0, slack=True), "slack=True"),
])
def test_unsupported_networks_are_rejected_with_the_reason(build, words):
    net, hv, mv = _feeder()
    assert unsupported_reason(net) is None
    build(net, mv)
    reason = unsupported_reason(net)
    assert reason is not None and words in reason
    with pytest.raises(ValueError, match=words):
        PowerFlow(net)


def test_out_of_service_unsupported_elements_are_ignored():
    net, hv, mv = _feeder()
    pp.create_impedance(net, mv[1], mv[2], 0.01, 0.01, 1.0, in_service=False)
    assert unsupported_reason(net) is None
    res, ref = _solve_both(net)
    assert_agrees(disagreement(res, ref))


def test_out_of_service_bus_fused_by_a_closed_switch_has_no_voltage():
    net, hv, mv = _feeder()
    extra = pp.create_bus(net, 20.0, in_service=False)
    pp.create_switch(net, mv[2], extra, et="b", closed=True)
    res, ref = _solve_both(net)
    assert np.isnan(res.vm_pu[extra]) and res.n_bus_unsolved == 0
    assert_agrees(disagreement(res, ref))


def test_tap_changers_as_pandapower_applies_them():
    """A ratio tap off a non-zero neutral (lv side); a tap position without a changer type, and
    one without a step, are ignored as pandapower does."""
    net, hv, mv = _feeder()
    net.trafo.loc[0, ["tap_changer_type", "tap_side", "tap_neutral", "tap_pos", "tap_step_percent"]] = \
        ["Ratio", "lv", 2, 5, 1.5]
    for kind, step in ((None, 2.5), ("Ratio", np.nan)):
        lv = pp.create_bus(net, 0.4)
        t = pp.create_transformer(net, mv[2], lv, "0.63 MVA 20/0.4 kV")
        net.trafo.loc[t, ["tap_changer_type", "tap_side", "tap_neutral", "tap_pos", "tap_step_percent"]] = \
            [kind, "hv", 0, 2, step]
        pp.create_load(net, lv, p_mw=0.3)
    res, ref = _solve_both(net)
    assert_agrees(disagreement(res, ref))
