"""Batch parameter sweeps: grids and Latin-hypercube samples of scenario runs, locally or on Dask.

A sweep file names a base scenario, the parameters to vary (dotted paths, as for ``--set``), the
number of replications, the KPIs to keep and a master seed. `run_sweep` expands it into a fixed,
ordered list of runs, runs them on local worker processes, an embedded Dask ``LocalCluster`` or
an existing Dask cluster, and writes:

``out_dir/runs/<key>.json``
    One small record per finished run, written atomically (temp file + ``os.replace``) the moment
    the run's result reaches the parent process. ``<key>`` is the SHA-256 of the run's resolved
    scenario (seed included), so a restarted sweep recognises finished runs and never repeats
    them. These files are the source of truth; the tables below are rebuilt from them.
``out_dir/runs.parquet``
    One row per run: run_id, parameter columns, replication, seed, KPI columns, status, error,
    wall_time_s, scenario_hash (and result_dir with ``keep_results``).
``out_dir/summary.parquet``
    Long table: per parameter combination and KPI, n, mean, std and a 95 % t-interval.
``out_dir/plots/``
    KPI against one parameter with a confidence band, and heat maps over two parameters.
``out_dir/results/<hash16>/``
    Full `v2gsim.Results` of each run, only with ``keep_results``.

Seeds: the master seed is split with `numpy.random.SeedSequence`; run ``i`` (in the fixed run
order) gets child ``i`` and its scenario ``seed`` is overridden with it, so the table does not
depend on the number or kind of workers.

Every run goes through `v2gsim.runner.run_scenario`, the function behind ``v2gsim run`` and
`v2gsim.run`. Its reference run (which doubles the time of a controlled run) is on
only when the sweep's ``kpis`` ask for ``peak_reduction_pct`` or a ``reference_*`` KPI.

The output folder is locked while a sweep writes to it (``out_dir/.sweep.lock``, an ``flock``
that dies with its process), and it takes only the sweep recorded in ``out_dir/sweep.json``
(same validated sweep file and base scenario) unless ``extend`` is given.

Modules: :mod:`.spec` (the sweep file, the run plan, seeds), :mod:`.resolve` (each run's
scenario, the KPI check), :mod:`.executors` (serial, local processes, Dask; worker deaths),
:mod:`.store` (the output folder: lock, records, tables), :mod:`.summary`, :mod:`.plots`,
:mod:`.run` (`run_sweep`, `cli_main`).
"""

from v2gsim.sweeps.run import cli_main, run_sweep, sweep
from v2gsim.sweeps.spec import DEFAULT_MAX_RUNS, IntervalSpec, PlannedRun, RangeSpec, Sweep, SweepSpec, load_sweep
from v2gsim.sweeps.store import SweepFolderError
from v2gsim.sweeps.summary import summarize

__all__ = [
    "DEFAULT_MAX_RUNS",
    "IntervalSpec",
    "PlannedRun",
    "RangeSpec",
    "Sweep",
    "SweepFolderError",
    "SweepSpec",
    "cli_main",
    "load_sweep",
    "run_sweep",
    "summarize",
    "sweep",
]
