"""Shared test set-up."""

import numpy as np

# BLAST-Lite 1.1.0 (the wear oracle) still calls numpy.trapz, removed in NumPy 2.4; the
# function it needs lives on as numpy.trapezoid. Restore the alias for the oracle only.
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid


import contextlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@contextlib.contextmanager
def registries_restored(*roots: Path):
    """Undo what plugins register inside the block, and forget the modules imported from
    ``roots`` (so the next test imports its own files, and the known names stay the built-ins)."""
    from v2gsim.registry import REGISTRIES

    before = {group: set(reg) for group, reg in REGISTRIES.items()}  # fills each registry
    modules = set(sys.modules)
    try:
        yield
    finally:
        for group, reg in REGISTRIES.items():
            for name in set(reg) - before.get(group, set()):
                reg.unregister(name)
        resolved = [Path(r).resolve() for r in roots]
        for name in set(sys.modules) - modules:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(r) for r in resolved):
                del sys.modules[name]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """An empty folder for plugin files and scenarios; what they register is undone afterwards."""
    monkeypatch.delenv("V2GSIM_ALLOW_PLUGINS", raising=False)
    with registries_restored(tmp_path):
        yield tmp_path
