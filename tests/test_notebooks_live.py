"""Every notebook also runs in a real kernel with live widgets (as a learner runs it): no cell
errors, and each LiveView is displayed as a widget rather than a static image.

nbval checks the static outputs; this checks the other mode of the same cells.
"""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_live_widgets(path, monkeypatch):
    monkeypatch.setenv("DPFL_STATIC_WIDGETS", "0")  # the kernel inherits this environment
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    uses_views = any("LiveView(" in cell.source for cell in nb.cells if cell.cell_type == "code")
    live = [o for o in outputs if WIDGET in o.get("data", {})]
    static_notes = [o for o in outputs if "Static view of the defaults" in "".join(o.get("text", ""))]
    if uses_views:
        assert live, "a LiveView should display as a widget in live mode"
    assert not static_notes, "live mode must not print the static note"
