import numpy as np

from dpfl_course.exercises import nb01


def test_reference_solutions_pass():
    assert nb01.check_differencing_attack(nb01.differencing_attack).passed
    assert nb01.check_laplace_mechanism(nb01.laplace_mechanism).passed
    assert nb01.check_clipped_mean_sensitivity(nb01.clipped_mean_sensitivity).passed


def test_attack_checker_rejects_the_difference_of_means():
    # plausible mistake: subtracting the two averages instead of the two totals
    fb = nb01.check_differencing_attack(lambda mean_all, n, mean_rest: mean_all - mean_rest)
    assert not fb.passed and "expected" in fb.message


def test_laplace_checker_rejects_std_b_and_inverted_scale_and_gaussian_noise():
    # the source article's mistake: noise whose std is b (Laplace scale b/√2)
    fb = nb01.check_laplace_mechanism(lambda v, s, e, rng: v + rng.laplace(0.0, s / e / np.sqrt(2)))
    assert not fb.passed and "√2·b" in fb.message
    # scale ε/Δ instead of Δ/ε
    assert not nb01.check_laplace_mechanism(lambda v, s, e, rng: v + rng.laplace(0.0, e / s)).passed
    # Gaussian noise with the right std: caught by the shape test
    fb = nb01.check_laplace_mechanism(lambda v, s, e, rng: v + rng.normal(0.0, np.sqrt(2) * s / e))
    assert not fb.passed and "shape" in fb.message


def test_laplace_checker_rejects_the_global_rng_and_no_noise():
    fb = nb01.check_laplace_mechanism(lambda v, s, e, rng: v + np.random.laplace(0.0, s / e))
    assert not fb.passed and "rng" in fb.message
    fb = nb01.check_laplace_mechanism(lambda v, s, e, rng: v)
    assert not fb.passed and "unchanged" in fb.message


def test_sensitivity_checker_rejects_forgetting_the_lower_bound_or_n():
    # add/remove thinking (upper / n) and forgetting to divide by n
    assert not nb01.check_clipped_mean_sensitivity(lambda lo, hi, n: hi / n).passed
    assert not nb01.check_clipped_mean_sensitivity(lambda lo, hi, n: hi - lo).passed


def test_skeletons_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise")

    for check in (nb01.check_differencing_attack, nb01.check_laplace_mechanism, nb01.check_clipped_mean_sensitivity):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb01.check_laplace_mechanism(lambda v, s, e, rng: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
