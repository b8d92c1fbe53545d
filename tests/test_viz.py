"""The live app without a browser: knobs as overrides, the stepping model, its snapshots, the CLI.

The browser drives the page in tests/test_browser_viz.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim import load_scenario
from v2gsim.cli import main
from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.plotting import plot_load_curve, plot_soc_distribution, plot_swap_stations, plot_voltage_envelope
from v2gsim.viz.live import LiveRun, snapshot, swap_networks
from v2gsim.viz.params import AS_IN_SCENARIO, Knobs, build_scenario, overrides, rewards_in, split_counts

CJK_NAME = "混合城区：实时查看"


def test_split_counts_by_hand():
    # 50 over 60/36/8: shares 28.85, 17.31, 3.85 -> 28, 17, 3 and the two largest remainders
    # (0.846 twice: the first group first) get one more: 29, 17, 4
    assert split_counts([60, 36, 8], 50) == [29, 17, 4]
    assert split_counts([10, 2], 12) == [10, 2]  # the scenario's own split comes back
    # 10 over 100/1/1: 9.80, 0.098, 0.098 -> 10, 0, 0; the empty groups take one each from the first
    assert split_counts([100, 1, 1], 10) == [8, 1, 1]
    assert split_counts([5, 5, 5], 3) == [1, 1, 1]
    with pytest.raises(ValueError, match="3 population groups"):
        split_counts([5, 5, 5], 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=8), st.integers(0, 50_000))
def test_split_counts_is_exact_and_proportional(counts, extra):
    total = len(counts) + extra
    out = split_counts(counts, total)
    assert sum(out) == total and min(out) >= 1
    share = np.array(counts) / sum(counts) * total
    if share.min() >= 1:  # no group had to be topped up: each is its share rounded up or down
        assert np.all(np.abs(np.array(out) - share) < 1.0)
    assert split_counts(counts, sum(counts)) == counts


def test_knobs_as_in_the_scenario_change_nothing():
    sc, ov = build_scenario("mixed_city")
    assert ov == {} and sc == load_scenario("mixed_city")


def test_ev_count_transformer_and_reward_become_overrides():
    base = load_scenario("mixed_city")
    ov = overrides(base, Knobs(ev_count=47, reward="2", transformer_kva=1250))
    assert ov["feeder.transformer_kva"] == 1250.0
    assert sum(v for k, v in ov.items() if k.startswith("population.")) == 47
    # the distributed entry's invitation and the swap operator's discharge request
    assert ov["business_models.0.invitations.0.reward_cny_per_kwh"] == 2.0
    assert ov["business_models.2.discharge_requests.0.reward_cny_per_kwh"] == 2.0
    sc, _ = build_scenario("mixed_city", Knobs(ev_count=47, reward="2", transformer_kva=1250))
    assert sum(g.count for g in sc.population) == 47 and sc.feeder.transformer_kva == 1250
    assert rewards_in(sc) == [2.0, 2.0] and rewards_in(base) == [4.0, 4.0]


def test_business_model_replaces_all_but_battery_swap():
    sc, ov = build_scenario("mixed_city", Knobs(business_model="uncontrolled"))
    assert [bm.kind for bm in sc.business_models] == ["uncontrolled", "uncontrolled", "battery_swap"]
    assert [bm.sites for bm in sc.business_models] == [["estate", "estate_dc"], ["hub"], ["gate_dc"]]
    assert set(ov) == {"business_models.0", "business_models.1"}
    # a file without a business_models list (smoke) gets a whole new list
    sc, ov = build_scenario("smoke", Knobs(business_model="distributed", reward="6"))
    assert list(ov) == ["business_models"] and [bm.kind for bm in sc.business_models] == ["distributed"]
    (inv,) = sc.business_models[0].invitations
    assert inv.reward_cny_per_kwh == 6.0 and inv.hours == 2.0 and inv.start.hour == 18


def test_transformer_knob_leaves_a_network_alone():
    assert "feeder.transformer_kva" not in overrides(load_scenario("lv_feeder"), Knobs(transformer_kva=500))


def test_bad_knobs_are_scenario_problems_with_their_path():
    with pytest.raises(ScenarioError, match="population"):
        build_scenario("mixed_city", Knobs(ev_count=3))  # five groups need five vehicles
    run = LiveRun(scenario_name="mixed_city", ev_count=3)
    assert run.problem and "population" in run.problem and not run.running and run.sim is None
    run.step()  # nothing to step, no exception
    assert run.recorded == 0 and snapshot(run) is None
    assert "no_such_scenario.yaml" in LiveRun(scenario_name="no_such_scenario.yaml").problem


def test_live_run_steps_the_model_and_adds_nothing():
    """The app's run records exactly what a plain run records: it only calls step()."""
    run = LiveRun(scenario_name="smoke")
    full = V2GModel(load_scenario("smoke")).run()
    assert run.recorded == 0 and run.running
    for _ in range(40):
        run.step()
    snap = snapshot(run)
    assert len(snap.system) == 40 and snap.system.index[-1] == full.system.index[39]
    for c in ("base_load_kw", "ev_charge_kw", "v2g_discharge_kw", "net_load_kw", "transformer_loading_pct"):
        np.testing.assert_array_equal(snap.system[c].to_numpy(), full.system[c].to_numpy()[:40], err_msg=c)
    while run.running:
        run.step()
    assert run.recorded == run.n_steps == 96
    run.step()  # past the horizon: stays put
    assert run.recorded == 96
    np.testing.assert_array_equal(snapshot(run).system["net_load_kw"].to_numpy(), full.system["net_load_kw"].to_numpy())
    np.testing.assert_array_equal(snapshot(run).departure_soc["departures"], full.departure_soc["departures"])


def test_snapshot_of_swap_stations_and_network_draws_with_the_project_plots(tmp_path):
    run = LiveRun(scenario_name="mixed_city")
    for _ in range(8):
        run.step()
    snap = snapshot(run)
    (net,) = swap_networks(run.sim)
    st_ = snap.extra["stations"]
    assert len(st_) == 8 * len(net.station_ids)
    np.testing.assert_array_equal(st_["packs_ready"].to_numpy(), net.rec["packs_ready"][:8].ravel())
    assert (snap.system["swap_charge_kw"] >= 0).all() and "vm_min_pu" not in snap.system
    for fig in (plot_load_curve(snap), plot_soc_distribution(snap), plot_swap_stations(snap)):
        assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    lv = LiveRun(scenario_name="lv_feeder")
    for _ in range(3):
        lv.step()
    snap = snapshot(lv)
    assert snap.bus_vm_pu is not None and len(snap.bus_vm_pu) == lv.sim.feeder.n_bus
    assert np.nanmin(snap.bus_vm_pu) == pytest.approx(snap.system["vm_min_pu"].iloc[-1], abs=1e-6)
    assert plot_voltage_envelope(snap)._repr_png_()[:4] == b"\x89PNG"


def test_chinese_names_reach_the_live_figures(tmp_path):
    from matplotlib.text import Text

    from v2gsim.plotting.figure import CJK_FAMILY
    from v2gsim.scenario import bundled_scenarios

    f = tmp_path / "cn.yaml"
    f.write_text(f"extends: {bundled_scenarios()['smoke']}\nname: {CJK_NAME}\n", encoding="utf-8")
    run = LiveRun(scenario_name=str(f))
    run.step()
    fig = plot_load_curve(snapshot(run))
    fig._repr_png_()  # drawing adds the CJK fallback font to every text
    title = [t for t in fig.findobj(Text) if CJK_NAME in t.get_text()]
    assert title and CJK_FAMILY in title[0].get_fontfamily()


def test_app_knobs_are_the_models_arguments():
    from mesa.visualization.solara_viz import _check_model_params

    from v2gsim.viz.app import model_params

    params = model_params()
    _check_model_params(LiveRun(scenario_name="smoke"), params)  # raises on a knob LiveRun does not take
    assert params["scenario_name"]["value"] == "mixed_city" and "smoke" in params["scenario_name"]["values"]
    assert model_params("my.yaml")["scenario_name"]["values"][0] == "my.yaml"
    assert model_params("smoke")["scenario_name"]["values"].count("smoke") == 1  # a bundled name given as FILE: once
    assert params["business_model"]["value"] == AS_IN_SCENARIO


def test_viz_cli_refuses_a_bad_file_with_a_sentence(tmp_path, capsys):
    assert main(["viz", str(tmp_path / "missing.yaml"), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfleet: {size: -5}\n")
    assert main(["viz", str(bad), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "Traceback" not in err
    assert main(["viz", "--port", "70000", "--no-browser"]) == 2
    assert "--port" in capsys.readouterr().err
    import socket

    with socket.socket() as taken:  # a port in use is refused before the URL is printed
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["viz", "smoke", "--port", str(port), "--host", "127.0.0.1", "--no-browser"]) == 2
    out = capsys.readouterr()
    assert f"port {port}" in out.err and "http" not in out.out


def _render(panel, run):
    """Render one panel of the app without a browser: the ipywidgets it would send."""
    import ipywidgets
    import solara

    @solara.component
    def Host():
        return panel(run)

    _, rc = solara.render(Host(), handle_error=False)
    images = [w.value for w in rc.find(ipywidgets.Image).widgets]
    texts = " ".join(str(getattr(w, "children", "")) for w in rc.find(ipywidgets.Widget).widgets)
    rc.close()
    return images, texts


def test_panels_draw_what_the_scenario_has():
    from v2gsim.viz.components import FeederVoltages, LoadCurve, SwapStations

    lv = LiveRun(scenario_name="lv_feeder")
    images, texts = _render(LoadCurve, lv)
    assert images == [] and "press Step" in texts  # nothing recorded yet
    for _ in range(3):
        lv.step()
    images, _ = _render(FeederVoltages, lv)
    assert len(images) == 1 and images[0][:8] == b"\x89PNG\r\n\x1a\n"
    images, texts = _render(SwapStations, lv)
    assert images == [] and "has none" in texts
    from v2gsim.viz.components import Status

    swap = LiveRun(scenario_name="battery_swapping", business_model="uncontrolled", reward="2")
    _, texts = _render(Status, swap)
    assert "no other" in texts and "discharge_requests.0.reward_cny_per_kwh=2.0" in texts
    _, texts = _render(Status, LiveRun(scenario_name="smoke", reward="2"))
    assert "no invitation or discharge request" in texts
    bad = LiveRun(scenario_name="smoke", ev_count=1)  # two groups need two vehicles
    images, texts = _render(LoadCurve, bad)
    assert images == [] and "problem" in texts
