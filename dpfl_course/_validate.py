"""Argument checks shared by every public entry point, so that errors read alike:
the parameter's name, the allowed range and the value received."""

from __future__ import annotations

import math

import numpy as np


def check_finite(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Return ``value`` as a float after checking it is a finite real number within bounds.

    Every public entry point validates through this so that errors read alike: the parameter's
    name and the allowed range.

    >>> check_finite("alpha", 0.5, low=0, low_open=True)
    0.5
    >>> check_finite("alpha", 0, low=0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a finite number in (0, inf), got 0
    """
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    msg = f"{name} must be a finite number in {rng}, got {value!r}"
    if isinstance(value, bool):
        raise ValueError(msg)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if not math.isfinite(v):
        raise ValueError(msg)
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(msg)
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(msg)
    return v


def check_int(name: str, value, *, low=None, high=None) -> int:
    """Return ``value`` as an int after checking it is an integer in [low, high].

    >>> check_int("num_clients", 3, low=1)
    3
    >>> check_int("num_clients", 2.5, low=1)
    Traceback (most recent call last):
    ...
    ValueError: num_clients must be an integer in [1, inf), got 2.5
    """
    rng = f"[{'-inf' if low is None else low}, {'inf)' if high is None else str(high) + ']'}"
    rng = rng.replace("[-inf", "(-inf")
    msg = f"{name} must be an integer in {rng}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(msg)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(msg)
    return v


def check_epsilon(value, *, name: str = "epsilon", allow_zero: bool = False) -> float:
    """ε of a privacy guarantee: a finite number > 0 (or >= 0 with ``allow_zero``).

    >>> check_epsilon(0.5)
    0.5
    >>> check_epsilon(-1)
    Traceback (most recent call last):
    ...
    ValueError: epsilon must be a finite number in (0, inf), got -1
    """
    return check_finite(name, value, low=0, low_open=not allow_zero)


def check_delta(value, *, name: str = "delta", allow_zero: bool = False) -> float:
    """δ of an (ε, δ) guarantee: in (0, 1) (or [0, 1) with ``allow_zero``).

    >>> check_delta(1e-5)
    1e-05
    >>> check_delta(1)
    Traceback (most recent call last):
    ...
    ValueError: delta must be a finite number in (0, 1), got 1
    """
    return check_finite(name, value, low=0, high=1, low_open=not allow_zero, high_open=True)
