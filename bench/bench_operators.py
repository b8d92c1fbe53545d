"""Per-operator results of every bundled scenario, with its like-for-like reference, as the
Markdown tables of docs/business_models.md ("Per-operator results").

    .venv/bin/python bench/bench_operators.py > bench/operators_results.md

One week where a run takes minutes at most; the scenario's own horizon where it is shorter;
city_feeder at one day and wear_v2g_fleet at 30 days (stated in each heading).
"""

from __future__ import annotations

import sys
import time

import v2gsim

HORIZON_DAYS = {  # None: the file's own horizon
    "baseline_uncontrolled": 7, "battery_swapping": 7, "centralized_hub": 7, "distributed_community": 7, "mixed_city": 7,
    "depot_two_part": 7, "smoke": None, "lv_feeder": None, "city_feeder": 1, "wear_v2g_fleet": 30,
    "pilots/nio_gen3_station": None, "pilots/shenzhen_2024_05_15": None, "pilots/jiangsu_2024_08": None,
    "pilots/lianhua_hill": None, "wear_compensation_off": 7, "wear_compensation_on": 7, "standards_fragmented": 7,
    "standards_unified": 7,
}


def fmt(x: float, digits: int = 0) -> str:
    return "n/a" if x != x else f"{round(x, digits) + 0.0:,.{digits}f}"  # + 0.0: no "-0"


def section(name: str) -> str:
    days = HORIZON_DAYS[name]
    sc = v2gsim.load_scenario(name, {"time.horizon_days": days} if days else {})
    t0 = time.perf_counter()
    r = v2gsim.run(sc)
    wall = time.perf_counter() - t0
    k = r.kpis
    ref = k.get("reference_peak_kw", float("nan"))
    head = (f"### {name} ({sc.time.horizon_days:g} days from {sc.time.start:%Y-%m-%d}, seed {sc.seed})\n\n"
            f"Peak {fmt(k['peak_load_kw'])} kW against {fmt(ref)} kW for its reference ({r.metadata.get('reference', 'none')}); "
            f"reduction {fmt(k.get('peak_reduction_pct', float('nan')), 1)} %. Run and reference: {wall:.0f} s.\n\n")
    rows = ["| operator | drawn kWh | fed back kWh | load at feeder peak kW (share %) | reference: load at its peak kW (share %) "
            "| own peak kW | V2G asked / delivered in requests kWh | cost CNY | revenue CNY | net CNY | own battery wear CNY "
            "| drivers served | unmet kWh |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ref_ops = r.extra["reference_operators"].set_index("operator_id") if "reference_operators" in r.extra else None
    for _, o in r.extra["operators"].iterrows():
        ro = ref_ops.loc[o["operator_id"]] if ref_ops is not None and o["operator_id"] in ref_ops.index else None
        at_ref = f"{fmt(ro['feeder_peak_load_kw'])} ({fmt(ro['feeder_peak_share_pct'], 1)})" if ro is not None else "n/a"
        asked = "as much as possible" if o["v2g_requested_kwh"] != o["v2g_requested_kwh"] else fmt(o["v2g_requested_kwh"])
        req = f"{asked} / {fmt(o['v2g_delivered_in_requests_kwh'])} ({int(o['v2g_requests'])})" if o["v2g_requests"] else "no requests"
        rows.append(f"| {o['operator_id']} | {fmt(o['energy_drawn_kwh'])} | {fmt(o['energy_fed_back_kwh'])} | "
                    f"{fmt(o['feeder_peak_load_kw'])} ({fmt(o['feeder_peak_share_pct'], 1)}) | {at_ref} | {fmt(o['own_peak_kw'])} | {req} | "
                    f"{fmt(o['cost_cny'])} | {fmt(o['revenue_cny'])} | {fmt(o['net_cny'])} | {fmt(o['wear_cny'])} | "
                    f"{fmt(o['drivers_served'])} | {fmt(o['unmet_energy_kwh'], 1)} |")
    return head + "\n".join(rows) + "\n"


def main() -> int:
    names = sys.argv[1:] or list(HORIZON_DAYS)
    for name in names:
        print(section(name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
