"""Notebook 04's live view, driven as a learner would: every corner of its sliders renders and
changes the figure, and the summary follows the controls (clients per round, megabytes, accuracy)."""

import pytest

from dpfl_course.testing import drive_corners, live_notebook, number_before, set_controls


@pytest.fixture(scope="module")
def nb04():
    with live_notebook("04_fedavg_from_scratch.ipynb") as namespace:
        yield namespace


def test_nb04_view_renders_every_corner_of_its_sliders(nb04):
    view = nb04["view"]
    assert set(view.controls) == {"num_clients", "fraction", "local_epochs"}
    images = drive_corners(view)
    assert len(images) == 8, "every corner is a different setting and should draw a different figure"


def test_nb04_summary_counts_clients_and_megabytes(nb04):
    view = nb04["view"]
    rounds, model_bytes = nb04["demo_rounds"], nb04["model_bytes"]
    assert model_bytes == 650 * 4  # logistic regression 64 → 10 in float32
    text = set_controls(view, local_epochs=1, num_clients=100, fraction=1.0)
    assert text.startswith("100 of 100 clients per round, E = 1")
    # every selected client downloads and uploads the model once per round (no dropout here)
    assert number_before(text, "MB communicated") == pytest.approx(2 * 100 * model_bytes * rounds / 1e6, abs=0.006)
    text = set_controls(view, fraction=0.1)
    assert text.startswith("10 of 100 clients per round")
    assert number_before(text, "MB communicated") == pytest.approx(2 * 10 * model_bytes * rounds / 1e6, abs=0.006)
    text = set_controls(view, num_clients=5)  # floor(0.1 × 5) = 0 → at least one client
    assert text.startswith("1 of 5 clients per round")


def test_nb04_more_local_epochs_learn_more_per_round(nb04):
    # FedAvg's lesson on IID clients: with the same rounds (same communication), E = 5 ends higher
    view = nb04["view"]
    one = number_before(set_controls(view, num_clients=10, fraction=1.0, local_epochs=1), "% after")
    five = number_before(set_controls(view, local_epochs=5), "% after")
    assert five > one
    centralised = 100 * nb04["centralised_accuracy"]
    assert f"centralised {centralised:.1f} %" in view.last_summary


def test_nb04_render_is_pure(nb04):
    render = nb04["render_fedavg"]
    (_, first), (_, second) = (render(num_clients=20, fraction=0.3, local_epochs=2) for _ in range(2))
    assert first == second
