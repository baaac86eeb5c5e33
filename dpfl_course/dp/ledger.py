"""A privacy ledger: every release on one dataset is written down, and the total (ε, δ) is kept.

Two kinds of entries:

* ``spend(mechanism, epsilon=..., delta=...)`` for a mechanism known only by its (ε, δ)
  (Laplace, exponential, a Gaussian query calibrated to (ε, δ) ...). These compose by basic
  composition: ε's and δ's add up.
* ``spend_gaussian(mechanism, noise_multiplier=..., sample_rate=..., steps=...)`` for runs of
  the (Poisson-subsampled) Gaussian mechanism — DP-SGD, DP-FedAvg rounds. All such runs are
  composed together, tightly, by the ledger's accountant (RDP or PRV) and converted to ε at the
  ledger's ``delta``: a ledger holding one run reports exactly :func:`~dpfl_course.dp.epsilon`.

The total is the basic composition of the two parts: (ε_gauss + Σε_i, δ + Σδ_i), where δ is
counted once if there is any Gaussian run. A ledger holds plain numbers only (no data, no model,
no simulation state), so one can live in each client and one in the server, in a simulation or
in a real deployment.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import NamedTuple

from dpfl_course._validate import check_delta, check_epsilon
from dpfl_course.dp.accounting import _check_accountant, _check_run, composed_epsilon

__all__ = ["PrivacySpent", "LedgerEntry", "PrivacyLedger"]


class PrivacySpent(NamedTuple):
    """An (ε, δ) pair."""

    epsilon: float
    delta: float


@dataclass(frozen=True)
class LedgerEntry:
    """One line of a ledger.

    ``epsilon``/``delta`` are the entry's own guarantee (for a Gaussian run: alone, at the
    ledger's δ); ``total`` is the ledger's (ε, δ) right after this entry. Gaussian runs carry
    ``noise_multiplier``, ``sample_rate`` and ``steps``; the other fields are then None.
    """

    mechanism: str
    epsilon: float
    delta: float
    total: PrivacySpent
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    steps: int | None = None
    over_budget: bool = False

    @property
    def is_gaussian(self) -> bool:
        """True for a (subsampled) Gaussian run, composed by the accountant."""
        return self.noise_multiplier is not None


def _format_epsilon(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3f}"


def _format_delta(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


class PrivacyLedger:
    """Record releases on one dataset and keep the running total (ε, δ).

    Args:
        delta: δ at which Gaussian runs are converted to ε, in (0, 1). Needed only if
            ``spend_gaussian`` is used.
        accountant: ``"rdp"`` or ``"prv"``, how Gaussian runs are composed. Every spend
            recomposes all runs so far: cheap with ``"rdp"`` (milliseconds), but ``"prv"`` costs
            about 0.1 s per distinct (σ, q) run, so a ledger that spends every round (notebooks
            06-08) should use ``"rdp"`` and ask :func:`composed_epsilon` for PRV once at the end.
        budget: optional (ε_max, δ_max); spends beyond it are flagged, or refused when strict.
        strict: default for ``spend(..., strict=...)``: refuse (ValueError) a spend that would
            exceed the budget, instead of recording it with a flag.

    >>> ledger = PrivacyLedger(budget=(1.0, 1e-5))
    >>> ledger.spend("Laplace count", epsilon=0.5)
    PrivacySpent(epsilon=0.5, delta=0.0)
    >>> ledger.spend("Gaussian mean", epsilon=0.25, delta=1e-6)
    PrivacySpent(epsilon=0.75, delta=1e-06)
    >>> ledger.remaining()
    PrivacySpent(epsilon=0.25, delta=9e-06)
    >>> print(ledger.table())
    #  mechanism      ε      δ        total ε  total δ
    1  Laplace count  0.500  0        0.500    0
    2  Gaussian mean  0.250  1.0e-06  0.750    1.0e-06
    budget (ε, δ) = (1.000, 1.0e-05), remaining (0.250, 9.0e-06)
    >>> ledger.spend("one more", epsilon=0.5, strict=True)
    Traceback (most recent call last):
    ...
    ValueError: spending 'one more' would bring the total to (ε=1.250, δ=1.0e-06), over the budget (ε=1.000, δ=1.0e-05)
    """

    HEADERS = ("#", "mechanism", "ε", "δ", "total ε", "total δ")

    def __init__(self, *, delta=None, accountant="rdp", budget=None, strict=False):
        self.delta = None if delta is None else check_delta(delta)
        self.accountant = _check_accountant(accountant)
        if budget is None:
            self.budget = None
        else:
            try:
                budget_epsilon, budget_delta = budget
            except (TypeError, ValueError):
                raise ValueError(f"budget must be a pair (epsilon, delta), got {budget!r}") from None
            self.budget = PrivacySpent(
                check_epsilon(budget_epsilon, name="budget epsilon"),
                check_delta(budget_delta, name="budget delta", allow_zero=True))
        if not isinstance(strict, bool):
            raise ValueError(f"strict must be True or False, got {strict!r}")
        self.strict = strict
        self._entries: list[LedgerEntry] = []

    # ------------------------------------------------------------------ spending
    def spend(self, mechanism, *, epsilon, delta=0.0, strict=None) -> PrivacySpent:
        """Record a release that is (ε, δ)-DP; return the new total.

        Raises:
            ValueError: on bad arguments, or if the spend would exceed the budget and
                ``strict`` (or the ledger's default) is True — then nothing is recorded.
        """
        name = self._check_mechanism(mechanism)
        eps = check_epsilon(epsilon, allow_zero=True)
        dlt = check_delta(delta, allow_zero=True)
        entry = dict(mechanism=name, epsilon=eps, delta=dlt)
        return self._record(entry, self._gaussian_runs(), strict)

    def spend_gaussian(self, mechanism, *, noise_multiplier, sample_rate=1.0, steps=1,
                       strict=None) -> PrivacySpent:
        """Record ``steps`` runs of the Gaussian mechanism, each on a Poisson sample of rate
        ``sample_rate`` with noise ``noise_multiplier`` × sensitivity; return the new total.

        ``sample_rate=1`` is the plain Gaussian mechanism on the whole dataset.

        Raises:
            ValueError: on bad arguments, if the ledger has no ``delta``, or (when strict) if
                the spend would exceed the budget — then nothing is recorded.
        """
        name = self._check_mechanism(mechanism)
        run = _check_run(noise_multiplier, sample_rate, steps, min_steps=1)
        if self.delta is None:
            raise ValueError("delta must be given to PrivacyLedger(delta=...) before spend_gaussian: "
                             "Gaussian runs are converted to ε at that δ")
        alone = composed_epsilon([run], delta=self.delta, accountant=self.accountant)
        entry = dict(mechanism=name, epsilon=alone, delta=self.delta, noise_multiplier=run[0],
                     sample_rate=run[1], steps=run[2])
        return self._record(entry, self._gaussian_runs() + [run], strict)

    def _record(self, entry: dict, runs: list, strict) -> PrivacySpent:
        if strict is None:
            strict = self.strict
        elif not isinstance(strict, bool):
            raise ValueError(f"strict must be True, False or None, got {strict!r}")
        total = self._total(runs, extra=entry if entry.get("noise_multiplier") is None else None)
        over = self._exceeds(total)
        if over and strict:
            raise ValueError(
                f"spending {entry['mechanism']!r} would bring the total to "
                f"(ε={_format_epsilon(total.epsilon)}, δ={_format_delta(total.delta)}), over the "
                f"budget (ε={_format_epsilon(self.budget.epsilon)}, δ={_format_delta(self.budget.delta)})")
        self._entries.append(LedgerEntry(total=total, over_budget=over, **entry))
        return total

    # ------------------------------------------------------------------ totals
    def _gaussian_runs(self) -> list:
        return [(e.noise_multiplier, e.sample_rate, e.steps) for e in self._entries if e.is_gaussian]

    def _total(self, runs, extra=None) -> PrivacySpent:
        pure = [(e.epsilon, e.delta) for e in self._entries if not e.is_gaussian]
        if extra is not None:
            pure.append((extra["epsilon"], extra["delta"]))
        eps = math.fsum(e for e, _ in pure)
        dlt = math.fsum(d for _, d in pure)
        if runs:
            eps += composed_epsilon(runs, delta=self.delta, accountant=self.accountant)
            dlt += self.delta
        return PrivacySpent(float(eps), float(dlt))

    def _exceeds(self, total: PrivacySpent) -> bool:
        if self.budget is None:
            return False
        # A relative 1e-12 slack: a budget spent in equal parts must not fail on rounding.
        return (total.epsilon > self.budget.epsilon * (1 + 1e-12)
                or total.delta > self.budget.delta * (1 + 1e-12))

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        """The entries, oldest first."""
        return tuple(self._entries)

    def total(self) -> PrivacySpent:
        """The (ε, δ) spent so far; (0, 0) for an empty ledger."""
        return self._entries[-1].total if self._entries else PrivacySpent(0.0, 0.0)

    @property
    def epsilon(self) -> float:
        """Total ε spent so far."""
        return self.total().epsilon

    @property
    def over_budget(self) -> bool:
        """True if the total exceeds the budget (possible only with non-strict spends)."""
        return self._exceeds(self.total())

    def remaining(self) -> PrivacySpent:
        """Budget left, (ε_max − ε, δ_max − δ), each at least 0.

        Raises:
            ValueError: if the ledger has no budget.
        """
        if self.budget is None:
            raise ValueError("remaining() needs a budget: PrivacyLedger(budget=(epsilon, delta))")
        spent = self.total()
        return PrivacySpent(max(0.0, self.budget.epsilon - spent.epsilon),
                            max(0.0, self.budget.delta - spent.delta))

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------ display
    @staticmethod
    def _check_mechanism(mechanism) -> str:
        if not isinstance(mechanism, str) or not mechanism.strip():
            raise ValueError(f"mechanism must be a non-empty name, got {mechanism!r}")
        return mechanism

    def rows(self) -> list[list[str]]:
        """The table's rows as strings: #, mechanism, ε, δ, total ε, total δ (rounded)."""
        out = []
        for i, e in enumerate(self._entries, start=1):
            name = e.mechanism
            if e.is_gaussian:
                name += f" (σ={e.noise_multiplier:.4g}, q={e.sample_rate:.4g}, T={e.steps})"
            if e.over_budget:
                name += " !"
            out.append([str(i), name, _format_epsilon(e.epsilon), _format_delta(e.delta),
                        _format_epsilon(e.total.epsilon), _format_delta(e.total.delta)])
        return out

    def _footer(self) -> str:
        if self.budget is None:
            return ""
        left = self.remaining()
        text = (f"budget (ε, δ) = ({_format_epsilon(self.budget.epsilon)}, "
                f"{_format_delta(self.budget.delta)}), remaining ({_format_epsilon(left.epsilon)}, "
                f"{_format_delta(left.delta)})")
        return text + (" — over budget (rows marked !)" if self.over_budget else "")

    def table(self, headers=None) -> str:
        """A plain-text table, one row per entry, with the running total; ``headers`` may be
        translated (six strings)."""
        heads = list(self.HEADERS if headers is None else headers)
        if len(heads) != len(self.HEADERS):
            raise ValueError(f"headers must hold {len(self.HEADERS)} strings, got {len(heads)}")
        grid = [heads] + self.rows()
        widths = [max(len(r[c]) for r in grid) for c in range(len(heads))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in grid]
        footer = self._footer()
        return "\n".join(lines + ([footer] if footer else []))

    def __repr__(self) -> str:
        settings = f"accountant={self.accountant!r}"
        if self.delta is not None:
            settings = f"delta={self.delta:g}, " + settings
        if not self._entries:
            return f"PrivacyLedger({settings}): empty"
        return f"PrivacyLedger({settings})\n" + self.table()

    def _repr_html_(self) -> str:
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in self.HEADERS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self.rows())
        footer = self._footer()
        caption = f"<caption>{html.escape(footer)}</caption>" if footer else ""
        return f"<table>{caption}<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
