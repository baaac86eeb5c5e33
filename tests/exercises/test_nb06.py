import pytest
import torch

from dpfl_course import dp
from dpfl_course.exercises import nb06


def test_reference_solutions_pass():
    assert nb06.check_clip_gradients(nb06.clip_gradients).passed
    assert nb06.check_accounting_inputs(nb06.accounting_inputs).passed


def test_package_clipping_passes_the_checker():
    # the checker's notion of "right" is the package's clip_per_sample, not only our reference
    assert nb06.check_clip_gradients(lambda grads, c: dp.clip_per_sample(grads, max_grad_norm=c)[0]).passed


def test_clipping_without_the_small_constant_passes():
    # C / ‖g‖ instead of C / (‖g‖ + 1e-6) is a correct answer too
    def exact(grads, c):
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], 1).norm(dim=1)
        return [g * torch.clamp(c / norms, max=1.0).view(-1, *[1] * (g.dim() - 1)) for g in grads]

    assert nb06.check_clip_gradients(exact).passed


def test_clip_checker_rejects_clipping_each_tensor_alone():
    # plausible mistake: the weight and the bias clipped separately, so an example's total norm can exceed C
    fb = nb06.check_clip_gradients(lambda grads, c: [nb06.clip_gradients([g], c)[0] for g in grads])
    assert not fb.passed and "each parameter tensor" in fb.message


def test_clip_checker_rejects_normalising():
    # plausible mistake: g * C / ‖g‖ without min(1, ·) stretches short gradients up to C
    def normalise(grads, c):
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], 1).norm(dim=1)
        return [g * (c / norms).view(-1, *[1] * (g.dim() - 1)) for g in grads]

    fb = nb06.check_clip_gradients(normalise)
    assert not fb.passed and "min(1" in fb.message


def test_clip_checker_rejects_clipping_the_batch_sum():
    # plausible mistake: sum first, then clip (ordinary gradient clipping, not DP-SGD's)
    def batch_clip(grads, c):
        total = [g.sum(0) for g in grads]
        norm = torch.sqrt(sum((t ** 2).sum() for t in total))
        return [t * min(1.0, c / float(norm)) for t in total]

    fb = nb06.check_clip_gradients(batch_clip)
    assert not fb.passed and "batch dimension" in fb.message


def test_clip_checker_rejects_in_place_clipping():
    def in_place(grads, c):
        for g, clipped in zip(grads, nb06.clip_gradients(grads, c)):
            g.copy_(clipped)
        return grads

    fb = nb06.check_clip_gradients(in_place)
    assert not fb.passed and "in place" in fb.message


def test_accounting_checker_names_the_articles_mistake():
    # the source article: q = 1 / num_clients, steps = num_clients × epochs
    fb = nb06.check_accounting_inputs(lambda n, b, epochs, clients: (1 / clients, clients * epochs))
    assert not fb.passed and "source article" in fb.message


def test_accounting_checker_rejects_steps_equal_to_epochs():
    # plausible mistake: one step per epoch
    fb = nb06.check_accounting_inputs(lambda n, b, epochs, clients: (b / n, epochs))
    assert not fb.passed and "count the steps" in fb.message


def test_accounting_checker_rejects_one_over_batch_size():
    fb = nb06.check_accounting_inputs(lambda n, b, epochs, clients: (1 / b, epochs * round(n / b)))
    assert not fb.passed and "batch_size / num_examples" in fb.message


def test_accounting_reference_matches_train_dp_sgd():
    # the exercise's answer is what train_dp_sgd spends
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(130, 3, generator=g), torch.randint(0, 2, (130,), generator=g)
    _, history = dp.train_dp_sgd(torch.nn.Linear(3, 2), X, y, noise_multiplier=1.0, max_grad_norm=1.0,
                                 batch_size=20, epochs=2, lr=0.1, delta=1e-5)
    assert nb06.accounting_inputs(130, 20, 2, 10) == (history.last("sample_rate"), history.last("steps"))


def test_skeleton_and_crashing_answers_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise: clip each example's gradient")

    for check in (nb06.check_clip_gradients, nb06.check_accounting_inputs):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb06.check_accounting_inputs(lambda *args: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    fb = nb06.check_accounting_inputs(lambda *args: 0.5)
    assert not fb.passed and "pair" in fb.message
    fb = nb06.check_clip_gradients(lambda grads, c: None)
    assert not fb.passed


@pytest.mark.parametrize("n, b", [(49, 2), (130, 20), (1347, 64), (45, 10), (7, 3), (5, 5)], ids=lambda v: str(v))
def test_accounting_reference_counts_the_steps_train_dp_sgd_takes(n, b):
    # 49 / 2 = 24.5 and 45 / 10 = 4.5: Python's round() (half to even) would give 24 and 4,
    # train_dp_sgd takes 25 and 5
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g)
    _, history = dp.train_dp_sgd(torch.nn.Linear(3, 2), X, y, noise_multiplier=1.0, max_grad_norm=1.0,
                                 batch_size=b, epochs=2, lr=0.1, delta=1e-5)
    assert nb06.accounting_inputs(n, b, 2, 10) == (history.last("sample_rate"), history.last("steps"))
