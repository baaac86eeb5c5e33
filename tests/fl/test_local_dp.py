"""Local DP-SGD at the clients (record-level DP): the client step, both engines, the LocalDP wrapper.

What is checked: every per-example gradient is clipped to max_grad_norm; the noise is σ·C times
the client's own draws, divided by the expected batch size; both engines train the same model
with DP on (same Poisson batches, same noise); with no noise, no clipping and sample rate 1 the
DP step is plain full-batch SGD (so LocalDP reduces to FedAvg with full batches); each client's
ledger ε equals dp.epsilon for its (q, σ, steps); bad inputs raise ValueError naming the parameter.
"""

import math

import pytest
import torch

from dpfl_course import dp, fl
from dpfl_course.fl.client_dp import dp_sgd_local_step

from .conftest import make_clients

SIZES = [3, 9, 14, 5, 22, 1, 8]  # unequal: ragged batches, q = 1 for small clients, q < 1 for large


def _run(engine, strategy, model, clients, test_set=None, num_rounds=3, seed=7, **kwargs):
    return fl.run_federated(model, clients, strategy, num_rounds=num_rounds, engine=engine, test_data=test_set,
                            seed=seed, **kwargs)


# ---------------------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("model_name", ["logreg", "mlp"])
def test_every_per_example_gradient_is_clipped_to_max_grad_norm(model_name):
    model = fl.LogisticRegression(6, 3) if model_name == "logreg" else fl.MLP(6, 5, 3)
    (X, y), = make_clients([30], seed=3)
    X = X * 10  # large inputs: most gradients exceed the clip
    params = dict(model.named_parameters())
    params = {n: p.detach() for n, p in params.items()}
    grads = fl.per_example_gradients(model, params, X, y)
    norms = torch.sqrt(sum(g.reshape(30, -1).pow(2).sum(1) for g in grads.values()))
    C = 0.5
    assert (norms > C).sum() >= 10  # the test clips something
    factors = fl.clip_factors(norms, C)
    clipped = torch.sqrt(sum((factors.view(-1, *[1] * (g.ndim - 1)) * g).reshape(30, -1).pow(2).sum(1)
                             for g in grads.values()))
    assert bool((clipped <= C + 1e-5).all())
    small = norms <= C
    torch.testing.assert_close(clipped[small], norms[small])  # small gradients are left alone


def test_per_example_gradients_sum_to_the_batch_gradient():
    model = fl.MLP(6, 5, 3)
    (X, y), = make_clients([12], seed=4)
    params = {n: p.detach() for n, p in model.named_parameters()}
    grads = fl.per_example_gradients(model, params, X, y)
    loss = torch.nn.functional.cross_entropy(model(X), y, reduction="sum")
    reference = torch.autograd.grad(loss, list(model.parameters()))
    for (name, g), ref in zip(grads.items(), reference):
        torch.testing.assert_close(g.sum(0), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_name", ["logreg", "mlp", "mlp-generic"])
def test_vectorised_dp_step_equals_clip_sum_noise_divide(model_name):
    # The engine's closed-form ("ghost") clipping and its vmap fallback against the textbook step.
    model = fl.LogisticRegression(6, 3) if model_name == "logreg" else fl.MLP(6, 5, 3)
    clients = make_clients([10, 7], seed=5)
    clients = [(X * 4, y) for X, y in clients]
    engine = fl.VectorisedEngine(model, clients, use_forward_stacked=model_name != "mlp-generic")
    params0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    K, B = 2, 10
    X = torch.zeros(K, B, 6)
    y = torch.zeros(K, B, dtype=torch.int64)
    mask = torch.zeros(K, B)
    for k, (Xk, yk) in enumerate(clients):
        X[k, :len(Xk)], y[k, :len(yk)], mask[k, :len(Xk)] = Xk, yk, 1.0
    D = sum(p.numel() for p in params0.values())
    noise = torch.randn(K, D, generator=torch.Generator().manual_seed(0))
    clip, sigma, expected, lr = torch.tensor([0.3, 2.0]), torch.tensor([1.5, 0.0]), torch.tensor([4.0, 3.5]), 0.1
    stacked = {n: p.unsqueeze(0).expand(K, *p.shape).clone() for n, p in params0.items()}
    new, loss_sums = engine.dp_client_step(stacked, X, y, mask, params0, None, torch.full((K,), lr), clip,
                                           sigma * clip, expected, noise)
    for k, (Xk, yk) in enumerate(clients):
        grads, losses = dp_sgd_local_step(model, params0, Xk, yk, noise[k], max_grad_norm=float(clip[k]),
                                          noise_multiplier=float(sigma[k]), expected_batch_size=float(expected[k]))
        for n in params0:
            torch.testing.assert_close(new[n][k], params0[n] - lr * grads[n], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(loss_sums[k], losses.sum(), rtol=1e-5, atol=1e-6)


def test_noise_is_sigma_times_clip_times_the_clients_draws_over_the_expected_batch():
    # One full-batch step (q = 1): the update is -lr (Σ clip(g_i) + σ C ξ) / n with ξ the client's
    # own draws, so the noise part is known exactly.
    model = fl.LogisticRegression(6, 3)
    (X, y), = make_clients([9], seed=6)
    params = fl.get_parameters(model)
    sigma, C, lr = 2.0, 0.7, 0.5
    results = {}
    for noise_multiplier in (0.0, sigma):
        results[noise_multiplier] = fl.train_local(model, params, X, y, local_epochs=1, batch_size=None, lr=lr,
                                                   generator=torch.Generator().manual_seed(11),
                                                   noise_multiplier=noise_multiplier, max_grad_norm=C)
    draws = fl.local_dp_draws(9, sum(p.numel() for p in params), local_epochs=1, batch_size=None,
                              generator=torch.Generator().manual_seed(11))
    difference = fl.parameters_to_vector(results[sigma].parameters) - fl.parameters_to_vector(results[0.0].parameters)
    torch.testing.assert_close(difference, -lr * sigma * C * draws.noise[0] / 9, rtol=1e-4, atol=1e-6)
    assert results[sigma].metrics["dp_steps"] == 1 and results[sigma].metrics["dp_sample_rate"] == 1.0


# ---------------------------------------------------------------------------------------- Poisson batches
def test_local_dp_plan_follows_the_api():
    assert fl.local_dp_plan(25, local_epochs=3, batch_size=10) == (0.4, 9)  # ceil(25/10) = 3 per epoch
    assert fl.local_dp_plan(8, local_epochs=2, batch_size=8) == (1.0, 2)
    assert fl.local_dp_plan(5, local_epochs=2, batch_size=50) == (1.0, 2)


def test_poisson_batches_include_each_example_with_probability_q():
    draws = fl.local_dp_draws(200, 4, local_epochs=50, batch_size=20, generator=torch.Generator().manual_seed(0))
    assert draws.masks.shape == (500, 200) and draws.noise.shape == (500, 4)
    n = draws.masks.numel()
    # 5 standard errors of a Bernoulli(q) mean over n draws.
    assert abs(draws.masks.double().mean().item() - 0.1) < 5 * math.sqrt(0.1 * 0.9 / n)
    sizes = draws.masks.sum(1).double()
    assert sizes.var().item() > 0  # batch sizes vary (Poisson sampling, not fixed-size batches)
    assert abs(draws.noise.mean().item()) < 5 / math.sqrt(draws.noise.numel())


# ---------------------------------------------------------------------------------------- both engines
CASES = {
    "logreg": (lambda: fl.LogisticRegression(6, 3),
               lambda: fl.FedAvg(local_epochs=2, batch_size=4, lr=0.3), {}),
    "mlp-partial-dropout": (lambda: fl.MLP(6, 5, 3),
                            lambda: fl.FedAvg(clients_per_round=4, local_epochs=1, batch_size=3, lr=0.3),
                            {"dropout": 0.2}),
    "fedprox": (lambda: fl.MLP(6, 5, 3),
                lambda: fl.FedProx(proximal_mu=0.3, clients_per_round=5, local_epochs=2, batch_size=4, lr=0.2), {}),
    "full-batch": (lambda: fl.LogisticRegression(6, 3),
                   lambda: fl.FedAvg(local_epochs=3, batch_size=None, lr=0.5), {}),
    "no-noise": (lambda: fl.MLP(6, 5, 3), lambda: fl.FedAvg(local_epochs=2, batch_size=4, lr=0.3), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_engines_agree_with_local_dp(unequal_clients, test_set, case):
    make_model, make_strategy, kwargs = CASES[case]
    sigma = 0.0 if case == "no-noise" else 0.8
    runs = {}
    for engine in ("sequential", "vectorised"):
        strategy = fl.LocalDP(make_strategy(), noise_multiplier=sigma, max_grad_norm=0.5)
        runs[engine] = _run(engine, strategy, make_model(), unequal_clients, test_set, num_rounds=4, **kwargs)
    (p_seq, h_seq), (p_vec, h_vec) = runs["sequential"], runs["vectorised"]
    torch.testing.assert_close(p_vec, p_seq, rtol=0, atol=1e-5)
    assert h_vec["epsilon"] == h_seq["epsilon"]
    for col in ("train_loss", "test_accuracy"):
        torch.testing.assert_close(torch.tensor(h_vec[col], dtype=torch.float64),
                                   torch.tensor(h_seq[col], dtype=torch.float64), rtol=0, atol=1e-5, equal_nan=True)
    start = fl.parameters_to_vector(fl.get_parameters(make_model()))
    assert (fl.parameters_to_vector(p_seq) - start).abs().max() > 1e-3  # it trained


def test_engines_agree_client_by_client_with_mixed_rounds_and_the_generic_path(unequal_clients):
    # One client without local DP in a private round; the vmap fallback of the vectorised engine.
    model = fl.MLP(6, 5, 3)
    params = fl.get_parameters(model)
    instructions = [(cid, {"local_epochs": 2, "batch_size": 4, "lr": 0.3, "seed": 100 + cid,
                           "noise_multiplier": 0.5 * cid, "max_grad_norm": 0.3 + 0.1 * cid})
                    for cid in range(len(SIZES))]
    instructions[2] = (2, {"local_epochs": 2, "batch_size": 4, "lr": 0.3, "seed": 102})
    sequential = fl.SequentialEngine(model, unequal_clients).fit(params, instructions)
    for use_forward_stacked in (True, False):
        vectorised = fl.VectorisedEngine(model, unequal_clients,
                                         use_forward_stacked=use_forward_stacked).fit(params, instructions)
        for (c_seq, r_seq), (c_vec, r_vec) in zip(sequential, vectorised):
            assert c_seq == c_vec and r_seq.num_examples == r_vec.num_examples
            torch.testing.assert_close(r_vec.parameters, r_seq.parameters, rtol=0, atol=1e-5)
            assert set(r_vec.metrics) == set(r_seq.metrics)
            assert r_vec.metrics.get("dp_steps") == r_seq.metrics.get("dp_steps")
    assert "dp_steps" not in sequential[2][1].metrics and "dp_steps" in sequential[3][1].metrics


def test_local_dp_without_noise_or_clipping_at_rate_one_is_full_batch_fedavg(unequal_clients, test_set):
    # q = 1 (batch_size >= every n_k), σ = 0, C huge: every step sums all unclipped per-example
    # gradients and divides by n_k, i.e. plain full-batch gradient descent.
    for engine in ("sequential", "vectorised"):
        plain = _run(engine, fl.FedAvg(local_epochs=3, batch_size=None, lr=0.5), fl.MLP(6, 5, 3),
                     unequal_clients, test_set, num_rounds=3)
        private = _run(engine, fl.LocalDP(fl.FedAvg(local_epochs=3, batch_size=100, lr=0.5), noise_multiplier=0.0,
                                          max_grad_norm=1e9), fl.MLP(6, 5, 3), unequal_clients, test_set, num_rounds=3)
        torch.testing.assert_close(private[0], plain[0], rtol=0, atol=1e-5)
        assert private[1]["epsilon"][1:] == [math.inf] * 3


def test_without_noise_the_clip_only_matters_when_gradients_exceed_it(unequal_clients):
    # σ = 0: a clip far above every gradient norm gives the same model as an even larger one.
    runs = [_run("vectorised", fl.LocalDP(fl.FedAvg(local_epochs=1, batch_size=4, lr=0.3), noise_multiplier=0.0,
                                          max_grad_norm=C), fl.MLP(6, 5, 3), unequal_clients)[0]
            for C in (1e3, 1e9, 0.01)]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=1e-6)
    assert (fl.parameters_to_vector(runs[2]) - fl.parameters_to_vector(runs[1])).abs().max() > 1e-3


def test_runs_are_reproducible_and_never_touch_the_global_generator(unequal_clients):
    strategy = lambda: fl.LocalDP(fl.FedAvg(local_epochs=1, batch_size=4, lr=0.3), noise_multiplier=1.0,
                                  max_grad_norm=1.0)
    state = torch.get_rng_state()
    first = _run("vectorised", strategy(), fl.MLP(6, 5, 3), unequal_clients)[0]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(12345)  # the global generator must not matter
    second = _run("vectorised", strategy(), fl.MLP(6, 5, 3), unequal_clients)[0]
    other = _run("vectorised", strategy(), fl.MLP(6, 5, 3), unequal_clients, seed=8)[0]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


# ---------------------------------------------------------------------------------------- accounting
def test_each_clients_ledger_epsilon_is_dp_epsilon_of_its_run(unequal_clients):
    batch_size, epochs, rounds, sigma, delta = 4, 2, 3, 1.2, 1e-5
    strategy = fl.LocalDP(fl.FedAvg(local_epochs=epochs, batch_size=batch_size, lr=0.3), noise_multiplier=sigma,
                          max_grad_norm=1.0, delta=delta)
    _, history = _run("vectorised", strategy, fl.LogisticRegression(6, 3), unequal_clients, num_rounds=rounds)
    expected = {}
    for cid, (X, _) in enumerate(unequal_clients):
        n = len(X)
        q = min(1.0, batch_size / n)
        steps_per_round = epochs * math.ceil(n / batch_size)
        expected[cid] = [dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=r * steps_per_round, delta=delta)
                         for r in range(1, rounds + 1)]
        assert strategy.ledgers[cid].epsilon == expected[cid][-1]
        assert len(strategy.ledgers[cid]) == rounds  # one entry per round (every client trains every round)
    assert strategy.epsilons(len(unequal_clients)) == [expected[c][-1] for c in range(len(unequal_clients))]
    # The History's ε per round is the largest client ε so far.
    assert history["epsilon"][1:] == [max(expected[c][r] for c in expected) for r in range(rounds)]


def test_max_epsilon_equals_the_largest_client_epsilon_with_partial_participation():
    clients = make_clients([4, 7, 11, 15, 20, 26, 33, 40, 52, 3], seed=2)
    strategy = fl.LocalDP(fl.FedAvg(clients_per_round=3, local_epochs=1, batch_size=5, lr=0.1),
                          noise_multiplier=0.9, max_grad_norm=1.0)
    maxima = []
    _run("vectorised", strategy, fl.LogisticRegression(6, 3), clients, num_rounds=8,
         on_round=lambda r, p, row: maxima.append((row["epsilon"], max(strategy.epsilons(len(clients))))))
    assert all(a == b for a, b in maxima)
    assert len({b for _, b in maxima}) > 1
    untouched = [cid for cid in range(len(clients)) if cid not in strategy.ledgers]
    assert all(strategy.epsilons(len(clients))[cid] == 0.0 for cid in untouched)


# ---------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("kwargs, name", [
    ({"noise_multiplier": -0.1, "max_grad_norm": 1.0}, "noise_multiplier"),
    ({"noise_multiplier": float("nan"), "max_grad_norm": 1.0}, "noise_multiplier"),
    ({"noise_multiplier": 1.0, "max_grad_norm": 0.0}, "max_grad_norm"),
    ({"noise_multiplier": 1.0, "max_grad_norm": float("inf")}, "max_grad_norm"),
    ({"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1.0}, "delta"),
    ({"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 0.0}, "delta"),
], ids=["negative-noise", "nan-noise", "zero-clip", "inf-clip", "delta-one", "delta-zero"])
def test_local_dp_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        fl.LocalDP(fl.FedAvg(), **kwargs)


def test_local_dp_rejects_what_is_not_a_strategy():
    with pytest.raises(ValueError, match="strategy"):
        fl.LocalDP("FedAvg", noise_multiplier=1.0, max_grad_norm=1.0)


@pytest.mark.parametrize("config, name", [
    ({"noise_multiplier": 1.0}, "max_grad_norm"),
    ({"max_grad_norm": 1.0}, "noise_multiplier"),
    ({"noise_multiplier": -1.0, "max_grad_norm": 1.0}, "noise_multiplier"),
    ({"noise_multiplier": 1.0, "max_grad_norm": -1.0}, "max_grad_norm"),
    ({"noise_multiplier": True, "max_grad_norm": 1.0}, "noise_multiplier"),
], ids=["clip-missing", "noise-missing", "negative-noise", "negative-clip", "bool-noise"])
def test_fit_config_rejects_bad_local_dp_keys(config, name):
    with pytest.raises(ValueError, match=name):
        fl.parse_fit_config(config)
    (X, y), = make_clients([5])
    with pytest.raises(ValueError, match=name):
        fl.VectorisedEngine(fl.LogisticRegression(6, 3), [(X, y)]).fit(
            fl.get_parameters(fl.LogisticRegression(6, 3)), [(0, config)])


def test_train_local_rejects_bad_local_dp_arguments():
    (X, y), = make_clients([5])
    model = fl.LogisticRegression(6, 3)
    with pytest.raises(ValueError, match="max_grad_norm"):
        fl.train_local(model, fl.get_parameters(model), X, y, generator=torch.Generator(), noise_multiplier=1.0,
                       max_grad_norm=0.0)


def test_aggregate_fit_refuses_clients_that_did_not_run_dp_sgd(unequal_clients):
    strategy = fl.LocalDP(fl.FedAvg(), noise_multiplier=1.0, max_grad_norm=1.0)
    model = fl.LogisticRegression(6, 3)
    res = fl.FitRes(fl.get_parameters(model), 3, {"train_loss": 1.0})
    with pytest.raises(ValueError, match="dp_steps"):
        strategy.aggregate_fit(1, [(0, res)], [])


def test_empty_poisson_batches_still_add_noise_and_both_engines_agree():
    # batch_size 1 on 30 examples: q = 1/30, so about a third of the steps sample nobody.
    clients = make_clients([30, 12], seed=8)
    draws = fl.local_dp_draws(30, 21, local_epochs=1, batch_size=1, generator=torch.Generator().manual_seed(5))
    assert (draws.masks.sum(1) == 0).sum() >= 5
    model = fl.LogisticRegression(6, 3)
    params = fl.get_parameters(model)
    instructions = [(0, {"local_epochs": 1, "batch_size": 1, "lr": 0.2, "seed": 5, "noise_multiplier": 1.0,
                         "max_grad_norm": 1.0}),
                    (1, {"local_epochs": 1, "batch_size": 1, "lr": 0.2, "seed": 6, "noise_multiplier": 1.0,
                         "max_grad_norm": 1.0})]
    sequential = fl.SequentialEngine(model, clients).fit(params, instructions)
    vectorised = fl.VectorisedEngine(model, clients).fit(params, instructions)
    for (_, r_seq), (_, r_vec) in zip(sequential, vectorised):
        torch.testing.assert_close(r_vec.parameters, r_seq.parameters, rtol=0, atol=1e-5)
    # An empty step's gradient estimate is the noise alone, σ·C·ξ / (q·n).
    params = {n: p.detach() for n, p in model.named_parameters()}
    noise = torch.randn(21, generator=torch.Generator().manual_seed(1))
    grads, losses = dp_sgd_local_step(model, params, torch.zeros(0, 6), torch.zeros(0, dtype=torch.int64), noise,
                                      max_grad_norm=0.5, noise_multiplier=2.0, expected_batch_size=4.0)
    assert len(losses) == 0
    torch.testing.assert_close(torch.cat([g.flatten() for g in grads.values()]), 2.0 * 0.5 * noise / 4.0)


def test_ledgers_mapping_lists_the_clients_that_trained(unequal_clients):
    strategy = fl.LocalDP(fl.FedAvg(clients_per_round=3, local_epochs=1, batch_size=4, lr=0.3),
                          noise_multiplier=1.0, max_grad_norm=1.0)
    _run("vectorised", strategy, fl.LogisticRegression(6, 3), unequal_clients, num_rounds=2)
    trained = sorted(strategy.ledgers)
    assert 3 <= len(trained) <= 6 and len(strategy.ledgers) == len(trained)
    absent = next(c for c in range(len(SIZES)) if c not in trained)
    with pytest.raises(KeyError):
        strategy.ledgers[absent]
    eps = strategy.epsilons(len(SIZES))
    assert all((eps[c] > 0) == (c in trained) for c in range(len(SIZES)))
