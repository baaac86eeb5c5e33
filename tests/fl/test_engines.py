"""The two engines give one result: the vectorised engine equals the sequential loop.

Same seed and configuration -> same global model to float tolerance (atol 1e-5), with unequal
client sizes, partial participation, dropout, several local epochs, FedProx, and both models.
"""

import pytest
import torch

from dpfl_course import fl

from .conftest import make_clients

CASES = {
    # name: (model factory, strategy factory, run_federated keyword arguments)
    "all-clients-one-epoch": (lambda: fl.LogisticRegression(6, 3),
                              lambda: fl.FedAvg(local_epochs=1, batch_size=4, lr=0.3), {}),
    "partial-participation": (lambda: fl.MLP(6, 5, 3),
                              lambda: fl.FedAvg(clients_per_round=3, local_epochs=1, batch_size=4, lr=0.3), {}),
    "fraction-and-dropout": (lambda: fl.MLP(6, 5, 3),
                             lambda: fl.FedAvg(fraction_fit=0.6, local_epochs=2, batch_size=3, lr=0.2),
                             {"dropout": 0.3}),
    "many-local-epochs": (lambda: fl.LogisticRegression(6, 3),
                          lambda: fl.FedAvg(clients_per_round=5, local_epochs=4, batch_size=5, lr=0.1), {}),
    "fedprox": (lambda: fl.MLP(6, 5, 3),
                lambda: fl.FedProx(proximal_mu=0.5, clients_per_round=4, local_epochs=3, batch_size=4, lr=0.2),
                {"dropout": 0.2}),
    "full-batch": (lambda: fl.MLP(6, 5, 3),
                   lambda: fl.FedAvg(clients_per_round=6, local_epochs=2, batch_size=None, lr=0.5), {}),
    "batch-larger-than-clients": (lambda: fl.LogisticRegression(6, 3),
                                  lambda: fl.FedAvg(local_epochs=2, batch_size=50, lr=0.5), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_vectorised_engine_equals_sequential(unequal_clients, test_set, case):
    make_model, make_strategy, kwargs = CASES[case]
    runs = {}
    for engine in ("sequential", "vectorised"):
        runs[engine] = fl.run_federated(make_model(), unequal_clients, make_strategy(), num_rounds=4, engine=engine,
                                        test_data=test_set, seed=7, **kwargs)
    (p_seq, h_seq), (p_vec, h_vec) = runs["sequential"], runs["vectorised"]
    torch.testing.assert_close(p_vec, p_seq, rtol=0, atol=1e-5)
    # Same clients sampled, same survivors, same bytes, nearly the same metrics.
    for col in ("clients_sampled", "clients_succeeded", "bytes_down", "bytes_up"):
        assert h_vec[col] == h_seq[col]
    for col in ("train_loss", "test_loss", "test_accuracy"):
        torch.testing.assert_close(torch.tensor(h_vec[col], dtype=torch.float64),
                                   torch.tensor(h_seq[col], dtype=torch.float64), rtol=0, atol=1e-5,
                                   equal_nan=True)
    # The run actually trained (the comparison is not between two unchanged models).
    start = fl.get_parameters(make_model())
    assert (fl.parameters_to_vector(p_seq) - fl.parameters_to_vector(start)).abs().max() > 1e-3


def test_engines_agree_client_by_client(unequal_clients):
    # Every client's returned parameters and metrics, not only the average.
    model = fl.MLP(6, 5, 3)
    params = fl.get_parameters(model)
    instructions = [(cid, {"local_epochs": 2, "batch_size": 4, "lr": 0.3, "proximal_mu": 0.1 * cid,
                           "seed": fl.client_seed(0, 1, cid)}) for cid in (0, 2, 4, 5)]
    seq = fl.SequentialEngine(model, unequal_clients).fit(params, instructions)
    vec = fl.VectorisedEngine(model, unequal_clients).fit(params, instructions)
    assert [c for c, _ in seq] == [c for c, _ in vec] == [0, 2, 4, 5]
    for (_, a), (_, b) in zip(seq, vec):
        assert a.num_examples == b.num_examples
        torch.testing.assert_close(b.parameters, a.parameters, rtol=0, atol=1e-6)
        assert b.metrics["train_loss"] == pytest.approx(a.metrics["train_loss"], abs=1e-6)


def test_clients_may_have_different_configs_in_the_vectorised_engine(unequal_clients):
    model = fl.LogisticRegression(6, 3)
    params = fl.get_parameters(model)
    instructions = [(1, {"local_epochs": 1, "batch_size": 2, "lr": 0.1, "seed": 1}),
                    (4, {"local_epochs": 3, "batch_size": 0, "lr": 0.5, "seed": 2}),
                    (6, {"local_epochs": 2, "batch_size": 5, "lr": 0.05, "seed": 3}),
                    (2, {"local_epochs": 2, "batch_size": None, "lr": 0.2, "seed": 4})]
    seq = fl.SequentialEngine(model, unequal_clients).fit(params, instructions)
    vec = fl.VectorisedEngine(model, unequal_clients).fit(params, instructions)
    for (_, a), (_, b) in zip(seq, vec):
        torch.testing.assert_close(b.parameters, a.parameters, rtol=0, atol=1e-6)


def test_engines_agree_on_digits_with_dirichlet_clients():
    from dpfl_course import data

    ds = data.load_digits()
    parts = data.partition_dirichlet(ds.y_train.numpy(), 20, alpha=0.3, seed=0)
    clients = fl.make_client_data(ds.X_train, ds.y_train, parts)
    strategy = fl.FedProx(proximal_mu=0.1, clients_per_round=8, local_epochs=2, batch_size=16, lr=0.1)
    out = [fl.run_federated(fl.MLP(64, 32, 10), clients, strategy, num_rounds=3, engine=e, seed=1, dropout=0.1)[0]
           for e in ("sequential", "vectorised")]
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=1e-5)


def test_vectorised_engine_rejects_unknown_clients_and_bad_rates(unequal_clients):
    engine = fl.VectorisedEngine(fl.LogisticRegression(6, 3), unequal_clients)
    params = fl.get_parameters(fl.LogisticRegression(6, 3))
    with pytest.raises(ValueError, match="client id"):
        engine.fit(params, [(7, {"lr": 0.1})])
    with pytest.raises(ValueError, match="lr"):
        engine.fit(params, [(0, {"lr": float("nan")})])
    with pytest.raises(ValueError, match="proximal_mu"):
        engine.fit(params, [(0, {"lr": 0.1, "proximal_mu": -1})])
    assert engine.fit(params, []) == []


@pytest.mark.parametrize("engine", ["sequential", "vectorised"])
@pytest.mark.parametrize("instruction, name", [
    ((7, {}), "client id"), ((-1, {}), "client id"), ((True, {}), "client id"),
    ((0, {"local_epochs": 1.7}), "local_epochs"), ((0, {"batch_size": 2.5}), "batch_size"),
    ((0, {"seed": -1}), "seed"), ((0, {"lr": float("nan")}), "lr"), ((0, {"proximal_mu": -1}), "proximal_mu"),
], ids=["cid-too-large", "cid-negative", "cid-bool", "epochs-float", "batch-float", "seed-negative", "lr-nan",
        "mu-negative"])
def test_both_engines_reject_unknown_clients_and_bad_configs_alike(unequal_clients, engine, instruction, name):
    # One parser for both engines: neither truncates 1.7 epochs to 1, nor indexes client -1.
    model = fl.LogisticRegression(6, 3)
    runner = fl.ENGINES[engine](model, unequal_clients)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        runner.fit(fl.get_parameters(model), [(1, {"lr": 0.1}), instruction])


@pytest.mark.parametrize("arch", ["logreg", "mlp"])
def test_forward_stacked_equals_vmap_of_functional_call(unequal_clients, arch):
    make = (lambda: fl.LogisticRegression(6, 3)) if arch == "logreg" else (lambda: fl.MLP(6, 5, 3))
    model = make()
    K = 4
    params = {n: torch.stack([fl.get_parameters(make())[i] + 0.1 * k for k in range(K)])
              for i, (n, _) in enumerate(model.named_parameters())}
    X = torch.randn(K, 7, 6, generator=torch.Generator().manual_seed(0))
    generic = torch.func.vmap(lambda p, x: torch.func.functional_call(model, p, (x,)))(params, X)
    torch.testing.assert_close(model.forward_stacked(params, X), generic, rtol=0, atol=1e-6)
    # And the whole engine agrees with itself on the generic path.
    instructions = [(cid, {"local_epochs": 2, "batch_size": 4, "lr": 0.3, "proximal_mu": 0.2, "seed": cid})
                    for cid in (0, 1, 4)]
    start = fl.get_parameters(model)
    fast = fl.VectorisedEngine(model, unequal_clients).fit(start, instructions)
    slow = fl.VectorisedEngine(model, unequal_clients, use_forward_stacked=False).fit(start, instructions)
    for (_, a), (_, b) in zip(fast, slow):
        torch.testing.assert_close(a.parameters, b.parameters, rtol=0, atol=1e-6)


def test_client_step_override_sees_its_rows_and_may_return_new_tensors(unequal_clients):
    # The DP engines of later notebooks override client_step: row k of the tensors it gets must be
    # client self.instructions[k][0] (rows are ordered by number of steps, and only clients still
    # training are passed), and returning new tensors instead of updating in place must work too.
    seen = []

    class Functional(fl.VectorisedEngine):
        def client_step(self, params, X, y, mask, anchor, mu, lr_active):
            k = len(lr_active)
            rows = [cid for cid, _ in self.instructions[:k]]
            sizes = [self.sizes[cid] for cid in rows]
            seen.append((rows, mask.sum(1).tolist(), sizes))
            copies = {n: p.clone() for n, p in params.items()}
            new, loss = super().client_step(copies, X, y, mask, anchor, mu, lr_active)
            return {n: p.clone() for n, p in new.items()}, loss

    model = fl.LogisticRegression(6, 3)
    start = fl.get_parameters(model)
    instructions = [(cid, {"local_epochs": 1, "batch_size": 4, "lr": 0.3, "seed": cid}) for cid in (0, 2, 4, 5)]
    want = fl.VectorisedEngine(model, unequal_clients).fit(start, instructions)
    got = Functional(model, unequal_clients).fit(start, instructions)
    assert [cid for cid, _ in got] == [0, 2, 4, 5]  # results come back in the caller's order
    for (_, a), (_, b) in zip(got, want):
        torch.testing.assert_close(a.parameters, b.parameters, rtol=0, atol=0)
    # Client 4 (22 examples, 6 steps) trains at every step; client 5 (1 example) only at the first.
    assert seen[0][0][0] == 4 and seen[-1][0] == [4] and len(seen) == 6
    assert all(0 < m <= min(4, n) for rows, masks, sizes in seen for m, n in zip(masks, sizes))


class _TanhMLP(fl.MLP):
    """An MLP with tanh instead of ReLU: overrides forward, inherits MLP's (ReLU) forward_stacked."""

    def forward(self, X):
        return self.output(torch.tanh(self.hidden(X)))


class _TanhMLPStacked(_TanhMLP):
    """The same model with its own forward_stacked: the fast path is allowed again."""

    @staticmethod
    def forward_stacked(params, X):
        h = torch.tanh(torch.baddbmm(params["hidden.bias"].unsqueeze(1), X, params["hidden.weight"].transpose(1, 2)))
        return torch.baddbmm(params["output.bias"].unsqueeze(1), h, params["output.weight"].transpose(1, 2))


@pytest.mark.parametrize("cls", [_TanhMLP, _TanhMLPStacked], ids=["inherited-forward-stacked", "own-forward-stacked"])
def test_engines_agree_for_a_subclass_that_overrides_forward(unequal_clients, test_set, cls):
    # The vectorised engine must train the subclass's model (tanh), not the parent's forward_stacked (ReLU).
    strategy = lambda: fl.FedAvg(clients_per_round=4, local_epochs=2, batch_size=4, lr=0.5)  # noqa: E731
    runs = {engine: fl.run_federated(cls(6, 5, 3), unequal_clients, strategy(), num_rounds=3, engine=engine,
                                     test_data=test_set, seed=3)
            for engine in ("sequential", "vectorised")}
    (p_seq, h_seq), (p_vec, h_vec) = runs["sequential"], runs["vectorised"]
    torch.testing.assert_close(p_vec, p_seq, rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.tensor(h_vec["test_loss"]), torch.tensor(h_seq["test_loss"]), rtol=0, atol=1e-5)


def test_forward_stacked_is_used_only_when_it_matches_forward():
    from dpfl_course.fl.vectorised import _forward_stacked

    assert _forward_stacked(fl.MLP(6, 5, 3)) is not None
    assert _forward_stacked(fl.LogisticRegression(6, 3)) is not None
    assert _forward_stacked(_TanhMLP(6, 5, 3)) is None  # forward overridden below forward_stacked
    assert _forward_stacked(_TanhMLPStacked(6, 5, 3)) is not None
    assert _forward_stacked(torch.nn.Linear(6, 3)) is None  # no forward_stacked at all
