"""The model the live app steps, and what its plots read.

`LiveRun` is the Mesa model SolaraViz drives: its keyword arguments are the app's knobs (Mesa's
reset builds a new one from them), it builds a new validated Scenario (`v2gsim.viz.params`) and a
`V2GModel`, runs the scenario's warm-up days at once (they are not recorded) and then advances
one recorded step per ``step()``. It uses only the model's public surface: ``step()``,
``recorder``, ``fleet``, ``feeder``, ``times``, ``n_steps`` and ``aggregators``.

`snapshot` turns what has been recorded so far into a light stand-in for `Results` (the
``system`` table up to now, the departure histogram, each vehicle's state of charge now, the
swap stations' recorded arrays) so that the project's own plotting functions draw the live
figures. Nothing here computes physics or money: the numbers are the recorder's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mesa
import numpy as np
import pandas as pd

from v2gsim.errors import ScenarioError, SimulationError
from v2gsim.recorder import SOC_BINS
from v2gsim.viz.params import AS_IN_SCENARIO, Knobs, build_scenario

DEFAULT_SCENARIO = "mixed_city"


class LiveRun(mesa.Model):
    """One scenario, stepped by the app; a bad knob leaves ``problem`` set and nothing to step.

    (The parameter is ``scenario_name``, not ``scenario``: Mesa's reset passes its own
    ``Scenario`` object to a model whose ``__init__`` takes ``scenario``.)
    """

    def __init__(self, scenario_name: str = DEFAULT_SCENARIO, ev_count: int = 0, business_model: str = AS_IN_SCENARIO,
                 reward: str = AS_IN_SCENARIO, transformer_kva: int = 0, seed: int | None = None):
        super().__init__()
        self.scenario_name = str(scenario_name)
        self.knobs = Knobs(int(ev_count), str(business_model), str(reward), int(transformer_kva))
        self.problem: str | None = None
        self.overrides: dict[str, object] = {}
        self.config = None
        self.sim = None
        self.recorded = 0  # recorded steps done (the warm-up is not counted)
        try:
            self.config, self.overrides = build_scenario(self.scenario_name, self.knobs)
            from v2gsim.model import V2GModel

            self.sim = V2GModel(self.config, seed=seed)
            tc = self.config.time
            for _ in range(tc.warmup_days * tc.steps_per_day):  # the unrecorded warm-up, at once
                self.sim.step()
        except (ScenarioError, SimulationError, OSError, ValueError) as exc:
            self.problem = str(exc)
            self.sim = None
            self.running = False

    @property
    def n_steps(self) -> int:
        return 0 if self.sim is None else self.sim.n_steps

    @property
    def now(self) -> pd.Timestamp | None:
        """Wall-clock time of the last recorded step (None before the first)."""
        return None if self.sim is None or self.recorded == 0 else self.sim.times[self.recorded - 1]

    def step(self) -> None:
        if self.sim is None or self.recorded >= self.sim.n_steps:
            self.running = False
            return
        self.sim.step()
        self.recorded += 1
        if self.recorded >= self.sim.n_steps:
            self.running = False


@dataclass
class Snapshot:
    """What `v2gsim.plotting` needs of `Results`, from a run so far (``k`` recorded steps)."""

    system: pd.DataFrame
    departure_soc: pd.DataFrame
    vehicles: pd.DataFrame
    metadata: dict
    transformer_kva: float
    extra: dict = field(default_factory=dict)
    bus_vm_pu: np.ndarray | None = None  # per-bus voltages at the last recorded step (network runs)
    horizon: tuple[pd.Timestamp, pd.Timestamp] | None = None

    @property
    def dt_h(self) -> float:
        return self.metadata["scenario"]["time"]["step_min"] / 60.0


def swap_networks(sim) -> list:
    """The station networks of the run's battery-swap business models (each aggregator's own)."""
    return [agg.strategy.network for agg in sim.aggregators if agg.kind == "battery_swap" and agg.strategy.network is not None]


def snapshot(run: LiveRun) -> Snapshot | None:
    """The recorded steps of ``run`` so far as plot-ready tables; None before the first step."""
    sim, k = run.sim, run.recorded
    if sim is None or k == 0:
        return None
    rec = sim.recorder
    times = sim.times[:k]
    # the engine's columns and those the actors declared (swap stations' charge, discharge, inventory)
    system = pd.DataFrame({c: a[:k] for c, a in {**rec.cols, **rec.actor_cols}.items()}, index=pd.Index(times, name="time"))
    stations = []
    for net in swap_networks(sim):  # each station's own recorder: inventories, queue, power
        S = len(net.station_ids)
        stations.append(pd.DataFrame({
            "time": np.repeat(times.values, S),
            "station_id": pd.Categorical(np.tile(net.station_ids, k), categories=net.station_ids),
            **{c: net.rec[c][:k].ravel() for c in ("packs_ready", "queue", "p_kw")},
        }))
    extra = {"stations": pd.concat(stations, ignore_index=True)} if stations else {}
    f = sim.fleet
    vehicles = pd.DataFrame({"soc_final": f.e_kwh / f.capacity_kwh})
    departure_soc = pd.DataFrame({"soc_lo": SOC_BINS[:-1], "soc_hi": SOC_BINS[1:], "departures": rec.departure_soc_counts.copy()})
    scenario_json = run.config.model_dump(mode="json")
    bus = None
    if "vm_min_pu" in system:
        bus = rec.bus_vm_pu[k - 1] if rec.bus_vm_pu is not None else np.asarray(getattr(sim.feeder.result, "vm_pu", []), dtype=float)
    return Snapshot(system, departure_soc, vehicles, {"scenario": scenario_json}, float(sim.feeder.transformer_kva), extra, bus,
                    (sim.times[0], sim.times[-1]))
