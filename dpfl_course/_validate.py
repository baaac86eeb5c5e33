"""Argument checks shared by every public entry point, so that errors read alike:
the parameter's name, the allowed range and the value received."""

from __future__ import annotations

import math

import sys

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


def check_model(model) -> list[tuple[str, torch.nn.Parameter]]:
    """Return ``model``'s trainable (name, parameter) pairs, checking it is an ``nn.Module`` that has some.

    >>> import torch
    >>> [n for n, _ in check_model(torch.nn.Linear(2, 1))]
    ['weight', 'bias']
    """
    import torch  # here, not at module level: the torch-free modules validate without loading it
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model must have at least one trainable parameter")
    return named


def check_data(X, y, *, allow_empty=False, name_X="X", name_y="y", num_classes=None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the batch ``(X, y)`` after checking it: X float and finite, one row per integer label in y.

    Labels must lie in [0, num_classes) (only ≥ 0 when num_classes is None).

    >>> import torch
    >>> check_data(torch.zeros(2, 3), torch.tensor([0, 5]), num_classes=3)
    Traceback (most recent call last):
    ...
    ValueError: y must hold class labels < 3 (the model's outputs), got 5
    """
    import torch
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"{name_X} and {name_y} must be torch tensors, got {type(X).__name__} and {type(y).__name__}")
    if X.dim() < 2 or y.dim() != 1 or len(X) != len(y):
        raise ValueError(f"{name_X} must hold one row per label in {name_y} ({name_X} at least 2-D, {name_y} 1-D), "
                         f"got shapes {tuple(X.shape)} and {tuple(y.shape)}")
    if len(X) == 0 and not allow_empty:
        raise ValueError(f"{name_X} must hold at least one example, got 0")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name_y} must hold integer class labels, got dtype {y.dtype}")
    if len(y) and int(y.min()) < 0:  # cross-entropy silently ignores -100, and a negative label is no class
        raise ValueError(f"{name_y} must hold class labels ≥ 0, got {int(y.min())}")
    if num_classes is not None and len(y) and int(y.max()) >= num_classes:
        raise ValueError(f"{name_y} must hold class labels < {num_classes} (the model's outputs), got {int(y.max())}")
    # A sum is NaN or inf if any entry is (one pass, cheaper than isfinite on a hot path); only
    # a sum that overflows from finite entries needs the full check.
    if not X.is_floating_point() or (not torch.isfinite(X.sum()) and not torch.isfinite(X).all()):
        raise ValueError(f"{name_X} must hold finite floating-point numbers")
    return X, y


def check_generator(generator) -> torch.Generator:
    """Return ``generator`` after checking it is a ``torch.Generator`` (randomness is always explicit)."""
    import torch
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def check_model_batch(model, X, y) -> tuple[list[tuple[str, torch.nn.Parameter]], torch.Tensor, torch.Tensor]:
    """:func:`check_model` and :func:`check_data`, plus: the batch fits the model, which has ≥ 2 outputs.

    X must have the dtype of the model's first parameter and, if that is a weight matrix
    (out, in), ``in`` features; the model's output (one forward pass on one example) must have a
    score per class, at least 2, and the labels must be below their number.

    Returns:
        ``(named_parameters, X, y)``.

    >>> import torch
    >>> check_model_batch(torch.nn.Linear(3, 2), torch.zeros(1, 4), torch.tensor([0]))
    Traceback (most recent call last):
    ...
    ValueError: X must have 3 features (the model's input size), got shape (1, 4)
    """
    import torch
    named = check_model(model)
    X, y = check_data(X, y)
    first = named[0][1]
    if X.dtype != first.dtype:
        raise ValueError(f"X must have the model's dtype {first.dtype}, got {X.dtype}")
    if first.dim() == 2 and X.dim() == 2 and X.shape[1] != first.shape[1]:
        raise ValueError(f"X must have {first.shape[1]} features (the model's input size), got shape {tuple(X.shape)}")
    try:
        with torch.no_grad():
            outputs = model(X[:1]).shape[-1]
    except RuntimeError as error:
        raise ValueError(f"X must fit the model's input, got shape {tuple(X.shape)} ({error})") from None
    if outputs < 2:
        raise ValueError(f"model must output one score per class (at least 2), got {outputs}")
    return named, *check_data(X, y, num_classes=outputs)


def check_scores(name: str, scores, *, min_size: int = 1) -> np.ndarray:
    """Return ``scores`` (a list, NumPy array or torch tensor) as a 1-D float array of finite numbers.

    >>> check_scores("scores", [0.5, 2]).tolist()
    [0.5, 2.0]
    >>> check_scores("scores_in", [1.0], min_size=2)
    Traceback (most recent call last):
    ...
    ValueError: scores_in must be a 1-D array of at least 2 numbers, got shape (1,)
    """
    torch = sys.modules.get("torch")  # a tensor cannot exist unless torch is loaded
    if torch is not None and isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    try:
        arr = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers") from None
    if arr.ndim != 1 or arr.size < min_size:
        raise ValueError(f"{name} must be a 1-D array of at least {min_size} number{'s' if min_size > 1 else ''}, "
                         f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite numbers")
    return arr
