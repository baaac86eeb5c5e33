import math

from scipy.stats import beta

from dpfl_course.exercises import nb10
from dpfl_course.privacy import audit


def test_reference_solutions_pass_and_match_the_package():
    assert nb10.check_clopper_pearson(nb10.clopper_pearson_interval).passed
    assert nb10.check_epsilon_lb(nb10.epsilon_lb).passed
    for case in nb10._LB_CASES:
        tp, p, fp, m, delta, alpha = case
        assert math.isclose(nb10.epsilon_lb(*case, nb10.clopper_pearson_interval),
                            audit.epsilon_lower_bound(tp, p, fp, m, delta=delta, alpha=alpha), rel_tol=1e-9)


def test_interval_checker_rejects_no_special_case_for_zero_successes():
    # mistake: Beta quantiles at k = 0 are NaN without the special case
    wrong = lambda k, n, a: (float(beta.ppf(a / 2, k, n - k + 1)), float(beta.ppf(1 - a / 2, k + 1, n - k)))
    fb = nb10.check_clopper_pearson(wrong)
    assert not fb.passed and "k = 0" in fb.message


def test_interval_checker_rejects_alpha_per_side():
    # mistake: α on each side gives a 1 − 2α interval
    def wrong(k, n, a):
        return (0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1)),
                1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k)))
    fb = nb10.check_clopper_pearson(wrong)
    assert not fb.passed and "α/2" in fb.message


def test_epsilon_checker_rejects_measured_rates():
    # mistake: plugging in TPR and FPR themselves (no confidence interval)
    def wrong(tp, p, fp, m, delta, alpha, interval):
        tpr, fpr = tp / p, fp / m
        return max(0.0, math.log((tpr - delta) / fpr)) if fpr > 0 else math.inf
    fb = nb10.check_epsilon_lb(wrong)
    assert not fb.passed and "confidence" in fb.message


def test_epsilon_checker_rejects_the_first_inequality_alone():
    # mistake: forgetting 1 − FPR ≤ e^ε (1 − TPR) + δ (the case with TPR 0.999 at FPR 0.5 needs it)
    fb = nb10.check_epsilon_lb(nb10._first_only)
    assert not fb.passed and "second inequality" in fb.message


def test_epsilon_checker_rejects_the_wrong_sides_of_the_intervals():
    # mistake: TPR's upper and FPR's lower bound (an optimistic ε_LB)
    def wrong(tp, p, fp, m, delta, alpha, interval):
        flipped = lambda k, n, a: interval(k, n, a)[::-1]
        return nb10.epsilon_lb(tp, p, fp, m, delta, alpha, flipped)
    fb = nb10.check_epsilon_lb(wrong)
    assert not fb.passed and "expected" in fb.message


def test_skeletons_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise")
    for check in (nb10.check_clopper_pearson, nb10.check_epsilon_lb):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    assert not nb10.check_clopper_pearson(lambda k, n, a: None).passed
    assert not nb10.check_epsilon_lb(lambda *args: "big").passed
