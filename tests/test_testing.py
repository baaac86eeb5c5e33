"""The helpers the view tests and benchmarks rely on: they must fail when a view fails."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from dpfl_course import widgets  # noqa: E402
from dpfl_course.testing import drive_corners, slider_range  # noqa: E402


def make_view(monkeypatch, broken_at=None):
    monkeypatch.setenv("DPFL_STATIC_WIDGETS", "0")

    def render(k, alpha):
        if k == broken_at:
            raise ValueError("cannot draw this corner")
        fig = Figure(figsize=(2, 1))
        fig.add_subplot().set_title(f"{k} {alpha:.2g}")
        return fig

    return widgets.LiveView(render, {"k": widgets.int_slider("k", 2, 1, 5),
                                     "alpha": widgets.log_slider("α", 1.0, -1, 1)})


def test_drive_corners_visits_every_corner_and_collects_distinct_images(monkeypatch):
    view = make_view(monkeypatch)
    assert slider_range(view.controls["alpha"]) == pytest.approx((0.1, 10.0))
    assert len(drive_corners(view)) == 4


def test_drive_corners_fails_on_a_render_error_and_names_the_corner(monkeypatch):
    view = make_view(monkeypatch, broken_at=5)
    with pytest.raises(AssertionError, match="'k': 5"):
        drive_corners(view)
    assert os.environ["DPFL_STATIC_WIDGETS"] == "0"


def test_checkboxes_and_dropdowns_have_ranges_and_corners(monkeypatch):
    monkeypatch.setenv("DPFL_STATIC_WIDGETS", "0")

    def render(k, bug, mode):
        fig = Figure(figsize=(2, 1))
        fig.add_subplot().set_title(f"{k} {bug} {mode}")
        return fig

    view = widgets.LiveView(render, {
        "k": widgets.int_slider("k", 2, 1, 5),
        "bug": widgets.checkbox("bug"),
        "mode": widgets.dropdown("mode", [("first", "a"), ("middle", "b"), ("last", "c")], "b")})
    assert slider_range(view.controls["bug"]) == (False, True)
    assert slider_range(view.controls["mode"]) == ("a", "c")  # the option values, not their labels
    assert slider_range(widgets.dropdown("plain", ["x", "y", "z"])) == ("x", "z")
    assert slider_range(view.controls["k"]) == (1, 5)  # sliders unchanged
    assert len(drive_corners(view)) == 8
