"""Gradient inversion of a one-example FedSGD update: it succeeds without defence, fails under noise."""

import math

import pytest
import torch

from dpfl_course import data
from dpfl_course.privacy import inversion as inv


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


@pytest.fixture(scope="module")
def model():
    return inv.attack_model(64, 32, 10, generator=torch.Generator().manual_seed(0))


EXAMPLES = [0, 7, 19, 42, 101]  # five training digits of different classes


@pytest.mark.parametrize("i", EXAMPLES, ids=[f"example{i}" for i in EXAMPLES])
def test_label_inference_and_analytic_leak_are_exact_without_defence(digits, model, i):
    x, y = digits.X_train[i:i + 1], digits.y_train[i:i + 1]
    gradient = inv.client_gradient(model, x, y)
    assert inv.infer_label(gradient) == int(y)
    assert inv.infer_label(gradient[:-1]) == int(y)  # from the last weight matrix alone (sigmoid inputs > 0)
    # x = ∇W₁/∇b₁ is exact up to float32 rounding: 1e-5 on pixels in [0, 1]
    assert torch.allclose(inv.analytic_inversion(gradient), x[0], atol=1e-5)
    unit = int(gradient[1].abs().argmax())
    assert torch.allclose(inv.analytic_inversion(gradient, unit=unit), x[0], atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed0", "seed1", "seed2"])
@pytest.mark.parametrize("i", EXAMPLES[:3], ids=[f"example{i}" for i in EXAMPLES[:3]])
def test_dlg_recovers_the_image_without_defence(digits, model, i, seed):
    # 1e-3 MSE is 30 dB PSNR: an RMS pixel error of 3 % of the range, a visually perfect 8×8 digit;
    # the optimisation actually reaches ~1e-6 (cosine) and ~1e-14 (L2), so the threshold has room.
    x, y = digits.X_train[i:i + 1], digits.y_train[i:i + 1]
    gradient = inv.client_gradient(model, x, y)
    for distance in ["cosine", "l2"]:
        X_rec, labels = inv.dlg(model, gradient, distance=distance, generator=torch.Generator().manual_seed(seed))
        assert labels.tolist() == y.tolist()
        assert inv.mse(X_rec, x) <= 1e-3 and inv.psnr(X_rec, x) >= 30


def test_dlg_leaves_the_model_as_it_was(model, digits):
    before = [p.detach().clone() for p in model.parameters()]
    gradient = inv.client_gradient(model, digits.X_train[:1], digits.y_train[:1])
    inv.dlg(model, gradient, max_iter=5, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_clipping_alone_stops_l2_dlg_but_not_cosine_dlg_nor_the_analytic_leak(digits, model):
    # A one-example gradient clipped to C is the same gradient times a number: the ratio and the
    # cosine do not see the scale; the squared distance does (no input has that smaller gradient).
    x, y = digits.X_train[:1], digits.y_train[:1]
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in inv.client_gradient(model, x, y)))
    clipped = inv.dp_client_gradient(model, x, y, max_grad_norm=0.1 * norm, noise_multiplier=0.0,
                                     generator=torch.Generator().manual_seed(0))
    assert math.sqrt(sum(float(g.pow(2).sum()) for g in clipped)) == pytest.approx(0.1 * norm, rel=1e-4)
    assert torch.allclose(inv.analytic_inversion(clipped), x[0], atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    assert inv.mse(inv.dlg(model, clipped, distance="cosine", generator=gen)[0], x) <= 1e-3
    gen = torch.Generator().manual_seed(0)
    assert inv.mse(inv.dlg(model, clipped, distance="l2", generator=gen)[0], x) >= 0.05


def test_noise_defeats_the_attacks(digits, model):
    # σ = 0.1 with C = 1 (the gradient norm is ~3, so C clips): noise of norm ~0.1·√2410 ≈ 5 on a
    # signal of norm 1. Both attacks then do worse than guessing the average digit.
    mean_image = digits.X_train.mean(0, keepdim=True)
    for i in EXAMPLES[:3]:
        x, y = digits.X_train[i:i + 1], digits.y_train[i:i + 1]
        clean = inv.client_gradient(model, x, y)
        clean_mse = inv.mse(inv.dlg(model, clean, generator=torch.Generator().manual_seed(0))[0], x)
        noisy = inv.dp_client_gradient(model, x, y, max_grad_norm=1.0, noise_multiplier=0.1,
                                       generator=torch.Generator().manual_seed(i))
        dlg_mse = inv.mse(inv.dlg(model, noisy, generator=torch.Generator().manual_seed(0))[0], x)
        analytic_mse = inv.mse(inv.analytic_inversion(noisy), x[0])
        baseline = inv.mse(mean_image, x)
        assert dlg_mse > 1000 * clean_mse and dlg_mse > baseline
        assert analytic_mse > baseline


def test_more_noise_means_worse_reconstruction(digits, model):
    x, y = digits.X_train[:1], digits.y_train[:1]
    errors = []
    for sigma in [0.0, 1e-3, 1e-2, 1e-1]:
        g = inv.dp_client_gradient(model, x, y, max_grad_norm=1.0, noise_multiplier=sigma,
                                   generator=torch.Generator().manual_seed(0))
        errors.append(inv.mse(inv.analytic_inversion(g), x[0]))
    assert errors == sorted(errors) and errors[-1] > 100 * errors[1]


def test_dp_client_gradient_is_clipped_then_noised_with_std_sigma_c(digits, model):
    # Over a batch of 2 the update is (clipped sum + N(0, (σC)²)) / 2: with a huge σ the noise
    # dominates, and its sample std over 2410 coordinates is σC/2 within 5 % (≈ 3.5 standard errors).
    X, y = digits.X_train[:2], digits.y_train[:2]
    g = inv.dp_client_gradient(model, X, y, max_grad_norm=0.5, noise_multiplier=1000.0,
                               generator=torch.Generator().manual_seed(0))
    flat = torch.cat([t.reshape(-1) for t in g])
    assert float(flat.std()) == pytest.approx(1000 * 0.5 / 2, rel=0.05)
    again = inv.dp_client_gradient(model, X, y, max_grad_norm=0.5, noise_multiplier=1000.0,
                                   generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(g, again))


def test_quality_scores():
    a = torch.zeros(4)
    assert inv.mse(a, torch.full((4,), 0.5)) == pytest.approx(0.25)
    assert inv.mse(a, torch.full((4,), -3.0)) == 0.0  # clipped to [0, 1] first
    assert inv.psnr(a, torch.full((4,), 0.1)) == pytest.approx(20.0)
    assert inv.psnr(a, a) == math.inf
    assert inv.psnr(a, torch.full((4,), 0.2), data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.04))


@pytest.mark.parametrize("call, name", [
    (lambda m, g: inv.mse(torch.zeros(3), torch.zeros(4)), "images"),
    (lambda m, g: inv.mse(torch.zeros(2), torch.tensor([0.0, math.nan])), "images"),
    (lambda m, g: inv.psnr(torch.zeros(2), torch.ones(2), data_range=0), "data_range"),
    (lambda m, g: inv.infer_label([torch.zeros(3, 2), torch.tensor([math.inf, 0.0])]), "gradient"),
    (lambda m, g: inv.infer_label(torch.zeros(3)), "gradient"),
    (lambda m, g: inv.analytic_inversion([g[0], torch.zeros_like(g[1])]), "gradient"),
    (lambda m, g: inv.analytic_inversion(g, unit=99), "unit"),
    (lambda m, g: inv.dlg(m, g, distance="manhattan", generator=torch.Generator()), "distance"),
    (lambda m, g: inv.dlg(m, g, max_iter=0, generator=torch.Generator()), "max_iter"),
    (lambda m, g: inv.dlg(m, g, num_examples=2, generator=torch.Generator()), "labels"),
    (lambda m, g: inv.dlg(m, g[:2], generator=torch.Generator()), "gradient"),
    (lambda m, g: inv.dlg(m, g, labels=torch.tensor([10]), generator=torch.Generator()), "labels"),
    (lambda m, g: inv.client_gradient(m, torch.zeros(1, 64), torch.tensor([10])), "y"),
    (lambda m, g: inv.dlg(m, g, generator=None), "generator"),
    (lambda m, g: inv.dp_client_gradient(m, torch.zeros(1, 64), torch.tensor([1]), max_grad_norm=0,
                                         noise_multiplier=1.0, generator=torch.Generator()), "max_grad_norm"),
    (lambda m, g: inv.dp_client_gradient(m, torch.zeros(1, 64), torch.tensor([1]), max_grad_norm=1.0,
                                         noise_multiplier=-1, generator=torch.Generator()), "noise_multiplier"),
    (lambda m, g: inv.client_gradient(m, torch.zeros(0, 64), torch.zeros(0, dtype=torch.long)), "X"),
    (lambda m, g: inv.attack_model(64, 0, 10), "hidden"),
    # review 09, finding 6: these raised TypeError / RuntimeError from torch instead
    (lambda m, g: inv.mse("a", "b"), "a must be an image"),
    (lambda m, g: inv.mse(torch.zeros(2), None), "b must be an image"),
    (lambda m, g: inv.client_gradient(m, torch.zeros(1, 63), torch.tensor([1])), "X must have 64 features"),
    (lambda m, g: inv.client_gradient(m, torch.zeros(1, 64, dtype=torch.float64), torch.tensor([1])),
     "X must have the model's dtype"),
    (lambda m, g: inv.dp_client_gradient(m, torch.zeros(1, 65), torch.tensor([1]), max_grad_norm=1.0,
                                         noise_multiplier=1.0, generator=torch.Generator()), "X must have 64"),
    (lambda m, g: inv.client_gradient(torch.nn.Linear(64, 1), torch.zeros(1, 64), torch.tensor([0])), "model"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_raise_value_errors_naming_the_parameter(digits, model, call, name):
    g = inv.client_gradient(model, digits.X_train[:1], digits.y_train[:1])
    with pytest.raises(ValueError, match=name):
        call(model, g)


def test_analytic_inversion_survives_tiny_bias_gradients():
    # Review 09, finding 6: Σ ∇b₁² of gradients ~1e-30 underflows to 0 in float32, and the
    # least-squares combination used to refuse ("must not be all zero"); it normalises first now.
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    dz = torch.tensor([3e-30, -2e-30, 1e-30])
    assert float(dz.pow(2).sum()) == 0.0  # the underflow the fix avoids
    assert torch.allclose(inv.analytic_inversion([torch.outer(dz, x), dz]), x, atol=1e-6)
