"""Tests for dpfl_course.fl.aggregate.weighted_average: exactness, dtype, validation."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from dpfl_course.fl import weighted_average
from dpfl_course.fl.aggregate import weighted_metrics


def exact_mean(values, weights):
    """The exact weighted mean of Python floats, as a Fraction (no rounding at all)."""
    total = sum(weights)
    return sum(Fraction(v) * w for v, w in zip(values, weights)) / total


def test_identical_tensors_average_to_themselves_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(5, 3, generator=g), torch.randn(3, generator=g)]
    out = weighted_average([(w, 1), (w, 7), (w, 123)])
    for a, b in zip(out, w):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_unequal_weights_give_the_correctly_rounded_weighted_mean(dtype):
    g = torch.Generator().manual_seed(1)
    weights = [1, 2, 1000, 7, 3]
    clients = [[torch.randn(4, 2, generator=g).to(dtype), torch.randn(2, generator=g).to(dtype)] for _ in weights]
    out = weighted_average([(c, n) for c, n in zip(clients, weights)])
    assert [t.dtype for t in out] == [dtype, dtype]
    ulp = torch.finfo(dtype).eps
    for j, tensor in enumerate(out):
        flat = [c[j].reshape(-1).tolist() for c in clients]
        for i, got in enumerate(tensor.reshape(-1).tolist()):
            values = [f[i] for f in flat]
            want = exact_mean(values, weights)
            scale = exact_mean([abs(v) for v in values], weights)  # >= |want|; sums can cancel
            # float32: the float64 sum is ~1e-16 relative, then one cast rounds by <= eps/2 of the
            # value: within eps * scale. float64: summing 5 terms rounds a few times: 8 eps * scale.
            bound = (1 if dtype == torch.float32 else 8) * ulp * scale
            assert abs(Fraction(got) - want) <= bound


def test_weights_are_num_examples_not_equal():
    out = weighted_average([([torch.tensor([0.0])], 1), ([torch.tensor([4.0])], 3)])
    assert out[0].item() == 3.0  # (0*1 + 4*3) / 4; the plain mean would give 2


def test_result_is_new_tensors_inputs_untouched():
    a, b = [torch.ones(2)], [torch.zeros(2)]
    out = weighted_average([(a, 1), (b, 1)])
    out[0].add_(10)
    assert torch.equal(a[0], torch.ones(2)) and torch.equal(b[0], torch.zeros(2))


def test_numpy_integer_weights_accepted():
    out = weighted_average([([torch.tensor([1.0])], np.int64(2)), ([torch.tensor([4.0])], np.int32(1))])
    assert out[0].item() == 2.0


@pytest.mark.parametrize("results, match", [
    ([], "results must be a non-empty"),
    ([([torch.ones(2)], 0)], "num_examples"),
    ([([torch.ones(2)], -3)], "num_examples"),
    ([([torch.ones(2)], 2.5)], "num_examples"),
    ([([torch.ones(2)], True)], "num_examples"),
    ([([torch.ones(2)], 1), ([torch.ones(3)], 1)], r"results\[1\] parameters\[0\] must have shape"),
    ([([torch.ones(2)], 1), ([torch.ones(2), torch.ones(1)], 1)], r"results\[1\] parameters must hold 1"),
    ([([torch.ones(2)], 1), ([torch.ones(2, dtype=torch.float64)], 1)], "dtype"),
    ([([], 1)], "at least one tensor"),
    ([(torch.ones(2),)], r"results\[0\] must be a \(parameters, num_examples\) pair"),
], ids=["empty", "zero-examples", "negative-examples", "float-examples", "bool-examples", "shape-mismatch",
        "count-mismatch", "dtype-mismatch", "no-tensors", "not-a-pair"])
def test_bad_results_raise_value_error_naming_the_problem(results, match):
    with pytest.raises(ValueError, match=match):
        weighted_average(results)


def test_weighted_metrics_averages_by_examples_over_common_keys():
    assert weighted_metrics([({"loss": 1.0, "acc": 0.5}, 3), ({"loss": 3.0}, 1)]) == {"loss": 1.5}


@pytest.mark.parametrize("results, match", [
    ([], "results must be a non-empty list"),
    ([({"loss": 1.0}, 0)], r"results\[0\] num_examples must be an integer in \[1, inf\), got 0"),
    ([({"loss": 1.0}, 1), ({"loss": 2.0}, 2.5)], r"results\[1\] num_examples"),
    ([({"loss": 1.0}, True)], r"results\[0\] num_examples"),
    ([(["loss"], 1)], r"results\[0\] must be a \(metrics, num_examples\) pair"),
], ids=["empty", "zero", "float", "bool", "not-a-dict"])
def test_weighted_metrics_rejects_bad_results(results, match):
    with pytest.raises(ValueError, match=match):
        weighted_metrics(results)
