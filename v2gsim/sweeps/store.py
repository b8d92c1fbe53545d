"""The output folder of a sweep: its lock, the sweep it holds, one record per run (named by the
run's key, the hash of its resolved scenario), and the run table assembled from the records.

Records are written atomically (temp file + ``os.replace``); they are the source of truth, the
Parquet tables are rebuilt from them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import socket
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from v2gsim.sweeps.spec import Sweep

__all__ = ["LOCK_FILE", "SweepFolderError"]


LOCK_FILE = ".sweep.lock"


def _scenario_key(scenario) -> str:
    from v2gsim.results import scenario_hash

    return scenario_hash(scenario.model_dump(mode="json"))


def _unresolved_key(base: Path, overrides: Mapping[str, Any]) -> str:
    text = json.dumps({"base": str(base), "overrides": overrides}, sort_keys=True, default=str)
    return "unresolved-" + hashlib.sha256(text.encode()).hexdigest()


class SweepFolderError(Exception):
    """The output folder cannot take this sweep: another sweep is writing to it, or it holds the
    results of a different sweep (the CLI exits with status 2)."""


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.sweep.lock`` (``flock``) while the sweep writes to ``out``.

    The kernel drops the lock when its process dies, however it dies, so a lock left by a killed
    sweep never blocks the next one. The file names the holder (pid, host, start) for the
    message a second sweep gets. Worker processes do not inherit it (spawned, and Python opens
    files non-inheritable).
    """
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepFolderError(f"{out} is in use by another sweep ({_lock_holder(fd)}); wait for it "
                                   "to finish, or write to another folder") from None
        except (OSError, ImportError) as exc:  # a file system (or a system) without locks
            warnings.warn(f"cannot lock {out} ({exc}); make sure no other sweep writes to it",
                          RuntimeWarning, stacklevel=3)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # nobody holds it now
    finally:
        os.close(fd)  # releases the lock


def _lock_holder(fd: int) -> str:
    try:
        h = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {h['pid']} on host {h['host']}, started {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is still writing its name
        return "a process that has just started"


def _claim_folder(out: Path, meta: dict, extend: bool) -> None:
    """Write ``sweep.json``, refusing a folder that holds a different sweep unless extending."""
    path = out / "sweep.json"
    if path.is_file() and not extend:
        try:
            prev = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            prev = {}
        same = prev.get("sweep_id") == meta["sweep_id"] or (  # a folder of v2gsim before sweep ids
            "sweep_id" not in prev and prev.get("spec") == meta["spec"])
        if not same:
            what = prev.get("sweep_file") or "an unreadable sweep.json"
            raise SweepFolderError(
                f"{out} holds the results of a different sweep ({what}); a sweep resumes only "
                "with the same sweep file and base scenario. Write to another folder, or add "
                "this sweep's runs to that folder on purpose with --extend (extend=True).")
    _write_atomic(path, json.dumps(meta, indent=2))


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read_records(runs_dir: Path) -> dict[str, dict]:
    records = {}
    for f in sorted(runs_dir.glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # cannot happen with atomic writes; a stray file is simply ignored
        if isinstance(rec, dict) and "key" in rec:
            records[rec["key"]] = rec
    return records


def _result_dir(out_dir: Path, key: str) -> Path:
    return out_dir / "results" / key[:16]


def _assemble(sweep_obj: Sweep, keys: Sequence[str], records: Mapping[str, dict],
              keep_results: bool) -> pd.DataFrame:
    spec = sweep_obj.spec
    if spec.kpis is not None:
        kpi_names = list(spec.kpis)
        known = {k for rec in records.values() for k in rec.get("kpis", {})}
        unknown = [k for k in kpi_names if known and k not in known]
        if unknown:
            warnings.warn(f"KPIs not produced by any run: {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                          UserWarning, stacklevel=3)
    else:
        kpi_names = list(dict.fromkeys(k for key in keys if key in records for k in records[key].get("kpis", {})))
    rows = []
    for run, key in zip(sweep_obj.iter_runs(), keys):
        rec = records.get(key)
        if rec is None:
            continue
        row: dict[str, Any] = {"run_id": run.run_id, **run.params, "replication": run.replication, "seed": run.seed}
        kp = rec.get("kpis", {})
        for k in kpi_names:
            v = kp.get(k)
            row[k] = float("nan") if v is None else float(v)
        row.update(status=rec["status"], error=rec.get("error"), wall_time_s=rec.get("wall_time_s"),
                   scenario_hash=rec.get("scenario_hash"))
        if keep_results:
            row["result_dir"] = rec.get("result_dir")
        rows.append(row)
    columns = ["run_id", *sweep_obj.parameter_names, "replication", "seed", *kpi_names,
               "status", "error", "wall_time_s", "scenario_hash"] + (["result_dir"] if keep_results else [])
    table = pd.DataFrame(rows, columns=columns)
    table = table.astype({"run_id": "int64", "replication": "int64", "seed": "int64",
                          "wall_time_s": "float64", **{k: "float64" for k in kpi_names}})
    for name in sweep_obj.parameter_names:
        col = table[name]
        if col.dtype == object and len({type(v) for v in col}) > 1:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in col):
                table[name] = col.astype("float64")
            else:
                table[name] = col.astype(str)  # mixed types cannot share a Parquet column
    return table.sort_values("run_id", ignore_index=True)


def _write_table(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
