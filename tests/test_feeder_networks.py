"""Networks with several islands or unsupplied areas inside a model run, and networks the AC
power flow cannot solve: what validation says, where vehicles go, what the run reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pp = pytest.importorskip("pandapower")

from pf_reference import assert_agrees, disagreement, runpp_reference  # noqa: E402

from v2gsim.errors import ScenarioError  # noqa: E402
from v2gsim.model import V2GModel  # noqa: E402
from v2gsim.physics.grid import energised_buses  # noqa: E402
from v2gsim.physics.networks import load_network  # noqa: E402
from v2gsim.scenario import load_scenario  # noqa: E402

LV = Path(__file__).resolve().parents[1] / "scenarios" / "lv_feeder.yaml"
ONE_DAY = {"time.horizon_days": 1, "time.warmup_days": 0, "outputs.bus_voltages": False}


def _run_checking_runpp(model, steps):
    """Step the model through; at ``steps`` compare the feeder's result with runpp."""
    feeder = model.feeder
    while model.step_index < model.n_clock:
        s = model.step_index
        model.step()
        if s in steps:
            r = feeder.result
            assert r.converged
            assert_agrees(disagreement(r, runpp_reference(feeder.net, feeder.last_p_mw, feeder.last_q_mvar,
                                                          feeder.last_p_sgen_mw if len(feeder.net.sgen) else None)))
    return model


def test_two_islands_each_with_an_infeed_are_solved_in_a_run():
    """mv_oberrhein: two 20 kV islands, each behind its own 110/20 kV transformer."""
    sc = load_scenario(LV, {**ONE_DAY, "feeder.network": "mv_oberrhein", "sites.1.bus": "auto",
                            "population.0.count": 300, "population.1.count": 30})
    m = V2GModel(sc)
    _run_checking_runpp(m, {20, 74, 90})
    sy = m.recorder.cols
    assert (sy["pf_unsolved_buses"] == 0).all() and (sy["pf_converged"] == 1).all()
    assert not np.isnan(m.feeder.result.vm_pu).any()
    # vehicles sit in both islands (the island of the second ext_grid holds ~40 % of the load)
    net = m.feeder.net
    other = net.ext_grid["bus"].iloc[1]
    import pandapower.topology as top

    island = set(top.connected_component(top.create_nxgraph(net), other))
    on_other = np.isin(m.feeder.vehicle_bus, list(island))
    assert 0.2 < on_other.mean() < 0.6
    assert m.recorder.cols["ev_charge_kw"].max() > 50


def _lv_with_a_cut(tmp_path):
    """The LV scenario's network with one line out of service: a few load buses lose supply
    (bus 25, the scenario's DC charger, keeps it). Returns (spec, unsupplied bus labels)."""
    net = load_network("simbench:1-LV-semiurb4--0-sw")
    for i in net.line.index:
        net.line.at[i, "in_service"] = False
        dead = net.bus.index[~energised_buses(net) & net.bus["in_service"].to_numpy(bool)]
        loads_dead = net.load["bus"].isin(dead).sum()
        if 2 <= loads_dead <= 8 and 25 not in dead:
            break
        net.line.at[i, "in_service"] = True
    else:
        pytest.fail("no line cuts off a few loads")
    path = tmp_path / "lv_cut.json"
    pp.to_json(net, str(path))
    return f"file:{path}", dead


def test_unsupplied_buses_are_reported_and_get_no_vehicles(tmp_path):
    spec, dead = _lv_with_a_cut(tmp_path)
    m = V2GModel(load_scenario(LV, {**ONE_DAY, "feeder.network": spec}))
    assert not np.isin(m.feeder.vehicle_bus, dead).any()
    assert not np.isin(m.feeder.ev_buses, dead).any()
    res = m.run()
    sy = res.system
    assert (sy["pf_unsolved_buses"] == len(dead)).all()
    assert res.kpis["max_unsolved_buses"] == len(dead) and res.kpis["nonconverged_steps"] == 0
    assert (sy["pf_converged"] == 1).all()
    assert np.isnan(m.feeder.result.vm_pu[m.feeder.net.bus.index.get_indexer(dead)]).all()


def test_a_site_on_an_unsupplied_bus_is_a_validation_error(tmp_path):
    spec, dead = _lv_with_a_cut(tmp_path)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(LV, {**ONE_DAY, "feeder.network": spec, "sites.1.bus": int(dead[0])})
    (p,) = exc.value.problems
    assert p.path == "sites[1].bus" and "not supplied" in p.message


def test_network_the_power_flow_cannot_model_is_a_validation_error(tmp_path):
    net = load_network("simbench:1-LV-semiurb4--0-sw")
    pp.create_impedance(net, 3, 4, 0.01, 0.01, 0.4)
    path = tmp_path / "with_impedance.json"
    pp.to_json(net, str(path))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(LV, {**ONE_DAY, "feeder.network": f"file:{path}"})
    (p,) = exc.value.problems
    assert p.path == "feeder.network" and "impedance" in p.message and "capacity_only" in p.hint
    # capacity_only does not solve the network: accepted
    load_scenario(LV, {**ONE_DAY, "feeder.network": f"file:{path}", "feeder.solver": "capacity_only",
                       "outputs.bus_voltages": False})


def test_simbench_grid_with_dc_lines_is_rejected_without_loading_it():
    with pytest.raises(ScenarioError) as exc:
        load_scenario(LV, {**ONE_DAY, "feeder.network": "simbench:1-EHV-mixed--2-sw", "sites.1.bus": "auto"})
    (p,) = exc.value.problems
    assert p.path == "feeder.network" and "dcline" in p.message


def test_a_network_file_naming_foreign_python_modules_is_refused_before_any_import(tmp_path, monkeypatch):
    """pandapower.from_json imports every module a file names; a scenario must not run code that way."""
    import json as _json

    import pandapower as pp
    import pandapower.networks as pn

    import v2gsim
    from v2gsim.errors import ScenarioError

    (tmp_path / "evil_mod.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = _json.loads(pp.to_json(pn.case33bw()))
    doc["_object"]["evil"] = {"_module": "evil_mod", "_class": "Thing", "_object": "{}"}
    (tmp_path / "net.json").write_text(_json.dumps(doc))
    with pytest.raises(ScenarioError, match="names Python modules v2gsim does not import from a network file: evil_mod"):
        v2gsim.load_scenario("smoke", {"feeder.network": f"file:{tmp_path / 'net.json'}", "feeder.transformer_kva": None})
    assert not (tmp_path / "ran").exists()
    # a file saved by pandapower loads
    (tmp_path / "ok.json").write_text(pp.to_json(pn.case33bw()))
    sc = v2gsim.load_scenario("smoke", {"feeder.network": f"file:{tmp_path / 'ok.json'}", "feeder.transformer_kva": None})
    assert sc.feeder.network.startswith("file:")
