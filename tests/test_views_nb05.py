"""Notebook 05's live view, driven as a learner would: every corner of its sliders renders and
changes the figure, and the summary follows the controls (accuracy vs the IID reference, the
clients that dropped, the label distance)."""

import re

import pytest

from dpfl_course import testing
from dpfl_course.testing import drive_corners, live_notebook

SUMMARY = re.compile(r"final accuracy (?P<acc>[\d.]+) % \(IID reference (?P<ref>[\d.]+) %\) · "
                     r"clients that dropped: (?P<dropped>\d+) of (?P<asked>\d+) asked · "
                     r"mean label distance to the global mix (?P<tv>[\d.]+)")


@pytest.fixture(scope="module")
def nb05():
    with live_notebook("05_heterogeneity.ipynb") as namespace:
        yield namespace


def parse(text):
    m = SUMMARY.fullmatch(text)
    assert m, f"summary not in the expected shape: {text!r}"
    return {k: float(v) for k, v in m.groupdict().items()}


def set_controls(view, **values):
    return parse(testing.set_controls(view, **values))


def test_nb05_view_renders_every_corner_of_its_sliders(nb05):
    view = nb05["view"]
    assert set(view.controls) == {"alpha", "num_clients", "dropout"}
    images = drive_corners(view)
    parse(view.last_summary)  # the last corner's summary has the expected shape too
    assert len(images) == 8, "moving the sliders should change the figure"


def test_nb05_summary_follows_skew_and_dropout(nb05):
    view = nb05["view"]
    rounds = nb05["DEMO_ROUNDS"]
    near_iid = set_controls(view, num_clients=10, dropout=0.0, alpha=100.0)
    assert near_iid["dropped"] == 0 and near_iid["asked"] == 10 * rounds
    assert near_iid["tv"] < 0.15
    # α = 100 is nearly IID: it should learn about as well as the IID reference (same K, no dropout)
    assert abs(near_iid["acc"] - near_iid["ref"]) < 5  # percentage points
    skewed = set_controls(view, alpha=0.01)
    assert skewed["tv"] > 0.7 and skewed["ref"] == near_iid["ref"]  # the reference depends on K only
    assert skewed["acc"] < near_iid["acc"] - 10  # strong label skew costs accuracy (percentage points)
    half = set_controls(view, dropout=0.5)
    # 150 independent dropouts with p = 0.5: standard deviation √(150/4) ≈ 6.1; 5 of them is ±31
    assert abs(half["dropped"] - 75) <= 31 and half["asked"] == 10 * rounds
    more = set_controls(view, num_clients=50)
    assert more["asked"] == 50 * rounds and more["ref"] != near_iid["ref"]


def test_nb05_render_is_pure(nb05):
    render = nb05["render_heterogeneity"]
    (_, first), (_, second) = (render(alpha=0.3, num_clients=15, dropout=0.3) for _ in range(2))
    assert first == second
