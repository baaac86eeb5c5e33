"""Notebook 03's live view, driven as a learner would: every corner of its sliders renders and
changes the figure, and the summary follows the controls (local spread ≈ formula, √n gap)."""

import math
import re

import pytest

from dpfl_course.testing import drive_corners, live_notebook


@pytest.fixture(scope="module")
def nb03():
    with live_notebook("03_local_dp.ipynb") as namespace:
        yield namespace


def numbers(text):
    std, formula = re.search(r"local DP: mean estimate [-\d.]+, std ([-\d.e+]+) \(formula ([-\d.e+]+)\)", text).groups()
    return {"std": float(std), "formula": float(formula)}


def test_nb03_view_renders_every_corner_of_its_sliders(nb03):
    view = nb03["view"]
    assert set(view.controls) == {"epsilon", "num_users"}
    images = drive_corners(view)
    assert len(images) == 4, "moving the sliders should change the figure"


def test_nb03_simulated_spread_follows_the_formula_and_the_sqrt_n_gap(nb03):
    view = nb03["view"]
    view.controls["epsilon"].value = 1.0
    ratios = []
    for n in (100.0, 10_000.0, 1_000_000.0):
        view.controls["num_users"].value = n
        values = numbers(view.last_summary)
        # 2,000 surveys: the sample std is within 5 × (σ/√(2·2000)) ≈ 8 % of σ
        assert abs(values["std"] / values["formula"] - 1) < 5 / math.sqrt(2 * 2000)
        ratios.append(float(re.search(r"local error ([\d.,]+)×", view.last_summary).group(1).replace(",", "")))
    # √n gap: 100× more users → about 10× larger ratio of local to central error
    assert 9 < ratios[1] / ratios[0] < 11 and 9 < ratios[2] / ratios[1] < 11


def test_nb03_small_epsilon_and_n_leave_the_unit_interval(nb03):
    view = nb03["view"]
    view.controls["num_users"].value = 100.0
    view.controls["epsilon"].value = 0.1
    outside = int(re.search(r"(\d+)% outside", view.last_summary).group(1))
    assert outside > 20


def test_nb03_render_is_pure(nb03):
    render = nb03["render_survey"]
    assert render(epsilon=0.5, num_users=300.0)[1] == render(epsilon=0.5, num_users=300.0)[1]


def test_nb03_reused_figure_keeps_no_state_between_renders(nb03):
    # render_survey moves the artists of one figure: a setting drawn again after another one
    # (here one that shows the 0 and 1 lines) must give the very same image as the first time.
    from dpfl_course.plotting import to_png

    render = nb03["render_survey"]
    first = to_png(render(epsilon=1.0, num_users=1000.0)[0])
    to_png(render(epsilon=0.1, num_users=100.0)[0])
    assert to_png(render(epsilon=1.0, num_users=1000.0)[0]) == first
