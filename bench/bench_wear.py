"""Battery wear cost in run time: the 100,000-vehicle one-year run with wear on against off.

Usage:
    python bench/bench_wear.py [--n 100000] [--days 365] [--repeat 1] [--out bench/wear_results.md]

The scenario is bench/bench_core.py's city-scale residential area (private commuters, ride-hailing,
buses; uncontrolled charging, 15-minute steps, Guangdong tariff). "on" is ``wear: {model: auto}``
(Naumann LFP for the LFP cars, Schmalstieg NMC where a preset is NMC; daily updates; Guangzhou
ambient; marginal price written every day; second life enabled). Each run is its own process,
"off" and "on" alternate so that background load hits both alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


def _measure(n, days, wear, q) -> None:
    from bench_core import scenario_dict

    from v2gsim.model import V2GModel
    from v2gsim.scenario.schema import Scenario

    d = scenario_dict(n, days)
    if wear:
        d["wear"] = {"model": "auto"}
    t0 = time.perf_counter()
    model = V2GModel(Scenario.model_validate(d))
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = model.run()
    run_s = time.perf_counter() - t1
    q.put({"wear": wear, "build_s": build_s, "run_s": run_s, "steps": model.n_clock,
           "fade_mean_pct": res.kpis.get("wear_fade_mean_pct", float("nan")), "fade_p95_pct": res.kpis.get("wear_fade_p95_pct", float("nan")),
           "out_of_range": res.kpis.get("wear_out_of_range_vehicle_periods", float("nan"))})


def measure(n, days, wear) -> dict:
    from bench_core import run_fresh

    return run_fresh(_measure, n, days, wear)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for _ in range(args.repeat):
        for wear in (False, True):
            r = measure(args.n, args.days, wear)
            rows.append(r)
            print(r, flush=True)
    off = min(r["run_s"] for r in rows if not r["wear"])
    on = min(r["run_s"] for r in rows if r["wear"])
    on_r = [r for r in rows if r["wear"]][0]
    line = (f"| {args.n:,} | {args.days} | {rows[0]['steps']:,} | {off:.1f} | {on:.1f} | **{(on / off - 1) * 100:+.1f} %** | "
            f"{on_r['fade_mean_pct']:.2f} | {on_r['fade_p95_pct']:.2f} | {on_r['out_of_range']:.0f} |")
    head = ("| vehicles | days | steps | run, wear off (s) | run, wear on (s) | slowdown | mean fade (%) | p95 fade (%) | "
            "out-of-range vehicle-periods |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(head)
    print(line)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(f"\n<!-- bench_wear {dt.date.today()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
                     f"best of {args.repeat} -->\n{head}\n{line}\n")


if __name__ == "__main__":
    main()
