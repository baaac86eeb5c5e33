"""The simulation's clients' data: a list of (X, y) pairs, one per client, checked once."""

from __future__ import annotations

import torch

from dpfl_course._validate import check_partition

__all__ = ["make_client_data", "check_client_data"]


def make_client_data(X: torch.Tensor, y: torch.Tensor, partition) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut ``(X, y)`` into one ``(X_k, y_k)`` pair per client, following ``partition``.

    Args:
        X, y: all training examples (float features, int64 labels).
        partition: a list of index arrays, one per client (as from ``dpfl_course.data.partition_*``).

    Raises:
        ValueError: if ``X`` and ``y`` differ in length, a client gets no examples, or an index is
            not an integer in [0, len(X)) (float indices are rejected, not truncated).

    >>> parts = make_client_data(torch.zeros(5, 2), torch.arange(5), [[0, 1], [2, 3, 4]])
    >>> [len(y_k) for _, y_k in parts]
    [2, 3]
    """
    if len(X) != len(y):
        raise ValueError(f"y must hold one label per row of X, got {len(y)} labels for {len(X)} rows")
    out = []
    for k, idx in enumerate(check_partition(partition, len(X))):
        if idx.size == 0:
            raise ValueError(f"partition[{k}] must hold at least one example (an empty client cannot train)")
        idx = torch.from_numpy(idx)
        out.append((X[idx], y[idx]))
    return check_client_data(out)


def check_client_data(client_data) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Check a list of ``(X, y)`` pairs: non-empty clients, finite float features, int64 labels.

    Returns:
        The list, with X as float32 and y as int64 tensors.

    Raises:
        ValueError: naming ``client_data[k]`` and what is wrong.
    """
    if not isinstance(client_data, (list, tuple)) or len(client_data) == 0:
        raise ValueError("client_data must be a non-empty list of (X, y) pairs, one per client")
    out, num_features = [], None
    for k, item in enumerate(client_data):
        try:
            X, y = item
        except (TypeError, ValueError):
            raise ValueError(f"client_data[{k}] must be an (X, y) pair") from None
        X = torch.as_tensor(X, dtype=torch.float32)
        y = torch.as_tensor(y)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"client_data[{k}] X must be 2-D with at least one example (an empty client "
                             f"cannot train), got shape {tuple(X.shape)}")
        if y.shape != (len(X),) or y.is_floating_point() or y.is_complex():
            raise ValueError(f"client_data[{k}] y must be integer labels of shape ({len(X)},), "
                             f"got {y.dtype} {tuple(y.shape)}")
        if num_features is None:
            num_features = X.shape[1]
        elif X.shape[1] != num_features:
            raise ValueError(f"client_data[{k}] X must have {num_features} features like client 0, got {X.shape[1]}")
        out.append((X, y.to(torch.int64)))
    # One finiteness check over all clients (per-client calls cost more than the check itself).
    if not torch.isfinite(torch.cat([X for X, _ in out])).all():
        k = next(k for k, (X, _) in enumerate(out) if not torch.isfinite(X).all())
        raise ValueError(f"client_data[{k}] X must be finite (found NaN or inf)")
    return out
