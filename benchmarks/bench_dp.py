"""Privacy accounting at slider speed: the time of ``dp.epsilon`` / ``dp.noise_multiplier_for`` for a
slider move, first visit (nothing cached for that setting) and revisit (cached).

Run with ``python3 course.py bench`` (or ``.venv/bin/python benchmarks/bench_dp.py``).
Target: a slider move costs <= 50 ms. Every number is measured in this run on this machine.
A "first visit" uses a value no earlier call has used, so the caches cannot help it.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
from dpfl_course import dp  # noqa: E402
from dpfl_course.testing import print_table as table  # noqa: E402

DELTA = 1e-5



def timed(call, values):
    times = []
    for value in values:
        t = time.perf_counter()
        call(value)
        times.append(time.perf_counter() - t)
    return times


def row(name, first, again, target_ms=50):
    med = statistics.median(first)
    return (name, len(first), f"{med * 1000:.1f}", f"{max(first) * 1000:.1f}",
            f"{statistics.median(again) * 1000:.2f}", "yes" if med * 1000 <= target_ms else "NO")


def main():
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    rows = []
    # A noise-multiplier slider (notebook 06): q = 0.01, 1,000 steps; σ from 0.50 to 2.99 by 0.01.
    sigmas = [round(0.5 + 0.01 * i, 2) for i in range(250)]
    for accountant, values in [("rdp", sigmas), ("prv", sigmas[::25])]:
        call = lambda s, a=accountant: dp.epsilon(noise_multiplier=s, sample_rate=0.01, steps=1000,
                                                   delta=DELTA, accountant=a)
        first = timed(call, values)
        again = timed(call, values)
        rows.append(row(f"epsilon, σ slider ({accountant})", first, again))
    # An epochs slider at fixed σ: new steps for a (q, σ) seen before.
    steps = [100 * e for e in range(1, 61)]
    call = lambda n: dp.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=n, delta=DELTA)
    rows.append(row("epsilon, steps slider (rdp)", timed(call, steps), timed(call, steps)))
    # A target-ε slider (notebooks 06-08): invert the accountant.
    targets = [round(0.5 + 0.1 * i, 1) for i in range(40)]
    call = lambda e: dp.noise_multiplier_for(target_epsilon=e, sample_rate=0.01, steps=1000, delta=DELTA)
    rows.append(row("noise_multiplier_for, target-ε slider (rdp)", timed(call, targets), timed(call, targets)))
    # Notebook 02's view: σ per query for k queries under every rule.
    ks = list(range(1, 201, 4))
    call = lambda k: [dp.gaussian_sigma_per_query(epsilon=1.0, delta=DELTA, num_queries=k, composition=c)
                      for c in ("basic", "advanced", "rdp")]
    rows.append(row("gaussian_sigma_per_query, k slider (3 rules)", timed(call, ks), timed(call, ks)))
    table("Accounting per slider move (ms; q = 0.01, 1,000 steps, δ = 1e-5 unless the slider moves it; target 50 ms)",
          rows, ["call", "moves", "first median", "first max", "revisit median", "median ok"])


if __name__ == "__main__":
    main()
