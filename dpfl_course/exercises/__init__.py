"""Checkers for the notebooks' coding exercises.

A checker runs the learner's function on small cases and returns :class:`Feedback` — it never
raises on a wrong answer, so a notebook keeps running and the learner reads what went wrong.
Each notebook's checkers live in a module named after it (``nb00`` …) beside its reference
solutions, which the tests use to show that a checker accepts the right answer and rejects a
plausible wrong one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Feedback:
    """The outcome of a check: passed or not, and one message for the learner."""

    passed: bool
    message: str

    def __repr__(self) -> str:
        return ("✓ " if self.passed else "✗ ") + self.message

    def __bool__(self) -> bool:
        return self.passed


NOT_YET = "Not yet: the function still raises NotImplementedError (replace the skeleton with your code)."


def attempt(thunk, *, where: str = ""):
    """Run the learner's code ``thunk()``: ``(result, None)``, or ``(None, Feedback)`` if it raised.

    Test the Feedback with ``is not None``: a Feedback that did not pass is falsy.

    The skeleton's NotImplementedError and any other exception become a message for the learner
    instead of a traceback; ``where`` (e.g. ``"on n=3 "``) says which case raised.

    >>> attempt(lambda: 1 / 0, where="on x=0 ")[1]
    ✗ Not yet: on x=0 your function raised ZeroDivisionError: division by zero
    """
    try:
        return thunk(), None
    except NotImplementedError:
        return None, Feedback(False, NOT_YET)
    except Exception as error:  # the learner sees the message, not our traceback
        return None, Feedback(False, f"Not yet: {where}your function raised {type(error).__name__}: {error}")


def close(got, want, *, rel: float = 1e-9) -> bool:
    """True if ``got`` is a finite number within ``rel`` (relative, absolute below 1) of ``want``.

    >>> close(0.1 + 0.2, 0.3), close("0.3", 0.3), close(None, 0.3), close(float("nan"), 0.3)
    (True, True, False, False)
    """
    try:
        got = float(got)
    except (TypeError, ValueError):
        return False
    return math.isfinite(got) and abs(got - want) <= rel * max(1.0, abs(want))


def close_tensors(got, want, *, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
    """True if ``got`` is a list of finite tensors with ``want``'s shapes and values (to the tolerances).

    Anything else the learner may return (None, a number, ragged lists, NaN) is simply False.

    >>> import torch
    >>> close_tensors([torch.tensor([1.0, 2.0])], [torch.tensor([1.0, 2.0 + 1e-7])]), close_tensors(None, [])
    (True, False)
    """
    import torch

    try:
        got = list(got)
    except TypeError:
        return False
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        try:
            g = torch.as_tensor(g)
        except (TypeError, ValueError, RuntimeError):
            return False
        if g.shape != w.shape or not torch.isfinite(g.double()).all():
            return False
        if not torch.allclose(g.double(), w.double(), rtol=rtol, atol=atol):
            return False
    return True


def show_tensors(tensors) -> str:
    """A short, readable rendering of a list of small tensors, for a learner's message.

    >>> import torch
    >>> show_tensors([torch.tensor([0.123456, 2.0])])
    '[[0.1235, 2.0]]'
    """
    import torch

    try:
        return "[" + ", ".join(str([round(v, 4) for v in torch.as_tensor(t).double().flatten().tolist()])
                               for t in tensors) + "]"
    except (TypeError, ValueError, RuntimeError):
        return repr(tensors)


def run_cases(func, cases, *, compare, describe) -> Feedback:
    """Call ``func(*args)`` for every ``(args, expected)`` in cases; first mismatch wins.

    ``compare(got, expected)`` says whether an answer is right; ``describe(args)`` names a case
    in the message. A learner's exception (such as the skeleton's NotImplementedError) becomes
    the message instead of a traceback.
    """
    for args, expected in cases:
        got, failed = attempt(lambda: func(*args), where=f"on {describe(args)} ")
        if failed is not None:
            return failed
        if not compare(got, expected):
            return Feedback(False, f"Not yet: on {describe(args)} expected {expected!r}, got {got!r}.")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")
