"""Fixtures for the browser tests: a JupyterLab server, Chromium, and a page per test.

The shared machinery is in browser_driver.py (importable by the tests: this folder is put on
sys.path here, since the test run imports test files by path, not as a package).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_driver import (CHROMIUM, CHROMIUM_FLAGS, VIEWPORT, Server, free_port,  # noqa: E402
                            server_home)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab server over a temporary copy of notebooks/; stopped at the end, always."""
    root, env = server_home(tmp_path_factory.mktemp("lab"))
    port, token = free_port(), secrets.token_hex(24)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           # window.jupyterapp lets the test wait on the kernel's status (as JupyterLab's own
           # UI tests do); every action on the page still goes through the menus and keyboard.
           "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI and containers run as root
    server = Server("jupyterlab", cmd, cwd=root, env=env, port=port, token=token)
    try:
        server.wait_ready("/api/status")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def voila_home(tmp_path_factory):
    """(root, env) for a Voilà server; the test starts the server on the notebook it serves."""
    return server_home(tmp_path_factory.mktemp("voila"))


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (a missing Chromium fails, never skips)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROMIUM}. Install it (Debian/Ubuntu: "
                    f"sudo apt-get install chromium) or set DPFL_CHROMIUM to a Chromium/Chrome binary.",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def external(url: str) -> bool:
    """True for an http(s) address off this machine's test servers."""
    return url.startswith(("http:", "https:")) and urlsplit(url).hostname != "127.0.0.1"


class ConsoleLog:
    """Console errors and uncaught exceptions of one page.

    One kind of message is set aside, not counted: "Failed to load resource" for an address off
    this machine. The page fixture refuses every such request (the tests run offline, and must
    not depend on a network); Voilà's page template, for one, links Font Awesome from a CDN for
    widget icons, which the course's views do not use. A resource of the server under test that
    fails to load is still an error.
    """

    def __init__(self, page):
        self.errors: list[str] = []
        self.refused: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if message.text.startswith("Failed to load resource") and external(where):
            self.refused.append(where)
        else:
            self.errors.append(f"console.error: {message.text}" + (f" ({where})" if where else ""))


@pytest.fixture
def page(browser):
    """A fresh browser context and page, offline; its console errors are in ``page.console``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    context.route(external, lambda route: route.abort("blockedbyclient"))
    try:
        p = context.new_page()
        p.console = ConsoleLog(p)
        yield p
    finally:
        context.close()
