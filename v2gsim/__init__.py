"""v2gsim: agent-based simulation of electric vehicles, vehicle-to-grid and the distribution grid.

Not to be confused with LBNL's V2G-Sim, an unrelated project that also imports as ``v2gsim``.
"""

from __future__ import annotations

from pathlib import Path

from v2gsim.errors import Problem, ScenarioError, SimulationError
from v2gsim.physics.networks import register_network_source
from v2gsim.physics.wear import register_wear_model
from v2gsim.plugins import allow_plugins, load_plugin
from v2gsim.results import Results
from v2gsim.scenario import Scenario, bundled_scenarios, load_scenario
from v2gsim.strategies.base import register_strategy

__all__ = [
    "Problem",
    "Results",
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "V2GModel",
    "allow_plugins",
    "bundled_scenarios",
    "load_plugin",
    "load_scenario",
    "register_network_source",
    "register_strategy",
    "register_wear_model",
    "run",
    "sweep",
]


def __getattr__(name):  # keep `import v2gsim` light: Mesa and Dask load on first use
    if name == "V2GModel":
        from v2gsim.model import V2GModel

        return V2GModel
    if name == "sweep":  # the function; the module is v2gsim.sweeps
        from v2gsim.sweeps import run_sweep

        return run_sweep
    raise AttributeError(name)


def run(scenario: Scenario | str | Path, *, seed: int | None = None, progress: bool = False, baseline: bool = True,
        allow_plugins: bool = False) -> Results:
    """Run a scenario (object, file or bundled name) to its horizon and return its Results.

    With ``baseline`` (default), the scenario's like-for-like reference (its ``reference`` key:
    by default the same actors and mobility under uncontrolled control) is run too, and the KPIs
    gain ``reference_peak_kw``, the other ``reference_*`` KPIs and ``peak_reduction_pct``.
    ``allow_plugins`` lets a scenario file import the modules its ``plugins:`` names.
    """
    from v2gsim.runner import run_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, allow_plugins=allow_plugins)
    return run_scenario(scenario, seed=seed, progress=progress, baseline=baseline)
