"""Every notebook under notebooks/ runs top to bottom, shows its figures, and is stored without outputs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_renders_its_figures(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} is stored with outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outs = _outputs(nb)
    images = [o for o in outs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no figure"
    unrendered = [o["data"]["text/plain"] for o in outs
                  if "image/png" not in o.get("data", {}) and str(o.get("data", {}).get("text/plain", "")).startswith("<Figure size")]
    assert not unrendered, f"{path.name}: figures printed as text instead of drawn: {unrendered}"
