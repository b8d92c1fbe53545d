"""Core simulator speed and memory: vehicle-steps per second and a 100,000-vehicle year.

Usage:
    python bench/bench_core.py            # 1k/10k/100k x 1 day, then 100k x 365 days
    python bench/bench_core.py --quick    # skip the year

Each measurement runs in a fresh process so that peak memory (ru_maxrss) is its own. The
scenario is a city-scale residential area: private commuters (85 %), ride-hailing (10 %) and
buses (5 %), home piles, work and public chargers, uncontrolled charging, 15-minute steps.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time


def scenario_dict(n: int, days: int) -> dict:
    return {
        "name": f"bench {n} x {days} d",
        "seed": 1,
        "time": {"start": "2026-01-05T00:00", "step_min": 15, "horizon_days": days, "warmup_days": 0},
        "feeder": {"transformer_kva": max(630, n * 4), "households": n * 3},
        "tariff": {"preset": "guangdong"},
        "sites": [
            {"id": "homes", "kind": "home", "p_max_kw": 7},
            {"id": "work", "kind": "work", "p_max_kw": 7, "chargers": max(1, n // 10)},
            {"id": "public", "kind": "public", "p_max_kw": 60, "chargers": max(1, n // 50)},
            {"id": "depot", "kind": "depot", "p_max_kw": 150, "chargers": max(1, n // 40)},
        ],
        "population": [
            {"archetype": "private_commuter", "count": int(n * 0.85), "vehicle": "byd_dolphin_44", "home_site": "homes",
             "home_charger_share": 0.7, "work_site": "work", "public_site": "public"},
            {"archetype": "ride_hailing", "count": int(n * 0.10), "vehicle": "roewe_ei5_52", "home_site": "homes",
             "home_charger_share": 0.3, "public_site": "public"},
            {"archetype": "city_bus", "count": n - int(n * 0.85) - int(n * 0.10), "vehicle": "city_bus_350", "home_site": "depot"},
        ],
        "outputs": {"session_sample": 1000, "plots": False},
    }


def _measure(n: int, days: int, q) -> None:
    from v2gsim.model import V2GModel
    from v2gsim.scenario.schema import Scenario

    t0 = time.perf_counter()
    model = V2GModel(Scenario.model_validate(scenario_dict(n, days)))
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = model.run()
    run_s = time.perf_counter() - t1
    q.put({
        "vehicles": n, "days": days, "steps": model.n_clock, "build_s": build_s, "run_s": run_s,
        "vehicle_steps_per_s": n * model.n_clock / run_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "energy_charged_mwh": res.kpis["energy_charged_kwh"] / 1000,
    })


def run_fresh(target, *args) -> dict:
    """Run ``target(*args, queue)`` in a fresh spawned process and return what it puts on the
    queue, so that imports, caches and peak memory (ru_maxrss) belong to that measurement alone."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def measure(n: int, days: int) -> dict:
    return run_fresh(_measure, n, days)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cases = [(1_000, 1), (10_000, 1), (100_000, 1)] + ([] if args.quick else [(100_000, 365)])
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, Python {sys.version.split()[0]}, one process")
    print("| vehicles | days | steps | build (s) | run (s) | vehicle-steps/s | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, days in cases:
        r = measure(n, days)
        print(f"| {n:,} | {days} | {r['steps']:,} | {r['build_s']:.2f} | {r['run_s']:.2f} | {r['vehicle_steps_per_s']:.3g} | {r['peak_rss_mb']:.0f} |", flush=True)
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
