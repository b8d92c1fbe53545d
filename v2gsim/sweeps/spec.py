"""Sweep files: their schema, the checks on load, and the fixed, seeded plan of runs.

`load_sweep` reads and validates a sweep file into a `Sweep`; `Sweep.iter_runs` gives every run
in the fixed run order with its own seed (the master seed split with `numpy.random.SeedSequence`:
run ``i`` gets child ``i``, so a run's seed does not depend on the workers).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from v2gsim.errors import Problem, ScenarioError
from v2gsim.fields import ConfigModel
from v2gsim.scenario import find_scenario, load_scenario, loader

__all__ = ["DEFAULT_MAX_RUNS", "IntervalSpec", "PlannedRun", "RangeSpec", "Sweep", "SweepSpec", "load_sweep"]


DEFAULT_MAX_RUNS = 100_000  # a larger sweep must be asked for (max_runs=, --max-runs)
Scalar = bool | int | float | str


class RangeSpec(ConfigModel):
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


class IntervalSpec(ConfigModel):
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


class SweepSpec(ConfigModel):
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
        """Whether runs also run their reference: only when the KPIs ask for it."""
        from v2gsim.runner import REFERENCE_KPIS

        return bool(set(self.spec.kpis or ()) & set(REFERENCE_KPIS))

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


def _values(p: list | RangeSpec) -> list:
    return p.values() if isinstance(p, RangeSpec) else list(p)


def _child_seed(seq: np.random.SeedSequence, i: int) -> int:
    """The seed of ``seq.spawn(n)[i]`` (for a fresh ``seq``) without making the other children."""
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, i), pool_size=seq.pool_size)
    return _seed_of(child)


def _seed_of(seq: np.random.SeedSequence) -> int:
    # scenario seeds are non-negative 63-bit integers
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


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
