"""City-scale run: 100,000 EVs on SimBench 1-MV-urban with an AC power flow every step.

Times the whole run (model build + every step + results tables) and the share spent in the
power flow (the solver's ``solve``) and in the feeder as a whole (EV power onto buses, solve,
headroom). Prints a markdown row; ``--out FILE`` appends it with machine and date.

    .venv/bin/python bench/bench_city.py [--days 365] [--solver ac] [--out bench/feeder_results.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import time


def _timed(fn, acc: list):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[0] += time.perf_counter() - t0
    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="scenarios/city_feeder.yaml")
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--solver", default="ac", choices=["ac", "capacity_only"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from v2gsim.model import V2GModel
    from v2gsim.scenario import load_scenario

    t_all = time.perf_counter()
    sc = load_scenario(args.scenario, {"time.horizon_days": args.days, "feeder.solver": args.solver})
    t_load = time.perf_counter() - t_all
    t0 = time.perf_counter()
    m = V2GModel(sc)
    t_build = time.perf_counter() - t0
    pf_acc, feeder_acc = [0.0], [0.0]
    m.feeder.solver.solve = _timed(m.feeder.solver.solve, pf_acc)
    m.feeder.solve = _timed(m.feeder.solve, feeder_acc)
    m.feeder.ev_bus_kw = _timed(m.feeder.ev_bus_kw, feeder_acc)
    t0 = time.perf_counter()
    res = m.run()
    t_run = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    k = res.kpis
    row = (f"| {sc.feeder.network} | {args.solver} | {m.fleet.n:,} | {args.days:g} | {m.n_clock:,} | {t_load:.1f} | "
           f"{t_build:.1f} | {t_run:.1f} | **{total:.1f}** | {pf_acc[0]:.1f} ({pf_acc[0] / total:.0%}) | "
           f"{feeder_acc[0]:.1f} ({feeder_acc[0] / total:.0%}) | {1e3 * pf_acc[0] / m.n_clock:.3f} | "
           f"{int(k.get('nonconverged_steps', 0))} | {k.get('voltage_violation_h', float('nan')):.1f} | "
           f"{k.get('line_overload_h', float('nan')):.1f} | {k['max_transformer_loading_pct']:.1f} |")
    head = ("| network | solver | vehicles | days | steps (incl. warm-up) | load scenario (s) | build (s) | run (s) | "
            "total (s) | power flow (s, share) | feeder incl. PF (s, share) | PF per step (ms) | non-converged | "
            "voltage violation (h) | line overload (h) | max trafo loading (%) |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(head)
    print(row)
    if args.out:
        import pandapower
        import lightsim2grid

        with open(args.out, "a") as fh:
            fh.write(f"\n<!-- bench_city {dt.date.today()} {platform.machine()} {os.cpu_count()} cores, "
                     f"Python {platform.python_version()}, pandapower {pandapower.__version__}, "
                     f"lightsim2grid {lightsim2grid.__version__} -->\n{row}\n")


if __name__ == "__main__":
    main()
