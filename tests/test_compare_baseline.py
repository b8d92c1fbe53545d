"""The like-for-like reference in every run's KPIs, and `v2gsim compare`."""

from typing import Literal

import numpy as np
import pytest

import v2gsim
from v2gsim.cli import main
from v2gsim.runner import reference_scenario, run_scenario
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
    assert r.kpis["reference_peak_kw"] == r.kpis["peak_load_kw"]
    assert r.kpis["peak_reduction_pct"] == 0


def test_controlled_run_reports_reduction_against_its_twin(half_power):
    sc = v2gsim.load_scenario("smoke").model_copy(update={"business_models": [HalfPowerConfig()]})
    twin = reference_scenario(sc)
    assert twin.business_models[0].kind == "uncontrolled" and twin.population == sc.population
    r = run_scenario(sc)
    plain = v2gsim.run("smoke")
    assert r.kpis["reference_peak_kw"] == pytest.approx(plain.kpis["peak_load_kw"])
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


def test_reference_keeps_swap_stations_and_takes_their_control_away():
    sc = v2gsim.load_scenario("battery_swapping", {"time.horizon_days": 1})
    ref = reference_scenario(sc)
    (bm,), (rbm,) = sc.business_models, ref.business_models
    assert rbm.kind == "battery_swap" and rbm.stations == bm.stations  # the same stations and packs
    assert bm.discharge_requests and not rbm.discharge_requests and bm.v2g and not rbm.v2g
    assert ref.population == sc.population and ref.sites == sc.sites and ref.feeder == sc.feeder
    r = run_scenario(sc)
    base = v2gsim.run(ref, baseline=False)
    assert base.kpis["swaps_served"] > 0  # drivers still swap in the reference
    assert base.kpis["swap_station_energy_discharged_kwh"] == 0
    assert r.kpis["reference_peak_kw"] == base.kpis["peak_load_kw"]
    assert r.kpis["reference_stranded_trips"] == base.kpis["stranded_trips"]
    assert r.metadata["reference"] == "the same drivers and actors, uncontrolled"


def test_mixed_city_reference_replaces_each_operator_on_its_own_sites():
    sc = v2gsim.load_scenario("mixed_city")
    ref = reference_scenario(sc)
    assert [bm.sites for bm in ref.business_models] == [bm.sites for bm in sc.business_models]
    assert [bm.kind for bm in ref.business_models] == ["uncontrolled" if bm.kind != "battery_swap" else "battery_swap"
                                                        for bm in sc.business_models]


def test_reference_none_reports_no_reference():
    sc = v2gsim.load_scenario("distributed_community", {"time.horizon_days": 1, "reference": "none"})
    r = run_scenario(sc)
    assert not [k for k in r.kpis if k.startswith("reference_")] and "peak_reduction_pct" not in r.kpis


def test_reference_file(tmp_path):
    import yaml

    from v2gsim.errors import ScenarioError
    from v2gsim.scenario import bundled_scenarios

    raw = yaml.safe_load(bundled_scenarios()["smoke"].read_text())
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump({**raw, "name": "half the cars"} | {
        "population": [{**raw["population"][0], "count": raw["population"][0]["count"] // 2}]}))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({**raw, "reference": "ref.yaml"}))
    sc = v2gsim.load_scenario(tmp_path / "run.yaml")
    assert sc.reference == str(tmp_path / "ref.yaml")
    r = run_scenario(sc)
    half = v2gsim.run(tmp_path / "ref.yaml", baseline=False)
    assert r.kpis["reference_peak_kw"] == half.kpis["peak_load_kw"] != r.kpis["peak_load_kw"]
    # a missing file and another clock are refused at validation, naming the key
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**raw, "reference": "nope.yaml"}))
    with pytest.raises(ScenarioError, match=r"reference.*nope.yaml.*does not exist"):
        v2gsim.load_scenario(tmp_path / "bad.yaml")
    (tmp_path / "ref2.yaml").write_text(yaml.safe_dump({**raw, "time": {**raw["time"], "horizon_days": 2}}))
    (tmp_path / "bad2.yaml").write_text(yaml.safe_dump({**raw, "reference": "ref2.yaml"}))
    with pytest.raises(ScenarioError, match="another time section"):
        v2gsim.load_scenario(tmp_path / "bad2.yaml")
