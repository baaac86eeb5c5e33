"""DP-SGD from scratch (dpfl_course.dp.dpsgd) against autograd, against Opacus, and against its own
promises: clipped norms bounded by C, the noise's standard deviation, Poisson batch sizes, the
accountant's ε for the run, and ValueErrors that name the parameter."""

import copy
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from dpfl_course import dp, fl
from dpfl_course.dp import dpsgd


def batch(n=32, d=6, classes=3, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def mlp(d=6, hidden=8, classes=3, seed=0):
    return fl.MLP(d, hidden, classes, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- per-sample gradients and clipping


def test_per_sample_gradients_are_each_examples_own_gradient():
    model = mlp()
    X, y = batch(n=5)
    grads = dp.per_sample_gradients(model, X, y)
    for i in range(len(X)):  # one example at a time with plain autograd
        model.zero_grad()
        nn.functional.cross_entropy(model(X[i:i + 1]), y[i:i + 1]).backward()
        for g, p in zip(grads, model.parameters()):
            torch.testing.assert_close(g[i], p.grad, rtol=1e-5, atol=1e-6)


def test_clipping_bounds_every_per_sample_norm_by_the_clip_norm():
    model = mlp()
    X, y = batch(n=64, scale=5.0)  # large inputs: most gradients exceed C and are clipped
    for c in (0.01, 0.5, 3.0):
        clipped, norms = dp.clip_per_sample(dp.per_sample_gradients(model, X, y), max_grad_norm=c)
        after = torch.stack([g.reshape(len(X), -1).norm(dim=1) for g in clipped], 1).norm(dim=1)
        assert (norms > c).any(), "the test needs gradients longer than C"
        # factor C / (norm + 1e-6) gives a norm strictly below C; float32 rounding adds ~1e-7 relative
        assert (after <= c * (1 + 1e-5)).all()
        short = norms <= c  # gradients already shorter than C are left as they are (up to 1e-6 relative)
        torch.testing.assert_close(after[short], norms[short], rtol=1e-5, atol=0)


def test_ghost_clipping_equals_the_vmap_path():
    X, y = batch(n=40, scale=3.0)
    models = {
        "MLP": mlp(),
        "deeper, no bias in the middle": nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 7, bias=False),
                                                       nn.ReLU(), nn.Linear(7, 3)),
        "frozen first layer": nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)),
    }
    models["frozen first layer"][0].requires_grad_(False)
    for name, model in models.items():
        for c in (0.1, 1.0, 100.0):  # most clipped, some, none
            fast, fast_norms = dp.ghost_clipped_sum(model, X, y, max_grad_norm=c)
            clipped, norms = dp.clip_per_sample(dp.per_sample_gradients(model, X, y), max_grad_norm=c)
            torch.testing.assert_close(fast_norms, norms, rtol=1e-5, atol=1e-6, msg=name)
            for a, b in zip(fast, clipped):
                torch.testing.assert_close(a, b.sum(0), rtol=1e-5, atol=1e-5, msg=name)


def test_ghost_clipping_refuses_models_it_cannot_handle():
    X, y = batch()
    assert not dp.supports_ghost_clipping(nn.Sequential(nn.Linear(6, 3), nn.LayerNorm(3)))
    with pytest.raises(ValueError, match="nn.Linear"):
        dp.ghost_clipped_sum(nn.Sequential(nn.Linear(6, 3), nn.LayerNorm(3)), X, y, max_grad_norm=1.0)

    class Twice(nn.Module):  # one layer used twice: ‖g‖·‖a‖ per call is not the per-sample norm
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 3)

        def forward(self, x):
            return self.b(self.a(torch.relu(self.a(x))))

    with pytest.raises(ValueError, match="method='vmap'"):  # a custom module: not on the allowlist
        dp.ghost_clipped_sum(Twice(), X, y, max_grad_norm=1.0)
    shared = nn.Linear(6, 6)  # the same layer twice, from allowlisted modules: caught when it runs
    with pytest.raises(ValueError, match="once per forward"):
        dp.ghost_clipped_sum(nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(6, 3)), X, y, max_grad_norm=1.0)
    # an in-place activation overwrites the layer's output, so its gradient would be the wrong one
    inplace = nn.Sequential(nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))
    with pytest.raises(ValueError, match="in place"):
        dp.ghost_clipped_sum(inplace, X, y, max_grad_norm=1.0)
    # the vmap path handles it
    norms = dp.dp_sgd_step(Twice(), X, y, max_grad_norm=1.0, noise_multiplier=1.0, expected_batch_size=32,
                           lr=0.1, generator=torch.Generator(), method="vmap")
    assert norms.shape == (32,)


class Centre(nn.Module):
    """Parameter-free, but its forward combines examples: every output depends on the whole batch."""

    def forward(self, x):
        return x - x.mean(0)


def _influence(model, X, y, c):
    """‖clipped sum(D) − clipped sum(D without example 0)‖: per-example clipping bounds it by C."""
    full, _ = dp.ghost_clipped_sum(model, X, y, max_grad_norm=c)
    part, _ = dp.ghost_clipped_sum(model, X[1:], y[1:], max_grad_norm=c)
    return float(torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(full, part))))


@pytest.mark.parametrize("mixer", ["batchnorm", "centre"])
def test_fast_path_refuses_a_forward_that_combines_examples(mixer):
    # Such a model once passed the fast path and one outlying example moved the clipped sum by about
    # 4 C (R4's reproduction); now it is refused, and "auto" does not pick the fast path.
    make = {"batchnorm": lambda: nn.BatchNorm1d(8, affine=False), "centre": Centre}[mixer]
    torch.manual_seed(0)  # nn.Linear's default initialisation draws from the global RNG
    model = nn.Sequential(nn.Linear(6, 8), make(), nn.ReLU(), nn.Linear(8, 3))
    X, y = batch(n=20)
    X[0] *= 50
    assert not dp.supports_ghost_clipping(model)
    with pytest.raises(ValueError, match="method='vmap'"):
        dp.ghost_clipped_sum(model, X, y, max_grad_norm=1.0)
    with pytest.raises(ValueError, match="method='vmap'"):
        dp.dp_sgd_step(model, X, y, **STEP, generator=torch.Generator(), method="ghost")
    with pytest.raises(ValueError, match="method='vmap'"):
        dp.train_dp_sgd(model, X, y, **dict(TRAIN, method="ghost"))
    # "auto" falls back to the vmap path: it either refuses (BatchNorm's in-place running statistics
    # under vmap) or runs the model one example at a time, exactly as method="vmap" does
    if mixer == "batchnorm":
        with pytest.raises(RuntimeError):
            dp.train_dp_sgd(model, X, y, **TRAIN)
    else:
        runs = [dp.train_dp_sgd(copy.deepcopy(model), X, y, **dict(TRAIN, method=m))[0] for m in ("auto", "vmap")]
        for a, b in zip(*runs):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fast_path_allowlist_accepts_the_course_models_and_elementwise_layers():
    torch.manual_seed(0)
    X, y = batch(n=20)
    X[0] *= 50
    models = [mlp(), fl.LogisticRegression(6, 3, generator=torch.Generator().manual_seed(0)),
              nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Dropout(0.0), nn.Identity(),
                            nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 3), nn.Softplus())]
    for model in models:
        assert dp.supports_ghost_clipping(model), type(model).__name__
        # one example moves the clipped sum by at most C (1e-4: float32 rounding of sums of ~20 terms)
        assert _influence(model, X, y, 1.0) <= 1.0 + 1e-4
    class MyLinear(nn.Linear):  # a subclass may override forward: refused
        pass
    assert not dp.supports_ghost_clipping(nn.Sequential(MyLinear(6, 3)))
    assert not dp.supports_ghost_clipping(nn.Sequential(nn.Linear(6, 3), nn.ReLU(), nn.Softmax(dim=0)))


# ---------------------------------------------------------------- the step equals Opacus's


@pytest.mark.parametrize("grad_sample_mode", ["hooks", "ghost"])
@pytest.mark.parametrize("method", ["vmap", "ghost"])
def test_dp_sgd_step_equals_opacus_with_the_same_generator(method, grad_sample_mode):
    from opacus import PrivacyEngine

    X, y = batch(n=96, d=64, classes=10, seed=3, scale=2.0)
    model = fl.MLP(64, 128, 10, generator=torch.Generator().manual_seed(5))
    ours = copy.deepcopy(model)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32)  # 3 steps
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        out = PrivacyEngine().make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.15), data_loader=loader,
            noise_multiplier=1.1, max_grad_norm=1.0, poisson_sampling=False, criterion=nn.CrossEntropyLoss(),
            noise_generator=torch.Generator().manual_seed(7), grad_sample_mode=grad_sample_mode)
        private_model, optimizer, *rest = out
        criterion, private_loader = (rest if grad_sample_mode == "ghost" else (nn.CrossEntropyLoss(), rest[0]))
        assert optimizer.expected_batch_size == 32
        generator = torch.Generator().manual_seed(7)
        for xb, yb in private_loader:
            optimizer.zero_grad()
            criterion(private_model(xb), yb).backward()
            optimizer.step()
            dp.dp_sgd_step(ours, xb, yb, max_grad_norm=1.0, noise_multiplier=1.1, expected_batch_size=32,
                           lr=0.15, generator=generator, method=method)
    moved = max((a - b).abs().max().item() for a, b in zip(ours.parameters(),
                                                          fl.MLP(64, 128, 10, generator=torch.Generator().manual_seed(5)).parameters()))
    assert moved > 1e-2, "the steps must actually move the parameters"
    for a, b in zip(model.parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_opacus_poisson_sampler_draws_our_batches():
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    theirs = list(UniformWithReplacementSampler(num_samples=200, sample_rate=0.05, steps=30,
                                                generator=torch.Generator().manual_seed(11)))
    ours = dp.poisson_batches(200, sample_rate=0.05, steps=30, generator=torch.Generator().manual_seed(11))
    assert [b.tolist() for b in ours] == [list(b) for b in theirs]


# ---------------------------------------------------------------- noise and sampling, statistically


@pytest.mark.parametrize("method", ["vmap", "ghost"])
def test_noise_std_on_a_zero_gradient_is_sigma_c_over_expected_batch(method):
    # An empty Poisson batch has a zero clipped sum: the step is the noise alone, -lr·N(0, (σC)²)/b.
    model = fl.MLP(64, 128, 10, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    sigma, c, b, lr = 1.1, 0.7, 50, 0.2
    dp.dp_sgd_step(model, torch.zeros(0, 64), torch.zeros(0, dtype=torch.int64), max_grad_norm=c,
                   noise_multiplier=sigma, expected_batch_size=b, lr=lr, generator=torch.Generator().manual_seed(1),
                   method=method)
    noise = torch.cat([((p.detach() - q) / -lr).reshape(-1) for p, q in zip(model.parameters(), before)]).double()
    n, want = noise.numel(), sigma * c / b
    # 9,610 Gaussian draws: the sample std has standard error want/sqrt(2n) (0.7 %); allow 5 of them,
    # and the mean's standard error is want/sqrt(n).
    assert abs(noise.std().item() - want) <= 5 * want / (2 * n) ** 0.5
    assert abs(noise.mean().item()) <= 5 * want / n ** 0.5


def test_noise_multiplier_zero_adds_no_noise():
    model, X, y = mlp(), *batch()
    start = copy.deepcopy(model)
    dp.dp_sgd_step(model, X, y, max_grad_norm=1e6, noise_multiplier=0.0, expected_batch_size=len(X), lr=0.1,
                   generator=torch.Generator())
    # with C huge and σ = 0 the step is plain SGD on the mean loss
    opt = torch.optim.SGD(start.parameters(), lr=0.1)
    nn.functional.cross_entropy(start(X), y).backward()
    opt.step()
    for a, b in zip(model.parameters(), start.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_poisson_batches_have_the_right_size_on_average():
    n, q, steps = 1000, 0.05, 400
    batches = dp.poisson_batches(n, sample_rate=q, steps=steps, generator=torch.Generator().manual_seed(0))
    sizes = torch.tensor([len(b) for b in batches], dtype=torch.float64)
    var = n * q * (1 - q)  # each size is Binomial(n, q)
    # mean of 400 sizes: standard error sqrt(var/steps) = 0.34; sample variance: se ≈ var·sqrt(2/(steps-1)); 5 se each
    assert abs(sizes.mean().item() - n * q) <= 5 * (var / steps) ** 0.5
    assert abs(sizes.var().item() - var) <= 5 * var * (2 / (steps - 1)) ** 0.5
    assert all(b.unique().numel() == len(b) and (b >= 0).all() and (b < n).all() for b in batches)
    # every example is drawn about q·steps = 20 times (Binomial(400, 0.05)); 5 se of the mean over 1000 examples
    counts = torch.bincount(torch.cat(batches), minlength=n).double()
    assert abs(counts.mean().item() - q * steps) <= 5 * (steps * q * (1 - q) / n) ** 0.5


def test_poisson_batches_can_be_empty_and_the_step_still_adds_noise():
    batches = dp.poisson_batches(5, sample_rate=0.01, steps=50, generator=torch.Generator().manual_seed(0))
    assert any(len(b) == 0 for b in batches)


# ---------------------------------------------------------------- training and accounting


def test_train_dp_sgd_reports_the_accountants_epsilon_for_its_run():
    X, y = batch(n=300, d=6, seed=1)
    ledger = dp.PrivacyLedger(delta=1e-5)
    _, history = dp.train_dp_sgd(mlp(), X, y, noise_multiplier=1.1, max_grad_norm=1.0, batch_size=30, epochs=3,
                                 lr=0.1, delta=1e-5, ledger=ledger)
    q, per_epoch = 30 / 300, 10
    assert history["steps"] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert history["sample_rate"] == [q] * 3
    for steps, eps in zip(history["steps"], history["epsilon"]):
        assert eps == pytest.approx(dp.epsilon(noise_multiplier=1.1, sample_rate=q, steps=steps, delta=1e-5),
                                    rel=1e-12)
    assert ledger.epsilon == history["epsilon"][-1] and len(ledger) == 3


def test_train_dp_sgd_refuses_a_ledger_with_another_delta():
    X, y = batch(n=60)
    ledger = dp.PrivacyLedger(delta=1e-6)
    with pytest.raises(ValueError, match=r"ledger\.delta.*1e-06.*delta.*1e-05"):
        dp.train_dp_sgd(mlp(), X, y, **TRAIN, ledger=ledger)
    assert len(ledger) == 0  # nothing spent


@pytest.mark.parametrize("n, b", [(49, 2), (50, 20), (10, 4), (1347, 64), (100, 100), (7, 3), (45, 10)],
                         ids=lambda v: str(v))
def test_steps_per_epoch_is_n_over_b_rounded_half_up(n, b):
    from fractions import Fraction

    want = max(1, int(Fraction(n, b) + Fraction(1, 2)))  # exact: no float tie-breaking
    assert dp.steps_per_epoch_for(n, b) == want
    X, y = batch(n=n, d=3, classes=2)
    _, history = dp.train_dp_sgd(nn.Linear(3, 2), X, y, **dict(TRAIN, batch_size=b))
    assert history["steps"] == [want]


def test_train_dp_sgd_fast_path_equals_the_vmap_path():
    X, y = batch(n=200, d=6, seed=2)
    runs = {}
    for method in ("ghost", "vmap"):
        params, history = dp.train_dp_sgd(mlp(), X, y, noise_multiplier=1.0, max_grad_norm=0.5, batch_size=20,
                                          epochs=2, lr=0.2, delta=1e-5, seed=4, method=method, test_data=(X, y))
        runs[method] = params
    for a, b in zip(runs["ghost"], runs["vmap"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # 20 steps of float32 sums in another order


def test_train_dp_sgd_learns_the_digits():
    from dpfl_course import data

    digits = data.load_digits()
    model = fl.MLP(64, 128, 10, generator=torch.Generator().manual_seed(0))
    _, history = dp.train_dp_sgd(model, digits.X_train, digits.y_train, noise_multiplier=1.1, max_grad_norm=1.0,
                                 batch_size=64, epochs=10, lr=0.5, delta=1e-5, seed=0,
                                 test_data=(digits.X_test, digits.y_test))
    assert history["test_accuracy"][-1] > 0.8  # chance is 0.1; measured about 0.9
    assert history["test_accuracy"][-1] > history["test_accuracy"][0]


def test_train_dp_sgd_progress_bar_and_zero_noise(capsys):
    X, y = batch(n=60)
    _, history = dp.train_dp_sgd(mlp(), X, y, noise_multiplier=0.0, max_grad_norm=1.0, batch_size=20, epochs=2,
                                 lr=0.1, delta=1e-5, progress=True)
    assert history["epsilon"] == [float("inf")] * 2  # clipping alone is not private
    assert "DP-SGD" in capsys.readouterr().err


# ---------------------------------------------------------------- validation


STEP = dict(max_grad_norm=1.0, noise_multiplier=1.0, expected_batch_size=10, lr=0.1)
TRAIN = dict(noise_multiplier=1.0, max_grad_norm=1.0, batch_size=10, epochs=1, lr=0.1, delta=1e-5)


@pytest.mark.parametrize("change, name", [
    (dict(max_grad_norm=0.0), "max_grad_norm"), (dict(max_grad_norm=float("nan")), "max_grad_norm"),
    (dict(noise_multiplier=-1.0), "noise_multiplier"), (dict(noise_multiplier=float("inf")), "noise_multiplier"),
    (dict(expected_batch_size=0), "expected_batch_size"), (dict(lr=-0.1), "lr"), (dict(method="fast"), "method"),
    (dict(generator=None), "generator"),
], ids=lambda v: str(v))
def test_dp_sgd_step_rejects_bad_arguments(change, name):
    X, y = batch()
    kwargs = {**STEP, "generator": torch.Generator(), **change}
    with pytest.raises(ValueError, match=name):
        dp.dp_sgd_step(mlp(), X, y, **kwargs)


@pytest.mark.parametrize("change, name", [
    (dict(noise_multiplier=-0.5), "noise_multiplier"), (dict(max_grad_norm=-1), "max_grad_norm"),
    (dict(batch_size=0), "batch_size"), (dict(batch_size=61), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(epochs=0), "epochs"), (dict(lr=0), "lr"), (dict(delta=1.0), "delta"), (dict(delta=0), "delta"),
    (dict(seed=-1), "seed"), (dict(progress="yes"), "progress"), (dict(test_data=(1,)), "test_data"),
    (dict(ledger=dp.PrivacyLedger()), "ledger"),
], ids=lambda v: str(v))
def test_train_dp_sgd_rejects_bad_arguments(change, name):
    X, y = batch(n=60)
    with pytest.raises(ValueError, match=name):
        dp.train_dp_sgd(mlp(), X, y, **dict(TRAIN, **change))


def test_bad_data_and_models_are_rejected():
    X, y = batch()
    with pytest.raises(ValueError, match="X and y"):
        dp.per_sample_gradients(mlp(), X.numpy(), y)
    with pytest.raises(ValueError, match="one row per label"):
        dp.per_sample_gradients(mlp(), X, y[:-1])
    with pytest.raises(ValueError, match="at least one example"):
        dp.per_sample_gradients(mlp(), X[:0], y[:0])
    with pytest.raises(ValueError, match="finite"):
        dp.per_sample_gradients(mlp(), torch.full_like(X, float("nan")), y)
    with pytest.raises(ValueError, match="integer class labels"):
        dp.per_sample_gradients(mlp(), X, y.float())
    with pytest.raises(ValueError, match="model"):
        dp.per_sample_gradients(lambda x: x, X, y)
    with pytest.raises(ValueError, match="max_grad_norm"):
        dp.clip_per_sample([torch.ones(2, 3)], max_grad_norm=-1)
    with pytest.raises(ValueError, match="grads"):
        dp.clip_per_sample([], max_grad_norm=1)
    with pytest.raises(ValueError, match="batch size"):
        dp.clip_per_sample([torch.ones(2, 3), torch.ones(3)], max_grad_norm=1)
    with pytest.raises(ValueError, match="finite"):
        dp.clip_per_sample([torch.tensor([[1.0, float("nan")], [0.5, 0.5]])], max_grad_norm=1)
    with pytest.raises(ValueError, match="floating-point"):
        dp.clip_per_sample([torch.ones(2, 3, dtype=torch.int64)], max_grad_norm=1)
    # labels: -100 is cross-entropy's ignore_index (the example would silently not count), and
    # a label ≥ the model's outputs is no class
    with pytest.raises(ValueError, match="labels ≥ 0"):
        dp.per_sample_gradients(mlp(), X, torch.where(y == 0, -100, y))
    with pytest.raises(ValueError, match="labels ≥ 0"):
        dp.dp_sgd_step(mlp(), X, torch.where(y == 0, -1, y), **STEP, generator=torch.Generator())
    with pytest.raises(ValueError, match="labels < 3"):
        dp.train_dp_sgd(mlp(), X, torch.where(y == 0, 3, y), **TRAIN)
    with pytest.raises(ValueError, match="2-D"):
        dp.per_sample_gradients(nn.Linear(1, 3), X[:, 0], y)
    with pytest.raises(ValueError, match="test_data's y must hold class labels ≥ 0"):
        dp.train_dp_sgd(mlp(), X, y, **TRAIN, test_data=(X, torch.full_like(y, -100)))
    with pytest.raises(ValueError, match="test_data's y must hold class labels < 3"):
        dp.train_dp_sgd(mlp(), X, y, **TRAIN, test_data=(X, torch.full_like(y, 7)))
    with pytest.raises(ValueError, match="test_data's y must hold integer"):
        dp.train_dp_sgd(mlp(), X, y, **TRAIN, test_data=(X, y.float()))
    clipped, norms = dp.clip_per_sample([torch.ones(0, 3)], max_grad_norm=1)  # an empty batch is not an error
    assert clipped[0].shape == (0, 3) and norms.shape == (0,)
    for kwargs, name in [(dict(sample_rate=0), "sample_rate"), (dict(sample_rate=1.5), "sample_rate"),
                         (dict(steps=-1), "steps"), (dict(generator=0), "generator")]:
        with pytest.raises(ValueError, match=name):
            dp.poisson_batches(10, **dict(dict(sample_rate=0.1, steps=2, generator=torch.Generator()), **kwargs))
    with pytest.raises(ValueError, match="num_examples"):
        dp.poisson_batches(0, sample_rate=0.1, steps=2, generator=torch.Generator())


def test_importing_dp_does_not_import_opacus():
    code = "import sys; from dpfl_course import dp; dp.dp_sgd_step; print('opacus' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ghost_clipping_kept_across_steps_equals_one_call_per_step():
    # train_dp_sgd keeps one GhostClipping for the run; each step must equal a fresh call
    X, y = batch(n=48, scale=2.0)
    kept, fresh = mlp(), mlp()
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    with dp.GhostClipping(kept) as ghost:
        for start in (0, 16, 32):
            xb, yb = X[start:start + 16], y[start:start + 16]
            a = dp.dp_sgd_step(kept, xb, yb, ghost=ghost, generator=g1, **STEP)
            b = dp.dp_sgd_step(fresh, xb, yb, method="ghost", generator=g2, **STEP)
            torch.testing.assert_close(a, b)
        kept(X)  # a forward pass outside a step must not disturb the next step
        dp.dp_sgd_step(kept, X, y, ghost=ghost, generator=g1, **STEP)
        dp.dp_sgd_step(fresh, X, y, method="ghost", generator=g2, **STEP)
    for p, q in zip(kept.parameters(), fresh.parameters()):
        torch.testing.assert_close(p, q)
    assert all(not m._forward_hooks for m in kept.modules()), "closing removes every hook"


def test_ghost_argument_is_checked():
    X, y = batch()
    model, other = mlp(), mlp()
    ghost = dp.GhostClipping(other)
    with pytest.raises(ValueError, match="ghost"):
        dp.dp_sgd_step(model, X, y, ghost=ghost, generator=torch.Generator(), **STEP)
    with pytest.raises(ValueError, match="method"):
        dp.dp_sgd_step(other, X, y, ghost=ghost, method="vmap", generator=torch.Generator(), **STEP)
    ghost.close()
    with pytest.raises(ValueError, match="closed"):
        ghost.clipped_sum(X, y, max_grad_norm=1.0)
    with pytest.raises(ValueError, match="nn.Linear"):
        dp.GhostClipping(nn.Sequential(nn.Linear(6, 3), nn.LayerNorm(3)))
