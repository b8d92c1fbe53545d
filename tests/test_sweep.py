"""Parameter sweeps: planning, seeds, backends (local processes, Dask LocalCluster), crash
handling, resume, summaries and plots. Runs the bundled smoke scenario (~20 ms per run once a
worker has imported the model)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import socket
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.results import scenario_hash
from v2gsim.sweeps import cli_main, load_sweep, run_sweep, summarize
from v2gsim.sweeps.plots import kpi_heatmap, kpi_vs_parameter

from sweep_faults import inject

KPIS = ["peak_load_kw", "energy_charged_kwh", "unmet_energy_kwh"]

SMALL = """\
name: small
base: smoke
parameters:
  population.0.count: [4, 8, 12]
replications: 2
seed: 11
kpis: [peak_load_kw, energy_charged_kwh, unmet_energy_kwh]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["wall_time_s"]).reset_index(drop=True)


# ------------------------------------------------------------------------------- planning


def test_grid_plan_order_and_seeds(tmp_path):
    sw = load_sweep(write(tmp_path, SMALL.replace("[4, 8, 12]", "{start: 4, stop: 12, step: 4}")
                          + "overrides: {feeder.households: 40}\n"))
    runs = sw.runs()
    assert [r.run_id for r in runs] == list(range(6))
    assert [r.params["population.0.count"] for r in runs] == [4, 4, 8, 8, 12, 12]
    assert [r.replication for r in runs] == [0, 1] * 3
    assert runs[0].overrides(sw.spec.overrides)["feeder.households"] == 40
    seeds = [r.seed for r in runs]
    assert len(set(seeds)) == 6 and all(0 <= s < 2**63 for s in seeds)
    assert seeds == [r.seed for r in load_sweep(sw.file).runs()]  # reproducible
    child = np.random.SeedSequence(11).spawn(2)[1].spawn(6)[3]  # documented derivation
    assert seeds[3] == int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def test_common_random_numbers_share_seeds_per_replication(tmp_path):
    sw = load_sweep(write(tmp_path, SMALL + "seeds: per_replication\n"))
    by_rep = {}
    for r in sw.runs():
        by_rep.setdefault(r.replication, set()).add(r.seed)
    assert all(len(s) == 1 for s in by_rep.values()) and by_rep[0] != by_rep[1]


def test_float_range_has_clean_values(tmp_path):
    sw = load_sweep(write(tmp_path, """\
base: smoke
parameters:
  tariff.flat_cny_per_kwh: {start: 0.1, stop: 0.7, step: 0.2}
"""))
    assert [r.params["tariff.flat_cny_per_kwh"] for r in sw.runs()] == [0.1, 0.3, 0.5, 0.7]


def test_latin_hypercube_is_stratified_and_seeded(tmp_path):
    text = """\
base: smoke
design: lhs
samples: 10
seed: 3
parameters:
  tariff.flat_cny_per_kwh: {low: 0.2, high: 1.2}
  population.0.count: {low: 1, high: 10, integer: true}
  population.1.vehicle: [roewe_ei5_52, byd_dolphin_44]
"""
    runs = load_sweep(write(tmp_path, text)).runs()
    price = np.array([r.params["tariff.flat_cny_per_kwh"] for r in runs])
    # one sample in each tenth of the interval
    assert sorted(np.floor((price - 0.2) / 0.1).astype(int)) == list(range(10))
    counts = [r.params["population.0.count"] for r in runs]
    assert sorted(counts) == list(range(1, 11)) and all(isinstance(c, int) for c in counts)
    assert {r.params["population.1.vehicle"] for r in runs} == {"roewe_ei5_52", "byd_dolphin_44"}
    again = load_sweep(write(tmp_path, text, "again.yaml")).runs()
    assert [r.params for r in again] == [r.params for r in runs]
    other = load_sweep(write(tmp_path, text.replace("seed: 3", "seed: 4"), "other.yaml")).runs()
    assert [r.params for r in other] != [r.params for r in runs]


def test_validation_errors_carry_yaml_path_and_line(tmp_path):
    path = write(tmp_path, """\
name: bad
base: smoke
parameters:
  population.0.count: [4, 8]
  tariff.flat_cny_per_kwh: {start: 0.6, stop: 0.2, step: 0.1}
  seed: [1, 2]
replications: 0
kpi: [peak_load_kw]
""")
    with pytest.raises(ScenarioError) as err:
        load_sweep(path)
    found = {(p.path, p.line) for p in err.value.problems}
    assert ("parameters.tariff.flat_cny_per_kwh", 5) in found
    assert ("parameters.seed", 6) in found
    assert ("replications", 7) in found
    assert ("kpi", 8) in found
    assert any("did you mean 'kpis'" in (p.hint or "") for p in err.value.problems)
    assert all(p.file == str(path) for p in err.value.problems)


def test_sweep_file_numbers_refuse_booleans_and_text(tmp_path):
    # the scenario's rule (v2gsim.fields.ConfigModel): pydantic's lax mode took `true` as 1 and
    # "3" as 3; a text value in a parameter's list stays a value (lists take any scalar)
    path = write(tmp_path, """\
base: smoke
parameters:
  population.0.count: {start: "4", stop: 8, step: 4}
  feeder.solver: [ac, capacity_only]
replications: true
seed: "7"
""")
    with pytest.raises(ScenarioError) as err:
        load_sweep(path)
    got = {(p.path, p.line): p.message for p in err.value.problems}
    assert got.pop(("replications", 5)) == "must be an integer; got true"
    assert got.pop(("seed", 6)) == "must be an integer; got '7' (text; write numbers without quotes)"
    # the range's start (an int-or-float field: a problem per member)
    assert got and all(path.startswith("parameters.population.0.count.start") and line == 3
                       and "got '4' (text" in msg for (path, line), msg in got.items())


def test_parameter_path_typo_is_a_sweep_file_error(tmp_path):
    path = write(tmp_path, """\
base: smoke
parameters:
  population.0.cout: [1, 2]
""")
    with pytest.raises(ScenarioError) as err:
        load_sweep(path)
    (p,) = err.value.problems
    assert p.path == "parameters.population.0.cout" and p.line == 3
    assert "did you mean 'count'" in (p.hint or "")


# ------------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small sweep run in this process: the table every backend must reproduce."""
    tmp = tmp_path_factory.mktemp("ref")
    return run_sweep(write(tmp, SMALL), tmp / "out", scheduler="serial", progress=False, plots=False)


def test_table_shape_and_reproducibility(reference, tmp_path):
    t = reference
    assert list(t.columns) == ["run_id", "population.0.count", "replication", "seed", *KPIS,
                               "status", "error", "wall_time_s", "scenario_hash"]
    assert t["run_id"].tolist() == list(range(6)) and (t["status"] == "ok").all()
    assert t["error"].isna().all() and (t["wall_time_s"] > 0).all()
    # each row is exactly what running its scenario by hand gives
    row = t.iloc[3]
    sc = v2gsim.load_scenario("smoke", overrides={"population.0.count": 8, "seed": int(row["seed"])})
    assert row["scenario_hash"] == scenario_hash(sc.model_dump(mode="json"))
    res = v2gsim.run(sc)
    assert res.metadata["scenario_hash"] == row["scenario_hash"]
    assert [res.kpis[k] for k in KPIS] == [row[k] for k in KPIS]
    # replications differ (different seeds)
    assert t.loc[t["population.0.count"] == 12, "energy_charged_kwh"].nunique() == 2


@contextlib.contextmanager
def port_taken(port: int):
    """Hold ``port`` as another program (another sweep's Dask dashboard) would."""
    with socket.socket() as s:
        try:
            s.bind(("", port))
            s.listen()
        except OSError:
            pass  # taken already
        yield


def test_dask_local_cluster_and_local_processes_give_identical_tables(reference, tmp_path):
    path = write(tmp_path, SMALL)
    with port_taken(8787), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dask_table = run_sweep(path, tmp_path / "dask", workers=2, progress=False, plots=False)
    assert not [w for w in caught if "8787" in str(w.message)]  # no dashboard fighting for its port
    proc_table = run_sweep(path, tmp_path / "proc", scheduler="processes", workers=2, progress=False, plots=False)
    pd.testing.assert_frame_equal(comparable(dask_table), comparable(proc_table))
    pd.testing.assert_frame_equal(comparable(dask_table), comparable(reference))  # 1 worker, serial
    on_disk = pd.read_parquet(tmp_path / "dask" / "runs.parquet")
    pd.testing.assert_frame_equal(comparable(on_disk), comparable(dask_table))


def test_failing_runs_are_recorded_and_the_others_finish(tmp_path, monkeypatch):
    inject(monkeypatch, "raise", 1)  # run 1 raises inside its worker
    path = write(tmp_path, SMALL.replace("[4, 8, 12]", "[4, -3, 12]"))  # -3 fails validation
    t = run_sweep(path, tmp_path / "out", scheduler="processes", workers=2, progress=False, plots=False)
    assert len(t) == 6
    failed = t[t["status"] == "failed"]
    assert failed["run_id"].tolist() == [1, 2, 3]
    assert "injected" in failed.loc[failed["run_id"] == 1, "error"].item()
    assert "must be > 0" in failed.loc[failed["run_id"] == 2, "error"].item()
    assert failed[KPIS].isna().all().all()
    assert (t.loc[t["status"] == "ok", KPIS].notna()).all().all()
    assert t.loc[t["run_id"] == 2, "scenario_hash"].isna().item()  # never resolved
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    mid = summary[(summary["population.0.count"] == -3) & (summary["kpi"] == "peak_load_kw")]
    assert mid["n"].item() == 0 and mid["n_failed"].item() == 2


@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_a_killed_worker_is_retried_and_every_run_appears_once(backend, tmp_path, monkeypatch, reference):
    once = tmp_path / "crashed-once"
    inject(monkeypatch, "exit", 2, once)
    kwargs = {"scheduler": "processes"} if backend == "processes" else {}
    t = run_sweep(write(tmp_path, SMALL), tmp_path / "out", workers=2, progress=False, plots=False, **kwargs)
    assert once.exists()  # the worker really died (os._exit) while running run 2
    assert sorted(t["run_id"]) == list(range(6)) and t["run_id"].is_unique
    assert (t["status"] == "ok").all()
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 6
    pd.testing.assert_frame_equal(comparable(t), comparable(reference))


def test_a_run_that_always_kills_its_worker_is_recorded_failed(tmp_path, monkeypatch):
    inject(monkeypatch, "exit", 4)  # no once-file: dies every time
    t = run_sweep(write(tmp_path, SMALL), tmp_path / "out", scheduler="processes", workers=2,
                  progress=False, plots=False)
    assert t["run_id"].tolist() == list(range(6))
    assert t.loc[t["status"] == "failed", "run_id"].tolist() == [4]
    assert "died 3 times" in t.loc[4, "error"]


def test_interrupted_sweep_resumes_without_repeating_runs(tmp_path, reference):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    seen: list[str] = []

    def stop_after_three(record):
        seen.append(record["key"])
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, out, scheduler="processes", workers=2, progress=False, plots=False,
                  callback=stop_after_three)
    files = {f.stem: f.stat().st_mtime_ns for f in (out / "runs").glob("*.json")}
    assert set(files) == set(seen) and len(files) == 3
    assert not (out / "runs.parquet").exists()

    resumed: list[str] = []
    t = run_sweep(path, out, workers=2, progress=False, plots=False, callback=lambda r: resumed.append(r["key"]))
    assert len(resumed) == 3 and not set(resumed) & set(seen)  # only the missing runs ran
    assert {f.stem: f.stat().st_mtime_ns for f in (out / "runs").glob("*.json") if f.stem in files} == files
    pd.testing.assert_frame_equal(comparable(t), comparable(reference))

    again: list[str] = []
    run_sweep(path, out, scheduler="serial", progress=False, plots=False, callback=lambda r: again.append(r))
    assert again == []


def test_duplicate_runs_share_one_record(tmp_path):
    path = write(tmp_path, """\
base: smoke
parameters:
  population.0.count: [4, 4]
replications: 2
seeds: per_replication
""")
    calls = []
    t = run_sweep(path, tmp_path / "out", scheduler="serial", progress=False, plots=False,
                  callback=calls.append)
    assert len(t) == 4 and len(calls) == 2
    assert t["scenario_hash"].nunique() == 2


def test_keep_results_and_resume_fills_missing_folders(tmp_path):
    path = write(tmp_path, SMALL.replace("[4, 8, 12]", "[4]"))
    out = tmp_path / "out"
    run_sweep(path, out, scheduler="serial", progress=False, plots=False)
    calls = []
    t = run_sweep(path, out, scheduler="serial", progress=False, plots=False, keep_results=True,
                  callback=calls.append)
    assert len(calls) == 2  # finished, but without the results asked for now
    for _, row in t.iterrows():
        res = v2gsim.Results.load(out / row["result_dir"])
        assert res.metadata["scenario_hash"] == row["scenario_hash"]
        assert res.kpis["peak_load_kw"] == row["peak_load_kw"]


# ------------------------------------------------------------------------------- summary, plots, CLI


def test_summary_uses_the_t_distribution():
    table = pd.DataFrame({
        "run_id": range(7), "p": [1, 1, 1, 2, 2, 2, 2], "replication": [0, 1, 2, 0, 1, 2, 3],
        "seed": range(7), "k": [1.0, 2.0, 4.0, 5.0, 5.0, 9.0, np.nan],
        "status": ["ok"] * 6 + ["failed"], "error": [None] * 7, "wall_time_s": [0.1] * 7,
    })
    s = summarize(table, ["p"], ["k"]).set_index("p")
    x = np.array([1.0, 2.0, 4.0])
    half = stats.t.ppf(0.975, 2) * x.std(ddof=1) / math.sqrt(3)
    assert s.loc[1, "n"] == 3 and s.loc[1, "mean"] == pytest.approx(x.mean())
    assert s.loc[1, "ci_low"] == pytest.approx(x.mean() - half)
    assert s.loc[1, "ci_high"] == pytest.approx(x.mean() + half)
    assert s.loc[2, "n"] == 3 and s.loc[2, "n_failed"] == 1


def test_plots_one_parameter_band_and_two_parameter_heat_map(tmp_path):
    rows = []
    for a in (1, 2, 3):
        for b in ("x", "y"):
            for r in range(3):
                rows.append({"run_id": len(rows), "a": a, "b": b, "replication": r, "seed": 0,
                             "k": a * (2 if b == "y" else 1) + 0.1 * r, "status": "ok",
                             "error": None, "wall_time_s": 0.1})
    s = summarize(pd.DataFrame(rows), ["a", "b"], ["k"])
    fig = kpi_vs_parameter(s, "k", "a", group="b")
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_xlabel() == "a" and len(ax.lines) == 2
    assert len(ax.collections) == 2  # one CI band per line
    fig = kpi_heatmap(s, "k", "a", "b")
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (2, 3) and img[1, 2] == pytest.approx(6.1)


def test_sweep_writes_plots_and_cli_reports(tmp_path, capsys):
    path = write(tmp_path, SMALL.replace("[4, 8, 12]", "[4, 8]") + "overrides: {}\n")
    args = argparse.Namespace(file=str(path), out=str(tmp_path / "out"), workers=None, scheduler="serial",
                              keep_results=False, progress=False)
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    assert "4 runs: 4 ok, 0 failed" in text and str(tmp_path / "out" / "runs.parquet") in text
    assert sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png")) == [
        f"{k}__vs__population.0.count.png" for k in sorted(KPIS)]
    meta = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert meta["n_runs"] == 4
    bad = write(tmp_path, "base: smoke\nparameters: {}\n", "bad.yaml")
    assert cli_main(argparse.Namespace(file=str(bad), out=str(tmp_path / "o2"))) == 2
    assert "parameters" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "scenarios" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_sweeps_validate_and_plan(path):
    sweep = load_sweep(path)
    runs = sweep.runs()
    assert len(runs) >= 10
    # every planned run's overrides give a valid scenario
    import v2gsim

    for r in runs[:: max(1, len(runs) // 5)]:
        v2gsim.load_scenario(sweep.base_path, r.overrides(sweep.spec.overrides))
