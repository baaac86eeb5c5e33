"""Tests for the strategies: FedAvg / FedSGD / FedProx maths, sampling statistics, validation."""

import math

import pytest
import torch
import torch.nn.functional as F

from dpfl_course import fl

from .conftest import make_clients

ENGINES = ["sequential", "vectorised"]


def centralised_gd(model, params, X, y, lr, steps):
    """Full-batch gradient descent on the union of the clients' data: the FedSGD reference."""
    params = [p.clone() for p in params]
    names = [n for n, _ in model.named_parameters()]
    for _ in range(steps):
        leaves = [p.requires_grad_(True) for p in params]
        loss = F.cross_entropy(torch.func.functional_call(model, dict(zip(names, leaves)), (X,)), y)
        grads = torch.autograd.grad(loss, leaves)
        params = [(p - lr * g).detach() for p, g in zip(leaves, grads)]
    return params


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("arch", ["logreg", "mlp"])
def test_fedsgd_with_all_clients_is_centralised_gradient_descent(unequal_clients, engine, arch):
    # Union gradient = sum_k (n_k / n) * client gradient k, so averaging the one-step models with
    # weights n_k / n is one gradient step on the union; three rounds are three steps.
    model = fl.LogisticRegression(6, 3) if arch == "logreg" else fl.MLP(6, 5, 3)
    X = torch.cat([X for X, _ in unequal_clients])
    y = torch.cat([y for _, y in unequal_clients])
    want = centralised_gd(model, fl.get_parameters(model), X, y, lr=0.5, steps=3)
    got, history = fl.run_federated(model, unequal_clients, fl.FedSGD(lr=0.5), num_rounds=3, engine=engine)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert history["clients_succeeded"][1:] == [len(unequal_clients)] * 3


def test_fedavg_local_full_batch_step_equals_fedsgd(unequal_clients):
    a, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients,
                            fl.FedAvg(local_epochs=1, batch_size=None, lr=0.3), num_rounds=2)
    b, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, fl.FedSGD(lr=0.3), num_rounds=2)
    assert all(torch.equal(x, z) for x, z in zip(a, b))


@pytest.mark.parametrize("engine", ENGINES)
def test_fedprox_with_mu_zero_is_fedavg_exactly(unequal_clients, engine):
    kwargs = {"clients_per_round": 4, "local_epochs": 2, "batch_size": 4, "lr": 0.2}
    a, ha = fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, fl.FedAvg(**kwargs), num_rounds=3,
                             engine=engine, seed=3, dropout=0.2)
    b, hb = fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, fl.FedProx(proximal_mu=0.0, **kwargs),
                             num_rounds=3, engine=engine, seed=3, dropout=0.2)
    assert all(torch.equal(x, z) for x, z in zip(a, b))
    assert ha.rows == hb.rows


def test_fedprox_mu_reaches_the_clients_and_changes_the_model(unequal_clients):
    kwargs = {"local_epochs": 3, "batch_size": 4, "lr": 0.2}
    a, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, fl.FedAvg(**kwargs), num_rounds=1)
    b, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, fl.FedProx(proximal_mu=1.0, **kwargs),
                            num_rounds=1)
    start = fl.parameters_to_vector(fl.get_parameters(fl.LogisticRegression(6, 3)))
    # The proximal pull shortens every client's step away from the global model, hence the average's.
    assert (fl.parameters_to_vector(b) - start).norm() < (fl.parameters_to_vector(a) - start).norm()


def test_aggregate_fit_weights_parameters_and_metrics_by_num_examples():
    strategy = fl.FedAvg()
    results = [(0, fl.FitRes([torch.tensor([1.0])], 1, {"train_loss": 1.0})),
               (3, fl.FitRes([torch.tensor([5.0])], 3, {"train_loss": 3.0}))]
    params, metrics = strategy.aggregate_fit(1, results, failures=[2])
    assert params[0].item() == 4.0 and metrics == {"train_loss": 2.5}
    assert strategy.aggregate_fit(1, [], failures=[0, 1]) == (None, {})


def test_sampling_frequency_is_clients_per_round_over_num_clients():
    num_clients, per_round, rounds = 10, 3, 4000
    strategy = fl.FedAvg(clients_per_round=per_round)
    g = torch.Generator().manual_seed(0)
    counts = [0] * num_clients
    for r in range(1, rounds + 1):
        chosen = [cid for cid, _ in strategy.configure_fit(r, [], num_clients, g)]
        assert len(set(chosen)) == per_round and chosen == sorted(chosen)
        for cid in chosen:
            counts[cid] += 1
    p = per_round / num_clients
    se = math.sqrt(rounds * p * (1 - p))  # each client's count is Binomial(rounds, p)
    for c in counts:
        assert abs(c - rounds * p) < 5 * se, counts


@pytest.mark.parametrize("fraction, num_clients, expected", [(1.0, 7, 7), (0.5, 10, 5), (0.3, 10, 3),
                                                              (0.1, 5, 1), (0.7, 10, 7)],
                         ids=["all", "half", "0.3", "at-least-one", "0.7"])
def test_fraction_fit_samples_floor_of_c_times_k_at_least_one(fraction, num_clients, expected):
    assert fl.FedAvg(fraction_fit=fraction).num_fit_clients(num_clients) == expected


def test_clients_per_round_overrides_fraction_and_cannot_exceed_num_clients():
    strategy = fl.FedAvg(fraction_fit=0.1, clients_per_round=4)
    assert strategy.num_fit_clients(10) == 4
    with pytest.raises(ValueError, match=r"clients_per_round must be an integer in \[1, num_clients=3\], got 4"):
        strategy.configure_fit(1, [], 3, torch.Generator())
    with pytest.raises(ValueError, match="clients_per_round"):
        fl.run_federated(fl.LogisticRegression(6, 3), make_clients([4, 4, 4]), strategy, num_rounds=1)


@pytest.mark.parametrize("cls, kwargs, name", [
    (fl.FedAvg, {"fraction_fit": 0.0}, "fraction_fit"),
    (fl.FedAvg, {"fraction_fit": 1.5}, "fraction_fit"),
    (fl.FedAvg, {"fraction_fit": float("nan")}, "fraction_fit"),
    (fl.FedAvg, {"clients_per_round": 0}, "clients_per_round"),
    (fl.FedAvg, {"local_epochs": 0}, "local_epochs"),
    (fl.FedAvg, {"local_epochs": 1.5}, "local_epochs"),
    (fl.FedAvg, {"batch_size": 0}, "batch_size"),
    (fl.FedAvg, {"lr": 0}, "lr"),
    (fl.FedAvg, {"lr": float("nan")}, "lr"),
    (fl.FedSGD, {"lr": -0.1}, "lr"),
    (fl.FedProx, {"proximal_mu": -1.0}, "proximal_mu"),
    (fl.FedProx, {"proximal_mu": float("nan")}, "proximal_mu"),
], ids=["fraction-0", "fraction-1.5", "fraction-nan", "per-round-0", "epochs-0", "epochs-float", "batch-0",
        "lr-0", "lr-nan", "fedsgd-lr", "mu-negative", "mu-nan"])
def test_bad_strategy_arguments_raise_value_error_naming_the_parameter(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def test_fit_config_and_repr():
    s = fl.FedProx(proximal_mu=0.01, clients_per_round=2, local_epochs=3, batch_size=None, lr=0.05)
    assert s.fit_config(1) == {"local_epochs": 3, "batch_size": 0, "lr": 0.05, "proximal_mu": 0.01}
    assert repr(s) == "FedProx(clients_per_round=2, local_epochs=3, batch_size=None, lr=0.05, proximal_mu=0.01)"


def test_strategy_wrapper_overrides_only_what_it_changes(unequal_clients):
    class HalfStep(fl.StrategyWrapper):
        """Moves the global model only half-way to the inner strategy's aggregate."""

        def configure_fit(self, server_round, parameters, num_clients, generator):
            self.current = parameters
            return self.strategy.configure_fit(server_round, parameters, num_clients, generator)

        def aggregate_fit(self, server_round, results, failures):
            new, metrics = self.strategy.aggregate_fit(server_round, results, failures)
            return [(a + b) / 2 for a, b in zip(self.current, new)], {**metrics, "failures": len(failures)}

    inner = fl.FedAvg(clients_per_round=4, lr=0.2)
    wrapped = HalfStep(inner)
    assert wrapped.lr == 0.2 and wrapped.num_fit_clients(7) == 4 and repr(wrapped).startswith("HalfStep(FedAvg(")
    start = fl.get_parameters(fl.LogisticRegression(6, 3))
    full, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, inner, num_rounds=1, seed=1)
    half, h = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, wrapped, num_rounds=1, seed=1)
    torch.testing.assert_close(half, [(a + b) / 2 for a, b in zip(start, full)])
    assert h["failures"][1] == 0
    # A pass-through wrapper changes nothing.
    same, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, fl.StrategyWrapper(inner), num_rounds=2)
    ref, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, inner, num_rounds=2)
    assert all(torch.equal(a, b) for a, b in zip(same, ref))
    with pytest.raises(ValueError, match="strategy"):
        fl.StrategyWrapper("fedavg")


def test_stragglers_run_a_uniform_share_of_the_local_epochs():
    # fraction 0.5, E = 4: a client keeps E with prob 0.5 + 0.5/4 = 0.625, else 1..3 with prob 0.125
    # each. 4000 draws: std of a proportion <= sqrt(0.25 / 4000) ~ 0.008; tolerance 0.04 is 5 std.
    strategy = fl.Stragglers(fl.FedAvg(local_epochs=4, clients_per_round=10), fraction=0.5)
    g = torch.Generator().manual_seed(0)
    epochs = torch.tensor([c["local_epochs"] for r in range(400)
                           for _, c in strategy.configure_fit(r + 1, [], 20, g)])
    for e, p in [(1, 0.125), (2, 0.125), (3, 0.125), (4, 0.625)]:
        assert abs(float((epochs == e).double().mean()) - p) < 0.04
    assert set(epochs.tolist()) <= {1, 2, 3, 4}


@pytest.mark.parametrize("engine", ENGINES)
def test_stragglers_zero_is_the_wrapped_strategy_over_a_whole_run(unequal_clients, test_set, engine):
    # The wrapper draws nothing from the server's generator: over many rounds, with partial
    # participation and dropout, the same clients are sampled and dropped and the models are equal.
    inner = fl.FedProx(proximal_mu=0.1, local_epochs=3, batch_size=4, lr=0.3, clients_per_round=4)
    kwargs = dict(num_rounds=5, engine=engine, test_data=test_set, seed=11, dropout=0.3)
    p_ref, h_ref = fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, inner, **kwargs)
    p_zero, h_zero = fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, fl.Stragglers(inner, fraction=0.0), **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(p_zero, p_ref))
    assert h_zero.rows == h_ref.rows
    assert 0 < sum(h_ref["clients_succeeded"]) < sum(h_ref["clients_sampled"])  # dropout did drop some


def test_stragglers_fraction_changes_neither_sampling_nor_existing_stragglers():
    # Sampled clients per round do not depend on fraction; a larger fraction only adds stragglers,
    # and a client that straggles at a small fraction runs the same epochs at a larger one.
    inner = fl.FedProx(proximal_mu=0.1, local_epochs=6, clients_per_round=5)
    g = torch.Generator().manual_seed(5)
    ref = [inner.configure_fit(r, [], 12, g) for r in range(1, 7)]
    runs = {}
    for fraction in (0.0, 0.3, 0.7, 1.0):
        g = torch.Generator().manual_seed(5)
        strategy = fl.Stragglers(inner, fraction=fraction)
        runs[fraction] = [strategy.configure_fit(r, [], 12, g) for r in range(1, 7)]
    for fraction, rounds in runs.items():
        assert [[cid for cid, _ in inst] for inst in rounds] == [[cid for cid, _ in inst] for inst in ref]
    assert all(c == inner.fit_config(r + 1) for r, inst in enumerate(runs[0.0]) for _, c in inst)
    epochs = {f: [c["local_epochs"] for inst in rounds for _, c in inst] for f, rounds in runs.items()}
    for small, large in [(0.3, 0.7), (0.7, 1.0)]:
        for a, b in zip(epochs[small], epochs[large]):
            assert a == 6 or a == b  # a straggler at the smaller fraction keeps its epochs
    assert epochs[0.3] != epochs[1.0] and min(epochs[1.0]) < 6  # stragglers did happen


def test_stragglers_work_is_kept(unequal_clients):
    # Every straggler still reports: partial work is aggregated, not dropped.
    inner = fl.FedProx(proximal_mu=0.1, local_epochs=3, clients_per_round=4)
    _, h = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, fl.Stragglers(inner, fraction=1.0),
                            num_rounds=3)
    assert h["clients_succeeded"][1:] == [4, 4, 4]


@pytest.mark.parametrize("fraction", [-0.1, 1.5, math.nan], ids=["negative", "above-one", "nan"])
def test_stragglers_fraction_validated(fraction):
    with pytest.raises(ValueError, match="fraction"):
        fl.Stragglers(fl.FedAvg(), fraction=fraction)


def test_stragglers_need_a_strategy_that_sets_local_epochs():
    class NoEpochs(fl.Strategy):
        def configure_fit(self, server_round, parameters, num_clients, generator):
            return [(0, {"lr": 0.1})]

    with pytest.raises(ValueError, match="local_epochs"):
        fl.Stragglers(NoEpochs(), fraction=0.5).configure_fit(1, [], 3, torch.Generator().manual_seed(0))
