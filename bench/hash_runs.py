"""Hash every table and KPI of two runs, for checking that a speed-up changes no result.

Usage:
    python bench/hash_runs.py TREE [city_days] [core_vehicles] [core_days] [--wear]

Runs, with TREE's own code (``git archive <sha> v2gsim bench | tar -x -C TREE``), the bench city
(bench/city_provisioned_explicit.yaml, capacity-only feeder, every session recorded) and issue 2's
core scenario (bench/bench_core.py's ``scenario_dict``, every session recorded), and prints one
hash per run over the system, sites, vehicles, sessions, traces, departure SOC and ledger tables,
the actors' extra tables and the KPIs. Equal hashes: the same results to the last bit. With
``--wear`` also scenarios/wear_v2g_fleet.yaml (this checkout's file; pre-aged packs with their
cycle history) at its golden horizon, 30 days.
"""

from __future__ import annotations

import hashlib
import sys


def digest(r) -> str:
    import pandas as pd

    d = hashlib.sha256()
    for name in ("system", "sites", "vehicles", "sessions", "traces", "departure_soc", "ledger"):
        t = getattr(r, name)
        d.update(name.encode())
        d.update(pd.util.hash_pandas_object(t, index=True).values.tobytes())
    for k, t in sorted(r.extra.items()):
        d.update(k.encode())
        d.update(pd.util.hash_pandas_object(t, index=True).values.tobytes())
    d.update(repr(sorted((k, float(v)) for k, v in r.kpis.items())).encode())
    return d.hexdigest()[:16]


def main() -> None:
    wear = "--wear" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--wear"]
    tree = args[0]
    city_days = float(args[1]) if len(args) > 1 else 7
    n = int(args[2]) if len(args) > 2 else 20000
    core_days = int(args[3]) if len(args) > 3 else 14
    sys.path[:0] = [tree, tree + "/bench"]
    import bench_core
    from v2gsim.model import V2GModel
    from v2gsim.scenario import load_scenario
    from v2gsim.scenario.schema import Scenario

    sc = load_scenario(tree + "/bench/city_provisioned_explicit.yaml", {"time.horizon_days": city_days, "feeder.solver": "capacity_only",
                                                                          "outputs.plots": False, "outputs.session_sample": 100000})
    r = V2GModel(sc).run()
    print(f"city {city_days:g} d: {digest(r)} sessions {len(r.sessions)}", flush=True)
    d = bench_core.scenario_dict(n, core_days)
    d["outputs"]["session_sample"] = n
    r = V2GModel(Scenario.model_validate(d)).run()
    print(f"core {n} x {core_days} d: {digest(r)} sessions {len(r.sessions)} charged {r.kpis['energy_charged_kwh']!r}", flush=True)
    if wear:
        from pathlib import Path

        sc = load_scenario(str(Path(__file__).resolve().parents[1] / "scenarios" / "wear_v2g_fleet.yaml"), {"time.horizon_days": 30})
        r = V2GModel(sc).run()
        print(f"wear_v2g_fleet 30 d: {digest(r)}", flush=True)


if __name__ == "__main__":
    main()
