"""FedAvg through secure aggregation: the same average as fl.weighted_average within the rounding
bound, the same trained model as FedAvg, and every round really goes through the protocol."""

import numpy as np
import pytest
import torch
from scipy import stats

from dpfl_course import fl
from dpfl_course.fl import aggregate
from dpfl_course.privacy import fixed_point, secure_fedavg


def _results(sizes=(30, 120, 57, 90)):
    g = torch.Generator().manual_seed(0)
    model = fl.init_parameters(fl.LogisticRegression(64, 10), torch.Generator().manual_seed(1))
    return [([p + 0.1 * torch.randn(p.shape, generator=g) for p in fl.get_parameters(model)], n_k) for n_k in sizes]


def test_secure_weighted_average_matches_fedavg_within_the_rounding_bound():
    results = _results()
    want = fl.weighted_average(results)
    got, result = secure_fedavg.secure_weighted_average(results, threshold=3, seed=0)
    scale, total = fixed_point.DEFAULT_SCALE, sum(n for _, n in results)
    bound = len(results) / (2 * scale * total) + 1e-6  # rounding of K values, plus the float32 cast
    for g_, w_ in zip(got, want):
        assert g_.dtype == w_.dtype and g_.shape == w_.shape
        assert (g_.double() - w_.double()).abs().max().item() <= bound
    # with a dropout it is the average over the survivors; a late dropout's upload stays in
    got, _ = secure_fedavg.secure_weighted_average(results, threshold=3, dropouts=[1], seed=0)
    want = fl.weighted_average([results[i] for i in (0, 2, 3)])
    assert max((a.double() - b.double()).abs().max().item() for a, b in zip(got, want)) <= bound
    got, _ = secure_fedavg.secure_weighted_average(results, threshold=2, dropouts=[1], late_dropouts=[3], seed=0)
    assert max((a.double() - b.double()).abs().max().item() for a, b in zip(got, want)) <= bound


def test_max_weight_normalises_like_flower_within_its_bound():
    # Finding c: weights n_k / max_weight in (0, 1]; both sums are rounded, so the bound is
    # K·(1 + |mean|)/(2·scale·Σr_k).
    results = _results()
    want = fl.weighted_average(results)
    got, result = secure_fedavg.secure_weighted_average(results, threshold=3, max_weight=1000.0, seed=0)
    total_weight = sum(n for _, n in results) / 1000.0
    for g_, w_ in zip(got, want):
        bound = len(results) * (1 + w_.abs().max().item()) / (2 * fixed_point.DEFAULT_SCALE * total_weight) + 1e-6
        assert (g_.double() - w_.double()).abs().max().item() <= bound
    assert result.sum[-1] == pytest.approx(total_weight, abs=len(results) / (2 * fixed_point.DEFAULT_SCALE))
    with pytest.raises(ValueError, match="num_examples must be at most max_weight = 100"):
        secure_fedavg.secure_weighted_average(results, threshold=3, max_weight=100.0, seed=0)


def test_max_weight_keeps_large_clients_inside_the_headroom():
    # Finding c: with raw weights, 10 clients × n_k·|Δ| = 2000 · 2 × 2^16 exceeds 2^31; with
    # weights n_k/max_weight <= 1 the same updates fit easily.
    big = [([torch.full((3,), 2.0)], 2000)] * 2 + [([torch.full((3,), 2.0)], 1000)] * 8
    with pytest.raises(ValueError, match="scale must be at most"):
        secure_fedavg.secure_weighted_average(big, threshold=6, seed=0)
    got, _ = secure_fedavg.secure_weighted_average(big, threshold=6, max_weight=2000.0, seed=0)
    assert torch.allclose(got[0], torch.full((3,), 2.0), atol=1e-4)


def test_secure_weighted_average_validates_results_like_fl():
    # Finding 10: empty parameter lists failed inside torch.cat, mismatched shapes with numpy's message
    with pytest.raises(ValueError, match="at least one tensor"):
        secure_fedavg.secure_weighted_average([([], 1), ([], 1)])
    with pytest.raises(ValueError, match=r"results\[1\] parameters\[0\] must have shape \(3,\)"):
        secure_fedavg.secure_weighted_average([([torch.zeros(3)], 1), ([torch.zeros(4)], 1)])
    with pytest.raises(ValueError, match="num_examples"):
        secure_fedavg.secure_weighted_average([([torch.zeros(3)], 0), ([torch.zeros(3)], 1)])
    with pytest.raises(ValueError, match="at least 2"):
        secure_fedavg.secure_weighted_average([([torch.zeros(3)], 1)])


BAD_RESULTS = {
    "shape": [([torch.zeros(3)], 1), ([torch.zeros(4)], 1)],
    "dtype": [([torch.zeros(3)], 1), ([torch.zeros(3, dtype=torch.float64)], 1)],
    "count": [([torch.zeros(3)], 1), ([torch.zeros(3), torch.zeros(1)], 1)],
    "examples": [([torch.zeros(3)], 1), ([torch.zeros(3)], 2.5)],
    "not-a-tensor": [([np.zeros(3)], 1), ([torch.zeros(3)], 1)],
}


@pytest.mark.parametrize("name", sorted(BAD_RESULTS))
def test_secure_weighted_average_refuses_with_fl_messages(name):
    # Review item 7: validation is fl.aggregate.check_results, the very checks of fl.weighted_average
    with pytest.raises(ValueError) as plain:
        fl.weighted_average(BAD_RESULTS[name])
    with pytest.raises(ValueError) as secure:
        secure_fedavg.secure_weighted_average(BAD_RESULTS[name], threshold=2, seed=0)
    assert str(secure.value) == str(plain.value)


def test_secure_weighted_average_never_computes_the_plaintext_average(monkeypatch):
    # Review item 7: it called fl.weighted_average "only to validate", i.e. averaged in the clear every round.
    def plaintext_average(results):
        raise AssertionError("the secure path computed the plaintext weighted average")

    monkeypatch.setattr(aggregate, "weighted_average", plaintext_average)
    monkeypatch.setattr(secure_fedavg, "weighted_average", plaintext_average, raising=False)
    results = [([torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([4.0])], 1),
               ([torch.tensor([[3.0, 0.0]], dtype=torch.float64), torch.tensor([0.0])], 3)]
    got, _ = secure_fedavg.secure_weighted_average(results, threshold=2, seed=0)
    # shapes and dtypes come from results[0]; values are the weighted mean (1·x_0 + 3·x_1)/4
    assert [(p.shape, p.dtype) for p in got] == [(torch.Size([1, 2]), torch.float64), (torch.Size([1]), torch.float32)]
    assert torch.allclose(got[0], torch.tensor([[2.5, 0.5]], dtype=torch.float64), atol=1e-4)
    assert torch.allclose(got[1], torch.tensor([1.0]), atol=1e-4)


# ---------------------------------------------------------------- a strategy for fl.run_federated
def _digits_clients(num_clients):
    from dpfl_course import data

    digits = data.load_digits()
    parts = data.partition_iid(digits.y_train, num_clients, seed=0)
    return fl.make_client_data(digits.X_train, digits.y_train, parts), (digits.X_test, digits.y_test)


TRAIN_CASES = [(dropout, max_weight) for dropout in (0.0, 0.3) for max_weight in (1000.0, None)]


@pytest.mark.parametrize("dropout,max_weight", TRAIN_CASES, ids=[f"dropout{d}-max_weight{m}" for d, m in TRAIN_CASES])
def test_secure_aggregation_strategy_trains_the_same_model_as_fedavg(dropout, max_weight):
    clients, test = _digits_clients(8)
    kwargs = dict(num_rounds=3, test_data=test, seed=0, dropout=dropout, engine="sequential")
    plain, _ = fl.run_federated(fl.LogisticRegression(64, 10), clients, fl.FedAvg(lr=0.3), **kwargs)
    strategy = secure_fedavg.SecureAggregation(fl.FedAvg(lr=0.3), threshold=0.5, max_weight=max_weight, seed=0)
    secure, history = fl.run_federated(fl.LogisticRegression(64, 10), clients, strategy, **kwargs)
    # Per round each value is off by at most K·(1 + |mean|)/(2·scale·Σr): with raw weights (Σr = Σn ≈ 1347,
    # K = 8) that is 4.5e-8, plus the float32 cast (6e-8 at |w| ~ 1); with r = n/1000 (Σr ≈ 1.35,
    # |mean| <= 1) about 9e-5. Three rounds add them up with mild amplification: 1e-6 and 5e-4 are
    # several times the worst case yet far below the size of an update (~0.1).
    bound = 1e-6 if max_weight is None else 5e-4
    for a, b in zip(plain, secure):
        assert (a - b).abs().max().item() < bound
    assert history["secagg_aborted"][1:] == [0.0, 0.0, 0.0]


def test_every_round_goes_through_secure_aggregation(monkeypatch):
    # Finding 8: a SecureAggregation that passed straight to FedAvg trained the same model and passed.
    calls = []
    real = secure_fedavg.secure_weighted_average

    def spy(rows, **kwargs):
        calls.append((len(rows), tuple(kwargs["dropouts"]), kwargs["server_round"]))
        return real(rows, **kwargs)

    monkeypatch.setattr(secure_fedavg, "secure_weighted_average", spy)
    clients, test = _digits_clients(8)
    strategy = secure_fedavg.SecureAggregation(fl.FedAvg(lr=0.3), threshold=0.5, seed=0)
    _, history = fl.run_federated(fl.LogisticRegression(64, 10), clients, strategy, num_rounds=3, test_data=test,
                                  seed=0, dropout=0.3, engine="sequential")
    lost = [s - c for s, c in zip(history["clients_sampled"][1:], history["clients_succeeded"][1:])]
    assert [r for _, _, r in calls] == [1, 2, 3]
    assert [len(d) for _, d, _ in calls] == lost and sum(lost) > 0
    assert [n for n, _, _ in calls] == history["clients_sampled"][1:]
    # what the server saw in the last round: uploads that look uniform mod 2^32, nothing like the update
    result = strategy.last_result
    assert result is not None and len(result.masked_uploads) == history["clients_succeeded"][-1]
    for y in result.masked_uploads.values():
        # 651 values in 16 bins: chi-square at a fixed seed (a plain encoded update sits in 2 bins)
        counts = np.bincount((y >> np.uint64(28)).astype(np.int64), minlength=16)
        assert stats.chisquare(counts).pvalue > 1e-3


def test_secure_aggregation_strategy_aborts_a_round_below_the_threshold():
    clients, test = _digits_clients(4)
    strategy = secure_fedavg.SecureAggregation(fl.FedAvg(lr=0.3), threshold=4, seed=0)  # every client must survive
    params, history = fl.run_federated(fl.LogisticRegression(64, 10), clients, strategy, num_rounds=4,
                                       test_data=test, seed=1, dropout=0.5, engine="sequential")
    aborted = history["secagg_aborted"][1:]
    lost = [s - c for s, c in zip(history["clients_sampled"][1:], history["clients_succeeded"][1:])]
    assert aborted == [1.0 if k > 0 else 0.0 for k in lost] and 1.0 in aborted


def test_a_round_where_every_client_dropped_reports_an_abort():
    # Finding d: with no results aggregate_fit returned {} and the history held NaN
    strategy = secure_fedavg.SecureAggregation(fl.FedAvg(lr=0.3), threshold=2, seed=0)
    params = [torch.zeros(2)]
    strategy.configure_fit(1, params, 4, torch.Generator().manual_seed(0))
    assert strategy.aggregate_fit(1, [], [0, 1, 2, 3]) == (None, {"secagg_aborted": 1.0})


def test_secure_aggregation_strategy_validates():
    with pytest.raises(ValueError, match="FedAvg"):
        secure_fedavg.SecureAggregation(fl.CentralDP(fl.FedAvg(), noise_multiplier=1.0, clip_norm=1.0))
    with pytest.raises(ValueError, match="threshold"):
        secure_fedavg.SecureAggregation(fl.FedAvg(), threshold=1)
    with pytest.raises(ValueError, match="threshold"):
        secure_fedavg.SecureAggregation(fl.FedAvg(), threshold=1.5)
    with pytest.raises(ValueError, match="max_weight"):
        secure_fedavg.SecureAggregation(fl.FedAvg(), max_weight=0)
    with pytest.raises(ValueError, match="seed"):
        secure_fedavg.SecureAggregation(fl.FedAvg(), seed=2**200)
