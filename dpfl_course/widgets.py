"""The one way a notebook builds a live view: controls bound to a pure function that draws.

A *render* function takes the controls' values as keyword arguments and returns a
:class:`matplotlib.figure.Figure`, or ``(figure, summary)`` with a short text summary. It is a
plain function, tested without any widget. :class:`LiveView` binds controls to it:

    view = widgets.LiveView(render, {"num_clients": widgets.int_slider("clients K", 10, 2, 50)})
    view          # last line of a cell: shows the controls, the figure and the summary

Every control change redraws the figure into an image widget. A render that raises shows its
message in the summary line (never a traceback) and keeps the last good figure. Callbacks never
print.

With the environment variable ``DPFL_STATIC_WIDGETS=1`` (set by the test run and when notebooks
are saved) a view renders its defaults once as a plain image and text: the committed notebook
then has stable outputs for nbval, and readers on GitHub or nbviewer still see a figure.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Mapping

import ipywidgets as W
from matplotlib.figure import Figure

from dpfl_course import plotting

STATIC_ENV = "DPFL_STATIC_WIDGETS"


def static_mode() -> bool:
    """True when views should render once, statically (``DPFL_STATIC_WIDGETS=1``)."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# Control factories: bounded ranges (a slider cannot leave them), readable labels, and
# ``continuous_update=False`` so a drag redraws once on release instead of queueing redraws.
_STYLE = {"description_width": "initial"}
_LAYOUT = {"width": "340px"}


def _check_bounds(value, low, high, step):
    # ipywidgets would silently clamp a default outside its range; a notebook bug should be loud.
    if not low < high:
        raise ValueError(f"min must be below max, got min={low}, max={high}")
    if not low <= value <= high:
        raise ValueError(f"value must be in [min, max] = [{low}, {high}], got {value}")
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")


def int_slider(description: str, value: int, min: int, max: int, step: int = 1) -> W.IntSlider:
    """An integer slider in [min, max]."""
    _check_bounds(value, min, max, step)
    return W.IntSlider(value=value, min=min, max=max, step=step, description=description,
                       continuous_update=False, style=_STYLE, layout=W.Layout(**_LAYOUT))


def float_slider(description: str, value: float, min: float, max: float, step: float,
                 readout_format: str = ".2f") -> W.FloatSlider:
    """A float slider in [min, max]."""
    _check_bounds(value, min, max, step)
    return W.FloatSlider(value=value, min=min, max=max, step=step, description=description,
                         readout_format=readout_format, continuous_update=False,
                         style=_STYLE, layout=W.Layout(**_LAYOUT))


def log_slider(description: str, value: float, min_exp: float, max_exp: float,
               step: float = 0.1, readout_format: str = ".3g") -> W.FloatLogSlider:
    """A slider over 10**min_exp .. 10**max_exp, for ε, α and other scale parameters."""
    _check_bounds(value, 10.0 ** min_exp, 10.0 ** max_exp, step)
    return W.FloatLogSlider(value=value, base=10, min=min_exp, max=max_exp, step=step,
                            description=description, readout_format=readout_format,
                            continuous_update=False, style=_STYLE, layout=W.Layout(**_LAYOUT))


def dropdown(description: str, options, value=None) -> W.Dropdown:
    """A choice among options (a list, or (label, value) pairs)."""
    d = W.Dropdown(options=options, description=description, style=_STYLE, layout=W.Layout(**_LAYOUT))
    if value is not None:
        d.value = value
    return d


def checkbox(description: str, value: bool = False) -> W.Checkbox:
    """An on/off switch (a planted bug, a defence switched on)."""
    if not isinstance(value, bool):
        raise ValueError(f"value must be True or False, got {value!r}")
    return W.Checkbox(value=value, description=description, indent=False, style=_STYLE,
                      layout=W.Layout(**_LAYOUT))


class LiveView:
    """Controls bound to a render function; redraws on every change.

    Args:
        render: ``render(**values) -> Figure | (Figure, str)``, a pure function of the controls.
        controls: mapping from the render function's keyword names to ipywidgets controls.
        static_note: the line shown above a static render (words a translation can replace);
            ``{values}`` is filled with the defaults.
        error_prefix: the words before a render error's message.
        switch_words: how the static note shows a checkbox that is (off, on).
        dpi: resolution of the drawn image.

    Attributes:
        image: the ``ipywidgets.Image`` holding the last figure as PNG.
        summary: the ``ipywidgets.HTML`` line under the figure.
        render_count: how many successful renders so far.
        last_error: the exception of the last failed render, or None after a success.
        last_seconds: wall time of the last render (for benchmarks).
    """

    def __init__(self, render: Callable[..., Figure | tuple[Figure, str]],
                 controls: Mapping[str, W.ValueWidget], *,
                 static_note: str = "Static view of the defaults ({values}). "
                                    "Run the notebook in JupyterLab to move the controls.",
                 error_prefix: str = "Cannot draw this setting:", switch_words: tuple[str, str] = ("off", "on"),
                 dpi: int = 90):
        if not callable(render):
            raise ValueError("render must be a callable returning a Figure or (Figure, str)")
        if not controls:
            raise ValueError("controls must name at least one control")
        self.render = render
        self.controls = dict(controls)
        self.static_note = static_note
        self.error_prefix = error_prefix
        self.switch_words = tuple(switch_words)
        self.dpi = dpi
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.summary = W.HTML()
        self.render_count = 0
        self.last_error: Exception | None = None
        self.last_seconds = float("nan")
        self.last_summary = ""
        self._static = static_mode()
        if not self._static:
            for control in self.controls.values():
                control.observe(self._on_change, names="value")
            self.refresh()

    def values(self) -> dict:
        """The controls' current values, by keyword name."""
        return {name: control.value for name, control in self.controls.items()}

    def draw(self) -> tuple[Figure, str]:
        """Call the render function on the current values; return (figure, summary)."""
        result = self.render(**self.values())
        fig, text = result if isinstance(result, tuple) else (result, "")
        if not isinstance(fig, Figure):
            raise TypeError(f"render must return a matplotlib Figure, got {type(fig).__name__}")
        return fig, str(text)

    def refresh(self) -> bool:
        """Redraw now; return True on success. Errors go to the summary line, never raised."""
        start = time.perf_counter()
        try:
            fig, text = self.draw()
            png = plotting.to_png(fig, dpi=self.dpi)
        except Exception as error:  # a widget never shows a traceback
            self.last_error = error
            self.summary.value = (f'<span style="color:#B2182B"><b>{html.escape(self.error_prefix)}</b> '
                                  f"{html.escape(str(error))}</span>")
            return False
        self.image.value = png
        self.last_summary = text
        self.summary.value = f"<pre style='margin:0'>{html.escape(text)}</pre>" if text else ""
        self.last_error = None
        self.render_count += 1
        self.last_seconds = time.perf_counter() - start
        return True

    def _on_change(self, change) -> None:
        self.refresh()

    @property
    def widget(self) -> W.Widget:
        """The whole view as one ipywidgets box (controls, figure, summary)."""
        controls = W.Box(list(self.controls.values()),
                         layout=W.Layout(display="flex", flex_flow="row wrap"))
        return W.VBox([controls, self.image, self.summary])

    def _format_defaults(self) -> str:
        """The controls' defaults as a learner reads them: a dropdown's label (not its value), whole
        numbers without a decimal point, small numbers as 1e-5 (not 1e-05), a checkbox as off/on
        (``switch_words``)."""
        parts = []
        for name, control in self.controls.items():
            value = control.value
            label = control.description or name
            if getattr(control, "label", None) is not None and hasattr(control, "options"):
                shown = control.label  # the option's text ("central DP (user level)"), not its key
            elif isinstance(value, bool):
                shown = self.switch_words[value]
            elif isinstance(value, float):
                shown = _format_number(value)
            else:
                shown = value
            parts.append(f"{label} = {shown}")
        return ", ".join(parts)

    def _ipython_display_(self):
        from IPython.display import Image, display

        if not self._static:
            display(self.widget)
            return
        # Static: one plain render of the defaults; errors would be a bug in the notebook.
        fig, text = self.draw()
        print(self.static_note.format(values=self._format_defaults()))
        display(Image(plotting.to_png(fig, dpi=self.dpi)))
        if text:
            print(text)


def _format_number(value: float) -> str:
    """A control's number for the static note: 3 significant digits, whole numbers as integers,
    exponents without padding.

    >>> _format_number(1000.0), _format_number(0.3), _format_number(1e-05), _format_number(12345.0)
    ('1000', '0.3', '1e-5', '12345')
    """
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    text = f"{value:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text
