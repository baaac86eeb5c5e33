"""Notebook 02's exercises: basic and advanced composition, exponential-mechanism probabilities."""

from __future__ import annotations

import math

import numpy as np

from dpfl_course.exercises import Feedback, run_cases


def basic_composition(epsilons, deltas):
    """Reference solution: the total (ε, δ) of mechanisms run on the same data — the sums."""
    return float(sum(epsilons)), float(sum(deltas))


def advanced_composition(epsilon, delta, k, delta_prime):
    """Reference solution: k runs of an (ε, δ)-DP mechanism, by advanced composition
    (Dwork, Rothblum & Vadhan 2010): (ε√(2k ln(1/δ')) + kε(e^ε − 1), kδ + δ')."""
    total = epsilon * math.sqrt(2 * k * math.log(1 / delta_prime)) + k * epsilon * math.expm1(epsilon)
    return total, k * delta + delta_prime


def exponential_probabilities(scores, sensitivity, epsilon):
    """Reference solution: selection probabilities ∝ exp(ε·u/(2Δ)), computed stably."""
    logits = epsilon * np.asarray(scores, dtype=float) / (2 * sensitivity)
    weights = np.exp(logits - logits.max())  # shifting all logits leaves the ratios unchanged
    return weights / weights.sum()


_BASIC_CASES = [
    (([0.5, 0.25, 0.25], [0.0, 0.0, 0.0]), (1.0, 0.0)),
    (([1.0], [1e-5]), (1.0, 1e-5)),
    (([0.1] * 10, [1e-6] * 10), (1.0, 1e-5)),
    (([2.0, 0.5], [1e-7, 0.0]), (2.5, 1e-7)),
]

_ADVANCED_CASES = [
    ((0.1, 0.0, 100, 1e-5), advanced_composition(0.1, 0.0, 100, 1e-5)),
    ((0.5, 1e-7, 10, 1e-6), advanced_composition(0.5, 1e-7, 10, 1e-6)),
    ((0.01, 1e-8, 10000, 1e-5), advanced_composition(0.01, 1e-8, 10000, 1e-5)),
    ((1.0, 0.0, 1, 1e-3), advanced_composition(1.0, 0.0, 1, 1e-3)),
]

_EXPONENTIAL_CASES = [
    (([0.0, 1.0], 1.0, 2.0), exponential_probabilities([0.0, 1.0], 1.0, 2.0)),
    (([3.0, 41.0, 73.0, 97.0, 125.0, 90.0, 13.0], 1.0, 0.1),
     exponential_probabilities([3.0, 41.0, 73.0, 97.0, 125.0, 90.0, 13.0], 1.0, 0.1)),
    (([5.0, 5.0, 5.0, 5.0], 2.0, 1.0), exponential_probabilities([5.0, 5.0, 5.0, 5.0], 2.0, 1.0)),
    # large utilities: exp(ε·u/2Δ) alone overflows to inf; the probabilities do not
    (([3000.0, 3001.0, 2990.0], 1.0, 1.0), exponential_probabilities([3000.0, 3001.0, 2990.0], 1.0, 1.0)),
]


def _pair_close(got, want) -> bool:
    try:
        e, d = (float(v) for v in got)
    except (TypeError, ValueError):
        return False
    return math.isclose(e, want[0], rel_tol=1e-9, abs_tol=1e-12) and math.isclose(d, want[1], rel_tol=1e-9,
                                                                                abs_tol=1e-15)


def check_basic_composition(func) -> Feedback:
    """Check ``func(epsilons, deltas)`` returns (Σε, Σδ) as a pair."""
    return run_cases(func, _BASIC_CASES, compare=_pair_close,
                     describe=lambda args: f"epsilons={args[0]}, deltas={args[1]}")


def check_advanced_composition(func) -> Feedback:
    """Check ``func(epsilon, delta, k, delta_prime)`` returns (ε', δ') of advanced composition."""
    return run_cases(func, _ADVANCED_CASES, compare=_pair_close,
                     describe=lambda args: f"epsilon={args[0]}, delta={args[1]}, k={args[2]}, "
                                           f"delta_prime={args[3]}")


def _probabilities_close(got, want) -> bool:
    try:
        array = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return False
    return array.shape == want.shape and bool(np.all(np.isfinite(array))) and np.allclose(
        array, want, rtol=1e-9, atol=1e-12)


def check_exponential_probabilities(func) -> Feedback:
    """Check ``func(scores, sensitivity, epsilon)`` returns probabilities ∝ exp(ε·u/(2Δ)),
    finite even for large scores."""
    feedback = run_cases(func, _EXPONENTIAL_CASES, compare=_probabilities_close,
                         describe=lambda args: f"scores={args[0]}, sensitivity={args[1]}, epsilon={args[2]}")
    if not feedback.passed and "3000.0" in feedback.message:
        return Feedback(False, feedback.message + " Hint: exp of a large number overflows; subtract the "
                                                  "largest logit first (the probabilities do not change).")
    return feedback
