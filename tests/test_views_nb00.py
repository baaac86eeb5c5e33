"""Notebook 00's live view, driven as a learner would: every corner of every slider range
renders without an error and changes the figure, and the summary follows the controls."""

import pytest

from dpfl_course.testing import drive_corners, live_notebook


@pytest.fixture(scope="module")
def nb00():
    with live_notebook("00_welcome.ipynb") as namespace:
        yield namespace


def test_nb00_view_renders_every_corner_of_its_sliders(nb00):
    view = nb00["view"]
    assert set(view.controls) == {"num_clients", "alpha", "seed"}
    assert len(drive_corners(view)) >= 6, "moving the sliders should change the figure"


def test_nb00_view_summary_follows_the_controls(nb00):
    view = nb00["view"]
    view.controls["seed"].value = 0
    view.controls["num_clients"].value = 20
    view.controls["alpha"].value = 100.0
    iid_like = view.last_summary
    view.controls["alpha"].value = 0.01
    skewed = view.last_summary
    assert "of 10 digits per client" in iid_like and iid_like != skewed
    digits = lambda text: float(text.split(" of 10 digits")[0].split("·")[-1])
    assert digits(iid_like) > 9 and digits(skewed) < 3
