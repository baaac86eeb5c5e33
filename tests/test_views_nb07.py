"""Notebook 07's live view, driven as a learner would: in every mode, every corner of its sliders
renders and changes the figure, and the summary follows the controls (the ε spent meets the target,
the server noise is z·S/(qW), and the number of clients moves the two kinds of DP in opposite ways)."""

import re

import pytest

from dpfl_course import dp
from dpfl_course.testing import gray_corners, live_notebook, number_before, set_controls, slider_range


@pytest.fixture(scope="module")
def nb07():
    with live_notebook("07_dp_federated_learning.ipynb") as namespace:
        yield namespace



def test_nb07_view_renders_every_corner_of_its_sliders_in_every_mode(nb07):
    # Every mode with every corner of the sliders (drive_corners would take only the first and last mode).
    view = nb07["view"]
    assert set(view.controls) == {"mode", "target_epsilon", "clip_norm", "num_clients"}
    sliders = {name: control for name, control in view.controls.items() if name != "mode"}
    modes = [value for _, value in view.controls["mode"].options]
    assert modes == ["local", "central", "adaptive"]
    images = set()
    for mode in modes:
        view.controls["mode"].value = mode
        for corner in gray_corners([slider_range(c) for c in sliders.values()]):
            for control, value in zip(sliders.values(), corner):
                control.value = value
            assert view.last_error is None, (mode, dict(zip(sliders, corner)), view.last_error)
            images.add(view.image.value)
    assert len(images) == 3 * 8, "every mode and corner is a different setting and should draw a different figure"


def test_nb07_central_summary_meets_the_target_and_states_the_server_noise(nb07):
    view = nb07["view"]
    text = set_controls(view, mode="central", num_clients=100, clip_norm=1.0, target_epsilon=4.0)
    assert text.startswith("DP-FedAvg (user level), 100 clients")
    spent = number_before(text, "(target 4)")
    assert 4.0 * (1 - 2e-3) <= spent <= 4.0 + 5e-3  # calibrated to within 0.1 %, printed with 2 decimals
    z = dp.noise_multiplier_for(target_epsilon=4.0, sample_rate=1.0, steps=nb07["NUM_ROUNDS"], delta=1e-5)
    std = float(re.search(r"z·S/\(qW\) = ([\d.]+)", text).group(1))
    assert std == pytest.approx(z * 1.0 / 100, abs=6e-5)  # every client each round: qW = K = 100
    text = set_controls(view, clip_norm=10.0)
    assert float(re.search(r"z·S/\(qW\) = ([\d.]+)", text).group(1)) == pytest.approx(z * 10.0 / 100, abs=6e-4)


def test_nb07_local_summary_reports_every_clients_epsilon_below_the_target(nb07):
    view = nb07["view"]
    text = set_controls(view, mode="local", num_clients=10, clip_norm=1.0, target_epsilon=2.0)
    assert text.startswith("local DP-SGD (record level), 10 clients")
    low, high = map(float, re.search(r"record-level ε ([\d.]+)–([\d.]+) per client", text).groups())
    assert low <= high <= 2.0 + 5e-3  # the worst client meets the target
    assert high >= 2.0 * (1 - 2e-3) - 5e-3  # ... and σ is not larger than it needs to be


def test_nb07_more_clients_help_user_level_and_hurt_record_level_dp(nb07):
    # The notebook's lesson, read from the summary: same ε, K = 10 against K = 100.
    view = nb07["view"]
    set_controls(view, clip_norm=1.0, target_epsilon=4.0)
    accuracy = {}
    for mode in ["central", "local"]:
        for k in [10, 100]:
            accuracy[mode, k] = number_before(set_controls(view, mode=mode, num_clients=k), "% after")
    assert accuracy["central", 100] > accuracy["central", 10] + 20
    assert accuracy["local", 10] > accuracy["local", 100] + 10


def test_nb07_adaptive_summary_follows_the_initial_clip(nb07):
    view = nb07["view"]
    text = set_controls(view, mode="adaptive", num_clients=100, target_epsilon=8.0, clip_norm=0.1)
    start, end = map(float, re.search(r"clip ([\d.]+) → ([\d.]+)", text).groups())
    assert start == pytest.approx(0.1) and end > start  # update norms are near 1: the clip grows
    text = set_controls(view, clip_norm=10.0)
    start, end = map(float, re.search(r"clip ([\d.]+) → ([\d.]+)", text).groups())
    assert start == pytest.approx(10.0) and end < start


def test_nb07_render_is_pure(nb07):
    render = nb07["render_dp_fl"]
    (_, first), (_, second) = (render(mode="central", target_epsilon=2.0, clip_norm=0.5, num_clients=30)
                               for _ in range(2))
    assert first == second
