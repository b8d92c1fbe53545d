"""Batch parameter sweeps: grids and Latin-hypercube samples of scenario runs, locally or on Dask.

A sweep file names a base scenario, the parameters to vary (dotted paths, as for ``--set``), the
number of replications, the KPIs to keep and a master seed. `run_sweep` expands it into a fixed,
ordered list of runs, runs them on local worker processes, an embedded Dask ``LocalCluster`` or
an existing Dask cluster, and writes:

``out_dir/runs/<key>.json``
    One small record per finished run, written atomically (temp file + ``os.replace``) the moment
    the run's result reaches the parent process. ``<key>`` is the SHA-256 of the run's resolved
    scenario (seed included), so a restarted sweep recognises finished runs and never repeats
    them. These files are the source of truth; the tables below are rebuilt from them.
``out_dir/runs.parquet``
    One row per run: run_id, parameter columns, replication, seed, KPI columns, status, error,
    wall_time_s, scenario_hash (and result_dir with ``keep_results``).
``out_dir/summary.parquet``
    Long table: per parameter combination and KPI, n, mean, std and a 95 % t-interval.
``out_dir/plots/``
    KPI against one parameter with a confidence band, and heat maps over two parameters.
``out_dir/results/<hash16>/``
    Full `v2gsim.Results` of each run, only with ``keep_results``.

Seeds: the master seed is split with `numpy.random.SeedSequence`; run ``i`` (in the fixed run
order) gets child ``i`` and its scenario ``seed`` is overridden with it, so the table does not
depend on the number or kind of workers.

Every run goes through `v2gsim.runner.run_scenario`, the function behind ``v2gsim run`` and
`v2gsim.run`. Its uncontrolled reference run (which doubles the time of a controlled run) is on
only when the sweep's ``kpis`` ask for ``uncontrolled_peak_kw`` or ``peak_reduction_pct``.

The output folder is locked while a sweep writes to it (``out_dir/.sweep.lock``, an ``flock``
that dies with its process), and it takes only the sweep recorded in ``out_dir/sweep.json``
(same validated sweep file and base scenario) unless ``extend`` is given.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import ctypes
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import platform
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from v2gsim.errors import Problem, ScenarioError
from v2gsim.scenario import Scenario, find_scenario, load_scenario, loader, validate_scenario
from v2gsim.scenario.schema import resolve_paths

__all__ = [
    "DEFAULT_MAX_RUNS",
    "IntervalSpec",
    "PlannedRun",
    "RangeSpec",
    "Sweep",
    "SweepFolderError",
    "SweepSpec",
    "cli_main",
    "load_sweep",
    "run_sweep",
    "summarize",
    "sweep",
]

MAX_WORKER_DEATHS = 3  # a run whose worker dies this often is recorded as failed
DEFAULT_MAX_RUNS = 100_000  # a larger sweep must be asked for (max_runs=, --max-runs)
LOCK_FILE = ".sweep.lock"
_KPI_PROBES_MAX = 32  # one-step runs spent at most on finding the KPI names a sweep can produce
_RESOLVE_BAR_DELAY_S = 1.0  # the bar of the resolving phase shows once it takes longer than this
_PARENT_POLL_S = 0.5  # a worker notices this fast that the sweep process is gone (without prctl)
_DEFAULT_PLOT_KPIS = ("peak_load_kw", "max_transformer_loading_pct", "unmet_energy_kwh")

Scalar = bool | int | float | str


# --------------------------------------------------------------------------------------------
# sweep file schema


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeSpec(_Frozen):
    """Evenly spaced values ``start, start+step, ...`` up to and including ``stop``.

    All three integers give integers; otherwise floats (rounded to 12 significant digits so
    ``0.1`` steps do not produce ``0.30000000000000004``).
    """

    start: float | int = Field(description="first value")
    stop: float | int = Field(description="last value (included when reached exactly)")
    step: Annotated[float | int, Field(gt=0, description="spacing, > 0")]

    @model_validator(mode="after")
    def _ordered(self):
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must be ≥ start ({self.start})")
        return self

    @property
    def n_values(self) -> int:
        """How many values `values` gives, without making them."""
        return int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1

    def value(self, k: int) -> int | float:
        """Value number ``k`` (0-based)."""
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (self.start, self.stop, self.step)):
            return int(self.start + k * self.step)
        return float(f"{self.start + k * self.step:.12g}")

    def values(self) -> list[int | float]:
        return [self.value(k) for k in range(self.n_values)]


class IntervalSpec(_Frozen):
    """A continuous range ``[low, high]`` for Latin-hypercube designs."""

    low: float | int
    high: float | int
    integer: bool = Field(False, description="round samples to whole numbers (e.g. a count)")
    log: bool = Field(False, description="sample uniformly in log space (needs low > 0)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be ≥ low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("log sampling needs low > 0")
        return self

    def map(self, u: np.ndarray) -> list[int | float]:
        """Map uniform samples ``u`` in [0, 1) onto the interval."""
        if self.log:
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        if self.integer:
            if self.log:
                x = np.clip(np.rint(x), math.ceil(self.low), math.floor(self.high))
            else:  # floor over [low, high + 1) gives every whole number the same chance
                x = np.minimum(np.floor(self.low + u * (self.high + 1 - self.low)), self.high)
            return [int(v) for v in x]
        return [float(f"{v:.12g}") for v in x]


def _param_kind(value: Any) -> str:
    # pick the member from the shape, so a wrong range is not also reported as a wrong list
    if isinstance(value, dict):
        return "interval" if ("low" in value or "high" in value) else "range"
    if isinstance(value, (RangeSpec, IntervalSpec)):  # when serialising
        return "range" if isinstance(value, RangeSpec) else "interval"
    return "list"


ParamSpec = Annotated[
    Annotated[Annotated[list[Scalar], Field(min_length=1)], Tag("list")]
    | Annotated[RangeSpec, Tag("range")]
    | Annotated[IntervalSpec, Tag("interval")],
    Discriminator(_param_kind),
]


class SweepSpec(_Frozen):
    """A sweep file, validated. See ``docs/sweeps.md`` for the format."""

    name: str = ""
    description: str = ""
    base: str = Field(description="base scenario: a file relative to the sweep file, or a bundled name")
    overrides: dict[str, Any] = Field(default_factory=dict, description="fixed dotted-path overrides applied to every run")
    design: Literal["grid", "lhs"] = Field("grid", description="grid: cartesian product; lhs: Latin hypercube")
    samples: Annotated[int, Field(ge=1)] | None = Field(None, description="number of Latin-hypercube points (design: lhs)")
    parameters: Annotated[dict[str, ParamSpec], Field(min_length=1)] = Field(description="dotted path -> list, range or interval")
    replications: Annotated[int, Field(ge=1)] = 1
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    seeds: Literal["per_run", "per_replication"] = Field(
        "per_run", description="per_run: an independent stream per run; per_replication: "
        "replication r uses the same seed in every combination (common random numbers)")
    kpis: list[str] | None = Field(None, description="KPI names to keep; all when omitted")


def _sweep_checks(raw: Any, lines: loader.LineMap) -> list[Problem]:
    """Cross-field checks on the raw sweep data (tolerant of malformed values)."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return problems

    def at(*path: str | int) -> dict:
        file, line = lines.lookup(path)
        return {"file": file, "line": line}

    design = raw.get("design", "grid")
    params = raw.get("parameters") if isinstance(raw.get("parameters"), dict) else {}
    overrides = raw.get("overrides") if isinstance(raw.get("overrides"), dict) else {}
    for section, mapping in (("parameters", params), ("overrides", overrides)):
        for key in mapping:
            where = f"{section}.{key}"
            try:
                path = loader.parse_path(str(key))
            except ValueError as exc:
                problems.append(Problem(where, f"is not a dotted path: {exc}", **at(section, key)))
                continue
            if not path:
                problems.append(Problem(where, "names no field", **at(section, key)))
            elif path == ("seed",):
                problems.append(Problem(where, "the scenario seed is set by the sweep",
                                        hint="use the sweep's `seed:` (master seed) and `replications:`",
                                        **at(section, key)))
    for key in set(map(str, params)) & set(map(str, overrides)):
        problems.append(Problem(f"parameters.{key}", "is also given under overrides",
                                hint="keep it in one place", **at("parameters", key)))
    for key, spec in params.items():
        if design == "grid" and isinstance(spec, dict) and ("low" in spec or "high" in spec):
            problems.append(Problem(f"parameters.{key}", "low/high intervals need design: lhs",
                                    hint="in a grid give a list or {start, stop, step}",
                                    **at("parameters", key)))
    if design == "lhs" and raw.get("samples") is None:
        problems.append(Problem("samples", "is required with design: lhs", **at("design")))
    if design == "grid" and raw.get("samples") is not None:
        problems.append(Problem("samples", "only applies to design: lhs", **at("samples")))
    return problems


# --------------------------------------------------------------------------------------------
# planning


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep.

    Attributes:
        run_id: Position in the fixed run order (combination-major, replication-minor).
        combination: Index of the parameter combination (grid point or LHS sample).
        params: Parameter path -> value, in the sweep file's order.
        replication: 0-based replication number.
        seed: The scenario seed for this run (from the master seed's SeedSequence).
    """

    run_id: int
    combination: int
    params: dict[str, Any]
    replication: int
    seed: int

    def overrides(self, fixed: Mapping[str, Any]) -> dict[str, Any]:
        return {**fixed, **self.params, "seed": self.seed}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A loaded sweep file: its spec, where it lives, its base scenario and its lines."""

    spec: SweepSpec
    file: Path
    base_path: Path
    lines: loader.LineMap | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def parameter_names(self) -> list[str]:
        return list(self.spec.parameters)

    @property
    def n_runs(self) -> int:
        """Number of planned runs, counted without making them (combinations × replications)."""
        spec = self.spec
        points = spec.samples if spec.design == "lhs" else math.prod(_n_values(p) for p in spec.parameters.values())
        return points * spec.replications

    @property
    def baseline(self) -> bool:
        """Whether runs also run their uncontrolled reference: only when the KPIs ask for it."""
        from v2gsim.runner import BASELINE_KPIS

        return bool(set(self.spec.kpis or ()) & set(BASELINE_KPIS))

    def iter_combinations(self) -> Iterator[dict[str, Any]]:
        """Parameter combinations in the fixed order (grid: last parameter varies fastest), one
        at a time (a grid is never held in memory whole)."""
        spec = self.spec
        names = list(spec.parameters)
        if spec.design == "grid":
            axes = [_values(p) for p in spec.parameters.values()]
            return (dict(zip(names, combo)) for combo in itertools.product(*axes))
        from scipy.stats import qmc

        design_seq, _ = np.random.SeedSequence(spec.seed).spawn(2)
        sampler = qmc.LatinHypercube(d=len(names), rng=np.random.default_rng(design_seq))
        u = sampler.random(spec.samples)
        columns = []
        for j, p in enumerate(spec.parameters.values()):
            if isinstance(p, IntervalSpec):
                columns.append(p.map(u[:, j]))
            else:  # a list or range is a categorical axis: stratum -> item
                n = _n_values(p)
                idx = np.minimum((u[:, j] * n).astype(int), n - 1)
                columns.append([_value(p, int(i)) for i in idx])
        return (dict(zip(names, row)) for row in zip(*columns))

    def combinations(self) -> list[dict[str, Any]]:
        """Parameter combinations in the fixed order (a list; see `iter_combinations`)."""
        return list(self.iter_combinations())

    def iter_runs(self) -> Iterator[PlannedRun]:
        """Every run in the fixed run order, each with its own seed, one at a time."""
        reps = self.spec.replications
        per_replication = self.spec.seeds == "per_replication"
        _, run_seq = np.random.SeedSequence(self.spec.seed).spawn(2)
        rep_seeds = [_child_seed(run_seq, r) for r in range(reps)] if per_replication else None
        for c, params in enumerate(self.iter_combinations()):
            for r in range(reps):
                i = c * reps + r
                yield PlannedRun(i, c, params, r, rep_seeds[r] if rep_seeds else _child_seed(run_seq, i))

    def runs(self) -> list[PlannedRun]:
        """Every run in the fixed run order (a list; see `iter_runs` for big sweeps)."""
        return list(self.iter_runs())


def _n_values(p: list | RangeSpec) -> int:
    return p.n_values if isinstance(p, RangeSpec) else len(p)


def _value(p: list | RangeSpec, k: int) -> Any:
    return p.value(k) if isinstance(p, RangeSpec) else p[k]


def _child_seed(seq: np.random.SeedSequence, i: int) -> int:
    """The seed of ``seq.spawn(n)[i]`` (for a fresh ``seq``) without making the other children."""
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, i), pool_size=seq.pool_size)
    return _seed_of(child)


def _check_size(sweep: Sweep, max_runs: int) -> None:
    """Refuse a sweep with more than ``max_runs`` runs before making any of them."""
    n = sweep.n_runs
    if n <= max_runs:
        return
    spec = sweep.spec
    if spec.design == "lhs":
        parts, where = [f"{spec.samples:,} samples"], ("samples",)
    else:
        parts, where = [f"{_n_values(p):,} values of {k}" for k, p in spec.parameters.items()], ("parameters",)
    parts.append(f"{spec.replications:,} replication{'s' if spec.replications != 1 else ''}")
    file, line = sweep.lines.lookup(where) if sweep.lines else (str(sweep.file), None)
    raise ScenarioError(Problem(
        where[0], f"the sweep has {n:,} runs ({' × '.join(parts)}); the limit is {max_runs:,}",
        hint="use fewer values or replications, or raise the limit: --max-runs N (run_sweep(..., max_runs=N))",
        file=file, line=line), file=str(sweep.file))


def _values(p: list | RangeSpec) -> list:
    return p.values() if isinstance(p, RangeSpec) else list(p)


def _seed_of(seq: np.random.SeedSequence) -> int:
    # scenario seeds are non-negative 63-bit integers
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file.

    Checks the file itself (every problem with its YAML path and line), that the base scenario
    loads, and that every parameter and override path names a field of the scenario.

    Raises:
        ScenarioError: listing every problem found.
    """
    path = Path(path)
    raw, lines = loader.resolve(path)
    spec = loader.validate(raw, SweepSpec, lines, extra_checks=lambda r: _sweep_checks(r, lines))
    assert isinstance(spec, SweepSpec)
    base_file, base_line = lines.lookup(("base",))
    candidate = (path.parent / spec.base)
    base_path = candidate if candidate.is_file() else find_scenario(spec.base)
    if not base_path.is_file():
        raise ScenarioError(Problem("base", f"no scenario file or bundled scenario named {spec.base!r}",
                                    hint="give a path relative to the sweep file, or a name such as 'smoke'",
                                    file=base_file, line=base_line), file=str(path))
    sweep = Sweep(spec, path, base_path.resolve(), lines)
    _check_paths(sweep, lines)
    return sweep


def _check_paths(sweep: Sweep, lines: loader.LineMap) -> None:
    """Fail early when a parameter path does not exist, instead of failing every run."""
    spec = sweep.spec
    try:
        load_scenario(sweep.base_path, overrides=dict(spec.overrides))
    except ScenarioError as exc:
        # a fixed override (or the base itself) is wrong: every run would fail
        problems = []
        for p in exc.problems:
            key = _matching_key(p, spec.overrides)
            if key is not None:
                file, line = lines.lookup(("overrides", key))
                problems.append(Problem(f"overrides.{key}", p.message, hint=p.hint, file=file, line=line))
            else:
                problems.append(p)
        raise ScenarioError(problems, file=str(sweep.file)) from None
    problems = []
    for key, p_spec in spec.parameters.items():
        first = _value(p_spec, 0) if not isinstance(p_spec, IntervalSpec) else p_spec.low
        try:
            load_scenario(sweep.base_path, overrides={**spec.overrides, key: first})
        except ScenarioError as exc:
            target = loader.parse_path(key)
            for p in exc.problems:
                try:
                    ppath = loader.parse_path(p.path)
                except ValueError:
                    ppath = ()
                is_path_problem = (p.message.startswith(("unknown field", "override "))
                                   or (len(ppath) < len(target) and target[:len(ppath)] == ppath))
                if is_path_problem:
                    file, line = lines.lookup(("parameters", key))
                    problems.append(Problem(f"parameters.{key}", f"does not name a scenario field: {p.message}",
                                            hint=p.hint, file=file, line=line))
    if problems:
        raise ScenarioError(problems, file=str(sweep.file))


def _matching_key(problem: Problem, mapping: Mapping[str, Any]) -> str | None:
    try:
        ppath = loader.parse_path(problem.path)
    except ValueError:
        return None
    for key in mapping:
        k = loader.parse_path(key)
        if ppath[:len(k)] == k or k[:len(ppath)] == ppath:
            return key
    return None


# --------------------------------------------------------------------------------------------
# resolving runs


class _Resolver:
    """Each run's scenario, as ``load_scenario(base, overrides)`` gives it, without reading YAML
    per run.

    The base file (and its ``extends:`` chain) is read once; a run copies that data, applies the
    sweep's overrides, its parameters and its seed the way ``--set`` does (`loader` rules, so
    data-file paths and error lines are the same) and validates it with the checks
    `load_scenario` runs. Reading YAML is what made resolving slow (3–15 ms per run); copying
    and validating takes well under 1 ms. A run that does not validate is resolved again through
    `load_scenario` itself, so its message is exactly that of ``v2gsim run --set``.
    """

    def __init__(self, sweep: Sweep):
        self.base_path = sweep.base_path
        self.fixed = dict(sweep.spec.overrides)
        self._raw, self._lines = loader.resolve(sweep.base_path)

    def overrides(self, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        return {**self.fixed, **params, "seed": seed}

    def scenario(self, params: Mapping[str, Any], seed: int) -> Scenario:
        """Raises: ScenarioError, as `load_scenario` would."""
        overrides = self.overrides(params, seed)
        raw = _copy_tree(self._raw)
        lines = loader.LineMap(self._lines.root_file, dict(self._lines.items()))
        applied = all(loader._apply_override(raw, loader.parse_path(k), v, lines, k) is None
                      for k, v in overrides.items())
        if applied:
            try:
                return validate_scenario(resolve_paths(raw, lines), lines)
            except ScenarioError:
                pass
        return load_scenario(self.base_path, overrides=overrides)


def _copy_tree(data: Any) -> Any:
    """Copy the mappings and lists of YAML data (their leaves are immutable): 2–3× faster than
    `copy.deepcopy`, which took a third of the time to resolve a run."""
    if isinstance(data, dict):
        return {k: _copy_tree(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_tree(v) for v in data]
    return data


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


def _check_kpis(sweep: Sweep, resolver: _Resolver) -> None:
    """Refuse KPI names no run of the sweep reports, before running anything.

    Which KPIs a run reports depends on its scenario (a business model's counters, wear, a
    network, swap stations), so the names come from one-step runs (`runner.kpi_names`): of the
    first value of every parameter, then, while a name is still missing, of each mix of the
    parameters' non-numeric values (kinds, switches, names: what changes which KPIs exist),
    at most `_KPI_PROBES_MAX` of them.

    Raises:
        ScenarioError: each unknown name with its line in the sweep file and a did-you-mean.
    """
    wanted = sweep.spec.kpis
    if not wanted:
        return
    from v2gsim.runner import BASELINE_KPIS, kpi_names

    known: set[str] = set()
    probed = 0
    for params in itertools.islice(_kpi_probe_points(sweep), _KPI_PROBES_MAX):
        try:
            known |= kpi_names(resolver.scenario(params, sweep.spec.seed), baseline=sweep.baseline)
        except Exception:  # noqa: BLE001 - a value or model that fails is reported by its runs
            continue
        probed += 1
        if known.issuperset(wanted):
            return
    if not probed:
        return  # nothing could run: every run will fail and say why
    candidates = sorted(known | set(BASELINE_KPIS))
    problems = []
    for i, name in enumerate(wanted):
        if name in known:
            continue
        file, line = sweep.lines.lookup(("kpis", i)) if sweep.lines else (str(sweep.file), None)
        close = loader._suggest(name, candidates)
        hint = f"did you mean {close!r}?" if close else f"known KPIs: {', '.join(candidates)}"
        problems.append(Problem(loader.format_path(("kpis", i)), f"no run of this sweep reports a KPI {name!r}",
                                hint=hint, file=file, line=line))
    raise ScenarioError(problems, file=str(sweep.file))


def _kpi_probe_points(sweep: Sweep) -> Iterator[dict[str, Any]]:
    axes = []
    for p in sweep.spec.parameters.values():
        if isinstance(p, (IntervalSpec, RangeSpec)):  # numbers only
            axes.append([p.low if isinstance(p, IntervalSpec) else p.value(0)])
            continue
        first, rest = p[0], [v for v in dict.fromkeys(p[1:]) if not _is_number(v)]
        axes.append([first, *(v for v in rest if v != first)])
    names = list(sweep.spec.parameters)
    return (dict(zip(names, combo)) for combo in itertools.product(*axes))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# tasks and workers


@dataclasses.dataclass(frozen=True)
class _Task:
    key: str
    run_id: int  # first planned run with this key
    scenario: Scenario
    keep_results: bool
    baseline: bool  # also run the uncontrolled reference (runner.run_scenario)


def _scenario_key(scenario) -> str:
    from v2gsim.results import scenario_hash

    return scenario_hash(scenario.model_dump(mode="json"))


def _unresolved_key(base: Path, overrides: Mapping[str, Any]) -> str:
    text = json.dumps({"base": str(base), "overrides": overrides}, sort_keys=True, default=str)
    return "unresolved-" + hashlib.sha256(text.encode()).hexdigest()


def _execute(task: _Task) -> dict:
    """Run one scenario in a worker, the way ``v2gsim run`` does; never raises for a failing run
    (the error is returned)."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"status": "ok", "error": None, "traceback": None, "kpis": {}}
    try:
        from v2gsim.runner import run_scenario

        res = run_scenario(task.scenario, baseline=task.baseline)
        out["kpis"] = {k: float(v) for k, v in res.kpis.items()}
        out["result_hash"] = res.metadata.get("scenario_hash")
        if task.keep_results:
            out["results"] = res
    except Exception as exc:  # noqa: BLE001 - any failure of a run is data, not a crash
        out.update(status="failed", error="".join(traceback.format_exception_only(exc)).strip(),
                   traceback=traceback.format_exc(limit=20))
    out["wall_time_s"] = time.perf_counter() - t0
    return out


def _warm_up() -> None:
    """Import the model and the heavy libraries it loads lazily, once per worker process, so
    the first run on each worker is not charged ~1 s of imports."""
    import importlib

    import v2gsim.model  # noqa: F401

    for name in ("pandapower", "simbench"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _init_local_worker(parent_pid: int) -> None:
    """Initializer of a local worker process: die with the sweep process, then warm up.

    A worker blocked on its task queue never notices that the sweep process is gone (a SIGKILL
    closes no pipe it waits on), and would live on for minutes with ~260 MB. On Linux the kernel
    sends it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a
    fallback, a thread polls the parent pid. (Dask's worker processes already exit when their
    nanny's pipe closes.)
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked to tell us
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="v2gsim-parent-watch",
                     daemon=True).start()
    _warm_up()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _failed(error: str) -> dict:
    return {"status": "failed", "error": error, "traceback": None, "kpis": {}, "wall_time_s": float("nan")}


OnDone = Callable[[_Task, dict], None]


def _run_serial(tasks: Iterable[_Task], on_done: OnDone) -> None:
    for t in tasks:
        on_done(t, _execute(t))


def _run_processes(tasks: Iterable[_Task], n_workers: int, on_done: OnDone) -> None:
    """Local worker processes (spawn). A dead worker breaks the pool: it is restarted, and the
    runs that were in flight are retried one at a time so the culprit is found; a run whose
    worker dies `MAX_WORKER_DEATHS` times is recorded as failed. Tasks are taken from ``tasks``
    only as workers free up."""
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    source = iter(tasks)
    pending: collections.deque[_Task] = collections.deque()  # retries first, then the next task
    deaths: dict[str, int] = collections.defaultdict(int)
    in_flight: dict[cf.Future, _Task] = {}
    pool: cf.ProcessPoolExecutor | None = None
    window = 2 * n_workers  # a little prefetch hides the round trip

    def has_next() -> bool:
        if not pending:
            t = next(source, None)
            if t is not None:
                pending.append(t)
        return bool(pending)

    try:
        while has_next() or in_flight:
            if pool is None:
                pool = cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_local_worker,
                                              initargs=(os.getpid(),))
                _check_pool_starts(pool)
            broken = False
            isolated = any(deaths[t.key] for t in in_flight.values())
            while not isolated and len(in_flight) < window and has_next():
                t = pending[0]
                if deaths[t.key] and in_flight:
                    break  # a suspect runs alone
                try:
                    fut = pool.submit(_execute, t)
                except BrokenProcessPool:
                    broken = True
                    break
                pending.popleft()
                in_flight[fut] = t
                isolated = deaths[t.key] > 0
            if not broken and in_flight:
                done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    if isinstance(fut.exception(), BrokenProcessPool):
                        broken = True
                        continue
                    on_done(in_flight.pop(fut), fut.result())
            if broken:
                cf.wait(in_flight)  # a broken pool fails every outstanding future promptly
                suspects = []
                for fut, t in list(in_flight.items()):
                    if fut.exception() is None:
                        on_done(t, fut.result())
                    else:
                        suspects.append(t)
                in_flight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
                for t in reversed(suspects):
                    deaths[t.key] += 1
                    if deaths[t.key] >= MAX_WORKER_DEATHS:
                        on_done(t, _failed(f"worker process died {deaths[t.key]} times running this run"))
                    else:
                        pending.appendleft(t)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _ping() -> int:
    return os.getpid()


def _check_pool_starts(pool: cf.ProcessPoolExecutor) -> None:
    """A pool whose workers die before running anything is not a run's fault: stop at once."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        pool.submit(_ping).result()
    except BrokenProcessPool as exc:
        pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError(
            "local worker processes die as they start: v2gsim fails to import in a fresh "
            "process (see the traceback above), or a script calls the sweep without "
            "`if __name__ == \"__main__\":` (workers are spawned and re-import it)") from exc


def _run_dask(tasks: Iterable[_Task], client, on_done: OnDone) -> None:
    """Run on a Dask cluster, a window of tasks at a time (so a big sweep's scenarios are never
    all in memory); Dask itself retries tasks whose worker died (up to
    ``distributed.scheduler.allowed-failures``), after which the run is recorded failed."""
    from distributed import as_completed

    token = os.urandom(4).hex()
    client.run(_warm_up)
    window = max(64, 4 * sum(client.nthreads().values()))
    source = iter(tasks)
    in_flight: dict[Any, _Task] = {}

    def submit(t: _Task):
        fut = client.submit(_execute, t, key=f"v2gsim-run-{t.run_id}-{t.key[:12]}-{token}", pure=False)
        in_flight[fut] = t
        return fut

    finished = as_completed([submit(t) for t in itertools.islice(source, window)])
    try:
        for fut in finished:
            t = in_flight.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                outcome = _failed(f"{type(exc).__name__}: {exc}")
            on_done(t, outcome)
            fut.release()
            nxt = next(source, None)
            if nxt is not None:
                finished.add(submit(nxt))
    finally:
        if in_flight:
            client.cancel(list(in_flight))


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Keep Dask's INFO lines (scheduler, nanny and worker start and stop) off stderr under the
    progress bar, unless the application asked for INFO on its root logger (``v2gsim --debug``).

    Importing ``distributed`` sets its logger to INFO; an application that configured logging
    (the CLI does) then prints every line. Only the ``distributed`` logger's level changes, for
    the duration of the sweep; nothing is configured on import.
    """
    logger = logging.getLogger("distributed")
    old = logger.level
    logger.setLevel(max(old, logging.getLogger().getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(old)


# --------------------------------------------------------------------------------------------
# the output folder


class SweepFolderError(Exception):
    """The output folder cannot take this sweep: another sweep is writing to it, or it holds the
    results of a different sweep (the CLI exits with status 2)."""


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.sweep.lock`` (``flock``) while the sweep writes to ``out``.

    The kernel drops the lock when its process dies, however it dies, so a lock left by a killed
    sweep never blocks the next one. The file names the holder (pid, host, start) for the
    message a second sweep gets. Worker processes do not inherit it (spawned, and Python opens
    files non-inheritable).
    """
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepFolderError(f"{out} is in use by another sweep ({_lock_holder(fd)}); wait for it "
                                   "to finish, or write to another folder") from None
        except (OSError, ImportError) as exc:  # a file system (or a system) without locks
            warnings.warn(f"cannot lock {out} ({exc}); make sure no other sweep writes to it",
                          RuntimeWarning, stacklevel=3)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # nobody holds it now
    finally:
        os.close(fd)  # releases the lock


def _lock_holder(fd: int) -> str:
    try:
        h = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {h['pid']} on host {h['host']}, started {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is still writing its name
        return "a process that has just started"


def _claim_folder(out: Path, meta: dict, extend: bool) -> None:
    """Write ``sweep.json``, refusing a folder that holds a different sweep unless extending."""
    path = out / "sweep.json"
    if path.is_file() and not extend:
        try:
            prev = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            prev = {}
        same = prev.get("sweep_id") == meta["sweep_id"] or (  # a folder of v2gsim before sweep ids
            "sweep_id" not in prev and prev.get("spec") == meta["spec"])
        if not same:
            what = prev.get("sweep_file") or "an unreadable sweep.json"
            raise SweepFolderError(
                f"{out} holds the results of a different sweep ({what}); a sweep resumes only "
                "with the same sweep file and base scenario. Write to another folder, or add "
                "this sweep's runs to that folder on purpose with --extend (extend=True).")
    _write_atomic(path, json.dumps(meta, indent=2))


# --------------------------------------------------------------------------------------------
# records on disk


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read_records(runs_dir: Path) -> dict[str, dict]:
    records = {}
    for f in sorted(runs_dir.glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # cannot happen with atomic writes; a stray file is simply ignored
        if isinstance(rec, dict) and "key" in rec:
            records[rec["key"]] = rec
    return records


def _result_dir(out_dir: Path, key: str) -> Path:
    return out_dir / "results" / key[:16]


# --------------------------------------------------------------------------------------------
# running


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
    sweep. Each run goes through `v2gsim.runner.run_scenario`, with the uncontrolled reference
    run only when the KPIs ask for ``uncontrolled_peak_kw`` or ``peak_reduction_pct``.

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
        from v2gsim.sweep_plots import save_sweep_plots

        kpis = spec.kpis or [k for k in _DEFAULT_PLOT_KPIS if k in table.columns]
        save_sweep_plots(summary, sweep_obj.parameter_names, kpis, out / "plots",
                         heatmaps=spec.design == "grid")
    return table


def _dispatch(tasks: Iterable[_Task], n_tasks: int, workers: int | None, scheduler: Any, on_done: OnDone) -> None:
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be ≥ 1; got {workers}")
    if scheduler == "serial":
        return _run_serial(tasks, on_done)
    if scheduler == "processes" or (scheduler is None and workers is None):
        n = workers or _available_cores()
        return _run_processes(tasks, min(n, n_tasks), on_done)
    if scheduler is None or scheduler == "dask":
        from distributed import Client, LocalCluster

        n = workers or _available_cores()
        # no dashboard; the scheduler's HTTP server (health checks) on a free port, not on 8787,
        # where a second sweep's cluster would warn that the port is taken
        no_dashboard = {"dashboard": False, "dashboard_address": ":0"}
        with _quiet_dask_logs(), LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                              dashboard_address=None, scheduler_kwargs=no_dashboard,
                                              silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            return _run_dask(tasks, client, on_done)
    if isinstance(scheduler, str):
        from distributed import Client

        with _quiet_dask_logs(), Client(scheduler) as client:
            return _run_dask(tasks, client, on_done)
    if hasattr(scheduler, "submit"):  # a distributed.Client the caller owns
        return _run_dask(tasks, scheduler, on_done)
    raise ValueError(f"scheduler must be None, 'processes', 'dask', 'serial', an address or a Client; got {scheduler!r}")


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


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


# --------------------------------------------------------------------------------------------
# tables


def _kpi_columns(table: pd.DataFrame, sweep_obj: Sweep) -> list[str]:
    fixed = {"run_id", "replication", "seed", "status", "error", "wall_time_s", "scenario_hash", "result_dir"}
    params = set(sweep_obj.parameter_names)
    return [c for c in table.columns if c not in fixed and c not in params]


def _assemble(sweep_obj: Sweep, keys: Sequence[str], records: Mapping[str, dict],
              keep_results: bool) -> pd.DataFrame:
    spec = sweep_obj.spec
    if spec.kpis is not None:
        kpi_names = list(spec.kpis)
        known = {k for rec in records.values() for k in rec.get("kpis", {})}
        unknown = [k for k in kpi_names if known and k not in known]
        if unknown:
            warnings.warn(f"KPIs not produced by any run: {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                          UserWarning, stacklevel=3)
    else:
        kpi_names = list(dict.fromkeys(k for key in keys if key in records for k in records[key].get("kpis", {})))
    rows = []
    for run, key in zip(sweep_obj.iter_runs(), keys):
        rec = records.get(key)
        if rec is None:
            continue
        row: dict[str, Any] = {"run_id": run.run_id, **run.params, "replication": run.replication, "seed": run.seed}
        kp = rec.get("kpis", {})
        for k in kpi_names:
            v = kp.get(k)
            row[k] = float("nan") if v is None else float(v)
        row.update(status=rec["status"], error=rec.get("error"), wall_time_s=rec.get("wall_time_s"),
                   scenario_hash=rec.get("scenario_hash"))
        if keep_results:
            row["result_dir"] = rec.get("result_dir")
        rows.append(row)
    columns = ["run_id", *sweep_obj.parameter_names, "replication", "seed", *kpi_names,
               "status", "error", "wall_time_s", "scenario_hash"] + (["result_dir"] if keep_results else [])
    table = pd.DataFrame(rows, columns=columns)
    table = table.astype({"run_id": "int64", "replication": "int64", "seed": "int64",
                          "wall_time_s": "float64", **{k: "float64" for k in kpi_names}})
    for name in sweep_obj.parameter_names:
        col = table[name]
        if col.dtype == object and len({type(v) for v in col}) > 1:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in col):
                table[name] = col.astype("float64")
            else:
                table[name] = col.astype(str)  # mixed types cannot share a Parquet column
    return table.sort_values("run_id", ignore_index=True)


def _write_table(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def summarize(table: pd.DataFrame, parameters: Sequence[str], kpis: Sequence[str] | None = None,
              confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard deviation and t-interval of each KPI per parameter combination.

    Only runs with status ``"ok"`` count. Args: the run table, its parameter column names and
    the KPI columns (default: every float column that is not bookkeeping).

    Returns:
        Long table: the parameter columns, ``kpi``, ``n`` (ok runs), ``n_failed``, ``mean``,
        ``std`` (ddof 1), ``ci_low``, ``ci_high`` (NaN when n < 2), ``confidence``.
    """
    from scipy import stats

    parameters = list(parameters)
    if kpis is None:
        skip = {"run_id", "replication", "seed", "wall_time_s", *parameters}
        kpis = [c for c in table.columns if c not in skip and pd.api.types.is_float_dtype(table[c])]
    out_cols = [*parameters, "kpi", "n", "n_failed", "mean", "std", "ci_low", "ci_high", "confidence"]
    if table.empty or not kpis:
        return pd.DataFrame(columns=out_cols)
    rows = []
    for combo, group in table.groupby(parameters, sort=False, dropna=False):
        combo = combo if isinstance(combo, tuple) else (combo,)
        ok = group[group["status"] == "ok"]
        n_failed = int((group["status"] != "ok").sum())
        for k in kpis:
            x = ok[k].dropna().to_numpy(dtype=float)
            n = x.size
            mean = float(x.mean()) if n else float("nan")
            std = float(x.std(ddof=1)) if n > 1 else float("nan")
            if n > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
                lo, hi = mean - half, mean + half
            else:
                lo = hi = float("nan")
            rows.append([*combo, k, n, n_failed, mean, std, lo, hi, confidence])
    summary = pd.DataFrame(rows, columns=out_cols)
    return summary.astype({"n": "int64", "n_failed": "int64"})


# --------------------------------------------------------------------------------------------
# command line


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


def machine_description() -> str:
    """One line naming this machine, for benchmark records."""
    return f"{platform.machine()} {platform.processor() or platform.system()}, {_available_cores()} cores, Python {platform.python_version()}"
