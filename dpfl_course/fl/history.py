"""The history of a federated run: one row of metrics per round, a table and a plot."""

from __future__ import annotations

import math

from dpfl_course._validate import check_finite

__all__ = ["History"]


class History:
    """Per-round metrics of a run, one row (a dict) per round, in order.

    The simulation writes, for round 0 (the initial model, nothing communicated) and each round
    r >= 1: ``round``, ``clients_sampled``, ``clients_succeeded``, ``bytes_down`` (server to the
    sampled clients), ``bytes_up`` (survivors to the server), ``test_loss`` and ``test_accuracy``
    when test data were given, and the metrics the strategy's ``aggregate_fit`` returned (FedAvg:
    ``train_loss``). Bytes are the uncompressed parameter bytes times the number of clients.

    >>> h = History()
    >>> h.add(round=0, test_accuracy=0.1, bytes_up=0, bytes_down=0)
    >>> h.add(round=1, test_accuracy=0.5, bytes_up=100, bytes_down=200)
    >>> h["test_accuracy"]
    [0.1, 0.5]
    >>> h.cumulative("bytes_up")
    [0, 100]
    >>> print(h.table(["round", "test_accuracy"]))
    round  test_accuracy
        0          0.100
        1          0.500
    >>> h.rounds_to(0.5), h.rounds_to(0.9), h.bytes_to(0.5)
    (1, None, 300)
    """

    def __init__(self, rows: list[dict] | None = None):
        self.rows: list[dict] = [dict(r) for r in rows or []]

    def add(self, **metrics) -> None:
        """Append one round's metrics."""
        self.rows.append(dict(metrics))

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"History({len(self.rows)} rows: {', '.join(self.columns)})"

    @property
    def columns(self) -> list[str]:
        """Every metric name that appears in some row, in order of first appearance."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def __getitem__(self, name: str) -> list:
        """The values of metric ``name`` per row (NaN where a row lacks it)."""
        if name not in self.columns:
            raise KeyError(f"no metric {name!r} in this history; it has {self.columns}")
        return [row.get(name, math.nan) for row in self.rows]

    def cumulative(self, name: str) -> list:
        """Running total of metric ``name`` (e.g. bytes communicated so far)."""
        total, out = 0, []
        for v in self[name]:
            total += 0 if v is None or (isinstance(v, float) and math.isnan(v)) else v
            out.append(total)
        return out

    @property
    def total_bytes(self) -> list[int]:
        """Bytes communicated so far (both directions) after each row."""
        return [d + u for d, u in zip(self.cumulative("bytes_down"), self.cumulative("bytes_up"))]

    def last(self, name: str):
        """The value of ``name`` in the last row that has it."""
        for row in reversed(self.rows):
            if name in row:
                return row[name]
        raise KeyError(f"no metric {name!r} in this history; it has {self.columns}")

    def _first_row_reaching(self, target: float, column: str) -> int | None:
        """Index of the first row whose ``column`` is >= ``target`` (NaN never is), or None."""
        target = check_finite("target", target)
        for i, v in enumerate(self[column]):
            if v is not None and not (isinstance(v, float) and math.isnan(v)) and v >= target:
                return i
        return None

    def rounds_to(self, target: float, column: str = "test_accuracy") -> int | None:
        """The first round whose ``column`` reaches ``target`` (e.g. 0.9 for 90 % accuracy), or None.

        Rounds are the ``round`` column (0 is the initial model; the row index where a row has no
        ``round``). Accuracies are fractions in [0, 1], as the simulation records them.

        Raises:
            ValueError: if ``target`` is not a finite number.
            KeyError: if the history has no such column.
        """
        i = self._first_row_reaching(target, column)
        return None if i is None else self.rows[i].get("round", i)

    def bytes_to(self, target: float, column: str = "test_accuracy") -> int | None:
        """Bytes communicated (both directions) until ``column`` first reaches ``target``, or None.

        The count includes the round that reaches the target, as :attr:`total_bytes` does.
        """
        i = self._first_row_reaching(target, column)
        return None if i is None else self.total_bytes[i]

    def table(self, columns: list[str] | None = None, *, digits: int = 3) -> str:
        """A plain-text table, one line per row (tidy: one column per metric); floats rounded."""
        columns = self.columns if columns is None else list(columns)

        def fmt(v):
            if isinstance(v, float):
                return "nan" if math.isnan(v) else f"{v:.{digits}f}"
            return str(v)

        cells = [[fmt(row.get(c, math.nan)) for c in columns] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)

    def plot(self, ax, metric: str = "test_accuracy", *, x: str = "round", label: str | None = None,
             xlabel: str | None = None, ylabel: str | None = None, scale: float = 1.0, **plot_kwargs):
        """Draw ``metric`` against ``x`` on the matplotlib axes ``ax``; return the line.

        Args:
            ax: matplotlib axes.
            metric: a column, e.g. ``"test_accuracy"`` or ``"train_loss"``.
            x: ``"round"``, or ``"bytes"`` for the bytes communicated so far (both directions),
               or any other column.
            label, xlabel, ylabel: words for the legend and axes, passed in by the notebook
               (nothing is labelled when they are None).
            scale: multiplies the metric, e.g. 100 to draw an accuracy in %.
            **plot_kwargs: passed to ``ax.plot`` (color, linestyle, ...).
        """
        xs = self.total_bytes if x == "bytes" else self[x]
        ys = self[metric]
        pairs = [(a, b) for a, b in zip(xs, ys) if not (isinstance(b, float) and math.isnan(b))]
        scale = check_finite("scale", scale, low=0, low_open=True)
        (line,) = ax.plot([a for a, _ in pairs], [scale * b for _, b in pairs], label=label, **plot_kwargs)
        if x == "round":
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "2.5 rounds" ticks
        if xlabel is not None:
            ax.set_xlabel(xlabel)
        if ylabel is not None:
            ax.set_ylabel(ylabel)
        return line
