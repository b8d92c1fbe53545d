"""Fuzz the scenario loader and the run: N random mutations of the bundled scenarios.

    .venv/bin/python bench/fuzz.py --examples 5000 [--seed 1]

Prints the counts (rejected at validation, ran a day) and every failure class with one example;
the results of a full run are recorded in bench/README.md. See tests/scenario_fuzz.py for the
mutations and the contract.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hseed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import scenario_fuzz  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    counts: collections.Counter = collections.Counter()
    failures: dict[str, list[str]] = collections.defaultdict(list)
    t0 = time.perf_counter()

    @settings(max_examples=args.examples, deadline=None, database=None, phases=["generate"],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        with tempfile.TemporaryDirectory() as tmp:
            case = data.draw(scenario_fuzz.cases(Path(tmp) / "case"))
            try:
                counts[scenario_fuzz.check(case)] += 1
            except scenario_fuzz.Failure as f:
                counts["failed"] += 1
                failures[f.kind].append(f.detail)
        n = sum(counts.values())
        if n % 250 == 0:
            print(f"  {n} examples, {dict(counts)}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    hseed(args.seed)(fuzz)()
    total = sum(counts.values())
    print(f"{total} examples in {time.perf_counter() - t0:.0f} s: {counts['rejected']} rejected at validation, "
          f"{counts['ran']} ran a day, {counts['failed']} failed")
    for kind, examples in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(examples):5d}  {kind}\n         e.g. {examples[0][:300]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
