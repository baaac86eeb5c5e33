"""LEAF's Synthetic(α, β) generator: shapes, the client partition, and the generative model itself."""

import numpy as np
import pytest
import torch

from dpfl_course.data.synthetic import _generate, load_synthetic

DEFAULTS = dict(
    alpha=1.0, beta=1.0, num_clients=30, num_features=60, num_classes=10, seed=0, max_samples_per_client=None
)


def test_shapes_and_types():
    data = load_synthetic()
    assert data.num_features == 60 and data.num_classes == 10 and len(data.clients) == 30
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.X_test.shape[1] == 60 and data.y_test.shape == (data.num_test,)
    assert data.y.min() >= 0 and data.y.max() <= 9
    assert data.image_shape is None and data.name == "synthetic(1, 1)"
    assert abs(data.num_test / len(data.X) - 0.2) < 0.01
    assert repr(data).startswith("Dataset('synthetic(1, 1)', train=") and repr(data).endswith("clients=30)")


def test_clients_partition_the_training_rows():
    data = load_synthetic(num_clients=12, seed=7)
    rows = np.concatenate(data.clients)
    assert np.array_equal(np.sort(rows), np.arange(data.num_train))  # disjoint and covering
    assert np.array_equal(rows, np.arange(data.num_train))  # in client order
    assert all(len(c) >= 40 for c in data.clients)  # n_k >= 50, 20 % of it held out
    assert all(c.dtype == np.int64 for c in data.clients)


def test_rows_and_labels_come_from_the_generative_model():
    data = load_synthetic(num_clients=8, test_size=0.25, seed=4)
    clients = _generate(**{**DEFAULTS, "num_clients": 8, "seed": 4})
    test_start = 0
    for rows, c in zip(data.clients, clients):
        n = len(c.y)
        assert n >= 50 and len(rows) == n - round(0.25 * n)
        assert torch.equal(data.X_train[rows], torch.from_numpy(c.X[: len(rows)]).float())
        assert torch.equal(data.y_train[rows], torch.from_numpy(c.y[: len(rows)]))
        n_test = n - len(rows)
        assert torch.equal(data.y_test[test_start : test_start + n_test], torch.from_numpy(c.y[len(rows) :]))
        test_start += n_test
        # y = argmax softmax(W x + b), recomputed here with the softmax written out.
        logits = c.X @ c.W.T + c.b
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        assert np.array_equal(c.y, probs.argmax(axis=1))
        assert c.W.shape == (10, 60) and c.b.shape == (10,) and c.v.shape == (60,)
    assert test_start == data.num_test


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = load_synthetic(seed=11), load_synthetic(seed=11), load_synthetic(seed=12)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert all(np.array_equal(p, q) for p, q in zip(a.clients, b.clients))
    assert a.num_train != c.num_train or not torch.equal(a.X_train, c.X_train)


def test_global_rng_is_untouched():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    load_synthetic(num_clients=3)
    assert np.random.random() == expected


def test_covariance_is_diagonal_with_decaying_variance():
    # seed 3 happens to draw a client with tens of thousands of samples: a tight statistical check.
    clients = _generate(**{**DEFAULTS, "seed": 3})
    c = max(clients, key=lambda c: len(c.y))
    n = len(c.y)
    assert n >= 10_000
    j = np.arange(1, 61)
    sigma = j**-1.2
    # Around the known mean v_k, n·var_hat/Σ_jj ~ χ²(n): relative sd sqrt(2/n) (< 1 % here); allow 5 sd.
    var_hat = ((c.X - c.v) ** 2).mean(axis=0)
    assert np.abs(var_hat / sigma - 1).max() < 5 * np.sqrt(2 / n)
    assert np.abs(c.X.mean(axis=0) - c.v).max() < 5 * np.sqrt(sigma[0] / n)
    slope = np.polyfit(np.log(j), np.log(var_hat), 1)[0]
    assert abs(slope + 1.2) < 0.02
    assert np.all(var_hat[:10] > var_hat[10:20].max()) and var_hat[0] > 20 * var_hat[-1]
    # Diagonal: correlations between features are sampling noise only (sd 1/sqrt(n)).
    corr = np.corrcoef(c.X, rowvar=False)
    assert np.abs(corr - np.eye(60)).max() < 6 / np.sqrt(n)


def test_alpha_never_changes_a_label():
    # u_k is added to every entry of W_k and b_k: it shifts all logits equally (as in FedProx's code).
    low = _generate(**{**DEFAULTS, "alpha": 0.0, "num_clients": 10})
    high = _generate(**{**DEFAULTS, "alpha": 5.0, "num_clients": 10})
    assert any(not np.allclose(a.W, b.W) for a, b in zip(low, high))
    assert all(np.array_equal(a.y, b.y) and np.array_equal(a.X, b.X) for a, b in zip(low, high))


def test_bigger_beta_gives_more_heterogeneous_clients():
    def label_entropy_and_mean_spread(beta):
        entropies, means = [], []
        for seed in range(4):
            for c in _generate(**{**DEFAULTS, "beta": beta, "seed": seed, "max_samples_per_client": 500}):
                p = np.bincount(c.y, minlength=10) / len(c.y)
                entropies.append(-(p[p > 0] * np.log(p[p > 0])).sum())
                means.append(c.X.mean())
        return np.mean(entropies), np.std(means)

    entropy_0, spread_0 = label_entropy_and_mean_spread(0.0)
    entropy_5, spread_5 = label_entropy_and_mean_spread(5.0)
    assert entropy_5 < 0.7 * entropy_0  # each client's labels concentrate on fewer classes
    assert spread_5 > 3 * spread_0  # clients' inputs sit further apart


def test_options():
    capped = load_synthetic(num_clients=5, max_samples_per_client=60, test_size=0.5)
    assert all(len(c) == 30 for c in capped.clients) and capped.num_test == 150
    tiny = load_synthetic(num_clients=3, max_samples_per_client=1, test_size=0.9)
    assert tiny.num_train == 3 and tiny.num_test == 0  # at least one training example per client
    everything = load_synthetic(num_clients=4, test_size=0)
    assert everything.num_test == 0 and everything.X_test.shape == (0, 60)
    small = load_synthetic(num_clients=2, num_features=3, num_classes=2, alpha=0, beta=0)
    assert small.num_features == 3 and set(small.y.tolist()) <= {0, 1} and small.name == "synthetic(0, 0)"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(alpha=-0.1), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(beta=-1), "beta"),
        (dict(beta=float("inf")), "beta"),
        (dict(num_clients=0), "num_clients"),
        (dict(num_clients=2.5), "num_clients"),
        (dict(num_features=0), "num_features"),
        (dict(num_classes=1), "num_classes"),
        (dict(test_size=1.0), "test_size"),
        (dict(test_size=-0.2), "test_size"),
        (dict(seed=-1), "seed"),
        (dict(max_samples_per_client=0), "max_samples_per_client"),
        (dict(max_samples_per_client=10.0), "max_samples_per_client"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        load_synthetic(**kwargs)
