"""Weighted averaging of client parameters: the aggregation step of FedAvg, as a pure function."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["check_results", "weighted_average", "weighted_metrics"]


def check_results(results) -> list[int]:
    """Validate clients' ``(parameters, num_examples)`` pairs as :func:`weighted_average` needs them.

    The checks (and messages) of :func:`weighted_average`, without computing anything: also used by
    aggregations that must not see the plaintext average (``privacy.secure_fedavg``).

    Args:
        results: a non-empty list of ``(parameters, num_examples)`` pairs, where ``parameters`` is a
            list of tensors (same length, shapes and dtype for every client) and ``num_examples``
            an integer >= 1.

    Returns:
        The clients' ``num_examples`` as Python ints, in order.

    Raises:
        ValueError: if ``results`` is empty, a ``num_examples`` is not an integer >= 1, or the
            clients' tensors differ in number, shape or dtype.

    >>> check_results([([torch.zeros(2)], 3), ([torch.ones(2)], np.int64(1))])
    [3, 1]
    >>> check_results([([torch.zeros(2)], 3), ([torch.ones(2)], 0)])
    Traceback (most recent call last):
    ...
    ValueError: results[1] num_examples must be an integer in [1, inf), got 0
    """
    if not isinstance(results, (list, tuple)) or len(results) == 0:
        raise ValueError("results must be a non-empty list of (parameters, num_examples) pairs, got none")
    weights = []
    first = signature = None
    for k, item in enumerate(results):
        try:
            params, n = item
        except (TypeError, ValueError):
            raise ValueError(f"results[{k}] must be a (parameters, num_examples) pair") from None
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"results[{k}] num_examples must be an integer in [1, inf), got {n!r}")
        params = list(params)
        if first is None:
            first = params
            if len(first) == 0:
                raise ValueError("results[0] parameters must hold at least one tensor")
            for j, p in enumerate(first):
                if not isinstance(p, torch.Tensor):
                    raise ValueError(f"results[0] parameters[{j}] must be a torch.Tensor, got {type(p).__name__}")
            signature = [(p.shape, p.dtype) for p in first]
        else:
            try:
                same = [(p.shape, p.dtype) for p in params] == signature
            except AttributeError:
                same = False
            if not same:
                _explain_mismatch(k, params, first)
        weights.append(int(n))
    return weights


def weighted_average(results) -> list[torch.Tensor]:
    """Average clients' parameters, each client weighted by its number of examples.

    Computes, tensor by tensor, ``sum_k n_k * w_k / sum_k n_k``. The sum is accumulated in float64
    and the result cast back to the clients' dtype, so the average of float32 tensors is the exact
    weighted mean rounded once (averaging identical tensors returns them bit for bit).

    Args:
        results: a non-empty list of ``(parameters, num_examples)`` pairs, where ``parameters`` is a
            list of tensors (same length, shapes and dtype for every client) and ``num_examples``
            an integer >= 1.

    Returns:
        A list of new tensors, the weighted mean of each position.

    Raises:
        ValueError: if ``results`` is empty, a ``num_examples`` is not an integer >= 1, or the
            clients' tensors differ in number, shape or dtype.

    >>> a = [torch.tensor([0.0, 2.0])]
    >>> b = [torch.tensor([3.0, 2.0])]
    >>> weighted_average([(a, 1), (b, 2)])
    [tensor([2., 2.])]
    """
    weights = check_results(results)
    first = list(results[0][0])
    w = torch.tensor(weights, dtype=torch.float64)
    total = w.sum()
    out = []
    for j, ref in enumerate(first):
        stacked = torch.stack([item[0][j] for item in results]).to(torch.float64)
        mean = torch.tensordot(w, stacked, dims=1) / total
        out.append(mean.to(ref.dtype))
    return out


def weighted_metrics(results) -> dict[str, float]:
    """Average the clients' metrics, each client weighted by its number of examples.

    Only keys every client reported are averaged (sorted by name); values are cast to float.

    Args:
        results: a non-empty list of ``(metrics, num_examples)`` pairs (a dict and an int >= 1).

    >>> weighted_metrics([({"loss": 1.0, "x": 5}, 1), ({"loss": 4.0}, 2)])
    {'loss': 3.0}
    >>> weighted_metrics([])
    Traceback (most recent call last):
    ...
    ValueError: results must be a non-empty list of (metrics, num_examples) pairs, got none
    """
    if not isinstance(results, (list, tuple)) or len(results) == 0:
        raise ValueError("results must be a non-empty list of (metrics, num_examples) pairs, got none")
    for k, item in enumerate(results):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], dict)):
            raise ValueError(f"results[{k}] must be a (metrics, num_examples) pair with metrics a dict")
        n = item[1]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"results[{k}] num_examples must be an integer in [1, inf), got {n!r}")
    total = sum(n for _, n in results)
    keys = set.intersection(*(set(metrics) for metrics, _ in results))
    return {key: sum(float(metrics[key]) * n for metrics, n in results) / total for key in sorted(keys)}


def _explain_mismatch(k: int, params: list, first: list) -> None:
    """Raise the ValueError that says how results[k]'s tensors differ from results[0]'s."""
    if len(params) != len(first):
        raise ValueError(f"results[{k}] parameters must hold {len(first)} tensors like results[0], got {len(params)}")
    for j, (p, q) in enumerate(zip(params, first)):
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"results[{k}] parameters[{j}] must be a torch.Tensor, got {type(p).__name__}")
        if p.shape != q.shape or p.dtype != q.dtype:
            raise ValueError(f"results[{k}] parameters[{j}] must have shape {tuple(q.shape)} and dtype {q.dtype} "
                             f"like results[0], got {tuple(p.shape)} {p.dtype}")
