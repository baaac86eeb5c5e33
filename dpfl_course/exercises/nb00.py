"""Notebook 00's exercises: label histograms and how skewed a client is."""

from __future__ import annotations

import numpy as np

from dpfl_course.exercises import Feedback, run_cases


def label_histogram(labels, num_classes):
    """Reference solution: how many examples of each class 0..num_classes-1 (a list of ints)."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).tolist()


def total_variation(p, q):
    """Reference solution: total-variation distance between two distributions, ½·Σ|p − q|."""
    return 0.5 * float(np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


_HISTOGRAM_CASES = [
    (([0, 1, 1, 3], 4), [1, 2, 0, 1]),
    (([2, 2, 2], 5), [0, 0, 3, 0, 0]),  # classes absent on this client still count as 0
    (([], 3), [0, 0, 0]),
    (([9, 0], 10), [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
]

_TV_CASES = [
    (([0.5, 0.5], [0.5, 0.5]), 0.0),
    (([1.0, 0.0], [0.0, 1.0]), 1.0),
    (([0.2, 0.3, 0.5], [0.1, 0.1, 0.8]), 0.3),
    (([0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]), 0.75),
]


def check_label_histogram(func) -> Feedback:
    """Check ``func(labels, num_classes)`` returns the count of every class, zeros included."""
    return run_cases(func, _HISTOGRAM_CASES,
                     compare=lambda got, want: list(np.asarray(got).tolist()) == want,
                     describe=lambda args: f"labels={args[0]}, num_classes={args[1]}")


def check_total_variation(func) -> Feedback:
    """Check ``func(p, q)`` returns ½·Σ|p − q| (a plain sum of |p − q| is twice too large)."""
    return run_cases(func, _TV_CASES,
                     compare=lambda got, want: np.isfinite(float(got)) and abs(float(got) - want) < 1e-9,
                     describe=lambda args: f"p={args[0]}, q={args[1]}")
