"""Public DC utilisation with and without drivers leaving full cars (v2gsim.population.idle).

    python bench/idle_utilisation.py mixed_city city_feeder [--days N] [--set key=value ...]

For each scenario, runs it with its public sites' own settings (the rule on at non-V2G DC sites by
default) and with ``leave_when_done: false`` at every public site (the engine before the rule),
and prints per public DC site: guns, mean share of guns occupied, energy utilisation (kWh
delivered over guns x power x hours), and the served / queued / cancelled trips.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "golden"))


def run(name: str, overrides: dict) -> dict:
    import v2gsim
    from v2gsim.model import V2GModel
    from v2gsim.results import Results

    sc = v2gsim.load_scenario(name, overrides)
    m = V2GModel(sc)
    dc = np.flatnonzero(m.site_is_public & m.site_is_dc)
    occ = np.zeros(dc.size)
    rows = 0
    for s in range(m.n_clock):
        m.step()
        if s >= m.n_warmup:
            occ += m.site_occupied[dc]
            rows += 1
    m.finish()
    res = Results.from_recording(*m.recording())
    hours = rows * m.dt_h
    e_kwh = np.clip(m.recorder.site_p_kw[:, dc], 0.0, None).sum(axis=0) * m.dt_h
    k = res.kpis
    return {"sites": [m.sites.ids[i] for i in dc], "guns": m.site_ports[dc], "occupied": occ / rows / m.site_ports[dc],
            "energy_util": e_kwh / (m.site_ports[dc] * m.site_p_max_kw[dc] * hours),
            **{key: k.get(key, float("nan")) for key in ("departures", "trips_cancelled", "stranded_trips", "queued_at_public",
                                                         "queue_left", "queue_wait_min", "detours", "unplugged_when_done", "ev_peak_kw")}}


def main() -> int:
    import make_golden
    import v2gsim

    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="+")
    ap.add_argument("--days", type=float, default=None, help="horizon (default: the golden one)")
    ap.add_argument("--set", action="append", default=[], help="key=value overrides (YAML values) on top of the golden ones")
    args = ap.parse_args()
    for name in args.names:
        base = dict(make_golden.OVERRIDES[name])
        if args.days:
            base["time.horizon_days"] = args.days
        for kv in args.set:
            key, value = kv.split("=", 1)
            base[key] = yaml.safe_load(value)
        sc = v2gsim.load_scenario(name, base)
        off = {f"sites.{i}.leave_when_done": False for i, s in enumerate(sc.sites) if s.kind == "public"}
        for label, extra in (("before (no rule)", off), ("after (rule)", {})):
            t0 = time.perf_counter()
            r = run(name, {**base, **extra})
            print(f"{name} {label} [{time.perf_counter() - t0:.0f} s]")
            for sid, g, o, u in zip(r["sites"], r["guns"], r["occupied"], r["energy_util"]):
                print(f"  {sid}: {g} guns, occupied {100 * o:.1f} %, energy utilisation {100 * u:.1f} %")
            print("  " + ", ".join(f"{k} {r[k]:g}" for k in r if k not in ("sites", "guns", "occupied", "energy_util")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
