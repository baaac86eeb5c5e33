"""Tests for run_federated and train_client_by_client: rounds, dropout, bytes, history, validation."""

import math

import matplotlib
import numpy as np
import pytest
import torch

from dpfl_course import fl

from .conftest import make_clients

matplotlib.use("Agg")


def run(clients, strategy=None, **kwargs):
    strategy = strategy or fl.FedAvg(clients_per_round=3, local_epochs=1, batch_size=4, lr=0.2)
    return fl.run_federated(fl.LogisticRegression(6, 3), clients, strategy, **{"num_rounds": 3, **kwargs})


def test_same_seed_same_result_different_seed_different_result(unequal_clients):
    a, ha = run(unequal_clients, seed=1)
    b, hb = run(unequal_clients, seed=1)
    c, _ = run(unequal_clients, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and ha.rows == hb.rows
    assert not torch.equal(a[0], c[0])


def test_the_model_passed_in_is_not_modified(unequal_clients):
    model = fl.MLP(6, 5, 3)
    before = fl.get_parameters(model)
    fl.run_federated(model, unequal_clients, fl.FedAvg(), num_rounds=2, engine="sequential")
    fl.train_client_by_client(model, unequal_clients)
    assert all(torch.equal(x, y) for x, y in zip(before, fl.get_parameters(model)))


@pytest.mark.parametrize("engine", ["sequential", "vectorised"])
def test_history_bytes_are_parameter_bytes_times_clients(unequal_clients, engine):
    size = (6 * 3 + 3) * 4  # float32 logistic regression 6 -> 3
    _, h = run(unequal_clients, engine=engine, dropout=0.4, num_rounds=6, seed=4)
    assert h["round"] == list(range(7))
    assert h["bytes_down"] == [size * s for s in h["clients_sampled"]]
    assert h["bytes_up"] == [size * s for s in h["clients_succeeded"]]
    assert h["clients_sampled"] == [0] + [3] * 6
    assert any(s < 3 for s in h["clients_succeeded"])  # seed 4 drops someone: the test is not vacuous
    assert h.total_bytes[-1] == sum(h["bytes_down"]) + sum(h["bytes_up"])
    assert h.cumulative("bytes_up")[-1] == size * sum(h["clients_succeeded"])


def test_round_where_everyone_drops_keeps_the_model(unequal_clients):
    kept = []
    p, h = run(unequal_clients, dropout=0.9, num_rounds=8, seed=0,
               on_round=lambda r, params, row: kept.append((row["clients_succeeded"], params)))
    start = fl.get_parameters(fl.LogisticRegression(6, 3))
    previous = start
    assert any(n == 0 for n, _ in kept), "seed 0 at dropout 0.9 should give a round with no survivor"
    for n, params in kept:
        if n == 0:
            assert all(torch.equal(a, b) for a, b in zip(params, previous))
        previous = params


def test_dropout_rate_matches_the_probability():
    clients = make_clients([2] * 20)
    dropout, rounds = 0.3, 300
    _, h = fl.run_federated(fl.LogisticRegression(6, 3), clients, fl.FedAvg(clients_per_round=10, lr=0.1),
                            num_rounds=rounds, dropout=dropout, seed=0)
    asked = sum(h["clients_sampled"])
    failed = asked - sum(h["clients_succeeded"])
    se = math.sqrt(asked * dropout * (1 - dropout))  # failures ~ Binomial(asked, dropout)
    assert abs(failed - asked * dropout) < 5 * se


def test_dropout_does_not_change_who_is_sampled(unequal_clients):
    sampled = {}
    for dropout in (0.0, 0.5):
        log = []

        class Spy(fl.FedAvg):
            def configure_fit(self, server_round, parameters, num_clients, generator):
                out = super().configure_fit(server_round, parameters, num_clients, generator)
                log.append([c for c, _ in out])
                return out

        run(unequal_clients, Spy(clients_per_round=3), dropout=dropout, num_rounds=5, seed=2)
        sampled[dropout] = log
    assert sampled[0.0] == sampled[0.5]


def test_test_metrics_are_recorded_and_training_helps(test_set):
    clients = make_clients([40, 60, 50], seed=3)
    _, h = fl.run_federated(fl.LogisticRegression(6, 3), clients, fl.FedAvg(local_epochs=2, lr=0.2),
                            num_rounds=10, test_data=test_set)
    assert len(h["test_accuracy"]) == 11 and math.isnan(h["train_loss"][0])
    assert h["test_loss"][-1] < h["test_loss"][0]
    assert h.last("test_accuracy") > h["test_accuracy"][0]


def test_history_table_and_plot(unequal_clients, test_set):
    _, h = run(unequal_clients, test_data=test_set)
    text = h.table(["round", "bytes_up", "test_accuracy"], digits=2)
    lines = text.splitlines()
    assert lines[0].split() == ["round", "bytes_up", "test_accuracy"] and len(lines) == 1 + len(h)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    line = h.plot(ax, "test_accuracy", label="FedAvg", xlabel="round", ylabel="accuracy")
    assert list(line.get_xdata()) == h["round"] and line.get_label() == "FedAvg"
    assert ax.get_xlabel() == "round"
    line = h.plot(ax, "test_accuracy", x="bytes")
    assert list(line.get_xdata()) == h.total_bytes
    line = h.plot(ax, "train_loss")  # round 0 has no train loss: it is left out, not drawn as NaN
    assert list(line.get_xdata()) == h["round"][1:]
    plt.close(fig)
    with pytest.raises(KeyError, match="no metric"):
        h["nope"]


def test_initial_parameters_and_engine_object(unequal_clients):
    model = fl.LogisticRegression(6, 3)
    start = [torch.zeros(3, 6), torch.zeros(3)]
    engine = fl.SequentialEngine(model, unequal_clients)
    a, _ = fl.run_federated(model, unequal_clients, fl.FedAvg(), num_rounds=1, engine=engine,
                            initial_parameters=start)
    b, _ = fl.run_federated(fl.LogisticRegression(6, 3, generator=torch.Generator().manual_seed(5)),
                            unequal_clients, fl.FedAvg(), num_rounds=1, initial_parameters=start)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_progress_bar_option_runs(unequal_clients, capsys):
    # progress=True: tqdm draws its bar on stderr, with its description and total (it may not
    # redraw before a fast run ends, so the count shown can stay 0); progress=False: nothing.
    run(unequal_clients, progress=True, num_rounds=2)
    err = capsys.readouterr().err
    assert "rounds:" in err and "/2 [" in err
    fl.train_client_by_client(fl.LogisticRegression(6, 3), unequal_clients, progress=True)
    err = capsys.readouterr().err
    assert "clients:" in err and f"/{len(unequal_clients)} [" in err
    run(unequal_clients, progress=False, num_rounds=2)
    fl.train_client_by_client(fl.LogisticRegression(6, 3), unequal_clients, progress=False)
    assert capsys.readouterr() == ("", "")


def test_train_client_by_client_chains_local_training_without_averaging(unequal_clients, test_set):
    model = fl.LogisticRegression(6, 3)
    got, h = fl.train_client_by_client(model, unequal_clients, local_epochs=2, batch_size=4, lr=0.2, num_passes=2,
                                       test_data=test_set, seed=5)
    params = fl.get_parameters(model)
    for p in (1, 2):
        for k, (X, y) in enumerate(unequal_clients):
            params = fl.train_local(model, params, X, y, local_epochs=2, batch_size=4, lr=0.2,
                                    generator=torch.Generator().manual_seed(fl.client_seed(5, p, k))).parameters
    assert all(torch.equal(a, b) for a, b in zip(got, params))
    assert h["client"] == [-1] + list(range(7)) * 2
    assert h["bytes_down"][1:] == [(6 * 3 + 3) * 4] * 14
    assert len(h["test_accuracy"]) == 15


def test_client_by_client_differs_from_fedavg(unequal_clients):
    a, _ = fl.train_client_by_client(fl.LogisticRegression(6, 3), unequal_clients, lr=0.2)
    b, _ = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, fl.FedAvg(lr=0.2), num_rounds=1)
    assert not torch.allclose(a[0], b[0], atol=1e-3)


@pytest.mark.parametrize("kwargs, name", [
    ({"num_rounds": 0}, "num_rounds"), ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"),
    ({"dropout": float("nan")}, "dropout"), ({"engine": "gpu"}, "engine"), ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"), ({"test_data": (torch.zeros(0, 6), torch.zeros(0))}, "test_data"),
    ({"test_data": (torch.full((2, 6), float("nan")), torch.tensor([0, 1]))}, "test_data X must be finite"),
    ({"test_data": (torch.zeros(2, 6), torch.tensor([0, 3]))}, r"test_data y must hold labels in \[0, 2\]"),
    ({"initial_parameters": [torch.full((3, 6), float("nan")), torch.zeros(3)]}, "initial_parameters must be finite"),
    ({"initial_parameters": [torch.zeros(3, 5), torch.zeros(3)]}, r"parameters\[0\] must have shape")],
    ids=["rounds-0", "dropout-1", "dropout-negative", "dropout-nan", "engine", "seed-negative", "seed-float",
         "empty-test", "nan-test", "test-label-range", "nan-initial", "initial-shape"])
def test_run_federated_rejects_bad_arguments(unequal_clients, kwargs, name):
    with pytest.raises(ValueError, match=name):
        run(unequal_clients, **kwargs)


@pytest.mark.parametrize("clients, match", [
    ([], "client_data must be a non-empty list"),
    ([(torch.zeros(3, 6), torch.zeros(3, dtype=torch.int64)), (torch.zeros(0, 6), torch.zeros(0, dtype=torch.int64))],
     r"client_data\[1\] X must be 2-D with at least one example \(an empty client"),
    ([(torch.full((2, 6), float("nan")), torch.zeros(2, dtype=torch.int64))], r"client_data\[0\] X must be finite"),
    ([(torch.zeros(2, 6), torch.zeros(3, dtype=torch.int64))], r"client_data\[0\] y must be integer labels"),
    ([(torch.zeros(2, 6), torch.zeros(2))], r"client_data\[0\] y must be integer labels"),
    ([(torch.zeros(2, 6), torch.zeros(2, dtype=torch.int64)), (torch.zeros(2, 5), torch.zeros(2, dtype=torch.int64))],
     r"client_data\[1\] X must have 6 features"),
    ([(torch.zeros(2, 6), torch.tensor([0, 3]))], r"client_data\[0\] y must hold labels in \[0, 2\]"),
    ([(torch.zeros(2, 6), torch.tensor([-1, 0]))], r"client_data\[0\] y must hold labels in \[0, 2\]"),
], ids=["no-clients", "empty-client", "nan", "label-count", "float-labels", "feature-count", "label-too-big",
        "label-negative"])
@pytest.mark.parametrize("engine", ["sequential", "vectorised"])
def test_bad_client_data_rejected_by_both_engines_and_client_by_client(clients, match, engine):
    with pytest.raises(ValueError, match=match):
        fl.run_federated(fl.LogisticRegression(6, 3), clients, fl.FedAvg(), num_rounds=1, engine=engine)
    with pytest.raises(ValueError, match=match):
        fl.train_client_by_client(fl.LogisticRegression(6, 3), clients)


@pytest.mark.parametrize("kwargs, name", [
    ({"local_epochs": 0}, "local_epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"),
    ({"num_passes": 0}, "num_passes")], ids=["epochs", "batch", "lr", "passes"])
def test_client_by_client_rejects_bad_arguments(unequal_clients, kwargs, name):
    with pytest.raises(ValueError, match=name):
        fl.train_client_by_client(fl.LogisticRegression(6, 3), unequal_clients, **kwargs)


def test_make_client_data_from_a_partition():
    X, y = torch.arange(20.0).view(10, 2), torch.arange(10)
    clients = fl.make_client_data(X, y, [[0, 5], [1, 2, 3]])
    assert clients[1][1].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match=r"partition\[1\] must hold at least one example"):
        fl.make_client_data(X, y, [[0], []])
    with pytest.raises(ValueError, match=r"partition\[0\] indices"):
        fl.make_client_data(X, y, [[10]])


@pytest.mark.parametrize("partition, match", [
    ([[0, 1], [2.0, 3.0]], r"partition\[1\] must be a 1-D array of integer indices"),  # floats not truncated
    ([[0, 1], [2.7]], r"partition\[1\] must be a 1-D array of integer indices"),
    ([[True, False]], r"partition\[0\] must be a 1-D array of integer indices"),  # a mask is not indices
    ([[0], [-1]], r"partition\[1\] indices must be in \[0, 9\]"),  # would silently pick the last row
    ([[0], [3, 12]], r"partition\[1\] indices must be in \[0, 9\]"),
    ([[[0, 1]]], r"partition\[0\] must be a 1-D array"),
    (5, r"partition must be a list"),
], ids=["float-indices", "fractional-index", "boolean-mask", "negative-index", "index-too-large", "2-d", "not-a-list"])
def test_make_client_data_rejects_bad_partitions(partition, match):
    X, y = torch.arange(20.0).view(10, 2), torch.arange(10)
    with pytest.raises(ValueError, match=match):
        fl.make_client_data(X, y, partition)


def test_make_client_data_needs_one_label_per_row_and_accepts_arrays_and_tensors():
    X, y = torch.arange(20.0).view(10, 2), torch.arange(10)
    with pytest.raises(ValueError, match="one label per row of X, got 8 labels for 10 rows"):
        fl.make_client_data(X, y[:8], [[0, 9]])  # index 9 is in X but not in y
    with pytest.raises(ValueError, match="one label per row of X"):
        fl.make_client_data(X[:8], y, [[0]])
    clients = fl.make_client_data(X, y, [np.array([4, 1]), torch.tensor([7]), np.array([0], dtype=np.int32)])
    assert [c[1].tolist() for c in clients] == [[4, 1], [7], [0]]
    torch.testing.assert_close(clients[0][0], X[[4, 1]])


def test_strategy_must_be_a_strategy(unequal_clients):
    with pytest.raises(ValueError, match="strategy"):
        fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, "fedavg", num_rounds=1)


def test_a_strategy_returning_bad_client_ids_is_caught(unequal_clients):
    class Broken(fl.FedAvg):
        def configure_fit(self, server_round, parameters, num_clients, generator):
            return [(0, self.fit_config(server_round)), (0, self.fit_config(server_round))]

    with pytest.raises(ValueError, match="distinct client ids"):
        fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, Broken(), num_rounds=1)


def test_model_may_be_given_as_a_function(unequal_clients):
    a, _ = fl.run_federated(lambda: fl.MLP(6, 5, 3), unequal_clients, fl.FedAvg(), num_rounds=1)
    b, _ = fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, fl.FedAvg(), num_rounds=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        fl.run_federated("mlp", unequal_clients, fl.FedAvg(), num_rounds=1)
