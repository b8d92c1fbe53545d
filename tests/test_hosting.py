"""Hosting capacity from a sweep table, per-bus voltages of a step, the voltage map and the
hosting-capacity figure: hand-built tables, and a short real run on a SimBench feeder."""

import numpy as np
import pandas as pd
import pytest

from v2gsim.metrics import bus_voltages_at, hosting_capacity, worst_voltage_step
from v2gsim.plotting import plot_hosting_capacity, plot_voltage_map
from v2gsim.plotting.network_map import bus_coordinates


def _table():
    # two controls, sizes 10/20/30/40, two replications each; "a" breaks the transformer at 30
    # (one replication only), is lucky again at 40; "b" breaks a line at 40 and the voltage at 40
    rows = []
    for kind, trafo, line, vmin in (
        ("a", [50, 60, 70, 80, 101, 90, 95, 99], [50] * 8, [0.99] * 8),
        ("b", [40, 40, 50, 50, 60, 60, 70, 70], [80, 80, 90, 90, 99, 100, 120, 80], [0.99] * 7 + [0.92]),
    ):
        for i, size in enumerate([10, 10, 20, 20, 30, 30, 40, 40]):
            rows.append({"size": size, "kind": kind, "status": "ok", "max_transformer_loading_pct": trafo[i],
                         "max_line_loading_pct": line[i], "min_voltage_pu": vmin[i]})
    rows.append({"size": 10, "kind": "b", "status": "failed", "max_transformer_loading_pct": np.nan,
                 "max_line_loading_pct": np.nan, "min_voltage_pu": np.nan})
    return pd.DataFrame(rows)


def test_hosting_capacity_by_hand():
    cap = hosting_capacity(_table(), "size", by="kind", lower={"min_voltage_pu": 0.93})
    assert cap.loc["a", "hosting_capacity"] == 20 and cap.loc["a", "first_violation"] == 30
    assert cap.loc["a", "binding"] == "max_transformer_loading_pct"  # the lucky 40 does not count
    assert cap.loc["b", "hosting_capacity"] == 30 and cap.loc["b", "first_violation"] == 40
    assert cap.loc["b", "binding"] == "max_line_loading_pct, min_voltage_pu"  # 100 % itself is within
    assert (cap["largest_size_run"] == 40).all()
    # limits of one's own: a transformer at 105 % is fine, nothing breaks -> the largest size
    loose = hosting_capacity(_table(), "size", by="kind", upper={"max_transformer_loading_pct": 105})
    assert loose.loc["a", "hosting_capacity"] == 40 and np.isnan(loose.loc["a", "first_violation"])
    # the smallest size already broken: no capacity; without `by` one row for all runs
    tight = hosting_capacity(_table(), "size", upper={"max_transformer_loading_pct": 45})
    assert list(tight.index) == ["all"] and np.isnan(tight.loc["all", "hosting_capacity"])
    assert tight.loc["all", "first_violation"] == 10
    with pytest.raises(ValueError, match="no KPI"):
        hosting_capacity(_table(), "size", upper={"max_loading": 100})


class _Res:  # the parts of Results these functions read
    def __init__(self):
        t = pd.date_range("2026-07-06", periods=3, freq="15min", name="time")
        self.system = pd.DataFrame({"vm_min_pu": [0.97, 0.90, 0.95], "pf_converged": [1.0, 0.0, 1.0]}, index=t)
        self.bus_voltages = pd.DataFrame({"time": np.repeat(t.values, 2), "bus": [4, 7] * 3,
                                          "vm_pu": [1.0, 0.97, np.nan, np.nan, 0.99, 0.95]})


def test_worst_step_skips_steps_that_did_not_converge():
    r = _Res()
    assert worst_voltage_step(r) == pd.Timestamp("2026-07-06 00:30")
    v = bus_voltages_at(r, "2026-07-06 00:30")
    assert v.to_dict() == {4: 0.99, 7: 0.95}
    with pytest.raises(ValueError, match="not a recorded step"):
        bus_voltages_at(r, "2026-07-07")
    r.bus_voltages = None
    with pytest.raises(ValueError, match="outputs.bus_voltages"):
        bus_voltages_at(r, "2026-07-06 00:30")
    r.system = r.system.drop(columns=["vm_min_pu"])
    with pytest.raises(ValueError, match="feeder.network"):
        worst_voltage_step(r)


def test_hosting_figure_draws_each_group_and_limit():
    t = _table()
    cap = hosting_capacity(t, "size", by="kind")
    fig = plot_hosting_capacity(t, "size", {"max_transformer_loading_pct": 100, "max_line_loading_pct": 100, "min_voltage_pu": None},
                                group="kind", capacity=cap)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    ax = axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["a"].get_ydata(), [55, 75, 95.5, 97])  # means of the two replications
    assert "limit 100" in lines
    # dotted capacity lines at a's 20 and b's 30
    assert sorted(ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":") == [20, 30]
    assert fig._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no KPI"):
        plot_hosting_capacity(t, "size", {"peak": None})


@pytest.fixture(scope="module")
def lv_run():
    import v2gsim

    return v2gsim.run(v2gsim.load_scenario("lv_feeder", {"time.horizon_days": 1}), baseline=False)


def test_voltage_map_of_a_real_feeder(lv_run):
    from v2gsim.physics.networks import load_network

    worst = worst_voltage_step(lv_run)
    v = bus_voltages_at(lv_run, worst)
    assert v.min() == pytest.approx(lv_run.system.loc[worst, "vm_min_pu"], abs=1e-6)  # float32 record
    fig = plot_voltage_map(lv_run)
    ax = fig.axes[0]
    colored = [c for c in ax.collections if c.get_array() is not None and len(c.get_offsets()) == len(v)]
    assert len(colored) == 1 and np.allclose(np.sort(colored[0].get_array()), np.sort(v.to_numpy()))
    assert f"min {v.min():.3f} p.u." in ax.get_title() and "generic" not in ax.get_title()
    assert f"this run: {len(lv_run.vehicles)} vehicles, uncontrolled" in ax.get_title()
    assert fig._repr_png_()[:4] == b"\x89PNG"
    # without geodata: a generic layout, every bus at its own place, the slack bus on top
    net = load_network(lv_run.metadata["scenario"]["feeder"]["network"])
    xy_geo, src = bus_coordinates(net)
    assert src == "geodata"
    net.bus["geo"] = None
    xy, src = bus_coordinates(net)
    assert src == "generic" and np.isfinite(xy.to_numpy()).all()
    assert len(xy.drop_duplicates()) == len(net.bus)
    slack = net.ext_grid["bus"].iloc[0]
    assert xy.loc[slack, "y"] == xy["y"].max()
    fig = plot_voltage_map(lv_run, net=net)
    assert "generic layout" in fig.axes[0].get_title()
