import numpy as np

from dpfl_course.data import partition_iid, partition_shards
from dpfl_course.exercises import nb05


def test_reference_solutions_pass():
    assert nb05.check_shard_partition(nb05.shard_partition).passed
    assert nb05.check_fedprox_step(nb05.fedprox_step).passed
    assert nb05.check_expected_bytes(nb05.expected_bytes).passed


def test_shard_checker_accepts_the_package_partitioner():
    # a second correct implementation (different random dealing) must pass too
    package = lambda labels, k, s, seed: partition_shards(labels, k, shards_per_client=s, seed=seed)
    assert nb05.check_shard_partition(package).passed


def test_shard_checker_rejects_shards_cut_without_sorting_by_label():
    # plausible mistake: cut the examples in index order into shards, so every shard is a random mix
    def unsorted(labels, k, s, seed):
        rng = np.random.default_rng(seed)
        shards = np.array_split(np.arange(len(labels)), k * s)
        dealt = rng.permutation(k * s).reshape(k, s)
        return [np.sort(np.concatenate([shards[i] for i in row])) for row in dealt]

    fb = nb05.check_shard_partition(unsorted)
    assert not fb.passed and "different labels" in fb.message


def test_shard_checker_rejects_an_iid_split():
    fb = nb05.check_shard_partition(lambda labels, k, s, seed: partition_iid(labels, k, seed=seed))
    assert not fb.passed and "different labels" in fb.message


def test_shard_checker_rejects_consecutive_shards_per_client():
    # plausible mistake: sort and cut correctly, but give client k shards k*s .. k*s+s-1 (no shuffle),
    # so on the aligned labels every client holds a single digit, whatever the seed
    def consecutive(labels, k, s, seed):
        shards = np.array_split(np.argsort(labels, kind="stable"), k * s)
        return [np.sort(np.concatenate(shards[i * s:(i + 1) * s])) for i in range(k)]

    fb = nb05.check_shard_partition(consecutive)
    assert not fb.passed and "not dealt at random" in fb.message


def test_shard_checker_rejects_lost_examples_and_unseeded_randomness():
    # plausible mistake: equal shards by integer division, dropping the remainder
    def drops_remainder(labels, k, s, seed):
        order = np.argsort(labels, kind="stable")
        size = len(labels) // (k * s)
        shards = [order[i * size:(i + 1) * size] for i in range(k * s)]
        dealt = np.random.default_rng(seed).permutation(k * s).reshape(k, s)
        return [np.sort(np.concatenate([shards[i] for i in row])) for row in dealt]

    fb = nb05.check_shard_partition(drops_remainder)
    assert not fb.passed and "exactly one client" in fb.message

    # plausible mistake: the global generator instead of the seed, so the same seed gives new splits
    fresh = np.random.default_rng(123)

    def unseeded(labels, k, s, seed):
        return nb05.shard_partition(labels, k, s, int(fresh.integers(1 << 30)))

    fb = nb05.check_shard_partition(unseeded)
    assert not fb.passed and "same seed" in fb.message


def test_fedprox_checker_rejects_a_missing_or_halved_proximal_gradient():
    # plausible mistake: differentiating mu/2·||w − w_global||² to mu/2·(w − w_global)
    halved = lambda w, grad, w_global, *, mu, lr: w - lr * (grad + mu / 2 * (w - w_global))
    assert not nb05.check_fedprox_step(halved).passed
    # plausible mistake: the sign of the pull (towards moving away from the global model)
    flipped = lambda w, grad, w_global, *, mu, lr: w - lr * (grad + mu * (w_global - w))
    assert not nb05.check_fedprox_step(flipped).passed
    plain_sgd = lambda w, grad, w_global, *, mu, lr: w - lr * grad
    assert not nb05.check_fedprox_step(plain_sgd).passed


def test_bytes_checker_rejects_dropout_on_both_directions():
    # plausible mistake: survivors counted both ways, although every sampled client was sent the model
    wrong = lambda r, m, p, b: 2 * r * m * (1 - p) * b
    fb = nb05.check_expected_bytes(wrong)
    assert not fb.passed and "dropout=0.5" in fb.message
    up_only = lambda r, m, p, b: r * m * (1 - p) * b
    assert not nb05.check_expected_bytes(up_only).passed


def test_expected_bytes_matches_a_simulated_count():
    # the formula is an expectation over independent dropouts: simulate it with a fixed seed.
    # 20,000 rounds of 5 clients: the up-count's standard error is sqrt(5·0.3·0.7/20000)·... ≈ 0.2 %
    # of its mean, so a 2 % tolerance is 10 standard errors.
    rng = np.random.default_rng(0)
    rounds, m, p, size = 20_000, 5, 0.3, 100
    survivors = (rng.random((rounds, m)) >= p).sum()
    simulated = rounds * m * size + survivors * size
    assert abs(simulated / nb05.expected_bytes(rounds, m, p, size) - 1) < 0.02


def test_skeletons_give_messages_not_tracebacks():
    def skeleton(*args, **kwargs):
        raise NotImplementedError("Student exercise")

    for check in (nb05.check_shard_partition, nb05.check_fedprox_step, nb05.check_expected_bytes):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb05.check_shard_partition(lambda labels, k, s, seed: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
