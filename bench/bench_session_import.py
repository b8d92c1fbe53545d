"""Time to read and check a session file (``population.mobility.read_sessions``) of N rows:
the normalised CSV with naive times and with UTC offsets (converted to the scenario's zone),
ACN-Data JSON as its API publishes it (RFC 1123 GMT times), and ElaadNL's open transaction CSV
as published (semicolons, decimal commas, d/m/Y UTC times).

    python bench/bench_session_import.py [N]

Prints a markdown table; best of three per case.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from v2gsim.population.mobility import read_sessions


def _times(n: int):
    rng = np.random.default_rng(1)
    arrival = pd.Timestamp("2026-07-06") + pd.to_timedelta(rng.integers(0, 7 * 1440, n), unit="min")
    departure = arrival + pd.to_timedelta(rng.integers(30, 600, n), unit="min")
    return rng, arrival, departure


def _csv(path: Path, n: int, offsets: bool) -> None:
    rng, arrival, departure = _times(n)
    fmt = "%Y-%m-%dT%H:%M+08:00" if offsets else "%Y-%m-%d %H:%M"
    pd.DataFrame({"arrival": arrival.strftime(fmt), "departure": departure.strftime(fmt), "energy_kwh": rng.uniform(1, 40, n).round(2),
                  "site_id": "lot"}).to_csv(path, index=False)


def _acn(path: Path, n: int) -> None:
    rng, arrival, departure = _times(n)
    fmt = "%a, %d %b %Y %H:%M:%S GMT"
    items = [{"_id": f"{i:024x}", "clusterID": "0039", "connectionTime": a, "disconnectTime": d, "doneChargingTime": None,
              "kWhDelivered": float(e), "sessionID": f"s{i}", "siteID": "0002", "spaceID": "CA-317", "stationID": "2-39-78-362",
              "timezone": "America/Los_Angeles", "userID": None, "userInputs": None}
             for i, (a, d, e) in enumerate(zip(arrival.strftime(fmt), departure.strftime(fmt), rng.uniform(1, 40, n).round(2)))]
    path.write_text(json.dumps({"_meta": {"total": n}, "_items": items}))


def _elaad(path: Path, n: int) -> None:
    rng, arrival, departure = _times(n)
    fmt = "%d/%m/%Y %H:%M"
    df = pd.DataFrame({"TransactionId": np.arange(n), "ChargePoint": "5ab468315a1f42feb6d0a87307593352", "Connector": 1,
                       "UTCTransactionStart": arrival.strftime(fmt), "UTCTransactionStop": departure.strftime(fmt), "StartCard": "c1",
                       "ConnectedTime": ((departure - arrival) / pd.Timedelta(hours=1)).round(2), "ChargeTime": 1.5,
                       "TotalEnergy": rng.uniform(1, 40, n).round(2), "MaxPower": 7.2})
    df.to_csv(path, sep=";", decimal=",", index=False)


def main(n: int) -> None:
    print("| rows | file | read and check (s) |\n|---|---|---|")
    cases = [("csv, naive (local)", "s.csv", lambda p: _csv(p, n, False), {}),
             ("csv, with UTC offsets", "s.csv", lambda p: _csv(p, n, True), {}),
             ("ACN-Data JSON (RFC 1123 GMT)", "s.json", lambda p: _acn(p, n), {"site_map": {"2-39-78-362": "lot"}}),
             ("ElaadNL CSV (; d/m/Y UTC)", "t.csv", lambda p: _elaad(p, n), {"site_map": {"5ab468315a1f42feb6d0a87307593352": "lot"}})]
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, write, kw in cases:
            path = Path(tmp) / name
            write(path)
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                table, problems = read_sessions(path, ["lot"], None, "mobility_sessions.file", "Asia/Shanghai", **kw)
                best = min(best, time.perf_counter() - t0)
                assert not problems and len(table.frame) == n, problems[:3]
            print(f"| {n:,} | {label} | {best:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
