"""The classic differential-privacy mechanisms: Laplace, Gaussian (classical and analytic
calibration), exponential, and randomized response with its unbiased frequency estimator.

Values may be a Python number, a NumPy array or a torch tensor; the noisy result has the same
kind (a number comes back as a ``float``). Randomness comes only from ``generator``: a
``numpy.random.Generator`` for numbers and arrays, a ``torch.Generator`` for tensors. With
``generator=None`` a fresh, unseeded generator is made, so the result is *not* reproducible —
pass a generator whenever a number must come out the same twice.

These samplers draw continuous noise in floating point, the textbook way. That is the right
model to learn the mathematics with, but floating-point Laplace noise leaks through its low-order
bits (Mironov 2012); :mod:`dpfl_course.dp.samplers` shows the attack and an exact discrete sampler.
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np
from scipy import optimize, special

from dpfl_course._validate import check_delta, check_epsilon, check_finite, check_int

__all__ = [
    "laplace_mechanism",
    "gaussian_mechanism",
    "gaussian_sigma",
    "gaussian_delta",
    "exponential_mechanism",
    "exponential_probabilities",
    "randomized_response",
    "keep_probability",
    "estimate_frequency",
]


# ---------------------------------------------------------------------------------------------
# shared checks
# ---------------------------------------------------------------------------------------------

def _torch_tensor(value) -> bool:
    # torch is imported lazily: if it is not loaded, value cannot be a tensor.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _check_sensitivity(sensitivity) -> float:
    return check_finite("sensitivity", sensitivity, low=0, low_open=True)


def _numpy_generator(generator) -> np.random.Generator:
    if generator is None:
        return np.random.default_rng()  # fresh OS entropy: not reproducible (documented)
    if not isinstance(generator, np.random.Generator):
        raise ValueError("generator must be a numpy.random.Generator (or None) for numbers and "
                         f"NumPy arrays, got {type(generator).__name__}")
    return generator


def _torch_generator(generator):
    import torch

    if generator is None:
        g = torch.Generator()
        g.seed()  # fresh entropy: not reproducible (documented)
        return g
    if not isinstance(generator, torch.Generator):
        raise ValueError("generator must be a torch.Generator (or None) for a torch tensor value, "
                         f"got {type(generator).__name__}")
    return generator


def _noisy(value, generator, draw_numpy, draw_torch):
    """Add noise to a number, array or tensor; the result has the value's kind."""
    if _torch_tensor(value):
        import torch

        if not bool(torch.isfinite(value).all()):
            raise ValueError("value must hold only finite numbers (no NaN or inf)")
        if value.is_floating_point() and value.element_size() < 4:
            raise ValueError(f"value must be float32 or float64 (or integers), got dtype {value.dtype}")
        g = _torch_generator(generator)
        dtype = value.dtype if value.is_floating_point() else torch.get_default_dtype()
        noise = draw_torch(tuple(value.shape), g, dtype)  # drawn on the CPU generator's device
        return value.to(dtype) + noise.to(value.device)
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"value must be a finite number or array of numbers, got {value!r}")
    g = _numpy_generator(generator)
    if np.ndim(value) == 0 and not isinstance(value, np.ndarray):
        if not isinstance(value, numbers.Real):
            raise ValueError(f"value must be a finite number or array of numbers, got {value!r}")
        v = check_finite("value", value)
        return float(v + draw_numpy((), g))
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"value must be a finite number or array of numbers, got dtype {array.dtype}")
    if array.dtype.kind == "f" and array.dtype.itemsize < 4:
        # float16 overflows at 65504 and its coarse grid leaks more (Mironov): refuse it.
        raise ValueError(f"value must be float32 or float64 (or integers), got dtype {array.dtype}")
    array = array.astype(np.float64) if array.dtype.kind in "iu" else array
    if not np.isfinite(array).all():
        raise ValueError("value must hold only finite numbers (no NaN or inf)")
    return array + draw_numpy(array.shape, g).astype(array.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Laplace
# ---------------------------------------------------------------------------------------------

def laplace_mechanism(value, *, sensitivity, epsilon, generator=None):
    """Release ``value`` with Laplace noise of scale b = sensitivity / epsilon: ε-DP.

    Each coordinate gets independent noise with density exp(−|x|/b) / (2b). Its standard
    deviation is **√2·b**, not b (a common slip, made by the course's source article).
    For a vector, ``sensitivity`` is the L1 sensitivity of the whole vector.

    Args:
        value: the exact answer f(D): a number, a NumPy array or a torch tensor (finite).
        sensitivity: how much f can change between neighbouring datasets (L1), > 0.
        epsilon: the privacy parameter ε > 0.
        generator: ``numpy.random.Generator`` (numbers, arrays) or ``torch.Generator`` (tensors);
            None makes a fresh unseeded one (not reproducible).

    Returns:
        f(D) + noise, of the same kind as ``value`` (numbers come back as float; integer
        arrays and tensors as floating point).

    Raises:
        ValueError: if epsilon or sensitivity is not a finite positive number, value holds
            NaN/inf, or the generator does not fit the value.

    >>> rng = np.random.default_rng(0)
    >>> round(laplace_mechanism(100, sensitivity=1.0, epsilon=0.5, generator=rng), 3)
    100.64
    """
    epsilon = check_epsilon(epsilon)
    sensitivity = _check_sensitivity(sensitivity)
    scale = sensitivity / epsilon

    def draw_numpy(shape, g):
        return g.laplace(0.0, scale, size=shape)

    def draw_torch(shape, g, dtype):
        import torch

        # Laplace = difference of two independent exponentials; exponential_ accepts a generator
        # (torch.distributions.Laplace does not) and never returns inf.
        e = torch.empty((2, *shape), dtype=torch.float64).exponential_(generator=g)
        return (scale * (e[0] - e[1])).to(dtype)

    return _noisy(value, generator, draw_numpy, draw_torch)


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------

def _log_gaussian_delta(sigma: float, epsilon: float, sensitivity: float) -> float:
    # log of Φ(Δ/2σ − εσ/Δ) − e^ε Φ(−Δ/2σ − εσ/Δ), in log space so that e^ε never overflows and
    # tiny δ keep their digits: log(A − B) = log A + log(−expm1(log B − log A)).
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    log_first = special.log_ndtr(a - b)
    log_second = epsilon + special.log_ndtr(-a - b)
    gap = log_second - log_first
    if gap >= 0.0:  # only reachable through rounding, when δ is below double precision
        return -math.inf
    return float(log_first + math.log(-math.expm1(gap)))


def gaussian_delta(sigma, *, epsilon, sensitivity=1.0) -> float:
    """The exact δ of the Gaussian mechanism with noise std ``sigma`` at a given ε.

    Balle & Wang (2018, Theorem 8): adding N(0, σ²) to a query of L2 sensitivity Δ is (ε, δ)-DP
    if and only if δ ≥ Φ(Δ/2σ − εσ/Δ) − e^ε·Φ(−Δ/2σ − εσ/Δ). This returns that right-hand side.

    >>> round(gaussian_delta(3.7306, epsilon=1.0), 8)
    1e-05
    """
    sigma = check_finite("sigma", sigma, low=0, low_open=True)
    epsilon = check_epsilon(epsilon)
    sensitivity = _check_sensitivity(sensitivity)
    return math.exp(_log_gaussian_delta(sigma, epsilon, sensitivity))


def gaussian_sigma(*, epsilon, delta, sensitivity=1.0, analytic=True) -> float:
    """The noise standard deviation σ that makes the Gaussian mechanism (ε, δ)-DP.

    * ``analytic=True`` (default): the *smallest* σ with (ε, δ)-DP, the analytic Gaussian
      mechanism of Balle & Wang (2018). Their Algorithm 1 solves the exact condition of
      :func:`gaussian_delta` for σ; here that condition (decreasing in σ) is solved directly by a
      bracketed root search in log space, which gives the same σ and stays accurate for tiny δ
      and large ε.
    * ``analytic=False``: the classical calibration σ = √(2 ln(1.25/δ))·Δ/ε (Dwork & Roth 2014,
      Theorem A.1). Its proof holds **only for ε < 1**. For ε ≥ 1 this function still returns
      the formula (so it can be compared with the analytic σ), but then the formula carries no
      guarantee — and for large ε it is really too small: at δ = 1e-5 it stops being
      (ε, δ)-DP above ε ≈ 8.4 (its σ falls below the analytic σ, the smallest valid one).

    Args:
        epsilon: ε > 0.
        delta: δ in (0, 1).
        sensitivity: L2 sensitivity Δ > 0.
        analytic: which calibration (see above).

    Returns:
        σ as a float.

    Raises:
        ValueError: if a parameter is out of range.

    >>> round(gaussian_sigma(epsilon=1.0, delta=1e-5), 4)
    3.7306
    >>> round(gaussian_sigma(epsilon=1.0, delta=1e-5, analytic=False), 4)
    4.8448
    """
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    sensitivity = _check_sensitivity(sensitivity)
    if not isinstance(analytic, (bool, np.bool_)):
        raise ValueError(f"analytic must be True or False, got {analytic!r}")
    if not analytic:
        return math.sqrt(2.0 * math.log(1.25 / delta)) * sensitivity / epsilon

    log_delta = math.log(delta)

    def excess(log_sigma: float) -> float:  # > 0 while σ is too small
        return _log_gaussian_delta(math.exp(log_sigma), epsilon, sensitivity) - log_delta

    guess = math.log(sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon)
    low = high = guess
    while excess(low) <= 0.0:
        low -= 1.0
    while excess(high) > 0.0:
        high += 1.0
    log_sigma = optimize.brentq(excess, low, high, xtol=1e-13, rtol=1e-15, maxiter=500)
    sigma = math.exp(log_sigma)
    # brentq may stop a hair below the root; never return a σ that violates the condition.
    while _log_gaussian_delta(sigma, epsilon, sensitivity) > log_delta:
        sigma = math.nextafter(sigma, math.inf)
    return sigma


def gaussian_mechanism(value, *, sensitivity, epsilon, delta, generator=None, analytic=True):
    """Release ``value`` with Gaussian noise calibrated for (ε, δ)-DP.

    The noise std is :func:`gaussian_sigma` (analytic calibration by default, the smallest σ
    that is (ε, δ)-DP). ``sensitivity`` is the L2 sensitivity of the whole value.

    Args:
        value: the exact answer f(D): a number, a NumPy array or a torch tensor (finite).
        sensitivity: L2 sensitivity Δ > 0.
        epsilon: ε > 0.
        delta: δ in (0, 1).
        generator: ``numpy.random.Generator`` (numbers, arrays) or ``torch.Generator`` (tensors);
            None makes a fresh unseeded one (not reproducible).
        analytic: passed to :func:`gaussian_sigma`.

    Returns:
        f(D) + N(0, σ²) noise, of the same kind as ``value``.

    Raises:
        ValueError: if a parameter is out of range or value holds NaN/inf.

    >>> rng = np.random.default_rng(0)
    >>> round(gaussian_mechanism(100, sensitivity=1.0, epsilon=1.0, delta=1e-5, generator=rng), 3)
    100.469
    """
    sigma = gaussian_sigma(epsilon=epsilon, delta=delta, sensitivity=sensitivity, analytic=analytic)

    def draw_numpy(shape, g):
        return g.normal(0.0, sigma, size=shape)

    def draw_torch(shape, g, dtype):
        import torch

        return (sigma * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)

    return _noisy(value, generator, draw_numpy, draw_torch)


# ---------------------------------------------------------------------------------------------
# exponential mechanism
# ---------------------------------------------------------------------------------------------

def _check_scores(scores) -> np.ndarray:
    if _torch_tensor(scores):
        scores = scores.detach().cpu().numpy()
    array = np.asarray(scores)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"scores must be numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("scores must hold only finite numbers (no NaN or inf)")
    return array


def exponential_probabilities(scores, *, sensitivity, epsilon) -> np.ndarray:
    """The exponential mechanism's selection probabilities, ∝ exp(ε·u/(2Δ)).

    Computed as a softmax in log space, so large scores or ε never overflow.

    >>> exponential_probabilities([0, 1], sensitivity=1.0, epsilon=2.0).round(4).tolist()
    [0.2689, 0.7311]
    """
    array = _check_scores(scores)
    epsilon = check_epsilon(epsilon)
    sensitivity = _check_sensitivity(sensitivity)
    return special.softmax(epsilon * array / (2.0 * sensitivity))


def exponential_mechanism(scores, *, sensitivity, epsilon, generator=None, size=None):
    """Choose an index i with probability ∝ exp(ε·u_i/(2Δ)): ε-DP selection (McSherry & Talwar 2007).

    ``scores[i]`` is the utility u(D, i) of candidate i; ``sensitivity`` Δ is how much any
    utility can change between neighbouring datasets. Sampling uses the Gumbel-max trick
    (argmax of ε·u/(2Δ) plus independent Gumbel noise), which is exact and works in log space.

    Args:
        scores: non-empty 1-D numbers (list, NumPy array or torch tensor).
        sensitivity: Δ > 0.
        epsilon: ε > 0.
        generator: a ``numpy.random.Generator`` (also for tensor scores); None makes a fresh
            unseeded one (not reproducible).
        size: None for one choice (an ``int``), or a count of independent choices (an int64 array).

    Raises:
        ValueError: on empty or non-finite scores, or a parameter out of range.

    >>> rng = np.random.default_rng(0)
    >>> exponential_mechanism([1.0, 50.0, 2.0], sensitivity=1.0, epsilon=1.0, generator=rng)
    1
    """
    array = _check_scores(scores)
    epsilon = check_epsilon(epsilon)
    sensitivity = _check_sensitivity(sensitivity)
    g = _numpy_generator(generator)
    logits = epsilon * array / (2.0 * sensitivity)
    if size is None:
        return int(np.argmax(logits + g.gumbel(size=array.shape)))
    size = check_int("size", size, low=1)
    return np.argmax(logits + g.gumbel(size=(size, array.size)), axis=1).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# randomized response (local DP)
# ---------------------------------------------------------------------------------------------

def keep_probability(epsilon) -> float:
    """Probability e^ε/(1+e^ε) that randomized response reports the true bit.

    >>> round(keep_probability(math.log(3)), 4)
    0.75
    """
    return float(special.expit(check_epsilon(epsilon)))


def _check_bits(name: str, bits) -> np.ndarray:
    array = bits.detach().cpu().numpy() if _torch_tensor(bits) else np.asarray(bits)
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1 (or False and True)")
    return array


def randomized_response(bits, *, epsilon, generator=None):
    """Warner's randomized response: report each bit truthfully with probability e^ε/(1+e^ε),
    flipped otherwise. Each report is ε-DP for its owner (local DP).

    Args:
        bits: 0/1 (or bool) values — a number, list, NumPy array or torch tensor.
        epsilon: ε > 0.
        generator: ``numpy.random.Generator`` (numbers, lists, arrays) or ``torch.Generator``
            (tensors); None makes a fresh unseeded one (not reproducible).

    Returns:
        The reports, of the same kind as ``bits``: an int for a single bit, an array of the same
        dtype for lists and arrays, a tensor of the same dtype for tensors.

    Raises:
        ValueError: if bits holds anything but 0 and 1, or epsilon is out of range.

    >>> rng = np.random.default_rng(0)
    >>> randomized_response([1, 1, 0, 0, 1], epsilon=2.0, generator=rng).tolist()
    [1, 1, 0, 0, 1]
    """
    epsilon = check_epsilon(epsilon)
    keep = keep_probability(epsilon)
    array = _check_bits("bits", bits)
    if _torch_tensor(bits):
        import torch

        g = _torch_generator(generator)
        flip = torch.rand(tuple(bits.shape), generator=g, dtype=torch.float64) >= keep
        flip = flip.to(bits.device)
        return torch.where(flip, 1 - bits.to(torch.int64), bits.to(torch.int64)).to(bits.dtype)
    g = _numpy_generator(generator)
    flip = g.random(array.shape) >= keep
    reports = np.where(flip, 1 - array.astype(np.int64), array.astype(np.int64)).astype(array.dtype)
    if np.ndim(bits) == 0 and not isinstance(bits, np.ndarray):
        return int(reports)
    return reports


def estimate_frequency(responses, *, epsilon) -> float:
    """Unbiased estimate of the true fraction of 1s from randomized-response reports.

    With keep probability p = e^ε/(1+e^ε), a report is 1 with probability
    (1 − p) + f·(2p − 1), so f̂ = (mean − (1 − p)) / (2p − 1) has E[f̂] = f exactly. Being
    unbiased, it can fall outside [0, 1] when f is near 0 or 1 or n is small; clipping it to
    [0, 1] would bias it. For n fixed true bits its variance is p(1 − p) / (n (2p − 1)²)
    = e^ε / (n (e^ε − 1)²), whatever the bits are.

    Args:
        responses: the 0/1 reports (list, NumPy array or torch tensor), at least one.
        epsilon: the ε each report was made with, > 0.

    Raises:
        ValueError: on empty or non-binary responses, or epsilon out of range.

    >>> round(estimate_frequency([1, 0, 0, 0], epsilon=math.log(3)), 4)
    0.0
    >>> round(estimate_frequency([1, 1, 1, 1], epsilon=math.log(3)), 4)
    1.5
    """
    epsilon = check_epsilon(epsilon)
    array = _check_bits("responses", responses)
    if array.size == 0:
        raise ValueError("responses must hold at least one report, got none")
    # 1 − p = expit(−ε) and 2p − 1 = tanh(ε/2), both without cancellation for small ε.
    return float((array.mean() - special.expit(-epsilon)) / math.tanh(epsilon / 2.0))
