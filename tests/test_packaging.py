"""The pins agree everywhere they are written, and the two README commands are what CI runs."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.replace(" ", ""))
        assert m, f"pyproject requirement is not an exact pin: {line!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def conda_env(path):
    env = yaml.safe_load(path.read_text())
    deps = env["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    conda = [d for d in deps if isinstance(d, str)]
    pins = {}
    for line in pip:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return env, conda, pip, pins


def test_every_dependency_is_pinned_and_torch_is_the_pinned_cpu_release():
    pins = pyproject_pins()
    assert pins["torch"] == "2.13.0"
    for name in ["opacus", "nbval", "jupyterlab", "ipywidgets", "matplotlib", "numpy",
                 "scikit-learn", "pytest", "pytest-xdist", "hypothesis"]:
        assert name in pins, f"{name} is not pinned in pyproject.toml"


def test_environment_yml_agrees_with_pyproject():
    env, conda, pip, pins = conda_env(ROOT / "environment.yml")
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in conda and "pip" in conda
    assert pins == pyproject_pins()
    assert pip[0] == "torch==2.13.0", "torch must come first so a pinned build is chosen"
    assert "-e ." in pip, "the pip section must install the course package"


def test_binder_environment_agrees_and_postbuild_installs_the_package():
    env, conda, pip, pins = conda_env(ROOT / "binder" / "environment.yml")
    assert "python=3.11" in conda
    assert pins == pyproject_pins()
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert commands == ["python3 course.py test"]
    assert "python3 course.py test" in readme and "python3 course.py lab" in readme


def test_course_script_installs_the_torch_pin_from_pyproject():
    import importlib.util

    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    assert course.torch_requirement() == "torch==2.13.0"
    assert course.NOTEBOOK_ENV["DPFL_STATIC_WIDGETS"] == "1"
    assert (ROOT / course.FIRST_NOTEBOOK).exists()
