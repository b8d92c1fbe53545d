"""Record (or check) the golden KPIs and tables of every bundled scenario at a short horizon.

    python tests/golden/make_golden.py          # rewrite tests/golden/<scenario>/
    python tests/golden/make_golden.py --diff   # print what differs from the stored set

The restructuring issues promise "the same numbers": tests/test_golden.py compares every
scenario's fresh run with what is stored here. A deliberate change of numbers (a bug fix)
re-records the set in the same commit and names the fix in its message.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
# 2 recorded days (1 for the year-long wear scenario at 60-min steps), cities scaled down so the
# whole set runs in about a minute; every other setting is the bundled file's own.
OVERRIDES: dict[str, dict] = {
    "baseline_uncontrolled": {"time.horizon_days": 2},
    "battery_swapping": {"time.horizon_days": 2},
    "centralized_hub": {"time.horizon_days": 2},
    "city_feeder": {"time.horizon_days": 1, "population.0.count": 600, "population.1.count": 340, "population.2.count": 60},
    "depot_two_part": {"time.horizon_days": 2},
    "depot_regulation": {"time.horizon_days": 2},
    "distributed_community": {"time.horizon_days": 2},
    "lv_feeder": {"time.horizon_days": 2},
    "mixed_city": {"time.horizon_days": 3},
    "smoke": {},
    "wear_v2g_fleet": {"time.horizon_days": 30},
    "wear_compensation_off": {"time.horizon_days": 3},
    "wear_compensation_on": {"time.horizon_days": 3},
    "pilots/nio_gen3_station": {},
    "pilots/shenzhen_2024_05_15": {},
    "pilots/jiangsu_2024_08": {},
    "standards_fragmented": {"time.horizon_days": 2},
    "standards_unified": {"time.horizon_days": 2},
    "pilots/lianhua_hill": {},
}
# wall-clock figures are not results
VOLATILE_KPIS = ("solve_time_s", "wall_time_s")
TABLES = ("system", "vehicles")


def run(name: str):
    import v2gsim

    sc = v2gsim.load_scenario(name, OVERRIDES[name])
    return v2gsim.run(sc)


def record(name: str, res) -> dict:
    kpis = {k: v for k, v in res.kpis.items() if not any(k.endswith(s) for s in VOLATILE_KPIS)}
    return {"kpis": kpis, **{t: getattr(res, t) for t in TABLES}}


def save(name: str, rec: dict) -> None:
    d = HERE / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "kpis.json").write_text(json.dumps(rec["kpis"], indent=1, sort_keys=True, allow_nan=True) + "\n")
    for t in TABLES:
        rec[t].to_parquet(d / f"{t}.parquet")


def load(name: str) -> dict:
    d = HERE / name
    return {"kpis": json.loads((d / "kpis.json").read_text()), **{t: pd.read_parquet(d / f"{t}.parquet") for t in TABLES}}


def differences(new: dict, old: dict, rtol: float = 1e-9, atol: float = 1e-9) -> list[str]:
    out = []
    for k in sorted(set(old["kpis"]) | set(new["kpis"])):
        a, b = old["kpis"].get(k), new["kpis"].get(k)
        if a is None or b is None:
            out.append(f"kpi {k}: {'new' if a is None else 'gone'}")
        elif not (math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or (math.isnan(a) and math.isnan(b))):
            out.append(f"kpi {k}: {a!r} -> {b!r}")
    for t in TABLES:
        a, b = old[t], new[t]
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            out.append(f"table {t}: shape or columns differ ({a.shape} {list(a.columns)} -> {b.shape} {list(b.columns)})")
            continue
        for c in a.columns:
            x, y = a[c], b[c]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                if not np.allclose(x.to_numpy(float), y.to_numpy(float), rtol=rtol, atol=atol, equal_nan=True):
                    i = int(np.argmax(~np.isclose(x.to_numpy(float), y.to_numpy(float), rtol=rtol, atol=atol, equal_nan=True)))
                    out.append(f"table {t}.{c}: first difference at row {i}: {x.iloc[i]!r} -> {y.iloc[i]!r}")
            elif not x.astype(str).equals(y.astype(str)):
                out.append(f"table {t}.{c}: values differ")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--diff", action="store_true")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    status = 0
    for name in args.names or OVERRIDES:
        rec = record(name, run(name))
        if args.diff:
            diffs = differences(rec, load(name))
            print(f"{name}: {'same' if not diffs else str(len(diffs)) + ' differences'}")
            for d in diffs[:40]:
                print("   ", d)
            status |= bool(diffs)
        else:
            save(name, rec)
            print(f"{name}: recorded")
    return status


if __name__ == "__main__":
    sys.exit(main())
