#!/usr/bin/env python3
"""Set up the course environment (once) and open the course, or run every test.

    python3 course.py lab        # create .venv if needed, open JupyterLab on notebook 00
    python3 course.py test       # create .venv if needed, run unit tests, doctests and nbval,
                                 # then the browser tests (JupyterLab, Voilà, static HTML in Chromium)
    python3 course.py browser    # only the browser tests (installs Chromium with apt when root)
    python3 course.py app        # serve the capstone dashboard (notebook 08) as a web app (Voilà)
    python3 course.py execute    # re-run notebooks in place, as they are committed (authors)
    python3 course.py bench      # print the benchmark tables

Needs only Python 3.11 with venv and pip. The environment lives in .venv beside this file;
it is (re)installed only when pyproject.toml changes, so running again starts at once.
Extra arguments after ``test`` go to pytest (e.g. ``python3 course.py test -k partition``);
with extra arguments only the first stage runs (the browser stage is ``course.py browser``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("DPFL_VENV", ROOT / ".venv"))
STAMP = VENV / ".dpfl-course-installed"
FIRST_NOTEBOOK = "notebooks/00_welcome.ipynb"
APP_NOTEBOOKS = "notebooks/08_*.ipynb"  # the capstone dashboard that `course.py app` serves
CHROMIUM = os.environ.get("DPFL_CHROMIUM", "/usr/bin/chromium")  # the browser tests' browser
WANTED = (3, 11)

# What the test run and the saved notebooks share: static widgets (stable outputs for nbval),
# one thread per process (two pytest workers on two cores, and repeatable float sums).
NOTEBOOK_ENV = {"DPFL_STATIC_WIDGETS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_python() -> list[str]:
    """A Python 3.11 command: this interpreter if it is 3.11, else one found on PATH."""
    if sys.version_info[:2] == WANTED:
        return [sys.executable]
    name = f"python{WANTED[0]}.{WANTED[1]}"
    if shutil.which(name):
        return [shutil.which(name)]
    if os.name == "nt" and shutil.which("py"):
        return ["py", f"-{WANTED[0]}.{WANTED[1]}"]
    sys.exit(f"The course needs Python {WANTED[0]}.{WANTED[1]} (this is {sys.version.split()[0]}). "
             f"Install Python {WANTED[0]}.{WANTED[1]} and run this command with it, "
             f"or use environment.yml with conda.")


def torch_requirement() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in deps if d.replace(" ", "").startswith("torch=="))


def wanted_stamp() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(f"{WANTED}".encode())
    return digest.hexdigest()


def run(cmd: list, **kwargs) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def ensure_environment() -> Path:
    """Create .venv and install the course into it, unless it is already up to date."""
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted_stamp():
        return python
    if not python.exists():
        say(f"creating the environment in {VENV.name}/ (once; a few minutes)")
        if run(find_python() + ["-m", "venv", VENV]) != 0:
            sys.exit("Could not create the virtual environment (is the 'venv' module installed? "
                     "On Debian/Ubuntu: apt-get install python3.11-venv).")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    # torch first and alone, pinned: a loose torch (or one pulled in by opacus) could bring a
    # multi-GB CUDA build; with the pin installed first, pip keeps it.
    say(f"installing {torch_requirement()}")
    if run(pip + [torch_requirement()]) != 0:
        sys.exit("Installing torch failed; see pip's message above.")
    say("installing the course package and its pinned dependencies")
    if run(pip + ["-e", ".[dev]"]) != 0:
        sys.exit("Installing the course failed; see pip's message above.")
    STAMP.write_text(wanted_stamp() + "\n")
    say("environment ready")
    return python


def notebook_env() -> dict:
    env = dict(os.environ)
    env.update(NOTEBOOK_ENV)
    return env


def cmd_lab(args: list[str]) -> int:
    python = ensure_environment()
    say(f"opening JupyterLab on {FIRST_NOTEBOOK} (stop it with Ctrl+C)")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        args = [*args, "--allow-root"]  # containers often run as root; Jupyter refuses without it
    return run([python, "-m", "jupyterlab", FIRST_NOTEBOOK, *args])


def cmd_test(args: list[str]) -> int:
    python = ensure_environment()
    # First stage, one pytest run: unit tests, the package's doctests and strict nbval on every notebook.
    # --dist loadfile keeps each notebook's cells on one worker (they share a kernel).
    # Paths given on the command line replace the default ones; options are added.
    paths_given = any((ROOT / a.split("::")[0]).exists() for a in args if not a.startswith("-"))
    # The browser tests are a second stage (one JupyterLab at a time, no xdist workers).
    defaults = [] if paths_given else ["--ignore=tests/browser", "tests", "dpfl_course", "notebooks"]
    cmd = [python, "-m", "pytest", "-n", "2", "--dist", "loadfile",
           "--doctest-modules", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--nbval-cell-timeout", "300",
           *args, *defaults]
    code = run(cmd, env=notebook_env())
    if args:
        say("extra arguments given: the browser stage did not run (python3 course.py browser runs it)")
        return code
    if code == 2:  # interrupted (Ctrl+C) or a usage error: stop here
        return code
    return max(code, cmd_browser([]))


def ensure_chromium() -> None:
    """Chromium for the browser tests: found, or installed with apt (as root), or a clear stop."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing Debian's chromium for the browser tests (apt-get, once)")
        apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if (run(["apt-get", "update", "-qq"], env=apt_env) != 0
                or run(["apt-get", "install", "-y", "-qq", "chromium"], env=apt_env) != 0):
            sys.exit("Installing chromium with apt-get failed; see apt's message above.")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        sys.exit(f"The browser tests need Chromium at {CHROMIUM}. Install it (Debian/Ubuntu: "
                 f"sudo apt-get install chromium) or set DPFL_CHROMIUM to a Chromium or Chrome binary.")


def cmd_browser(args: list[str]) -> int:
    # Playwright drives the system Chromium (it never downloads a browser); the tests start their
    # own JupyterLab and Voilà servers with live widgets. Screenshots: tests/browser/artefacts/.
    python = ensure_environment()
    ensure_chromium()
    say("browser stage: every widget notebook in JupyterLab, the dashboard in Voilà, static HTML")
    start = time.monotonic()
    paths_given = any((ROOT / a.split("::")[0]).exists() for a in args if not a.startswith("-"))
    code = run([python, "-m", "pytest", "-p", "no:xdist", "-v", *args, *([] if paths_given else ["tests/browser"])],
               env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"))
    say(f"browser stage took {time.monotonic() - start:.0f} s")
    return code


def cmd_app(args: list[str]) -> int:
    # Voilà runs the notebook in a live kernel and shows its outputs without the code.
    python = ensure_environment()
    notebooks = sorted(ROOT.glob(APP_NOTEBOOKS))
    if args and not args[0].startswith("-"):
        notebook, args = args[0], args[1:]
    elif notebooks:
        notebook = str(notebooks[0].relative_to(ROOT))
    else:
        sys.exit(f"No {APP_NOTEBOOKS} yet; name a notebook: python3 course.py app notebooks/05_heterogeneity.ipynb")
    say(f"serving {notebook} with Voilà (stop it with Ctrl+C)")
    env = dict(os.environ, DPFL_STATIC_WIDGETS="0")  # live views, whatever the shell says
    return run([python, "-m", "voila", notebook, *args], env=env)


def cmd_execute(args: list[str]) -> int:
    python = ensure_environment()
    notebooks = args or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))
    for nb in notebooks:
        say(f"executing {nb}")
        code = run([python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.timeout=600", "--ExecutePreprocessor.kernel_name=python3",
                    "--ExecutePreprocessor.record_timing=False",
                    "--ExecutePreprocessor.store_widget_state=False", nb], env=notebook_env())
        if code != 0:
            return code
    return 0


def cmd_bench(args: list[str]) -> int:
    python = ensure_environment()
    scripts = args or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for script in scripts:
        say(f"running {script}")
        if run([python, script]) != 0:
            return 1
    return 0


COMMANDS = {"lab": cmd_lab, "test": cmd_test, "browser": cmd_browser, "app": cmd_app,
            "execute": cmd_execute, "bench": cmd_bench}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
