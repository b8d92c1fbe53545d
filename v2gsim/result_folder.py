"""Writing a result folder without touching anything v2gsim did not write.

A result goes into a folder that is new, empty, or (only when asked to overwrite) holds a
previous v2gsim result and nothing else. A previous result is recognised by its
``metadata.json``, which lists every file of the result (``files``); overwriting removes only
those. Anything else in the folder makes v2gsim refuse, so a user's notes, other results or
scenario files (``-o .``) are never deleted.

A new folder or a replaced result is written into a temporary sibling folder first and then
renamed into place, so a crash never leaves half a result under the folder's name. An empty
folder (a mount point, the working directory) is kept and filled: its temporary folder lives
inside it and ``metadata.json`` is moved in last. Temporary folders carry the host and process
id of their writer; those of a process that no longer runs are removed when the same folder
is written again. Everything is created with the user's umask.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from v2gsim.errors import OutputError

METADATA = "metadata.json"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname()) or "host"


def _temp_pattern(prefix: str) -> re.Pattern:
    return re.compile(re.escape(prefix) + r"v2gsim-(?:tmp|old)-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[0-9a-f]+")


def _is_stale(path: Path, prefix: str) -> bool:
    """A temporary folder of ours whose writer (on this host) no longer runs."""
    m = _temp_pattern(prefix).fullmatch(path.name)
    if m is None or m["host"] != _host() or os.name != "posix" or path.is_symlink() or not path.is_dir():
        return False
    try:
        os.kill(int(m["pid"]), 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else
        return False
    return False


def _remove_stale(folder: Path, prefix: str) -> None:
    for p in folder.iterdir():
        if p.name.startswith(prefix) and _is_stale(p, prefix):
            shutil.rmtree(p, ignore_errors=True)


def _temp_name(parent: Path, prefix: str, kind: str) -> Path:
    return parent / f"{prefix}v2gsim-{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


def _new_temp(parent: Path, prefix: str) -> Path:
    """A new folder in ``parent``; ``os.mkdir`` applies the umask (``mkdtemp`` would make it 0700)."""
    while True:
        p = _temp_name(parent, prefix, "tmp")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue


def result_files(meta: dict) -> set[str]:
    """Every file name of a result folder, from its metadata (``files``, or the names the
    versions before the list wrote)."""
    if "files" in meta:
        return {str(f) for f in meta["files"]}
    from v2gsim.plotting import NETWORK_PLOTS, STANDARD_PLOTS, WEAR_PLOTS
    from v2gsim.results import TABLES

    tables = [*TABLES, "ledger", "bus_voltages", *meta.get("extra_tables", [])]
    return {f"{t}.parquet" for t in tables} | {"kpis.json", METADATA} | set(STANDARD_PLOTS) | set(NETWORK_PLOTS) | set(WEAR_PLOTS)


def _previous_files(folder: Path) -> set[str] | None:
    """The files of the v2gsim result in ``folder``, or None if it holds none."""
    try:
        meta = json.loads((folder / METADATA).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not {"scenario_hash", "version"} <= meta.keys():
        return None
    return result_files(meta) | {METADATA}


def _listing(names, n: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _state(target: Path, given: str, overwrite: bool) -> tuple[str, set[str]]:
    """``("new" | "empty" | "previous", files of the previous result)``, or OutputError."""
    if not target.exists():
        if target.is_symlink():
            raise OutputError(f"{given} is a broken symbolic link; remove it or choose another folder")
        above = next(p for p in target.parents if p.exists())
        if not above.is_dir():
            raise OutputError(f"{above} is a file, not a folder, so {given} cannot be made; choose another folder")
        return "new", set()
    if not target.is_dir():
        raise OutputError(f"{given} is a file, not a folder: results go into a folder (created if missing); choose another name")
    _remove_stale(target, ".")
    names = {p.name for p in target.iterdir()}
    if not names:
        return "empty", set()
    files = _previous_files(target)
    if files is None:
        raise OutputError(f"{given} already holds files that are not a v2gsim result ({_listing(names)}); "
                          "v2gsim never deletes them: choose a new or empty folder")
    others = {n for n in names if n not in files or ((target / n).is_dir() and not (target / n).is_symlink())}
    if others:
        raise OutputError(f"{given} holds a v2gsim result and other files ({_listing(others)}); overwriting replaces "
                          "only a folder holding nothing but a v2gsim result: move those files or choose another folder")
    if not overwrite:
        raise OutputError(f"{given} holds a previous v2gsim result; replace it with --overwrite "
                          "(overwrite=True in Python) or choose another folder")
    return "previous", names


def _remove_result(folder: Path, names: set[str]) -> None:
    """Delete a replaced result: its own files, then the folder if nothing else appeared in it."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # someone put a file there meanwhile: leave it rather than delete it


def _fill_in_place(target: Path, write: Callable[[Path], None]) -> None:
    tmp = _new_temp(target, ".")
    moved: list[Path] = []
    try:
        write(tmp)
        # metadata.json last: the folder is only recognised as a result once it is complete
        for name in sorted(os.listdir(tmp), key=lambda n: n == METADATA):
            os.rename(tmp / name, target / name)
            moved.append(target / name)
        tmp.rmdir()
    except BaseException:
        for p in moved:
            p.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_beside(target: Path, state: str, old_files: set[str], write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}."
    _remove_stale(target.parent, prefix)
    tmp = _new_temp(target.parent, prefix)
    try:
        write(tmp)
        if state == "previous":
            old = _temp_name(target.parent, prefix, "old")
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            _remove_result(old, old_files)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_failure(given: str, target: Path, exc: OSError) -> OutputError:
    """The error in the user's terms: their folder, never one of our temporary ones."""
    reason = re.sub(r"\S*v2gsim-(?:tmp|old)-\S*", given, exc.strerror or str(exc))
    msg = f"cannot write the results to {given}: {reason}"
    where = Path(exc.filename) if isinstance(exc.filename, str) else None
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and where is not None and target not in (where, *where.parents):
        # a folder above the output: the parents it needs, or where the result is first written
        msg += f" (cannot create anything in {where.parent})"
    return OutputError(msg, refused=False)


def _in_user_terms(directory: str | os.PathLike, action: Callable[[str, Path], object]):
    """Run ``action(given, target)``; an OSError becomes an OutputError naming ``directory``."""
    given, target = os.fspath(directory), Path(directory).resolve()
    try:
        return action(given, target)
    except OutputError:
        raise
    except OSError as exc:
        raise _write_failure(given, target, exc) from exc


def check_result_folder(directory: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Raise the OutputError that writing into ``directory`` would raise (before a long run):
    what the folder holds, and whether the first folder the result is written into can be
    written (probed by making and removing a temporary folder there)."""

    def check(given: str, target: Path) -> None:
        state, _ = _state(target, given, overwrite)
        if state == "empty":
            where, prefix = target, "."
        else:  # written beside the target: in its parent, or the nearest folder above that exists
            where, prefix = next(p for p in target.parents if p.exists()), f".{target.name}."
        _new_temp(where, prefix).rmdir()

    _in_user_terms(directory, check)


def write_result_folder(directory: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Check ``directory``, then let ``write(folder)`` fill a fresh folder that becomes it.

    ``write`` must write ``metadata.json`` (with the list ``files`` of every name it wrote)
    last. Returns the absolute path of the result.

    Raises:
        OutputError: the folder holds anything but a previous result (or one without
            ``overwrite``), is a file, or cannot be written (``refused`` False); the message
            names ``directory`` as given.
    """

    def save(given: str, target: Path) -> Path:
        state, old_files = _state(target, given, overwrite)
        if state == "empty":
            _fill_in_place(target, write)
        else:
            _write_beside(target, state, old_files, write)
        return target

    return _in_user_terms(directory, save)


def _check_file(given: str, target: Path, overwrite: bool) -> set[str] | None:
    """Raise the OutputError writing the file ``target`` would raise; the files of the v2gsim
    result in its folder, or None when the folder holds no result."""
    if target.is_dir():
        raise OutputError(f"{given} is a folder; give a file name (e.g. {Path(given) / 'report.html'})")
    folder = target.parent
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder, so {given} cannot be written; choose another name")
    files = _previous_files(folder) if folder.is_dir() else None
    if files is not None and target.name in files and target.suffix in (".json", ".parquet"):
        raise OutputError(f"{given} is one of the tables or metadata of the v2gsim result in {folder}; choose another name")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise OutputError(f"{given} already exists; replace it with --overwrite (overwrite=True in Python) or choose another name")
    return files


def check_file(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Raise the OutputError `write_file` would raise for what is already there (before a
    long run)."""
    _in_user_terms(path, lambda given, target: _check_file(given, target, overwrite))


def write_file(path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Let ``write(tmp_path)`` write one file, then move it to ``path`` in one rename.

    An existing file is replaced only with ``overwrite``. When the folder holds a v2gsim result,
    the file is added to the ``files`` of its ``metadata.json`` first (itself replaced in one
    rename), so the result can still be overwritten as a whole and nothing unlisted is left
    behind; the result's tables and metadata (``.parquet``, ``.json``) are never replaced. The temporary file
    lives in a temporary folder beside it, removed on failure (or, after a crash, by the next
    write into the folder). Returns the absolute path written.

    Raises:
        OutputError: the path is a folder or an existing file (without ``overwrite``), a file
            of the result, or cannot be written.
    """

    def save(given: str, target: Path) -> Path:
        files = _check_file(given, target, overwrite)
        folder = target.parent
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder, ".")
        tmp = _new_temp(folder, ".")
        try:
            write(tmp / target.name)
            if files is not None and target.name not in files:
                meta = json.loads((folder / METADATA).read_text())
                meta["files"] = sorted(result_files(meta) | {METADATA, target.name})
                (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=str))
                os.replace(tmp / METADATA, folder / METADATA)
            os.replace(tmp / target.name, target)
            tmp.rmdir()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    return _in_user_terms(path, save)
