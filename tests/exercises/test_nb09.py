import numpy as np
import torch

from dpfl_course.exercises import nb09


def test_reference_solutions_pass():
    assert nb09.check_label_from_gradient(nb09.label_from_gradient).passed
    assert nb09.check_invert_first_layer(nb09.invert_first_layer).passed
    assert nb09.check_loss_threshold_auc(nb09.loss_threshold_auc).passed


def test_label_checker_rejects_the_largest_entry():
    # plausible mistake: argmax, as if the gradient were the probabilities themselves
    fb = nb09.check_label_from_gradient(lambda g: int(torch.argmax(torch.as_tensor(g))))
    assert not fb.passed and "the label is" in fb.message


def test_inversion_checker_rejects_one_units_ratio():
    # plausible mistake: x = ∇W₁[0, :] / ∇b₁[0], which is 0/0 when unit 0's bias gradient is zero
    fb = nb09.check_invert_first_layer(lambda W, b: W[0] / b[0])
    assert not fb.passed and "bias gradient is 0" in fb.message


def test_inversion_checker_rejects_the_ratio_of_sums():
    # plausible mistake: Σᵢ ∇W₁[i, :] / Σᵢ ∇b₁[i], right unless the bias gradients sum to 0
    fb = nb09.check_invert_first_layer(lambda W, b: W.sum(0) / b.sum())
    assert not fb.passed


def test_auc_checker_rejects_the_wrong_sign_and_ties_not_halved():
    flipped = lambda m, n: nb09.loss_threshold_auc(n, m)  # high loss taken for a member
    fb = nb09.check_loss_threshold_auc(flipped)
    assert not fb.passed and "lower" in fb.message
    strict = lambda m, n: float((np.asarray(m)[:, None] < np.asarray(n)[None, :]).mean())  # ties count 0
    fb = nb09.check_loss_threshold_auc(strict)
    assert not fb.passed and "½" in fb.message


def test_skeleton_and_crashing_answers_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise: ...")

    for check in [nb09.check_label_from_gradient, nb09.check_invert_first_layer, nb09.check_loss_threshold_auc]:
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb09.check_invert_first_layer(lambda W, b: None)
    assert not fb.passed and "Not yet" in fb.message
    fb = nb09.check_loss_threshold_auc(lambda m, n: "high")
    assert not fb.passed
