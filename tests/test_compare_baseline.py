"""The uncontrolled baseline in every run's KPIs, and `v2gsim compare`."""

from typing import Literal

import numpy as np
import pytest

import v2gsim
from v2gsim.cli import main
from v2gsim.runner import run_scenario, uncontrolled_twin
from v2gsim.strategies.base import STRATEGIES, Dispatch, Strategy, StrategyConfig, register


class HalfPowerConfig(StrategyConfig):
    kind: Literal["test_half_power"] = "test_half_power"


class HalfPower(Strategy):
    """Test-only: charges every wanting vehicle at half its charger power."""

    config_cls = HalfPowerConfig

    def decide(self, obs):
        idx = obs.wanting_idx
        return Dispatch(idx, 0.5 * obs.fleet.p_plug_max_kw[idx])


@pytest.fixture
def half_power():
    register("test_half_power")(HalfPower)
    try:
        yield
    finally:
        STRATEGIES.unregister("test_half_power")


def test_uncontrolled_run_is_its_own_baseline():
    r = v2gsim.run("smoke")
    assert r.kpis["uncontrolled_peak_kw"] == r.kpis["peak_load_kw"]
    assert r.kpis["peak_reduction_pct"] == 0


def test_controlled_run_reports_reduction_against_its_twin(half_power):
    sc = v2gsim.load_scenario("smoke").model_copy(update={"business_models": [HalfPowerConfig()]})
    twin = uncontrolled_twin(sc)
    assert twin.business_models[0].kind == "uncontrolled" and twin.population == sc.population
    r = run_scenario(sc)
    plain = v2gsim.run("smoke")
    assert r.kpis["uncontrolled_peak_kw"] == pytest.approx(plain.kpis["peak_load_kw"])
    expected = (plain.kpis["peak_load_kw"] - r.kpis["peak_load_kw"]) / plain.kpis["peak_load_kw"] * 100
    assert r.kpis["peak_reduction_pct"] == pytest.approx(expected)
    assert r.kpis["peak_reduction_pct"] > 0  # half power flattens the evening peak


def test_compare_cli(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", "smoke", "-o", str(a), "--no-progress", "--no-plots"]) == 0
    assert main(["run", "smoke", "-o", str(b), "--no-progress", "--no-plots", "--set", "population.0.count=30"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "cmp"), "--kpis", "n_vehicles,peak_load_kw"]) == 0
    out = capsys.readouterr().out
    assert "n_vehicles" in out and "12.000" in out and "32.000" in out
    assert (tmp_path / "cmp" / "load_curves.png").stat().st_size > 10_000
    table = (tmp_path / "cmp" / "kpis.csv").read_text()
    assert table.splitlines()[0] == ",a,b"
    assert main(["compare", str(a), "--kpis", "nonsense"]) == 1


def test_compare_runs_scenarios_too():
    from v2gsim.compare import kpi_table, load_or_run

    label, r = load_or_run("smoke")
    assert label == "smoke" and np.isfinite(kpi_table({label: r}).loc["peak_load_kw", "smoke"])
