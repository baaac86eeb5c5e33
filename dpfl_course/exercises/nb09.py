"""Notebook 09's exercises: the label and the image in a gradient, and the loss-threshold attack's AUC."""

from __future__ import annotations

import numpy as np
import torch

from dpfl_course.exercises import Feedback, attempt, close, show_tensors
from dpfl_course.privacy import membership


def label_from_gradient(bias_gradient):
    """Reference solution: the label is the only negative entry of softmax(z) − onehot(y)."""
    return int(torch.argmin(torch.as_tensor(bias_gradient)))


def invert_first_layer(weight_gradient, bias_gradient):
    """Reference solution: x = ∇W₁[i, :] / ∇b₁[i], combined over units by least squares."""
    weight_gradient, bias_gradient = torch.as_tensor(weight_gradient), torch.as_tensor(bias_gradient)
    return bias_gradient @ weight_gradient / bias_gradient.pow(2).sum()


def loss_threshold_auc(member_losses, nonmember_losses):
    """Reference solution: P(a member's loss is below a non-member's), ties counted ½."""
    m = np.asarray(member_losses, float)[:, None]
    n = np.asarray(nonmember_losses, float)[None, :]
    return float((m < n).mean() + 0.5 * (m == n).mean())


def _label_cases():
    g = torch.Generator().manual_seed(9)
    cases = []
    for label, classes in [(3, 10), (0, 10), (9, 10), (1, 2)]:
        p = torch.softmax(torch.randn(classes, generator=g), 0)
        cases.append(((p - torch.nn.functional.one_hot(torch.tensor(label), classes).float(),), label))
    return cases


def check_label_from_gradient(func) -> Feedback:
    """Check ``func(bias_gradient)`` returns the label whose entry of p − onehot is negative."""
    for (grad,), label in _label_cases():
        got, failed = attempt(lambda: func(grad.clone()), where=f"on the gradient {show_tensors([grad])} ")
        if failed is not None:
            return failed
        try:
            ok = int(got) == label
        except (TypeError, ValueError, RuntimeError):
            ok = False
        if not ok:
            return Feedback(False, f"Not yet: on the bias gradient {show_tensors([grad])} the label is {label} "
                                   f"(its entry is p − 1 < 0, every other is p > 0), got {got!r}.")
    return Feedback(True, f"Correct on all {len(_label_cases())} test cases.")


def _inversion_cases():
    g = torch.Generator().manual_seed(7)
    cases = []
    for dz in [torch.tensor([0.3, -0.2, 0.05]),
               torch.tensor([0.0, 0.4, -0.1, 0.2]),  # unit 0 saw nothing: ∇b₁[0] = 0
               torch.tensor([0.5, -0.5, 0.0])]:  # the bias gradients sum to 0
        x = torch.rand(6, generator=g)
        cases.append(((torch.outer(dz, x), dz), x))
    from dpfl_course.data import load_digits
    from dpfl_course.privacy import inversion

    digits = load_digits()
    model = inversion.attack_model(64, 32, 10, generator=torch.Generator().manual_seed(0))
    grad = inversion.client_gradient(model, digits.X_train[:1], digits.y_train[:1])
    cases.append(((grad[0], grad[1]), digits.X_train[0]))
    return cases


def check_invert_first_layer(func) -> Feedback:
    """Check ``func(weight_gradient, bias_gradient)`` returns the input x (to 1e-4), on every case."""
    cases = _inversion_cases()
    for (weight, bias), x in cases:
        where = f"on ∇b₁ = {show_tensors([bias[:6]])}{' …' if len(bias) > 6 else ''} "
        got, failed = attempt(lambda: func(weight.clone(), bias.clone()), where=where)
        if failed is not None:
            return failed
        try:
            got = torch.as_tensor(got, dtype=torch.float64).reshape(-1)
            ok = got.shape == x.shape and bool(torch.isfinite(got).all()) and \
                torch.allclose(got, x.double(), atol=1e-4)
        except (TypeError, ValueError, RuntimeError):
            ok = False
        if not ok:
            hint = ""
            if abs(float(bias.sum())) < 1e-12:
                hint = (" Here the bias gradients sum to 0: a ratio of sums divides by 0; combine the units by "
                        "least squares.")
            elif bool((bias == 0).any()):
                hint = " A unit whose bias gradient is 0 gives 0/0; combine the units that saw the input."
            return Feedback(False, f"Not yet: {where}expected x = {show_tensors([x[:6]])}, got "
                                   f"{show_tensors([got[:6]]) if isinstance(got, torch.Tensor) else repr(got)}.{hint}")
    return Feedback(True, f"Correct on all {len(cases)} test cases, including a real digit's gradient.")


_AUC_CASES = [
    (([0.1, 0.2], [1.0, 2.0]), 1.0),
    (([1.0, 2.0], [0.1, 0.2]), 0.0),
    (([0.5, 0.5, 0.5], [0.5, 0.5]), 0.5),  # ties count ½
    (([0.1, 0.5, 0.9, 0.3], [0.5, 1.2, 0.05]), None),
    (([0.0, 0.0, 1.0], [0.0, 2.0]), None),
]


def check_loss_threshold_auc(func) -> Feedback:
    """Check ``func(member_losses, nonmember_losses)`` equals the AUC of the scores −loss."""
    cases = []
    for (m, n), want in _AUC_CASES:
        expected = membership.roc_auc(membership.loss_scores(m), membership.loss_scores(n))
        cases.append(((m, n), expected if want is None else want))
    for (m, n), want in cases:
        got, failed = attempt(lambda: func(list(m), list(n)), where=f"on members {m}, non-members {n} ")
        if failed is not None:
            return failed
        if not close(got, want, rel=1e-9):
            hint = ""
            if close(got, 1 - want, rel=1e-9) and want != 0.5:
                hint = " That is 1 − AUC: a member has the *lower* loss."
            elif any(a == b for a in m for b in n):
                hint = " Count a tie between a member and a non-member as ½."
            return Feedback(False, f"Not yet: on member losses {m}, non-member losses {n} expected "
                                   f"AUC = {want:.4g}, got {got!r}.{hint}")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")
