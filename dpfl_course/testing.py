"""Helpers for testing and benchmarking the course itself (like ``numpy.testing``).

:func:`notebook_namespace` runs a notebook's code cells in a plain namespace, so tests and
benchmarks exercise the notebook's own render functions and views, not copies that could drift.
:func:`print_table` is how every benchmark prints its results.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
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
