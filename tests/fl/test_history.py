"""Tests for History's look-ups used by the notebooks: rounds_to, bytes_to, and plot's scale."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dpfl_course import fl  # noqa: E402

from .conftest import make_clients  # noqa: E402


def history_with(accuracies, bytes_per_round=10):
    h = fl.History()
    for r, a in enumerate(accuracies):
        b = 0 if r == 0 else bytes_per_round
        h.add(round=r, test_accuracy=a, bytes_down=b, bytes_up=b)
    return h


def test_rounds_to_is_the_first_round_reaching_the_target_not_the_best():
    h = history_with([0.1, 0.5, 0.92, 0.88, 0.95])
    assert h.rounds_to(0.9) == 2  # round 3 dips below again: the first crossing counts
    assert h.rounds_to(0.5) == 1  # ">=": reaching the target exactly counts
    assert h.rounds_to(0.1) == 0
    assert h.rounds_to(0.96) is None


def test_bytes_to_counts_both_directions_up_to_and_including_that_round():
    h = history_with([0.1, 0.5, 0.92], bytes_per_round=7)
    assert h.bytes_to(0.9) == 2 * (7 + 7) == h.total_bytes[2]
    assert h.bytes_to(0.1) == 0
    assert h.bytes_to(0.99) is None


def test_rounds_to_skips_missing_values_and_reads_other_columns():
    h = fl.History()
    h.add(round=0, train_loss=2.0)
    h.add(round=1, train_loss=1.0, test_accuracy=0.7)
    assert h.rounds_to(0.5) == 1  # round 0 has no test_accuracy (NaN never reaches a target)
    assert h.rounds_to(1.5, column="train_loss") == 0


def test_rounds_to_agrees_with_a_real_run(test_set):
    _, h = fl.run_federated(fl.LogisticRegression(6, 3), make_clients([10, 20, 30]), fl.FedAvg(lr=0.5),
                            num_rounds=5, test_data=test_set)
    target = sorted(h["test_accuracy"])[3]
    want = next(r for r, a in zip(h["round"], h["test_accuracy"]) if a >= target)
    assert h.rounds_to(target) == want


@pytest.mark.parametrize("target", [math.nan, math.inf, "high"], ids=["nan", "inf", "str"])
def test_bad_target_raises_value_error_naming_it(target):
    with pytest.raises(ValueError, match="target"):
        history_with([0.1, 0.2]).rounds_to(target)


def test_unknown_column_raises_key_error():
    with pytest.raises(KeyError, match="no metric"):
        history_with([0.1]).rounds_to(0.5, column="accuracy")


def test_plot_scale_draws_percentages_and_rejects_bad_scale():
    h = history_with([0.1, 0.5])
    fig, ax = plt.subplots()
    line = h.plot(ax, scale=100)
    assert list(line.get_ydata()) == [10.0, 50.0]
    with pytest.raises(ValueError, match="scale"):
        h.plot(ax, scale=0)
    plt.close(fig)
