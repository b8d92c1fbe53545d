"""CPU time of the issue-2 bench's run on any tree of the repository, for A/Bs and bisecting.

Usage:
    mkdir -p /tmp/t && git archive <sha> | tar -x -C /tmp/t
    python bench/bench_core_ab.py /tmp/t 100000 14     # tree, vehicles, days

It imports ``v2gsim`` and ``bench_core.scenario_dict`` from the given tree (so an old commit runs
its own code on its own scenario) and prints the wall and CPU seconds of ``model.run()``. CPU
time is the figure to compare on the shared machine: wall time swings with the load.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    tree, n, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path[:0] = [tree, tree + "/bench"]  # before the installed package: the tree's own code
    import bench_core
    import v2gsim
    from v2gsim.model import V2GModel
    from v2gsim.scenario.schema import Scenario

    model = V2GModel(Scenario.model_validate(bench_core.scenario_dict(n, days)))
    t0, c0 = time.perf_counter(), time.process_time()
    model.run()
    print(f"{tree} {n} x {days} d: wall {time.perf_counter() - t0:.2f} s, cpu {time.process_time() - c0:.2f} s ({v2gsim.__file__})")


if __name__ == "__main__":
    main()
