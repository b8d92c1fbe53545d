"""docs/market.md: its YAML example is a valid grid_operator section of a scenario and runs; its
Python example runs; the error it quotes is the one a scenario gets."""

import re
from pathlib import Path

import yaml

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.scenario import find_scenario

DOC = Path(__file__).resolve().parents[1] / "docs" / "market.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)


def test_the_yaml_example_is_a_grid_operator_section_that_runs(tmp_path):
    (text,) = _blocks("yaml")
    raw = yaml.safe_load(find_scenario("mixed_city").read_text())
    raw["time"]["horizon_days"] = 3
    raw["grid_operator"] = yaml.safe_load(text)["grid_operator"]
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    r = v2gsim.run(v2gsim.load_scenario(p), baseline=False)
    s = r.extra["grid_settlement"]
    assert list(s["name"]) == ["evening_call"] and s["asked_kwh"].iloc[0] == 500.0


def test_python_examples_run():
    for code in _blocks("python"):
        exec(compile(code, str(DOC), "exec"), {})


def test_the_quoted_error_is_what_a_scenario_gets(tmp_path):
    raw = yaml.safe_load(find_scenario("mixed_city").read_text())
    raw["grid_operator"] = {"requests": [{"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1, "to": ["centralised"]}]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    try:
        v2gsim.load_scenario(p)
    except ScenarioError as e:
        (problem,) = e.problems
    text = " ".join(DOC.read_text("utf-8").split())
    quoted = str(problem).replace(f"(s.yaml line {problem.line})", "(s.yaml line 12)")
    assert quoted in text
