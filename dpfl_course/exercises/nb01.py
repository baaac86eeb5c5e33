"""Notebook 01's exercises: the differencing attack, the Laplace mechanism, and the sensitivity
of a clipped mean."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

from dpfl_course.exercises import Feedback, attempt, close, run_cases


def differencing_attack(mean_all, n, mean_rest):
    """Reference solution: the one patient's value from the mean of all n patients and the mean
    of the other n − 1: the total minus the others' total."""
    return n * mean_all - (n - 1) * mean_rest


def laplace_mechanism(value, sensitivity, epsilon, rng):
    """Reference solution: value plus Laplace noise of scale b = sensitivity / epsilon."""
    return value + rng.laplace(0.0, sensitivity / epsilon)


def clipped_mean_sensitivity(lower, upper, n):
    """Reference solution: replacing one of n values clipped to [lower, upper] moves the mean
    by at most (upper − lower) / n."""
    return (upper - lower) / n


_ATTACK_CASES = [
    ((26.5, 442, 26.48), 442 * 26.5 - 441 * 26.48),
    ((10.0, 2, 8.0), 12.0),
    ((152.13, 442, 151.91), 442 * 152.13 - 441 * 151.91),
    ((0.0, 5, -1.0), 4.0),
]

_SENSITIVITY_CASES = [
    ((15.0, 50.0, 442), 35.0 / 442),
    ((0.0, 1.0, 10), 0.1),
    ((-5.0, 5.0, 100), 0.1),  # a negative lower bound: the range is what matters
    ((20.0, 40.0, 1), 20.0),
]




def check_differencing_attack(func) -> Feedback:
    """Check ``func(mean_all, n, mean_rest)`` recovers the one left-out value exactly."""
    return run_cases(func, _ATTACK_CASES, compare=functools.partial(close, rel=1e-6),
                     describe=lambda a: f"mean_all={a[0]}, n={a[1]}, mean_rest={a[2]}")


def check_clipped_mean_sensitivity(func) -> Feedback:
    """Check ``func(lower, upper, n)`` returns (upper − lower) / n."""
    return run_cases(func, _SENSITIVITY_CASES, compare=functools.partial(close, rel=1e-6),
                     describe=lambda a: f"lower={a[0]}, upper={a[1]}, n={a[2]}")


def check_laplace_mechanism(func, *, draws: int = 20_000) -> Feedback:
    """Check ``func(value, sensitivity, epsilon, rng)`` adds Laplace noise of scale sensitivity/epsilon.

    Statistical and seeded: ``draws`` calls with value 10, sensitivity 2, ε = 0.5 (b = 4) must
    have mean 10 and variance 2b² within 5 standard errors, pass a Kolmogorov–Smirnov test
    against Laplace(10, 4) at level 1e-3, and the function must use the ``rng`` it is given.
    """
    value, sensitivity, epsilon = 10.0, 2.0, 0.5
    b = sensitivity / epsilon
    def calls():
        first = func(value, sensitivity, epsilon, np.random.default_rng(2024))
        again = func(value, sensitivity, epsilon, np.random.default_rng(2024))
        rng = np.random.default_rng(7)
        return first, again, np.array([float(func(value, sensitivity, epsilon, rng)) for _ in range(draws)])

    answers, failed = attempt(calls)
    if failed is not None:
        return failed
    first, again, samples = answers
    if np.ndim(first) != 0 or not np.isfinite(samples).all():
        return Feedback(False, "Not yet: return one finite number, the noisy value.")
    if float(first) != float(again):
        return Feedback(False, "Not yet: two calls with the same seeded rng gave different answers. "
                               "Draw the noise from the rng argument, not from np.random.")
    if float(first) == value:
        return Feedback(False, "Not yet: the value came back unchanged. Add the noise.")
    # Mean: SE √2·b/√n. Variance: Var(s²) ≈ 20 b⁴/n for Laplace noise, so 5 SE each.
    se_mean = math.sqrt(2) * b / math.sqrt(draws)
    se_var = math.sqrt(20.0 / draws) * b ** 2
    mean, std = samples.mean(), samples.std()
    if abs(mean - value) > 5 * se_mean:
        return Feedback(False, f"Not yet: the answers should be centred on the value {value:g}, "
                               f"but they average {mean:.2f}.")
    if abs(samples.var() - 2 * b ** 2) > 5 * se_var:
        return Feedback(False, f"Not yet: with sensitivity {sensitivity:g} and ε = {epsilon:g} the noise "
                               f"std should be √2·b = {math.sqrt(2) * b:.2f} (b = sensitivity/ε = {b:g}); "
                               f"yours is {std:.2f}.")
    if stats.kstest(samples, stats.laplace(loc=value, scale=b).cdf).pvalue < 1e-3:
        return Feedback(False, "Not yet: the spread is right but the shape is not Laplace "
                               "(is it Gaussian noise?). Use rng.laplace.")
    return Feedback(True, f"Correct: {draws:,} noisy answers are centred on {value:g} with std "
                          f"{std:.2f} ≈ √2·b = {math.sqrt(2) * b:.2f}, and Laplace-shaped.")
