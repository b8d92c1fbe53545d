"""Scenario files: loading, validation and the scenario schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from v2gsim.errors import Problem, ScenarioError
from v2gsim.plugins import load_scenario_plugins
from v2gsim.scenario import loader
from v2gsim.scenario.schema import Scenario, TimeConfig, cross_checks, model_checks, resolve_paths, scenario_model

__all__ = ["Scenario", "bundled_scenarios", "find_scenario", "load_scenario", "scenario_model", "validate_scenario"]

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """Scenario files shipped in the repository's ``scenarios/`` folder, by stem; the pilots
    reproduced from published figures (``scenarios/pilots/``) as ``pilots/<stem>``."""
    if not SCENARIO_DIR.is_dir():
        return {}
    found = {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml"))}
    found.update({f"pilots/{p.stem}": p for p in sorted(SCENARIO_DIR.glob("pilots/*.yaml"))})
    return found


def find_scenario(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else a bundled scenario by name (``smoke``)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    bundled = bundled_scenarios()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    return p  # the loader reports the missing file


def _data_file_checks(raw) -> list[Problem]:
    """Problems of the data files a scenario names, found at validate as they would be at run time."""
    from v2gsim.data.profiles import available_profiles, coverage_problems, read_load_csv, unknown_profile
    from v2gsim.physics.ambient import read_ambient_csv
    from v2gsim.population.mobility import read_sessions_config

    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return problems
    try:  # the clock, to check the files cover it (a bad time section is reported by pydantic)
        tc = TimeConfig.model_validate(raw.get("time"))
        clock, zone = tc.clock(), tc.timezone
    except ValidationError:
        clock, zone = None, None

    def section(*keys):
        node = raw
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    bl = section("feeder", "base_load")
    prof = bl.get("profile")
    if isinstance(prof, str) and prof not in available_profiles():
        problems.append(Problem("feeder.base_load.profile", *unknown_profile(prof)))
    if isinstance(bl.get("csv"), str):
        series, found = read_load_csv(bl["csv"], "feeder.base_load.csv", zone)
        if not found and clock is not None:
            recorded = clock[tc.warmup_days * tc.steps_per_day:]
            found = coverage_problems(series, recorded[0], recorded[-1], "feeder.base_load.csv")
        problems += found
    amb = section("wear", "ambient")
    if isinstance(amb.get("csv"), str):
        series, found = read_ambient_csv(amb["csv"], zone=zone)
        if not found and clock is not None:
            found = coverage_problems(series, clock[0], clock[-1], "wear.ambient.csv")
        problems += found
    ms = raw.get("mobility_sessions")
    if isinstance(ms, dict):
        sites = [s.get("id") for s in raw.get("sites", []) if isinstance(s, dict)] if isinstance(raw.get("sites"), list) else []
        window = (clock[0], clock[-1] + clock.freq) if clock is not None else None
        problems += read_sessions_config(ms, sites, zone, window)[1]
    problems += _signal_problems(raw, tc if clock is not None else None)
    ref = raw.get("reference")
    if isinstance(ref, str) and ref not in ("uncontrolled", "none"):
        problems += _reference_file_problems(Path(ref), tc if clock is not None else None)
    return problems


def _signal_problems(raw: dict, time: TimeConfig | None) -> list[Problem]:
    """Regulation signals (``grid_operator.requests[i].signal``): the file exists, its values lie
    in [-1, 1] and split evenly over the window's steps."""
    from v2gsim.market.events import GridRequest
    from v2gsim.market.regulation import read_signal, signal_steps

    go = raw.get("grid_operator")
    reqs = go.get("requests") if isinstance(go, dict) else None
    out: list[Problem] = []
    for i, r in enumerate(reqs if isinstance(reqs, list) else ()):
        if not (isinstance(r, dict) and isinstance(r.get("signal"), str)):
            continue
        where = f"grid_operator.requests[{i}].signal"
        x, found = read_signal(r["signal"], where)
        out += found
        if x is None or time is None:
            continue
        try:
            req = GridRequest.model_validate(r)
        except ValidationError:
            continue  # pydantic reports it
        n_steps = int(round(req.window_h * 60.0 / time.step_min))
        out += signal_steps(x, max(n_steps, 1), where)[1]
    return out


def _reference_file_problems(path: Path, time: TimeConfig | None) -> list[Problem]:
    """A reference scenario file must exist, validate, and run on the same clock."""
    if not path.is_file():
        return [Problem("reference", f"scenario file {str(path)!r} does not exist",
                        "give 'uncontrolled', 'none' or an existing scenario file (relative to this one)")]
    try:  # its own reference is not followed (a reference of a reference is never run)
        other = load_scenario(path, {"reference": "none"})
    except ScenarioError as exc:
        first = exc.problems[0]
        return [Problem("reference", f"the reference scenario {str(path)!r} is not valid: {first.path}: {first.message}",
                        "fix that file (v2gsim validate it)")]
    if time is not None and other.time != time:
        return [Problem("reference", f"the reference scenario {str(path)!r} has another time section ({other.time.start}, "
                        f"{other.time.step_min} min, {other.time.horizon_days} days)",
                        "give it the same time section, so both runs cover the same steps")]
    return []


def _checks(raw) -> list[Problem]:
    return cross_checks(raw) + _data_file_checks(raw)


def load_scenario(path: str | Path, overrides: Sequence[str] | Mapping[str, object] = (), *,
                  allow_plugins: bool = False) -> Scenario:
    """Read, merge (``extends:``), override and validate a scenario file.

    Args:
        path: a YAML file, or the name of a bundled scenario (``"smoke"``).
        overrides: ``["population.0.count=100"]`` or ``{"population.0.count": 100}``.
        allow_plugins: import the modules the scenario's ``plugins:`` names (their code runs).
            Also allowed by ``v2gsim.allow_plugins()`` and ``V2GSIM_ALLOW_PLUGINS=1``; without
            any of them, a scenario naming plugins is an error.

    Raises:
        v2gsim.errors.ScenarioError: listing every problem with its YAML path and line.
    """
    if isinstance(overrides, Mapping):
        overrides = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in overrides.items()]
    raw, lines = loader.resolve(find_scenario(path), list(overrides))
    return validate_scenario(resolve_paths(raw, lines), lines, allow_plugins=allow_plugins)


def validate_scenario(raw: dict, lines: loader.LineMap, *, allow_plugins: bool = False) -> Scenario:
    """Validate resolved scenario data (paths already resolved): import its plugins (if allowed),
    then the schema assembled from the registries, the checks between sections and of data
    files, and the checks on the typed scenario; every problem placed."""
    load_scenario_plugins(raw, lines, allow_plugins)
    return loader.validate(raw, scenario_model(), lines, extra_checks=_checks, model_checks=model_checks)  # type: ignore[return-value]
