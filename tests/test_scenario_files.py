"""Scenario files: bundled ones validate, bad input is reported with path, line and hint."""

import pytest

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.scenario import bundled_scenarios

BAD = """\
name: bad
time: {start: 2026-07-06T00:00, step_min: 7, horizon_days: 1}
feeder: {transformer_kva: 100, households: 10}
sites:
  - {id: homes, kind: home, p_max_kw: 7}
population:
  - archetype: private_commuter
    count: -5
    vehicle: byd_dolphn_44
    home_site: homez
    colour: red
"""


def test_every_bundled_scenario_validates():
    found = bundled_scenarios()
    assert {"smoke", "baseline_uncontrolled"} <= set(found)
    for name, path in found.items():
        sc = v2gsim.load_scenario(path)
        assert sc.name


def test_all_problems_at_once_with_lines_and_hints(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(BAD)
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(p)
    text = str(exc.value)
    lines = {pr.path: pr for pr in exc.value.problems}
    assert lines["population[0].count"].line == 8 and "must be > 0; got -5" in text
    assert lines["time.step_min"].line == 2 and "must divide a day" in text
    assert "unknown vehicle preset 'byd_dolphn_44'" in text and "did you mean 'byd_dolphin_44'" in text
    assert lines["population[0].vehicle"].line == 9
    assert "names site 'homez'" in text and "did you mean 'homes'" in text
    assert "unknown field 'colour'" in text and lines["population[0].colour"].line == 11
    assert len(exc.value.problems) >= 5


def test_extends_and_overrides(tmp_path):
    (tmp_path / "child.yaml").write_text(f"extends: {bundled_scenarios()['smoke']}\nname: child\nseed: 99\n")
    sc = v2gsim.load_scenario(tmp_path / "child.yaml", ["population.0.count=3", "time.step_min=30"])
    assert sc.name == "child" and sc.seed == 99
    assert sc.population[0].count == 3 and sc.time.step_min == 30
    assert sc.population[1].archetype == "ride_hailing"  # inherited
    sc2 = v2gsim.load_scenario("smoke", {"population.0.count": 4, "tariff": {"preset": "guangdong"}})
    assert sc2.population[0].count == 4 and sc2.tariff.preset == "guangdong"


def test_override_errors_say_set():
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario("smoke", ["population.0.count=many"])
    assert exc.value.problems[0].file == "--set"
    assert "must be an integer" in str(exc.value)


def test_unknown_profile_and_missing_load_file(tmp_path):
    with pytest.raises(ScenarioError, match="unknown standard load profile 'bdew:h9'"):
        v2gsim.load_scenario("smoke", {"feeder.base_load.profile": "bdew:h9"})
    with pytest.raises(ScenarioError, match="does not exist"):
        v2gsim.load_scenario("smoke", {"feeder.base_load.csv": str(tmp_path / "nope.csv")})


def test_unknown_strategy_kind():
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario("smoke", ["business_models=[{kind: magic}]"])
    assert "business_models[0]" in str(exc.value)


def test_cross_section_rules():
    with pytest.raises(ScenarioError, match="chargers.*required for shared sites"):
        v2gsim.load_scenario("smoke", {"sites.1.chargers": None})
    with pytest.raises(ScenarioError, match="is of kind 'work'"):
        v2gsim.load_scenario("smoke", {"population.0.home_site": "office"})
    with pytest.raises(ScenarioError, match="duplicate site id"):
        v2gsim.load_scenario("smoke", {"sites.1.id": "homes"})


def test_horizon_and_step_ranges():
    with pytest.raises(ScenarioError, match="must be ≤ 60|must be <= 60"):
        v2gsim.load_scenario("smoke", {"time.step_min": 90})
    with pytest.raises(ScenarioError, match="horizon_days"):
        v2gsim.load_scenario("smoke", {"time.horizon_days": 0.5})
    assert v2gsim.load_scenario("smoke", {"time.horizon_days": 1825}).time.n_steps == 1825 * 96


def test_scenario_is_frozen():
    sc = v2gsim.load_scenario("smoke")
    with pytest.raises(Exception):
        sc.seed = 3


def test_private_piles_cannot_exceed_stated_chargers():
    sc = v2gsim.load_scenario("smoke", {"sites.0.chargers": 2})
    with pytest.raises(ScenarioError, match="private piles"):
        v2gsim.V2GModel(sc)


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_every_bundled_scenario_runs_a_day(name):
    """Each bundled file runs end to end (one day, no warm-up, so the suite stays quick)."""
    r = v2gsim.run(v2gsim.load_scenario(name, {"time.horizon_days": 1, "time.warmup_days": 0}), baseline=False)
    assert r.kpis["n_vehicles"] > 0 and r.kpis["peak_load_kw"] > 0
    assert len(r.system) == 1440 // r.metadata["scenario"]["time"]["step_min"]


STRICT = """\
name: strict
time: {start: 2026-07-06T00:00, step_min: 15, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: "100", households: 10}
tariff: {periods: {peak: [[10, true]]}, prices_cny_per_kwh: {peak: 1.1, flat: 0.6}}
sites:
  - {id: homes, kind: home, p_max_kw: 7, bidirectional_share: false}
population:
  - {archetype: private_commuter, count: true, vehicle: byd_dolphin_44, home_site: homes}
business_models:
  - {kind: distributed, invitations: [{start: 2026-07-06T18:00, hours: yes}]}
wear: {model: auto, ambient: {constant_degc: "30"}}
"""


def test_numbers_refuse_booleans_and_text_in_every_section(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(STRICT)
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(p)
    got = {pr.path: (pr.line, pr.message) for pr in exc.value.problems}
    assert got == {
        "feeder.transformer_kva": (3, "must be a number; got '100' (text; write numbers without quotes)"),
        "tariff.periods.peak[0][1]": (4, "must be a number; got true"),
        "sites[0].bidirectional_share": (6, "must be a number; got false"),
        "population[0].count": (8, "must be an integer; got true"),
        "business_models[0].invitations[0].hours": (10, "must be a number; got true"),
        "wear.ambient.constant_degc": (11, "must be a number; got '30' (text; write numbers without quotes)"),
    }


def test_every_config_model_has_the_one_base():
    # one rule for every config model (v2gsim.fields.ConfigModel): frozen, unknown keys refused,
    # numbers that are numbers -- scenario sections, business models, wear, tariffs, sweep files
    import importlib
    import pkgutil

    from pydantic import BaseModel

    from v2gsim.fields import ConfigModel

    for mod in pkgutil.walk_packages(v2gsim.__path__, "v2gsim."):
        importlib.import_module(mod.name)
    models, todo = [], [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("v2gsim."):
                models.append(sub)
    assert {"Scenario", "CentralizedConfig", "WearConfig", "TariffConfig", "SweepSpec"} <= {m.__name__ for m in models}
    assert [m for m in models if not issubclass(m, ConfigModel)] == []
    assert [m for m in models if m.model_config.get("extra") != "forbid" or not m.model_config.get("frozen")] == []


def test_yaml_integers_fill_number_fields_and_whole_numbers_integer_fields():
    sc = v2gsim.load_scenario("smoke", ["feeder.transformer_kva=100", "population.0.count=5.0", "sites.0.p_max_kw=7"])
    assert sc.feeder.transformer_kva == 100.0 and isinstance(sc.feeder.transformer_kva, float)
    assert sc.population[0].count == 5 and isinstance(sc.population[0].count, int)
    with pytest.raises(ScenarioError, match="must be a whole number; got 5.5"):
        v2gsim.load_scenario("smoke", ["population.0.count=5.5"])


def test_horizon_must_be_whole_steps():
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario("smoke", {"time.horizon_days": 1.01})
    (p,) = exc.value.problems
    assert p.path == "time.horizon_days"
    assert p.message == "must be a whole number of 15-minute steps; 1.01 days are 96.96 steps (nearest: 1 or 1.010416667 days)"
    sc = v2gsim.load_scenario("smoke", {"time.horizon_days": 1.25, "time.step_min": 60})
    assert sc.time.n_steps == 30 and v2gsim.V2GModel(sc).n_steps == 30


def test_negative_list_indices_in_set_count_from_the_end():
    sc = v2gsim.load_scenario("smoke", ["population.-1.count=7", "population[-2].count=3"])
    assert [g.count for g in sc.population] == [3, 7]
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario("smoke", ["population.-3.count=7"])
    (p,) = exc.value.problems
    assert "index -3 is out of range; population has 2 item(s)" in p.message and p.hint == "valid indices: 0..1, or -2..-1 from the end"


def test_empty_business_models_is_rejected_with_its_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(bundled_scenarios()["smoke"].read_text() + "business_models: []\n")
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(p)
    (pr,) = exc.value.problems
    assert pr.path == "business_models" and pr.line is not None and "at least 1 item" in pr.message


def test_chinese_site_and_station_ids_run_end_to_end(tmp_path):
    sc = v2gsim.load_scenario("battery_swapping", {
        "time.horizon_days": 1, "name": "换电站 一天",
        "sites.0.id": "小区", "population.0.home_site": "小区", "population.1.home_site": "小区", "population.2.home_site": "小区",
        "business_models.0.stations.0.id": "蔚来_第三代-1"})
    res = v2gsim.run(sc)
    assert "小区" in list(res.sites["site_id"].cat.categories)
    assert "蔚来_第三代-1" in set(res.extra["stations"]["station_id"].astype(str))
    res.save(tmp_path / "out", plots=True)
    for bad in ("a b", "a/b", ""):
        with pytest.raises(ScenarioError, match="sites\\[0\\].id"):
            v2gsim.load_scenario("smoke", {"sites.0.id": bad})
