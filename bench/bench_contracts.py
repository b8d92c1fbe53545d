"""Run-time cost of contracts (v2gsim.market.contracts) and of the grid operator's baseline
settlement (v2gsim.market.events) on a distributed community: the same scenario with and without
a contract carrying every per-step and monthly clause (share, wear compensation, minimum
guarantee) at neutral values plus a daily evening peak cut settled on the aggregator's baseline
(metered every step), wear model off, alternating runs.

    .venv/bin/python bench/bench_contracts.py [n_vehicles] [days] [repeats]
"""

from __future__ import annotations

import os
import sys
import time

import v2gsim

# every clause switched on, at values that leave the drivers' choices as without a contract
# (share 1, no compensation, a guarantee below the expected V2G income): the difference is the
# contracts' bookkeeping alone, not a change of behaviour
CONTRACT = {"drivers": [{"operator": "distributed", "v2g_revenue_share": 1.0, "wear_compensation_cny_per_kwh": 0.0,
                         "min_guarantee_cny_per_month": 1.0}]}


# a daily peak cut the grid operator settles on the aggregator's baseline: it meters the operator
# every step and settles each window; no built-in strategy plans for it, so the drivers' choices
# stay as without it and the difference is the grid operator's bookkeeping
PEAK_CUT = {"requests": [{"id": "evening_cut", "kind": "peak_cut", "start": "2026-07-06T19:00", "hours": 2, "p_kw": 1.0,
                          "daily": True, "to": ["distributed"], "price_cny_per_kwh": 1.0}]}


def scenario(n: int, days: int, contracts: bool):
    over = {"wear.model": "off", "business_models.0.wear_cny_per_kwh": 0.1, "time.horizon_days": days,
            "population.0.count": int(n * 0.75), "population.1.count": n - int(n * 0.75),
            "sites.1.chargers": max(4, n // 100), "feeder.transformer_kva": 630 * n / 400, "feeder.households": int(320 * n / 400),
            "outputs.session_sample": 0}
    if contracts:
        over["contracts"] = CONTRACT
        over["grid_operator"] = PEAK_CUT
    return v2gsim.load_scenario("wear_compensation_off", over)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    times = {False: [], True: []}
    ledger_rows = {}
    for _ in range(reps):
        for on in (False, True):
            sc = scenario(n, days, on)
            t0, c0 = time.perf_counter(), time.process_time()
            res = v2gsim.run(sc, baseline=False)
            times[on].append(time.perf_counter() - t0)
            ledger_rows[on] = (len(res.ledger), res.ledger.memory_usage(deep=True).sum() / 1e6)
            # every run, with its CPU time and the load: on a shared machine a best-of alone hides the noise
            print(f"run {'on ' if on else 'off'}: wall {times[on][-1]:.1f} s, CPU {time.process_time() - c0:.1f} s, "
                  f"ledger {ledger_rows[on][0]} rows / {ledger_rows[on][1]:.2f} MB, load average {os.getloadavg()[0]:.1f}",
                  flush=True)
    off, on = min(times[False]), min(times[True])
    print(f"{n} vehicles x {days} days: off {off:.1f} s, on {on:.1f} s ({(on / off - 1) * 100:+.1f} %, best of {reps}); "
          f"ledger off {ledger_rows[False][0]} rows / {ledger_rows[False][1]:.2f} MB, on {ledger_rows[True][0]} rows / {ledger_rows[True][1]:.2f} MB")


if __name__ == "__main__":
    main()
