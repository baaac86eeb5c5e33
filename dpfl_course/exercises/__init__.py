"""Checkers for the notebooks' coding exercises.

A checker runs the learner's function on small cases and returns :class:`Feedback` — it never
raises on a wrong answer, so a notebook keeps running and the learner reads what went wrong.
Each notebook's checkers live in a module named after it (``nb00`` …) beside its reference
solutions, which the tests use to show that a checker accepts the right answer and rejects a
plausible wrong one.
"""

from __future__ import annotations

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


def run_cases(func, cases, *, compare, describe) -> Feedback:
    """Call ``func(*args)`` for every ``(args, expected)`` in cases; first mismatch wins.

    ``compare(got, expected)`` says whether an answer is right; ``describe(args)`` names a case
    in the message. A learner's exception (such as the skeleton's NotImplementedError) becomes
    the message instead of a traceback.
    """
    for args, expected in cases:
        try:
            got = func(*args)
        except NotImplementedError:
            return Feedback(False, "Not yet: the function still raises NotImplementedError "
                                   "(replace the skeleton with your code).")
        except Exception as error:  # the learner sees the message, not our traceback
            return Feedback(False, f"Not yet: on {describe(args)} your function raised "
                                   f"{type(error).__name__}: {error}")
        if not compare(got, expected):
            return Feedback(False, f"Not yet: on {describe(args)} expected {expected!r}, got {got!r}.")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")
