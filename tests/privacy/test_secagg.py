"""Secure aggregation: the sum is exact, single uploads look like noise, dropouts (before and after
uploading) are recovered from Shamir shares, and the server never receives both secrets of a client."""

import itertools

import numpy as np
import pytest
from scipy import stats

from dpfl_course.privacy import fixed_point, masking, secagg, shamir

MOD32 = np.uint64(2**32 - 1)


def plain_encoded_sum(updates, clients, *, scale=fixed_point.DEFAULT_SCALE, bits=32):
    encoded = fixed_point.encode(updates, scale=scale, bits=bits, num_clients=len(updates))
    total = np.zeros(updates.shape[1], dtype=np.uint64)
    for u in clients:
        total += encoded[u]
    return total & np.uint64((1 << bits) - 1) if bits < 64 else total


# ---------------------------------------------------------------- the protocol is exact
CASES = [(n, seed) for n in (2, 3, 5, 8) for seed in (0, 1)]


@pytest.mark.parametrize("n,seed", CASES, ids=[f"n{n}-seed{s}" for n, s in CASES])
def test_secure_sum_equals_plain_sum_exactly_for_every_dropout_set(n, seed):
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=(n, 37))
    threshold = n // 2 + 1 if n > 2 else 2
    checked = 0
    for d in range(0, n - threshold + 1):
        for dropped in itertools.combinations(range(n), d):
            result = secagg.secure_sum(x, threshold=threshold, dropouts=dropped, seed=seed)
            survivors = [u for u in range(n) if u not in dropped]
            assert result.survivors == tuple(survivors) and result.dropouts == tuple(dropped)
            np.testing.assert_array_equal(result.sum_encoded, plain_encoded_sum(x, survivors))
            rounded = np.rint(x[survivors] * fixed_point.DEFAULT_SCALE).sum(axis=0) / fixed_point.DEFAULT_SCALE
            np.testing.assert_array_equal(result.sum, rounded)
            checked += 1
    assert checked >= 1


def test_secure_sum_is_exact_without_seed_and_in_64_bits():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 50))
    result = secagg.secure_sum(x, threshold=3, dropouts=[2])  # operating-system keys
    np.testing.assert_array_equal(result.sum_encoded, plain_encoded_sum(x, [0, 1, 3]))
    result = secagg.secure_sum(x, threshold=2, bits=64, scale=2.0**30, seed=3, dropouts=[0, 1])
    np.testing.assert_array_equal(result.sum_encoded, plain_encoded_sum(x, [2, 3], bits=64, scale=2.0**30))


def test_seeded_runs_are_repeatable_and_seeds_change_the_masks():
    x = np.random.default_rng(1).normal(size=(3, 20))
    a, b = secagg.secure_sum(x, seed=5), secagg.secure_sum(x, seed=5)
    c = secagg.secure_sum(x, seed=6)
    np.testing.assert_array_equal(a.masked_uploads[0], b.masked_uploads[0])
    assert (a.masked_uploads[0] != c.masked_uploads[0]).mean() > 0.9
    np.testing.assert_array_equal(a.sum, c.sum)  # the sum does not depend on the keys


# ---------------------------------------------------------------- what the server sees
def test_a_masked_upload_is_uncorrelated_with_its_update_and_uniform():
    # A smooth, strongly structured update (a ramp): any leak would show as correlation.
    d, n = 20_000, 5
    x = np.tile(np.linspace(-1, 1, d), (n, 1)) * np.arange(1, n + 1)[:, None]
    result = secagg.secure_sum(x, threshold=3, seed=0)
    for u, y in result.masked_uploads.items():
        r = np.corrcoef(y.astype(np.float64), x[u])[0, 1]
        # Pearson r of independent vectors has standard error ≈ 1/√d; 5 standard errors
        assert abs(r) < 5 / np.sqrt(d), (u, r)
        # uniform on [0, 2^32): 64 equal bins, chi-square at a fixed seed (p < 1e-3 would be a leak or a bug)
        counts = np.bincount((y >> np.uint64(26)).astype(np.int64), minlength=64)
        assert stats.chisquare(counts).pvalue > 1e-3
    # the check can fail: the plain encoding itself is perfectly correlated and far from uniform
    plain = fixed_point.encode(x[0], num_clients=n)
    assert np.corrcoef(fixed_point.decode(plain), x[0])[0, 1] > 0.999
    assert stats.chisquare(np.bincount((plain >> np.uint64(26)).astype(np.int64), minlength=64)).pvalue < 1e-3


def test_self_mask_alone_hides_an_update_only_pairwise_masks_cancel():
    # Without the self mask a client's upload minus all its pairwise masks is x_u; the test that
    # uploads look uniform above covers the self mask; here: pairwise masks sum to zero.
    n, d = 4, 100
    clients = [secagg.SecAggClient(u, num_clients=n, threshold=3, seed=2) for u in range(n)]
    keys = {c.client_id: c.public_key for c in clients}
    zero = np.zeros(d, dtype=np.uint64)
    total = sum(c.masked_input(zero, keys) for c in clients) & MOD32
    self_masks = sum(masking.prg_mask(c._self_seed, d) for c in clients) & MOD32
    np.testing.assert_array_equal(total, self_masks)


# ---------------------------------------------------------------- dropouts
def test_too_few_survivors_is_a_clear_recovery_error():
    x = np.ones((5, 4))
    with pytest.raises(secagg.RecoveryError, match="threshold = 3"):
        secagg.secure_sum(x, threshold=3, dropouts=[0, 1, 2], seed=0)
    assert issubclass(secagg.RecoveryError, ValueError)
    secagg.secure_sum(x, threshold=3, dropouts=[0, 1], seed=0)  # exactly t survivors is enough


def test_never_both_secrets_of_one_client(monkeypatch):
    # Finding 5: what each client actually sends in the unmasking stage is recorded (a spy on
    # SecAggClient.reveal), and revealed_* are built from the shares the server received — so a
    # client that revealed both kinds of share for someone shows up in either.
    sent = []
    real = secagg.SecAggClient.reveal

    def spy(self, dropped, survivors):
        out = real(self, dropped, survivors)
        sent.append((self.client_id, set(out["self_seed"]), set(out["private_key"])))
        return out

    monkeypatch.setattr(secagg.SecAggClient, "reveal", spy)
    x = np.random.default_rng(3).normal(size=(6, 10))
    for dropouts, late in [((1, 4), ()), ((), ()), ((1,), (3,)), ((0, 5), (2,))]:
        sent.clear()
        result = secagg.secure_sum(x, threshold=3, dropouts=dropouts, late_dropouts=late, seed=0)
        survivors = set(range(6)) - set(dropouts)
        assert sorted(u for u, _, _ in sent) == sorted(survivors - set(late))  # only the clients still there
        for _, self_seeds, keys in sent:
            assert self_seeds == survivors and keys == set(dropouts) and not self_seeds & keys
        assert set(result.revealed_self_seeds) == survivors
        assert set(result.revealed_private_keys) == set(dropouts)
        assert set(result.masked_uploads) == survivors  # dropouts uploaded nothing; late dropouts did
    client = secagg.SecAggClient(0, num_clients=3, threshold=2, seed=0)
    with pytest.raises(ValueError, match="never reveal both"):
        client.reveal(dropped=[1], survivors=[0, 1, 2])


def _clients_with_shares(n, t, seed=0):
    clients = [secagg.SecAggClient(u, num_clients=n, threshold=t, seed=seed) for u in range(n)]
    for c in clients:
        for v, pair in c.share_secrets().items():
            clients[v].receive_shares(c.client_id, pair)
    return clients


def test_a_client_reveals_once_per_round_and_checks_the_lists():
    # Finding 4: a second call with other lists handed out the other secret of client 2.
    client = _clients_with_shares(3, 2)[0]
    first = client.reveal(dropped=[2], survivors=[0, 1])
    assert set(first["private_key"]) == {2} and set(first["self_seed"]) == {0, 1}
    with pytest.raises(ValueError, match="once per round"):
        client.reveal(dropped=[], survivors=[0, 1, 2])
    fresh = _clients_with_shares(4, 3)
    with pytest.raises(ValueError, match="survivors must be an integer in"):
        fresh[0].reveal(dropped=[], survivors=[0, 1, 7])
    with pytest.raises(ValueError, match="dropped must be an integer in"):
        fresh[0].reveal(dropped=[-1], survivors=[0, 1, 2])
    with pytest.raises(ValueError, match="must include this client"):
        fresh[0].reveal(dropped=[0], survivors=[1, 2, 3])
    with pytest.raises(secagg.RecoveryError, match="threshold = 3"):
        fresh[1].reveal(dropped=[2, 3], survivors=[0, 1])
    assert not fresh[2]._revealed  # a refused call reveals nothing and does not use up the round
    fresh[2].reveal(dropped=[3], survivors=[0, 1, 2])


def test_late_dropouts_stay_in_the_sum_and_need_threshold_revealers():
    # Finding 6a: a client that uploads and then drops before unmasking (U3 minus U4 in Bonawitz et al.).
    n = 6
    x = np.random.default_rng(5).normal(size=(n, 25))
    for dropouts, late in [((), (2,)), ((1,), (4,)), ((0,), (3, 5))]:
        result = secagg.secure_sum(x, threshold=3, dropouts=dropouts, late_dropouts=late, seed=1)
        uploaded = [u for u in range(n) if u not in dropouts]
        assert result.survivors == tuple(uploaded) and result.late_dropouts == tuple(sorted(late))
        np.testing.assert_array_equal(result.sum_encoded, plain_encoded_sum(x, uploaded))
    # 6 − 1 dropout − 3 late = 2 revealers < t = 3: abort, although 5 uploads arrived
    with pytest.raises(secagg.RecoveryError, match="unmasking stage must number at least threshold = 3"):
        secagg.secure_sum(x, threshold=3, dropouts=[0], late_dropouts=[1, 2, 3], seed=1)
    with pytest.raises(ValueError, match="disjoint"):
        secagg.secure_sum(x, threshold=3, dropouts=[0], late_dropouts=[0], seed=1)


def test_self_mask_total_is_what_remains_without_it():
    # What notebook 11 section 6 shows: uploads minus the self masks still carry a dropped client's
    # pairwise masks; with no dropout they are exactly the sum.
    x = np.random.default_rng(6).normal(size=(5, 40))
    for dropouts in [(), (2,)]:
        result = secagg.secure_sum(x, threshold=3, dropouts=dropouts, seed=0)
        partial = (sum(result.masked_uploads.values()) - result.self_mask_total) & MOD32
        assert np.array_equal(partial, result.sum_encoded) == (not dropouts)


def test_seeds_keys_and_share_polynomials_are_per_client_and_round():
    # Finding 9: same self seed / private key for everyone, one coefficient stream for both secrets,
    # or a constant operating-system self seed all passed the old tests.
    clients = [secagg.SecAggClient(u, num_clients=4, threshold=3, seed=s, server_round=r)
               for s in (0, 1) for r in (0, 1) for u in range(4)]
    assert len({c._self_seed for c in clients}) == len(clients)
    assert len({c.public_key for c in clients}) == len(clients)
    unseeded = [secagg.SecAggClient(u, num_clients=3, threshold=2) for u in range(3)]
    assert len({c._self_seed for c in unseeded}) == 3 and bytes(32) not in {c._self_seed for c in unseeded}
    assert len({c.public_key for c in unseeded}) == 3
    # b_u and the key are shared with independent polynomials: with one coefficient stream the two
    # polynomials would differ only in the constant term, so y_b − y_k would not depend on x.
    for seed in (0, None):
        pairs = secagg.SecAggClient(1, num_clients=5, threshold=3, seed=seed).share_secrets()
        diffs = {(b.y - k.y) % shamir.PRIME for b, k in pairs.values()}
        assert len(diffs) == 5


def test_secure_sum_refuses_a_non_list_dropout_and_a_huge_seed():
    # Finding 10: dropouts=3 raised TypeError, seed=2**200 OverflowError
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="dropouts must be a list"):
        secagg.secure_sum(x, threshold=2, dropouts=3)
    with pytest.raises(ValueError, match="seed must be an integer"):
        secagg.secure_sum(x, threshold=2, seed=2**200)
    with pytest.raises(ValueError, match="seed must be an integer"):
        secagg.SecAggClient(0, num_clients=2, threshold=2, seed=2**200)


def test_both_secrets_would_unmask_a_late_upload():
    # Why the rule matters: with b_u AND u's private key the server strips every mask from y_u.
    n, d = 4, 30
    x = np.random.default_rng(4).normal(size=(n, d))
    clients = [secagg.SecAggClient(u, num_clients=n, threshold=3, seed=8) for u in range(n)]
    keys = {c.client_id: c.public_key for c in clients}
    encoded = fixed_point.encode(x, num_clients=n)
    late = clients[2].masked_input(encoded[2], keys)
    recovered = secagg.unmask_with_both_secrets(late, client=clients[2], public_keys=keys)
    np.testing.assert_array_equal(recovered, encoded[2])
    assert not np.array_equal(late, encoded[2])


def test_bytes_uploaded_count_the_masked_vector_and_shares():
    n, d = 5, 100
    result = secagg.secure_sum(np.zeros((n, d)), threshold=3, dropouts=[0], seed=0)
    # 32-byte key, 2 shares of 68 bytes to each of the n − 1 others, d 4-byte values,
    # and in the unmasking stage one 68-byte share for every client (its own self-seed share too)
    assert result.bytes_uploaded[1] == 32 + (n - 1) * 2 * 68 + d * 4 + n * 68
    assert result.bytes_uploaded[0] == 32 + (n - 1) * 2 * 68  # dropped before uploading


@pytest.mark.parametrize("kwargs,match", [
    (dict(threshold=1), "threshold"), (dict(threshold=5), "threshold"), (dict(dropouts=[4]), "dropouts"),
    (dict(dropouts=[1, 1]), "distinct"), (dict(scale=-1.0), "scale"), (dict(bits=100), "bits"),
    (dict(seed=-1), "seed"),
], ids=["t1", "t-too-big", "dropout-id", "dropout-twice", "scale", "bits", "seed"])
def test_secure_sum_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        secagg.secure_sum(np.ones((4, 3)), **{"threshold": 2, **kwargs})


def test_secure_sum_validates_updates():
    with pytest.raises(ValueError, match="finite"):
        secagg.secure_sum(np.array([[1.0, np.nan], [0.0, 0.0]]), threshold=2)
    with pytest.raises(ValueError, match="at least 2 clients"):
        secagg.secure_sum(np.ones((1, 3)), threshold=2)
    with pytest.raises(ValueError, match="scale must be at most"):
        secagg.secure_sum(np.full((4, 3), 1e5), threshold=2)  # 4 · 1e5 · 2^16 > 2^31


