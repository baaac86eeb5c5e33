"""Laplace noise in floating point leaks; exact discrete Laplace noise does not.

**The naive sampler.** The textbook recipe draws a uniform double u in (0, 1] and a random
sign s, and outputs ``value + s·scale·(−ln u)`` (:func:`naive_laplace`; Mironov 2012 calls it the
textbook algorithm). In exact arithmetic this is Laplace noise. In floating point, u takes only
2^53 values and ln, the product and the sum each round, so the *set of doubles* the sampler can
output is a sparse, irregular set — and it depends on ``value``. An output that the sampler can
produce from a count of 1 may be impossible from a count of 0: seeing it, an attacker knows the
count with certainty, whatever ε promised: its likelihood ratio is infinite, so the sampler is
not ε-DP for any ε (Mironov 2012).
:func:`naive_laplace_pmf` computes the exact probability of each double under the naive sampler
(by inverting it and checking every u that could round to the output), and
:func:`floating_point_attack` turns that into the attacker's best guess.

**The safe sampler.** :func:`discrete_laplace_mechanism` answers a query whose values lie on a grid
(counts: a grid of 1) with noise from the *discrete* Laplace distribution,
P(z) ∝ exp(−ε|z|/k) on the integers, sampled exactly with integer arithmetic only (Canonne,
Kamath & Steinke 2020, Algorithms 1 and 2): every random choice is a Bernoulli trial with a
rational probability, decided by comparing a uniform random integer with a numerator. No
logarithm or exponential is ever evaluated in floating point on the way to the output, so the
outputs are exactly the grid points, with exactly the intended probabilities; the mechanism is
exactly ε-DP (for the ε it reports, see below).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from dpfl_course._validate import check_epsilon, check_finite, check_int
from dpfl_course.dp.mechanisms import _check_sensitivity, _numpy_generator

__all__ = [
    "naive_laplace",
    "naive_laplace_pmf",
    "floating_point_attack",
    "sample_discrete_laplace",
    "discrete_laplace_mechanism",
    "exact_epsilon",
]

_TWO53 = 2.0 ** 53
_EPSILON_BITS = 20  # ε is rounded down to a multiple of 2^-20 for the exact sampler
_MAX_WINDOW = 100_000  # candidate u per output beyond which naive_laplace_pmf refuses


# ---------------------------------------------------------------------------------------------
# the naive floating-point sampler and its attack
# ---------------------------------------------------------------------------------------------

def _magnitude(u: np.ndarray, scale: float) -> np.ndarray:
    # The one place the naive sampler's arithmetic lives: naive_laplace and naive_laplace_pmf
    # must round identically, always on float64 arrays (NumPy's array log).
    return -(scale * np.log(u))


def naive_laplace(value, *, scale, size=None, generator=None):
    """The textbook Laplace sampler in floating point: ``value + s·scale·(−ln u)``.

    u is a uniform double in (0, 1] (a multiple of 2^-53, as NumPy draws it) and s a fair random
    sign. Use it to *see* the floating-point attack; never to protect data.

    Args:
        value: the exact answer, a finite number.
        scale: Laplace scale b > 0 (b = sensitivity / ε).
        size: None for one float, or a number of independent draws (an array).
        generator: a ``numpy.random.Generator``; None makes a fresh unseeded one.

    >>> rng = np.random.default_rng(0)
    >>> naive_laplace(1.0, scale=2.0, size=3, generator=rng).round(4).tolist()
    [-1.0265, 0.3712, 0.9163]
    """
    value = check_finite("value", value)
    scale = check_finite("scale", scale, low=0, low_open=True)
    g = _numpy_generator(generator)
    n = 1 if size is None else check_int("size", size, low=0)
    u = 1.0 - g.random(n)  # exactly k·2^-53 for k in 1..2^53: (0, 1]
    sign = np.where(g.integers(0, 2, size=n) == 1, 1.0, -1.0)
    out = value + sign * _magnitude(u, scale)
    return float(out[0]) if size is None else out


def naive_laplace_pmf(outputs, *, value, scale) -> np.ndarray:
    """Exact probability that :func:`naive_laplace` (``value``, ``scale``) outputs each double.

    For an output x, the draws (k, s) with u = k·2^-53 that could round to x lie near
    u ≈ exp(−|x − value|/scale); this checks every k in a window wide enough to hold all of
    them (one unit of x in the last place, plus margin) and counts the exact matches.
    The probability is that count / 2^54. A probability of 0 means the sampler can never output
    x from ``value`` — the heart of Mironov's attack.

    Args:
        outputs: observed doubles (number or array).
        value: the candidate true value.
        scale: the sampler's scale b > 0.

    Returns:
        A float64 array of probabilities, one per output (shape of ``outputs``).

    Raises:
        ValueError: on non-finite inputs, or if ``scale`` is so small next to ``value`` that
            more than 100,000 draws could round to one output (the check would be too slow).

    >>> rng = np.random.default_rng(0)
    >>> x = naive_laplace(0.0, scale=2.0, size=4, generator=rng)
    >>> (naive_laplace_pmf(x, value=0.0, scale=2.0) > 0).tolist()
    [True, True, True, True]
    """
    value = check_finite("value", value)
    scale = check_finite("scale", scale, low=0, low_open=True)
    x = np.asarray(outputs, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("outputs must hold only finite numbers (no NaN or inf)")
    flat = x.ravel()
    gap = np.abs(flat - value)
    u0 = np.exp(-gap / scale)
    k0 = np.rint(u0 * _TWO53)
    # How many k-steps one unit in the last place of x (or of the gap) spans, plus a margin for
    # the rounding of gap and exp above: every k that can round to x lies in this window.
    ulp = np.spacing(np.maximum(np.maximum(np.abs(flat), abs(value)), gap))
    half = np.ceil(2.0 * ulp * _TWO53 * np.maximum(u0, 1.0 / _TWO53) / scale) + 4.0
    if half.size and half.max() > _MAX_WINDOW:
        raise ValueError(f"scale must not be tiny next to value (scale={scale:g}, value={value:g}): "
                         "too many draws round to the same output for an exact count")
    counts = np.zeros(flat.shape, dtype=np.int64)
    half = half.astype(np.int64)
    for offset in range(-int(half.max(initial=0)), int(half.max(initial=0)) + 1):
        rows = np.nonzero(half >= abs(offset))[0]
        k = k0[rows] + offset
        ok = (k >= 1) & (k <= _TWO53)
        rows, k = rows[ok], k[ok]
        magnitude = _magnitude(k * 2.0 ** -53, scale)
        for sign in (1.0, -1.0):
            counts[rows] += (value + sign * magnitude) == flat[rows]
    return (counts / 2.0 ** 54).reshape(x.shape)


def floating_point_attack(outputs, *, values, scale) -> np.ndarray:
    """Mironov's attack: for each output of :func:`naive_laplace`, guess which value produced it.

    The attacker knows the two candidate answers (e.g. a count of 0 on D and 1 on D′) and the
    scale. It picks the value under which the output is *more probable*, using the exact
    probabilities of :func:`naive_laplace_pmf`; when an output is impossible under one value the
    guess is certain. Ties (equal probability) go to the value nearer to the output, as the
    continuous Laplace densities would decide, and exact ties to the first value.

    Args:
        outputs: observed outputs of the naive sampler.
        values: the two candidate true values ``(value_d, value_d_prime)``.
        scale: the sampler's scale b > 0.

    Returns:
        An int64 array of guesses: 0 for ``values[0]``, 1 for ``values[1]``.

    >>> rng = np.random.default_rng(1)
    >>> x = naive_laplace(1.0, scale=10.0, size=2000, generator=rng)
    >>> round(float((floating_point_attack(x, values=(0.0, 1.0), scale=10.0) == 1).mean()), 2) > 0.6
    True
    """
    try:
        first, second = values
    except (TypeError, ValueError):
        raise ValueError(f"values must be two candidate values (value_d, value_d_prime), got {values!r}") from None
    first, second = check_finite("values[0]", first), check_finite("values[1]", second)
    if first == second:
        raise ValueError("values must be two different numbers")
    x = np.asarray(outputs, dtype=np.float64)
    p_first = naive_laplace_pmf(x, value=first, scale=scale)
    p_second = naive_laplace_pmf(x, value=second, scale=scale)
    nearer_second = np.abs(x - second) < np.abs(x - first)
    return np.where(p_second > p_first, 1,
                    np.where(p_first > p_second, 0, nearer_second.astype(np.int64))).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# exact discrete Laplace (Canonne, Kamath & Steinke 2020)
# ---------------------------------------------------------------------------------------------

def _bernoulli_exp_minus(numerator: np.ndarray, denominator: int, g: np.random.Generator) -> np.ndarray:
    """Bernoulli(exp(−γ)) for γ = numerator/denominator in [0, 1], exactly (CKS Algorithm 1).

    Draw A_k ~ Bernoulli(γ/k) for k = 1, 2, ... until the first failure; the result is 1 when
    that k is odd. Each Bernoulli(a/b) compares a uniform integer in [0, b) with a.
    """
    numerator = np.asarray(numerator, dtype=np.int64)
    k = np.ones(numerator.shape, dtype=np.int64)
    alive = np.ones(numerator.shape, dtype=bool)
    while alive.any():
        rows = np.nonzero(alive)[0]
        success = g.integers(0, denominator * k[rows]) < numerator[rows]
        k[rows[success]] += 1
        alive[rows[~success]] = False
    return k % 2 == 1


def _check_scale_fraction(scale) -> Fraction:
    if isinstance(scale, Fraction):
        if scale <= 0:
            raise ValueError(f"scale must be a finite number in (0, inf), got {scale}")
        fraction = scale
    else:
        fraction = Fraction(check_finite("scale", scale, low=0, low_open=True))
    if fraction > 2 ** 20:
        raise ValueError(f"scale must be at most 2**20 for the exact sampler, got {float(fraction):g}")
    if fraction.numerator > 2 ** 40 or fraction.denominator > 2 ** 40:
        # Keep integers small enough for int64: round the scale *up* to a multiple of 2^-20
        # (more noise, so never less privacy).
        fraction = Fraction(math.ceil(fraction * 2 ** 20), 2 ** 20)
    return fraction


def sample_discrete_laplace(scale, *, size=None, generator=None):
    """Exact samples of the discrete Laplace distribution P(z) ∝ exp(−|z|/scale) on the integers.

    Canonne, Kamath & Steinke (2020), Algorithm 2, vectorised: with scale = t/s (integers),
    draw U uniform in {0..t−1} and keep it with probability exp(−U/t); draw V, the number of
    successes of Bernoulli(exp(−1)) before the first failure; Y = ⌊(U + t·V)/s⌋; a fair sign;
    reject (−, 0) so that 0 is not counted twice. Only integer arithmetic is used.

    Args:
        scale: > 0, an int, a float (its exact binary value is used) or a ``fractions.Fraction``;
            scales whose fraction has a numerator or denominator above 2^40 are rounded up to
            a multiple of 2^-20; at most 2^20.
        size: None for one int, or a number of draws (an int64 array).
        generator: a ``numpy.random.Generator``; None makes a fresh unseeded one.

    >>> rng = np.random.default_rng(0)
    >>> sample_discrete_laplace(2, size=8, generator=rng).tolist()
    [-5, -3, 0, 0, 0, 3, -3, -1]
    """
    fraction = _check_scale_fraction(scale)
    t, s = fraction.numerator, fraction.denominator
    g = _numpy_generator(generator)
    n = 1 if size is None else check_int("size", size, low=0)
    accepted: list[np.ndarray] = []
    missing = n
    while missing > 0:
        batch = max(64, 3 * missing)  # about a third of the draws is rejected, at most
        u = g.integers(0, t, size=batch)
        u = u[_bernoulli_exp_minus(u, t, g)]
        v = np.zeros(u.shape, dtype=np.int64)
        alive = np.ones(u.shape, dtype=bool)
        while alive.any():  # geometric: count successes of Bernoulli(exp(−1))
            rows = np.nonzero(alive)[0]
            success = _bernoulli_exp_minus(np.ones(rows.size, dtype=np.int64), 1, g)
            v[rows[success]] += 1
            alive[rows[~success]] = False
        y = (u + t * v) // s
        negative = g.integers(0, 2, size=y.size) == 1
        keep = ~(negative & (y == 0))
        z = np.where(negative, -y, y)[keep]
        accepted.append(z[:missing])
        missing -= min(missing, z.size)
    out = np.concatenate(accepted) if accepted else np.zeros(0, dtype=np.int64)
    return int(out[0]) if size is None else out.astype(np.int64)


def exact_epsilon(epsilon) -> Fraction:
    """The ε the exact sampler really uses: ε rounded *down* to a multiple of 2^-20.

    Rounding down adds a hair more noise, so the promise ε still holds; it keeps the integers
    of the exact sampler small.

    >>> exact_epsilon(0.5), float(exact_epsilon(0.1))
    (Fraction(1, 2), 0.09999942779541016)
    """
    epsilon = check_epsilon(epsilon)
    fraction = Fraction(math.floor(Fraction(epsilon) * 2 ** _EPSILON_BITS), 2 ** _EPSILON_BITS)
    if fraction == 0:
        raise ValueError(f"epsilon must be at least 2**-20 for the exact sampler, got {epsilon!r}")
    return fraction


def discrete_laplace_mechanism(value, *, sensitivity, epsilon, granularity=1.0, generator=None):
    """ε-DP release of a grid-valued query with exact discrete Laplace noise (no floating-point leak).

    The query's values must lie on the grid {granularity·n : n integer} — counts do, with the
    default granularity 1. With k = ⌈sensitivity/granularity⌉ grid steps of sensitivity, the
    output is granularity·(n + z), z ~ P(z) ∝ exp(−ε|z|/k) sampled by
    :func:`sample_discrete_laplace`. Neighbouring datasets shift n by at most k, so the output
    probabilities differ by at most a factor e^ε on every grid point: exactly ε-DP. Outputs from
    D and D′ take exactly the same set of values, which is what defeats
    :func:`floating_point_attack`.

    For a real-valued query, first round it to the grid yourself and add one granularity to
    its sensitivity (rounding can move neighbours one step further apart).

    Args:
        value: the exact answer (number or array), a multiple of ``granularity``.
        sensitivity: > 0, in the query's units.
        epsilon: > 0; used as :func:`exact_epsilon` (rounded down to a multiple of 2^-20).
        granularity: the grid step, > 0.
        generator: a ``numpy.random.Generator``; None makes a fresh unseeded one.

    Returns:
        A float (for a number) or float64 array of grid points.

    Raises:
        ValueError: if a parameter is out of range or value is not on the grid.

    >>> rng = np.random.default_rng(0)
    >>> discrete_laplace_mechanism(np.array([10, 20, 30]), sensitivity=1, epsilon=0.5, generator=rng).tolist()
    [5.0, 17.0, 30.0]
    """
    sensitivity = _check_sensitivity(sensitivity)
    granularity = check_finite("granularity", granularity, low=0, low_open=True)
    eps = exact_epsilon(epsilon)
    g = _numpy_generator(generator)
    scalar = np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    if scalar:
        array = np.array([check_finite("value", value)])
    else:
        array = np.asarray(value)
        if array.dtype.kind not in "iuf" or not np.isfinite(array).all():
            raise ValueError("value must hold only finite numbers (no NaN or inf)")
        array = array.astype(np.float64).ravel()
    steps = np.rint(array / granularity)
    if not np.allclose(steps * granularity, array, rtol=1e-9, atol=1e-12):
        raise ValueError(f"value must be a multiple of granularity={granularity:g} "
                         "(round the query to the grid first and add one granularity to its sensitivity)")
    # A hair of tolerance so that 0.3/0.1 counts as 3 steps, not 4.
    k = max(1, math.ceil(sensitivity / granularity - 1e-9))
    if Fraction(k) / eps > 2 ** 20:
        raise ValueError(f"sensitivity / (granularity · epsilon) must be at most 2**20 for the exact "
                         f"sampler, got {float(Fraction(k) / eps):g} (sensitivity={sensitivity:g}, "
                         f"granularity={granularity:g}, epsilon={float(eps):g}); use a coarser granularity")
    noise = sample_discrete_laplace(Fraction(k) / eps, size=array.size, generator=g)
    out = granularity * (steps + noise)
    return float(out[0]) if scalar else out.reshape(np.shape(value))
