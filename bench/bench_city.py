"""City-scale run: 100,000 EVs on SimBench 1-MV-urban with an AC power flow every step.

Times the whole run (model build + every step + results tables) and the share spent in the
power flow (the solver's ``solve``) and in the feeder as a whole (EV power onto buses, solve,
headroom). Prints a markdown row; ``--out FILE`` appends it with machine and date.

``--per-feeder`` also prints, for each feeder (each island the network's infeeds supply, e.g.
each copy of ``replicate:<N>:<network>``), its most loaded line and transformer over the
recorded steps and its hours with a line above 100 %. ``--mobility`` prints the CPU time of the
mobility phase (``V2GModel._mobility``, where the drivers' choices and public queues run) as a
share of the run's CPU time (issue 15, "Speed"; bench/README.md).

    .venv/bin/python bench/bench_city.py [--days 365] [--solver ac] [--per-feeder] [--mobility] [--out bench/feeder_results.md]
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


def _cpu_timed(fn, acc: list):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        t0 = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            acc[0] += time.process_time() - t0
    return wrapper


def feeder_of(net):
    """Island (feeder) index of every line and transformer: which ext_grid's component it is in (-1: none)."""
    import networkx as nx
    import numpy as np
    import pandapower.topology as top

    graph = top.create_nxgraph(net, include_trafos=True)
    island = {}
    for k, bus in enumerate(net.ext_grid.bus.to_numpy()):
        for b in nx.node_connected_component(graph, int(bus)):
            island[b] = k
    line = np.array([island.get(int(b), -1) for b in net.line.from_bus.to_numpy()], np.int64)
    trafo = np.array([island.get(int(b), -1) for b in net.trafo.lv_bus.to_numpy()], np.int64)
    return line, trafo, len(net.ext_grid)


class PerFeeder:
    """Wraps the feeder's solve: per island, the most loaded line and transformer and the hours
    with a line above the limit, over the recorded steps."""

    def __init__(self, model):
        import numpy as np

        self.np = np
        self.model = model
        self.line_island, self.trafo_island, self.n = feeder_of(model.feeder.net)
        self.line_max = np.zeros(self.n)
        self.trafo_max = np.zeros(self.n)
        self.overload_h = np.zeros(self.n)
        self.dt_h = model.dt_h
        self.limit = model.config.feeder.loading_limit_pct
        solve = model.feeder.solve

        def wrapped(s, ev_kw):
            solve(s, ev_kw)
            r = model.feeder.result
            if s >= model.n_warmup and r is not None and r.converged:
                self.add(np.nan_to_num(np.asarray(r.line_loading_pct, float)), np.nan_to_num(np.asarray(r.trafo_loading_pct, float)))
        model.feeder.solve = wrapped

    def add(self, line_pct, trafo_pct):
        np = self.np
        lmax = np.zeros(self.n)
        k = self.line_island >= 0
        np.maximum.at(lmax, self.line_island[k], line_pct[k])
        tmax = np.zeros(self.n)
        k = self.trafo_island >= 0
        np.maximum.at(tmax, self.trafo_island[k], trafo_pct[k])
        self.line_max = np.maximum(self.line_max, lmax)
        self.trafo_max = np.maximum(self.trafo_max, tmax)
        self.overload_h += self.dt_h * (lmax > self.limit)

    def table(self) -> str:
        rows = ["| feeder | max line loading (%) | line overload (h) | max trafo loading (%) |", "|---:|---:|---:|---:|"]
        rows += [f"| {k} | {self.line_max[k]:.1f} | {self.overload_h[k]:.2f} | {self.trafo_max[k]:.1f} |" for k in range(self.n)]
        return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="scenarios/city_feeder.yaml")
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--solver", default="ac", choices=["ac", "capacity_only"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="scenario override, as v2gsim run --set")
    ap.add_argument("--per-feeder", action="store_true", help="max loading and overload hours per feeder (island)")
    ap.add_argument("--mobility", action="store_true", help="CPU share of the mobility phase (drivers, queues)")
    args = ap.parse_args()

    from v2gsim.model import V2GModel
    from v2gsim.scenario import load_scenario

    t_all = time.perf_counter()
    sc = load_scenario(args.scenario, [f"time.horizon_days={args.days}", f"feeder.solver={args.solver}", *args.set])
    t_load = time.perf_counter() - t_all
    t0 = time.perf_counter()
    m = V2GModel(sc)
    t_build = time.perf_counter() - t0
    pf_acc, feeder_acc = [0.0], [0.0]
    m.feeder.solver.solve = _timed(m.feeder.solver.solve, pf_acc)
    m.feeder.solve = _timed(m.feeder.solve, feeder_acc)
    m.feeder.ev_bus_kw = _timed(m.feeder.ev_bus_kw, feeder_acc)
    per_feeder = PerFeeder(m) if args.per_feeder else None
    mob_acc = [0.0]
    if args.mobility:
        m._mobility = _cpu_timed(m._mobility, mob_acc)
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = m.run()
    cpu_run = time.process_time() - c0
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
    if per_feeder is not None:
        print()
        print(per_feeder.table())
    if args.mobility:
        acts = sum(k[x] for x in ("detours", "delayed_departures", "trips_shortened", "trips_cancelled", "queued_at_public"))
        print(f"\nrun CPU {cpu_run:.2f} s, mobility {mob_acc[0]:.2f} s ({mob_acc[0] / cpu_run:.0%}); trips {k['departures']:,.0f}, "
              f"cancelled {k['trips_cancelled']:,.0f}, stranded {k['stranded_trips']:,.0f}, drivers' actions {acts:,.0f} "
              f"(detours {k['detours']:,.0f}, delays {k['delayed_departures']:,.0f}, shortened {k['trips_shortened']:,.0f}, "
              f"queued {k['queued_at_public']:,.0f}); load average {os.getloadavg()[0]:.1f}")
    if args.out:
        import pandapower
        import lightsim2grid

        with open(args.out, "a") as fh:
            fh.write(f"\n<!-- bench_city {dt.date.today()} {platform.machine()} {os.cpu_count()} cores, "
                     f"Python {platform.python_version()}, pandapower {pandapower.__version__}, "
                     f"lightsim2grid {lightsim2grid.__version__} -->\n{row}\n")


if __name__ == "__main__":
    main()
