"""What the browser tests share: the notebooks to test, Jupyter servers, and driving a view.

A server (JupyterLab, or Voilà for the dashboard) gets a random token, a free port on
127.0.0.1, a temporary root holding a copy of the notebooks and its own Jupyter config, data
and settings folders, so nothing of the user's Jupyter setup leaks in. Its kernels run live
widgets (``DPFL_STATIC_WIDGETS=0``). ``Server.stop`` ends the server and any kernel of it that
is left (the fixtures call it in their teardown, also when a test fails).

Chromium is the system one (``DPFL_CHROMIUM``, else ``/usr/bin/chromium``); Playwright only
drives it, it never downloads a browser. Screenshots and server logs go to
``tests/browser/artefacts/`` (or ``$DPFL_ARTEFACTS``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTEFACTS = Path(os.environ.get("DPFL_ARTEFACTS", Path(__file__).resolve().parent / "artefacts"))
CHROMIUM = os.environ.get("DPFL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}


def uses_live_view(path: Path) -> bool:
    """True if a code cell of the notebook builds a ``widgets.LiveView``."""
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and "LiveView(" in c.source for c in nb.cells)


def widget_notebooks() -> list[Path]:
    """Every notebook in notebooks/ that has a live view (a glob, never a hand-kept list)."""
    return [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if uses_live_view(p)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Jupyter server process in its own process group, with its log file."""

    def __init__(self, name: str, cmd: list[str], *, cwd: Path, env: dict, port: int, token: str):
        self.name, self.port, self.token = name, port, token
        self.base = f"http://127.0.0.1:{port}"
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTEFACTS / f"{name}-server.log"
        self._log = open(self.log_path, "w")
        # start_new_session: the server (and its helpers) form one process group that stop() ends.
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 120.0) -> None:
        """Poll ``path`` (with the token) until the server answers; fail with its log if it dies."""
        deadline = time.monotonic() + timeout
        url = f"{self.base}{path}{'&' if '?' in path else '?'}token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # it answers (a 404 for a path it does not serve is an answer too)
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def children(self) -> dict[int, bytes]:
        """{pid: command line} of the processes whose parent is the server: its kernels (Linux)."""
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
        return found

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), SIGKILL if it hangs, then any kernel left.

        Kernels run in sessions of their own (jupyter_client starts them so), so the kernels
        seen before the stop are ended by PID if they outlive their server.
        """
        kernels = self.children() if self.proc.poll() is None else {}
        if self.proc.poll() is None:  # the group is signalled only while its leader is not reaped
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        for pid, cmdline in kernels.items():
            try:  # still the same process (its command line names its own connection file)?
                if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                    os.kill(pid, signal.SIGKILL)  # a kernel that outlived its server
            except (OSError, ProcessLookupError):
                pass
        self._log.close()


def server_home(tmp: Path) -> tuple[Path, dict]:
    """A temporary root with a copy of the notebooks, and an environment isolating Jupyter."""
    root = tmp / "root"
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = dict(os.environ)
    env.update({
        "DPFL_STATIC_WIDGETS": "0",  # the kernel runs live views, as a learner's does
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "IPYTHONDIR": str(tmp / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
    })
    # No network: never ask about (or fetch) the Jupyter news feed; its toast would cover the page.
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return root, env


# ---------------------------------------------------------------------------------------------
# Driving a LiveView on a page (JupyterLab or Voilà render the same ipywidgets DOM).

# LiveView.widget is VBox([controls, Image, HTML summary]); a panel built around a view (the
# capstone's DashboardPanel) keeps that shape: a box of controls first, the summary right after
# the figure. The first image of the box is the view's.
VIEWS = ".widget-vbox:has(> img.widget-image)"
ERROR_OUTPUT = ('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')

# The view's state as the reader sees it: a digest of each image's decoded pixels (not its URL,
# which changes even for an identical picture; the first image is the view's figure), the
# summary (the text right after the figure), all the view's text, and whether the view shows an
# error line (LiveView, and the dashboard panel's buttons, show a failure as red text; the
# figure of a failed render is not replaced).
VIEW_STATE_JS = """async (view) => {
  async function digest(img) {
    if (!img.complete || img.naturalWidth === 0) return null;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const d = await crypto.subtle.digest('SHA-256', pixels);
    return Array.from(new Uint8Array(d), b => b.toString(16).padStart(2, '0')).join('');
  }
  const img = view.querySelector(':scope > img.widget-image');
  const next = img && img.nextElementSibling;
  const html = next && next.classList.contains('widget-html') ? next.querySelector('.widget-html-content') : null;
  const images = [];
  for (const i of view.querySelectorAll('img.widget-image')) images.push(i.src ? await digest(i) : 'empty');
  return {image: img ? await digest(img) : null,
          size: img && img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null,
          summary: html ? html.innerText.trim() : null,
          all: view.innerText + '|' + images.join(','),
          error: !!view.querySelector('span[style*="b2182b" i]')};
}"""


def view_state(view) -> dict:
    return view.evaluate(VIEW_STATE_JS)


def wait_loaded(view, timeout: float = 60.0) -> dict:
    """The view's state once its first image is decoded."""
    deadline = time.monotonic() + timeout
    while True:
        state = view_state(view)
        if state["image"] is not None or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def wait_rerender(view, before: dict, timeout: float = 90.0) -> dict:
    """Wait until image and summary both differ from ``before`` (or the view shows an error)."""
    deadline = time.monotonic() + timeout
    while True:
        state = view_state(view)
        changed = state["image"] not in (None, before["image"]) and state["summary"] != before["summary"]
        if changed or state["error"] or time.monotonic() > deadline:
            # The summary is set just after the image: one more read sees both of the same render.
            return view_state(view) if changed else state
        time.sleep(0.2)


def assert_rerendered(before: dict, after: dict, what: str) -> None:
    assert not after["error"], f"{what}: the view shows a render error: {after['summary']!r}"
    assert after["image"] is not None, f"{what}: the view's image is missing"
    assert after["image"] != before["image"], f"{what}: the figure did not change"
    assert after["summary"] != before["summary"], f"{what}: the summary did not change ({after['summary']!r})"


def control_label(control) -> str:
    """The words beside a control (a checkbox has them in its second label)."""
    for text in control.locator(".widget-label, .widget-label-basic").all_inner_texts():
        text = text.replace("\u200b", "").replace("\xa0", " ").strip()
        if text:
            return text
    return "(no label)"


def move_slider(page, view, slider, what: str) -> list[str]:
    """Keyboard on the handle (one step), then type the old value back into the readout."""
    done = []
    handle = slider.locator(".noUi-handle").first
    readout = slider.locator(".widget-readout").first
    old_text = readout.inner_text().strip()
    before = view_state(view)
    now, high = float(handle.get_attribute("aria-valuenow")), float(handle.get_attribute("aria-valuemax"))
    keys = ["ArrowRight", "ArrowLeft"] if now < high else ["ArrowLeft", "ArrowRight"]
    handle.focus()
    page.keyboard.press(keys[0])
    # aria values are rounded for display: at the top of the range the first key may do nothing
    try:
        page.wait_for_function("([r, t]) => r.innerText.trim() !== t", arg=[readout.element_handle(), old_text],
                               timeout=3000)
    except PlaywrightTimeout:  # nothing moved: try the other direction
        keys.reverse()
        page.keyboard.press(keys[0])
    after = wait_rerender(view, before)
    assert_rerendered(before, after, f"{what} ({keys[0]} on the slider)")
    done.append(f"{keys[0]} → {readout.inner_text().strip()}")
    # Typing in the readout: the old value, digits only (a grouped readout such as "1,000" is
    # shown with separators that the widget's parser would not read back).
    before = after
    readout.click()
    page.keyboard.press("Control+A")
    typed = old_text.replace(",", "")
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    after = wait_rerender(view, before)
    assert_rerendered(before, after, f"{what} (typed {typed!r} in the readout)")
    done.append(f"typed {typed}")
    return done


def move_dropdown(page, view, dropdown, what: str) -> list[str]:
    """Choose the next option (the previous one at the end of the list).

    The choice is kept, not undone: a mode chosen here (say, a privacy mode instead of "none")
    is the setting under which the sliders that follow are moved.
    """
    select = dropdown.locator("select").first
    options = select.locator("option").all_inner_texts()
    if len(options) < 2:
        return []
    old = select.evaluate("s => s.selectedIndex")
    before = view_state(view)
    select.select_option(index=old + 1 if old < len(options) - 1 else old - 1)  # as a mouse pick does
    after = wait_rerender(view, before)
    label = options[select.evaluate("s => s.selectedIndex")].replace("\xa0", " ")
    assert_rerendered(before, after, f"{what} (chose {label!r})")
    return [f"chose {label}"]


def wait_any_change(view, before: dict, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = view_state(view)
        if state["all"] != before["all"] or state["error"] or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def press_button(page, view, button, what: str) -> list[str]:
    """Click a button of the view (the dashboard's "save", "clear"): something in the view changes."""
    before = view_state(view)
    button.click()
    after = wait_any_change(view, before)
    assert not after["error"], f"{what}: the view shows an error after the click"
    assert after["all"] != before["all"], f"{what}: nothing in the view changed after the click"
    return ["clicked"]


def move_checkbox(page, view, checkbox, what: str) -> list[str]:
    """Click the box once (kept, like a dropdown's choice)."""
    box = checkbox.locator("input[type=checkbox]").first
    before = view_state(view)
    box.click()
    after = wait_rerender(view, before)
    assert_rerendered(before, after, f"{what} (clicked)")
    return ["clicked"]


# Choices first, then sliders (see move_dropdown).
CONTROLS = [(".widget-dropdown", move_dropdown), (".widget-checkbox", move_checkbox),
            (".widget-slider:has(.noUi-handle)", move_slider)]


def drive_view(page, view, name: str) -> dict:
    """Move every main control of one view; assert each move re-renders it. Returns a record."""
    view.evaluate("v => v.scrollIntoView({block: 'center'})")  # on screen (and in a failure's screenshot)
    start = wait_loaded(view)
    assert start["image"] is not None, f"{name}: the view never showed its first figure"
    assert not start["error"], f"{name}: the first render failed: {start['summary']!r}"
    record = {"size": start["size"], "controls": {}}
    children = view.locator(":scope > .widget-box").first.locator(":scope > .jupyter-widgets").all()
    kinds = [next((i for i, (selector, _) in enumerate(CONTROLS) if child.evaluate(
        "(c, s) => c.matches(s)", selector)), None) for child in children]
    unknown = [child.get_attribute("class") for child, kind in zip(children, kinds) if kind is None]
    assert not unknown, f"{name}: controls this test cannot move yet (teach browser_driver.py): {unknown}"
    assert children, f"{name}: no control found to move"
    for kind in range(len(CONTROLS)):
        for child, k in zip(children, kinds):
            if k == kind:
                label = control_label(child)
                record["controls"][label] = CONTROLS[kind][1](page, view, child, f"{name}, control {label!r}")
    # Buttons beside the view (the dashboard panel's), in page order, after the controls.
    for button in view.locator("button.widget-button").all():
        label = button.inner_text().strip() or "(button)"
        record["controls"][f"button {label}"] = press_button(page, view, button, f"{name}, button {label!r}")
    return record
