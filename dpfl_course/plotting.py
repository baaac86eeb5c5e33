"""One look for every figure of the course: colour-blind-safe colours, labelled axes, sizes
that stay readable on a projector.

Figures are made with :class:`matplotlib.figure.Figure` directly (not pyplot), so a widget can
redraw many times without filling pyplot's registry, and nothing global is changed on import.
Every word a learner reads (titles, labels) is an argument with an English default, so a
translated notebook can pass its own.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

import matplotlib
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies; for lines.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
# Paul Tol's "muted" scheme plus its pale grey: ten colour-blind-safe colours for ten classes.
CLASS_COLORS = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE",
                "#882255", "#44AA99", "#999933", "#AA4499", "#BBBBBB")

SIZES = {"wide": (9.0, 3.6), "square": (5.0, 4.5), "tall": (9.0, 6.0), "small": (4.5, 3.2)}

STYLE = {
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "image.cmap": "viridis",
}


@contextmanager
def course_style():
    """Apply the course look inside a ``with`` block (it does not leak into other code)."""
    with matplotlib.rc_context(STYLE):
        yield


# Margins for layout="fixed", as fractions of the figure (Figure.subplots_adjust's arguments).
FIXED_MARGINS = {"left": 0.08, "right": 0.97, "bottom": 0.15, "top": 0.9, "wspace": 0.25, "hspace": 0.35}


def figure(nrows: int = 1, ncols: int = 1, *, size="wide", layout: str = "constrained",
           margins: dict | None = None, **subplot_kw):
    """Create a figure and its axes in the course look.

    Args:
        nrows, ncols: the grid of axes.
        size: one of ``"wide"``, ``"square"``, ``"tall"``, ``"small"`` or a (width, height) in inches.
        layout: ``"constrained"`` fits labels automatically; ``"fixed"`` uses set margins and draws
            about 40 ms faster, which live views need (measured in benchmarks/).
        margins: with ``layout="fixed"``, overrides of :data:`FIXED_MARGINS` (e.g. ``right=0.86``
            to leave room for a legend outside the axes).
        **subplot_kw: passed to :meth:`Figure.subplots` (e.g. ``sharey=True``).

    Returns:
        ``(fig, axes)`` as :meth:`Figure.subplots` returns them.

    >>> fig, ax = figure()
    >>> fig.get_size_inches().tolist()
    [9.0, 3.6]
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)} or a (width, height) pair, got {size!r}")
        size = SIZES[size]
    if layout not in ("constrained", "fixed"):
        raise ValueError(f"layout must be 'constrained' or 'fixed', got {layout!r}")
    unknown = set(margins or {}) - set(FIXED_MARGINS)
    if unknown:
        raise ValueError(f"margins must use the keys {sorted(FIXED_MARGINS)}, got {sorted(unknown)}")
    with course_style():
        fig = Figure(figsize=size, layout="constrained" if layout == "constrained" else None)
        if layout == "fixed":
            fig.subplots_adjust(**{**FIXED_MARGINS, **(margins or {})})
        axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (what a widget's image shows).

    >>> fig, ax = figure(size="small")
    >>> to_png(fig)[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    with course_style():
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show(fig: Figure, *, dpi: int = 100):
    """Display a figure in the notebook as a PNG image."""
    from IPython.display import Image, display

    display(Image(to_png(fig, dpi=dpi)))


def plot_client_labels(ax, counts, *, class_names=None, title=None, xlabel="client",
                       ylabel="examples", legend_title="label", max_clients_labelled=15):
    """Stacked bars: how many examples of each label every client holds.

    Args:
        ax: the axes to draw on.
        counts: array (num_clients, num_classes), e.g. from :func:`dpfl_course.data.label_counts`.
        class_names: legend entries, one per class (default: 0, 1, 2, ...).
        title, xlabel, ylabel, legend_title: the words shown.
        max_clients_labelled: with more clients than this, tick labels are thinned out.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a 2-D array (num_clients, num_classes), got shape {counts.shape}")
    num_clients, num_classes = counts.shape
    names = [str(c) for c in (class_names if class_names is not None else range(num_classes))]
    # One PolyCollection instead of num_clients × num_classes bar patches: drawing 500 patches
    # took ~300 ms, far too slow for a live view; the collection draws in a few ms.
    tops = np.cumsum(counts, axis=1)
    bottoms = tops - counts
    client, cls = np.nonzero(counts)
    left, right = client - 0.425, client + 0.425
    low, high = bottoms[client, cls], tops[client, cls]
    verts = np.stack([np.stack([left, low], 1), np.stack([left, high], 1),
                      np.stack([right, high], 1), np.stack([right, low], 1)], axis=1)
    colors = [CLASS_COLORS[c % len(CLASS_COLORS)] for c in cls]
    ax.add_collection(PolyCollection(verts, facecolors=colors, linewidths=0, label="_bars"))
    ax.set_ylim(0, max(1, counts.sum(axis=1).max(initial=0)) * 1.04)
    x = np.arange(num_clients)
    step = max(1, int(np.ceil(num_clients / max_clients_labelled)))
    ax.set_xticks(x[::step])
    ax.set_xlim(-0.6, num_clients - 0.4)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if num_classes <= len(CLASS_COLORS):
        handles = [Patch(color=CLASS_COLORS[c], label=names[c]) for c in range(num_classes)]
        ax.legend(handles=handles, title=legend_title, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax
