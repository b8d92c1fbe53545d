"""Runtime of each business model against the uncontrolled baseline (issue 4: none above 3×).

Usage:
    python bench/bench_business_models.py                    # 10,000 and 100,000 vehicles, one week
    python bench/bench_business_models.py --sizes 10000 --models distributed

Each measurement runs in a fresh process. The city is the one of ``bench_core.py`` (private
commuters 85 %, ride-hailing 10 %, buses 5 %; home piles, work, public and depot chargers;
Guangdong TOU; 15-minute steps; no warm-up) with V2G-capable private cars and 20 % of home
piles bidirectional. Each model adds its own ``business_models`` entry in ``MODELS`` (add yours
there); results go to ``bench/business_models_results.md`` by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import platform
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))  # for bench_core

# one entry per business model: the scenario's business_models list for the city
MODELS: dict[str, list[dict] | Callable[[int], list[dict]]] = {
    "uncontrolled": [{"kind": "uncontrolled"}],
    # the operator runs the public V2G chargers and the bus depot; homes and work stay uncontrolled
    "centralized": [
        {"kind": "centralized", "sites": ["public", "depot"],
         "requests": [{"kind": "discharge_call", "start": "2026-07-06T19:00", "hours": 1, "p_kw": 500, "daily": True}]},
        {"kind": "uncontrolled"},
    ],
    "distributed": [{
        "kind": "distributed",
        "invitations": [{"start": "2026-07-08T18:00", "hours": 2, "reward_cny_per_kwh": 4, "announced_h_ahead": 24}],
    }],
    # the ride-hailing Roewe Ei5s are Aulton-swappable: one Aulton station (40 packs) per 150 of them,
    # a daily evening discharge call; every site stays uncontrolled (a function of the fleet size n)
    "battery_swap": lambda n: [{
        "kind": "battery_swap",
        "stations": [{"id": f"aulton_{i}", "preset": "aulton", "packs": 40, "grid_limit_kw": 1250}
                     for i in range(max(1, round(n * 0.10 / 150)))],
        "discharge_requests": [{"start": f"2026-07-{6 + d:02d}T18:00", "hours": 2, "reward_cny_per_kwh": 1.0} for d in range(7)],
    }],
}


def scenario_dict(n: int, days: int, business_models: list[dict]) -> dict:
    """The city of ``bench_core.py`` in a summer week, made V2G-capable, under ``business_models``."""
    from bench_core import scenario_dict as core_city

    d = core_city(n, days)
    d["name"] = f"bench business models {n} x {days} d"
    d["time"]["start"] = "2026-07-06T00:00"
    bidirectional = {"homes": 0.2, "public": 0.3, "depot": 0.5}
    for site in d["sites"]:
        if site["id"] in bidirectional:
            site["bidirectional_share"] = bidirectional[site["id"]]
    d["population"][0]["vehicle"] = "byd_dolphin_44_v2g"  # the private commuters
    d["business_models"] = business_models
    return d


def _measure(model_name: str, n: int, days: int, q) -> None:
    from v2gsim.model import V2GModel
    from v2gsim.scenario.schema import Scenario

    t0 = time.perf_counter()
    bm = MODELS[model_name]
    model = V2GModel(Scenario.model_validate(scenario_dict(n, days, bm(n) if callable(bm) else bm)))
    build_s = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    res = model.run()
    run_s = time.perf_counter() - t1
    # the run's CPU time too: on a shared machine wall time swings with the other jobs' load
    q.put({"model": model_name, "vehicles": n, "days": days, "build_s": build_s, "run_s": run_s, "run_cpu_s": time.process_time() - c1,
           "load": os.getloadavg()[0],
           "v2g_energy_kwh": res.kpis["v2g_energy_kwh"], "peak_load_kw": res.kpis["peak_load_kw"]})


def measure(model_name: str, n: int, days: int) -> dict:
    from bench_core import run_fresh

    return run_fresh(_measure, model_name, n, days)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| model | vehicles | days | build s | run s | × uncontrolled | run CPU s | × uncontrolled (CPU) | V2G kWh | peak kW | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        base = base_cpu = None
        for name in ["uncontrolled"] + [m for m in args.models if m != "uncontrolled"]:
            r = measure(name, n, args.days)
            if name == "uncontrolled":
                base, base_cpu = r["run_s"], r["run_cpu_s"]
            print(f"| {name} | {n:,} | {args.days} | {r["build_s"]:.2f} | {r["run_s"]:.2f} | {r['run_s'] / base:.2f} | "
                  f"{r['run_cpu_s']:.2f} | {r['run_cpu_s'] / base_cpu:.2f} | "
                  f"{r['v2g_energy_kwh']:.0f} | {r['peak_load_kw']:.0f} | {r['load']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
