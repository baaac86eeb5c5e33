"""Every live view of every notebook: re-render time after a control change, as a learner feels it.

Run with ``python3 course.py bench`` (or ``.venv/bin/python benchmarks/bench_widgets.py [NN ...]``).
Each notebook runs in a live namespace (``dpfl_course.testing.notebook_namespace``), so the views
measured are the notebooks' own. Every control of every view is moved through values spread over
its whole range; the time is from setting the value to the new PNG being in the image widget
(the observer redraws synchronously, as in the kernel). Targets: mechanism views (notebooks 00–03)
median ≤ 100 ms; training views (04 on) median ≤ 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import ipywidgets as W  # noqa: E402

from dpfl_course.testing import ROOT, ms, notebook_namespace, print_table as table  # noqa: E402
from dpfl_course.widgets import LiveView  # noqa: E402

MECHANISM_NOTEBOOKS = ("00", "01", "02", "03")




def control_values(control, points=5):
    """Values spread over a control's whole range, ending back at its default."""
    default = control.value
    if isinstance(control, W.FloatLogSlider):
        lo, hi = control.min, control.max
        values = [control.base ** (lo + (hi - lo) * i / (points - 1)) for i in range(points)]
    elif isinstance(control, (W.IntSlider, W.FloatSlider)):
        lo, hi = control.min, control.max
        values = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        if isinstance(control, W.IntSlider):
            values = [int(round(v)) for v in values]
    elif hasattr(control, "options"):
        options = control.options
        values = [o[1] if isinstance(o, tuple) else o for o in options]
    elif isinstance(control, W.Checkbox):
        values = [not default, default]
    else:
        return []
    values = [v for v in values if v != default]
    return values + [default]


def measure_view(view, repeats):
    rows = []
    for name, control in view.controls.items():
        times = []
        for _ in range(repeats):
            for value in control_values(control):
                t = time.perf_counter()
                control.value = value
                elapsed = time.perf_counter() - t
                if view.last_error is not None:
                    raise RuntimeError(f"{name}={value!r}: {view.last_error}")
                times.append(elapsed)
        if times:
            rows.append((name, len(times), statistics.median(times), max(times)))
    return rows


def main(selected):
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    rows = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        number = path.name[:2]
        if selected and number not in selected:
            continue
        if "LiveView(" not in path.read_text():
            continue
        t = time.perf_counter()
        ns = notebook_namespace(path.name, live=True)
        load = time.perf_counter() - t
        target = 0.1 if number in MECHANISM_NOTEBOOKS else 1.0
        views = {k: v for k, v in ns.items() if isinstance(v, LiveView)}
        for view_name, view in views.items():
            repeats = 3 if target < 1 else 1
            for control, n, median, worst in measure_view(view, repeats):
                rows.append((path.stem, view_name, control, n, ms(median, 0), ms(worst, 0), ms(target, 0),
                             "yes" if median <= target else "NO"))
        print(f"  {path.name}: {len(views)} view(s), notebook ran live in {load:.1f} s")
    table("Live views: re-render after a control change (ms; every control over its whole range)",
          rows, ["notebook", "view", "control", "changes", "median", "max", "target", "median ok"])


if __name__ == "__main__":
    main(set(sys.argv[1:]))
