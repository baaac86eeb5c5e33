"""The capstone dashboard (notebook 08) served as a standalone web app with Voilà, in a browser.

What ``python3 course.py app`` does for an instructor: Voilà runs the notebook in a live kernel
and serves its outputs without the code. The test starts Voilà on 127.0.0.1 with a token and a
temporary root, opens the page, waits for the views, moves every control of every view exactly
as the JupyterLab test does, and checks re-rendering, no error output and no console error.
A screenshot of the page at the first view is saved as an artefact.

The notebook is ``notebooks/08_*.ipynb``; ``DPFL_APP_NOTEBOOK`` (a path) serves another one,
which is how this test was first proved on notebook 05 before 08 existed.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

import pytest
from browser_driver import ARTEFACTS, ERROR_OUTPUT, NOTEBOOKS, ROOT, VIEWS, Server, drive_view, free_port


def app_notebook() -> Path | None:
    if os.environ.get("DPFL_APP_NOTEBOOK"):
        return (ROOT / os.environ["DPFL_APP_NOTEBOOK"]).resolve()
    found = sorted(NOTEBOOKS.glob("08_*.ipynb"))
    return found[0] if found else None


@pytest.fixture
def voila(voila_home):
    """Voilà serving the dashboard notebook from a temporary root; stopped at the end, always."""
    path = app_notebook()
    if path is None:
        pytest.fail("notebooks/08_*.ipynb (the capstone dashboard that `course.py app` serves) is missing")
    root, env = voila_home
    port, token = free_port(), secrets.token_hex(24)
    notebook = root / "notebooks" / path.name
    if not notebook.exists():  # DPFL_APP_NOTEBOOK outside notebooks/
        notebook.write_bytes(path.read_bytes())
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", "--Voila.ip=127.0.0.1",
           f"--Voila.port={port}", "--Voila.port_retries=0", f"--token={token}",
           "--show_tracebacks=True"]  # a failing cell shows its traceback, which the test reports
    server = Server("voila", cmd, cwd=notebook.parent, env=env, port=port, token=token)
    server.notebook = notebook
    try:
        server.wait_ready("/api/status")
        yield server
    finally:
        server.stop()


def test_dashboard_app_in_voila(voila, page):
    started = time.monotonic()
    stem = voila.notebook.stem
    try:
        # Voilà runs every cell before the page is complete; the views then connect to the kernel.
        page.goto(f"{voila.base}/?token={voila.token}", timeout=300_000, wait_until="load")
        page.wait_for_selector(VIEWS, timeout=120_000)
        loaded = time.monotonic() - started
        errors = page.locator(ERROR_OUTPUT)
        assert errors.count() == 0, f"error/stderr output in the app: {errors.first.inner_text()[:2000]}"
        records = [drive_view(page, view, f"{stem} (Voilà) view {n}")
                   for n, view in enumerate(page.locator(VIEWS).all(), start=1)]
        assert page.locator(ERROR_OUTPUT).count() == 0, "a control move produced error/stderr output"
        assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
        page.locator(VIEWS).first.evaluate("v => v.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(ARTEFACTS / f"{stem}-voila.png"))
        (ARTEFACTS / f"{stem}-voila.json").write_text(json.dumps(
            {"notebook": voila.notebook.name, "page_ready_seconds": round(loaded, 1),
             "total_seconds": round(time.monotonic() - started, 1), "views": records,
                   "refused_offsite_requests": sorted(set(page.console.refused))},
            indent=1, ensure_ascii=False))
    except BaseException:
        page.screenshot(path=str(ARTEFACTS / f"{stem}-voila-FAILED.png"))
        raise
