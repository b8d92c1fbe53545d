"""Measure the two centralized claims over seeds (issue 15 follow-up, order15b).

    python bench/order15b_edge.py forecast SEED [DAYS]
    python bench/order15b_edge.py ratio SEED [DAYS]

Prints one JSON line. Run with PYTHONPATH pointing at the code to measure (old or new).
"""
import json
import sys
import time

import numpy as np

import v2gsim
from v2gsim.model import V2GModel


def forecast(seed: int, days: int, kva: float = 800.0) -> dict:
    out = {}
    for on in ("true", "false"):
        sc = v2gsim.load_scenario("centralized_hub", [f"time.horizon_days={days}", f"feeder.transformer_kva={kva:g}",
                                                      f"business_models.0.feeder_forecast_in_plan={on}", f"seed={seed}"])
        res = v2gsim.run(sc, baseline=False)
        load = res.system["transformer_loading_pct"].to_numpy()
        over_kvah = float(np.maximum(load - 100.0, 0.0).sum() / 100.0 * kva * res.dt_h)
        k = res.kpis
        out[on] = {"h": k["transformer_overload_h"], "kvah": over_kvah, "max_pct": float(load.max()),
                   "trips": int(res.vehicles.trips.sum()) if "trips" in res.vehicles else None}
    return out


def ratio(seed: int, days: int, extra: tuple = ()) -> dict:
    path = "centralized_hub"
    out = {}
    for mode in ("exact", "aggregate"):
        sc = v2gsim.load_scenario(path, [f"time.horizon_days={days}", "sites.0.p_limit_kw=600", f"business_models.0.mode={mode}",
                                         "outputs.session_sample=100000", f"seed={seed}", *extra])
        res = V2GModel(sc).run()
        p = res.sites.loc[res.sites.site_id == "lianhua_hub", "p_kw"].to_numpy()
        buy = res.system["price_cny_per_kwh"].to_numpy()
        v2g = res.system["v2g_price_cny_per_kwh"].to_numpy()
        cost = (np.maximum(p, 0) @ buy - np.maximum(-p, 0) @ v2g + 0.05 * np.abs(p).sum()) * res.dt_h
        unmet = float(res.sessions[res.sessions.site_id == "lianhua_hub"].unmet_kwh.sum())
        out[mode] = {"cost": float(cost), "unmet": unmet, "e_in_kwh": float(np.maximum(p, 0).sum() * res.dt_h),
                     "sessions": int((res.sessions.site_id == "lianhua_hub").sum())}
    out["ratio"] = out["aggregate"]["cost"] / out["exact"]["cost"]
    out["unmet_ratio"] = out["aggregate"]["unmet"] / max(out["exact"]["unmet"], 1e-9)
    return out


if __name__ == "__main__":
    what, seed = sys.argv[1], int(sys.argv[2])
    days = int(sys.argv[3]) if len(sys.argv) > 3 else (2 if what == "forecast" else 3)
    t = time.time()
    extra = tuple(sys.argv[4:])  # more overrides (ratio only), e.g. a perturbation of the plan's wear price
    r = forecast(seed, days) if what == "forecast" else ratio(seed, days, extra)
    print(json.dumps({"what": what, "seed": seed, "extra": list(extra), "days": days, "code": v2gsim.__file__, "s": round(time.time() - t, 1), **r}))
