"""Notebook 06's live view, driven as a learner would: every corner of its sliders renders and
changes the figure, and the summary follows the controls (steps, ε by both accountants, accuracy)."""

import re

import pytest

from dpfl_course import dp
from dpfl_course.testing import drive_corners, live_notebook, set_controls


@pytest.fixture(scope="module")
def nb06():
    with live_notebook("06_dp_sgd.ipynb") as namespace:
        yield namespace


def parse(summary):
    m = re.match(r"(\d+) epochs = (\d+) steps at q = ([\d.]+) → ε = ([\d.]+) \(RDP\), ([\d.]+) \(PRV\) at δ = 1e-5 · "
                 r"test accuracy ([\d.]+) % \(without DP ([\d.]+) %\)", summary)
    assert m, summary
    epochs, steps = int(m.group(1)), int(m.group(2))
    q, rdp, prv, accuracy, baseline = (float(m.group(i)) for i in range(3, 8))
    return dict(epochs=epochs, steps=steps, q=q, rdp=rdp, prv=prv, accuracy=accuracy, baseline=baseline)


def test_nb06_view_renders_every_corner_of_its_sliders(nb06):
    view = nb06["view"]
    assert set(view.controls) == {"noise_multiplier", "max_grad_norm", "batch_size", "epochs"}
    images = drive_corners(view)
    assert len(images) == 16, "every corner is a different setting and should draw a different figure"


def test_nb06_summary_reports_the_runs_accounting(nb06):
    view = nb06["view"]
    n = nb06["n_train"]
    for sigma, batch_size, epochs in [(1.1, 64, 15), (2.0, 32, 5), (0.8, 256, 3)]:
        s = parse(set_controls(view, noise_multiplier=sigma, max_grad_norm=1.0, batch_size=batch_size, epochs=epochs))
        q = batch_size / n
        steps = epochs * round(1 / q)
        assert (s["epochs"], s["steps"]) == (epochs, steps)
        assert s["q"] == pytest.approx(q, abs=5e-4)
        # the ε printed is the accountants' for this (q, σ, steps), rounded to 2 decimals
        assert s["rdp"] == pytest.approx(dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5),
                                         abs=0.006)
        assert s["prv"] == pytest.approx(dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5,
                                                    accountant="prv"), abs=0.006)
        assert s["prv"] <= s["rdp"]
        # the non-private reference is quoted after the same number of epochs
        assert s["baseline"] == pytest.approx(100 * nb06["baseline"]["test_accuracy"][epochs - 1], abs=0.06)


def test_nb06_more_noise_spends_less_epsilon(nb06):
    view = nb06["view"]
    low = parse(set_controls(view, noise_multiplier=0.8, max_grad_norm=1.0, batch_size=64, epochs=10))
    high = parse(set_controls(view, noise_multiplier=3.0))
    assert high["rdp"] < low["rdp"] and high["prv"] < low["prv"]
    # and the default setting learns: far above chance (10 %), below the non-private run
    default = parse(set_controls(view, noise_multiplier=1.1, batch_size=64, epochs=15))
    assert 70 < default["accuracy"] <= default["baseline"]


def test_nb06_render_is_pure(nb06):
    render = nb06["render_dpsgd"]
    (_, first), (_, second) = (render(noise_multiplier=1.5, max_grad_norm=0.5, batch_size=128, epochs=4)
                               for _ in range(2))
    assert first == second
