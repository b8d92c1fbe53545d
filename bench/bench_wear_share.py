"""Share of run time spent in the wear phase, measured inside one run (robust to background load).

Wraps FleetWear's phase work (begin, after_physics, end_step incl. the period updates, finish) with
timers and reports wear time / (run time - wear time): the slowdown wear adds to the same run.

    python bench/bench_wear_share.py [--n 100000] [--days 60]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=60)
    args = ap.parse_args()
    from bench_core import scenario_dict

    from v2gsim.model import V2GModel
    from v2gsim.scenario.schema import Scenario

    d = scenario_dict(args.n, args.days)
    d["wear"] = {"model": "auto"}
    m = V2GModel(Scenario.model_validate(d))
    acc = {"wear": 0.0, "close": 0.0}

    def timed(fn, key):
        @functools.wraps(fn)
        def w(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[key] += time.perf_counter() - t0
        return w

    for name in ("begin", "after_physics", "end_step", "finish"):
        setattr(m.wear, name, timed(getattr(m.wear, name), "wear"))
    m.wear._close = timed(m.wear._close, "close")
    t0 = time.perf_counter()
    m.run()
    total = time.perf_counter() - t0
    w = acc["wear"]
    print(f"| {args.n:,} | {args.days} | {m.n_clock:,} | {total:.1f} | {w:.2f} | {acc['close']:.2f} | **{w / (total - w) * 100:.1f} %** |")


if __name__ == "__main__":
    main()
