"""The classic mechanisms: their noise has the promised distribution, the Gaussian calibration is
exact, the exponential mechanism selects with the promised probabilities, randomized response's
estimator is unbiased, and bad inputs are refused with the parameter's name.

Statistical tests use fixed seeds, so they are deterministic; each tolerance is chosen so that a
correct sampler would fail it with small probability for a *random* seed (stated per test), and a
wrong one (e.g. Laplace with std b instead of √2·b) fails it by far.
"""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from dpfl_course.dp import mechanisms as M

N = 200_000


# ---------------------------------------------------------------------------------------------
# Laplace
# ---------------------------------------------------------------------------------------------

def test_laplace_noise_is_laplace_with_std_sqrt2_times_b():
    b = 2.0 / 0.5  # sensitivity / epsilon
    noise = M.laplace_mechanism(np.zeros(N), sensitivity=2.0, epsilon=0.5,
                                generator=np.random.default_rng(1))
    # KS at level 1e-3: a correct sampler fails with probability 0.001 for a random seed.
    assert stats.kstest(noise, stats.laplace(scale=b).cdf).pvalue > 1e-3
    # Var(sample variance) ≈ (E X^4 − (E X²)²)/n = (24 − 4) b^4 / n, so 5 standard errors:
    se = math.sqrt(20.0 / N) * b ** 2
    assert abs(noise.var() - 2 * b ** 2) < 5 * se
    # the std itself: relative SE ≈ se / (2 · 2b²), so √2·b within 5 SE, and "std = b" (the
    # source article's claim) is ~170 SE away
    assert abs(noise.std() / b - math.sqrt(2)) < 5 * math.sqrt(2) * se / (4 * b ** 2)
    assert abs(noise.mean()) < 5 * math.sqrt(2) * b / math.sqrt(N)


def test_laplace_keeps_the_kind_of_value():
    rng = np.random.default_rng(0)
    out = M.laplace_mechanism(3, sensitivity=1.0, epsilon=1.0, generator=rng)
    assert type(out) is float
    arr = M.laplace_mechanism(np.array([1, 2, 3]), sensitivity=1.0, epsilon=1.0, generator=rng)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (3,)
    f32 = M.laplace_mechanism(np.ones((2, 2), np.float32), sensitivity=1.0, epsilon=1.0, generator=rng)
    assert f32.dtype == np.float32 and f32.shape == (2, 2)
    t = M.laplace_mechanism(torch.zeros(4, dtype=torch.float32), sensitivity=1.0, epsilon=1.0,
                            generator=torch.Generator().manual_seed(0))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (4,)
    counts = M.laplace_mechanism(torch.tensor([5, 6]), sensitivity=1.0, epsilon=1.0,
                                 generator=torch.Generator().manual_seed(0))
    assert counts.is_floating_point()


def test_laplace_torch_noise_is_laplace():
    b = 1.0 / 0.8
    noise = M.laplace_mechanism(torch.zeros(N, dtype=torch.float64), sensitivity=1.0, epsilon=0.8,
                                generator=torch.Generator().manual_seed(3)).numpy()
    assert stats.kstest(noise, stats.laplace(scale=b).cdf).pvalue > 1e-3  # level 1e-3, as above
    assert abs(noise.var() - 2 * b ** 2) < 5 * math.sqrt(20.0 / N) * b ** 2


def test_same_generator_seed_gives_the_same_noise():
    a = M.laplace_mechanism(np.zeros(5), sensitivity=1.0, epsilon=1.0, generator=np.random.default_rng(7))
    b = M.laplace_mechanism(np.zeros(5), sensitivity=1.0, epsilon=1.0, generator=np.random.default_rng(7))
    assert np.array_equal(a, b)
    ta = M.gaussian_mechanism(torch.zeros(5), sensitivity=1.0, epsilon=1.0, delta=1e-5,
                              generator=torch.Generator().manual_seed(7))
    tb = M.gaussian_mechanism(torch.zeros(5), sensitivity=1.0, epsilon=1.0, delta=1e-5,
                              generator=torch.Generator().manual_seed(7))
    assert torch.equal(ta, tb)
    # None: a fresh generator each call (documented as not reproducible)
    assert not np.array_equal(M.laplace_mechanism(np.zeros(5), sensitivity=1.0, epsilon=1.0),
                              M.laplace_mechanism(np.zeros(5), sensitivity=1.0, epsilon=1.0))


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------

def exact_delta(sigma, epsilon, sensitivity=1.0):
    """Balle & Wang (2018) Theorem 8, written independently of the package with plain cdfs."""
    a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
    return stats.norm.cdf(a - b) - math.exp(epsilon) * stats.norm.cdf(-a - b)


def test_reference_numbers_from_course_md():
    assert round(M.gaussian_sigma(epsilon=1.0, delta=1e-5), 4) == 3.7306
    assert round(M.gaussian_sigma(epsilon=1.0, delta=1e-5, analytic=False), 4) == 4.8448


GRID = [(0.1, 1e-5, 1.0), (0.5, 1e-6, 2.0), (1.0, 1e-5, 1.0), (3.0, 1e-3, 0.5), (8.0, 1e-8, 1.0)]


@pytest.mark.parametrize("epsilon,delta,sensitivity", GRID, ids=[f"eps{e}-delta{d}-sens{s}" for e, d, s in GRID])
def test_analytic_sigma_is_the_smallest_sigma_meeting_the_exact_condition(epsilon, delta, sensitivity):
    sigma = M.gaussian_sigma(epsilon=epsilon, delta=delta, sensitivity=sensitivity)
    assert exact_delta(sigma, epsilon, sensitivity) <= delta * (1 + 1e-9)
    assert exact_delta(sigma, epsilon, sensitivity) == pytest.approx(delta, rel=1e-6)  # tight
    assert exact_delta(0.999 * sigma, epsilon, sensitivity) > delta  # any smaller σ fails
    assert M.gaussian_delta(sigma, epsilon=epsilon, sensitivity=sensitivity) == pytest.approx(delta, rel=1e-9)


def balle_wang_algorithm_1(epsilon, delta):
    """Balle & Wang's Algorithm 1 as printed (Δ = 1), an independent route to the same σ."""
    Phi = stats.norm.cdf
    delta0 = Phi(0) - math.exp(epsilon) * Phi(-math.sqrt(2 * epsilon))
    if delta >= delta0:
        b_plus = lambda v: Phi(math.sqrt(epsilon * v)) - math.exp(epsilon) * Phi(-math.sqrt(epsilon * (v + 2))) - delta
        v = optimize.brentq(b_plus, 0, 1e4, xtol=1e-14)
        alpha = math.sqrt(1 + v / 2) - math.sqrt(v / 2)
    else:
        b_minus = lambda u: Phi(-math.sqrt(epsilon * u)) - math.exp(epsilon) * Phi(-math.sqrt(epsilon * (u + 2))) - delta
        u = optimize.brentq(b_minus, 0, 1e4, xtol=1e-14)
        alpha = math.sqrt(1 + u / 2) + math.sqrt(u / 2)
    return alpha / math.sqrt(2 * epsilon)


@pytest.mark.parametrize("epsilon,delta", [(0.5, 1e-5), (1.0, 1e-5), (2.0, 0.3), (4.0, 1e-6)],
                         ids=["eps0.5", "eps1", "eps2-large-delta", "eps4"])
def test_analytic_sigma_matches_balle_wang_algorithm_1_and_dp_accounting(epsilon, delta):
    from dp_accounting.pld import accountant, common

    ours = M.gaussian_sigma(epsilon=epsilon, delta=delta)
    assert ours == pytest.approx(balle_wang_algorithm_1(epsilon, delta), rel=1e-7)
    reference = accountant.get_smallest_gaussian_noise(common.DifferentialPrivacyParameters(epsilon, delta), 1, 1.0)
    assert ours == pytest.approx(reference, rel=1e-6)  # Google's PLD search bisects to ~1e-8


def test_analytic_sigma_is_accurate_for_tiny_delta_and_large_epsilon():
    # e^ε Φ(·) would overflow / underflow in plain arithmetic here; the log-space search holds.
    for epsilon, delta in [(200.0, 1e-5), (0.01, 1e-100), (50.0, 1e-200)]:
        sigma = M.gaussian_sigma(epsilon=epsilon, delta=delta)
        assert math.isfinite(sigma) and sigma > 0
        assert M.gaussian_delta(sigma, epsilon=epsilon) == pytest.approx(delta, rel=1e-6)
        assert M.gaussian_delta(0.999 * sigma, epsilon=epsilon) > delta


def test_classical_sigma_is_valid_below_epsilon_one_and_unproven_above():
    for epsilon in (0.05, 0.3, 0.7, 0.99):
        for delta in (1e-3, 1e-5, 1e-9):
            classical = M.gaussian_sigma(epsilon=epsilon, delta=delta, analytic=False)
            assert classical == pytest.approx(math.sqrt(2 * math.log(1.25 / delta)) / epsilon)
            assert classical >= M.gaussian_sigma(epsilon=epsilon, delta=delta)
            assert exact_delta(classical, epsilon) <= delta  # the theorem holds for ε < 1
    # For ε ≥ 1 the formula is still returned (documented) but carries no proof; at ε = 10 it is
    # really too small: its exact δ exceeds the δ it was computed for.
    classical = M.gaussian_sigma(epsilon=10.0, delta=1e-5, analytic=False)
    assert exact_delta(classical, 10.0) > 1e-5


def test_gaussian_noise_has_the_calibrated_std():
    sigma = M.gaussian_sigma(epsilon=0.5, delta=1e-5, sensitivity=2.0)
    noise = M.gaussian_mechanism(np.zeros(N), sensitivity=2.0, epsilon=0.5, delta=1e-5,
                                 generator=np.random.default_rng(2))
    assert stats.kstest(noise / sigma, "norm").pvalue > 1e-3  # level 1e-3
    assert abs(noise.std() / sigma - 1) < 5 / math.sqrt(2 * N)  # SE of a normal sample std: σ/√(2n)
    tnoise = M.gaussian_mechanism(torch.zeros(N, dtype=torch.float64), sensitivity=2.0, epsilon=0.5,
                                  delta=1e-5, generator=torch.Generator().manual_seed(2)).numpy()
    assert stats.kstest(tnoise / sigma, "norm").pvalue > 1e-3
    classical = M.gaussian_mechanism(np.zeros(N), sensitivity=2.0, epsilon=0.5, delta=1e-5,
                                     generator=np.random.default_rng(2), analytic=False)
    assert classical.std() > noise.std() * 1.3  # classical calibration adds ~38 % more noise here


# ---------------------------------------------------------------------------------------------
# exponential mechanism
# ---------------------------------------------------------------------------------------------

def test_exponential_mechanism_frequencies_match_exp_eps_u_over_2_delta():
    scores = np.array([3.0, 1.0, 0.0, 2.5, -1.0])
    epsilon, sensitivity = 1.2, 1.0
    weights = np.exp(epsilon * scores / (2 * sensitivity))
    expected = weights / weights.sum()
    picks = M.exponential_mechanism(scores, sensitivity=sensitivity, epsilon=epsilon,
                                    generator=np.random.default_rng(4), size=N)
    observed = np.bincount(picks, minlength=scores.size)
    # chi-square goodness of fit at level 1e-3
    assert stats.chisquare(observed, expected * N).pvalue > 1e-3
    assert np.allclose(M.exponential_probabilities(scores, sensitivity=sensitivity, epsilon=epsilon), expected)
    # and a wrong exponent (ε·u/Δ, forgetting the 2) is rejected by the same test
    wrong = np.exp(epsilon * scores / sensitivity)
    assert stats.chisquare(observed, wrong / wrong.sum() * N).pvalue < 1e-10


def test_exponential_mechanism_single_pick_and_huge_scores():
    rng = np.random.default_rng(0)
    pick = M.exponential_mechanism([0.0, 1.0], sensitivity=1.0, epsilon=1.0, generator=rng)
    assert type(pick) is int and pick in (0, 1)
    # exp(ε·u/2Δ) would overflow: the log-space sampler still picks the clear winner
    huge = [1e6, 2e6, 0.0]
    assert M.exponential_mechanism(huge, sensitivity=1.0, epsilon=10.0, generator=rng) == 1
    assert M.exponential_probabilities(huge, sensitivity=1.0, epsilon=10.0).tolist() == [0.0, 1.0, 0.0]
    assert M.exponential_mechanism(torch.tensor([0.0, 100.0]), sensitivity=1.0, epsilon=1.0, generator=rng) == 1


# ---------------------------------------------------------------------------------------------
# randomized response
# ---------------------------------------------------------------------------------------------

def test_randomized_response_keeps_the_bit_with_probability_e_eps_over_1_plus_e_eps():
    epsilon = 1.0
    keep = math.exp(epsilon) / (1 + math.exp(epsilon))
    assert M.keep_probability(epsilon) == pytest.approx(keep)
    bits = np.random.default_rng(0).integers(0, 2, size=N)
    reports = M.randomized_response(bits, epsilon=epsilon, generator=np.random.default_rng(5))
    kept = (reports == bits).mean()
    assert abs(kept - keep) < 5 * math.sqrt(keep * (1 - keep) / N)  # 5 standard errors
    treports = M.randomized_response(torch.tensor(bits), epsilon=epsilon, generator=torch.Generator().manual_seed(5))
    assert treports.dtype == torch.int64
    assert abs((treports.numpy() == bits).mean() - keep) < 5 * math.sqrt(keep * (1 - keep) / N)


def test_randomized_response_keeps_the_kind_of_bits():
    rng = np.random.default_rng(0)
    assert type(M.randomized_response(1, epsilon=1.0, generator=rng)) is int
    assert M.randomized_response(np.array([True, False]), epsilon=1.0, generator=rng).dtype == bool
    assert M.randomized_response([0, 1, 1], epsilon=1.0, generator=rng).shape == (3,)
    t = M.randomized_response(torch.tensor([True, False]), epsilon=1.0, generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.bool


@pytest.mark.parametrize("epsilon,fraction", [(0.5, 0.3), (2.0, 0.05)], ids=["eps0.5-f0.3", "eps2-f0.05"])
def test_frequency_estimator_is_unbiased_with_the_closed_form_variance(epsilon, fraction):
    n, trials = 500, 4000
    bits = (np.arange(n) < round(fraction * n)).astype(np.int64)
    f = bits.mean()
    rng = np.random.default_rng(6)
    estimates = np.array([M.estimate_frequency(M.randomized_response(bits, epsilon=epsilon, generator=rng),
                                               epsilon=epsilon) for _ in range(trials)])
    se = estimates.std(ddof=1) / math.sqrt(trials)
    assert abs(estimates.mean() - f) < 5 * se  # unbiased: within 5 standard errors
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    q = (1 - p) + f * (2 * p - 1)
    closed_form = q * (1 - q) / (n * (2 * p - 1) ** 2)  # not exact for fixed bits; see below
    # With fixed bits the reports are independent but not identical, so the true variance is
    # Σ q_i(1−q_i)/(n²(2p−1)²) = p(1−p)/(n(2p−1)²), slightly below the closed form's binomial one.
    exact = p * (1 - p) / (n * (2 * p - 1) ** 2)
    assert exact <= closed_form
    # sample variance of `trials` draws: relative SE ≈ √(2/(trials−1)) for near-normal estimates
    assert abs(estimates.var(ddof=1) / exact - 1) < 5 * math.sqrt(2 / (trials - 1))
    # estimates can leave [0, 1] (documented): with f = 0.05 and ε = 2 some go below 0
    if fraction == 0.05:
        assert (estimates < 0).any()


def test_estimator_on_known_reports():
    p = 0.75  # ε = ln 3
    assert M.estimate_frequency([1, 0, 0, 0], epsilon=math.log(3)) == pytest.approx((0.25 - (1 - p)) / (2 * p - 1))
    assert M.estimate_frequency(torch.tensor([1, 1, 0, 0]), epsilon=math.log(3)) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------

BAD = [
    ("epsilon-zero", lambda: M.laplace_mechanism(1.0, sensitivity=1.0, epsilon=0), "epsilon"),
    ("epsilon-negative", lambda: M.gaussian_mechanism(1.0, sensitivity=1.0, epsilon=-1, delta=1e-5), "epsilon"),
    ("epsilon-nan", lambda: M.gaussian_sigma(epsilon=float("nan"), delta=1e-5), "epsilon"),
    ("epsilon-inf", lambda: M.randomized_response([0, 1], epsilon=float("inf")), "epsilon"),
    ("delta-zero", lambda: M.gaussian_sigma(epsilon=1.0, delta=0.0), "delta"),
    ("delta-one", lambda: M.gaussian_mechanism(1.0, sensitivity=1.0, epsilon=1.0, delta=1.0), "delta"),
    ("delta-above-one", lambda: M.gaussian_sigma(epsilon=1.0, delta=1.5), "delta"),
    ("sensitivity-zero", lambda: M.laplace_mechanism(1.0, sensitivity=0, epsilon=1.0), "sensitivity"),
    ("sensitivity-negative", lambda: M.gaussian_sigma(epsilon=1.0, delta=1e-5, sensitivity=-2), "sensitivity"),
    ("sensitivity-nan", lambda: M.exponential_mechanism([1, 2], sensitivity=float("nan"), epsilon=1.0), "sensitivity"),
    ("value-nan", lambda: M.laplace_mechanism(float("nan"), sensitivity=1.0, epsilon=1.0), "value"),
    ("value-inf-array", lambda: M.laplace_mechanism(np.array([1.0, np.inf]), sensitivity=1.0, epsilon=1.0), "value"),
    ("value-nan-tensor", lambda: M.gaussian_mechanism(torch.tensor([float("nan")]), sensitivity=1.0, epsilon=1.0,
                                                      delta=1e-5), "value"),
    ("value-string", lambda: M.laplace_mechanism("3", sensitivity=1.0, epsilon=1.0), "value"),
    ("scores-empty", lambda: M.exponential_mechanism([], sensitivity=1.0, epsilon=1.0), "scores"),
    ("scores-nan", lambda: M.exponential_mechanism([1.0, float("nan")], sensitivity=1.0, epsilon=1.0), "scores"),
    ("scores-2d", lambda: M.exponential_probabilities([[1.0, 2.0]], sensitivity=1.0, epsilon=1.0), "scores"),
    ("bits-not-binary", lambda: M.randomized_response([0, 2, 1], epsilon=1.0), "bits"),
    ("responses-empty", lambda: M.estimate_frequency([], epsilon=1.0), "responses"),
    ("responses-not-binary", lambda: M.estimate_frequency([0.5, 1], epsilon=1.0), "responses"),
    ("generator-torch-for-numpy", lambda: M.laplace_mechanism(np.zeros(2), sensitivity=1.0, epsilon=1.0,
                                                              generator=torch.Generator()), "generator"),
    ("generator-numpy-for-tensor", lambda: M.laplace_mechanism(torch.zeros(2), sensitivity=1.0, epsilon=1.0,
                                                               generator=np.random.default_rng(0)), "generator"),
    ("analytic-not-bool", lambda: M.gaussian_sigma(epsilon=1.0, delta=1e-5, analytic="yes"), "analytic"),
    ("sigma-zero", lambda: M.gaussian_delta(0.0, epsilon=1.0), "sigma"),
]


@pytest.mark.parametrize("call,name", [(c, n) for _, c, n in BAD], ids=[i for i, _, _ in BAD])
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_range_is_in_the_message():
    with pytest.raises(ValueError, match=r"epsilon must be a finite number in \(0, inf\), got 0"):
        M.laplace_mechanism(1.0, sensitivity=1.0, epsilon=0)
    with pytest.raises(ValueError, match=r"delta must be a finite number in \(0, 1\)"):
        M.gaussian_sigma(epsilon=1.0, delta=1.0)


@pytest.mark.parametrize("make", [lambda: np.ones(3, dtype=np.float16), lambda: torch.ones(3, dtype=torch.float16),
                                  lambda: torch.ones(3, dtype=torch.bfloat16)], ids=["np16", "torch16", "bf16"])
def test_half_precision_values_are_refused(make):
    # float16 overflows at 65504 (Laplace noise at small ε turns into inf) and its coarse grid leaks more.
    with pytest.raises(ValueError, match="value must be float32 or float64"):
        M.laplace_mechanism(make(), sensitivity=1.0, epsilon=1e-6)
