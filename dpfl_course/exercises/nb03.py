"""Notebook 03's exercises: randomized response, its unbiased estimator, and the estimator's
standard deviation."""

from __future__ import annotations

import math

import numpy as np

from dpfl_course.exercises import Feedback, attempt, close, run_cases


def randomized_response(bits, epsilon, rng):
    """Reference solution: keep each bit with probability e^ε/(1+e^ε), flip it otherwise."""
    bits = np.asarray(bits)
    keep = rng.random(bits.shape) < math.exp(epsilon) / (1 + math.exp(epsilon))
    return np.where(keep, bits, 1 - bits)


def estimate_fraction(reports, epsilon):
    """Reference solution: unbiased estimate of the fraction of 1s behind randomized responses."""
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    return (float(np.mean(reports)) - (1 - p)) / (2 * p - 1)


def estimate_std(n, epsilon):
    """Reference solution: std of the estimate for n fixed users, √(e^ε) / ((e^ε − 1)·√n)."""
    return math.sqrt(math.exp(epsilon)) / ((math.exp(epsilon) - 1) * math.sqrt(n))


_ESTIMATE_CASES = [
    (([1, 0, 0, 0], math.log(3)), 0.0),  # p = 3/4: a mean of 1/4 is what nobody-says-yes produces
    (([1, 1, 1, 0], math.log(3)), 1.0),
    (([1, 0], math.log(3)), 0.5),
    (([1, 1, 1, 1], math.log(3)), 1.5),  # unbiased estimates may leave [0, 1]
    (([1, 0, 1, 1, 0], 2.0), (0.6 - 1 / (1 + math.e ** 2)) / ((math.e ** 2 - 1) / (math.e ** 2 + 1))),
]

_STD_CASES = [
    ((100, math.log(3)), math.sqrt(3) / (2 * 10)),
    ((10_000, 1.0), math.sqrt(math.e) / ((math.e - 1) * 100)),
    ((1, 0.5), math.sqrt(math.exp(0.5)) / (math.exp(0.5) - 1)),
    ((569, 4.0), math.sqrt(math.exp(4.0)) / ((math.exp(4.0) - 1) * math.sqrt(569))),
]




def check_estimate_fraction(func) -> Feedback:
    """Check ``func(reports, epsilon)`` returns the unbiased (unclipped) estimate."""
    return run_cases(func, _ESTIMATE_CASES, compare=close,
                     describe=lambda a: f"reports={a[0]}, epsilon={a[1]:.4g}")


def check_estimate_std(func) -> Feedback:
    """Check ``func(n, epsilon)`` returns √(e^ε) / ((e^ε − 1)·√n)."""
    return run_cases(func, _STD_CASES, compare=close,
                     describe=lambda a: f"n={a[0]}, epsilon={a[1]:.4g}")


def check_randomized_response(func, *, n: int = 40_000) -> Feedback:
    """Check ``func(bits, epsilon, rng)`` keeps each bit with probability e^ε/(1+e^ε).

    Seeded and statistical: on n bits (half 0, half 1) at ε = 1 the reports must be 0/1, one per
    bit, reproducible with the same rng, and kept at rate p within 5 standard errors, for 0s and
    for 1s separately.
    """
    epsilon = 1.0
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    bits = np.tile(np.array([0, 1]), n // 2)
    reports, failed = attempt(lambda: [np.asarray(func(bits, epsilon, np.random.default_rng(11)))
                                       for _ in range(2)])
    if failed is not None:
        return failed
    first, again = reports
    if first.shape != bits.shape:
        return Feedback(False, f"Not yet: return one report per bit (shape {bits.shape}), got shape {first.shape}.")
    if not np.isin(first, (0, 1)).all():
        return Feedback(False, "Not yet: every report must be 0 or 1.")
    if not np.array_equal(first, again):
        return Feedback(False, "Not yet: two calls with the same seeded rng gave different reports. "
                               "Draw the coins from the rng argument, not from np.random.")
    se = 5 * math.sqrt(p * (1 - p) / (n // 2))  # 5 standard errors of a kept-rate over n/2 bits
    for value in (0, 1):
        kept = float((first[bits == value] == value).mean())
        if abs(kept - p) > se:
            return Feedback(False, f"Not yet: bits equal to {value} were kept {kept:.1%} of the time; "
                                   f"at ε = 1 they should be kept e^ε/(1+e^ε) = {p:.1%} of the time.")
    return Feedback(True, f"Correct: at ε = 1 your reports keep the true bit {float((first == bits).mean()):.1%} "
                          f"of the time (expected {p:.1%}), for 0s and 1s alike.")
