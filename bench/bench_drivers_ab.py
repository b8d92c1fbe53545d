"""Issue 15 "Speed": CPU time of the drivers' choices and public queues on the provisioned city.

Runs ``bench/city_provisioned_explicit.yaml`` (14 days, ``capacity_only``) with the v2gsim found
under CODE_DIR (e.g. a ``git archive 79d9962`` for the code before the drivers' choices, or this
checkout) and prints the CPU time of ``V2GModel.run`` and of its mobility phase. Alternate
before/after runs, each in a fresh process, and compare pairs (bench/README.md):

    for r in 1 2 3; do for d in /tmp/before .; do .venv/bin/python bench/bench_drivers_ab.py $d; done; done

A second argument sets the days (default 14): ``bench_drivers_ab.py /tmp/before 365`` is issue 15's
literal case, the 100,000-vehicle year (~70-80 s of run CPU each on this machine; ~0.9 GB peak).
"""

from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    code_dir = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(HERE)
    days = float(sys.argv[2]) if len(sys.argv) > 2 else 14
    sys.path.insert(0, code_dir)  # the v2gsim under test, ahead of the installed one
    import v2gsim
    from v2gsim.model import V2GModel
    from v2gsim.scenario import load_scenario

    sc = load_scenario(os.path.join(HERE, "city_provisioned_explicit.yaml"),
                       {"time.horizon_days": days, "feeder.solver": "capacity_only", "outputs.plots": False})
    m = V2GModel(sc)
    mob = [0.0]
    inner = m._mobility

    def timed(s):
        t = time.process_time()
        inner(s)
        mob[0] += time.process_time() - t

    m._mobility = timed
    t = time.process_time()
    k = m.run().kpis
    run_cpu = time.process_time() - t
    print(f"{os.path.dirname(os.path.dirname(v2gsim.__file__))}: run CPU {run_cpu:.2f} s, mobility {mob[0]:.2f} s; "
          f"departures {k['departures']:.0f}, stranded {k['stranded_trips']:.0f}, cancelled {k.get('trips_cancelled', float('nan')):.0f}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
