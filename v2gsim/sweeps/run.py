"""Running a sweep: `run_sweep` (and the ``v2gsim sweep`` command, `cli_main`) checks the sweep,
locks and claims its folder, resolves every run's key, runs the runs not yet recorded, and
writes the tables and plots."""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from v2gsim.errors import ScenarioError
from v2gsim.sweeps.executors import _dispatch, _failed, _Task
from v2gsim.sweeps.resolve import _check_kpis, _Resolver
from v2gsim.sweeps.spec import DEFAULT_MAX_RUNS, Sweep, _check_size, load_sweep
from v2gsim.sweeps.store import (
    SweepFolderError,
    _assemble,
    _claim_folder,
    _folder_lock,
    _read_records,
    _result_dir,
    _scenario_key,
    _unresolved_key,
    _write_atomic,
    _write_table,
)
from v2gsim.sweeps.summary import _kpi_columns, summarize

__all__ = ["cli_main", "run_sweep", "sweep"]


_RESOLVE_BAR_DELAY_S = 1.0  # the bar of the resolving phase shows once it takes longer than this
_DEFAULT_PLOT_KPIS = ("peak_load_kw", "max_transformer_loading_pct", "unmet_energy_kwh")


def run_sweep(
    sweep_file: str | os.PathLike | Sweep,
    out_dir: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: Any = None,
    keep_results: bool = False,
    progress: bool = True,
    retry_failed: bool = False,
    plots: bool = True,
    callback: Callable[[dict], None] | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
    extend: bool = False,
) -> pd.DataFrame:
    """Run every run of a sweep that is not already in ``out_dir`` and return the run table.

    Before anything runs: the sweep's runs are counted (refused above ``max_runs``), its KPI
    names are checked (one-step runs), and ``out_dir`` is locked and checked to hold no other
    sweep. Each run goes through `v2gsim.runner.run_scenario`, with the reference
    run only when the KPIs ask for ``peak_reduction_pct`` or a ``reference_*`` KPI.

    Args:
        sweep_file: A sweep YAML file (or a `Sweep` from `load_sweep`).
        out_dir: Output folder; created if needed. Rerunning the same sweep into it resumes.
        workers: Number of worker processes. With ``scheduler=None``, giving it starts an
            embedded Dask ``LocalCluster`` with that many single-threaded worker processes;
            leaving it out uses local worker processes, one per available core.
        scheduler: ``None`` (see ``workers``); ``"processes"``: local worker processes
            (``workers`` of them, default one per core); ``"dask"``: an embedded LocalCluster;
            ``"serial"``: in this process; a Dask scheduler address (``"tcp://host:8786"``) or a
            ``distributed.Client``: an existing cluster (v2gsim must be installed on its workers).
        keep_results: Also save each run's full `Results` under ``out_dir/results/<hash16>/``.
            Resuming with it re-runs finished runs whose results folder is missing.
        progress: Show progress bars (resolving the runs when that takes over a second; runs
            done, failed, time left) on stderr.
        retry_failed: Run again the runs recorded as failed by an earlier attempt.
        plots: Write the summary plots to ``out_dir/plots/``.
        callback: Called in this process with each run's record right after it is written
            (for notebooks and tests; raising `KeyboardInterrupt` there stops the sweep).
        max_runs: Refuse a sweep with more runs than this (default `DEFAULT_MAX_RUNS`).
        extend: Accept an ``out_dir`` that holds a different sweep: its finished runs whose
            scenarios this sweep also has are reused, the tables and plots become this sweep's.

    Returns:
        The run table, also written to ``out_dir/runs.parquet``: one row per run with run_id,
        the parameter columns (named by their dotted paths), replication, seed, KPI columns,
        status (``"ok"``/``"failed"``), error, wall_time_s (s), scenario_hash.

    Raises:
        ScenarioError: the sweep file (or its base scenario, a parameter path, a KPI name) is
            invalid, or the sweep has more than ``max_runs`` runs.
        SweepFolderError: another sweep is writing to ``out_dir``, or it holds a different sweep.
        KeyboardInterrupt: interrupted; every run finished so far is kept in ``out_dir/runs/``.
    """
    if max_runs < 1:
        raise ValueError(f"max_runs must be ≥ 1; got {max_runs}")
    sweep_obj = sweep_file if isinstance(sweep_file, Sweep) else load_sweep(sweep_file)
    _check_size(sweep_obj, max_runs)
    resolver = _Resolver(sweep_obj)
    _check_kpis(sweep_obj, resolver)
    out = Path(out_dir)
    with _folder_lock(out):
        base = resolver.scenario({}, sweep_obj.spec.seed)
        spec_json = sweep_obj.spec.model_dump(mode="json")
        base_hash = _scenario_key(base)
        _claim_folder(out, {
            "sweep_id": hashlib.sha256(json.dumps([spec_json, base_hash], sort_keys=True).encode()).hexdigest(),
            "sweep_file": str(sweep_obj.file), "base": str(sweep_obj.base_path), "base_scenario_hash": base_hash,
            "spec": spec_json, "n_runs": sweep_obj.n_runs, "baseline": sweep_obj.baseline}, extend)
        return _run_locked(sweep_obj, resolver, out, workers=workers, scheduler=scheduler,
                           keep_results=keep_results, progress=progress, retry_failed=retry_failed,
                           plots=plots, callback=callback)


sweep = run_sweep


def _run_locked(sweep_obj: Sweep, resolver: _Resolver, out: Path, *, workers, scheduler, keep_results: bool,
                progress: bool, retry_failed: bool, plots: bool, callback) -> pd.DataFrame:
    spec = sweep_obj.spec
    baseline = sweep_obj.baseline
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    # Every run's key is the hash of its resolved scenario: its identity on disk.
    keys, first_run, resolve_errors = _plan(sweep_obj, resolver, progress)
    records = _read_records(runs_dir)

    def finished(key: str) -> bool:
        rec = records.get(key)
        if rec is None:
            return False
        if rec["status"] != "ok":
            return not retry_failed
        if baseline and not rec.get("baseline"):
            return False  # run without the reference run, whose KPIs are asked for now
        return not keep_results or (_result_dir(out, key) / "metadata.json").is_file()

    unique = list(dict.fromkeys(keys))
    todo_keys = [k for k in unique if not finished(k)]
    n_failed = sum(1 for k in unique if k in records and records[k]["status"] != "ok" and finished(k))
    bar = _progress_bar(total=len(unique), initial=len(unique) - len(todo_keys), enabled=progress,
                        desc=spec.name or sweep_obj.file.stem)

    def on_done(task: _Task, outcome: dict) -> None:
        nonlocal n_failed
        record = {
            "key": task.key,
            "scenario_hash": None if task.key.startswith("unresolved-") else task.key,
            "status": outcome["status"],
            "error": outcome["error"],
            "traceback": outcome.get("traceback"),
            "wall_time_s": outcome["wall_time_s"],
            "kpis": outcome["kpis"],
            "baseline": task.baseline,
            "run_id": task.run_id,
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if outcome.get("result_hash") not in (None, task.key):
            warnings.warn(f"run {task.run_id}: the results' scenario hash differs from the sweep's",
                          RuntimeWarning, stacklevel=2)
        res = outcome.get("results")
        if res is not None:
            res.save(_result_dir(out, task.key), plots=False, overwrite=True)  # a resumed sweep redoes a run whose record was lost
            record["result_dir"] = str(_result_dir(out, task.key).relative_to(out))
        _write_atomic(runs_dir / f"{task.key}.json", json.dumps(record, indent=1, allow_nan=True))
        records[task.key] = record
        if record["status"] != "ok":
            n_failed += 1
        bar.update(1)
        bar.set_postfix(failed=n_failed, refresh=False)
        if callback is not None:
            callback(record)

    to_run = {first_run[k]: k for k in todo_keys if k not in resolve_errors}

    def tasks() -> Iterator[_Task]:
        """The runs to do, their scenarios resolved (again) only as workers ask for them."""
        left = len(to_run)
        for run in sweep_obj.iter_runs() if left else ():
            key = to_run.get(run.run_id)
            if key is not None:
                yield _Task(key, run.run_id, resolver.scenario(run.params, run.seed), keep_results, baseline)
                left -= 1
                if not left:
                    return

    try:
        # Runs whose scenario does not validate fail here, without a worker.
        for key in todo_keys:
            if key in resolve_errors:
                on_done(_Task(key, first_run[key], None, keep_results, baseline), _failed(resolve_errors[key]))
        if to_run:
            _dispatch(tasks(), len(to_run), workers, scheduler, on_done)
    finally:
        bar.close()

    table = _assemble(sweep_obj, keys, records, keep_results)
    n_unique = len(unique)
    table.attrs.update(n_unique_runs=n_unique, n_executed=len(todo_keys), n_reused=n_unique - len(todo_keys))
    _write_table(table, out / "runs.parquet")
    summary = summarize(table, sweep_obj.parameter_names, _kpi_columns(table, sweep_obj))
    _write_table(summary, out / "summary.parquet")
    for old in (out / "plots").glob("*.png"):  # an earlier attempt's, perhaps of other KPIs
        old.unlink()
    if plots:
        from v2gsim.sweeps.plots import save_sweep_plots

        kpis = spec.kpis or [k for k in _DEFAULT_PLOT_KPIS if k in table.columns]
        save_sweep_plots(summary, sweep_obj.parameter_names, kpis, out / "plots",
                         heatmaps=spec.design == "grid")
    return table


def _plan(sweep: Sweep, resolver: _Resolver, progress: bool) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """Resolve every run once, in order, keeping only its key (the hash of its scenario).

    Returns:
        (key of each planned run, first run_id of each key, error of each unresolvable key).
    """
    keys: list[str] = []
    first_run: dict[str, int] = {}
    errors: dict[str, str] = {}
    bar = _progress_bar(total=sweep.n_runs, initial=0, enabled=progress, desc="resolving runs",
                        delay=_RESOLVE_BAR_DELAY_S)
    try:
        for run in sweep.iter_runs():
            try:
                key = _scenario_key(resolver.scenario(run.params, run.seed))
            except ScenarioError as exc:
                key = _unresolved_key(sweep.base_path, resolver.overrides(run.params, run.seed))
                errors[key] = f"ScenarioError: {exc}"
            keys.append(key)
            first_run.setdefault(key, run.run_id)
            bar.update(1)
    finally:
        bar.close()
    return keys, first_run, errors


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, initial: int, enabled: bool, desc: str, delay: float = 0.0):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="run", dynamic_ncols=True,
                mininterval=0.5, delay=delay, file=sys.stderr)


def cli_main(args: argparse.Namespace) -> int:
    """Entry point for ``v2gsim sweep FILE -o DIR [--workers N] [--scheduler ADDRESS] ...``.

    Reads ``args.file``, ``args.out``, ``args.workers``, ``args.scheduler``,
    ``args.keep_results``, ``args.progress``, ``args.max_runs`` and ``args.extend`` (missing
    ones take their defaults).

    Returns:
        0 when every run succeeded, 1 when some failed, 2 for an invalid sweep file, a sweep
        over the run limit, or an output folder in use or holding another sweep, 130 when
        interrupted (rerun the same command to resume).
    """
    out = Path(args.out)
    t0 = time.perf_counter()
    try:
        table = run_sweep(args.file, out, workers=getattr(args, "workers", None),
                          scheduler=getattr(args, "scheduler", None),
                          keep_results=bool(getattr(args, "keep_results", False)),
                          progress=bool(getattr(args, "progress", True)),
                          max_runs=DEFAULT_MAX_RUNS if getattr(args, "max_runs", None) is None else args.max_runs,
                          extend=bool(getattr(args, "extend", False)))
    except (ScenarioError, SweepFolderError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = len(list((out / "runs").glob("*.json")))
        print(f"\ninterrupted: {done} finished runs are kept in {out / 'runs'}; "
              f"run the same command again to resume", file=sys.stderr)
        return 130
    n = len(table)
    n_failed = int((table["status"] != "ok").sum())
    reused = table.attrs.get("n_reused", 0)
    note = f" ({reused} finished earlier, not repeated)" if reused else ""
    print(f"{n} runs: {n - n_failed} ok, {n_failed} failed{note} in {time.perf_counter() - t0:.1f} s")
    print(f"run table: {out / 'runs.parquet'}")
    print(f"summary:   {out / 'summary.parquet'}")
    if (out / "plots").is_dir():
        print(f"plots:     {out / 'plots'}")
    if n_failed:
        first = table.loc[table["status"] != "ok"].iloc[0]
        print(f"first failure (run {first['run_id']}): {str(first['error']).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0
