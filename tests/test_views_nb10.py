"""Notebook 10's live view, driven as a learner would: every corner of its controls renders and
changes the figure, and the summary follows the controls (the claimed ε and the σ the accountant
picks for it, the runs per world, the adversary, the bug and its verdict)."""

import re

import pytest

from dpfl_course import dp
from dpfl_course.testing import drive_corners, live_notebook, set_controls, slider_range


@pytest.fixture(scope="module")
def nb10():
    with live_notebook("10_privacy_auditing.ipynb") as namespace:
        yield namespace


def epsilon_lb(text):
    return float(re.search(r"ε_LB = ([\d.]+)", text).group(1))


def test_nb10_view_renders_every_corner_of_its_controls(nb10):
    view = nb10["view"]
    assert set(view.controls) == {"claimed_epsilon", "trials", "clipping_off", "adversary"}
    adversaries = [value for _, value in view.controls["adversary"].options]
    assert adversaries == ["final", "every_step"]
    assert slider_range(view.controls["clipping_off"]) == (False, True)
    assert slider_range(view.controls["adversary"]) == ("final", "every_step")
    images = drive_corners(view)  # 2 × 2 × 2 × 2 corners: slider ends, checkbox off/on, both adversaries
    assert len(images) == 16, "every corner is a different setting: a different figure"


def test_nb10_every_single_step_changes_figure_and_summary(nb10):
    # what the browser suite does: one arrow step of each slider, the checkbox, the dropdown
    view = nb10["view"]
    set_controls(view, claimed_epsilon=1.0, trials=1000, clipping_off=False, adversary="every_step")
    eps = view.controls["claimed_epsilon"]
    for name, value in [("claimed_epsilon", 10 ** (0.0 + eps.step)), ("trials", 1500), ("clipping_off", True),
                        ("adversary", "final")]:
        before = (view.image.value, view.last_summary)
        set_controls(view, **{name: value})
        assert view.image.value != before[0] and view.last_summary != before[1], name


def test_nb10_summary_states_the_claim_and_the_sigma_the_accountant_picks(nb10):
    view = nb10["view"]
    text = set_controls(view, claimed_epsilon=10 ** 0.3, trials=1000, clipping_off=False, adversary="every_step")
    assert text.startswith("claimed ε = 2.00 (σ = ")
    sigma = float(re.search(r"σ = ([\d.]+)", text).group(1))
    want = dp.noise_multiplier_for(target_epsilon=10 ** 0.3, sample_rate=nb10["SAMPLE_RATE"], steps=nb10["STEPS"],
                                   delta=1e-5)
    assert sigma == pytest.approx(want, abs=0.006)
    assert "every-step adversary, 1000 runs per world" in text


def test_nb10_correct_runs_stay_below_the_claim_and_the_bug_is_caught(nb10):
    view = nb10["view"]
    for claimed in [10 ** -0.3, 1.0, 10 ** 0.6]:
        for adversary in ["final", "every_step"]:
            text = set_controls(view, claimed_epsilon=claimed, trials=1000, clipping_off=False, adversary=adversary)
            assert epsilon_lb(text) <= claimed + 1e-9, text
            assert "refuted" not in text
    text = set_controls(view, claimed_epsilon=1.0, clipping_off=True, adversary="every_step")
    assert epsilon_lb(text) > 1.0 and "clipping OFF" in text and "refuted" in text
    # a claim above what 500 counted runs can prove is never refuted: the summary says so
    text = set_controls(view, claimed_epsilon=10 ** 0.9)
    assert "cannot prove more than ε = 4.91" in text


def test_nb10_render_is_pure(nb10):
    render = nb10["render_audit"]
    (_, first), (_, second) = (render(claimed_epsilon=2.0, trials=500, clipping_off=True, adversary="final")
                               for _ in range(2))
    assert first == second


@pytest.mark.parametrize("settings", [
    dict(claimed_epsilon=10 ** 0.9, trials=2000, clipping_off=True, adversary="final"),
    dict(claimed_epsilon=0.5, trials=500, clipping_off=False, adversary="every_step"),
], ids=["bug_final", "correct_every_step"])
def test_nb10_legend_never_covers_the_data(nb10, settings):
    # the left panel's legend sits in the headroom above TPR = 1.02, where nothing is drawn
    fig, _ = nb10["render_audit"](**settings)
    ax = fig.axes[0]
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent().transformed(ax.transData.inverted())
    assert box.y0 > 1.02 and box.y1 <= ax.get_ylim()[1]
