"""Solve time and quality of exact site plans (``dispatch.plan_exact``), what an exact site re-plan
of the centralized strategy solves.

Usage:
    python bench/bench_exact_plan.py                     # 10 / 25 / 50 vehicles x 96 steps, 3 seeds
    python bench/bench_exact_plan.py --time-limit 2      # another per-plan time limit
    python bench/bench_exact_plan.py --dispatch old_dispatch.py --wall 120
        # another version of v2gsim/strategies/dispatch.py (e.g. from `git show <rev>:<path>`; it
        # imports only numpy and scipy); code without a time limit: stop a plan after 120 s

Sites: every vehicle plugged from step 0 (a re-plan sees the vehicles plugged now), a quarter of
them leaving at the same step, half bidirectional, 30-60 kW guns, the site limit at 40 % of the
guns' power both ways, 15-minute steps over 24 h; Guangdong TOU purchase prices (0.247 / 0.65 /
1.105 CNY/kWh) with either the Guangdong V2G price (0.697 x purchase: charging and discharging at
once never pays) or a flat V2G price of 0.6 CNY/kWh (above the valley price: the LP would charge
and discharge a vehicle at once, so the plan needs the MIP). Each plan runs in its own process,
stopped after ``--wall`` seconds (for code whose MIP has no time limit).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import multiprocessing as mp
import sys
import time

import numpy as np

from v2gsim.strategies import dispatch as D
from v2gsim.strategies.dispatch import check_plan


def site_problem(seed: int, n: int, v2g: str, T: int = 96, dt: float = 0.25) -> D.DispatchProblem:
    rng = np.random.default_rng(seed)
    dep = rng.integers(T // 4, T + 8, n)
    dep[: n // 4] = T // 2  # a quarter leave together
    cap = rng.choice([44.9, 52.5, 60.0], n)
    e0 = cap * rng.uniform(0.15, 0.7, n)
    p = rng.choice([30.0, 60.0], n)
    t_h = np.arange(T) * dt
    buy = np.where(t_h < 8, 0.247, np.where((t_h >= 10) & (t_h < 12) | (t_h >= 14) & (t_h < 19), 1.105, 0.65))
    price_v2g = 0.697 * buy if v2g == "tou" else np.full(T, 0.6)
    return D.DispatchProblem(
        dt_h=dt, price_buy_cny_per_kwh=buy, price_v2g_cny_per_kwh=price_v2g, arrival_step=np.zeros(n, np.int64),
        departure_step=dep, e0_kwh=e0, e_cap_kwh=cap, e_min_kwh=0.2 * cap, e_need_kwh=np.minimum(cap, 0.9 * cap),
        p_ch_max_kw=p, p_dis_max_kw=np.where(rng.random(n) < 0.5, p, 0.0), eta_ch=0.95, eta_dis=0.95,
        wear_cny_per_kwh=0.05, p_site_max_kw=0.4 * p.sum(), p_site_min_kw=-0.4 * p.sum())


def _load(path: str):
    spec = importlib.util.spec_from_file_location("dispatch_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _one(args, q) -> None:
    global D
    seed, n, v2g, limit, path = args
    if path:
        D = _load(path)
    prob = site_problem(seed, n, v2g)
    D.prepare_solver()
    kw = {"time_limit_s": limit} if "time_limit_s" in inspect.signature(D.plan_exact).parameters else {}
    t0 = time.perf_counter()
    plan = D.plan_exact(prob, **kw)
    wall = time.perf_counter() - t0
    problems = check_plan(prob, plan)  # this version's check, whichever version planned
    bound = getattr(plan, "objective_bound_cny", float("nan"))
    q.put((wall, plan.status, plan.n_binary_steps, plan.objective_cny, bound, len(problems)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=D.__dict__.get("EXACT_TIME_LIMIT_S", 5.0))
    ap.add_argument("--wall", type=float, default=300.0, help="stop a plan after this long, s")
    ap.add_argument("--dispatch", help="plan with this dispatch.py instead of v2gsim's")
    args = ap.parse_args()
    ctx = mp.get_context("fork")
    print("| V2G price | vehicles | seed | plan s | status | binaries | objective CNY | gap to bound | limits broken |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v2g in ("tou", "flat"):
        for n in args.sizes:
            for seed in range(args.seeds):
                q = ctx.Queue()
                proc = ctx.Process(target=_one, args=((seed, n, v2g, args.time_limit, args.dispatch), q))
                proc.start()
                proc.join(args.wall)
                label = "Guangdong (0.697 x buy)" if v2g == "tou" else "flat 0.6"
                if proc.is_alive():
                    proc.kill()
                    proc.join()
                    print(f"| {label} | {n} | {seed} | > {args.wall:.0f} (stopped) | | | | | |", flush=True)
                    continue
                if proc.exitcode != 0:
                    print(f"| {label} | {n} | {seed} | failed (exit code {proc.exitcode}) | | | | | |", flush=True)
                    continue
                wall, status, nb, obj, bound, broken = q.get()
                gap = (obj - bound) / max(abs(obj), 1e-9) if np.isfinite(bound) else float("nan")
                print(f"| {label} | {n} | {seed} | {wall:.2f} | {status} | {nb} | {obj:,.2f} | {gap:.2%} | {broken} |",
                      flush=True)


if __name__ == "__main__":
    main()
