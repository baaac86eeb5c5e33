"""Tests for dpfl_course.fl.client: seeds, batch schedules, local training, evaluation, validation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpfl_course import fl

from .conftest import make_clients


def test_client_seeds_are_deterministic_and_distinct():
    seeds = {fl.client_seed(s, r, c) for s in range(3) for r in range(1, 20) for c in range(50)}
    assert len(seeds) == 3 * 19 * 50
    assert fl.client_seed(7, 3, 2) == fl.client_seed(7, 3, 2)
    assert all(0 <= s < 2**63 for s in seeds)
    with pytest.raises(ValueError, match="cid"):
        fl.client_seed(0, 1, -1)


@pytest.mark.parametrize("n, epochs, batch", [(10, 1, 3), (7, 3, 7), (5, 2, None), (1, 2, 4)],
                         ids=["ragged", "exact", "full-batch", "one-example"])
def test_batch_schedule_visits_every_example_once_per_epoch(n, epochs, batch):
    steps = fl.batch_schedule(n, local_epochs=epochs, batch_size=batch, generator=torch.Generator().manual_seed(0))
    size = n if batch is None else batch
    per_epoch = -(-n // size)
    assert len(steps) == epochs * per_epoch
    for e in range(epochs):
        epoch = torch.cat(steps[e * per_epoch:(e + 1) * per_epoch])
        assert sorted(epoch.tolist()) == list(range(n))
        assert all(len(b) == size for b in steps[e * per_epoch:(e + 1) * per_epoch - 1])


def test_batch_schedule_is_the_epoch_permutations_cut_in_order():
    perms = fl.epoch_permutations(10, 2, torch.Generator().manual_seed(3))
    steps = fl.batch_schedule(10, local_epochs=2, batch_size=4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.cat(steps), perms.reshape(-1))


def test_train_local_is_minibatch_sgd_step_by_step():
    (X, y), = make_clients([9])
    model = fl.LogisticRegression(6, 3)
    start = fl.get_parameters(model)
    res = fl.train_local(model, start, X, y, local_epochs=2, batch_size=4, lr=0.3,
                         generator=torch.Generator().manual_seed(5))
    # Replay by hand: the same batches, w <- w - lr * grad(mean cross-entropy of the batch).
    W, b = [p.clone().requires_grad_(True) for p in start]
    for batch in fl.batch_schedule(9, local_epochs=2, batch_size=4, generator=torch.Generator().manual_seed(5)):
        loss = F.cross_entropy(X[batch] @ W.T + b, y[batch])
        gW, gb = torch.autograd.grad(loss, [W, b])
        W, b = (W - 0.3 * gW).detach().requires_grad_(True), (b - 0.3 * gb).detach().requires_grad_(True)
    torch.testing.assert_close(res.parameters, [W.detach(), b.detach()], rtol=0, atol=1e-6)
    assert res.num_examples == 9 and res.metrics["train_loss"] > 0
    assert all(torch.equal(a, b) for a, b in zip(start, fl.get_parameters(fl.LogisticRegression(6, 3))))


def test_proximal_term_keeps_the_local_model_nearer_the_global_one():
    (X, y), = make_clients([30])
    model = fl.LogisticRegression(6, 3)
    start = fl.get_parameters(model)

    def drift(mu):
        res = fl.train_local(model, start, X, y, local_epochs=5, batch_size=5, lr=0.2, proximal_mu=mu,
                             generator=torch.Generator().manual_seed(0))
        return (fl.parameters_to_vector(res.parameters) - fl.parameters_to_vector(start)).norm().item()

    assert drift(5.0) < drift(1.0) < drift(0.0)


def test_client_fit_follows_the_config():
    (X, y), = make_clients([12])
    model = fl.LogisticRegression(6, 3)
    client = fl.Client(4, X, y, model)
    config = {"local_epochs": 2, "batch_size": 5, "lr": 0.1, "proximal_mu": 0.5, "seed": 11}
    res = client.fit(client.get_parameters(), config)
    want = fl.train_local(model, fl.get_parameters(fl.LogisticRegression(6, 3)), X, y, local_epochs=2,
                          batch_size=5, lr=0.1, proximal_mu=0.5, generator=torch.Generator().manual_seed(11))
    assert all(torch.equal(a, b) for a, b in zip(res.parameters, want.parameters))
    full = client.fit(fl.get_parameters(fl.LogisticRegression(6, 3)), {**config, "batch_size": 0})
    assert not torch.equal(full.parameters[0], res.parameters[0])  # batch_size 0 = one full batch per epoch
    loss, n, metrics = client.evaluate(res.parameters)
    assert n == 12 and 0 <= metrics["accuracy"] <= 1 and loss > 0


def test_evaluate_matches_a_direct_computation():
    (X, y), = make_clients([25])
    model = fl.MLP(6, 4, 3)
    params = fl.get_parameters(fl.MLP(6, 4, 3, generator=torch.Generator().manual_seed(9)))
    loss, acc = fl.evaluate(model, params, X, y)
    ref = fl.set_parameters(fl.MLP(6, 4, 3), params)
    with torch.no_grad():
        logits = ref(X)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), abs=1e-6)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())


@pytest.mark.parametrize("kwargs, name", [
    ({"local_epochs": 0}, "local_epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"proximal_mu": -0.1}, "proximal_mu"),
    ({"proximal_mu": float("inf")}, "proximal_mu")],
    ids=["epochs-0", "batch-0", "lr-0", "lr-negative", "lr-nan", "mu-negative", "mu-inf"])
def test_train_local_rejects_bad_hyperparameters(kwargs, name):
    (X, y), = make_clients([5])
    model = fl.LogisticRegression(6, 3)
    args = {"local_epochs": 1, "batch_size": 2, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=name):
        fl.train_local(model, fl.get_parameters(model), X, y, generator=torch.Generator(), **args)


def test_empty_client_rejected():
    model = fl.LogisticRegression(6, 3)
    with pytest.raises(ValueError, match="empty client"):
        fl.Client(0, torch.zeros(0, 6), torch.zeros(0, dtype=torch.int64), model)
    with pytest.raises(ValueError, match="empty client"):
        fl.train_local(model, fl.get_parameters(model), torch.zeros(0, 6), torch.zeros(0, dtype=torch.int64),
                       generator=torch.Generator())


def test_accuracy_per_class_matches_a_direct_count(test_set):
    # Reference: a plain loop over classes on the predictions of the same parameters.
    X, y = test_set
    model = fl.LogisticRegression(6, 3, generator=torch.Generator().manual_seed(3))
    params = fl.get_parameters(model)
    predicted = model(X).argmax(1)
    want = [float((predicted[y == c] == c).double().mean()) for c in range(3)]
    got = fl.accuracy_per_class(fl.LogisticRegression(6, 3), params, X, y, num_classes=3)
    assert got == pytest.approx(want, abs=1e-12)
    # Weighted by class counts, the per-class accuracies give back the overall accuracy.
    counts = torch.bincount(y, minlength=3).double()
    overall = fl.evaluate(model, params, X, y)[1]
    assert float((torch.tensor(got, dtype=torch.float64) * counts).sum() / counts.sum()) == pytest.approx(overall, abs=1e-12)


def test_accuracy_per_class_marks_absent_classes_nan_and_validates():
    model = fl.LogisticRegression(2, 4)
    params = fl.get_parameters(model)
    X, y = torch.zeros(3, 2), torch.tensor([0, 1, 1])
    got = fl.accuracy_per_class(model, params, X, y, num_classes=4)
    assert len(got) == 4 and math.isnan(got[2]) and math.isnan(got[3])
    with pytest.raises(ValueError, match="num_classes"):
        fl.accuracy_per_class(model, params, X, y, num_classes=0)
    with pytest.raises(ValueError, match="labels in"):
        fl.accuracy_per_class(model, params, X, torch.tensor([0, 1, 4]), num_classes=4)
    with pytest.raises(ValueError, match="at least one example"):
        fl.accuracy_per_class(model, params, torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), num_classes=4)


def _splitmix64_reference(x):
    # SplitMix64 (Steele, Lea & Flood 2014) on Python integers, written from its definition.
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


@pytest.mark.parametrize("seed, server_round", [(0, 0), (0, 1), (12345, 7), (2**63 - 1, 1000)],
                         ids=["zero", "round-1", "mid", "largest-seed"])
def test_client_seeds_are_the_splitmix_hash_of_the_triple(seed, server_round):
    cids = list(range(0, 300, 7))
    h = _splitmix64_reference(_splitmix64_reference(seed) ^ server_round)
    want = [_splitmix64_reference(h ^ cid) >> 1 for cid in cids]
    assert fl.client_seeds(seed, server_round, cids) == want
    assert [fl.client_seed(seed, server_round, cid) for cid in cids] == want
    assert all(0 <= s < 2**63 for s in want)


@pytest.mark.parametrize("args, name", [((-1, 1, [0]), "seed"), ((0, 1.5, [0]), "server_round"),
                                        ((0, 1, [0, -2]), "cid"), ((0, 1, [True]), "cid")],
                         ids=["seed", "round", "cid-negative", "cid-bool"])
def test_client_seeds_validate_their_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        fl.client_seeds(*args)


def test_parse_fit_config_fills_defaults_and_reads_zero_batch_as_whole_dataset():
    assert fl.parse_fit_config({}) == (1, 10, 0.1, 0.0, 0, None, None)  # no local DP
    c = fl.parse_fit_config({"local_epochs": 3, "batch_size": 0, "lr": 0.5, "proximal_mu": 0.1, "seed": 2**63,
                             "unrelated": "kept out"})
    assert c == fl.FitConfig(local_epochs=3, batch_size=None, lr=0.5, proximal_mu=0.1, seed=2**63)
    assert fl.parse_fit_config({"batch_size": None}).batch_size is None


@pytest.mark.parametrize("config, name", [
    ({"local_epochs": 1.7}, "local_epochs"), ({"local_epochs": 0}, "local_epochs"),
    ({"local_epochs": True}, "local_epochs"), ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": -3}, "batch_size"), ({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"),
    ({"seed": 1.0}, "seed"), ({"lr": 0}, "lr"), ({"lr": float("inf")}, "lr"), ({"proximal_mu": -1e-3}, "proximal_mu"),
], ids=["epochs-float", "epochs-0", "epochs-bool", "batch-float", "batch-negative", "seed-negative",
        "seed-too-large", "seed-float", "lr-0", "lr-inf", "mu-negative"])
def test_parse_fit_config_rejects_what_int_would_truncate(config, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        fl.parse_fit_config(config)


@pytest.mark.parametrize("args, name", [((2**64, 1, [0]), "seed"), ((0, 2**70, [0]), "server_round"),
                                        ((0, 1, [2**64]), "cid")],
                         ids=["seed", "round", "cid"])
def test_client_seeds_reject_parts_beyond_64_bits_with_a_named_error(args, name):
    # Not an OverflowError from numpy: a ValueError naming the part and its range.
    with pytest.raises(ValueError, match=rf"^{name} must be an integer in \[0, 18446744073709551615\]"):
        fl.client_seeds(*args)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        fl.client_seed(args[0], args[1], args[2][0])


def test_client_seeds_accept_the_largest_64_bit_parts():
    top = 2**64 - 1
    seeds = fl.client_seeds(top, top, [top, 0])
    assert seeds == [fl.client_seed(top, top, top), fl.client_seed(top, top, 0)]
    assert seeds[0] != seeds[1] and all(0 <= s < 2**63 for s in seeds)
    assert fl.client_seeds(np.int64(3), np.uint8(1), [np.int32(2)]) == fl.client_seeds(3, 1, [2])


@pytest.mark.parametrize("args, name", [((4.0, 1), "num_examples"), ((0, 1), "num_examples"),
                                        ((4, 2.0), "local_epochs"), ((4, True), "local_epochs")],
                         ids=["examples-float", "examples-0", "epochs-float", "epochs-bool"])
def test_epoch_permutations_validate_their_arguments(args, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        fl.epoch_permutations(*args, torch.Generator())
