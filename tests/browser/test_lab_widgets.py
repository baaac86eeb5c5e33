"""Every widget notebook in JupyterLab, in a real browser, as a learner uses it.

For each notebook of notebooks/ that builds a ``widgets.LiveView`` (found by a glob, so new
notebooks join by themselves): open it in JupyterLab, Run → Run All Cells, then for every view
on the page move every control (a slider by the keyboard and by typing in its readout, a
dropdown by choosing another option, a checkbox by a click) and check that the view re-rendered:
its picture changed and its summary text changed, with no render error; then press the buttons
of a panel (the dashboard's "save" and "clear") and check that the panel changed. At the end, no cell has error or stderr output and
the browser logged no console error. A screenshot of each view is saved as an artefact.
"""

from __future__ import annotations

import json
import time

import pytest
from browser_driver import ARTEFACTS, ERROR_OUTPUT, VIEWS, drive_view, widget_notebooks

NOTEBOOKS = widget_notebooks()
KERNEL_IDLE_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""
# Run All is done when every code cell shows its execution count, or stopped at an error
# (JupyterLab stops running at a failing cell; the test then reports the error output).
ALL_RAN_JS = """([expected, errors]) => {
  if (document.querySelector(errors)) return true;
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length === expected && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def code_cell_count(path) -> int:
    return sum(c["cell_type"] == "code" for c in json.loads(path.read_text())["cells"])


def live_view_cells(path) -> int:
    cells = json.loads(path.read_text())["cells"]
    return sum(c["cell_type"] == "code" and "LiveView(" in "".join(c["source"]) for c in cells)


def test_there_are_widget_notebooks():
    assert len(NOTEBOOKS) >= 6, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widgets_rerender_in_jupyterlab(path, lab, page):
    started = time.monotonic()
    url = f"{lab.base}/lab/tree/notebooks/{path.name}?token={lab.token}&reset"
    try:
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-CodeCell")
        page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000)
        page.keyboard.press("Control+B")  # View → Show Left Sidebar off: more room for the notebook
        # Run → Run All Cells, through the menu bar as a person would.
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.wait_for_function(ALL_RAN_JS, arg=[code_cell_count(path), ERROR_OUTPUT], timeout=300_000,
                               polling=500)
        page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000)
        ran = time.monotonic() - started

        errors = page.locator(ERROR_OUTPUT)
        assert errors.count() == 0, f"error/stderr output after Run All: {errors.first.inner_text()[:2000]}"
        views = page.locator(VIEWS).all()
        assert len(views) >= live_view_cells(path), "a LiveView cell shows no live view"

        records = []
        for number, view in enumerate(views, start=1):
            name = f"{path.stem} view {number}"
            records.append(drive_view(page, view, name))
            page.wait_for_function(KERNEL_IDLE_JS)
            view.evaluate("v => v.scrollIntoView({block: 'center'})")
            page.screenshot(path=str(ARTEFACTS / f"{path.stem}-view{number}.png"))

        assert page.locator(ERROR_OUTPUT).count() == 0, "a control move produced error/stderr output"
        assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
        summary = {"notebook": path.name, "run_all_seconds": round(ran, 1),
                   "total_seconds": round(time.monotonic() - started, 1), "views": records,
                   "refused_offsite_requests": sorted(set(page.console.refused))}
        (ARTEFACTS / f"{path.stem}-lab.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    except BaseException:
        page.screenshot(path=str(ARTEFACTS / f"{path.stem}-FAILED.png"))
        raise
    finally:
        # Free the kernel now rather than at the end of the session (2 cores, many notebooks);
        # the lab fixture stops the server (and any kernel left) whatever happens here.
        try:
            for session in lab.api("GET", "/api/sessions"):
                lab.api("DELETE", f"/api/sessions/{session['id']}")
        except OSError:
            pass
