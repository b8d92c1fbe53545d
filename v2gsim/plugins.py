"""A scenario's ``plugins:``: the user's own modules that add business models, wear models and
network sources to the registries (:mod:`v2gsim.registry`).

Importing a module runs its code, so a scenario file alone never imports anything. The user
allows it: ``--plugins`` on the command line, ``allow_plugins=True`` in
:func:`v2gsim.load_scenario`, the :func:`allow_plugins` context, or the environment variable
``V2GSIM_ALLOW_PLUGINS=1``. Without it, a scenario naming plugins is rejected with a sentence
saying how to allow them. Only the top-level ``plugins:`` list is ever imported.

An entry is

* a file ``something.py`` (a path relative to the file that names it: the scenario, or the
  ``extends:`` parent that holds the ``plugins:`` list; an absolute path; ``--set`` paths are
  relative to the working directory), imported as the module ``something``;
* a module name ``my_module``: first ``my_module.py`` or the package ``my_module/`` in the folder
  of the file that names it, else a module on ``sys.path`` (``my_package.models`` with dots is
  always looked up on ``sys.path``).

:func:`resolve_entry` turns an entry into an absolute file path or a module name; the scenario
keeps that form, so a scenario sent to a sweep worker process imports the same modules there
before it is rebuilt (see ``Scenario.__reduce__``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from v2gsim.errors import Problem, ScenarioError

__all__ = ["ENV_ALLOW", "PluginError", "allow_plugins", "load_plugin", "load_scenario_plugins",
           "plugins_allowed", "resolve_entry"]

ENV_ALLOW = "V2GSIM_ALLOW_PLUGINS"
_TRUE = ("1", "true", "yes", "on")
_allowed_depth = 0  # > 0 inside allow_plugins()

HOW_TO_ALLOW = (f"allow them with --plugins (v2gsim run/validate/sweep/compare), allow_plugins=True "
                f"(v2gsim.load_scenario, v2gsim.run) or the environment variable {ENV_ALLOW}=1")


class PluginError(Exception):
    """A plugin module could not be found or imported; the message says which and why."""


def plugins_allowed() -> bool:
    """Whether the user allowed scenarios to import their ``plugins:`` in this process."""
    return _allowed_depth > 0 or os.environ.get(ENV_ALLOW, "").strip().lower() in _TRUE


@contextlib.contextmanager
def allow_plugins() -> Iterator[None]:
    """Within this block, scenarios may import the modules their ``plugins:`` name (e.g. around
    :func:`v2gsim.sweep`, whose runs are loaded as scenarios). The command line's ``--plugins``
    uses it."""
    global _allowed_depth
    _allowed_depth += 1
    try:
        yield
    finally:
        _allowed_depth -= 1


def _is_file_entry(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or os.sep in entry


def resolve_entry(entry: str, base: Path) -> str:
    """The absolute file (``/abs/dir/my_module.py``) or module name an entry stands for, as seen
    from the folder ``base`` of the file that names it."""
    entry = entry.strip()
    if _is_file_entry(entry):
        return str((base / Path(entry).expanduser()).resolve())
    if entry.isidentifier():  # a single name: the file's own folder first
        for candidate in (base / f"{entry}.py", base / entry / "__init__.py"):
            if candidate.is_file():
                return str(candidate.resolve())
    return entry


def _module_name(file: Path) -> str:
    return file.parent.name if file.name == "__init__.py" else file.stem


def _import_file(file: Path) -> types.ModuleType:
    name = _module_name(file)
    if not name.isidentifier():
        raise PluginError(f"{file.name!r} cannot be a module name; name the file like a Python identifier (my_model.py)")
    if not file.is_file():
        raise PluginError(f"plugin file {str(file)!r} does not exist")
    present = sys.modules.get(name)
    if present is not None:
        where = getattr(present, "__file__", None)
        if where is not None and Path(where).resolve() == file:
            return present  # imported before (by this or another scenario, or a sweep worker)
        raise PluginError(f"a different module named {name!r} is already imported "
                          f"({where or 'built in'}); rename {file.name}")
    package = [str(file.parent)] if file.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=package)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import {str(file)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses, pickle and typing look it up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _failure(entry: str, exc: BaseException) -> PluginError:
    """A sentence naming the plugin, the error and where in the plugin's code it happened."""
    where, text = "", str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        where, text = f" ({Path(exc.filename).name} line {exc.lineno})", exc.msg
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            where = f" ({Path(last.filename).name} line {last.lineno})"
    return PluginError(f"importing plugin {entry!r} failed: {type(exc).__name__}: {text}{where}")


def load_plugin(entry: str | os.PathLike, base: str | os.PathLike | None = None) -> types.ModuleType:
    """Import a plugin module (registering what it defines) and return it; a module imported
    before is not imported again.

    Args:
        entry: a ``.py`` file, a module name (see the module docstring), or what
            :func:`resolve_entry` made of one.
        base: the folder relative entries are resolved against (default: the working directory).

    Raises:
        PluginError: the module is missing, or importing it failed (its registrations are then
            rolled back, so a corrected module can be imported again).
    """
    from v2gsim.registry import REGISTRIES

    resolved = resolve_entry(os.fspath(entry), Path(base) if base is not None else Path.cwd())
    name = _module_name(Path(resolved)) if _is_file_entry(resolved) else resolved
    try:
        if _is_file_entry(resolved):
            return _import_file(Path(resolved))
        return importlib.import_module(resolved)
    except PluginError:
        raise
    except Exception as exc:
        for registry in REGISTRIES.values():  # what it registered before failing
            registry.forget_module(name)
        if isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
                resolved == exc.name or resolved.startswith(exc.name + ".")):
            raise PluginError(f"no plugin module {resolved!r}: neither a file next to the scenario nor a "
                              "module on sys.path") from None
        raise _failure(str(entry), exc) from exc


def _shown(entry: Any) -> str:
    return Path(entry).name if isinstance(entry, str) and _is_file_entry(entry) else str(entry)


def load_scenario_plugins(raw: Any, lines, allow: bool = False) -> None:
    """Import the modules a scenario's top-level ``plugins:`` names, if the user allows it.

    ``raw`` is the resolved scenario data (entries already resolved by
    :func:`v2gsim.scenario.schema.resolve_paths`); a malformed list is left to the schema to
    report.

    Raises:
        ScenarioError: plugins named but not allowed (one problem saying how to allow them), or
            plugins that cannot be imported (one problem per plugin, with its line).
    """
    entries = raw.get("plugins") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        return
    if not (allow or plugins_allowed()):
        file, line = lines.lookup(("plugins",))
        raise ScenarioError(Problem(
            "plugins", f"names modules to import ({', '.join(_shown(e) for e in entries)}); "
            "importing runs their code, which v2gsim does only when you allow it", HOW_TO_ALLOW,
            file=file, line=line), file=lines.root_file)
    problems = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str):
            continue  # the schema reports it
        try:
            load_plugin(entry)
        except PluginError as exc:
            file, line = lines.lookup(("plugins", i))
            problems.append(Problem(f"plugins[{i}]", str(exc), file=file, line=line))
    if problems:
        raise ScenarioError(problems, file=lines.root_file)
