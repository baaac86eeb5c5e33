"""Helpers for testing and benchmarking the course itself (like ``numpy.testing``).

:func:`notebook_namespace` runs a notebook's code cells in a plain namespace, so tests and
benchmarks exercise the notebook's own render functions and views, not copies that could drift.
:func:`live_notebook` does the same with the views live and restores the environment after;
:func:`drive_corners` moves every control of a view to every corner of its range, as the view
tests do for each notebook, and :func:`set_controls` / :func:`number_before` set controls and read
numbers from the summary. :func:`print_table` is how every benchmark prints its results.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the course folder (an editable install)


def notebook_namespace(name: str, *, live: bool = True) -> dict:
    """Execute every code cell of ``notebooks/<name>`` and return the resulting globals.

    ``live=True`` makes the views live (as in JupyterLab), so setting a control redraws.
    Output the cells print or display is swallowed.
    Sets ``DPFL_STATIC_WIDGETS`` in this process accordingly (tests use ``monkeypatch``).
    """
    os.environ["DPFL_STATIC_WIDGETS"] = "0" if live else "1"
    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                if not source.lstrip().startswith(("%", "!")):
                    exec(compile(source, f"{name}:cell", "exec"), namespace)
    return namespace


@contextlib.contextmanager
def live_notebook(name: str):
    """Run ``notebooks/<name>`` with live views (:func:`notebook_namespace`); yield its globals.

    ``DPFL_STATIC_WIDGETS`` is restored on exit, so a test module can use this in a fixture.
    """
    before = os.environ.get("DPFL_STATIC_WIDGETS")
    try:
        yield notebook_namespace(name, live=True)
    finally:
        if before is None:
            os.environ.pop("DPFL_STATIC_WIDGETS", None)
        else:
            os.environ["DPFL_STATIC_WIDGETS"] = before


def slider_range(control) -> tuple:
    """The lowest and highest value a slider can take (a log slider's in its own units).

    A checkbox's range is (False, True); a dropdown's is its first and last option's value.
    """
    if isinstance(control.value, bool) and not hasattr(control, "min"):  # Checkbox, ToggleButton
        return False, True
    if hasattr(control, "options"):  # Dropdown: options are values or (label, value) pairs
        values = [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in control.options]
        return values[0], values[-1]
    if hasattr(control, "base"):
        return control.base ** control.min, control.base ** control.max
    return control.min, control.max


def gray_corners(ranges) -> list[list]:
    """Every corner of ``ranges`` (pairs (low, high)), each differing from the previous in one value.

    Setting controls corner after corner in this order redraws a view once per corner.

    >>> gray_corners([(0, 1), ("a", "b")])
    [[0, 'a'], [1, 'a'], [1, 'b'], [0, 'b']]
    """
    corners = [[]]
    for low, high in ranges:
        corners = [c + [low] for c in corners] + [c + [high] for c in reversed(corners)]
    return corners


def drive_corners(view) -> set:
    """Set a view's controls to every corner of their ranges (:func:`slider_range`); return the set of PNGs drawn.

    Raises AssertionError naming the corner if a render fails (the view would show its message).
    """
    images = set()
    for corner in itertools.product(*(slider_range(c) for c in view.controls.values())):
        for control, value in zip(view.controls.values(), corner):
            control.value = value
        if view.last_error is not None:
            raise AssertionError(f"{dict(zip(view.controls, corner))}: {view.last_error!r}")
        images.add(view.image.value)
    return images


def set_controls(view, **values) -> str:
    """Set a view's controls by name, as a learner would, one after the other; return the summary.

    Raises AssertionError naming the values if the view shows a render error.
    """
    for name, value in values.items():
        view.controls[name].value = value
    assert view.last_error is None, (values, view.last_error)
    return view.last_summary


def number_before(text: str, unit: str) -> float:
    """The number written just before ``unit`` in ``text`` ("91.3 % after" → 91.3 for unit "% after").

    >>> number_before("clients: 12 of 20, 0.65 MB communicated", "MB communicated")
    0.65
    """
    return float(re.search(rf"([\d.]+) {re.escape(unit)}", text).group(1))


def print_table(title: str, rows, headers) -> None:
    """Print ``rows`` (sequences of cells) under ``headers`` as an aligned plain-text table.

    >>> print_table("Demo", [("a", 1), ("bb", 22)], ["name", "n"])
    <BLANKLINE>
    Demo
    name  n
    ----  --
    a     1
    bb    22
    """
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(f"\n{title}")
    for row in [headers, ["-" * w for w in widths], *rows]:
        print(line.format(*row).rstrip())


def ms(seconds: float, digits: int = 1) -> str:
    """Seconds as milliseconds, rounded for a table: ``ms(0.01234)`` is ``'12.3'``.

    >>> ms(0.01234), ms(0.5, digits=0)
    ('12.3', '500')
    """
    return f"{seconds * 1000:.{digits}f}"
