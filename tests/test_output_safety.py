"""`v2gsim run -o DIR` and `Results.save`: a run writes only its own files, atomically, with the
user's umask, and says plainly what it refuses; results are reproducible byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import v2gsim
from v2gsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "v2gsim"
QUICK = ["--no-progress", "--no-plots"]


def cli(args, *, cwd):
    """The installed command in a subprocess, bound by permission bits even as root (``setpriv``
    drops the capabilities that let root write into a read-only folder)."""
    argv = [str(EXE), *map(str, args)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits do not bind")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=600)


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder`` (hidden ones included) with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def run_smoke(out, *extra) -> int:
    return main(["run", "smoke", "-o", str(out), *QUICK, *extra])


@pytest.fixture
def previous(tmp_path) -> Path:
    out = tmp_path / "r"
    assert run_smoke(out, "--seed", "1") == 0
    return out


# ------------------------------------------------------------------ what a run may touch


def test_dot_in_a_working_folder_is_refused_and_nothing_changes(tmp_path, monkeypatch, capsys):
    (tmp_path / "my.yaml").write_text((ROOT / "scenarios" / "smoke.yaml").read_text())
    (tmp_path / "sessions.csv").write_text("arrival,departure,energy_kwh\n")
    before = listing(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "my.yaml", "-o", ".", *QUICK]) == 2
    err = capsys.readouterr().err
    assert ". already holds files that are not a v2gsim result (my.yaml, sessions.csv)" in err
    assert "never deletes them" in err
    assert listing(tmp_path) == before  # nothing deleted, nothing added (no temp folder either)


def test_folder_with_user_files_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "old_study").mkdir(parents=True)
    (out / "old_study" / "kpis.json").write_text("{}")
    (out / "notes.txt").write_text("do not lose me")
    before = listing(tmp_path)
    assert run_smoke(out) == 2
    assert "not a v2gsim result (notes.txt, old_study)" in capsys.readouterr().err
    assert run_smoke(out, "--overwrite") == 2  # --overwrite never empties a folder of other files
    assert listing(tmp_path) == before


def test_output_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "result.txt"
    f.write_text("mine")
    assert run_smoke(f, "--overwrite") == 2
    assert f"{f} is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "mine" and f.is_file()
    assert run_smoke(f / "sub") == 2  # a folder below a file
    assert f"{f} is a file, not a folder, so {f / 'sub'} cannot be made" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_previous_result_needs_overwrite_and_is_then_replaced(previous, capsys):
    capsys.readouterr()
    kpis = (previous / "kpis.json").read_bytes()
    assert run_smoke(previous, "--seed", "2") == 2
    assert "holds a previous v2gsim result; replace it with --overwrite" in capsys.readouterr().err
    assert (previous / "kpis.json").read_bytes() == kpis
    assert run_smoke(previous, "--seed", "2", "--overwrite") == 0
    assert json.loads((previous / "metadata.json").read_text())["seed"] == 2
    assert sorted(p.name for p in previous.parent.iterdir()) == ["r"]  # no temp or old folder left


def test_previous_result_with_a_user_file_is_refused_even_with_overwrite(previous, capsys):
    (previous / "notes.md").write_text("my reading of this run")
    before = listing(previous.parent)
    capsys.readouterr()
    assert run_smoke(previous, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "holds a v2gsim result and other files (notes.md)" in err and "move those files" in err
    assert listing(previous.parent) == before


def test_overwrite_replaces_a_result_with_plots_by_one_without(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "smoke", "-o", str(out), "--no-progress"]) == 0
    assert (out / "load_curve.png").is_file()
    assert run_smoke(out, "--overwrite") == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == meta["files"]  # the manifest is the folder
    assert not list(out.glob("*.png"))


def test_result_of_the_version_before_the_file_list_can_be_overwritten(previous):
    meta = json.loads((previous / "metadata.json").read_text())
    del meta["files"]
    (previous / "metadata.json").write_text(json.dumps(meta))
    assert run_smoke(previous, "--overwrite") == 0
    assert "files" in json.loads((previous / "metadata.json").read_text())


def test_empty_folder_is_filled_in_place(tmp_path, monkeypatch):
    out = tmp_path / "mount"
    out.mkdir(mode=0o750)
    os.chmod(out, 0o750)
    ino = out.stat().st_ino
    assert run_smoke(out) == 0
    assert out.stat().st_ino == ino and stat.S_IMODE(out.stat().st_mode) == 0o750  # the same folder
    assert (out / "metadata.json").is_file() and not [p for p in out.iterdir() if p.name.startswith(".")]
    # `-o .` in an empty working folder: filled where the user stands
    cwd = tmp_path / "here"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert run_smoke(".") == 0
    assert (cwd / "kpis.json").is_file() and Path.cwd() == cwd


def test_python_api_refuses_like_the_cli(tmp_path):
    from v2gsim.errors import OutputError

    r = v2gsim.run("smoke")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data.csv").write_text("x\n1\n")
    with pytest.raises(OutputError, match="not a v2gsim result") as e:
        r.save(keep, plots=False, overwrite=True)
    assert e.value.refused
    assert [p.name for p in keep.iterdir()] == ["data.csv"]
    r.save(tmp_path / "r", plots=False)
    with pytest.raises(OutputError, match="overwrite=True"):
        r.save(tmp_path / "r", plots=False)
    assert r.save(tmp_path / "r", plots=False, overwrite=True) == (tmp_path / "r").resolve()


# ------------------------------------------------------------------ killed runs


HOLD_MID_SAVE = """
import sys, time
import v2gsim, v2gsim.plotting

def hold(results, folder):  # the tables are written; stop here until killed
    open(sys.argv[2], "w").close()
    time.sleep(600)

v2gsim.plotting.save_standard_plots = hold
v2gsim.run("smoke").save(sys.argv[1], plots=True)
"""


def kill_mid_save(out: Path, tmp_path: Path) -> None:
    flag = tmp_path / "saving"
    p = subprocess.Popen([sys.executable, "-c", HOLD_MID_SAVE, str(out), str(flag)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert p.poll() is None and time.monotonic() < deadline, "the writer did not reach its save"
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


@pytest.mark.parametrize("existing", ["new", "empty"])
def test_stale_temp_folder_of_a_killed_run_is_cleaned(tmp_path, existing):
    parent = tmp_path / "work"
    parent.mkdir()
    out = parent / "r"
    if existing == "empty":
        out.mkdir()
    kill_mid_save(out, tmp_path)
    stale = [p for p in parent.rglob(".*v2gsim-tmp-*")]
    assert len(stale) == 1 and (stale[0].parent == out) == (existing == "empty")
    assert not (out / "metadata.json").exists()  # the killed run left no result under the name
    assert run_smoke(out) == 0
    assert [p.name for p in parent.iterdir()] == ["r"] and not list(parent.rglob(".*"))


def test_temp_folders_of_live_writers_and_other_hosts_are_left_alone(tmp_path):
    from v2gsim.result_folder import _host

    live = tmp_path / f".r.v2gsim-tmp-{_host()}-{os.getpid()}-0a1b2c3d"
    other_host = tmp_path / ".r.v2gsim-tmp-otherhost-1-0a1b2c3d"
    for p in (live, other_host):
        p.mkdir()
    assert run_smoke(tmp_path / "r") == 0
    assert live.is_dir() and other_host.is_dir()


# ------------------------------------------------------------------ modes and write errors


@pytest.mark.parametrize("umask,dir_mode,file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_result_honours_the_umask(tmp_path, umask, dir_mode, file_mode):
    out = tmp_path / "a" / "r"
    old = os.umask(umask)
    try:
        for extra in (["--no-progress"], [*QUICK, "--overwrite"]):  # a new result with plots, then its replacement
            assert main(["run", "smoke", "-o", str(out), *extra]) == 0
            assert stat.S_IMODE(out.stat().st_mode) == dir_mode
            assert stat.S_IMODE(out.parent.stat().st_mode) == dir_mode  # parents made for it too
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in out.iterdir()}
            assert len(modes) >= 8 and set(modes.values()) == {file_mode}, modes
    finally:
        os.umask(old)


def test_unwritable_parent_names_the_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        p = cli(["run", "smoke", "-o", "locked/out", *QUICK], cwd=tmp_path)
    finally:
        os.chmod(locked, 0o755)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "v2gsim: cannot write the results to locked/out: Permission denied" in p.stderr, p.stderr
    assert "v2gsim-tmp" not in p.stderr and ".tmp" not in p.stderr
    assert list(locked.iterdir()) == []


# ------------------------------------------------------------------ reproducible results

# every bundled scenario at one recorded day, cities scaled down (as tests/golden does)
SCALED = {"city_feeder": ["population.0.count=600", "population.1.count=340", "population.2.count=60"]}


@pytest.mark.parametrize("name", sorted(v2gsim.scenario.bundled_scenarios()))
def test_two_runs_of_one_seed_write_identical_kpis_and_tables(name, tmp_path, capsys):
    sets = [f"--set={s}" for s in ["time.horizon_days=1", *SCALED.get(name, [])]]
    for d in ("a", "b"):
        assert main(["run", name, "-o", str(tmp_path / d), *QUICK, *sets]) == 0
    a, b = tmp_path / "a", tmp_path / "b"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for f in names:
        if f != "metadata.json":  # it holds the wall-clock times
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
    kpis = json.loads((a / "kpis.json").read_text())
    assert not [k for k in kpis if k.endswith("_time_s")]
    meta = json.loads((a / "metadata.json").read_text())
    assert meta["wall_time_s"] > 0
    if any(bm["kind"] == "centralized" for bm in meta["scenario"]["business_models"]):
        assert meta["timings"]["centralized_solve_time_s"] > 0
    # the summary puts signed percentages into words
    out = capsys.readouterr().out
    assert "by -" not in out and "+-" not in out and "+" not in out
    cut, rise = kpis["peak_reduction_pct"], kpis["peak_increase_pct"]
    if cut < 0:
        assert f"peak raised by {-cut:.1f} % against its reference (" in out
    if rise < 0:
        assert f"({-rise:.1f} % below the peak before EVs)" in out
    else:
        assert f"({rise:.1f} % above the peak before EVs)" in out
    if name == "battery_swapping":  # the case of the issue occurs in the bundled set
        assert cut < 0
    # city_feeder printed "+-3.1 % over base" because its base ignored PV; with the base net of PV
    # (load - PV) the EVs raise its peak (tests/test_metrics.py), so no bundled run is below base


# ------------------------------------------------------------------ what the commands print


def test_summary_counts_steps_like_the_progress_bar(tmp_path, capsys):
    assert main(["run", "smoke", "-o", str(tmp_path / "r"), "--no-plots"]) == 0
    out, err = capsys.readouterr()
    assert "192/192" in err  # the progress bar: the warm-up day and the recorded day
    assert "smoke test: 12 vehicles, 192 steps (96 recorded after 1 warm-up day) in " in out


def test_load_plot_labels_the_rating_in_kw(tmp_path):
    from v2gsim.plotting import plot_load_curve

    fig = plot_load_curve(v2gsim.run("smoke"))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "transformer 100 kVA × pf 0.95 = 95.0 kW" in labels
    assert [line.get_ydata()[0] for line in fig.axes[0].get_lines() if line.get_label().startswith("transformer")] == [95.0]


def test_compare_of_three_runs_fits_120_columns(tmp_path, monkeypatch, capsys):
    dirs = [tmp_path / f"distributed_community_with_v2g_seed_{s}" for s in (1, 2, 3)]
    for s, d in enumerate(dirs, 1):
        assert run_smoke(d, "--seed", str(s)) == 0
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["compare", *map(str, dirs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 120
    peaks = [json.loads((d / "kpis.json").read_text())["peak_load_kw"] for d in dirs]
    assert len(set(peaks)) == 3
    row = [line for line in lines if line.startswith("peak_load_kw ")]
    shown = " ".join(row)
    assert all(f"{p:,.3f}" in shown for p in peaks)  # no run hidden
    heads = " ".join(line for line in lines if line.startswith(" "))
    assert all(f"seed_{s}" in heads for s in (1, 2, 3))
    monkeypatch.setenv("COLUMNS", "50")  # too narrow for three: further blocks, nothing lost
    assert main(["compare", *map(str, dirs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 50
    assert all(f"{p:,.3f}" in " ".join(line for line in lines if line.startswith("peak_load_kw ")) for p in peaks)


# ------------------------------------------------------------------ scenarios and the schema


def test_a_folder_given_as_scenario_says_so(tmp_path, capsys):
    (tmp_path / "study").mkdir()
    shutil.copy(ROOT / "scenarios" / "smoke.yaml", tmp_path / "study" / "a.yaml")
    assert main(["validate", str(tmp_path / "study")]) == 2
    err = capsys.readouterr().err
    assert "study is a folder, not a scenario file" in err and "a.yaml" in err and "not found" not in err
    (tmp_path / "child.yaml").write_text("extends: study\n")
    assert main(["validate", str(tmp_path / "child.yaml")]) == 2
    assert "extends (child.yaml line 1): extends a folder, not a scenario file" in capsys.readouterr().err


@pytest.mark.parametrize("field,limit", [("name", 200), ("description", 5000)])
def test_name_and_description_are_bounded(tmp_path, field, limit, capsys):
    rest = "\n".join(line for line in (ROOT / "scenarios" / "smoke.yaml").read_text().splitlines()
                     if not line.startswith(("name:", "description:")))
    bad = tmp_path / "long.yaml"

    def scenario(value: str) -> str:  # the field on line 1
        return f"{field}: {value}\n" + ("" if field == "name" else "name: ok\n") + rest

    bad.write_text(scenario("x" * 200_000))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{field} (long.yaml line 1): must have at most {limit} characters" in err
    assert len(err) < 1000  # the long value is not printed back
    bad.write_text(scenario("x" * limit))
    assert main(["validate", str(bad)]) == 0


def test_schema_lists_every_field_with_a_meaningful_default(capsys):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert "PydanticUndefined" not in out and "(computed)" not in out
    rows = {line.split()[0]: line for line in out.splitlines() if " — " in line}
    assert rows["extends"].startswith("extends ") and "deep-merged" in rows["extends"]
    assert "feeder.base_load.from" in rows and "feeder.base_load.source" not in rows
    assert "default standard" in rows["feeder.base_load.from"]
    assert "default {flat_cny_per_kwh: 0.6}" in rows["tariff"]
    assert "default [{kind: uncontrolled}]" in rows["business_models"]
    assert "sites[].kind" in rows and "default required" in rows["sites[].kind"]
    assert "business_models[]" in out and "(centralized).requests[].kind" in out
    assert all("default " in line for line in rows.values())
    assert main(["schema", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| extends |" in md and "| feeder.base_load.from |" in md and "PydanticUndefined" not in md


def test_unwritable_parent_is_found_before_the_run(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:  # with the progress bar on: it must never start
        p = cli(["run", "smoke", "-o", "locked/out", "--no-plots"], cwd=tmp_path)
    finally:
        os.chmod(locked, 0o755)
    assert p.returncode == 1 and "cannot write the results to locked/out" in p.stderr
    assert "step/s" not in p.stderr and "192/" not in p.stderr and "96/" not in p.stderr, p.stderr


def test_compare_never_replaces_a_users_files_without_overwrite(tmp_path, capsys):
    run_smoke(tmp_path / "a")
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "kpis.csv").write_text("my own table\n")
    (out / "notes.txt").write_text("mine\n")
    assert main(["compare", str(tmp_path / "a"), "smoke", "-o", str(out)]) == 2
    assert "already holds kpis.csv" in capsys.readouterr().err
    assert (out / "kpis.csv").read_text() == "my own table\n"
    assert main(["compare", str(tmp_path / "a"), "smoke", "-o", str(out), "--overwrite"]) == 0
    assert (out / "kpis.csv").read_text() != "my own table\n" and (out / "load_curves.png").stat().st_size > 5000
    assert sorted(p.name for p in out.iterdir()) == ["kpis.csv", "load_curves.png", "notes.txt"]
