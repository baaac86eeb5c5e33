import math

import numpy as np

from dpfl_course import dp
from dpfl_course.exercises import nb02


def test_reference_solutions_pass():
    assert nb02.check_basic_composition(nb02.basic_composition).passed
    assert nb02.check_advanced_composition(nb02.advanced_composition).passed
    assert nb02.check_exponential_probabilities(nb02.exponential_probabilities).passed


def test_reference_solutions_agree_with_the_package():
    assert nb02.basic_composition([0.5, 0.25], [1e-6, 0.0]) == dp.basic_composition([0.5, 0.25], [1e-6, 0.0])
    ours = nb02.advanced_composition(0.2, 1e-7, 50, 1e-6)
    assert np.allclose(ours, dp.advanced_composition(epsilon=0.2, delta=1e-7, k=50, delta_prime=1e-6), rtol=1e-12)
    scores = [3.0, 41.0, 73.0, 97.0]
    assert np.allclose(nb02.exponential_probabilities(scores, 1.0, 0.3),
                       dp.exponential_probabilities(scores, sensitivity=1.0, epsilon=0.3), rtol=1e-12)


def test_basic_checker_rejects_a_sum_of_epsilons_only():
    # plausible mistake: forgetting that the δ's add up too (returns δ of one mechanism)
    wrong = lambda epsilons, deltas: (sum(epsilons), max(deltas))
    assert not nb02.check_basic_composition(wrong).passed


def test_advanced_checker_rejects_missing_second_term():
    # plausible mistake: only the √k term, forgetting kε(e^ε − 1)
    wrong = lambda epsilon, delta, k, delta_prime: (epsilon * math.sqrt(2 * k * math.log(1 / delta_prime)),
                                                    k * delta + delta_prime)
    fb = nb02.check_advanced_composition(wrong)
    assert not fb.passed and "expected" in fb.message


def test_advanced_checker_rejects_forgotten_delta_prime():
    # plausible mistake: total δ = kδ, without the δ' that buys the √k
    def wrong(epsilon, delta, k, delta_prime):
        return nb02.advanced_composition(epsilon, delta, k, delta_prime)[0], k * delta
    assert not nb02.check_advanced_composition(wrong).passed


def test_exponential_checker_rejects_missing_factor_two():
    # plausible mistake: exp(ε·u/Δ) — twice the ε that the mechanism really spends
    def wrong(scores, sensitivity, epsilon):
        w = np.exp(epsilon * (np.asarray(scores) - max(scores)) / sensitivity)
        return w / w.sum()
    assert not nb02.check_exponential_probabilities(wrong).passed


def test_exponential_checker_rejects_overflowing_answer_with_a_hint():
    # plausible mistake: a correct formula without subtracting the maximum: inf / inf = nan
    def wrong(scores, sensitivity, epsilon):
        with np.errstate(over="ignore", invalid="ignore"):
            w = np.exp(epsilon * np.asarray(scores, dtype=float) / (2 * sensitivity))
            return w / w.sum()
    fb = nb02.check_exponential_probabilities(wrong)
    assert not fb.passed and "subtract the largest logit" in fb.message


def test_skeleton_gives_a_message_not_a_traceback():
    def skeleton(*args):
        raise NotImplementedError("Student exercise: add them up")

    for check in (nb02.check_basic_composition, nb02.check_advanced_composition,
                  nb02.check_exponential_probabilities):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
