"""Foundation benchmarks: import time and dataset load times (widget re-render times: bench_widgets.py).

Run with ``python3 course.py bench`` (or ``.venv/bin/python benchmarks/bench_foundation.py``).
Prints tables; every number is measured in this run on this machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
from dpfl_course.testing import ROOT, ms, print_table as table  # noqa: E402

T10K = Path(os.environ.get("DPFL_MNIST_T10K_DIR", ROOT.parent / "shared" / "datasets" / "mnist-t10k"))




def import_times(repeats=5):
    def run(code):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    base = run("pass")
    rows = []
    for code in ["import dpfl_course", "from dpfl_course import data",
                 "from dpfl_course import data, plotting, widgets", "from dpfl_course import dp",
                 "from dpfl_course import fl", "import opacus"]:
        rows.append((code, ms(run(code) - base)))
    table(f"Import time (fresh interpreter, median of {repeats}, interpreter start-up of {ms(base)} ms subtracted)",
          rows, ["statement", "ms"])


def load_times(repeats=5):
    from dpfl_course import data

    loaders = {
        "load_digits()": lambda: data.load_digits(),
        "load_diabetes()": lambda: data.load_diabetes(),
        "load_breast_cancer()": lambda: data.load_breast_cancer(),
        "load_synthetic() (30 clients)": lambda: data.load_synthetic(),
    }
    if T10K.is_dir():
        images = (T10K / "t10k-images-idx3-ubyte.gz").read_bytes()
        loaders["read_idx(MNIST t10k images, 10,000)"] = lambda: data.read_idx(images)
    rows = []
    for name, load in loaders.items():
        load()  # first call warms caches (scikit-learn reads its CSV files)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = load()
            times.append(time.perf_counter() - t)
        size = repr(result) if hasattr(result, "num_train") else f"array {tuple(result.shape)}"
        rows.append((name, ms(statistics.median(times)), size))
    if not T10K.is_dir():
        rows.append(("read_idx(MNIST t10k)", "skipped", f"{T10K} not found"))
    table(f"Dataset load time (median of {repeats}, after one warm-up call)", rows, ["loader", "ms", "result"])


if __name__ == "__main__":
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    import_times()
    load_times()
