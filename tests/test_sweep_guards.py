"""Sweeps that guard their user: runs counted and refused above a limit before any is made,
scenarios resolved cheaply with the identity of ``load_scenario``, KPI names checked before
running, one run path with ``v2gsim run``, a locked output folder that takes only its own
sweep, worker processes that die with a killed sweep, Dask quiet under the progress bar, and
the same KPIs on 1 or 2 workers."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import v2gsim
from v2gsim import runner, sweeps
from v2gsim.sweeps import resolve, store
from v2gsim.sweeps import run as sweep_run
from v2gsim.cli import main as cli
from v2gsim.errors import ScenarioError
from v2gsim.scenario import load_scenario, loader
from v2gsim.sweeps import SweepFolderError, cli_main, load_sweep, run_sweep

SMALL = """\
name: small
base: smoke
parameters:
  population.0.count: [4, 8]
replications: 2
seed: 11
seeds: per_replication
"""


def write(directory: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def serial(path, out, **kw) -> pd.DataFrame:
    return run_sweep(path, out, **{"scheduler": "serial", "progress": False, "plots": False, **kw})


# ------------------------------------------------------------------------------- size (item 10)

HUGE = """\
base: smoke
parameters:
  population.0.count: {start: 1, stop: 1000000, step: 1}
  population.1.count: {start: 1, stop: 1000000, step: 1}
replications: 1
"""


def test_a_huge_grid_is_counted_and_refused_before_any_run_is_made(tmp_path, capsys):
    path = write(tmp_path, HUGE)
    sw = load_sweep(path)
    assert sw.n_runs == 10**12
    first = next(sw.iter_runs())  # lazily: the first run without the other 10^12 - 1
    assert first.params == {"population.0.count": 1, "population.1.count": 1}
    with pytest.raises(ScenarioError) as err:
        run_sweep(path, tmp_path / "out", progress=False)
    (p,) = err.value.problems
    assert (p.path, p.line) == ("parameters", 2)
    assert "1,000,000,000,000 runs" in p.message and "1,000,000 values of population.0.count" in p.message
    assert "--max-runs" in p.hint
    assert not (tmp_path / "out").exists()
    # the CLI says so and exits 2
    assert cli(["sweep", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "1,000,000,000,000 runs" in capsys.readouterr().err
    # one axis of 10^12 values, in a grid or as an LHS category: never made either
    one_axis = "base: smoke\nparameters:\n  tariff.flat_cny_per_kwh: {start: 0, stop: 1, step: 1.0e-12}\n"
    with pytest.raises(ScenarioError, match="1,000,000,000,001 runs"):
        run_sweep(write(tmp_path, one_axis, "axis.yaml"), tmp_path / "out", progress=False)
    lhs = load_sweep(write(tmp_path, one_axis + "design: lhs\nsamples: 3\n", "lhs.yaml"))
    assert lhs.n_runs == 3 and len({r.params["tariff.flat_cny_per_kwh"] for r in lhs.iter_runs()}) == 3


def test_the_run_limit_can_be_raised(tmp_path, capsys):
    path = write(tmp_path, SMALL)  # 4 runs
    assert cli(["sweep", str(path), "-o", str(tmp_path / "out"), "--no-progress", "--max-runs", "3"]) == 2
    assert "the sweep has 4 runs (2 values of population.0.count × 2 replications); the limit is 3" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    t = serial(path, tmp_path / "out", max_runs=4)
    assert len(t) == 4 and (t["status"] == "ok").all()


def test_lazy_plan_is_the_documented_plan(tmp_path):
    """Seeds made one at a time equal SeedSequence.spawn's children; LHS runs come out whole."""
    sw = load_sweep(write(tmp_path, SMALL.replace("seeds: per_replication\n", "")))
    children = np.random.SeedSequence(11).spawn(2)[1].spawn(4)
    assert [r.seed for r in sw.iter_runs()] == [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]
    lhs = load_sweep(write(tmp_path, "base: smoke\ndesign: lhs\nsamples: 7\nreplications: 3\n"
                                     "parameters:\n  tariff.flat_cny_per_kwh: {low: 0.2, high: 1.2}\n", "lhs.yaml"))
    runs = lhs.runs()
    assert lhs.n_runs == len(runs) == 21 and [r.run_id for r in runs] == list(range(21))
    assert len({r.params["tariff.flat_cny_per_kwh"] for r in runs}) == 7


# ------------------------------------------------------------------------------- resolving (item 10)


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resolver")
    sw = load_sweep(write(tmp, """\
base: smoke
overrides:
  feeder.households: 40
  outputs: {trace_sample: 2, session_sample: 3}
parameters:
  population.0.count: [4]
"""))
    return resolve._Resolver(sw)


def _outcome(make):
    try:
        return "ok", store._scenario_key(make())
    except ScenarioError as exc:
        return "error", str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(-2, 40), price=st.floats(-0.5, 3.0, allow_nan=False),
       vehicle=st.sampled_from(["roewe_ei5_52", "byd_dolphin_44", "no_such_car"]),
       plots=st.booleans(), start=st.sampled_from(["2026-07-06T00:00", "2026-13-01T00:00"]),
       extra=st.sampled_from([{}, {"population.5.count": 3}, {"sites.0.p_max_kw": 11.5},
                              {"feeder.base_load.profile": "H0"}]),
       seed=st.integers(0, 2**63 - 1))
def test_cheap_resolution_is_load_scenario(resolver, count, price, vehicle, plots, start, extra, seed):
    """Same scenario hash (the run's identity on disk) or the same error as load_scenario."""
    params = {"population.0.count": count, "tariff.flat_cny_per_kwh": price, "population.1.vehicle": vehicle,
              "outputs.plots": plots, "time.start": start, **extra}
    fast = _outcome(lambda: resolver.scenario(params, seed))
    slow = _outcome(lambda: load_scenario(resolver.base_path, resolver.overrides(params, seed)))
    assert fast == slow


def test_yaml_is_read_once_however_many_runs(tmp_path, monkeypatch):
    reads = []
    real = loader.read_yaml
    monkeypatch.setattr(loader, "read_yaml", lambda path: reads.append(path) or real(path))
    counts = {}
    for n in (2, 8):
        path = write(tmp_path, SMALL.replace("[4, 8]", str(list(range(4, 4 + n)))), f"s{n}.yaml")
        reads.clear()
        serial(path, tmp_path / f"out{n}")
        counts[n] = len(reads)
    assert counts[2] == counts[8]


def test_resolving_shows_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep_run, "_RESOLVE_BAR_DELAY_S", 0.0)  # shown at once, not after 1 s
    run_sweep(write(tmp_path, SMALL), tmp_path / "out", scheduler="serial", plots=False, progress=True)
    err = capsys.readouterr().err
    assert "resolving runs" in err and "4/4" in err


# ------------------------------------------------------------------------------- KPI names (item 11)


def test_an_unknown_kpi_is_refused_before_any_run(tmp_path, capsys):
    path = write(tmp_path, SMALL + "kpis:\n  - energy_charged_kwh\n  - peak_lod_kw\n  - peak_reduction\n")
    ran = []
    with pytest.raises(ScenarioError) as err:
        run_sweep(path, tmp_path / "out", scheduler="serial", progress=False, callback=ran.append)
    assert ran == [] and not (tmp_path / "out").exists()
    found = {(p.path, p.line, p.hint) for p in err.value.problems}
    assert found == {("kpis[1]", 10, "did you mean 'peak_load_kw'?"),
                     ("kpis[2]", 11, "did you mean 'peak_reduction_pct'?")}
    assert cli(["sweep", str(path), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "peak_lod_kw" in capsys.readouterr().err


BUSINESS_MODELS = """\
name: kinds
base: smoke
overrides:
  business_models: [{kind: uncontrolled}]
parameters:
  business_models.0.kind: [uncontrolled, distributed]
replications: 1
seed: 3
seeds: per_replication
kpis: [peak_load_kw, reference_peak_kw, peak_reduction_pct, distributed_enrolled_drivers]
"""


def test_kpis_of_some_runs_only_and_baseline_kpis_are_known(tmp_path):
    """The distributed counters exist only where the kind is distributed, the baseline KPIs only
    with the reference run: both are accepted, and every row is what ``v2gsim.run`` gives."""
    t = serial(write(tmp_path, BUSINESS_MODELS), tmp_path / "out")
    assert (t["status"] == "ok").all()
    kpis = ["peak_load_kw", "reference_peak_kw", "peak_reduction_pct", "distributed_enrolled_drivers"]
    for _, row in t.iterrows():
        sc = load_scenario("smoke", {"business_models": [{"kind": row["business_models.0.kind"]}], "seed": int(row["seed"])})
        res = v2gsim.run(sc)  # the path of `v2gsim run`: with the baseline
        expected = [res.kpis.get(k, np.nan) for k in kpis]
        np.testing.assert_array_equal(row[kpis].to_numpy(float), np.array(expected, float))
    unc, dist = t.set_index("business_models.0.kind").loc[["uncontrolled", "distributed"]].to_dict("records")
    assert unc["peak_reduction_pct"] == 0 and np.isnan(unc["distributed_enrolled_drivers"])
    assert np.isfinite(dist["peak_reduction_pct"]) and np.isfinite(dist["distributed_enrolled_drivers"])
    # common random numbers: the distributed run's reference is the uncontrolled run
    assert dist["reference_peak_kw"] == unc["peak_load_kw"]


def test_bundled_hosting_capacity_sweep_gets_its_peak_reduction(tmp_path):
    """scenarios/sweeps/hosting_capacity.yaml asks for peak_reduction_pct; 2 of its runs on a day."""
    bundled = Path(__file__).resolve().parents[1] / "scenarios" / "sweeps" / "hosting_capacity.yaml"
    text = bundled.read_text().replace("base: ../baseline_uncontrolled.yaml", f"base: {bundled.parents[1] / 'baseline_uncontrolled.yaml'}")
    text = text.replace("{start: 20, stop: 260, step: 40}", "[40]").replace("replications: 2", "replications: 1")
    text += "overrides: {time.horizon_days: 1, time.warmup_days: 0}\n"
    t = serial(write(tmp_path, text), tmp_path / "out")
    assert len(t) == 2 and (t["status"] == "ok").all()
    assert t["peak_reduction_pct"].notna().all()


# ------------------------------------------------------------------------------- one run path (item 12)


def test_sweep_runs_go_through_the_runner_without_baseline_unless_asked(tmp_path, monkeypatch):
    calls = []
    real = runner.run_scenario

    def spy(scenario, **kw):
        if scenario.time.n_steps > 1:  # not the one-step runs that find the KPI names
            calls.append(kw.get("baseline"))
        return real(scenario, **kw)

    monkeypatch.setattr(runner, "run_scenario", spy)
    t = serial(write(tmp_path, BUSINESS_MODELS.replace("kpis: [", "kpis: [energy_charged_kwh]\n# [")), tmp_path / "a")
    assert calls == [False, False]
    assert "peak_reduction_pct" not in t.columns
    calls.clear()
    serial(write(tmp_path, BUSINESS_MODELS, "b.yaml"), tmp_path / "b")
    assert calls == [True, True]


def test_the_fault_hook_is_gone_from_the_package():
    source = "".join(f.read_text() for f in Path(sweeps.__file__).parent.glob("*.py"))
    assert "def _execute" in source  # the package's code was read
    assert "V2GSIM_SWEEP_FAULT" not in source and not hasattr(sweeps, "FAULT_ENV")


# ------------------------------------------------------------------------------- the folder (item 9)


def test_a_busy_folder_is_refused_naming_its_holder(tmp_path, capsys):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    with store._folder_lock(out):  # held as a running sweep holds it
        ran = []
        holder = rf"in use by another sweep \(pid {os.getpid()} on host {re.escape(socket.gethostname())}, started 20\d\d-"
        with pytest.raises(SweepFolderError, match=holder):
            run_sweep(path, out, scheduler="serial", progress=False, callback=ran.append)
        assert ran == []
        assert cli_main(argparse.Namespace(file=str(path), out=str(out), scheduler="serial", progress=False)) == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
    assert len(serial(path, out)) == 4  # free again


def test_a_folder_takes_only_its_own_sweep_unless_extended(tmp_path, capsys):
    out = tmp_path / "out"
    first = write(tmp_path, SMALL)
    serial(first, out)
    records = sorted(p.name for p in (out / "runs").glob("*.json"))

    # the same sweep, written differently elsewhere: resumes (nothing to run)
    same = write(tmp_path, "# a copy\n" + SMALL.replace("[4, 8]", "[4,   8]"), "copy.yaml")
    ran = []
    serial(same, out, callback=ran.append)
    assert ran == []

    # another sweep: refused, and nothing written
    other = write(tmp_path, SMALL.replace("[4, 8]", "[4, 8, 12]"), "other.yaml")
    args = argparse.Namespace(file=str(other), out=str(out), scheduler="serial", progress=False)
    assert cli_main(args) == 2
    assert "holds the results of a different sweep" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == records

    # the same sweep file over a changed base scenario is another sweep too
    base = tmp_path / "base.yaml"
    base.write_text(Path(v2gsim.bundled_scenarios()["smoke"]).read_text())
    on_copy = write(tmp_path, SMALL.replace("base: smoke", "base: base.yaml"), "on_copy.yaml")
    serial(on_copy, tmp_path / "out2")
    base.write_text(base.read_text().replace("households: 30", "households: 31"))
    with pytest.raises(SweepFolderError):
        serial(on_copy, tmp_path / "out2")

    # extended on purpose: only the new combination runs (common random numbers keep the seeds)
    ran = []
    t = serial(other, out, extend=True, callback=ran.append)
    assert len(ran) == 2 and len(t) == 6 and (t["status"] == "ok").all()


def test_plots_of_an_earlier_attempt_do_not_linger(tmp_path):
    out = tmp_path / "out"
    serial(write(tmp_path, SMALL + "kpis: [peak_load_kw, energy_charged_kwh]\n"), out, plots=True)
    assert len(list((out / "plots").glob("*.png"))) == 2
    serial(write(tmp_path, SMALL + "kpis: [peak_load_kw]\n", "one.yaml"), out, plots=True, extend=True)
    assert [p.name for p in (out / "plots").glob("*.png")] == ["peak_load_kw__vs__population.0.count.png"]


# ------------------------------------------------------------------------------- SIGKILL (items 8, 9, 15)

LONG = """\
base: smoke
overrides: {time.horizon_days: 2}
parameters:
  population.0.count: {start: 1, stop: 400, step: 1}
replications: 2
"""


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_a_killed_sweep_takes_its_workers_along_and_leaves_no_lock(backend, tmp_path, capsys):
    path = write(tmp_path, LONG)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "v2gsim.cli", "sweep", str(path), "-o", str(out), "--no-progress"]
    argv += ["--workers", "2"] if backend == "dask" else []
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while not list((out / "runs").glob("*.json")):  # runs are being computed
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.2)
        if backend == "processes":  # a second sweep into the busy folder says who holds it
            args = argparse.Namespace(file=str(path), out=str(out), scheduler="serial", progress=False)
            assert cli_main(args) == 2
            assert f"pid {proc.pid} on host {socket.gethostname()}" in capsys.readouterr().err
        children = _children(proc.pid)
        assert len(children) >= 2  # the workers (and multiprocessing's resource tracker)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        while any(_alive(c) for c in children) and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        assert not [c for c in children if _alive(c)], "worker processes outlived the killed sweep"
    finally:
        proc.kill()
        for c in children:
            if _alive(c):
                os.kill(c, signal.SIGKILL)
    assert "INFO" not in (tmp_path / "stderr.txt").read_text()  # Dask's start-up chatter
    # the dead sweep's lock blocks nothing: another sweep gets as far as the folder's check
    other = write(tmp_path, LONG.replace("stop: 400", "stop: 3"), "other.yaml")
    with pytest.raises(SweepFolderError, match="different sweep"):
        serial(other, out)


# ------------------------------------------------------------------------------- determinism


def test_one_and_two_workers_give_the_same_kpis(tmp_path):
    """runs.parquet on 1 and 2 local worker processes, every KPI of a centralized (LP) hub.

    Columns ending in ``_time_s`` are wall-clock times (the solver's ``centralized_solve_time_s``
    among the KPIs, for now) and are left out of the comparison."""
    path = write(tmp_path, """\
base: centralized_hub
overrides: {time.horizon_days: 1, time.warmup_days: 0, population.1.count: 8}
parameters:
  population.0.count: [4, 8]
replications: 2
seed: 5
""")
    tables = {}
    for n in (1, 2):
        run_sweep(path, tmp_path / f"w{n}", scheduler="processes", workers=n, progress=False, plots=False)
        tables[n] = pd.read_parquet(tmp_path / f"w{n}" / "runs.parquet")
    timed = [c for c in tables[1].columns if c.endswith("_time_s")]
    assert "centralized_replans" in tables[1].columns  # the LP planner ran
    assert (tables[1]["status"] == "ok").all()
    pd.testing.assert_frame_equal(tables[1].drop(columns=timed), tables[2].drop(columns=timed))
