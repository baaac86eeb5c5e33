"""Mironov's floating-point attack is real against the naive Laplace sampler and powerless against
the exact discrete Laplace sampler, whose outputs follow the discrete Laplace law exactly.

Fixed seeds make every statistical test deterministic; tolerances are stated in standard errors.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from dpfl_course.dp import samplers as S

EPSILON = 0.5  # counts 0 (D) and 1 (D′), sensitivity 1: scale b = 2
SCALE = 1.0 / EPSILON
BOUND = math.exp(EPSILON) / (1 + math.exp(EPSILON))  # best possible success against ε-DP
N = 10_000


def success_rate(guess_d, guess_d_prime):
    """Attack success with equal priors: right on D (guess 0) and on D′ (guess 1)."""
    return 0.5 * ((guess_d == 0).mean() + (guess_d_prime == 1).mean())


# ---------------------------------------------------------------------------------------------
# naive sampler and the attack
# ---------------------------------------------------------------------------------------------

def test_naive_sampler_looks_like_laplace_to_a_ks_test():
    x = S.naive_laplace(3.0, scale=SCALE, size=100_000, generator=np.random.default_rng(0))
    # KS at level 1e-3: its law is Laplace up to rounding; the leak is in which doubles occur
    assert stats.kstest(x, stats.laplace(loc=3.0, scale=SCALE).cdf).pvalue > 1e-3


def test_pmf_never_calls_a_real_output_impossible():
    rng = np.random.default_rng(1)
    for value, scale in [(0.0, 2.0), (1.0, 2.0), (1.0, 10.0), (-3.5, 0.7), (100.0, 5.0)]:
        x = S.naive_laplace(value, scale=scale, size=5000, generator=rng)
        assert (S.naive_laplace_pmf(x, value=value, scale=scale) > 0).all()


def test_pmf_counts_every_draw_that_rounds_to_the_output():
    # Brute force, independent of the window logic: enumerate 4,001 consecutive u around the
    # draw and count those (with either sign) whose output is exactly x.
    rng = np.random.default_rng(2)
    for value, scale in [(1.0, 2.0), (0.0, 2.0), (1.0, 0.05)]:
        x = S.naive_laplace(value, scale=scale, size=20, generator=rng)
        pmf = S.naive_laplace_pmf(x, value=value, scale=scale)
        for xi, pi in zip(x, pmf):
            k0 = round(math.exp(-abs(xi - value) / scale) * 2.0 ** 53)
            k = np.arange(max(1, k0 - 2000), min(2 ** 53, k0 + 2000) + 1).astype(np.float64)
            mag = -(scale * np.log(k * 2.0 ** -53))
            count = int(((value + mag) == xi).sum() + ((value - mag) == xi).sum())
            assert count >= 1 and pi == count / 2.0 ** 54


def test_floating_point_attack_beats_the_dp_bound_by_far():
    rng = np.random.default_rng(3)
    x_d = S.naive_laplace(0.0, scale=SCALE, size=N, generator=rng)
    x_d_prime = S.naive_laplace(1.0, scale=SCALE, size=N, generator=rng)
    guess_d = S.floating_point_attack(x_d, values=(0.0, 1.0), scale=SCALE)
    guess_d_prime = S.floating_point_attack(x_d_prime, values=(0.0, 1.0), scale=SCALE)
    rate = success_rate(guess_d, guess_d_prime)
    se = math.sqrt(0.25 / N)  # SE of a success rate over 2N guesses is at most √(1/(4·2N))·√2
    # ε = 0.5 promises at most 62.2 %; the attack wins ~80 %: more than 30 standard errors above
    assert rate > BOUND + 30 * se
    # much of it with certainty: outputs that one of the two counts cannot produce
    impossible = (S.naive_laplace_pmf(x_d_prime, value=0.0, scale=SCALE) == 0).mean()
    assert impossible > 0.4


def test_floating_point_attack_picks_the_more_probable_value_else_the_nearer_one():
    x = np.linspace(-5.0, 6.0, 2001)  # round numbers: mostly outputs neither count can produce
    p0 = S.naive_laplace_pmf(x, value=0.0, scale=2.0)
    p1 = S.naive_laplace_pmf(x, value=1.0, scale=2.0)
    guesses = S.floating_point_attack(x, values=(0.0, 1.0), scale=2.0)
    tie = p0 == p1
    assert tie.any() and (~tie).any()
    assert np.array_equal(guesses[~tie], (p1 > p0)[~tie].astype(int))
    assert np.array_equal(guesses[tie], (np.abs(x - 1) < np.abs(x))[tie].astype(int))


# ---------------------------------------------------------------------------------------------
# exact discrete Laplace
# ---------------------------------------------------------------------------------------------

def discrete_laplace_pmf(z, scale):
    r = math.exp(-1.0 / scale)
    return (1 - r) / (1 + r) * r ** np.abs(z)


@pytest.mark.parametrize("scale", [2, Fraction(7, 3), 0.3, 25.0], ids=["2", "7/3", "0.3", "25"])
def test_discrete_laplace_matches_its_pmf(scale):
    n = 100_000
    z = S.sample_discrete_laplace(scale, size=n, generator=np.random.default_rng(4))
    assert z.dtype == np.int64 and z.shape == (n,)
    s = float(scale)
    top = int(np.ceil(5 * s)) + 1  # pool the tails into one cell each side
    edges = np.arange(-top, top + 1)
    expected = discrete_laplace_pmf(edges, s)
    tail = discrete_laplace_pmf(np.arange(top + 1, top + 10_000), s).sum()
    expected = np.concatenate([[tail], expected, [tail]])
    observed = np.concatenate([[(z < -top).sum()], [(z == e).sum() for e in edges], [(z > top).sum()]])
    keep = expected * n >= 5  # chi-square needs expected counts ≥ 5
    observed_k, expected_k = observed[keep], expected[keep]
    expected_k = expected_k / expected_k.sum() * observed_k.sum()
    assert stats.chisquare(observed_k, expected_k).pvalue > 1e-3  # level 1e-3
    r = math.exp(-1.0 / s)
    variance = 2 * r / (1 - r) ** 2
    assert abs(z.mean()) < 5 * math.sqrt(variance / n)  # 5 SE


def test_safe_sampler_uses_no_floating_point_transcendental(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a floating-point log/exp was called on the output path")

    for name in ("exp", "log", "log1p", "expm1", "power"):
        monkeypatch.setattr(np, name, forbidden)
    monkeypatch.setattr(math, "exp", forbidden)
    monkeypatch.setattr(math, "log", forbidden)
    out = S.discrete_laplace_mechanism(np.arange(50), sensitivity=1, epsilon=0.3, generator=np.random.default_rng(0))
    assert out.shape == (50,)


def test_discrete_mechanism_defeats_the_attack():
    rng = np.random.default_rng(5)
    y_d = S.discrete_laplace_mechanism(np.zeros(N), sensitivity=1, epsilon=EPSILON, generator=rng)
    y_d_prime = S.discrete_laplace_mechanism(np.ones(N), sensitivity=1, epsilon=EPSILON, generator=rng)
    # Every output is an integer, and both datasets produce the same set of values: none is
    # impossible under the other count (checked on the values both sides see often).
    assert np.array_equal(y_d, np.rint(y_d)) and np.array_equal(y_d_prime, np.rint(y_d_prime))
    assert set(range(-8, 9)) <= set(y_d.astype(int)) & set(y_d_prime.astype(int))
    # The best attacker against discrete Laplace is the likelihood-ratio test: guess the nearer
    # count (ties at 0.5 cannot occur). Its success is e^ε/(1+e^ε) exactly; no attacker does better.
    guess_d = (np.abs(y_d - 1) < np.abs(y_d)).astype(int)
    guess_d_prime = (np.abs(y_d_prime - 1) < np.abs(y_d_prime)).astype(int)
    rate = success_rate(guess_d, guess_d_prime)
    se = math.sqrt(BOUND * (1 - BOUND) / (2 * N))
    assert abs(rate - BOUND) < 5 * se  # at the bound, within 5 standard errors
    # The floating-point attack, run on these outputs as if they came from the naive sampler,
    # does no better than the bound either.
    fp_rate = success_rate(S.floating_point_attack(y_d, values=(0.0, 1.0), scale=SCALE),
                           S.floating_point_attack(y_d_prime, values=(0.0, 1.0), scale=SCALE))
    assert fp_rate < BOUND + 5 * se


def test_discrete_mechanism_output_law_shifts_with_the_count():
    # D′'s outputs minus 1 have the same law as D's: two-sample chi-square on the common support
    rng = np.random.default_rng(6)
    y_d = S.discrete_laplace_mechanism(np.full(50_000, 10.0), sensitivity=1, epsilon=EPSILON, generator=rng)
    y_d_prime = S.discrete_laplace_mechanism(np.full(50_000, 11.0), sensitivity=1, epsilon=EPSILON, generator=rng) - 1
    cells = np.arange(0, 21)
    table = np.array([[(y == c).sum() for c in cells] for y in (y_d, y_d_prime)])
    assert stats.chi2_contingency(table).pvalue > 1e-3  # level 1e-3


def test_discrete_mechanism_on_a_grid_and_its_epsilon():
    rng = np.random.default_rng(7)
    out = S.discrete_laplace_mechanism(np.array([0.5, 1.0, 2.5]), sensitivity=0.5, epsilon=1.0,
                                       granularity=0.5, generator=rng)
    assert np.array_equal(out * 2, np.rint(out * 2))
    single = S.discrete_laplace_mechanism(4, sensitivity=1, epsilon=1.0, generator=rng)
    assert type(single) is float and single == round(single)
    assert S.exact_epsilon(0.1) <= Fraction(0.1) and float(0.1 - S.exact_epsilon(0.1)) < 2 ** -20
    # sensitivity 0.3 on a 0.1 grid is 3 steps: noise scale 3/ε
    z = S.discrete_laplace_mechanism(np.zeros(20_000), sensitivity=0.3, epsilon=1.0, granularity=0.1,
                                     generator=rng) / 0.1
    r = math.exp(-1.0 / 3.0)
    expected_var = 2 * r / (1 - r) ** 2
    # relative SE of a sample variance of a discrete Laplace ≈ √(2/n)·(kurtosis factor ~2.5): 5 SE
    assert abs(z.var() / expected_var - 1) < 5 * 2.5 * math.sqrt(2 / z.size)


BAD = [
    ("naive-scale-zero", lambda: S.naive_laplace(0.0, scale=0.0), "scale"),
    ("naive-value-nan", lambda: S.naive_laplace(float("nan"), scale=1.0), "value"),
    ("pmf-outputs-inf", lambda: S.naive_laplace_pmf([np.inf], value=0.0, scale=1.0), "outputs"),
    ("pmf-tiny-scale", lambda: S.naive_laplace_pmf([1e6], value=1e6, scale=1e-12), "scale"),
    ("attack-three-values", lambda: S.floating_point_attack([0.0], values=(0.0, 1.0, 2.0), scale=1.0), "values"),
    ("attack-same-values", lambda: S.floating_point_attack([0.0], values=(1.0, 1.0), scale=1.0), "values"),
    ("attack-values-not-a-pair", lambda: S.floating_point_attack([0.0], values=1.0, scale=1.0), "values"),
    ("attack-values-nan", lambda: S.floating_point_attack([0.0], values=(0.0, np.nan), scale=1.0), "values"),
    ("mechanism-sensitivity-inf", lambda: S.discrete_laplace_mechanism(1, sensitivity=np.inf, epsilon=1.0),
     "sensitivity"),
    ("discrete-scale-negative", lambda: S.sample_discrete_laplace(-1.0), "scale"),
    ("discrete-scale-huge", lambda: S.sample_discrete_laplace(2.0 ** 30), "scale"),
    ("mechanism-epsilon-zero", lambda: S.discrete_laplace_mechanism(1, sensitivity=1, epsilon=0), "epsilon"),
    ("mechanism-epsilon-tiny", lambda: S.discrete_laplace_mechanism(1, sensitivity=1, epsilon=1e-9), "epsilon"),
    ("mechanism-sensitivity-zero", lambda: S.discrete_laplace_mechanism(1, sensitivity=0, epsilon=1.0), "sensitivity"),
    ("mechanism-granularity-zero", lambda: S.discrete_laplace_mechanism(1, sensitivity=1, epsilon=1.0, granularity=0),
     "granularity"),
    ("mechanism-off-grid", lambda: S.discrete_laplace_mechanism(1.3, sensitivity=1, epsilon=1.0), "granularity"),
    ("mechanism-value-nan", lambda: S.discrete_laplace_mechanism(np.array([np.nan]), sensitivity=1, epsilon=1.0),
     "value"),
    ("generator-wrong-kind", lambda: S.sample_discrete_laplace(1.0, generator=42), "generator"),
]


@pytest.mark.parametrize("call,name", [(c, n) for _, c, n in BAD], ids=[i for i, _, _ in BAD])
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_discrete_laplace_mechanism_names_its_own_arguments_when_the_scale_is_too_large():
    with pytest.raises(ValueError, match=r"sensitivity / \(granularity · epsilon\).*sensitivity=10000"):
        S.discrete_laplace_mechanism(5.0, sensitivity=1e4, epsilon=1e-3)
