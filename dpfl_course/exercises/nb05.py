"""Notebook 05's exercises: the pathological shard split, FedProx's local step, bytes under dropout."""

from __future__ import annotations

import numpy as np

from dpfl_course.exercises import Feedback, attempt, run_cases


def shard_partition(labels, num_clients, shards_per_client, seed):
    """Reference solution: McMahan et al.'s split, sort by label, cut into shards, deal them at random.

    Returns one sorted index array per client; the shards (``num_clients * shards_per_client`` of
    them, sizes differing by at most one) are contiguous blocks of the label-sorted examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    shards = np.array_split(order, num_clients * shards_per_client)
    dealt = rng.permutation(len(shards)).reshape(num_clients, shards_per_client)
    return [np.sort(np.concatenate([shards[s] for s in row])) for row in dealt]


def fedprox_step(w, grad, w_global, *, mu, lr):
    """Reference solution: one SGD step on loss + mu/2·||w − w_global||², given the loss gradient."""
    w, grad, w_global = (np.asarray(a, dtype=float) for a in (w, grad, w_global))
    return w - lr * (grad + mu * (w - w_global))


def expected_bytes(num_rounds, clients_per_round, dropout, model_bytes):
    """Reference solution: expected bytes both ways when each sampled client drops out with prob. dropout.

    Every sampled client receives the model (down); only survivors, clients_per_round·(1 − dropout)
    of them on average, send one back (up).
    """
    return num_rounds * clients_per_round * model_bytes * (1 + (1 - dropout))


def _as_parts(got):
    parts = [np.asarray(p) for p in got]
    for p in parts:
        if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
            raise TypeError("each client's part must be a 1-D array of integer indices")
    return parts


def check_shard_partition(func) -> Feedback:
    """Check ``func(labels, num_clients, shards_per_client, seed)`` on label-sorted-shard properties.

    Properties checked, each with its own message: a list of one index array per client; every
    example exactly once; sizes as ``shards_per_client`` equal shards give; in a set-up where each
    class fills exactly ``shards_per_client`` shards, no client holds more than
    ``shards_per_client`` labels (the label sort); the same seed gives the same split; the shards
    are dealt at random (over a few seeds, some client holds two different labels).
    """
    # 10 classes of 20 examples, labels interleaved so that index order is not label order.
    aligned = np.tile(np.arange(10), 20)
    # 7 classes of unequal sizes (103 examples), so shards do not divide evenly.
    uneven = np.random.default_rng(12).permutation(np.repeat(np.arange(7), [20, 5, 18, 9, 25, 14, 12]))
    # (labels, num_clients, shards_per_client, each shard holds a single label)
    cases = [(aligned, 10, 2, True), (uneven, 5, 3, False), (aligned, 4, 5, True)]
    for labels, k, s, pure in cases:
        where = f"labels of size {labels.size}, num_clients={k}, shards_per_client={s}"
        splits, failed = attempt(lambda: [_as_parts(func(labels.copy(), k, s, 0)) for _ in range(2)],
                                 where=f"on {where} ")
        if failed is not None:
            return failed
        parts, again = splits
        if len(parts) != k:
            return Feedback(False, f"Not yet: on {where} expected {k} index arrays (one per client), got {len(parts)}.")
        every = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
        if every.size != labels.size or not np.array_equal(np.sort(every), np.arange(labels.size)):
            return Feedback(False, f"Not yet: on {where} every example must belong to exactly one client "
                                   f"(indices 0..{labels.size - 1}, each once).")
        sizes = sorted(len(p) for p in parts)
        low = (labels.size // (k * s)) * s
        if sizes[0] < low or sizes[-1] > low + s:
            return Feedback(False, f"Not yet: on {where} clients should hold {s} shards of about "
                                   f"{labels.size / (k * s):.1f} examples, got sizes {sizes}.")
        if pure:
            most = max(len(np.unique(labels[p])) for p in parts)
            if most > s:
                return Feedback(False, f"Not yet: on {where} a client holds {most} different labels; with the "
                                       f"examples sorted by label before cutting shards, each shard holds one "
                                       f"label here, so a client holds at most {s}.")
        if any(not np.array_equal(np.sort(a), np.sort(b)) for a, b in zip(parts, again)):
            return Feedback(False, f"Not yet: on {where} the same seed gave two different splits; draw all "
                                   f"randomness from np.random.default_rng(seed).")
    # Random dealing: with consecutive shards per client, every client of the aligned case holds one label.
    try:
        mixed = any(max(len(np.unique(aligned[p])) for p in _as_parts(func(aligned.copy(), 10, 2, seed))) == 2
                    for seed in range(5))
        splits = {tuple(np.sort(_as_parts(func(aligned.copy(), 10, 2, seed))[0]).tolist()) for seed in range(5)}
    except Exception as error:
        return Feedback(False, f"Not yet: with seeds 0–4 your function raised {type(error).__name__}: {error}")
    if not mixed or len(splits) == 1:
        return Feedback(False, "Not yet: the shards are not dealt at random; shuffle the shard ids with the "
                               "seeded generator before giving each client its shards.")
    return Feedback(True, f"Correct on all {len(cases)} splits, and the shards are dealt at random.")


_PROX_CASES = [
    (([1.0, 2.0], [0.5, -0.5], [1.0, 2.0], 0.1, 1.0), [0.5, 2.5]),  # at the global model: plain SGD
    (([1.0, 2.0], [0.0, 0.0], [0.0, 0.0], 1.0, 0.5), [0.5, 1.0]),  # no loss gradient: pulled halfway back
    (([3.0], [1.0], [1.0], 0.5, 0.1), [2.8]),
    (([0.2, -0.4, 1.0], [0.1, 0.2, -0.3], [0.0, 0.0, 0.5], 0.0, 0.3), [0.17, -0.46, 1.09]),  # mu = 0: FedAvg
]


def check_fedprox_step(func) -> Feedback:
    """Check ``func(w, grad, w_global, mu=..., lr=...)`` is w − lr·(grad + mu·(w − w_global))."""
    def call(w, grad, w_global, mu, lr):
        return func(np.array(w), np.array(grad), np.array(w_global), mu=mu, lr=lr)

    return run_cases(call, _PROX_CASES,
                     compare=lambda got, want: np.shape(got) == np.shape(want)
                     and np.allclose(np.asarray(got, dtype=float), want, rtol=0, atol=1e-9),
                     describe=lambda a: f"w={a[0]}, grad={a[1]}, w_global={a[2]}, mu={a[3]}, lr={a[4]}")


_BYTES_CASES = [
    ((10, 5, 0.0, 1000), 100_000.0),
    ((10, 5, 0.5, 1000), 75_000.0),
    ((1, 1, 0.9, 9640), 10_604.0),
    ((20, 3, 0.2, 2600), 280_800.0),
]


def check_expected_bytes(func) -> Feedback:
    """Check ``func(num_rounds, clients_per_round, dropout, model_bytes)`` counts down for all, up for survivors."""
    return run_cases(func, _BYTES_CASES,
                     compare=lambda got, want: np.isfinite(float(got)) and abs(float(got) - want) <= 1e-6 * want,
                     describe=lambda a: f"num_rounds={a[0]}, clients_per_round={a[1]}, dropout={a[2]}, "
                                        f"model_bytes={a[3]}")
