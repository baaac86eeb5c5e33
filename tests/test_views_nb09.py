"""Notebook 09's live view, driven as a learner would: every corner and every step of its sliders
renders and changes the figure and the summary, and the summary follows the controls (σ and C,
the reconstruction error, the ε of one update, the membership AUC, the ε that training spent and
the replace-one bound that goes with it: members against held-out examples on one model)."""

import re

import numpy as np
import pytest

from dpfl_course import dp, fl
from dpfl_course.privacy import membership
from dpfl_course.testing import drive_corners, live_notebook, number_before, set_controls


@pytest.fixture(scope="module")
def nb09():
    with live_notebook("09_attacks_on_fl.ipynb") as namespace:
        yield namespace


def slider_steps(control):
    """Every value a log slider's handle can take, low to high."""
    count = round((control.max - control.min) / control.step)
    return [control.base ** (control.min + k * control.step) for k in range(count + 1)]


def test_nb09_view_renders_every_corner_of_its_sliders(nb09):
    view = nb09["view"]
    # record-level C is max_grad_norm, as in notebook 06 and Opacus; clip_norm is the user-level S of 07/08
    assert set(view.controls) == {"noise_multiplier", "max_grad_norm"}
    images = drive_corners(view)
    assert len(images) == 4, "every corner is a different setting and should draw a different figure"


@pytest.mark.parametrize("name, other", [("noise_multiplier", {"max_grad_norm": 1.0}),
                                         ("max_grad_norm", {"noise_multiplier": 0.01})], ids=["sigma", "clip"])
def test_nb09_every_slider_step_changes_the_figure_and_the_summary(nb09, name, other):
    # The browser suite moves each slider by one step and checks both change: so must every step here.
    view = nb09["view"]
    set_controls(view, **other)
    images, summaries = [], []
    for value in slider_steps(view.controls[name]):
        summaries.append(set_controls(view, **{name: value}))
        images.append(view.image.value)
    assert len(set(images)) == len(images) and len(set(summaries)) == len(summaries)


def test_nb09_summary_states_the_controls_and_the_attack_numbers(nb09):
    view = nb09["view"]
    text = set_controls(view, max_grad_norm=1.0, noise_multiplier=0.001)
    assert text.startswith("σ = 0.001, C = 1 ·")
    assert number_before(text, "dB) by DLG") >= 30  # σ = 0.001: the digits are still recovered
    assert "labels right 3/3" in text
    # the AUC is the loss attack's on the cached run, and ε is the accountant's for local DP-SGD
    a_in, a_out, eps, _ = nb09["membership_at"](0.001, 1.0)
    assert f"membership AUC {membership.roc_auc(a_in, a_out):.3f}" in text
    q, steps = fl.local_dp_plan(nb09["NUM_MEMBERS"] // nb09["NUM_CLIENTS"], local_epochs=5, batch_size=10)
    want = dp.epsilon(noise_multiplier=0.001, sample_rate=q, steps=steps * nb09["DEMO_ROUNDS"], delta=1e-5)
    assert eps == pytest.approx(want, rel=1e-6)
    one_step = dp.epsilon(noise_multiplier=0.001, sample_rate=1.0, steps=1, delta=1e-5)
    assert f"one update spends ε = {one_step:.3g} ·" in text
    text = set_controls(view, noise_multiplier=10 ** 0.5)
    guess = sum(nb09["guess"]) / len(nb09["guess"])  # MSE of guessing the average digit
    mse = float(re.search(r"reconstruction MSE ([\d.]+)", text).group(1))
    assert mse > guess  # σ ≈ 3.2: the reconstruction is worse than knowing nothing about the digit
    eps = float(re.search(r"record-level ε = ([\d.e+]+)", text).group(1))
    max_auc = float(re.search(r"replace-one bound AUC ≤ ([\d.]+)", text).group(1))
    # review 09, finding 1: the bound for members against held-out examples is at (2ε, (1 + e^ε)δ)
    assert max_auc == pytest.approx(membership.dp_max_auc(epsilon=eps, delta=1e-5, neighbours="replace_one"), abs=2e-3)


def test_nb09_roc_panel_draws_the_replace_one_bound(nb09):
    # At σ = 10^0.5 = 3.16 training spends a small ε; the dashed bound of the ROC panel must be the
    # replace-one one, (2ε, (1 + e^ε)δ), not the in/out (ε, δ) curve (review 09, finding 1).
    view = nb09["view"]
    set_controls(view, noise_multiplier=10 ** 0.5, max_grad_norm=1.0)
    fig, _ = nb09["render_attacks"](noise_multiplier=10 ** 0.5, max_grad_norm=1.0)
    eps = nb09["membership_at"](float(10 ** 0.5), 1.0)[2]
    grid = nb09["ROC_GRID"]
    dashed = [line for ax in fig.axes for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    want = membership.dp_tpr_bound(grid, epsilon=eps, delta=1e-5, neighbours="replace_one")
    assert np.allclose(dashed[0].get_ydata(), want)
    assert not np.allclose(dashed[0].get_ydata(), membership.dp_tpr_bound(grid, epsilon=eps, delta=1e-5))


def test_nb09_a_typed_value_goes_to_the_nearest_step(nb09):
    render = nb09["render_attacks"]
    assert render(noise_multiplier=0.0316, max_grad_norm=3.16)[1] == render(noise_multiplier=10 ** -1.5,
                                                                             max_grad_norm=10 ** 0.5)[1]


def test_nb09_render_is_pure(nb09):
    render = nb09["render_attacks"]
    (_, first), (_, second) = (render(noise_multiplier=0.1, max_grad_norm=0.1) for _ in range(2))
    assert first == second
    assert 0 <= float(re.search(r"test accuracy ([\d.]+) %", first).group(1)) <= 100
