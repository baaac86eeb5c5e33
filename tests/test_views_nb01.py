"""Notebook 01's live view, driven as a learner would: every corner of its sliders renders and
changes the figure, and the summary follows the controls (noise, 95 % error, the e^ε band)."""

import math

import pytest

from dpfl_course.testing import drive_corners, live_notebook


@pytest.fixture(scope="module")
def nb01():
    with live_notebook("01_why_privacy.ipynb") as namespace:
        yield namespace


def test_nb01_view_renders_every_corner_of_its_sliders(nb01):
    view = nb01["view"]
    assert set(view.controls) == {"epsilon", "sensitivity"}
    images = drive_corners(view)
    assert len(images) == 4, "moving the sliders should change the figure"


def test_nb01_summary_follows_epsilon_and_flags_a_too_small_sensitivity(nb01):
    view = nb01["view"]
    view.controls["sensitivity"].value = 1.0
    view.controls["epsilon"].value = 1.0
    text = view.last_summary
    assert "noise std √2·b = 1.41" in text and f"within ±{math.log(20):.3g}" in text and "≤ e^ε" in text
    view.controls["epsilon"].value = 0.1
    assert "noise std √2·b = 14.1" in view.last_summary  # b = 10
    view.controls["sensitivity"].value = 0.5  # below the true change of 1: the promise breaks
    assert "> e^ε" in view.last_summary
    view.controls["sensitivity"].value = 2.0
    assert "≤ e^ε" in view.last_summary


def test_nb01_render_is_pure(nb01):
    render = nb01["render_laplace"]
    (_, first), (_, second) = render(epsilon=0.5, sensitivity=1.0), render(epsilon=0.5, sensitivity=1.0)
    assert first == second


def test_nb01_reused_figure_keeps_no_state_between_renders(nb01):
    # render_laplace moves the artists of one figure: a setting drawn again after another one
    # (here a broken promise, red curve) must give the very same image as the first time.
    from dpfl_course.plotting import to_png

    render = nb01["render_laplace"]
    first = to_png(render(epsilon=1.0, sensitivity=1.0)[0])
    to_png(render(epsilon=0.1, sensitivity=0.25)[0])
    assert to_png(render(epsilon=1.0, sensitivity=1.0)[0]) == first
