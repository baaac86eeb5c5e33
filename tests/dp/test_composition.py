"""Basic and advanced composition, and the noise per query under each composition rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special

from dpfl_course import dp


def gaussian_delta(sigma, epsilon, sensitivity):
    """Tight δ of the Gaussian mechanism at ε (Balle & Wang 2018, Theorem 8), written here
    independently of dp.gaussian_delta."""
    a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
    return float(special.ndtr(a - b) - math.exp(epsilon) * special.ndtr(-a - b))


# ---------------------------------------------------------------------------- basic
def test_basic_composition_adds_up():
    rng = np.random.default_rng(0)
    eps = rng.uniform(0.01, 1.0, size=20)
    dels = rng.uniform(0, 1e-6, size=20)
    total = dp.basic_composition(eps, dels)
    assert total == pytest.approx((eps.sum(), dels.sum()), rel=1e-12)
    assert dp.basic_composition(list(eps)) == pytest.approx((eps.sum(), 0.0), rel=1e-12)


@pytest.mark.parametrize("args,name", [
    (([],), "epsilons"),
    (([0.5, -0.1],), r"epsilons\[1\]"),
    (([0.5, math.nan],), r"epsilons\[1\]"),
    ((0.5,), "epsilons"),
    (([0.5, 0.5], [1e-6]), "deltas"),
    (([0.5], [1.0]), r"deltas\[0\]"),
    (([0.5], [-1e-6]), r"deltas\[0\]"),
])
def test_basic_composition_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        dp.basic_composition(*args)


# ---------------------------------------------------------------------------- advanced
@pytest.mark.parametrize("eps,delta,k,delta_prime", [(0.1, 0.0, 100, 1e-5), (0.5, 1e-7, 10, 1e-6),
                                                      (1.0, 1e-6, 1, 1e-3), (0.01, 0.0, 10000, 1e-5)])
def test_advanced_composition_closed_form(eps, delta, k, delta_prime):
    total_eps, total_delta = dp.advanced_composition(epsilon=eps, delta=delta, k=k, delta_prime=delta_prime)
    # Dwork & Roth 2014, Theorem 3.20: ε' = √(2k ln(1/δ'))·ε + kε(e^ε − 1), δ' + kδ.
    assert total_eps == pytest.approx(math.sqrt(2 * k * math.log(1 / delta_prime)) * eps
                                      + k * eps * (math.exp(eps) - 1), rel=1e-12)
    assert total_delta == pytest.approx(delta_prime + k * delta, rel=1e-12)


def test_advanced_beats_basic_only_for_many_small_steps():
    def advanced(k):
        return dp.advanced_composition(epsilon=0.1, delta=0.0, k=k, delta_prime=1e-5)[0]
    assert advanced(10) > 10 * 0.1  # a few queries: basic composition is tighter
    assert advanced(1000) < 1000 * 0.1 / 3  # many queries: √k wins by far


@pytest.mark.parametrize("name,value", [("epsilon", 0.0), ("epsilon", math.inf), ("delta", 1.0),
                                        ("delta", -0.1), ("k", 0), ("k", 1.5), ("delta_prime", 0.0),
                                        ("delta_prime", 1.0)])
def test_advanced_composition_rejects_bad_input(name, value):
    good = dict(epsilon=0.1, delta=0.0, k=10, delta_prime=1e-5)
    with pytest.raises(ValueError, match=name):
        dp.advanced_composition(**{**good, name: value})


# ---------------------------------------------------------------------------- σ per query
K_VALUES = (1, 2, 10, 100, 1000)


@pytest.mark.parametrize("k", K_VALUES)
def test_basic_rule_gives_each_query_an_equal_share(k):
    sigma = dp.gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=k, composition="basic")
    # Each query is exactly (ε/k, δ/k)-DP: the analytic Gaussian is tight.
    assert gaussian_delta(sigma, 1.0 / k, 1.0) == pytest.approx(1e-5 / k, rel=1e-6)


@pytest.mark.parametrize("k", K_VALUES)
def test_advanced_rule_spends_the_budget(k):
    sigma = dp.gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=k, composition="advanced")
    delta_each = 1e-5 / (2 * k)
    # Recover the per-query ε from σ (tight Gaussian), then compose it with δ' = δ/2.
    eps_each = optimize.brentq(lambda e: gaussian_delta(sigma, e, 1.0) - delta_each, 1e-9, 50, xtol=1e-14)
    total_eps, total_delta = dp.advanced_composition(epsilon=eps_each, delta=delta_each, k=k, delta_prime=0.5e-5)
    assert total_eps == pytest.approx(1.0, rel=1e-6)
    assert total_delta == pytest.approx(1e-5, rel=1e-12)


@pytest.mark.parametrize("k", K_VALUES)
def test_rdp_rule_agrees_with_the_accountant(k):
    sigma = dp.gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=k, composition="rdp")
    # The k-fold Gaussian's RDP kα/(2σ²), converted by Opacus, meets the budget exactly ...
    eps = dp.epsilon(noise_multiplier=sigma, sample_rate=1.0, steps=k, delta=1e-5)
    assert eps == pytest.approx(1.0, rel=1e-9)
    # ... and the accountant's own inverse (0.1 % tolerance, always on the safe side) agrees.
    searched = dp.noise_multiplier_for(target_epsilon=1.0, sample_rate=1.0, steps=k, delta=1e-5)
    assert sigma <= searched <= sigma * 1.002


@pytest.mark.parametrize("k", K_VALUES)
def test_exact_rule_is_the_composed_gaussian(k):
    sigma = dp.gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=k, composition="exact")
    # k queries of sensitivity 1 = one query of L2 sensitivity √k.
    assert gaussian_delta(sigma, 1.0, math.sqrt(k)) == pytest.approx(1e-5, rel=1e-6)


@pytest.mark.parametrize("k", K_VALUES[1:])
def test_rules_rank_as_theory_says(k):
    sigma = {rule: dp.gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=k, composition=rule)
             for rule in dp.COMPOSITION_RULES}
    assert sigma["exact"] < sigma["rdp"] < sigma["basic"]
    assert sigma["exact"] < sigma["advanced"]
    assert sigma["rdp"] < 1.15 * sigma["exact"]  # RDP is nearly tight for Gaussians


def test_sigma_scales_with_sensitivity():
    for rule in dp.COMPOSITION_RULES:
        one = dp.gaussian_sigma_per_query(epsilon=2.0, delta=1e-6, num_queries=7, composition=rule)
        three = dp.gaussian_sigma_per_query(epsilon=2.0, delta=1e-6, num_queries=7, composition=rule,
                                            sensitivity=3.0)
        assert three == pytest.approx(3 * one, rel=1e-12)


@pytest.mark.parametrize("name,value", [("epsilon", 0.0), ("delta", 0.0), ("delta", 1.0),
                                        ("num_queries", 0), ("num_queries", 2.0),
                                        ("composition", "moments"), ("sensitivity", -1.0)])
def test_sigma_per_query_rejects_bad_input(name, value):
    good = dict(epsilon=1.0, delta=1e-5, num_queries=10, composition="rdp")
    with pytest.raises(ValueError, match=name):
        dp.gaussian_sigma_per_query(**{**good, name: value})
