"""Notebook 10's exercises: the Clopper–Pearson interval, and ε_LB from the counts of an audit.

The checkers compare the learner's function with the reference solution on small cases and
recognise the usual mistakes: forgetting that k = 0 and k = n have a one-sided interval, using
α instead of α/2 per side, plugging the measured rates into the DP inequalities instead of their
confidence bounds, using only the first inequality, and bounding the wrong side of an interval.
"""

from __future__ import annotations

import math

from scipy.stats import beta

from dpfl_course.exercises import Feedback, attempt, close


def clopper_pearson_interval(k, n, alpha):
    """Reference solution: the exact two-sided 1 − α interval of a binomial proportion k / n.

    >>> [round(v, 4) for v in clopper_pearson_interval(0, 10, 0.05)]
    [0.0, 0.3085]
    """
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def epsilon_lb(true_positives, positives, false_positives, negatives, delta, alpha, interval):
    """Reference solution: ε_LB from an audit's counts, with ``interval(k, n, alpha)`` giving (low, high).

    TPR's lower and FPR's upper bound go into both inequalities of (ε, δ)-DP,
    ``TPR ≤ e^ε·FPR + δ`` and ``1 − FPR ≤ e^ε·(1 − TPR) + δ``; the larger ε wins, and never below 0.

    >>> round(epsilon_lb(990, 1000, 10, 1000, 1e-5, 0.05, clopper_pearson_interval), 2)
    3.98
    """
    tpr_low = interval(true_positives, positives, alpha)[0]
    fpr_high = interval(false_positives, negatives, alpha)[1]
    candidates = [0.0]
    if tpr_low > delta:
        candidates.append(math.log((tpr_low - delta) / fpr_high))
    if 1 - delta - fpr_high > 0:
        candidates.append(math.log((1 - delta - fpr_high) / (1 - tpr_low)))
    return max(candidates)


# ---------------------------------------------------------------- exercise 1

_CP_CASES = [(7, 20, 0.05), (0, 10, 0.05), (10, 10, 0.05), (1, 1000, 0.01), (500, 1000, 0.1), (999, 1000, 0.05)]


def check_clopper_pearson(func) -> Feedback:
    """Check ``func(k, n, alpha)`` returns the Clopper–Pearson interval (low, high)."""
    for k, n, alpha in _CP_CASES:
        want = clopper_pearson_interval(k, n, alpha)
        got, failed = attempt(lambda: func(k, n, alpha), where=f"on k={k}, n={n}, alpha={alpha} ")
        if failed is not None:
            return failed
        try:
            low, high = got
        except (TypeError, ValueError):
            return Feedback(False, f"Not yet: on k={k}, n={n} return a pair (low, high), got {got!r}.")
        if close(low, want[0], rel=1e-6) and close(high, want[1], rel=1e-6):
            continue
        hint = ""
        if k in (0, n):
            hint = (" When k = 0 the lower end is 0 (and when k = n the upper end is 1): "
                    "Beta(·; 0, …) is not defined.")
        else:
            one_sided = (float(beta.ppf(alpha, k, n - k + 1)), float(beta.ppf(1 - alpha, k + 1, n - k)))
            if close(low, one_sided[0], rel=1e-6) or close(high, one_sided[1], rel=1e-6):
                hint = " Each side may fail with probability α/2, not α (a two-sided 1 − α interval)."
        return Feedback(False, f"Not yet: on k={k}, n={n}, alpha={alpha} expected "
                               f"({want[0]:.5f}, {want[1]:.5f}), got {got!r}.{hint}")
    return Feedback(True, f"Correct on all {len(_CP_CASES)} test cases: your interval is Clopper–Pearson's.")


# ---------------------------------------------------------------- exercise 2

# (true_positives, positives, false_positives, negatives, delta, alpha): a strong test, a perfect one,
# a coin flip, one where the second inequality wins (high TPR at high FPR), a small audit.
_LB_CASES = [
    (990, 1000, 10, 1000, 1e-5, 0.05),
    (500, 500, 0, 500, 1e-5, 0.05),
    (300, 1000, 300, 1000, 1e-5, 0.05),
    (9990, 10000, 5000, 10000, 1e-5, 0.05),
    (40, 50, 5, 50, 1e-3, 0.1),
]


def _describe(case):
    tp, p, fp, m, delta, alpha = case
    return f"TP={tp}/{p}, FP={fp}/{m}, delta={delta}, alpha={alpha}"


def _point_estimate(tp, p, fp, m, delta, alpha, interval):
    """A mistake: the measured rates instead of their confidence bounds (ε_LB too large)."""
    tpr, fpr = tp / p, fp / m
    if fpr == 0 or tpr == 1:
        return math.inf
    return max(0.0, math.log(max(tpr - delta, 1e-300) / fpr), math.log(max(1 - delta - fpr, 1e-300) / (1 - tpr)))


def _first_only(tp, p, fp, m, delta, alpha, interval):
    """A mistake: only TPR ≤ e^ε·FPR + δ, forgetting 1 − FPR ≤ e^ε·(1 − TPR) + δ."""
    tpr_low, fpr_high = interval(tp, p, alpha)[0], interval(fp, m, alpha)[1]
    return max(0.0, math.log((tpr_low - delta) / fpr_high)) if tpr_low > delta else 0.0


def check_epsilon_lb(func) -> Feedback:
    """Check ``func(tp, positives, fp, negatives, delta, alpha, interval)`` returns ε_LB."""
    for case in _LB_CASES:
        want = epsilon_lb(*case, clopper_pearson_interval)
        got, failed = attempt(lambda: func(*case, clopper_pearson_interval), where=f"on {_describe(case)} ")
        if failed is not None:
            return failed
        if close(got, want, rel=1e-6):
            continue
        hint = ""
        if close(got, _point_estimate(*case, clopper_pearson_interval), rel=1e-6):
            hint = (" You used the measured rates: an audit must use TPR's lower and FPR's upper "
                    "confidence bound, or luck in a few trials proves a large ε.")
        elif close(got, _first_only(*case, clopper_pearson_interval), rel=1e-6):
            hint = " Also use the second inequality, 1 − FPR ≤ e^ε·(1 − TPR) + δ."
        elif isinstance(got, (int, float)) and got > want:
            hint = " Yours is larger: check that you take TPR's *lower* and FPR's *upper* bound."
        return Feedback(False, f"Not yet: on {_describe(case)} expected ε_LB = {want:.4f}, got {got!r}.{hint}")
    return Feedback(True, f"Correct on all {len(_LB_CASES)} test cases.")
