"""Faults injected into sweep workers by the tests; not part of v2gsim.

A sweep sends each run to a worker as ``v2gsim.sweeps.executors._execute(task)``. A test
replaces that function (``monkeypatch.setattr``) with a `functools.partial` of
`execute_with_fault`; the partial reaches worker processes by reference, and they import this
module (spawned processes, local or Dask, inherit the test process's ``sys.path``, which holds
``tests/``), so the fault happens inside a real worker while it runs a real run.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from v2gsim.sweeps import executors

_execute = executors._execute  # the real one, also in the test process once it is replaced


def execute_with_fault(task, *, action: str, run_id: int, once_file: str | None = None):
    """Run ``task``, except that run ``run_id`` makes its worker die (``action="exit"``:
    ``os._exit``) or raises while its model is built (``"raise"``); with ``once_file``, only
    the first time in a sweep (the file is created atomically), so a retry succeeds."""
    if task.run_id == run_id and _first_time(once_file):
        if action == "exit":
            os._exit(70)
        task = dataclasses.replace(task, scenario=_Exploding(run_id))
    return _execute(task)


class _Exploding:
    """A scenario whose first use raises, as a run that fails inside the model does."""

    def __init__(self, run_id: int):
        self.run_id = run_id

    def __getattr__(self, name):
        raise RuntimeError(f"fault injected into run {self.run_id}")


def _first_time(once_file: str | None) -> bool:
    if once_file is None:
        return True
    try:
        os.close(os.open(once_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def inject(monkeypatch, action: str, run_id: int, once_file=None) -> None:
    """Make the sweeps started by this test run `execute_with_fault` in their workers."""
    fault = functools.partial(execute_with_fault, action=action, run_id=run_id,
                              once_file=None if once_file is None else str(once_file))
    monkeypatch.setattr(executors, "_execute", fault)
