"""The notebooks' live views, driven as a learner would: every corner of every slider range
renders without an error and changes the figure."""

import itertools

import pytest

from dpfl_course.testing import notebook_namespace


@pytest.fixture(scope="module")
def nb00():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DPFL_STATIC_WIDGETS", "0")
        yield notebook_namespace("00_welcome.ipynb", live=True)


def test_nb00_view_renders_every_corner_of_its_sliders(nb00):
    view = nb00["view"]
    ranges = {name: (c.min, c.max) if not hasattr(c, "base") else (c.base ** c.min, c.base ** c.max)
              for name, c in view.controls.items()}
    assert set(ranges) == {"num_clients", "alpha", "seed"}
    images = set()
    for corner in itertools.product(*ranges.values()):
        for (name, control), value in zip(view.controls.items(), corner):
            control.value = value
        assert view.last_error is None, (corner, view.last_error)
        images.add(view.image.value)
    assert len(images) >= 6, "moving the sliders should change the figure"


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
