"""Each run's scenario, resolved from the base scenario read once, and the check that the KPIs a
sweep asks for exist before anything runs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from v2gsim.errors import Problem, ScenarioError
from v2gsim.scenario import Scenario, load_scenario, loader, validate_scenario
from v2gsim.scenario.schema import resolve_paths
from v2gsim.sweeps.spec import IntervalSpec, RangeSpec, Sweep


_KPI_PROBES_MAX = 32  # one-step runs spent at most on finding the KPI names a sweep can produce


class _Resolver:
    """Each run's scenario, as ``load_scenario(base, overrides)`` gives it, without reading YAML
    per run.

    The base file (and its ``extends:`` chain) is read once; a run copies that data, applies the
    sweep's overrides, its parameters and its seed the way ``--set`` does (`loader` rules, so
    data-file paths and error lines are the same) and validates it with the checks
    `load_scenario` runs. Reading YAML is what made resolving slow; copying and validating is
    an order of magnitude quicker (bench/README.md). A run that does not validate is resolved
    again through `load_scenario` itself, so its message is exactly that of ``v2gsim run --set``.
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
    """Copy the mappings and lists of YAML data (their leaves are immutable): much faster than
    `copy.deepcopy`, which was a large part of the time to resolve a run."""
    if isinstance(data, dict):
        return {k: _copy_tree(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_tree(v) for v in data]
    return data


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
    from v2gsim.runner import REFERENCE_KPIS, kpi_names

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
    candidates = sorted(known | set(REFERENCE_KPIS))
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
