"""Split a dataset's examples across federated clients: IID, label skew, shards, quantity skew.

Every partitioner returns one sorted int64 index array per client; together they cover each
example exactly once. Randomness comes only from ``np.random.default_rng(seed)``, so the same
arguments always give the same split.
"""

from __future__ import annotations

import numpy as np

from dpfl_course._validate import check_finite, check_int, check_partition

__all__ = [
    "partition_iid",
    "partition_dirichlet",
    "partition_shards",
    "partition_quantity_skew",
    "label_counts",
    "describe_partition",
]


def _check_int(name, value, *, low, high, why):
    """``check_int`` with the reason for the upper bound appended, so the limit is not a riddle."""
    try:
        return check_int(name, value, low=low, high=high)
    except ValueError as err:
        raise ValueError(f"{err} ({why})") from None


def _as_labels(labels) -> np.ndarray:
    """Return labels as a 1-D int64 numpy array, accepting numpy arrays, lists and torch tensors."""
    # Duck-typed so that importing this module does not import torch.
    if hasattr(labels, "cpu") and hasattr(labels, "numpy"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"labels must be a non-empty 1-D array of non-negative integers, got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"labels must be a non-empty 1-D array of non-negative integers, got dtype {arr.dtype}"
        )
    if arr.min() < 0:
        raise ValueError(
            f"labels must be a non-empty 1-D array of non-negative integers, got minimum {arr.min()}"
        )
    return arr.astype(np.int64, copy=False)


def _check_common(labels, num_clients, seed):
    y = _as_labels(labels)
    k = _check_int("num_clients", num_clients, low=1, high=y.size,
                   why="at least one example per client")
    s = check_int("seed", seed, low=0)
    return y, k, s


def _split_by_owner(owner: np.ndarray, num_clients: int) -> list[np.ndarray]:
    """Turn ``owner[i] = client of example i`` into one ascending index array per client."""
    # A stable sort keeps indices ascending inside each client's block.
    order = np.argsort(owner, kind="stable").astype(np.int64, copy=False)
    sizes = np.bincount(owner, minlength=num_clients)
    return np.split(order, np.cumsum(sizes)[:-1])


def partition_iid(labels, num_clients, *, seed=0) -> list[np.ndarray]:
    """Split examples uniformly at random into ``num_clients`` parts whose sizes differ by at most 1.

    Args:
        labels: 1-D non-negative integer labels (numpy array, list or torch tensor); only their
            number is used here, they are checked like in every other partitioner.
        num_clients: number of clients, in [1, len(labels)].
        seed: non-negative integer seed for ``np.random.default_rng``.

    Returns:
        A list of ``num_clients`` sorted int64 index arrays, disjoint and covering 0..n-1.

    Raises:
        ValueError: if ``labels``, ``num_clients`` or ``seed`` is invalid.

    >>> parts = partition_iid(np.arange(10) % 2, 3, seed=0)
    >>> [len(p) for p in parts]
    [4, 3, 3]
    >>> sorted(np.concatenate(parts).tolist()) == list(range(10))
    True
    """
    y, k, seed = _check_common(labels, num_clients, seed)
    rng = np.random.default_rng(seed)
    n = y.size
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    owner = np.empty(n, dtype=np.int64)
    owner[rng.permutation(n)] = np.repeat(np.arange(k), sizes)
    return _split_by_owner(owner, k)


def _repair_min_size(counts: np.ndarray, min_size: int) -> None:
    """Move examples from clients above ``min_size`` to those below until every client has min_size.

    ``counts[k, j]`` is how many examples of class j client k holds; it is changed in place.
    The smallest client receives first. It takes a class it already holds if some client above
    min_size can give one (else the largest block of one class any such client holds), so
    label skew is disturbed as little as possible: taking from "the largest client" each time
    instead would hand a receiver a new class from every donor in turn. Each step moves as many
    examples as the receiver needs, the donor holds of that class, and the donor can spare.
    Donors only lose and receivers never exceed min_size, so every step fills a receiver, empties
    a (donor, class) block for good or brings a donor down to min_size: at most K * (C + 2) steps.
    A donor always exists: while some client is below min_size, ``num_clients * min_size <= n``
    leaves the largest one above it.
    """
    sizes = counts.sum(axis=1)
    while True:
        receiver = int(np.argmin(sizes))
        need = min_size - sizes[receiver]
        if need <= 0:
            return
        blocks = np.where((sizes > min_size)[:, None], counts, 0)
        shared = np.where(counts[receiver] > 0, blocks, 0)
        if shared.max() > 0:
            blocks = shared
        donor, j = np.unravel_index(np.argmax(blocks), blocks.shape)
        moved = min(need, counts[donor, j], sizes[donor] - min_size)
        counts[donor, j] -= moved
        counts[receiver, j] += moved
        sizes[donor] -= moved
        sizes[receiver] += moved


def partition_dirichlet(labels, num_clients, *, alpha, seed=0, min_size=1) -> list[np.ndarray]:
    """Label-skewed split: each class is shared among clients by Dir(alpha) weights.

    This is the split of Yurochkin et al. 2019 and Wang et al. 2020 (FedMA); Hsu et al. 2019
    instead draw each client's label mix from a Dirichlet. Both give strong skew at small alpha.

    For each class c, proportions p_c ~ Dir(alpha * 1_K) over the K clients are drawn and the
    class's examples, shuffled, are cut by those proportions (cumulative shares rounded to the
    nearest integer). Small alpha gives each client few classes; large alpha approaches an
    even, class-stratified split.

    If some client ends with fewer than ``min_size`` examples, the split is repaired
    deterministically instead of redrawn (redrawing can loop for a very long time when alpha is
    tiny): the smallest client takes examples from clients above ``min_size``, of a class it
    already holds if any of them has one, else from the largest single-class block among them,
    until it reaches ``min_size``; then the next smallest, and so on. This takes at most
    num_clients * (num_classes + 2) steps and keeps the label skew as far as possible. Which
    examples of a class each client gets stays random (the class was shuffled); only the
    per-class counts are repaired.

    Args:
        labels: 1-D non-negative integer labels (numpy array, list or torch tensor).
        num_clients: number of clients K, in [1, len(labels)].
        alpha: Dirichlet concentration, a finite number > 0.
        seed: non-negative integer seed for ``np.random.default_rng``.
        min_size: least number of examples per client, in [0, len(labels) // num_clients].

    Returns:
        A list of ``num_clients`` sorted int64 index arrays, disjoint and covering 0..n-1.

    Raises:
        ValueError: if ``labels``, ``num_clients``, ``alpha``, ``seed`` or ``min_size`` is invalid.

    Tiny alpha: each class lands on one client, and two clients are left empty...

    >>> y = np.repeat(np.arange(4), 25)
    >>> label_counts(y, partition_dirichlet(y, 4, alpha=0.01, seed=0, min_size=0)).tolist()
    [[0, 0, 0, 0], [0, 25, 25, 25], [25, 0, 0, 0], [0, 0, 0, 0]]

    ...unless the repair (default ``min_size=1``) gives each one example from the largest class block:

    >>> label_counts(y, partition_dirichlet(y, 4, alpha=0.01, seed=0)).tolist()
    [[0, 1, 0, 0], [0, 24, 24, 25], [25, 0, 0, 0], [0, 0, 1, 0]]
    """
    y, k, seed = _check_common(labels, num_clients, seed)
    alpha = check_finite("alpha", alpha, low=0, low_open=True)
    min_size = _check_int("min_size", min_size, low=0, high=y.size // k,
                          why="num_clients * min_size must not exceed the number of examples")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    counts = np.zeros((k, classes.size), dtype=np.int64)
    members = []
    for j, c in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        p = rng.dirichlet(np.full(k, alpha))
        # Rounding cumulative shares (not each share) keeps the counts summing to the class size.
        cuts = np.rint(np.cumsum(p)[:-1] * idx.size).astype(np.int64)
        counts[:, j] = np.diff(cuts, prepend=0, append=idx.size)
        members.append(idx)
    _repair_min_size(counts, min_size)
    owner = np.empty(y.size, dtype=np.int64)
    for j, idx in enumerate(members):
        owner[idx] = np.repeat(np.arange(k), counts[:, j])
    return _split_by_owner(owner, k)


def partition_shards(labels, num_clients, *, shards_per_client=2, seed=0) -> list[np.ndarray]:
    """Pathological non-IID split (McMahan et al. 2017): label-sorted shards, a few per client.

    Examples are sorted by label (order within a class random), cut into
    ``num_clients * shards_per_client`` contiguous shards whose sizes differ by at most 1, and
    each client receives ``shards_per_client`` shards drawn without replacement. With 60,000
    examples, 100 clients and 2 shards each: 200 shards of 300, as in the paper.

    Args:
        labels: 1-D non-negative integer labels (numpy array, list or torch tensor).
        num_clients: number of clients, in [1, len(labels)].
        shards_per_client: shards per client, in [1, len(labels) // num_clients].
        seed: non-negative integer seed for ``np.random.default_rng``.

    Returns:
        A list of ``num_clients`` sorted int64 index arrays, disjoint and covering 0..n-1.

    Raises:
        ValueError: if ``labels``, ``num_clients``, ``shards_per_client`` or ``seed`` is invalid.

    >>> y = np.repeat(np.arange(5), 4)
    >>> parts = partition_shards(y, 5, shards_per_client=2, seed=0)
    >>> [len(p) for p in parts]
    [4, 4, 4, 4, 4]
    >>> max(len(np.unique(y[p])) for p in parts)
    2
    """
    y, k, seed = _check_common(labels, num_clients, seed)
    s = _check_int("shards_per_client", shards_per_client, low=1, high=y.size // k,
                   why="num_clients * shards_per_client must not exceed the number of examples")
    rng = np.random.default_rng(seed)
    # Shuffle first, then sort stably: the order inside each class is random, not by index.
    perm = rng.permutation(y.size)
    order = perm[np.argsort(y[perm], kind="stable")]
    shards = np.array_split(order, k * s)
    owner = np.empty(y.size, dtype=np.int64)
    for shard_id, client in zip(rng.permutation(k * s), np.repeat(np.arange(k), s)):
        owner[shards[shard_id]] = client
    return _split_by_owner(owner, k)


def partition_quantity_skew(labels, num_clients, *, alpha, seed=0, min_size=1) -> list[np.ndarray]:
    """Quantity-skewed split: client sizes follow Dir(alpha) weights, labels IID within each client.

    Each client first gets ``min_size`` examples; the remaining ``n - num_clients * min_size`` are
    shared by proportions p ~ Dir(alpha * 1_K), rounded by largest remainder so sizes sum to n
    exactly. Examples are then dealt from a random permutation. Small alpha gives a few large
    clients and many at ``min_size``; large alpha gives near-equal sizes.

    Args:
        labels: 1-D non-negative integer labels (numpy array, list or torch tensor).
        num_clients: number of clients K, in [1, len(labels)].
        alpha: Dirichlet concentration, a finite number > 0.
        seed: non-negative integer seed for ``np.random.default_rng``.
        min_size: least number of examples per client, in [0, len(labels) // num_clients].

    Returns:
        A list of ``num_clients`` sorted int64 index arrays, disjoint and covering 0..n-1.

    Raises:
        ValueError: if ``labels``, ``num_clients``, ``alpha``, ``seed`` or ``min_size`` is invalid.

    >>> parts = partition_quantity_skew(np.arange(100) % 10, 4, alpha=1000.0, seed=0)
    >>> [len(p) for p in parts]
    [25, 25, 24, 26]
    """
    y, k, seed = _check_common(labels, num_clients, seed)
    alpha = check_finite("alpha", alpha, low=0, low_open=True)
    min_size = _check_int("min_size", min_size, low=0, high=y.size // k,
                          why="num_clients * min_size must not exceed the number of examples")
    rng = np.random.default_rng(seed)
    rest = y.size - k * min_size
    share = rng.dirichlet(np.full(k, alpha)) * rest
    extra = np.floor(share).astype(np.int64)
    # Largest remainder: the leftover units go to the largest fractional parts (ties: lower index).
    leftover = rest - extra.sum()
    extra[np.argsort(-(share - extra), kind="stable")[:leftover]] += 1
    sizes = min_size + extra
    owner = np.empty(y.size, dtype=np.int64)
    owner[rng.permutation(y.size)] = np.repeat(np.arange(k), sizes)
    return _split_by_owner(owner, k)


def label_counts(labels, partition, *, num_classes=None) -> np.ndarray:
    """Count each label in each client's share: the matrix behind per-client label bar plots.

    Args:
        labels: 1-D non-negative integer labels (numpy array, list or torch tensor).
        partition: a list of index arrays into ``labels``, one per client.
        num_classes: number of columns; default ``max(labels) + 1``. Must exceed every label.

    Returns:
        An int64 array of shape (num_clients, num_classes).

    Raises:
        ValueError: if ``labels``, ``partition`` or ``num_classes`` is invalid.

    >>> label_counts([0, 0, 1, 2], [np.array([0, 1]), np.array([2, 3])]).tolist()
    [[2, 0, 0], [0, 1, 1]]
    """
    y = _as_labels(labels)
    low = int(y.max()) + 1
    c = low if num_classes is None else _check_int(
        "num_classes", num_classes, low=low, high=None, why="every label must be below num_classes")
    parts = check_partition(partition, y.size)
    counts = np.zeros((len(parts), c), dtype=np.int64)
    for k, p in enumerate(parts):
        counts[k] = np.bincount(y[p], minlength=c)
    return counts


def describe_partition(labels, partition, *, num_classes=None) -> dict:
    """Summarise a partition in a few plain numbers: sizes, classes per client, skew.

    ``mean_tv_to_global`` is the mean, over clients holding at least one example, of the total
    variation distance between the client's label distribution and that of all ``labels``
    (0 = same mix as the whole dataset, 1 = disjoint labels); it is NaN if every client is empty.

    Args:
        labels: 1-D non-negative integer labels (numpy array, list or torch tensor).
        partition: a list of index arrays into ``labels``, one per client.
        num_classes: as in :func:`label_counts`.

    Returns:
        A dict with ``num_clients``, ``sizes_min``, ``sizes_median``, ``sizes_max``,
        ``mean_classes_per_client`` (classes with at least one example) and ``mean_tv_to_global``,
        as Python ints and floats.

    Raises:
        ValueError: if ``labels``, ``partition`` or ``num_classes`` is invalid.

    >>> y = np.array([0, 0, 1, 1])
    >>> describe_partition(y, [np.array([0, 1]), np.array([2, 3])])
    {'num_clients': 2, 'sizes_min': 2, 'sizes_median': 2.0, 'sizes_max': 2, 'mean_classes_per_client': 1.0, 'mean_tv_to_global': 0.5}
    """
    y = _as_labels(labels)
    counts = label_counts(y, partition, num_classes=num_classes)
    if counts.shape[0] == 0:
        raise ValueError("partition must hold at least one client, got an empty list")
    sizes = counts.sum(axis=1)
    global_dist = np.bincount(y, minlength=counts.shape[1]) / y.size
    held = sizes > 0
    client_dist = counts[held] / sizes[held, None]
    tv = 0.5 * np.abs(client_dist - global_dist).sum(axis=1)
    return {
        "num_clients": int(counts.shape[0]),
        "sizes_min": int(sizes.min()),
        "sizes_median": float(np.median(sizes)),
        "sizes_max": int(sizes.max()),
        "mean_classes_per_client": float((counts > 0).sum(axis=1).mean()),
        "mean_tv_to_global": float(tv.mean()) if held.any() else float("nan"),
    }
