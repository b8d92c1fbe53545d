"""Feeder power flow: per-step time of v2gsim's lightsim2grid `PowerFlow` vs `pandapower.runpp`,
and agreement with runpp over every network v2gsim lists.

Speed (default): for each network, N random load snapshots (each load scaled by U(0, 1.5), sgens
by U(0, 1)) are solved one after the other, as the simulator does step by step (lightsim2grid
warm-starts from the previous solution; runpp with ``calculate_voltage_angles=True, init="dc"``
as in the agreement check, and numba=False since numba is not installed). ``--before FILE`` also times the `PowerFlow` of another version of
``v2gsim/physics/grid.py`` (e.g. ``git show <commit>:v2gsim/physics/grid.py > /tmp/grid_old.py``)
on the same snapshots, interleaved solve by solve with the current one, so both see the same
machine load.

Agreement (``--agreement``): for each network (default: the built-ins and every SimBench code
but the 100+ MB ``complete_data`` ones), whether it is supported (validation's SimBench code rule
and the net's own check must agree), then ``--n`` random snapshots (tests/pf_reference.py: loads
U(0, 1.5), EV-like extras, sgens U(0, 1)) solved in a row and each compared with
``runpp(algorithm="nr", calculate_voltage_angles=True, init="dc")``: the worst abs Δvm, abs Δva,
abs Δloading of lines and trafos, relative loss difference, NaN-pattern agreement.

    .venv/bin/python bench/bench_feeder.py [--n 200] [--out bench/feeder_results.md] [--before F]
    .venv/bin/python bench/bench_feeder.py --agreement [--n 3] [--out bench/feeder_agreement.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = [
    "case33bw",
    "cigre_lv",
    "simbench:1-LV-semiurb4--0-sw",
    "simbench:1-MV-urban--0-sw",
    "simbench:1-MV-semiurb--0-sw",
    "mv_oberrhein",
    "simbench:1-HV-mixed--0-sw",
    "simbench:1-MVLV-urban-all-0-sw",
]


def _power_flow_class(grid_module: str):
    spec = importlib.util.spec_from_file_location("grid_before", grid_module)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod.PowerFlow


def bench_one(spec: str, n: int, n_pp: int, before=None, seed: int = 0) -> dict:
    import pandapower as pp

    from v2gsim.physics.grid import CapacityOnly, PowerFlow
    from v2gsim.physics.networks import load_network

    t0 = time.perf_counter()
    net = load_network(spec)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pf = PowerFlow(net)
    t_init = time.perf_counter() - t0
    pf_before = before(net) if before else None
    cap = CapacityOnly(net)
    rng = np.random.default_rng(seed)
    sc = net.load["scaling"].to_numpy(float)
    p0, q0 = net.load["p_mw"].to_numpy(float) * sc, net.load["q_mvar"].to_numpy(float) * sc
    ps0 = net.sgen["p_mw"].to_numpy(float) * net.sgen["scaling"].to_numpy(float)
    f = rng.uniform(0.0, 1.5, (n, len(p0)))
    g = rng.uniform(0.0, 1.0, (n, len(ps0)))

    times_ls, times_before, ok, dv = [], [], 0, 0.0
    for k in range(n):
        t0 = time.perf_counter()
        r = pf.solve(p0 * f[k], q0 * f[k], ps0 * g[k])
        times_ls.append(time.perf_counter() - t0)
        ok += r.converged
        if pf_before:
            t0 = time.perf_counter()
            pf_before.solve(p0 * f[k], q0 * f[k], ps0 * g[k])
            times_before.append(time.perf_counter() - t0)
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
            pp.runpp(net, numba=False, calculate_voltage_angles=True, init="dc")
            times_pp.append(time.perf_counter() - t0)
            if k == n_pp - 1:
                r = pf.solve(p0 * f[k], q0 * f[k], ps0 * g[k])
                dv = float(np.nanmax(np.abs(r.vm_pu - net.res_bus["vm_pu"].to_numpy())))
    return dict(spec=spec, bus=len(net.bus), line=len(net.line), trafo=len(net.trafo),
                load=len(net.load), sgen=len(net.sgen), t_load=t_load, t_init=t_init,
                ls_ms=1e3 * float(np.median(times_ls)), ls_p95_ms=1e3 * float(np.percentile(times_ls, 95)),
                pp_ms=1e3 * float(np.median(times_pp)), cap_us=1e6 * t_cap, conv=ok, n=n,
                n_pp=n_pp, dv=dv, before_ms=1e3 * float(np.median(times_before)) if times_before else None)


def table(rows: list[dict]) -> str:
    before = rows and rows[0]["before_ms"] is not None
    head = ("| network | buses | lines | trafos | loads | sgens | load net (s) | init (ms) "
            "| lightsim2grid median (ms) | p95 (ms) " + ("| before (ms) " if before else "")
            + "| pandapower.runpp median (ms) | speed-up | capacity_only (µs) | converged "
            "| max abs Δvm (pu) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            + ("---:|" if before else "") + "---:|---:|---:|---:|---:|\n")
    lines = [
        f"| `{r['spec']}` | {r['bus']} | {r['line']} | {r['trafo']} | {r['load']} | {r['sgen']} "
        f"| {r['t_load']:.2f} | {1e3 * r['t_init']:.0f} | {r['ls_ms']:.3f} | {r['ls_p95_ms']:.3f} "
        + (f"| {r['before_ms']:.3f} " if before else "")
        + f"| {r['pp_ms']:.1f} | {r['pp_ms'] / r['ls_ms']:.0f}× | {r['cap_us']:.1f} "
        f"| {r['conv']}/{r['n']} | {r['dv']:.1e} |"
        for r in rows]
    return head + "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- agreement


def all_networks() -> list[str]:
    import simbench as sb

    from v2gsim.physics.networks import known_network_names

    return known_network_names() + ["simbench:" + c for c in sb.collect_all_simbench_codes()
                                    if "complete_data" not in c]


def agree_one(spec: str, n: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from pf_reference import check_network

    from v2gsim.physics.grid import PowerFlow, unsupported_reason
    from v2gsim.physics.networks import load_network, simbench_unsupported_reason

    t0 = time.perf_counter()
    net = load_network(spec)
    net.pop("profiles", None)
    row = dict(spec=spec, bus=len(net.bus), ext_grid=int(net.ext_grid["in_service"].sum()),
               gen=len(net.gen), t_load=time.perf_counter() - t0)
    reason = unsupported_reason(net)
    by_code = simbench_unsupported_reason(spec.removeprefix("simbench:")) if spec.startswith("simbench:") else reason
    row["reason"] = reason
    row["rule_agrees"] = (by_code is None) == (reason is None)
    if reason:
        return row
    pf = PowerFlow(net)
    row["unsolved"] = pf.n_bus_unsolved
    # the extra-high-voltage grids have no runpp solution for most random snapshots: those are
    # compared near their nominal loads and generation instead
    for load_range in ((0.0, 1.5), (0.9, 1.1)):
        try:
            row.update(check_network(net, n, zlib.crc32(spec.encode()), pf=pf, load_range=load_range,
                                     sgen_range=(0.0, 1.0) if load_range[0] == 0 else load_range))
            row["load_range"] = load_range
            row.pop("error", None)
            break
        except Exception as exc:  # runpp itself not converging
            row["error"] = f"{type(exc).__name__}: {exc}"[:120]
    return row


def agreement_table(rows: list[dict]) -> str:
    head = ("| network | buses | ext_grids | gens | supported | unsolved buses | max abs Δvm (pu) "
            "| max abs Δva (°) | max abs Δloading line (%) | trafo (%) | losses (rel.) | NaN pattern |\n"
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
    out = []
    for r in rows:
        rule = "" if r.get("rule_agrees", True) else " **(code rule disagrees)**"
        if r.get("reason"):
            out.append(f"| `{r['spec']}` | {r['bus']} | {r['ext_grid']} | {r['gen']} | no: {r['reason']}{rule} "
                       "| | | | | | | |")
        elif "error" in r:
            out.append(f"| `{r['spec']}` | {r['bus']} | {r['ext_grid']} | {r['gen']} | yes{rule} | {r['unsolved']} "
                       f"| {r['error']} | | | | | |")
        else:
            nan_ok = "same" if max(r["vm_pu"], r["line_pct"], r["trafo_pct"]) < np.inf \
                and r["n_bus_unsolved"] == 0 else "**differs**"
            near = "" if tuple(r["load_range"]) == (0.0, 1.5) else " (injections ±10 %)"
            out.append(f"| `{r['spec']}` | {r['bus']} | {r['ext_grid']} | {r['gen']} | yes{rule} | {r['unsolved']} "
                       f"| {r['vm_pu']:.1e}{near} | {r['va_degree']:.1e} | {r['line_pct']:.1e} | {r['trafo_pct']:.1e} "
                       f"| {r['losses_rel']:.1e} | {nan_ok} |")
    return head + "\n".join(out) + "\n"


def _machine() -> str:
    import lightsim2grid
    import pandapower

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, pandapower {pandapower.__version__} "
            f"(numba off), lightsim2grid {lightsim2grid.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agreement", action="store_true", help="agreement with runpp instead of speed")
    ap.add_argument("--n", type=int, default=None,
                    help="snapshots per network (default 200 for speed, 3 for agreement)")
    ap.add_argument("--n-pp", type=int, default=None,
                    help="speed: snapshots for pandapower.runpp (default: same as --n)")
    ap.add_argument("--networks", nargs="*", default=None)
    ap.add_argument("--before", default=None, help="speed: also time this grid.py's PowerFlow")
    ap.add_argument("--jsonl", default=None, help="agreement: append each row here as it is done")
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    a = ap.parse_args()
    rows = []
    if a.agreement:
        n = a.n or 3
        for spec in a.networks or all_networks():
            row = agree_one(spec, n)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items()}, default=str), flush=True)
            if a.jsonl:
                with open(a.jsonl, "a") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")
        md = agreement_table(rows)
        title = f"### Power flow agreement with pandapower.runpp ({dt.date.today().isoformat()})"
        method = (f"{n} random snapshots per network (tests/pf_reference.py), solved in a row; "
                  f"command: `.venv/bin/python bench/bench_feeder.py --agreement --out {a.out}`.")
    else:
        n = a.n or 200
        before = _power_flow_class(a.before) if a.before else None
        for spec in a.networks or NETWORKS:
            rows.append(bench_one(spec, n, a.n_pp or n, before))
            print(f"done {spec}", flush=True)
        md = table(rows)
        title = f"### Feeder power flow per step ({dt.date.today().isoformat()})"
        method = (f"N = {n} random load snapshots per network (pandapower: {a.n_pp or n}); command: "
                  f"`.venv/bin/python bench/bench_feeder.py --out {a.out}`"
                  + (f" with `--before {a.before}`" if a.before else "") + ".")
    print(md)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(f"{title}\n\nMachine: {_machine()}. {method}\n\n{md}")


if __name__ == "__main__":
    main()
