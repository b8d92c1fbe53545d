"""Tests for the generic YAML scenario loader (v2gsim.scenario.loader) and v2gsim.errors."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Annotated, Literal, Optional, Union

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from v2gsim.errors import Problem, ScenarioError, SimulationError
from v2gsim.scenario.loader import (
    LineMap,
    format_path,
    load,
    parse_override,
    parse_path,
    read_yaml,
    resolve,
    validate,
)

CFG = ConfigDict(extra="forbid", frozen=True)


class Time(BaseModel):
    model_config = CFG
    start: dt.datetime
    step_min: Annotated[int, Field(gt=0, le=60)] = 15


class Group(BaseModel):
    model_config = CFG
    archetype: Literal["commuter", "taxi"]
    count: Annotated[int, Field(gt=0, description="number of vehicles in this group")]
    share: Optional[Annotated[float, Field(ge=0, le=1)]] = None


class Uncontrolled(BaseModel):
    model_config = CFG
    kind: Literal["uncontrolled"]


class Distributed(BaseModel):
    model_config = CFG
    kind: Literal["distributed"]
    reward_cny_per_kwh: Annotated[float, Field(gt=0)]
    hours: list[Annotated[int, Field(ge=0, lt=24)]] = []


BusinessModel = Annotated[Union[Uncontrolled, Distributed], Field(discriminator="kind")]


class Scenario(BaseModel):
    model_config = CFG
    name: str
    seed: int = 0
    time: Time
    population: list[Group]
    business_models: list[BusinessModel] = []
    tags: dict[str, Annotated[int, Field(ge=0)]] = {}
    solver: Optional[Literal["ac", "capacity_only"]] = None

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name must not be blank")
        return v


GOOD = """\
name: smoke
seed: 1
time:
  start: 2026-07-06T00:00:00
  step_min: 15
population:
  - archetype: commuter
    count: 10
  - {archetype: taxi, count: 5}
business_models:
  - kind: uncontrolled
  - kind: distributed
    reward_cny_per_kwh: 4
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def by_path(err: ScenarioError) -> dict[str, Problem]:
    return {p.path: p for p in err.problems}


# ---------------------------------------------------------------------------------- errors


def test_problem_str_full_and_partial():
    p = Problem("population[0].count", "must be > 0; got -5", hint="check it",
                file="/a/b/smoke.yaml", line=7)
    assert str(p) == "population[0].count (smoke.yaml line 7): must be > 0; got -5 — hint: check it"
    assert str(Problem("seed", "must be an integer; got 'x'")) == "seed: must be an integer; got 'x'"
    assert str(Problem("seed", "bad", file="--set")) == "seed (--set): bad"
    assert "(top level)" in str(Problem("", "bad"))


def test_scenario_error_lists_all_problems():
    err = ScenarioError([Problem("a", "x"), Problem("b", "y")], file="/tmp/s.yaml")
    lines = str(err).splitlines()
    assert lines[0] == "2 problems in scenario s.yaml:"
    assert lines[1].startswith("  a: x") and lines[2].startswith("  b: y")
    assert str(ScenarioError(Problem("a", "x"))).startswith("1 problem in scenario")
    assert issubclass(SimulationError, Exception) and not issubclass(SimulationError, ScenarioError)


# ---------------------------------------------------------------------------------- paths


def test_format_and_parse_path_roundtrip():
    assert format_path(("population", 0, "count")) == "population[0].count"
    assert format_path(()) == ""
    assert parse_path("population[0].count") == ("population", 0, "count")
    assert parse_path("population.0.count") == ("population", 0, "count")
    with pytest.raises(ValueError):
        parse_path("a..b")


# ---------------------------------------------------------------------------------- read_yaml


def test_line_numbers_for_nested_keys_and_list_items(tmp_path):
    data, lines = read_yaml(write(tmp_path, "s.yaml", GOOD))
    assert data["population"][1] == {"archetype": "taxi", "count": 5}
    f = str(tmp_path / "s.yaml")
    assert lines.lookup(("seed",)) == (f, 2)
    assert lines.lookup(("time", "step_min")) == (f, 5)
    assert lines.lookup(("population", 0)) == (f, 7)
    assert lines.lookup(("population", 0, "count")) == (f, 8)
    assert lines.lookup(("population", 1)) == (f, 9)
    assert lines.lookup(("population", 1, "count")) == (f, 9)
    assert lines.lookup(("business_models", 1, "reward_cny_per_kwh")) == (f, 13)
    # a path absent from the data falls back to its nearest recorded ancestor
    assert lines.lookup(("population", 0, "share")) == (f, 7)
    assert lines.lookup(("nope", "deeper")) == (f, None)


def test_duplicate_keys_are_errors_all_reported(tmp_path):
    path = write(tmp_path, "dup.yaml", """\
        name: a
        time:
          start: x
          start: y
        name: b
        """)
    with pytest.raises(ScenarioError) as exc:
        read_yaml(path)
    probs = by_path(exc.value)
    assert set(probs) == {"time.start", "name"}
    assert probs["time.start"].line == 4 and "line 3" in probs["time.start"].hint
    assert probs["name"].line == 5
    assert "duplicate key" in probs["name"].message


def test_yaml_syntax_error_has_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", """\
        name: a
        seed: 1
        population: [1, 2
        time: {start: x}
        """)
    with pytest.raises(ScenarioError) as exc:
        read_yaml(path)
    (p,) = exc.value.problems
    assert p.file == str(path)
    assert p.line in (3, 4)
    assert "YAML syntax error" in p.message
    assert "broken.yaml" in str(exc.value)


def test_yaml_syntax_error_line_for_bad_indent(tmp_path):
    path = write(tmp_path, "indent.yaml", "a: 1\nb:\n  c: 2\n d: 3\n")
    with pytest.raises(ScenarioError) as exc:
        read_yaml(path)
    assert exc.value.problems[0].line == 4


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "evil.yaml", "x: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ScenarioError):
        read_yaml(path)


# ---------------------------------------------------------------------------------- validate


def test_load_good_file_returns_frozen_model(tmp_path):
    sc = load(write(tmp_path, "s.yaml", GOOD), Scenario)
    assert isinstance(sc, Scenario)
    assert sc.population[1].archetype == "taxi"
    assert isinstance(sc.business_models[1], Distributed)
    with pytest.raises(ValidationError):
        sc.seed = 5
    with pytest.raises(ValidationError):
        sc.population[0].count = 3


def test_several_problems_in_one_file_all_reported_with_lines(tmp_path):
    path = write(tmp_path, "bad.yaml", """\
        name: smoke
        seed: abc
        time:
          start: 2026-07
          step_min: 90
        population:
          - archetype: bus
            count: -5
          - archetype: taxi
        """)
    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario)
    probs = by_path(exc.value)
    assert set(probs) == {"seed", "time.start", "time.step_min", "population[0].archetype",
                          "population[0].count", "population[1].count"}
    assert probs["seed"].message == "must be an integer; got 'abc'"
    assert probs["seed"].line == 2
    assert probs["time.start"].message.startswith("must be a date-time like 2026-07-06T00:00")
    assert probs["time.step_min"].message == "must be ≤ 60; got 90"
    assert probs["time.step_min"].line == 5
    assert probs["population[0].archetype"].message == "must be one of 'commuter', 'taxi'; got 'bus'"
    assert probs["population[0].count"].message == "must be > 0; got -5"
    assert probs["population[0].count"].line == 8
    # missing field: line of the list item, hint from the field description
    assert probs["population[1].count"].message == "is required"
    assert probs["population[1].count"].line == 9
    assert probs["population[1].count"].hint == "number of vehicles in this group"
    assert str(exc.value).startswith("6 problems in scenario bad.yaml:")
    assert all(p.file == str(path) for p in exc.value.problems)


def test_unknown_field_hint_did_you_mean_and_allowed_fields(tmp_path):
    path = write(tmp_path, "typo.yaml", """\
        name: smoke
        time: {start: 2026-07-06T00:00:00}
        population:
          - archetype: taxi
            cuont: 5
            zzzzzz: 1
        """)
    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario)
    probs = by_path(exc.value)
    assert probs["population[0].cuont"].message == "unknown field 'cuont'"
    assert probs["population[0].cuont"].hint == "did you mean 'count'?"
    assert probs["population[0].cuont"].line == 5
    assert probs["population[0].zzzzzz"].hint == "allowed fields: archetype, count, share"
    assert "population[0].count" in probs  # still missing


def test_discriminated_union_paths_and_unknown_kind(tmp_path):
    path = write(tmp_path, "bm.yaml", """\
        name: smoke
        time: {start: 2026-07-06T00:00:00}
        population: []
        business_models:
          - kind: distributed
            reward_cny_per_kwh: -1
            hours: [1, 30]
            rewrd: 2
          - kind: centralised
          - {reward_cny_per_kwh: 1}
        """)
    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario)
    probs = by_path(exc.value)
    assert probs["business_models[0].reward_cny_per_kwh"].message == "must be > 0; got -1"
    assert probs["business_models[0].reward_cny_per_kwh"].line == 6
    assert probs["business_models[0].hours[1]"].message == "must be < 24; got 30"
    assert probs["business_models[0].rewrd"].hint == "did you mean 'reward_cny_per_kwh'?"
    assert probs["business_models[1]"].message == "unknown kind 'centralised'"
    assert probs["business_models[1]"].hint.endswith("known kinds: uncontrolled, distributed")
    assert probs["business_models[1]"].line == 9
    assert probs["business_models[2]"].message == "needs a 'kind:' field"
    assert probs["business_models[2]"].hint == "known kinds: uncontrolled, distributed"


def test_value_error_dict_values_optional_and_got_truncation(tmp_path):
    long_text = "x" * 200
    path = write(tmp_path, "misc.yaml", f"""\
        name: "  "
        time: {{start: 2026-07-06T00:00:00}}
        population: []
        tags: {{a: 1, b: -2}}
        solver: {long_text}
        """)
    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario)
    probs = by_path(exc.value)
    assert probs["name"].message == "name must not be blank"
    assert probs["tags.b"].message == "must be ≥ 0; got -2"
    assert probs["tags.b"].line == 4
    msg = probs["solver"].message
    assert msg.startswith("must be one of 'ac', 'capacity_only'; got 'xxx")
    assert len(msg) < 120


def test_extra_checks_merged_with_pydantic_problems(tmp_path):
    path = write(tmp_path, "x.yaml", """\
        name: smoke
        seed: -1
        time: {start: 2026-07-06T00:00:00}
        population:
          - {archetype: taxi, count: 0}
          - {archetype: taxi, count: 3}
        """)

    def checks(raw):
        out = []
        pop = raw.get("population") or []
        if isinstance(pop, list) and len(pop) > 1:
            out.append(Problem("population[1]", "duplicate archetype 'taxi'", hint="merge them"))
        if raw.get("seed", 0) < 0:
            out.append(Problem("seed", "must not be negative"))
        return out

    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario, extra_checks=checks)
    probs = exc.value.problems
    paths = [p.path for p in probs]
    assert paths == ["population[0].count", "population[1]", "seed"]  # pydantic first
    assert by_path(exc.value)["population[1]"].line == 6
    assert by_path(exc.value)["seed"].line == 2
    assert by_path(exc.value)["seed"].file == str(path)


def test_extra_checks_alone_raise_and_crash_is_tolerated_after_pydantic_errors(tmp_path):
    raw, lines = resolve(write(tmp_path, "s.yaml", GOOD))
    with pytest.raises(ScenarioError) as exc:
        validate(raw, Scenario, lines, lambda r: [Problem("time", "too short")])
    assert [p.path for p in exc.value.problems] == ["time"]
    assert exc.value.problems[0].line == 3
    assert isinstance(validate(raw, Scenario, lines, lambda r: []), Scenario)

    def crashing(r):
        return [Problem("x", str(r["population"][0]["count"] + 1))]

    bad = dict(raw, population=[{"archetype": "taxi", "count": "many"}])
    with pytest.raises(ScenarioError) as exc:
        validate(bad, Scenario, lines, crashing)
    assert [p.path for p in exc.value.problems] == ["population[0].count"]


# ---------------------------------------------------------------------------------- extends


def test_extends_chain_deep_merge_child_wins_lists_replaced(tmp_path):
    write(tmp_path, "base.yaml", """\
        name: base
        seed: 1
        time:
          start: 2026-07-06T00:00:00
          step_min: 15
        population:
          - {archetype: commuter, count: 100}
          - {archetype: taxi, count: 20}
        """)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "mid.yaml", """\
        extends: ../base.yaml
        seed: 2
        time:
          step_min: 30
        """)
    top = write(tmp_path / "sub", "top.yaml", """\
        extends: mid.yaml
        name: top
        population:
          - {archetype: taxi, count: 7}
        """)
    raw, lines = resolve(top)
    assert "extends" not in raw
    assert raw["name"] == "top" and raw["seed"] == 2
    assert raw["time"] == {"start": dt.datetime(2026, 7, 6), "step_min": 30}
    assert raw["population"] == [{"archetype": "taxi", "count": 7}]
    base, mid = str((tmp_path / "base.yaml").resolve()), str((tmp_path / "sub" / "mid.yaml").resolve())
    assert lines.lookup(("time", "start")) == (base, 4)
    assert lines.lookup(("time", "step_min")) == (mid, 4)
    assert lines.lookup(("seed",)) == (mid, 2)
    assert lines.lookup(("population", 0, "count")) == (str(top), 4)
    assert ("population", 1) not in lines
    sc = load(top, Scenario)
    assert sc.time.step_min == 30


def test_extends_problem_points_at_parent_file(tmp_path):
    write(tmp_path, "base.yaml", """\
        name: base
        time:
          start: 2026-07-06T00:00:00
          step_min: 0
        population: []
        """)
    top = write(tmp_path, "top.yaml", "extends: base.yaml\nseed: 3\n")
    with pytest.raises(ScenarioError) as exc:
        load(top, Scenario)
    (p,) = exc.value.problems
    assert p.path == "time.step_min" and p.line == 4 and p.file.endswith("base.yaml")
    assert str(exc.value).startswith("1 problem in scenario top.yaml:")


def test_extends_cycle(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    write(tmp_path, "b.yaml", "seed: 1\nextends: a.yaml\n")
    with pytest.raises(ScenarioError) as exc:
        resolve(tmp_path / "a.yaml")
    (p,) = exc.value.problems
    assert "cycle" in p.message and "a.yaml -> b.yaml -> a.yaml" in p.message
    assert p.file.endswith("b.yaml") and p.line == 2
    self_ref = write(tmp_path, "self.yaml", "extends: self.yaml\n")
    with pytest.raises(ScenarioError, match="cycle"):
        resolve(self_ref)


def test_extends_missing_file_names_file_and_line(tmp_path):
    top = write(tmp_path, "top.yaml", "name: x\nseed: 1\nextends: nowhere/base.yaml\n")
    with pytest.raises(ScenarioError) as exc:
        resolve(top)
    (p,) = exc.value.problems
    assert "nowhere/base.yaml" in p.message
    assert p.path == "extends" and p.line == 3 and p.file == str(top)


def test_missing_top_file(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        load(tmp_path / "ghost.yaml", Scenario)
    assert "ghost.yaml" in str(exc.value)


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ScenarioError, match="mapping"):
        resolve(write(tmp_path, "list.yaml", "- 1\n- 2\n"))


# ---------------------------------------------------------------------------------- overrides


@pytest.mark.parametrize("text, path, value", [
    ("seed=3", ("seed",), 3),
    ("time.step_min=0.5", ("time", "step_min"), 0.5),
    ("a.b=true", ("a", "b"), True),
    ("xs=[1, 2]", ("xs",), [1, 2]),
    ("m={a: 1}", ("m",), {"a": 1}),
    ("population.0.count=5", ("population", 0, "count"), 5),
    ("population[1].count=5", ("population", 1, "count"), 5),
    ("population.-1.count=5", ("population", -1, "count"), 5),
    ("population[-2].count=5", ("population", -2, "count"), 5),
    ("name=Guangzhou: week 1", ("name",), "Guangzhou: week 1"),
    ("time.start=2026-07-01T00:00", ("time", "start"), "2026-07-01T00:00"),
    ("solver=", ("solver",), None),
    ("eq=a=b", ("eq",), "a=b"),
])
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


@pytest.mark.parametrize("text", ["seed", "=3", "a..b=1", "xs=[1, 2"])
def test_parse_override_malformed(text):
    with pytest.raises(ScenarioError) as exc:
        parse_override(text)
    (p,) = exc.value.problems
    assert p.file == "--set"
    if "=" not in text:
        assert p.hint == "use --set path.to.field=value"


def test_overrides_applied_types_index_and_created_keys(tmp_path):
    path = write(tmp_path, "s.yaml", GOOD)
    raw, lines = resolve(path, ["seed=7", "population.1.count=50", "time.step_min=30",
                                "tags.new.deep=1", "population[0].share=0.5"])
    assert raw["seed"] == 7
    assert raw["population"][1] == {"archetype": "taxi", "count": 50}
    assert raw["population"][0]["share"] == 0.5
    assert raw["tags"] == {"new": {"deep": 1}}
    assert lines.lookup(("population", 1, "count")) == ("--set", None)
    assert lines.lookup(("tags", "new", "deep")) == ("--set", None)
    assert lines.lookup(("population", 1, "archetype")) == (str(path), 9)
    # a validation problem on an overridden value points at --set
    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario, overrides=["population.0.count=-1"])
    (p,) = exc.value.problems
    assert (p.path, p.file, p.line) == ("population[0].count", "--set", None)
    assert "(--set)" in str(p)


def test_negative_indices_count_from_the_end(tmp_path):
    path = write(tmp_path, "s.yaml", GOOD)
    raw, lines = resolve(path, ["population.-1.count=50", "population[-2].share=0.5"])
    assert raw["population"][1]["count"] == 50 and raw["population"][0]["share"] == 0.5
    assert lines.lookup(("population", 1, "count")) == ("--set", None)
    with pytest.raises(ScenarioError) as exc:
        load(path, Scenario, overrides=["population.-1.count=-1"])
    (p,) = exc.value.problems
    assert (p.path, p.file) == ("population[1].count", "--set")  # the item it names, counted from the start


def test_override_replacing_subtree_forgets_old_lines(tmp_path):
    path = write(tmp_path, "s.yaml", GOOD)
    raw, lines = resolve(path, ["population=[{archetype: taxi, count: 1}]"])
    assert raw["population"] == [{"archetype": "taxi", "count": 1}]
    assert lines.lookup(("population", 0, "count")) == ("--set", None)
    assert lines.lookup(("population", 1)) == ("--set", None)


def test_bad_overrides_all_reported(tmp_path):
    path = write(tmp_path, "s.yaml", GOOD)
    with pytest.raises(ScenarioError) as exc:
        resolve(path, ["population.5.count=1", "seed.x=1", "population.count=1", "oops"])
    probs = exc.value.problems
    assert len(probs) == 4
    assert all(p.file == "--set" for p in probs)
    assert "population.5.count=1" in probs[0].message and "out of range" in probs[0].message
    assert "2 item" in probs[0].message
    assert "seed.x=1" in probs[1].message and "single value" in probs[1].message
    assert "is a list" in probs[2].message
    assert probs[2].hint == "e.g. population.0.count (the first item) or population.-1.count (the last)"
    assert probs[3].hint == "use --set path.to.field=value"


def test_linemap_lookup_prefers_exact_then_ancestor():
    lm = LineMap("f.yaml")
    lm.set(("a",), "f.yaml", 3)
    lm.set(("a", "b"), "--set", None)
    assert lm.lookup(("a", "b", "c")) == ("--set", None)
    assert lm.lookup(("a", "z")) == ("f.yaml", 3)
    assert lm.lookup(("q",)) == ("f.yaml", None)


class Point(BaseModel):
    model_config = CFG
    x_m: int


class Loose(BaseModel):
    model_config = CFG
    where: Union[Point, int, None] = None
    by_id: dict[int, Point] = {}
    pair: tuple[int, str] = (0, "")


def test_plain_union_dict_keys_and_tuples_paths():
    raw = {"where": {"x": 1}, "by_id": {"k": {"x_m": 1}, 2: {"x_m": "z"}}, "pair": [1, "a", 3]}
    with pytest.raises(ScenarioError) as exc:
        validate(raw, Loose, LineMap("f.yaml"))
    probs = by_path(exc.value)
    assert probs["where.x"].hint == "did you mean 'x_m'?"
    assert "where" not in probs  # the int member's "must be an integer" is noise here
    assert probs["by_id.k"].message == "key 'k' must be an integer"
    assert probs["by_id[2].x_m"].message == "must be an integer; got 'z'"
    assert probs["pair"].message == "must have at most 2 items; got [1, 'a', 3]"
    assert all(p.file == "f.yaml" for p in probs.values())
