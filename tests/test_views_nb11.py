"""Notebook 11's live view, driven as a learner would: in both modes every corner of its sliders
renders and changes the figure; every single step of every control changes the figure and the
summary; the summary states n, d, t and what the server learned (or why it learned nothing)."""

import re

import ipywidgets
import pytest

from dpfl_course.testing import gray_corners, live_notebook, set_controls, slider_range

SECURE = re.compile(r"n = (?P<n>\d+) clients, d = (?P<d>\d+) dropped, t = (?P<t>\d+), secure aggregation: "
                    r"the server sees (?P<seen>\d+) masked uploads \(largest \|correlation\| with an update "
                    r"(?P<corr>[\d.]+)\), rebuilds (?P<seeds>\d+) self-mask seeds and (?P<keys>\d+) private keys, "
                    r"and learns only the sum of (?P<summed>\d+) updates \(error (?P<error>[\d.e+-]+)\)")


@pytest.fixture(scope="module")
def nb11():
    with live_notebook("11_secure_aggregation.ipynb") as namespace:
        yield namespace



def test_nb11_view_renders_every_corner_in_both_modes(nb11):
    view = nb11["view"]
    assert set(view.controls) == {"num_clients", "dropouts", "threshold", "secure"}
    assert isinstance(view.controls["secure"], ipywidgets.Checkbox)  # an on/off switch, not a dropdown
    assert slider_range(view.controls["secure"]) == (False, True)
    images = set()
    # gray order: one control changes per corner, so each corner is one redraw (the checkbox included)
    for corner in gray_corners([slider_range(c) for c in view.controls.values()]):
        for control, value in zip(view.controls.values(), corner):
            control.value = value
        assert view.last_error is None, (dict(zip(view.controls, corner)), view.last_error)
        images.add(view.image.value)
    assert len(images) == 2 * 8, "every mode and corner is a different setting and should draw a different figure"


def test_nb11_every_step_of_every_control_changes_figure_and_summary(nb11):
    # What the browser suite does: from the defaults, each slider one step right then left, the checkbox.
    view = nb11["view"]
    set_controls(view, secure=True, num_clients=8, dropouts=2, threshold=5)
    for name in ["num_clients", "dropouts", "threshold"]:
        control = view.controls[name]
        for value in (control.value + 1, control.value):
            before = (view.image.value, view.last_summary)
            set_controls(view, **{name: value})
            assert view.image.value != before[0] and view.last_summary != before[1], (name, value)
    before = (view.image.value, view.last_summary)
    set_controls(view, secure=False)  # the checkbox, unticked
    assert view.image.value != before[0] and view.last_summary != before[1]


def test_nb11_secure_summary_counts_uploads_and_revealed_secrets(nb11):
    view = nb11["view"]
    text = set_controls(view, secure=True, num_clients=10, dropouts=3, threshold=6)
    m = SECURE.fullmatch(text)
    assert m, text
    got = {k: float(v) for k, v in m.groupdict().items()}
    assert (got["n"], got["d"], got["t"]) == (10, 3, 6)
    assert got["seen"] == got["seeds"] == got["summed"] == 7 and got["keys"] == 3  # never both secrets of one client
    # 650 coordinates: a masked upload's correlation with its update has standard error 1/√650 ≈ 0.04
    assert got["corr"] < 0.25
    assert got["error"] <= 10 / (2 * 2**16)  # fixed-point rounding of at most n values per coordinate


def test_nb11_too_few_survivors_is_a_message_not_an_error(nb11):
    view = nb11["view"]
    text = set_controls(view, secure=True, num_clients=8, dropouts=5, threshold=5)
    assert view.last_error is None
    assert text.startswith("n = 8 clients, d = 5 dropped, t = 5, secure aggregation: 3 survivors < t = 5")
    assert text.endswith("the server learns nothing")
    text = set_controls(view, num_clients=3, dropouts=0, threshold=12)
    assert "t = 12 > n = 3" in text and view.last_error is None


def test_nb11_plain_mode_reveals_every_update(nb11):
    view = nb11["view"]
    text = set_controls(view, secure=False, num_clients=12, dropouts=4, threshold=5)
    assert text == ("n = 12 clients, d = 4 dropped, t = 5, plain FedAvg (no secure aggregation): "
                    "the server reads all 8 uploaded updates in plaintext, and their sum")


def test_nb11_render_is_pure_and_fast_enough(nb11):
    import time

    render = nb11["render_server_view"]
    (_, first), (_, second) = (render(num_clients=9, dropouts=3, threshold=4, secure=True) for _ in range(2))
    assert first == second
    start = time.perf_counter()
    render(num_clients=12, dropouts=6, threshold=6, secure=True)
    assert time.perf_counter() - start < 2.0  # target ≤ 1 s; 2 s leaves room for a loaded shared machine
