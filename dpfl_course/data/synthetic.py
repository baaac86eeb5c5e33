"""LEAF's Synthetic(α, β): data generated already split across clients, heterogeneous by design.

Reference: T. Li, A. K. Sahu, M. Zaheer, M. Sanjabi, A. Talwalkar, V. Smith, "Federated
Optimization in Heterogeneous Networks" (FedProx), MLSys 2020, section 5.1 and its
``data/synthetic_*/generate_synthetic.py``; the same generator ships in the LEAF benchmark
(Caldas et al. 2018).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from dpfl_course._validate import check_finite, check_int
from dpfl_course.data.datasets import MAX_SEED, Dataset

__all__ = ["load_synthetic"]


class _Client(NamedTuple):
    """One client's model and samples, in float64 as generated (kept for tests and lessons)."""

    W: np.ndarray  # (num_classes, num_features)
    b: np.ndarray  # (num_classes,)
    v: np.ndarray  # (num_features,) mean of the client's x
    X: np.ndarray  # (n_k, num_features)
    y: np.ndarray  # (n_k,) int64


def _generate(*, alpha, beta, num_clients, num_features, num_classes, seed, max_samples_per_client) -> list[_Client]:
    """Draw every client's model and samples from one generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    sizes = np.floor(rng.lognormal(mean=4.0, sigma=2.0, size=num_clients)).astype(np.int64) + 50
    if max_samples_per_client is not None:
        sizes = np.minimum(sizes, max_samples_per_client)
    u = rng.normal(0.0, alpha, size=num_clients)
    B = rng.normal(0.0, beta, size=num_clients)
    # Σ is diagonal, so x ~ N(v, Σ) is v plus independent normals scaled by sqrt(Σ_jj).
    scale = np.arange(1, num_features + 1, dtype=np.float64) ** -0.6
    clients = []
    for k in range(num_clients):
        v = rng.normal(B[k], 1.0, size=num_features)
        W = rng.normal(u[k], 1.0, size=(num_classes, num_features))
        b = rng.normal(u[k], 1.0, size=num_classes)
        X = v + rng.standard_normal((sizes[k], num_features)) * scale
        # softmax is increasing, so the argmax of the logits is the argmax of the softmax.
        y = np.argmax(X @ W.T + b, axis=1).astype(np.int64)
        clients.append(_Client(W, b, v, X, y))
    return clients


def load_synthetic(
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    num_clients: int = 30,
    num_features: int = 60,
    num_classes: int = 10,
    test_size: float = 0.2,
    seed: int = 0,
    max_samples_per_client: int | None = None,
) -> Dataset:
    """Generate LEAF's Synthetic(α, β) data set of Li et al. 2020 (FedProx), already split across clients.

    For each client k: u_k ~ N(0, α²), W_k ~ N(u_k, 1) of shape (num_classes, num_features),
    b_k ~ N(u_k, 1), B_k ~ N(0, β²), v_k ~ N(B_k, 1) of length num_features; then n_k samples
    x ~ N(v_k, Σ) with Σ diagonal, Σ_jj = j^(-1.2), labelled y = argmax softmax(W_k x + b_k).
    n_k = ⌊lognormal(4, 2)⌋ + 50, heavy-tailed: a few clients hold most of the data.
    α and β are standard deviations. β moves each client's inputs (feature and label skew).
    Note that, exactly as in the reference code, u_k is one number added to every entry of W_k and
    b_k, which adds the same amount to every logit: it never changes an argmax, so α has no
    effect on the labels (for a given seed, changing α changes no label).

    Each client's samples are split into its own train and test parts (the last
    round(test_size · n_k) samples, at least one sample kept for training; the samples are i.i.d.
    within a client, so this is a random split). ``X_train`` is the clients' training parts in
    client order and ``clients[k]`` indexes client k's rows in it; ``X_test`` holds the clients'
    test parts in the same order.

    Args:
        alpha: standard deviation of the clients' model means, ≥ 0.
        beta: standard deviation of the clients' input means, ≥ 0.
        num_clients: number of clients, ≥ 1.
        num_features: input dimension d, ≥ 1 (60 in the paper).
        num_classes: number of classes, ≥ 2 (10 in the paper).
        test_size: fraction of each client's samples held out for testing, in [0, 1).
        seed: integer in [0, 2**32 - 1]; the only source of randomness.
        max_samples_per_client: cap on n_k (an integer ≥ 1), or None for the paper's sizes; the
            lognormal tail occasionally draws a client with 10⁵ samples or more, so cap it when
            memory or time matters.

    Returns:
        A :class:`Dataset` whose ``clients`` is the natural partition of the training rows.

    Raises:
        ValueError: if an argument is out of range.

    >>> data = load_synthetic(alpha=0.5, beta=0.5, num_clients=5, seed=0)
    >>> data.num_features, data.num_classes, len(data.clients)
    (60, 10, 5)
    >>> sum(len(rows) for rows in data.clients) == data.num_train
    True
    """
    alpha = check_finite("alpha", alpha, low=0)
    beta = check_finite("beta", beta, low=0)
    num_clients = check_int("num_clients", num_clients, low=1)
    num_features = check_int("num_features", num_features, low=1)
    num_classes = check_int("num_classes", num_classes, low=2)
    test_size = check_finite("test_size", test_size, low=0, high=1, high_open=True)
    seed = check_int("seed", seed, low=0, high=MAX_SEED)
    if max_samples_per_client is not None:
        max_samples_per_client = check_int("max_samples_per_client", max_samples_per_client, low=1)

    generated = _generate(
        alpha=alpha, beta=beta, num_clients=num_clients, num_features=num_features,
        num_classes=num_classes, seed=seed, max_samples_per_client=max_samples_per_client,
    )
    train_parts, test_parts, clients, start = [], [], [], 0
    for c in generated:
        n = len(c.y)
        n_train = n - min(round(test_size * n), n - 1)
        train_parts.append((c.X[:n_train], c.y[:n_train]))
        test_parts.append((c.X[n_train:], c.y[n_train:]))
        # Left writable: torch warns whenever a read-only array indexes a tensor, as in X_train[rows].
        clients.append(np.arange(start, start + n_train))
        start += n_train

    def stack(parts):
        X = torch.as_tensor(np.concatenate([X for X, _ in parts]), dtype=torch.float32)
        return X, torch.as_tensor(np.concatenate([y for _, y in parts]), dtype=torch.int64)

    X_train, y_train = stack(train_parts)
    X_test, y_test = stack(test_parts)
    return Dataset(
        name=f"synthetic({alpha:g}, {beta:g})",
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        num_classes=num_classes,
        feature_names=tuple(f"x{j}" for j in range(1, num_features + 1)),
        target_name="class",
        class_names=tuple(str(c) for c in range(num_classes)),
        clients=tuple(clients),
        source="generated locally by the course's code, following Synthetic(alpha, beta) of Li et al. 2020 (FedProx) and LEAF",
    )
