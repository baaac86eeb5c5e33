import numpy as np

from dpfl_course.exercises import Feedback, nb00


def test_reference_solutions_pass():
    assert nb00.check_label_histogram(nb00.label_histogram).passed
    assert nb00.check_total_variation(nb00.total_variation).passed


def test_histogram_checker_rejects_counts_without_absent_classes():
    # plausible mistake: np.unique counts, which drops classes the client does not hold
    wrong = lambda labels, num_classes: np.unique(labels, return_counts=True)[1].tolist()
    fb = nb00.check_label_histogram(wrong)
    assert not fb.passed and "expected" in fb.message


def test_tv_checker_rejects_missing_half():
    wrong = lambda p, q: float(np.abs(np.asarray(p) - np.asarray(q)).sum())
    assert not nb00.check_total_variation(wrong).passed


def test_skeleton_and_crashing_answers_give_messages_not_tracebacks():
    def skeleton(labels, num_classes):
        raise NotImplementedError("Student exercise: count the labels")

    fb = nb00.check_label_histogram(skeleton)
    assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb00.check_total_variation(lambda p, q: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    assert repr(Feedback(True, "ok")) == "✓ ok" and not Feedback(False, "no")
