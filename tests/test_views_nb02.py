"""Notebook 02's live views, driven as a learner would: every corner of their sliders renders and
changes the figure, and the summaries follow the controls (noise per query, the attack)."""

import re

import pytest

from dpfl_course import dp
from dpfl_course.testing import drive_corners, live_notebook


@pytest.fixture(scope="module")
def nb02():
    with live_notebook("02_gaussian_composition.ipynb") as namespace:
        yield namespace


def sigmas_in(summary):
    return {rule: float(value) for rule, value in
            re.findall(r"(basic|advanced|RDP|exact) ([0-9.e+]+)", summary)}


def test_nb02_noise_view_renders_every_corner(nb02):
    view = nb02["view"]
    assert set(view.controls) == {"epsilon", "delta", "num_queries"}
    assert len(drive_corners(view)) == 8, "every corner should draw a different figure"


def test_nb02_noise_summary_is_the_package_answer(nb02):
    view = nb02["view"]
    view.controls["epsilon"].value = 1.0
    view.controls["delta"].value = 1e-5
    view.controls["num_queries"].value = 200
    shown = sigmas_in(view.last_summary)
    assert set(shown) == {"basic", "advanced", "RDP", "exact"}
    for rule, name in [("basic", "basic"), ("advanced", "advanced"), ("rdp", "RDP"), ("exact", "exact")]:
        want = dp.gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=200, composition=rule)
        assert shown[name] == pytest.approx(want, rel=5e-3)  # printed with 3 significant digits
    few = sigmas_in(view.last_summary)
    view.controls["num_queries"].value = 1000
    many = sigmas_in(view.last_summary)
    assert all(many[name] > few[name] for name in few)
    assert "k = 1000 queries" in view.last_summary


def test_nb02_attack_view_renders_every_corner(nb02):
    view = nb02["attack_view"]
    assert set(view.controls) == {"epsilon", "releases"}
    assert len(drive_corners(view)) == 4


def test_nb02_attack_summary_follows_epsilon(nb02):
    view = nb02["attack_view"]
    view.controls["releases"].value = 4000
    view.controls["epsilon"].value = 0.5
    assert "breaks the ε-DP limit 62.2%" in view.last_summary
    view.controls["epsilon"].value = view.controls["epsilon"].base ** view.controls["epsilon"].max  # ε ≈ 5
    assert "stays within" in view.last_summary


def test_nb02_renders_are_pure(nb02):
    for render, kwargs in [(nb02["render_noise_per_query"], dict(epsilon=0.5, delta=1e-6, num_queries=30)),
                           (nb02["render_attack"], dict(epsilon=0.3, releases=400))]:
        (_, first), (_, second) = render(**kwargs), render(**kwargs)
        assert first == second


def test_nb02_reused_noise_figure_keeps_no_state_between_renders(nb02):
    # render_noise_per_query moves the artists of one figure (and rescales its y axis): a setting
    # drawn again after a very different one must give the very same image as the first time.
    from dpfl_course.plotting import to_png

    render = nb02["render_noise_per_query"]
    first = to_png(render(epsilon=1.0, delta=1e-5, num_queries=50)[0])
    to_png(render(epsilon=10.0, delta=1e-3, num_queries=1)[0])
    assert to_png(render(epsilon=1.0, delta=1e-5, num_queries=50)[0]) == first
