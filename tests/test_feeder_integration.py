"""The feeder as a real network inside the model (issue 3): placement, power flow every step,
agreement with pandapower.runpp, overloads, non-convergence, validation, the CLI."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from v2gsim.cli import main
from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.physics.grid import headroom_kw
from v2gsim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
LV = ROOT / "scenarios" / "lv_feeder.yaml"
CITY = ROOT / "scenarios" / "city_feeder.yaml"
ONE_DAY = {"time.horizon_days": 1, "outputs.bus_voltages": False}


def _lv(**over):
    return load_scenario(LV, {**ONE_DAY, **over})


def _net_file(tmp_path, sn_mva: float) -> str:
    """The LV scenario's network with its transformer re-rated, as a pandapower JSON file."""
    import pandapower as pp

    from v2gsim.physics.networks import load_network

    net = load_network("simbench:1-LV-semiurb4--0-sw")
    net.trafo["sn_mva"] = sn_mva
    path = tmp_path / f"lv_{sn_mva}.json"
    pp.to_json(net, str(path))
    return f"file:{path}"


# --------------------------------------------------------------------------- overloads


def test_small_transformer_overloads_and_large_one_does_not(tmp_path):
    runs = {}
    for sn in (0.05, 1.0):
        sc = _lv(**{"feeder.network": _net_file(tmp_path, sn)})
        runs[sn] = V2GModel(sc).run()
    small, large = runs[0.05], runs[1.0]
    # same fleet, same charging (uncontrolled ignores the grid)
    assert small.kpis["energy_charged_kwh"] == pytest.approx(large.kpis["energy_charged_kwh"], rel=1e-12)
    assert small.kpis["transformer_overload_h"] > 1.0
    assert large.kpis["transformer_overload_h"] == 0.0
    assert small.kpis["transformer_kva"] == pytest.approx(50.0) and large.kpis["transformer_kva"] == pytest.approx(1000.0)
    assert small.kpis["max_transformer_loading_pct"] > 100 > large.kpis["max_transformer_loading_pct"]
    # a too-small transformer leaves no hosting capacity in the worst hour; a large one does
    assert small.kpis["hosting_capacity_margin_kw"] < 0 < large.kpis["hosting_capacity_margin_kw"]


# --------------------------------------------------------------------------- agreement with runpp


def _check_against_runpp(model, steps):
    import pandapower as pp

    feeder = model.feeder
    net = copy.deepcopy(feeder.net)
    net.load["scaling"] = 1.0
    net.sgen["scaling"] = 1.0
    checked = 0
    while model.step_index < model.n_clock:
        s = model.step_index
        model.step()
        if s not in steps:
            continue
        r = feeder.result
        assert r.converged
        net.load["p_mw"] = feeder.last_p_mw
        net.load["q_mvar"] = feeder.last_q_mvar
        if len(net.sgen):
            net.sgen["p_mw"] = feeder.last_p_sgen_mw
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(net, numba=False, tolerance_mva=1e-10)
        # the EV power is on the buses: EV loads carry the step's charging power
        ev_mw = feeder.last_p_mw[feeder.n_base:].sum()
        assert ev_mw * 1e3 == pytest.approx(model.fleet.p_kw.sum(), abs=1e-3)
        rec = model.recorder.cols
        k = s - model.n_warmup
        vm_pp = net.res_bus["vm_pu"].to_numpy()
        np.testing.assert_allclose(r.vm_pu, vm_pp, atol=1e-6)
        np.testing.assert_allclose(r.line_loading_pct, net.res_line["loading_percent"].to_numpy(), atol=1e-3)
        np.testing.assert_allclose(r.trafo_loading_pct, net.res_trafo["loading_percent"].to_numpy(), atol=1e-3)
        pp_losses_kw = (net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum()) * 1e3
        assert r.losses_kw == pytest.approx(pp_losses_kw, abs=1e-3)
        # what the model recorded is that result
        if k < 0:  # warm-up: not recorded
            checked += 1
            continue
        assert rec["vm_min_pu"][k] == pytest.approx(np.nanmin(vm_pp), abs=1e-6)
        assert rec["vm_max_pu"][k] == pytest.approx(np.nanmax(vm_pp), abs=1e-6)
        assert rec["line_loading_max_pct"][k] == pytest.approx(net.res_line["loading_percent"].max(), abs=1e-3)
        assert rec["transformer_loading_pct"][k] == pytest.approx(net.res_trafo["loading_percent"].max(), abs=1e-3)
        assert rec["pf_converged"][k] == 1.0
        # the published headroom is physics.grid.headroom_kw of that result
        assert feeder.headroom_kw == pytest.approx(headroom_kw(r, feeder.solver, feeder.limit_pct), rel=1e-9, abs=1e-6)
        checked += 1
    assert checked == len(steps)


def test_lv_model_steps_equal_runpp():
    m = V2GModel(_lv())
    # warm-up midnight, evening peak of the recorded day, late night
    _check_against_runpp(m, {5, m.n_warmup + 72, m.n_warmup + 76, m.n_clock - 1})
    # EVs actually charged on the network during the checked peak
    assert m.recorder.cols["ev_charge_kw"].max() > 10


def test_city_mv_model_steps_equal_runpp():
    sc = load_scenario(CITY, {**ONE_DAY, "population.0.count": 3000, "population.1.count": 1500,
                              "population.2.count": 300})
    m = V2GModel(sc)
    _check_against_runpp(m, {m.n_warmup + 10, m.n_warmup + 74, m.n_clock - 1})


# --------------------------------------------------------------------------- placement


def test_placement_deterministic_under_seed_and_spread_by_load():
    from v2gsim.physics.networks import load_buses

    a, b = V2GModel(_lv()), V2GModel(_lv())
    c = V2GModel(_lv(seed=12))
    np.testing.assert_array_equal(a.feeder.vehicle_bus, b.feeder.vehicle_bus)
    assert not np.array_equal(a.feeder.vehicle_bus, c.feeder.vehicle_bus)
    assert a.feeder.site_bus[1] == 25  # explicit
    buses, w = load_buses(_orig_net())
    assert set(np.unique(a.feeder.vehicle_bus)) <= set(buses.tolist())


def _orig_net():
    from v2gsim.physics.networks import load_network

    return load_network("simbench:1-LV-semiurb4--0-sw")


# --------------------------------------------------------------------------- non-convergence


def test_nonconvergence_is_flagged_counted_and_the_run_goes_on():
    # 10,000 households' standard load on a 400 kVA LV feeder: absurd, the power flow fails at peaks
    sc = _lv(**{"feeder.base_load": {"from": "standard"}, "feeder.households": 10_000})
    res = V2GModel(sc).run()
    sy = res.system
    bad = sy["pf_converged"] == 0
    assert 0 < bad.sum() < len(sy)  # some steps fail, others converge, the run finishes
    assert res.kpis["nonconverged_steps"] == bad.sum()
    assert sy.loc[bad, ["vm_min_pu", "vm_max_pu", "line_loading_max_pct", "transformer_loading_pct"]].isna().all().all()
    assert sy.loc[~bad, "vm_min_pu"].notna().all()
    # strategies still get a (transformer-sum) headroom on failed steps, and it is negative there
    assert np.isfinite(sy.loc[bad, "headroom_kw"]).all() and (sy.loc[bad, "headroom_kw"] < 0).all()
    assert res.kpis["voltage_violation_h"] > 0


# --------------------------------------------------------------------------- validation


def test_bad_bus_names_the_site_with_its_yaml_line(tmp_path):
    text = LV.read_text().replace("chargers: 2, bus: 25}", "chargers: 2, bus: 999}")
    bad = tmp_path / "bad_bus.yaml"
    bad.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(bad)
    (p,) = exc.value.problems
    assert p.path == "sites[1].bus" and "corner_dc" in p.message and "999" in p.message
    assert p.file == str(bad) and p.line == next(i for i, l in enumerate(text.splitlines(), 1) if "bus: 999" in l)


@pytest.mark.parametrize("spec,hint", [("simbench:1-LV-semiurb4-0-sw", "simbench:1-LV-semiurb4--0-sw"),
                                       ("cigre_lvv", "cigre_lv"), ("file:/nonexistent/net.json", None)])
def test_bad_network_name_is_a_scenario_error_with_suggestion(spec, hint):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(LV, {"feeder.network": spec})
    (p,) = exc.value.problems
    assert p.path == "feeder.network"
    if hint:
        assert hint in (p.hint or "")


def test_bus_without_network_and_network_profiles_without_network_are_errors():
    with pytest.raises(ScenarioError) as exc:
        load_scenario("smoke", {"sites.0.bus": 3})
    assert [p.path for p in exc.value.problems] == ["sites[0].bus"]
    with pytest.raises(ScenarioError) as exc:
        load_scenario("smoke", {"feeder.base_load.from": "network_profiles"})
    assert exc.value.problems[0].path.startswith("feeder")


def test_transformer_only_feeder_unchanged():
    res = V2GModel(load_scenario("smoke")).run()
    assert "vm_min_pu" not in res.system and "voltage_violation_h" not in res.kpis
    assert res.bus_voltages is None and res.transformer_kva == 100.0


def test_capacity_only_mode_sums_the_transformer():
    res = V2GModel(_lv(**{"feeder.solver": "capacity_only"})).run()
    sy = res.system
    assert sy["vm_min_pu"].isna().all() and (sy["pf_converged"] == 1).all()
    ac = V2GModel(_lv()).run().system
    # without losses and voltage effects, the transformer sum is close to the AC loading
    np.testing.assert_allclose(sy["transformer_loading_pct"], ac["transformer_loading_pct"], rtol=0.1, atol=1.0)


# --------------------------------------------------------------------------- CLI end to end


def test_lv_scenario_runs_end_to_end_via_cli(tmp_path):
    out = tmp_path / "lv"
    assert main(["run", str(LV), "-o", str(out), "--no-progress"]) == 0
    kpis = json.loads((out / "kpis.json").read_text())
    for k in ("voltage_violation_h", "line_overload_h", "losses_kwh", "nonconverged_steps", "hosting_capacity_margin_kw"):
        assert np.isfinite(kpis[k])
    assert kpis["losses_kwh"] > 0 and kpis["nonconverged_steps"] == 0
    for png in ("voltage_envelope.png", "loading_duration.png"):
        assert (out / png).stat().st_size > 10_000
    from v2gsim.results import Results

    res = Results.load(out)
    n_bus = 44
    assert len(res.bus_voltages) == n_bus * len(res.system)
    mins = res.bus_voltages.groupby("time")["vm_pu"].min().to_numpy()
    np.testing.assert_allclose(mins, res.system["vm_min_pu"].to_numpy(), atol=1e-6)
    assert {"vm_min_pu", "vm_max_pu", "line_loading_max_pct", "losses_kw", "pf_converged", "headroom_kw"} <= set(res.system)
