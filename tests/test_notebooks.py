"""Every committed notebook is executed top to bottom in a fresh kernel, with clean outputs.

nbval (run by the same test command) re-executes them and compares outputs; these checks catch
what nbval does not: out-of-order execution, errors saved in outputs, machine paths, and
notebooks missing from the README's chapter table.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def code_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_named_and_executed_in_order(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name notebooks NN_topic.ipynb"
    cells = code_cells(path)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    assert any(c["outputs"] for c in cells), "the notebook was saved without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_hold_no_error_no_path_no_widget_state(path):
    nb = json.loads(path.read_text())
    assert "widgets" not in nb["metadata"], "saved with live widget state; save with static widgets"
    for cell in code_cells(path):
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"error saved in {path.name}: {out.get('ename')}"
            assert out.get("name") != "stderr", \
                f"stderr saved in {path.name} (a warning? fix it or filter it in the notebook): {''.join(out['text'])[:200]}"
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), \
                "a live widget was saved; execute with DPFL_STATIC_WIDGETS=1 (python3 course.py execute)"
            # text only: base64 image data can spell anything by chance
            text = "".join(out.get("text", "")) + json.dumps(
                {k: v for k, v in out.get("data", {}).items() if not k.startswith("image/")})
            assert not re.search(r"/(tmp|root|home|work|Users)/[\w.-]+", text), "machine path in output"
            assert not re.search(r"0x[0-9a-f]{8,}", text), "memory address in output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_readme_chapter_table_lists_the_notebook(path):
    assert f"notebooks/{path.name}" in (ROOT / "README.md").read_text()
