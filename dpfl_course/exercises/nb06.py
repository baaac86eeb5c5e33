"""Notebook 06's exercises: per-sample clipping, and the (sample_rate, steps) a DP-SGD run spends.

The checkers compare the learner's function with the reference solution on small cases and
recognise the usual mistakes: clipping each parameter tensor on its own, clipping the summed batch
gradient instead of each example's, scaling every gradient to norm C (normalising, not clipping),
and the source article's accounting (q = 1 / num_clients, steps = num_clients × epochs).
"""

from __future__ import annotations

import torch

from dpfl_course.exercises import Feedback, attempt, close, close_tensors


def clip_gradients(grads, max_grad_norm):
    """Reference solution: scale example i's gradient (all tensors together) by min(1, C / ‖g_i‖).

    Args:
        grads: list of tensors of shape (B, ...), one per parameter; row i is example i's gradient.
        max_grad_norm: the clipping norm C.

    >>> clipped = clip_gradients([torch.tensor([[3.0], [0.5]]), torch.tensor([[4.0], [0.0]])], 1.0)
    >>> [[round(v, 4) for v in g.flatten().tolist()] for g in clipped]
    [[0.6, 0.5], [0.8, 0.0]]
    """
    batch = len(grads[0])
    norms = torch.stack([g.reshape(batch, -1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
    factor = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    return [g * factor.view(-1, *([1] * (g.dim() - 1))) for g in grads]


def accounting_inputs(num_examples, batch_size, epochs, num_clients):
    """Reference solution: ``(sample_rate, steps)`` of DP-SGD on the pooled ``num_examples``.

    Every step includes each example with probability batch_size / num_examples, and an epoch
    is num_examples / batch_size steps rounded half up, in integers ``(2n + b) // (2b)`` and at
    least 1, as :func:`dpfl_course.dp.train_dp_sgd` counts them. ``num_clients`` does not enter: the accountant
    counts noisy steps on the data and the chance that one example is in a step's batch.

    >>> accounting_inputs(1600, 64, 30, 10)
    (0.04, 750)
    >>> accounting_inputs(49, 2, 1, 10)[1]
    25
    """
    steps_per_epoch = max(1, (2 * num_examples + batch_size) // (2 * batch_size))
    return batch_size / num_examples, epochs * steps_per_epoch


# ---------------------------------------------------------------- exercise 1


def _clip_cases():
    g = torch.Generator().manual_seed(6)
    return [
        ([torch.tensor([[3.0, 0.0], [0.3, 0.0]]), torch.tensor([[4.0], [0.4]])], 1.0,
         "two examples, norms 5 and 0.5, C = 1 (the second is already short)"),
        ([2.0 * torch.randn(8, 3, 4, generator=g), torch.randn(8, 3, generator=g)], 0.7,
         "8 examples of a 3×4 weight and a bias, C = 0.7"),
        ([torch.randn(5, 6, generator=g) * torch.tensor([[0.01], [10.0], [0.1], [3.0], [1.0]])], 2.0,
         "5 examples of very different sizes, C = 2"),
    ]


def _per_tensor(grads, c):
    """A mistake: every parameter tensor clipped to C on its own (the total norm can reach C·√L)."""
    return [clip_gradients([g], c)[0] for g in grads]


def _normalised(grads, c):
    """A mistake: every gradient scaled to norm C, short ones stretched (no min(1, ·))."""
    batch = len(grads[0])
    norms = torch.stack([g.reshape(batch, -1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
    return [g * (c / norms).view(-1, *([1] * (g.dim() - 1))) for g in grads]


def _shapes(got):
    try:
        return [tuple(torch.as_tensor(g).shape) for g in got]
    except (TypeError, ValueError, RuntimeError):
        return None


def _same(got, want) -> bool:
    return close_tensors(got, want, rtol=1e-4, atol=1e-6)


def check_clip_gradients(func) -> Feedback:
    """Check ``func(grads, max_grad_norm)`` clips each example's whole gradient to norm ≤ C."""
    cases = _clip_cases()
    for grads, c, describe in cases:
        copies = [g.clone() for g in grads]
        got, fail = attempt(lambda: func(copies, c), where=f"on {describe} ")
        if fail is not None:
            return fail
        if any(not torch.equal(a, b) for a, b in zip(copies, grads)):
            return Feedback(False, f"Not yet: on {describe} your function changed the input gradients in place; "
                                   "return new tensors.")
        want = clip_gradients(grads, c)
        if _same(got, want):
            continue
        hint = ""
        if _same(got, _per_tensor(grads, c)):
            hint = (" You clipped each parameter tensor on its own. The norm to clip is that of example i's "
                    "whole gradient, all tensors together: sqrt(Σ_tensors ‖g_i‖²).")
        elif _shapes(got) == [tuple(g.shape[1:]) for g in grads]:
            hint = (" You returned one tensor per parameter without the batch dimension: DP-SGD clips every "
                    "example's gradient (shape (B, ...)) before anything is summed.")
        elif _same(got, _normalised(grads, c)):
            hint = (" You scaled every gradient to norm C, stretching the short ones too. The factor is "
                    "min(1, C / ‖g_i‖): a gradient already shorter than C stays as it is.")
        return Feedback(False, f"Not yet: on {describe} your clipped gradients differ from the expected ones.{hint}")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")


# ---------------------------------------------------------------- exercise 2


_ACCOUNTING_CASES = [
    ((1347, 64, 30, 10), "1,347 digits, batch 64, 30 epochs, 10 clients"),
    ((60000, 256, 60, 100), "60,000 MNIST images, batch 256, 60 epochs, 100 clients"),
    ((500, 10, 3, 5), "500 examples, batch 10, 3 epochs, 5 clients"),
]


def check_accounting_inputs(func) -> Feedback:
    """Check ``func(num_examples, batch_size, epochs, num_clients)`` returns ``(sample_rate, steps)``."""
    for args, describe in _ACCOUNTING_CASES:
        got, fail = attempt(lambda: func(*args), where=f"on {describe} ")
        if fail is not None:
            return fail
        want_q, want_steps = accounting_inputs(*args)
        try:
            q, steps = got
        except (TypeError, ValueError):
            return Feedback(False, f"Not yet: on {describe} return a pair (sample_rate, steps), got {got!r}.")
        n, b, epochs, clients = args
        if close(q, want_q) and close(steps, want_steps):
            continue
        if close(q, 1 / clients) or close(steps, clients * epochs):
            hint = (" That is the source article's computation: 1 / num_clients is not the probability that an "
                    "example is in a batch, and num_clients × epochs is not the number of noisy steps. "
                    "The number of clients does not enter here.")
        elif close(q, want_q) and not close(steps, want_steps):
            hint = (f" The sample rate is right; count the steps: an epoch is about num_examples / batch_size steps "
                    f"(rounded half up), here {want_steps // epochs}, times the epochs.")
        elif close(q, 1 / b) or close(q, n / b):
            hint = " The sample rate is the chance that one example is in a batch: batch_size / num_examples."
        else:
            hint = ""
        return Feedback(False, f"Not yet: on {describe} expected (sample_rate, steps) = ({want_q:.4g}, {want_steps}), "
                               f"got {got!r}.{hint}")
    return Feedback(True, f"Correct on all {len(_ACCOUNTING_CASES)} test cases.")
