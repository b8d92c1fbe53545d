"""Per-step feeder power-flow time: v2gsim's lightsim2grid `PowerFlow` vs `pandapower.runpp`.

For each network, N random load snapshots (each load scaled by U(0, 1.5), sgens by U(0, 1)) are
solved one after the other, as the simulator does step by step (lightsim2grid warm-starts from the
previous solution; runpp is called with its defaults plus numba=False since numba is not
installed). Prints a markdown table; ``--out FILE`` also writes it with the machine and date.

    .venv/bin/python bench/bench_feeder.py [--n 200] [--out bench/feeder_results.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
import warnings

import numpy as np

NETWORKS = [
    "case33bw",
    "cigre_lv",
    "simbench:1-LV-semiurb4--0-sw",
    "simbench:1-MV-urban--0-sw",
    "simbench:1-MV-semiurb--0-sw",
    "simbench:1-MVLV-urban-all-0-sw",
]


def bench_one(spec: str, n: int, n_pp: int, seed: int = 0) -> dict:
    import pandapower as pp

    from v2gsim.physics.grid import CapacityOnly, PowerFlow
    from v2gsim.physics.networks import load_network

    t0 = time.perf_counter()
    net = load_network(spec)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pf = PowerFlow(net)
    t_init = time.perf_counter() - t0
    cap = CapacityOnly(net)
    rng = np.random.default_rng(seed)
    sc = net.load["scaling"].to_numpy(float)
    p0, q0 = net.load["p_mw"].to_numpy(float) * sc, net.load["q_mvar"].to_numpy(float) * sc
    ps0 = net.sgen["p_mw"].to_numpy(float) * net.sgen["scaling"].to_numpy(float)
    f = rng.uniform(0.0, 1.5, (n, len(p0)))
    g = rng.uniform(0.0, 1.0, (n, len(ps0)))

    times_ls, ok, dv = [], 0, 0.0
    for k in range(n):
        t0 = time.perf_counter()
        r = pf.solve(p0 * f[k], q0 * f[k], ps0 * g[k])
        times_ls.append(time.perf_counter() - t0)
        ok += r.converged
    t0 = time.perf_counter()
    for k in range(n):
        cap.solve(p0 * f[k], q0 * f[k], ps0 * g[k])
    t_cap = (time.perf_counter() - t0) / n

    times_pp = []
    net.load["scaling"] = 1.0
    net.sgen["scaling"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n_pp):
            net.load["p_mw"] = p0 * f[k]
            net.load["q_mvar"] = q0 * f[k]
            net.sgen["p_mw"] = ps0 * g[k]
            t0 = time.perf_counter()
            pp.runpp(net, numba=False)
            times_pp.append(time.perf_counter() - t0)
            if k == n_pp - 1:
                r = pf.solve(p0 * f[k], q0 * f[k], ps0 * g[k])
                dv = float(np.nanmax(np.abs(r.vm_pu - net.res_bus["vm_pu"].to_numpy())))
    return dict(spec=spec, bus=len(net.bus), line=len(net.line), trafo=len(net.trafo),
                load=len(net.load), sgen=len(net.sgen), t_load=t_load, t_init=t_init,
                ls_ms=1e3 * float(np.median(times_ls)), ls_p95_ms=1e3 * float(np.percentile(times_ls, 95)),
                pp_ms=1e3 * float(np.median(times_pp)), cap_us=1e6 * t_cap, conv=ok, n=n,
                n_pp=n_pp, dv=dv)


def table(rows: list[dict]) -> str:
    head = ("| network | buses | lines | trafos | loads | sgens | load net (s) | init (ms) "
            "| lightsim2grid median (ms) | p95 (ms) | pandapower.runpp median (ms) | speed-up "
            "| capacity_only (µs) | converged | max |Δvm| (pu) |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [
        f"| `{r['spec']}` | {r['bus']} | {r['line']} | {r['trafo']} | {r['load']} | {r['sgen']} "
        f"| {r['t_load']:.2f} | {1e3 * r['t_init']:.0f} | {r['ls_ms']:.3f} | {r['ls_p95_ms']:.3f} "
        f"| {r['pp_ms']:.1f} | {r['pp_ms'] / r['ls_ms']:.0f}× | {r['cap_us']:.1f} "
        f"| {r['conv']}/{r['n']} | {r['dv']:.1e} |"
        for r in rows]
    return head + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="snapshots per network (lightsim2grid)")
    ap.add_argument("--n-pp", type=int, default=None,
                    help="snapshots for pandapower.runpp (default: same as --n)")
    ap.add_argument("--networks", nargs="*", default=NETWORKS)
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    a = ap.parse_args()
    rows = []
    for spec in a.networks:
        rows.append(bench_one(spec, a.n, a.n_pp or a.n))
        print(f"done {spec}", flush=True)
    md = table(rows)
    print(md)
    if a.out:
        import lightsim2grid
        import pandapower

        machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}, pandapower {pandapower.__version__} "
                   f"(numba off), lightsim2grid {lightsim2grid.__version__}")
        with open(a.out, "w") as fh:
            fh.write(f"### Feeder power flow per step ({dt.date.today().isoformat()})\n\n"
                     f"Machine: {machine}. N = {a.n} random load snapshots per network "
                     f"(pandapower: {a.n_pp or a.n}); command: "
                     f"`.venv/bin/python bench/bench_feeder.py --out {a.out}`.\n\n")
            fh.write(md)


if __name__ == "__main__":
    main()
