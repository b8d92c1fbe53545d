"""Small scenario builders shared by the tests."""

from __future__ import annotations

import contextlib
import copy
import sys
from pathlib import Path

from v2gsim.scenario.schema import Scenario

BASE = {
    "name": "test",
    "seed": 1,
    "time": {"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 2, "warmup_days": 0},
    "feeder": {"transformer_kva": 200, "households": 40},
    "tariff": {"flat_cny_per_kwh": 0.5},
    "sites": [
        {"id": "homes", "kind": "home", "p_max_kw": 7},
        {"id": "office", "kind": "work", "p_max_kw": 11, "chargers": 3},
        {"id": "dc", "kind": "public", "p_max_kw": 60, "chargers": 2},
    ],
    "population": [
        {"archetype": "private_commuter", "count": 15, "vehicle": "byd_dolphin_44", "home_site": "homes",
         "home_charger_share": 0.7, "work_site": "office", "public_site": "dc"},
        {"archetype": "ride_hailing", "count": 3, "vehicle": "roewe_ei5_52", "home_site": "homes", "public_site": "dc"},
        {"archetype": "city_bus", "count": 2, "vehicle": "city_bus_350"},
    ],
}


def scenario(**changes) -> Scenario:
    d = copy.deepcopy(BASE)
    for key, value in changes.items():
        node = d
        parts = key.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return Scenario.model_validate(d)


# A one-day scenario whose feeder's base load is `profile` (100 households x 8,760 kWh a year, so
# 100 kW on average): line 3 of the file is the base-load line, for the error-position tests.
BASE_LOAD_SCENARIO = """\
name: base load profile
time: {start: 2026-07-06T00:00, step_min: 60, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: 500, households: 100, base_load: {profile: PROFILE, annual_kwh_per_household: 8760}}
population: [{archetype: private_car_cn, count: 2, vehicle: byd_dolphin_44}]
"""


def write_base_load_scenario(folder: Path, profile: str) -> Path:
    """Write :data:`BASE_LOAD_SCENARIO` with ``profile`` to ``folder/s.yaml`` and return its path."""
    path = folder / "s.yaml"
    path.write_text(BASE_LOAD_SCENARIO.replace("PROFILE", profile))
    return path


@contextlib.contextmanager
def registries_restored(*roots: Path):
    """Undo what plugins register inside the block, and forget the modules imported from
    ``roots`` (so the next test imports its own files, and the known names stay the built-ins)."""
    from v2gsim.registry import REGISTRIES

    before = {group: set(reg) for group, reg in REGISTRIES.items()}  # fills each registry
    modules = set(sys.modules)
    try:
        yield
    finally:
        for group, reg in REGISTRIES.items():
            for name in set(reg) - before.get(group, set()):
                reg.unregister(name)
        resolved = [Path(r).resolve() for r in roots]
        for name in set(sys.modules) - modules:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(r) for r in resolved):
                del sys.modules[name]


def v2g_fleet(n: int, **arrays):
    """A FleetView of n plugged bidirectional vehicles of 50 kWh on 20 kW V2G piles; ``arrays``
    replace any field."""
    from dataclasses import fields

    import numpy as np

    from v2gsim.strategies.base import FleetView

    base = {
        "e_kwh": np.full(n, 40.0), "capacity_kwh": np.full(n, 50.0), "e_stop_kwh": np.full(n, 50.0),
        "e_min_departure_kwh": np.full(n, 15.0), "p_plug_max_kw": np.full(n, 20.0),
        "can_discharge": np.ones(n, bool), "bidirectional": np.ones(n, bool),
        "eta_charge": np.full(n, 0.92), "eta_discharge": np.full(n, 0.92),
        "t_depart_est_step": np.full(n, 90, np.int64), "site": np.zeros(n, np.int32),
        "wear_cost_cny_per_kwh": np.zeros(n), "e_discharged_kwh": np.zeros(n),
    }
    base.update(arrays)
    return FleetView(**{f.name: base.get(f.name, np.zeros(n)) for f in fields(FleetView) if f.name != "v2g_wear_price"},
                     v2g_wear_price=base.get("v2g_wear_price"))
