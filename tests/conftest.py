"""Shared test set-up."""

import numpy as np
import pytest

# BLAST-Lite 1.1.0 (the wear oracle) still calls numpy.trapz, removed in NumPy 2.4; the
# function it needs lives on as numpy.trapezoid. Restore the alias for the oracle only.
if not hasattr(np, "trapz"):
    np.trapz = np.trapezoid


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """An empty folder for plugin files and scenarios; what they register is undone afterwards."""
    from helpers import registries_restored

    monkeypatch.delenv("V2GSIM_ALLOW_PLUGINS", raising=False)
    with registries_restored(tmp_path):
        yield tmp_path
