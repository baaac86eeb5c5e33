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
    # The message is built only on failure: these checks sit in per-client loops of the engines.
    def fail():
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        return ValueError(f"{name} must be a finite number in {rng}, got {value!r}")

    if isinstance(value, (bool, str, bytes)):  # float("1") would accept text
        raise fail()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise fail() from None
    if not math.isfinite(v):
        raise fail()
    if low is not None and (v < low or (low_open and v == low)):
        raise fail()
    if high is not None and (v > high or (high_open and v == high)):
        raise fail()
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
    def fail():
        rng = f"[{'-inf' if low is None else low}, {'inf)' if high is None else str(high) + ']'}"
        rng = rng.replace("[-inf", "(-inf")
        return ValueError(f"{name} must be an integer in {rng}, got {value!r}")

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise fail()
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise fail()
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


def check_partition(partition, n: int) -> list[np.ndarray]:
    """Return ``partition`` as a list of 1-D int64 index arrays after checking every index is in [0, n).

    A partition is a list of index arrays, one per client (lists, numpy arrays or torch tensors).
    Float or boolean arrays are rejected, not truncated; an empty client is allowed here (callers
    that cannot train on one reject it themselves).

    Raises:
        ValueError: naming ``partition[k]`` and what is wrong.

    >>> [p.tolist() for p in check_partition([[0, 2], np.array([1])], 3)]
    [[0, 2], [1]]
    >>> check_partition([[0.0, 1.5]], 3)
    Traceback (most recent call last):
    ...
    ValueError: partition[0] must be a 1-D array of integer indices, got shape (2,) and dtype float64
    """
    if isinstance(partition, (str, bytes)) or not hasattr(partition, "__iter__"):
        raise ValueError(f"partition must be a list of index arrays, one per client, got {type(partition).__name__}")
    parts = []
    for k, p in enumerate(partition):
        if hasattr(p, "cpu") and hasattr(p, "numpy"):
            p = p.detach().cpu().numpy()
        arr = np.asarray(p)
        if arr.size == 0:  # an empty list arrives as float64; it is still a valid empty client
            arr = arr.astype(np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"partition[{k}] must be a 1-D array of integer indices, got shape {arr.shape} "
                             f"and dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ValueError(f"partition[{k}] indices must be in [0, {n - 1}], "
                             f"got values in [{arr.min()}, {arr.max()}]")
        parts.append(arr.astype(np.int64, copy=False))
    return parts
