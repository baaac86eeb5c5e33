"""The static fallback: a committed notebook read without a kernel still shows each view's figure.

GitHub and nbviewer render the committed notebook to HTML without running it. A live widget
there would be an empty box; the notebooks are saved with static widgets
(``DPFL_STATIC_WIDGETS=1``), so each view's cell holds its default figure as a PNG. This test
converts every widget notebook to HTML with nbconvert (no execution), checks that each view's
PNG is embedded in it, opens the page in Chromium with the network cut (as offline as it gets)
and checks each of those images is decoded and shown at a readable size. A screenshot of the
first view as the reader sees it is saved as an artefact.
"""

from __future__ import annotations

import base64
import json

import nbformat
import pytest
from browser_driver import ARTEFACTS, widget_notebooks
from nbconvert import HTMLExporter

NOTEBOOKS = widget_notebooks()
WIDGET = "application/vnd.jupyter.widget-view+json"


def view_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "LiveView(" in c.source]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_html_shows_each_default_figure(path, page, tmp_path):
    nb = nbformat.read(path, as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)  # as nbviewer does: the saved outputs, no kernel
    pngs = []
    for cell in view_cells(nb):
        outputs = cell.get("outputs", [])
        assert not [o for o in outputs if WIDGET in o.get("data", {})], \
            "a view was saved live: readers without a kernel would see an empty widget"
        cell_pngs = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
        assert cell_pngs, f"a view cell has no saved figure (was the notebook saved with " \
                          f"python3 course.py execute?):\n{cell.source[-300:]}"
        for png in cell_pngs:
            png = png.replace("\n", "")
            assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"data:image/png;base64,{png}" in html, "the saved figure is not embedded in the HTML"
            pngs.append(png)

    # Show the page from a local file; the page fixture refuses every request off this machine
    # (MathJax and require.js come from a CDN in nbconvert's template: a reader offline sees
    # the page without them, as here).
    target = tmp_path / f"{path.stem}.html"
    target.write_text(html, encoding="utf-8")
    page.goto(target.as_uri(), wait_until="load")
    shown = []
    for png in pngs:
        img = page.locator(f'img[src="data:image/png;base64,{png}"]').first
        img.scroll_into_view_if_needed()
        size = img.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]")
        assert size[0] and size[1] > 0, "the saved figure does not decode in the browser"
        assert size[1] >= 300 and size[3] >= 300, f"the saved figure is too small to read: {size}"
        shown.append(size[1:])
    first = page.locator(f'img[src="data:image/png;base64,{pngs[0]}"]').first
    first.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-OutputArea ')][1]").screenshot(
        path=str(ARTEFACTS / f"{path.stem}-static.png"))
    (ARTEFACTS / f"{path.stem}-static.json").write_text(json.dumps(
        {"notebook": path.name, "figures": shown}, indent=1))
    assert not page.console.errors, "browser console errors:\n" + "\n".join(page.console.errors)
