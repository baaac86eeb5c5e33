import math

import numpy as np

from dpfl_course.exercises import nb03


def test_reference_solutions_pass():
    assert nb03.check_randomized_response(nb03.randomized_response).passed
    assert nb03.check_estimate_fraction(nb03.estimate_fraction).passed
    assert nb03.check_estimate_std(nb03.estimate_std).passed


def test_rr_checker_rejects_a_keep_probability_of_e_eps_and_one_sided_flipping():
    # mistake: keep with probability 1/(1+e^-ε) computed as e^-ε/(1+e^-ε) (the flip probability)
    wrong = lambda bits, eps, rng: np.where(rng.random(np.shape(bits)) < 1 / (1 + math.exp(eps)), bits, 1 - bits)
    fb = nb03.check_randomized_response(wrong)
    assert not fb.passed and "kept" in fb.message
    # mistake: only "yes" answers are randomized (the 0s are always kept)
    def one_sided(bits, eps, rng):
        bits = np.asarray(bits)
        keep = rng.random(bits.shape) < math.exp(eps) / (1 + math.exp(eps))
        return np.where((bits == 0) | keep, bits, 0)
    assert not nb03.check_randomized_response(one_sided).passed


def test_rr_checker_rejects_global_rng_and_wrong_shapes():
    fb = nb03.check_randomized_response(
        lambda bits, eps, rng: np.where(np.random.random(np.shape(bits)) < 0.73, bits, 1 - bits))
    assert not fb.passed and "rng" in fb.message
    fb = nb03.check_randomized_response(lambda bits, eps, rng: np.mean(bits))
    assert not fb.passed and "shape" in fb.message


def test_estimator_checker_rejects_the_plain_mean_and_clipping():
    # mistake: reading the fraction of "yes" reports as the fraction of yes (biased towards 1/2)
    assert not nb03.check_estimate_fraction(lambda reports, eps: float(np.mean(reports))).passed
    # mistake: clipping to [0, 1], which biases the estimate
    clipped = lambda reports, eps: min(1.0, max(0.0, nb03.estimate_fraction(reports, eps)))
    fb = nb03.check_estimate_fraction(clipped)
    assert not fb.passed and "1.5" in fb.message


def test_std_checker_rejects_missing_sqrt_n_and_variance():
    assert not nb03.check_estimate_std(lambda n, eps: math.sqrt(math.exp(eps)) / (math.exp(eps) - 1)).passed
    assert not nb03.check_estimate_std(lambda n, eps: math.exp(eps) / ((math.exp(eps) - 1) ** 2 * n)).passed


def test_skeletons_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise")

    for check in (nb03.check_randomized_response, nb03.check_estimate_fraction, nb03.check_estimate_std):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
