"""Open registries and a scenario's plugins: a business model written in a temporary module runs
from YAML by kind:, only when the user allows it; errors name the path and line; sweeps and
other processes see the same plugins; installed entry points extend the registries."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest

import v2gsim
from v2gsim.cli import main
from v2gsim.errors import ScenarioError
from v2gsim.physics.networks import NetworkSource, register_network_source
from v2gsim.physics.wear import WEAR_MODELS, register_wear_model
from v2gsim.scenario import Scenario, scenario_model
from v2gsim.strategies.base import STRATEGIES, Dispatch, Strategy, StrategyConfig, register_strategy

STRATEGY_MODULE = '''\
"""A test business model: charge every wanting vehicle at a share of its charger's power."""
from pathlib import Path
from typing import Literal

from pydantic import Field

import v2gsim
from v2gsim.strategies import Dispatch, Strategy, StrategyConfig

Path(__file__).with_suffix(".imported").touch()  # proof that the module ran


class {cls}Config(StrategyConfig):
    kind: Literal["{kind}"] = "{kind}"
    share: float = Field(default=0.5, gt=0, le=1, description="share of the charger's power")


@v2gsim.register_strategy("{kind}")
class {cls}(Strategy):
    config_cls = {cls}Config

    def __init__(self, config, context):
        super().__init__(config, context)
        self.calls = 0

    def decide(self, obs):
        self.calls += 1
        idx = obs.wanting_idx
        return Dispatch(idx, self.config.share * obs.fleet.p_plug_max_kw[idx])

    def kpis(self):
        return {{"decide_calls": float(self.calls)}}
'''

SCENARIO = """\
name: plugin test
plugins: [{plugin}]
seed: 2
time: {{start: 2026-07-06T00:00, step_min: 15, horizon_days: 1, warmup_days: 0}}
feeder: {{transformer_kva: 100, households: 30}}
sites: [{{id: homes, kind: home, p_max_kw: 7}}]
population: [{{archetype: private_commuter, count: 10, vehicle: byd_dolphin_44, home_site: homes}}]
business_models: [{{kind: {kind}, share: 0.5}}]
"""


def write_plugin(folder: Path, name: str = "half_rate", kind: str = "half_rate") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(STRATEGY_MODULE.format(cls="".join(w.title() for w in kind.split("_")), kind=kind))
    return path


def write_scenario(folder: Path, plugin: str = "half_rate", kind: str = "half_rate", name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(SCENARIO.format(plugin=plugin, kind=kind))
    return path


# ------------------------------------------------------------------------------- the round trip


def test_a_business_model_in_a_temporary_module_runs_from_yaml_by_kind(plugin_dir):
    plugin = write_plugin(plugin_dir)
    yaml_file = write_scenario(plugin_dir)
    out = plugin_dir / "out"
    assert main(["run", str(yaml_file), "-o", str(out), "--plugins", "--no-progress", "--no-plots"]) == 0
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["half_rate_decide_calls"] == 96  # the plugin's strategy decided every step
    assert kpis["peak_reduction_pct"] > 0  # half the charger's power against its uncontrolled reference
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["scenario"]["plugins"] == [str(plugin.resolve())]  # kept with the result, resolved
    assert meta["scenario"]["business_models"] == [{"kind": "half_rate", "sites": None, "share": 0.5}]


def test_plugins_are_refused_unless_allowed(plugin_dir, capsys, monkeypatch):
    plugin = write_plugin(plugin_dir)
    yaml_file = write_scenario(plugin_dir)
    assert main(["validate", str(yaml_file)]) == 2
    err = capsys.readouterr().err
    assert "plugins (s.yaml line 2): names modules to import (half_rate.py); importing runs their code" in err
    assert "--plugins" in err and "V2GSIM_ALLOW_PLUGINS=1" in err and "allow_plugins=True" in err
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(yaml_file)
    assert [p.path for p in e.value.problems] == ["plugins"]
    assert not plugin.with_suffix(".imported").exists() and "half_rate" not in sys.modules
    # each way of allowing it
    with v2gsim.allow_plugins():
        assert v2gsim.load_scenario(yaml_file).business_models[0].kind == "half_rate"
    assert plugin.with_suffix(".imported").exists()
    monkeypatch.setenv("V2GSIM_ALLOW_PLUGINS", "1")
    assert main(["validate", str(yaml_file)]) == 0
    monkeypatch.setenv("V2GSIM_ALLOW_PLUGINS", "0")
    with pytest.raises(ScenarioError):
        v2gsim.load_scenario(yaml_file)
    assert v2gsim.load_scenario(yaml_file, allow_plugins=True).plugins == [str(plugin.resolve())]


def test_nothing_but_the_plugins_key_is_ever_imported(plugin_dir, capsys):
    plugin = write_plugin(plugin_dir)
    text = SCENARIO.format(plugin="half_rate", kind="half_rate").replace("plugins: [half_rate]\n", "")
    text = text.replace("name: plugin test", "name: half_rate\ndescription: half_rate.py")
    text = text.replace("{id: homes,", "{id: half_rate,").replace("home_site: homes", "home_site: half_rate")
    (plugin_dir / "s.yaml").write_text(text + "outputs: {plugins: [half_rate]}\n")
    # allowed, and the module named as a name, a description, a kind, a site id, a nested key, a --set
    assert main(["validate", str(plugin_dir / "s.yaml"), "--plugins", "--set", "description=half_rate"]) == 2
    err = capsys.readouterr().err
    assert "unknown kind 'half_rate'" in err and "outputs.plugins" in err
    assert main(["validate", str(plugin_dir / "s.yaml"), "--plugins", "--set", "plugins=[]"]) == 2  # an empty list
    assert not plugin.with_suffix(".imported").exists() and "half_rate" not in sys.modules


def test_unknown_kind_offers_the_plugin_kinds_with_path_and_line(plugin_dir):
    write_plugin(plugin_dir)
    path = plugin_dir / "s.yaml"
    path.write_text(SCENARIO.format(plugin="half_rate", kind="half_rat"))
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(path, allow_plugins=True)
    (p,) = e.value.problems
    assert (p.path, p.line, p.message) == ("business_models[0]", 8, "unknown kind 'half_rat'")
    assert p.hint == "did you mean 'half_rate'? known kinds: uncontrolled, distributed, centralized, battery_swap, half_rate"
    # the plugin's own fields are checked like a built-in's
    path.write_text(SCENARIO.format(plugin="half_rate", kind="half_rate").replace("share: 0.5", "shar: 2"))
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(path, allow_plugins=True)
    assert [(p.path, p.hint) for p in e.value.problems] == [("business_models[0].shar", "did you mean 'share'?")]


def test_entries_resolve_against_the_file_that_names_them(plugin_dir, monkeypatch):
    base, runs, elsewhere = plugin_dir / "base", plugin_dir / "runs", plugin_dir / "elsewhere"
    write_plugin(base)
    write_scenario(base, name="parent.yaml")
    runs.mkdir()
    (runs / "child.yaml").write_text("extends: ../base/parent.yaml\nseed: 5\n")
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sc = v2gsim.load_scenario(runs / "child.yaml", allow_plugins=True)
    assert sc.plugins == [str((base / "half_rate.py").resolve())]  # the parent's folder, not the child's
    # a child's own list replaces the parent's and is relative to the child
    write_plugin(runs / "lib", name="other", kind="other_rate")
    (runs / "child.yaml").write_text("extends: ../base/parent.yaml\nplugins: [lib/other.py]\n"
                                     "business_models: [{kind: other_rate}]\n")
    assert v2gsim.load_scenario(runs / "child.yaml", allow_plugins=True).plugins == [str((runs / "lib" / "other.py").resolve())]
    # --set entries are relative to the working directory
    write_plugin(elsewhere, name="third", kind="third_rate")
    sc = v2gsim.load_scenario(runs / "child.yaml", ["plugins=[third.py]", "business_models=[{kind: third_rate}]"],
                              allow_plugins=True)
    assert sc.plugins == [str((elsewhere / "third.py").resolve())]


def test_a_module_name_falls_back_to_sys_path(plugin_dir, monkeypatch):
    lib = plugin_dir / "lib"
    write_plugin(lib, name="installed_rate", kind="installed_rate")
    monkeypatch.syspath_prepend(str(lib))
    path = write_scenario(plugin_dir, plugin="installed_rate", kind="installed_rate")
    sc = v2gsim.load_scenario(path, allow_plugins=True)
    assert sc.plugins == ["installed_rate"] and sys.modules["installed_rate"].__file__ == str(lib / "installed_rate.py")


# ------------------------------------------------------------------------------- broken plugins


def test_a_failing_plugin_is_reported_with_its_line_and_rolled_back(plugin_dir):
    plugin = write_plugin(plugin_dir)
    plugin.write_text(plugin.read_text() + "\nundefined_name + 1\n")
    bad_line = plugin.read_text().count("\n")
    path = write_scenario(plugin_dir)
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(path, allow_plugins=True)
    (p,) = e.value.problems
    assert (p.path, p.line) == ("plugins[0]", 2)
    assert p.message == (f"importing plugin {str(plugin)!r} failed: NameError: name 'undefined_name' is not defined "
                         f"(half_rate.py line {bad_line})")
    assert "half_rate" not in STRATEGIES and "half_rate" not in sys.modules  # its registration undone
    plugin.write_text(plugin.read_text().replace("\nundefined_name + 1\n", "\n"))  # fixed: loads now
    assert v2gsim.load_scenario(path, allow_plugins=True).business_models[0].kind == "half_rate"


@pytest.mark.parametrize("entry, contents, message", [
    ("missing_module_xyz", None, "no plugin module 'missing_module_xyz': neither a file next to the scenario nor a module on sys.path"),
    ("gone.py", None, "plugin file '{dir}/gone.py' does not exist"),
    ("syntax.py", "def f(:\n", "importing plugin '{dir}/syntax.py' failed: SyntaxError: invalid syntax (syntax.py line 1)"),
    ("json.py", "x = 1\n", "a different module named 'json' is already imported"),
    ("my-model.py", "x = 1\n", "'my-model.py' cannot be a module name"),
    ("dup.py", "import v2gsim\nfrom v2gsim.strategies.uncontrolled import Uncontrolled\n"
               "v2gsim.register_strategy('uncontrolled')(type('Other', (Uncontrolled,), {}))\n",
     "ValueError: business model 'uncontrolled' is already registered by v2gsim.strategies.uncontrolled.Uncontrolled"),
])
def test_plugin_problems_name_the_entry_and_the_cause(plugin_dir, entry, contents, message):
    if contents is not None:
        (plugin_dir / entry).write_text(contents)
    path = plugin_dir / "s.yaml"
    path.write_text(SCENARIO.format(plugin=entry, kind="uncontrolled").replace(", share: 0.5", ""))
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(path, allow_plugins=True)
    (p,) = e.value.problems
    assert p.path == "plugins[0]" and p.line == 2
    assert message.format(dir=plugin_dir.resolve()) in p.message
    assert list(STRATEGIES)[:4] == ["uncontrolled", "distributed", "centralized", "battery_swap"]


# ------------------------------------------------------------------------------- the Scenario object


def test_a_scenario_with_a_plugin_kind_round_trips_and_pickles(plugin_dir):
    write_plugin(plugin_dir)
    sc = v2gsim.load_scenario(write_scenario(plugin_dir), allow_plugins=True)
    assert Scenario.model_validate(sc.model_dump()) == sc
    assert Scenario.model_validate_json(sc.model_dump_json()) == sc
    assert pickle.loads(pickle.dumps(sc)) == sc
    assert Scenario(**sc.model_dump()) == sc  # the base class's constructor validates through the registry
    assert isinstance(sc, Scenario) and type(sc) is scenario_model()


def test_compare_and_sweep_commands_take_the_flag(plugin_dir, capsys):
    write_plugin(plugin_dir)
    yaml_file = write_scenario(plugin_dir)
    assert main(["compare", str(yaml_file), "--kpis", "peak_load_kw"]) == 2
    assert "plugins (s.yaml line 2)" in capsys.readouterr().err
    assert main(["compare", str(yaml_file), "--kpis", "peak_load_kw", "--plugins"]) == 0
    (plugin_dir / "sweep.yaml").write_text("name: one\nbase: s.yaml\nparameters:\n  business_models.0.share: [0.5]\nkpis: [peak_load_kw]\n")
    argv = ["sweep", str(plugin_dir / "sweep.yaml"), "-o", str(plugin_dir / "out"), "--scheduler", "serial", "--no-progress"]
    assert main(argv) == 2
    assert "plugins (s.yaml line 2)" in capsys.readouterr().err
    assert main([*argv, "--plugins"]) == 0


def test_the_json_schema_lists_the_plugin_kinds(plugin_dir):
    write_plugin(plugin_dir)
    v2gsim.load_plugin(plugin_dir / "half_rate.py")
    assert "HalfRateConfig" in json.dumps(Scenario.model_json_schema())


def test_a_fresh_process_imports_the_plugins_of_a_pickled_scenario(plugin_dir):
    plugin = write_plugin(plugin_dir)
    sc = v2gsim.load_scenario(write_scenario(plugin_dir), allow_plugins=True)
    plugin.with_suffix(".imported").unlink()
    child = ("import pickle, sys\nsc = pickle.load(sys.stdin.buffer)\ncfg = sc.business_models[0]\n"
             "print(cfg.kind, type(cfg).__module__, cfg.share)")
    out = subprocess.run([sys.executable, "-c", child], input=pickle.dumps(sc), capture_output=True, timeout=120,
                         cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": str(plugin_dir)})
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.decode().split() == ["half_rate", "half_rate", "0.5"]
    assert plugin.with_suffix(".imported").exists()  # imported there (no permission needed: the sender allowed it)


def test_a_sweep_over_a_plugin_model_runs_on_local_worker_processes(plugin_dir):
    write_plugin(plugin_dir)
    write_scenario(plugin_dir)
    (plugin_dir / "sweep.yaml").write_text(
        "name: shares\nbase: s.yaml\nparameters:\n  business_models.0.share: [0.25, 1.0]\n"
        "replications: 1\nseed: 3\nkpis: [peak_load_kw, energy_charged_kwh, half_rate_decide_calls]\n")
    with pytest.raises(ScenarioError) as e:  # not allowed: refused before anything runs
        v2gsim.sweep(plugin_dir / "sweep.yaml", plugin_dir / "refused", progress=False, plots=False)
    assert "plugins" in str(e.value)
    with v2gsim.allow_plugins():
        table = v2gsim.sweep(plugin_dir / "sweep.yaml", plugin_dir / "out", scheduler="processes", workers=1,
                             progress=False, plots=False)
    assert (table["status"] == "ok").all(), table["error"].tolist()
    assert (table["half_rate_decide_calls"] == 96).all()
    low, full = table.sort_values("business_models.0.share")["peak_load_kw"]
    assert low < full  # the share reached the workers' strategy


def test_schema_lists_a_plugin_model_only_when_it_is_named(plugin_dir, capsys):
    plugin = write_plugin(plugin_dir)
    assert main(["schema"]) == 0
    assert "(half_rate)" not in capsys.readouterr().out
    assert main(["schema", "--plugins", str(plugin)]) == 0
    out = capsys.readouterr().out
    assert "business_models[] (half_rate).share" in out and "share of the charger's power" in out
    assert "registered business models: uncontrolled, distributed, centralized, battery_swap, half_rate" in out
    assert main(["schema", "--plugins", str(plugin_dir / "nope.py")]) == 2
    assert "nope.py' does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------- registry rules


class _Cfg(StrategyConfig):
    kind: Literal["rules_test"] = "rules_test"


class _Strat(Strategy):
    config_cls = _Cfg

    def decide(self, obs):
        return Dispatch.empty()


def test_registry_rules(plugin_dir):
    with pytest.raises(TypeError, match="not a bare decorator"):
        register_strategy(_Strat)
    with pytest.raises(ValueError, match="must be an identifier"):
        register_strategy("rules-test")
    with pytest.raises(ValueError, match=r"_Cfg must declare  kind: Literal\['other'\] = 'other'"):
        register_strategy("other")(_Strat)
    with pytest.raises(TypeError, match="decorates a subclass of v2gsim.strategies.base.Strategy"):
        register_strategy("rules_test")(_Cfg)
    register_strategy("rules_test")(_Strat)
    assert register_strategy("rules_test")(_Strat) is _Strat  # the same class again: nothing happens
    with pytest.raises(ValueError, match="already registered by test_plugins._Strat"):
        register_strategy("rules_test")(type("_Other", (_Strat,), {}))
    with pytest.raises(ValueError, match="'auto' is reserved"):
        register_wear_model("auto")
    with pytest.raises(TypeError, match="update"):
        register_wear_model("no_update")(object)
    with pytest.raises(KeyError, match="unknown wear model 'naumann'; did you mean 'naumann_lfp'"):
        WEAR_MODELS["naumann"]
    with pytest.raises(TypeError, match="subclass of v2gsim.physics.networks.NetworkSource"):
        register_network_source("my_net")(_Strat)
    with pytest.raises(ValueError, match="network source 'simbench' is already registered by v2gsim.physics.networks.SimBench"):
        register_network_source("simbench")(type("MySimBench", (NetworkSource,), {}))


def test_wear_model_names_come_from_the_registry(plugin_dir):
    path = write_scenario(plugin_dir, plugin="half_rate")
    write_plugin(plugin_dir)
    text = path.read_text() + "wear: {model: schmalstieg}\n"
    path.write_text(text)
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(path, allow_plugins=True)
    (p,) = e.value.problems
    assert (p.path, p.line, p.message) == ("wear.model", 9, "unknown wear model 'schmalstieg'")
    assert p.hint == "did you mean 'schmalstieg_nmc'? known wear models: auto, off, naumann_lfp, schmalstieg_nmc, xu_rainflow"
    from v2gsim.physics.wear import NaumannLfp

    register_wear_model("schmalstieg")(type("Copy", (NaumannLfp,), {}))  # registered now: known at validation
    assert v2gsim.load_scenario(path, allow_plugins=True).wear.model == "schmalstieg"


# ------------------------------------------------------------------------------- entry points

ENTRY_POINTS = """\
[v2gsim.strategies]
ep_half = ep_demo_strategy
[v2gsim.wear_models]
ep_fade = ep_demo_wear:EpFade
broken = ep_demo_missing_module
[v2gsim.network_sources]
ep_net = ep_demo_net:EpNet
"""

CHILD = """\
import warnings, sys
import v2gsim
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sc = v2gsim.load_scenario(sys.argv[1])   # no plugins allowed: entry points need no permission
res = v2gsim.run(sc, baseline=False)
print(sc.business_models[0].kind, sc.wear.model, res.kpis["ep_half_calls"] > 0, res.kpis["wear_fade_mean_pct"] > 0)
print([str(w.message) for w in caught])
from v2gsim.physics.networks import load_network
print(len(load_network("ep_net:3").bus), load_network("ep_net:3").name)
"""


def test_installed_entry_points_extend_the_registries(tmp_path):
    site = tmp_path / "site"
    dist = site / "ep_demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "ep_demo_strategy.py").write_text(STRATEGY_MODULE.format(cls="EpHalf", kind="ep_half")
                                              .replace("decide_calls", "calls"))
    (site / "ep_demo_wear.py").write_text(textwrap.dedent("""\
        from v2gsim.physics.wear import NaumannLfp

        class EpFade(NaumannLfp):  # no decorator: the entry point names the class
            pass
        """))
    (site / "ep_demo_net.py").write_text(textwrap.dedent("""\
        import pandapower.networks as pn
        from v2gsim.physics.networks import NetworkSource

        class EpNet(NetworkSource):
            argument = "<n>"

            def load(self, argument):
                net = pn.example_simple()
                net.name = f"ep_net with {argument}"
                return net
        """))
    scenario = write_scenario(tmp_path, kind="ep_half").read_text().replace("plugins: [half_rate]\n", "")
    (tmp_path / "s.yaml").write_text(scenario + "wear: {model: ep_fade}\n")
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "s.yaml")], capture_output=True, text=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr[-3000:]
    first, warned, net = out.stdout.strip().splitlines()[-3:]
    assert first == "ep_half ep_fade True True"
    assert net == "7 ep_net with 3"
    assert "entry point broken = ep_demo_missing_module (group v2gsim.wear_models, from ep-demo) was not loaded: " \
           "ModuleNotFoundError" in warned


@pytest.mark.parametrize("spec, message, hint", [
    ("case33bw:x", "network 'case33bw' takes nothing after ':'; got 'case33bw:x'", "write case33bw"),
    ("simbench", "network source 'simbench' needs an argument", "write simbench:<code>"),
    ("simbench:", "network source 'simbench' needs an argument", "write simbench:<code>"),
    ("cigre_lvv", "unknown network 'cigre_lvv'", "did you mean 'cigre_lv'? known network sources: case33bw, cigre_lv"),
])
def test_network_specs_are_parsed_by_the_registry(spec, message, hint):
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario("smoke", {"feeder.network": spec})
    (p,) = e.value.problems
    assert (p.path, p.message) == ("feeder.network", message)
    assert p.hint.startswith(hint)
