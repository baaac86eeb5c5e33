"""Tests for dpfl_course.data.partition: structural properties, skew behaviour, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpfl_course.data.partition import (
    describe_partition,
    label_counts,
    partition_dirichlet,
    partition_iid,
    partition_quantity_skew,
    partition_shards,
)
from dpfl_course.data.partition import _repair_min_size  # the repair rule, tested on counts

PROPERTY = settings(max_examples=60, deadline=None)

# Digits-sized labels: 1,797 examples, about 180 per class, in random order.
DIGITS_LIKE = np.random.default_rng(0).permutation(np.arange(1797) % 10)


def assert_valid_partition(parts, n, num_clients):
    assert isinstance(parts, list) and len(parts) == num_clients
    for p in parts:
        assert isinstance(p, np.ndarray) and p.dtype == np.int64 and p.ndim == 1
        assert np.all(np.diff(p) > 0), "each client's indices must be strictly ascending"
    # Strictly ascending within clients + the union being exactly 0..n-1 = disjoint and covering.
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def max_tv(labels, parts):
    counts = label_counts(labels, parts)
    client = counts / counts.sum(axis=1, keepdims=True)
    glob = np.bincount(labels) / labels.size
    return (0.5 * np.abs(client - glob).sum(axis=1)).max()


@st.composite
def labels_and_clients(draw):
    num_classes = draw(st.integers(1, 10))
    labels = np.array(
        draw(st.lists(st.integers(0, num_classes - 1), min_size=1, max_size=300)), dtype=np.int64
    )
    return labels, draw(st.integers(1, labels.size))


seeds = st.integers(0, 2**32 - 1)
alphas = st.floats(1e-3, 1e3)


# --- properties shared by every partitioner -------------------------------------------------


@PROPERTY
@given(labels_and_clients(), seeds)
def test_iid_properties(lc, seed):
    labels, k = lc
    parts = partition_iid(labels, k, seed=seed)
    assert_valid_partition(parts, labels.size, k)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert_same(parts, partition_iid(labels, k, seed=seed))


@PROPERTY
@given(labels_and_clients(), alphas, seeds, st.data())
def test_dirichlet_properties(lc, alpha, seed, data):
    labels, k = lc
    min_size = data.draw(st.integers(0, labels.size // k), label="min_size")
    parts = partition_dirichlet(labels, k, alpha=alpha, seed=seed, min_size=min_size)
    assert_valid_partition(parts, labels.size, k)
    assert min(len(p) for p in parts) >= min_size
    assert_same(parts, partition_dirichlet(labels, k, alpha=alpha, seed=seed, min_size=min_size))


@PROPERTY
@given(labels_and_clients(), seeds, st.data())
def test_shards_properties(lc, seed, data):
    labels, k = lc
    s = data.draw(st.integers(1, labels.size // k), label="shards_per_client")
    parts = partition_shards(labels, k, shards_per_client=s, seed=seed)
    assert_valid_partition(parts, labels.size, k)
    # s shards each of floor(n / (k s)) or one more.
    shard = labels.size // (k * s)
    assert all(s * shard <= len(p) <= s * (shard + 1) for p in parts)
    assert_same(parts, partition_shards(labels, k, shards_per_client=s, seed=seed))


@PROPERTY
@given(labels_and_clients(), alphas, seeds, st.data())
def test_quantity_skew_properties(lc, alpha, seed, data):
    labels, k = lc
    min_size = data.draw(st.integers(0, labels.size // k), label="min_size")
    parts = partition_quantity_skew(labels, k, alpha=alpha, seed=seed, min_size=min_size)
    assert_valid_partition(parts, labels.size, k)
    assert min(len(p) for p in parts) >= min_size
    assert_same(parts, partition_quantity_skew(labels, k, alpha=alpha, seed=seed, min_size=min_size))


@pytest.mark.parametrize(
    "split",
    [
        lambda y, seed: partition_iid(y, 10, seed=seed),
        lambda y, seed: partition_dirichlet(y, 10, alpha=1.0, seed=seed),
        lambda y, seed: partition_shards(y, 10, seed=seed),
        lambda y, seed: partition_quantity_skew(y, 10, alpha=1.0, seed=seed),
    ],
    ids=["iid", "dirichlet", "shards", "quantity"],
)
def test_seed_changes_split_and_torch_input_matches_numpy(split):
    torch = pytest.importorskip("torch")
    parts = split(DIGITS_LIKE, 0)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, split(DIGITS_LIKE, 1)))
    assert_same(parts, split(torch.from_numpy(DIGITS_LIKE), 0))
    assert_same(parts, split(DIGITS_LIKE.tolist(), 0))


# --- Dirichlet label skew ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_dirichlet_huge_alpha_matches_global_label_mix(seed):
    parts = partition_dirichlet(DIGITS_LIKE, 10, alpha=1e4, seed=seed)
    # Each client gets ~18 of each class's ~180. Two error sources: rounding the cumulative cuts
    # moves each count by < 1 (at most 10 examples over ~180, TV < 10/170 ≈ 0.06 even if every
    # class erred the same way), and Dir(1e4) shares have relative sd ≈ sqrt(0.9/1e5) ≈ 1 %
    # (TV ≈ 0.005, < 0.03 at 5 sd). So 0.1 cannot fail by chance; an IID split, for
    # comparison, has max TV ≈ 0.12-0.17 here, and any real label skew far more.
    assert max_tv(DIGITS_LIKE, parts) < 0.1


@pytest.mark.parametrize("min_size", [0, 1])
@pytest.mark.parametrize("seed", range(10))
def test_dirichlet_tiny_alpha_gives_each_client_few_classes(seed, min_size):
    parts = partition_dirichlet(DIGITS_LIKE, 10, alpha=1e-3, seed=seed, min_size=min_size)
    counts = label_counts(DIGITS_LIKE, parts)
    classes = (counts > 0).sum(axis=1)
    # Dir(1e-3) puts a class (almost) wholly on one client, so there are ~10 (client, class) pairs
    # plus rare leaks of single examples, plus (min_size=1) one class for each empty client.
    # Which client wins each class is uniform, so one client may well win 4 or 5 classes
    # (P ≈ 13 % per seed): "every client ≤ 3" would be luck. But 4 clients with ≥ 3 classes
    # would need ≥ 12 pairs, i.e. several leaks at once: 0 of 2,000 seeds did.
    assert classes.mean() <= 2
    assert (classes <= 2).sum() >= 7
    assert describe_partition(DIGITS_LIKE, parts)["mean_tv_to_global"] >= 0.5


def test_dirichlet_repair_terminates_and_keeps_skew():
    y = np.arange(1000) % 10
    parts = partition_dirichlet(y, 100, alpha=1e-3, seed=0, min_size=1)
    assert_valid_partition(parts, 1000, 100)
    assert min(len(p) for p in parts) == 1
    # Receivers get a single example, so ~90 clients hold exactly one class.
    assert np.mean((label_counts(y, parts) > 0).sum(axis=1) == 1) >= 0.8


@pytest.mark.parametrize("seed", range(5))
def test_dirichlet_min_size_at_its_limit_forces_equal_sizes_and_keeps_skew(seed):
    y = np.arange(6000) % 10
    parts = partition_dirichlet(y, 100, alpha=1e-3, seed=seed, min_size=60)
    assert {len(p) for p in parts} == {60}
    # ~90 clients start empty. Each takes one class block and keeps taking a class it holds; it
    # gets another class only when its block runs dry or the donor reaches min_size, events that
    # number about (blocks + donors) ≈ 20, so about 1.2 classes per client. A repair that ignored
    # classes (or took from whichever client is largest) gives ~9.
    assert (label_counts(y, parts) > 0).sum(axis=1).mean() <= 1.5


def test_repair_gives_an_empty_client_the_largest_block_then_the_same_class():
    counts = np.array([[20, 0, 5], [0, 0, 0], [0, 3, 0]])
    _repair_min_size(counts, 2)
    np.testing.assert_array_equal(counts, [[18, 0, 5], [2, 0, 0], [0, 3, 0]])


def test_repair_prefers_a_class_the_receiver_holds_over_the_largest_donor():
    # Client 0 is the largest, but client 1 holds class 1, which the receiver (client 2) has.
    counts = np.array([[30, 0], [0, 8], [0, 1]])
    _repair_min_size(counts, 4)
    np.testing.assert_array_equal(counts, [[30, 0], [0, 5], [0, 4]])


def test_repair_never_takes_a_donor_below_min_size():
    # Client 1 holds the shared class but can spare only 1; the rest comes from client 0.
    counts = np.array([[10, 0], [0, 4], [0, 1]])
    _repair_min_size(counts, 3)
    np.testing.assert_array_equal(counts, [[9, 0], [0, 3], [1, 2]])
    assert counts.sum() == 15


# --- shards -------------------------------------------------------------------------------------


def test_shards_even_split_gives_at_most_two_classes_and_whole_shards():
    y = np.random.default_rng(1).permutation(np.repeat(np.arange(10), 60))
    for seed in range(5):
        parts = partition_shards(y, 10, shards_per_client=2, seed=seed)
        counts = label_counts(y, parts)
        assert [len(p) for p in parts] == [60] * 10
        assert (counts > 0).sum(axis=1).max() <= 2
        # Every shard of 30 lies inside one class of 60, so counts come in whole shards.
        assert np.all(counts % 30 == 0)


def test_shards_mcmahan_2017_configuration():
    y = np.arange(60000) % 10
    parts = partition_shards(y, 100, shards_per_client=2, seed=0)
    counts = label_counts(y, parts)
    assert [len(p) for p in parts] == [600] * 100  # 200 shards of 300
    assert np.all(counts % 300 == 0)
    assert (counts > 0).sum(axis=1).max() <= 2


def test_shards_order_within_a_class_is_random():
    # With one class, an unshuffled stable sort would hand out contiguous blocks of indices.
    parts = partition_shards(np.zeros(100, dtype=np.int64), 10, shards_per_client=1, seed=0)
    assert not all(np.all(np.diff(p) == 1) for p in parts)


# --- IID ----------------------------------------------------------------------------------------


def test_iid_sizes_and_label_mix():
    parts = partition_iid(DIGITS_LIKE, 7, seed=3)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 1797
    assert sizes == [257, 257, 257, 257, 257, 256, 256]


# --- quantity skew ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_quantity_skew_small_alpha_gives_very_unequal_sizes(seed):
    parts = partition_quantity_skew(DIGITS_LIKE, 10, alpha=0.01, seed=seed, min_size=1)
    sizes = np.array([len(p) for p in parts])
    assert sizes.sum() == 1797 and sizes.min() >= 1
    # Dir(0.01 * 1_10) is nearly one-hot (the alphas sum to 0.1). Simulating 10^6 draws: the
    # largest share is below 1/3 in 0.004 % of them, and the median client gets more than half an
    # equal share (90 examples) in 0.0005 %; an equal split would give every client ~180.
    assert sizes.max() > 1797 / 3
    assert np.median(sizes) < 90


@pytest.mark.parametrize("seed", range(5))
def test_quantity_skew_huge_alpha_gives_near_equal_sizes(seed):
    parts = partition_quantity_skew(np.arange(1000) % 10, 10, alpha=1e6, seed=seed, min_size=0)
    sizes = np.array([len(p) for p in parts])
    assert sizes.sum() == 1000
    # Shares 100 ± 0.1 (sd), rounded by largest remainder (off by < 1 each).
    assert sizes.min() >= 99 and sizes.max() <= 101


def test_quantity_skew_labels_are_iid_within_clients():
    parts = partition_quantity_skew(DIGITS_LIKE, 3, alpha=1e6, seed=0)
    # ~600 examples per client drawn at random: TV to the global mix is ~0.05, far below label skew.
    assert max_tv(DIGITS_LIKE, parts) < 0.15


# --- label_counts / describe_partition ------------------------------------------------------------


def test_label_counts_and_describe_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    parts = [np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([], dtype=np.int64)]
    np.testing.assert_array_equal(label_counts(y, parts), [[2, 1, 0], [0, 1, 2], [0, 0, 0]])
    assert label_counts(y, parts, num_classes=5).shape == (3, 5)
    d = describe_partition(y, parts)
    # Client 0: (2/3, 1/3, 0) vs (1/3, 1/3, 1/3): TV = 1/3; client 1 likewise; the empty one is
    # skipped (it has no label distribution) but counts as a client with 0 classes and size 0.
    assert d == {
        "num_clients": 3,
        "sizes_min": 0,
        "sizes_median": 3.0,
        "sizes_max": 3,
        "mean_classes_per_client": pytest.approx(4 / 3),
        "mean_tv_to_global": pytest.approx(1 / 3),
    }
    assert all(type(v) in (int, float) for v in d.values())


def test_describe_iid_vs_shards():
    iid = describe_partition(DIGITS_LIKE, partition_iid(DIGITS_LIKE, 10, seed=0))
    shards = describe_partition(DIGITS_LIKE, partition_shards(DIGITS_LIKE, 10, seed=0))
    assert iid["mean_classes_per_client"] == 10
    assert shards["mean_classes_per_client"] <= 3
    assert iid["mean_tv_to_global"] < 0.15 < 0.6 < shards["mean_tv_to_global"]


@pytest.mark.parametrize(
    "parts, num_classes, match",
    [
        ([np.array([0, 6])], None, "partition"),
        ([np.array([-1])], None, "partition"),
        ([np.array([0.0, 1.0])], None, "partition"),
        ([np.array([[0, 1]])], None, "partition"),
        ([np.array([0, 1])], 2, "num_classes"),
    ],
)
def test_label_counts_rejects_bad_input(parts, num_classes, match):
    with pytest.raises(ValueError, match=match):
        label_counts(np.array([0, 1, 2, 0, 1, 2]), parts, num_classes=num_classes)


# --- validation ---------------------------------------------------------------------------------

Y = np.arange(20) % 4

BAD_CALLS = [
    # labels
    (lambda: partition_iid([], 2), "labels"),
    (lambda: partition_iid(np.zeros((4, 2), dtype=np.int64), 2), "labels"),
    (lambda: partition_iid(np.array([0.0, 1.0, 1.0]), 2), "labels"),
    (lambda: partition_iid(np.array([True, False]), 2), "labels"),
    (lambda: partition_iid(np.array([0, -1, 2]), 2), "labels"),
    (lambda: partition_dirichlet(np.array([[0, 1]]), 1, alpha=1.0), "labels"),
    (lambda: label_counts(np.array([0.5]), [np.array([0])]), "labels"),
    # num_clients
    (lambda: partition_iid(Y, 21), r"num_clients must be an integer in \[1, 20\]"),
    (lambda: partition_iid(Y, 0), "num_clients"),
    (lambda: partition_iid(Y, 2.0), "num_clients"),
    (lambda: partition_dirichlet(Y, 21, alpha=1.0), "num_clients"),
    (lambda: partition_shards(Y, 21), "num_clients"),
    (lambda: partition_quantity_skew(Y, 21, alpha=1.0), "num_clients"),
    # alpha
    (lambda: partition_dirichlet(Y, 2, alpha=0.0), r"alpha must be a finite number in \(0, inf\)"),
    (lambda: partition_dirichlet(Y, 2, alpha=-1.0), "alpha"),
    (lambda: partition_dirichlet(Y, 2, alpha=float("nan")), "alpha"),
    (lambda: partition_dirichlet(Y, 2, alpha=float("inf")), "alpha"),
    (lambda: partition_quantity_skew(Y, 2, alpha=0.0), "alpha"),
    (lambda: partition_quantity_skew(Y, 2, alpha=float("nan")), "alpha"),
    (lambda: partition_quantity_skew(Y, 2, alpha=float("inf")), "alpha"),
    # min_size / shards_per_client
    (lambda: partition_dirichlet(Y, 3, alpha=1.0, min_size=7), r"min_size must be an integer in \[0, 6\]"),
    (lambda: partition_dirichlet(Y, 3, alpha=1.0, min_size=-1), "min_size"),
    (lambda: partition_quantity_skew(Y, 3, alpha=1.0, min_size=7), "min_size"),
    (lambda: partition_shards(Y, 3, shards_per_client=7), r"shards_per_client must be an integer in \[1, 6\]"),
    (lambda: partition_shards(Y, 3, shards_per_client=0), "shards_per_client"),
    # seed
    (lambda: partition_iid(Y, 2, seed=-1), "seed"),
    (lambda: partition_dirichlet(Y, 2, alpha=1.0, seed=-1), "seed"),
    (lambda: partition_shards(Y, 2, seed=1.5), "seed"),
    (lambda: partition_quantity_skew(Y, 2, alpha=1.0, seed=None), "seed"),
]


@pytest.mark.parametrize("call, match", BAD_CALLS)
def test_rejects_bad_arguments_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
