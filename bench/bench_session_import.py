"""Time to read and check a session CSV (``population.mobility.read_sessions``) of N rows,
with naive times and with UTC offsets (converted to the scenario's zone).

    python bench/bench_session_import.py [N]

Prints a markdown table; best of three per case.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from v2gsim.population.mobility import read_sessions


def _write(path: Path, n: int, offsets: bool) -> None:
    rng = np.random.default_rng(1)
    arrival = pd.Timestamp("2026-07-06") + pd.to_timedelta(rng.integers(0, 7 * 1440, n), unit="min")
    departure = arrival + pd.to_timedelta(rng.integers(30, 600, n), unit="min")
    fmt = "%Y-%m-%dT%H:%M+08:00" if offsets else "%Y-%m-%d %H:%M"
    pd.DataFrame({"arrival": arrival.strftime(fmt), "departure": departure.strftime(fmt), "energy_kwh": rng.uniform(1, 40, n).round(2),
                  "site_id": "lot"}).to_csv(path, index=False)


def main(n: int) -> None:
    print("| rows | times | read and check (s) |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for offsets in (False, True):
            path = Path(tmp) / "sessions.csv"
            _write(path, n, offsets)
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                table, problems = read_sessions(path, ["lot"], None, "mobility_sessions.csv", "Asia/Shanghai")
                best = min(best, time.perf_counter() - t0)
                assert not problems and len(table.frame) == n
            print(f"| {n:,} | {'with UTC offsets' if offsets else 'naive (local)'} | {best:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
