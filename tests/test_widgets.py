"""The widget pattern, tested the way the jupyter-widgets tutorial suggests: set control values
in code and check the view followed."""

import pytest

from dpfl_course import plotting, widgets


def render_line(slope, label="line"):
    if slope < 0:
        raise ValueError(f"slope must be >= 0, got {slope}")
    fig, ax = plotting.figure(size="small")
    ax.plot([0, 1], [0, slope], label=label)
    ax.set_ylim(-1, 5)
    return fig, f"slope = {slope:.1f}"


@pytest.fixture
def live(monkeypatch):
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)


def make_view():
    return widgets.LiveView(render_line, {"slope": widgets.float_slider("slope", 1.0, -2.0, 4.0, 0.5)})


def test_view_renders_defaults_at_once(live):
    view = make_view()
    assert view.render_count == 1
    assert view.image.value[:4] == b"\x89PNG"
    assert "slope = 1.0" in view.summary.value


def test_changing_a_control_redraws_without_printing(live, capsys):
    view = make_view()
    before = view.image.value
    view.controls["slope"].value = 3.0
    assert view.render_count == 2
    assert view.image.value != before
    assert "slope = 3.0" in view.summary.value and view.last_summary == "slope = 3.0"
    assert view.last_seconds > 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_a_failing_render_shows_its_message_not_a_traceback(live, capsys):
    view = make_view()
    good = view.image.value
    view.controls["slope"].value = -1.0
    assert isinstance(view.last_error, ValueError)
    assert "Cannot draw this setting" in view.summary.value
    assert "slope must be &gt;= 0" in view.summary.value
    assert "Traceback" not in view.summary.value
    assert view.image.value == good, "the last good figure stays"
    assert capsys.readouterr().out == ""
    view.controls["slope"].value = 2.0  # recovers
    assert view.last_error is None and "slope = 2.0" in view.summary.value


def test_sliders_are_bounded():
    s = widgets.int_slider("clients K", 10, 2, 50)
    s.value = 1000
    assert s.value == 50
    log = widgets.log_slider("alpha", 0.5, -2, 2)
    log.value = 1e9
    assert log.value == pytest.approx(100)


@pytest.mark.parametrize("make, message", [
    (lambda: widgets.int_slider("K", 60, 2, 50), "value must be in"),
    (lambda: widgets.int_slider("K", 5, 50, 2), "min must be below max"),
    (lambda: widgets.float_slider("x", 0.5, 0, 1, 0), "step must be > 0"),
    (lambda: widgets.log_slider("alpha", 1000, -2, 2), "value must be in"),
])
def test_slider_factories_reject_defaults_outside_their_range(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_widget_box_holds_controls_image_and_summary(live):
    view = make_view()
    box = view.widget
    assert view.image in box.children and view.summary in box.children


def test_static_mode_renders_once_as_plain_output(monkeypatch, capsys):
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    view = make_view()
    assert view.render_count == 0, "no live rendering in static mode"
    view._ipython_display_()
    out = capsys.readouterr().out
    assert "Static view of the defaults (slope = 1)" in out
    assert "slope = 1.0" in out


def test_static_note_is_replaceable_for_translations(monkeypatch, capsys):
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    view = widgets.LiveView(render_line, {"slope": widgets.float_slider("斜率", 1.0, 0, 4, 0.5)},
                            static_note="静态视图（{values}）")
    view._ipython_display_()
    assert "静态视图（斜率 = 1）" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [None, {}])
def test_view_rejects_missing_pieces(bad, live):
    with pytest.raises(ValueError):
        widgets.LiveView(render_line if bad is not None else None, bad or {})


def test_render_must_return_a_figure(live):
    view = widgets.LiveView(lambda slope: "not a figure", {"slope": widgets.float_slider("s", 1, 0, 2, 1)})
    assert isinstance(view.last_error, TypeError)


def test_checkbox_is_a_house_control_and_the_static_note_says_off_or_on(monkeypatch, capsys):
    box = widgets.checkbox("bug planted", True)
    assert box.value is True and box.description == "bug planted" and box.indent is False
    assert box.layout.width == "340px" and box.style.description_width == "initial"
    with pytest.raises(ValueError, match="value"):
        widgets.checkbox("bug planted", 1)
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    controls = {"slope": widgets.float_slider("slope", 1.0, 0, 4, 0.5), "label": widgets.checkbox("bug", False)}
    widgets.LiveView(lambda slope, label: render_line(slope), controls)._ipython_display_()
    assert "(slope = 1, bug = off)" in capsys.readouterr().out  # not the Python bool "False"
    controls["label"].value = True
    widgets.LiveView(lambda slope, label: render_line(slope), controls, static_note="静态（{values}）",
                     switch_words=("关", "开"))._ipython_display_()
    assert "静态（slope = 1, bug = 开）" in capsys.readouterr().out
