"""Where a sweep's runs execute: in this process, on local worker processes, or on Dask (an
embedded LocalCluster or an existing cluster), and what happens when a worker dies.

Every backend calls `_execute` on a `_Task` (a run's resolved scenario) and hands each outcome to
``on_done`` in the sweep process; tasks are drawn from an iterator only as workers free up.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import dataclasses
import itertools
import logging
import multiprocessing
import os
import platform
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from v2gsim.scenario import Scenario

__all__ = ["MAX_WORKER_DEATHS", "machine_description"]


MAX_WORKER_DEATHS = 3  # a run whose worker dies this often is recorded as failed
_PARENT_POLL_S = 0.5  # a worker notices this fast that the sweep process is gone (without prctl)


@dataclasses.dataclass(frozen=True)
class _Task:
    key: str
    run_id: int  # first planned run with this key
    scenario: Scenario
    keep_results: bool
    baseline: bool  # also run the uncontrolled reference (runner.run_scenario)


def _execute(task: _Task) -> dict:
    """Run one scenario in a worker, the way ``v2gsim run`` does; never raises for a failing run
    (the error is returned)."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"status": "ok", "error": None, "traceback": None, "kpis": {}}
    try:
        from v2gsim.runner import run_scenario

        res = run_scenario(task.scenario, baseline=task.baseline)
        out["kpis"] = {k: float(v) for k, v in res.kpis.items()}
        out["result_hash"] = res.metadata.get("scenario_hash")
        if task.keep_results:
            out["results"] = res
    except Exception as exc:  # noqa: BLE001 - any failure of a run is data, not a crash
        out.update(status="failed", error="".join(traceback.format_exception_only(exc)).strip(),
                   traceback=traceback.format_exc(limit=20))
    out["wall_time_s"] = time.perf_counter() - t0
    return out


def _warm_up() -> None:
    """Import the model and the heavy libraries it loads lazily, once per worker process, so
    the first run on each worker is not charged ~1 s of imports."""
    import importlib

    import v2gsim.model  # noqa: F401

    for name in ("pandapower", "simbench"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _init_local_worker(parent_pid: int) -> None:
    """Initializer of a local worker process: die with the sweep process, then warm up.

    A worker blocked on its task queue never notices that the sweep process is gone (a SIGKILL
    closes no pipe it waits on), and would live on for minutes with ~260 MB. On Linux the kernel
    sends it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a
    fallback, a thread polls the parent pid. (Dask's worker processes already exit when their
    nanny's pipe closes.)
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked to tell us
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="v2gsim-parent-watch",
                     daemon=True).start()
    _warm_up()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _failed(error: str) -> dict:
    return {"status": "failed", "error": error, "traceback": None, "kpis": {}, "wall_time_s": float("nan")}


OnDone = Callable[[_Task, dict], None]


def _dispatch(tasks: Iterable[_Task], n_tasks: int, workers: int | None, scheduler: Any, on_done: OnDone) -> None:
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be ≥ 1; got {workers}")
    if scheduler == "serial":
        return _run_serial(tasks, on_done)
    if scheduler == "processes" or (scheduler is None and workers is None):
        n = workers or _available_cores()
        return _run_processes(tasks, min(n, n_tasks), on_done)
    if scheduler is None or scheduler == "dask":
        from distributed import Client, LocalCluster

        n = workers or _available_cores()
        # no dashboard; the scheduler's HTTP server (health checks) on a free port, not on 8787,
        # where a second sweep's cluster would warn that the port is taken
        no_dashboard = {"dashboard": False, "dashboard_address": ":0"}
        with _quiet_dask_logs(), LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                              dashboard_address=None, scheduler_kwargs=no_dashboard,
                                              silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            return _run_dask(tasks, client, on_done)
    if isinstance(scheduler, str):
        from distributed import Client

        with _quiet_dask_logs(), Client(scheduler) as client:
            return _run_dask(tasks, client, on_done)
    if hasattr(scheduler, "submit"):  # a distributed.Client the caller owns
        return _run_dask(tasks, scheduler, on_done)
    raise ValueError(f"scheduler must be None, 'processes', 'dask', 'serial', an address or a Client; got {scheduler!r}")


def _run_serial(tasks: Iterable[_Task], on_done: OnDone) -> None:
    for t in tasks:
        on_done(t, _execute(t))


def _run_processes(tasks: Iterable[_Task], n_workers: int, on_done: OnDone) -> None:
    """Local worker processes (spawn). A dead worker breaks the pool: it is restarted, and the
    runs that were in flight are retried one at a time so the culprit is found; a run whose
    worker dies `MAX_WORKER_DEATHS` times is recorded as failed. Tasks are taken from ``tasks``
    only as workers free up."""
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    source = iter(tasks)
    pending: collections.deque[_Task] = collections.deque()  # retries first, then the next task
    deaths: dict[str, int] = collections.defaultdict(int)
    in_flight: dict[cf.Future, _Task] = {}
    pool: cf.ProcessPoolExecutor | None = None
    window = 2 * n_workers  # a little prefetch hides the round trip

    def has_next() -> bool:
        if not pending:
            t = next(source, None)
            if t is not None:
                pending.append(t)
        return bool(pending)

    try:
        while has_next() or in_flight:
            if pool is None:
                pool = cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_local_worker,
                                              initargs=(os.getpid(),))
                _check_pool_starts(pool)
            broken = False
            isolated = any(deaths[t.key] for t in in_flight.values())
            while not isolated and len(in_flight) < window and has_next():
                t = pending[0]
                if deaths[t.key] and in_flight:
                    break  # a suspect runs alone
                try:
                    fut = pool.submit(_execute, t)
                except BrokenProcessPool:
                    broken = True
                    break
                pending.popleft()
                in_flight[fut] = t
                isolated = deaths[t.key] > 0
            if not broken and in_flight:
                done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    if isinstance(fut.exception(), BrokenProcessPool):
                        broken = True
                        continue
                    on_done(in_flight.pop(fut), fut.result())
            if broken:
                cf.wait(in_flight)  # a broken pool fails every outstanding future promptly
                suspects = []
                for fut, t in list(in_flight.items()):
                    if fut.exception() is None:
                        on_done(t, fut.result())
                    else:
                        suspects.append(t)
                in_flight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
                for t in reversed(suspects):
                    deaths[t.key] += 1
                    if deaths[t.key] >= MAX_WORKER_DEATHS:
                        on_done(t, _failed(f"worker process died {deaths[t.key]} times running this run"))
                    else:
                        pending.appendleft(t)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _ping() -> int:
    return os.getpid()


def _check_pool_starts(pool: cf.ProcessPoolExecutor) -> None:
    """A pool whose workers die before running anything is not a run's fault: stop at once."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        pool.submit(_ping).result()
    except BrokenProcessPool as exc:
        pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError(
            "local worker processes die as they start: v2gsim fails to import in a fresh "
            "process (see the traceback above), or a script calls the sweep without "
            "`if __name__ == \"__main__\":` (workers are spawned and re-import it)") from exc


def _run_dask(tasks: Iterable[_Task], client, on_done: OnDone) -> None:
    """Run on a Dask cluster, a window of tasks at a time (so a big sweep's scenarios are never
    all in memory); Dask itself retries tasks whose worker died (up to
    ``distributed.scheduler.allowed-failures``), after which the run is recorded failed."""
    from distributed import as_completed

    token = os.urandom(4).hex()
    client.run(_warm_up)
    window = max(64, 4 * sum(client.nthreads().values()))
    source = iter(tasks)
    in_flight: dict[Any, _Task] = {}

    def submit(t: _Task):
        fut = client.submit(_execute, t, key=f"v2gsim-run-{t.run_id}-{t.key[:12]}-{token}", pure=False)
        in_flight[fut] = t
        return fut

    finished = as_completed([submit(t) for t in itertools.islice(source, window)])
    try:
        for fut in finished:
            t = in_flight.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                outcome = _failed(f"{type(exc).__name__}: {exc}")
            on_done(t, outcome)
            fut.release()
            nxt = next(source, None)
            if nxt is not None:
                finished.add(submit(nxt))
    finally:
        if in_flight:
            client.cancel(list(in_flight))


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Keep Dask's INFO lines (scheduler, nanny and worker start and stop) off stderr under the
    progress bar, unless the application asked for INFO on its root logger (``v2gsim --debug``).

    Importing ``distributed`` sets its logger to INFO; an application that configured logging
    (the CLI does) then prints every line. Only the ``distributed`` logger's level changes, for
    the duration of the sweep; nothing is configured on import.
    """
    logger = logging.getLogger("distributed")
    old = logger.level
    logger.setLevel(max(old, logging.getLogger().getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(old)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def machine_description() -> str:
    """One line naming this machine, for benchmark records."""
    return f"{platform.machine()} {platform.processor() or platform.system()}, {_available_cores()} cores, Python {platform.python_version()}"
