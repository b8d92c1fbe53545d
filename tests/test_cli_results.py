"""The command line and result files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import v2gsim
from v2gsim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_run_writes_tables_kpis_metadata_and_plots(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "smoke", "-o", str(out), "--no-progress", "--seed", "5", "--set", "population.0.count=6"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "kpis.json" in printed and "load_curve.png" in printed
    # the drivers' line carries the issue-15 service measure, from the run's own KPIs
    k = json.loads((out / "kpis.json").read_text())
    unserved = 100 * (k["trips_cancelled"] + k["stranded_trips"]) / k["departures"]
    assert f"  trips {k['departures']:,.0f}: unserved {unserved:.3f} %" in printed
    for name in ("system", "sites", "vehicles", "sessions", "traces", "departure_soc"):
        assert (out / f"{name}.parquet").is_file()
    for png in ("load_curve.png", "daily_envelope.png", "soc_distribution.png"):
        assert (out / png).stat().st_size > 10_000
    kpis = json.loads((out / "kpis.json").read_text())
    assert all(isinstance(v, (int, float)) for v in kpis.values()) and kpis["n_vehicles"] == 8
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["seed"] == 5 and meta["scenario"]["population"][0]["count"] == 6
    assert len(meta["scenario_hash"]) == 64 and meta["version"] and meta["wall_time_s"] > 0


def test_results_round_trip(tmp_path):
    r = v2gsim.run("smoke")
    r.save(tmp_path / "r", plots=False)
    back = v2gsim.Results.load(tmp_path / "r")
    pd.testing.assert_frame_equal(r.system, back.system, check_freq=False)
    pd.testing.assert_frame_equal(r.vehicles, back.vehicles)
    pd.testing.assert_frame_equal(r.sessions.reset_index(drop=True), back.sessions)
    assert back.kpis == r.kpis and back.metadata["scenario_hash"] == r.metadata["scenario_hash"]


def test_save_is_atomic(tmp_path, monkeypatch):
    r = v2gsim.run("smoke")
    target = tmp_path / "r"
    r.save(target, plots=False)
    before = (target / "kpis.json").read_text()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("v2gsim.plotting.save_standard_plots", boom)
    with pytest.raises(RuntimeError):
        r.save(target, plots=True, overwrite=True)
    assert (target / "kpis.json").read_text() == before  # the old result is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temp folder left behind


def test_validate_schema_scenarios(capsys):
    assert main(["validate", "smoke"]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert "population[].count" in out and "> 0" in out and "time.step_min" in out and "≤ 60" in out
    assert main(["schema", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| field |")
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "baseline_uncontrolled" in out


def test_bad_scenario_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntime: {start: 2026-07-06T00:00, horizon_days: 1}\nfeeder: {transformer_kva: -1, households: 3}\npopulation: []\n")
    exe = Path(sys.executable).parent / "v2gsim"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "v2gsim.cli"]
    p = subprocess.run(cmd + ["validate", str(bad)], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "feeder.transformer_kva (bad.yaml line 3): must be > 0; got -1" in p.stderr
    p = subprocess.run(cmd + ["run", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "missing.yaml" in p.stderr


def test_bad_set_syntax_exits_2(capsys):
    assert main(["validate", "smoke", "--set", "population.0.count"]) == 2
    assert "--set" in capsys.readouterr().err


def test_trips_line_reads_the_unserved_share_of_departures():
    from v2gsim.cli import trips_line

    k = {"departures": 2441.0, "trips_cancelled": 4.0, "stranded_trips": 0.0, "trips_shortened": 1.0,
         "delayed_departures": 3.0, "detours": 5.0, "queued_at_public": 204.0, "queue_left": 39.0}
    # 4 / 2,441 = 0.1639 %
    assert trips_line(k) == ("trips 2,441: unserved 0.164 % (cancelled 4, stranded 0), shortened 1, delayed 3, "
                             "detours 5, queued at public 204 (39 left)")
    assert "unserved n/a" in trips_line({**k, "departures": 0.0})
