"""The actor protocol (v2gsim.engine.actor): a business model's own actor takes part in the phases
it overrides, in the documented order, puts its power on the feeder, records a declared column and
settles money; Results are built from the recording alone."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from helpers import scenario
from ledger_checks import check_ledger
from v2gsim.engine.actor import Actor, takes_part
from v2gsim.market.settlement import GRID_COMPANY
from v2gsim.model import V2GModel
from v2gsim.results import Results
from v2gsim.strategies import STRATEGIES

Uncontrolled = STRATEGIES["uncontrolled"]  # through the registry: importing a built-in module first would change the registration order


class Heater(Actor):
    """A 10 kW load on the feeder that logs the phases it is called in and pays for its energy."""

    connections = ()

    def __init__(self, log):
        self.log = log

    def begin_recording(self, step):
        self.log.append(("begin_recording", step))

    def signals(self, sig):
        self.log.append(("signals", sig.step))

    def decide(self, sig):
        self.log.append(("decide", sig.step))

    def physics(self, sig):
        self.log.append(("physics", sig.step))

    def grid(self, sig, injections):
        self.log.append(("grid", sig.step))
        injections.add(10.0, lambda feeder: np.full(feeder.n_ev, 10.0 / feeder.n_ev))

    def settle(self, sig, ledger):
        self.log.append(("settle", sig.step))
        ledger.post(sig.row, "heater", GRID_COMPANY, "energy_purchase", 10.0 * sig.dt_h, 10.0 * sig.dt_h * sig.price_cny_per_kwh)

    def declare(self, recorder):
        self.col = recorder.declare_system("heater_kw")

    def record(self, sig):
        self.log.append(("record", sig.step))
        self.col[sig.row] += 10.0

    def finish(self, step_end):
        self.log.append(("finish", step_end))


@pytest.fixture
def with_heater(monkeypatch):
    log: list = []
    monkeypatch.setattr(Uncontrolled, "actors", lambda self, engine: [Heater(log)])
    return log


def test_an_actor_takes_part_in_the_phases_it_overrides_in_order(with_heater):
    m = V2GModel(scenario(time__horizon_days=1))
    heater = next(a for a in m.actors if isinstance(a, Heater))
    # documented order: the grid operator (first: it publishes the requests), aggregators, the
    # business models' actors, the feeder (last of the grid phase)
    assert m.actors[0] is m.grid_operator and m.actors.index(heater) == 1 + len(m.aggregators) and m.actors[-1] is m.feeder
    assert not takes_part(heater, "depart") and heater not in m._phase["depart"]
    m.step()
    m.step()
    assert with_heater == [("begin_recording", 0)] + [(ph, s) for s in (0, 1) for ph in
                                                       ("signals", "decide", "physics", "grid", "settle", "record")]
    res = m.run()
    assert with_heater[-1] == ("finish", m.n_clock) and sum(e[0] == "finish" for e in with_heater) == 1
    sy = res.system
    np.testing.assert_allclose(sy["heater_kw"], 10.0)
    np.testing.assert_allclose(sy["net_load_kw"] - (sy["base_load_kw"] + sy["ev_charge_kw"] - sy["v2g_discharge_kw"]), 10.0, atol=1e-9)
    paid = res.ledger[res.ledger["payer"] == "heater"]
    assert paid["amount_cny"].sum() == pytest.approx(10.0 * res.dt_h * sy["price_cny_per_kwh"].sum(), rel=1e-12)


def test_the_heater_reaches_a_network_feeder(with_heater):
    sc = scenario(time__horizon_days=1, feeder={"network": "case33bw", "base_load": {"source": "network_profiles"}})
    m = V2GModel(sc)
    m.step()
    fd = m.feeder
    ev_kw = fd.last_p_mw[fd.n_base:] * 1e3
    assert ev_kw.sum() == pytest.approx(m.fleet.p_kw.sum() + 10.0, abs=1e-9)


def test_results_come_from_the_recording_and_change_nothing():
    m = V2GModel(scenario(time__horizon_days=1))
    m.run()
    rec, meta = m.recording()
    before = (copy.deepcopy(meta), {c: a.copy() for c, a in rec.system.items()}, rec.ledger.copy(),
              {k: np.asarray(v).copy() for k, v in rec.vehicles.items()})
    a = Results.from_recording(rec, meta)
    b = Results.from_recording(rec, meta)
    assert meta == before[0] and "timings" not in meta
    for c, x in before[1].items():
        np.testing.assert_array_equal(rec.system[c], x)
    pd.testing.assert_frame_equal(rec.ledger, before[2])
    for k, x in before[3].items():
        np.testing.assert_array_equal(np.asarray(rec.vehicles[k]), x)
    pd.testing.assert_frame_equal(a.system, b.system)
    pd.testing.assert_frame_equal(a.vehicles, b.vehicles)
    assert a.kpis == b.kpis
    a.system.iloc[0, 0] = -1.0  # the tables are the results' own
    assert rec.system["base_load_kw"][0] != -1.0
    check_ledger(a)


def test_no_hooks_and_the_clock_is_mesas():
    m = V2GModel(scenario(time__horizon_days=1))
    assert not hasattr(m, "hooks")
    m.step()
    assert m.steps == m.step_index == 1
    m.run()
    assert m.steps == m.n_clock


def test_vehicle_and_driver_agents_are_created_on_first_use():
    from v2gsim.agents import Driver, Vehicle

    m = V2GModel(scenario(time__horizon_days=1))
    m.run()
    assert m._views is None  # a population run never needed them
    assert len(m.agents_by_type[Vehicle]) == m.fleet.n == len(m.agents_by_type[Driver])
    assert m.vehicles[2].index == 2 and m.drivers[2].vehicle is m.vehicles[2]
    assert len(m.agents) == 1 + len(m.actors_of(type(m.feeder))) + len(m.aggregators) + 2 * m.fleet.n  # 1: the grid operator
