import numpy as np
import pytest
from matplotlib.colors import to_rgb

from dpfl_course import plotting


def test_palettes_are_distinct_and_class_palette_covers_ten_classes():
    assert len(set(plotting.CLASS_COLORS)) == 10
    assert len(set(plotting.OKABE_ITO)) == 8
    for c in plotting.CLASS_COLORS + plotting.OKABE_ITO:
        to_rgb(c)


def test_figure_sizes_and_style_does_not_leak():
    import matplotlib

    before = matplotlib.rcParams["font.size"]
    fig, axes = plotting.figure(1, 2, size=(6, 3))
    assert fig.get_size_inches().tolist() == [6, 3] and len(axes) == 2
    assert matplotlib.rcParams["font.size"] == before
    with pytest.raises(ValueError, match="size"):
        plotting.figure(size="huge")


def test_fixed_layout_uses_the_given_margins():
    fig, ax = plotting.figure(layout="fixed", margins={"right": 0.8})
    assert fig.get_layout_engine() is None
    assert ax.get_position().x1 == pytest.approx(0.8)
    with pytest.raises(ValueError, match="layout"):
        plotting.figure(layout="tight")
    with pytest.raises(ValueError, match="margins"):
        plotting.figure(layout="fixed", margins={"middle": 0.5})


def test_client_label_bars_stack_to_client_sizes():
    counts = np.array([[3, 0, 1], [0, 5, 0]])
    fig, ax = plotting.figure()
    plotting.plot_client_labels(ax, counts, class_names=["a", "b", "c"], title="t")
    (bars,) = ax.collections
    tops = {}
    for path in bars.get_paths():
        (x0, y0), (x1, y1) = path.vertices.min(0), path.vertices.max(0)
        assert 0.8 < x1 - x0 < 0.9  # bar width
        client = round((x0 + x1) / 2)
        tops[client] = max(tops.get(client, 0), y1)
    assert len(bars.get_paths()) == 3, "one rectangle per non-zero count"
    assert ax.get_xlabel() == "client" and ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert plotting.to_png(fig)[:4] == b"\x89PNG"


def test_client_label_bars_reject_bad_counts():
    fig, ax = plotting.figure()
    with pytest.raises(ValueError, match="counts"):
        plotting.plot_client_labels(ax, np.arange(3))
