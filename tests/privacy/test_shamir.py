"""Shamir secret sharing: any t shares rebuild the secret, t − 1 say nothing about it."""

import itertools

import numpy as np
import pytest
from scipy import stats

from dpfl_course.privacy import shamir


@pytest.mark.parametrize("threshold,num_shares", [(1, 1), (2, 3), (3, 5), (5, 5)], ids=lambda v: str(v))
def test_any_threshold_shares_rebuild_bytes_and_int(threshold, num_shares):
    key = bytes(range(32))
    shares = shamir.split(key, threshold=threshold, num_shares=num_shares, seed=3)
    int_shares = shamir.split(shamir.PRIME - 1, threshold=threshold, num_shares=num_shares, seed=4)
    for subset in itertools.combinations(range(num_shares), threshold):
        assert shamir.reconstruct([shares[i] for i in subset]) == key
        assert shamir.reconstruct([int_shares[i] for i in subset]) == shamir.PRIME - 1
    # more than t shares also work (the first t distinct are used)
    assert shamir.reconstruct(shares) == key


def test_leading_zero_bytes_and_64_byte_secrets_survive():
    for secret in (bytes(32), b"\x00\x01" + bytes(30), bytes([255]) * 65):
        assert shamir.reconstruct(shamir.split(secret, threshold=2, num_shares=3, seed=0)[1:]) == secret


def test_fewer_than_threshold_shares_are_refused_and_interpolate_to_something_else():
    secret = 123456789
    shares = shamir.split(secret, threshold=4, num_shares=6, seed=5)
    with pytest.raises(ValueError, match="threshold = 4"):
        shamir.reconstruct(shares[:3])
    with pytest.raises(ValueError, match="threshold = 4"):
        shamir.reconstruct([shares[0]] * 4)  # repeated shares are not distinct
    # interpolating t − 1 points anyway gives a lower-degree polynomial's f(0): not the secret
    for subset in itertools.combinations(shares, 3):
        assert shamir.lagrange_at_zero([(s.x, s.y) for s in subset]) != secret


def test_t_minus_one_shares_fit_every_candidate_secret():
    # Perfect secrecy: through the t − 1 known shares and ANY claimed secret (0, s') passes a
    # polynomial of degree t − 1, so the shares rule out no secret. Build it for each candidate,
    # take its value at an unseen x as the "missing" share, and the t shares then rebuild s'.
    shares = shamir.split(2024, threshold=3, num_shares=5, seed=9)
    known = [(s.x, s.y) for s in shares[:2]]
    for candidate in (0, 1, 2024, shamir.PRIME - 1):
        missing = (4, _eval_through([(0, candidate)] + known, 4))
        assert shamir.lagrange_at_zero(known + [missing]) == candidate


def _eval_through(points, x):
    """The value at x of the polynomial through points (Lagrange, mod p)."""
    p = shamir.PRIME
    return shamir.lagrange_at_zero([((px - x) % p, py) for px, py in points])


def test_a_single_share_is_uniform_whatever_the_secret():
    # 2,000 splits at seeds 0..1999: share 1's value / p should be Uniform(0, 1) for either secret.
    # KS at a fixed seed set; a correct sampler fails with probability < 0.1 %.
    def first_share(secret):
        return np.array([shamir.split(secret, threshold=2, num_shares=3, seed=s)[0].y / shamir.PRIME
                         for s in range(2000)])

    zeros, ones = first_share(0), first_share(shamir.PRIME - 1)
    assert stats.kstest(zeros, "uniform").pvalue > 1e-3
    assert stats.kstest(ones, "uniform").pvalue > 1e-3
    assert stats.ks_2samp(zeros, ones).pvalue > 1e-3


def test_seeded_split_is_repeatable_and_unseeded_is_not():
    a = shamir.split(b"k" * 32, threshold=2, num_shares=3, seed=1)
    assert a == shamir.split(b"k" * 32, threshold=2, num_shares=3, seed=1)
    assert a != shamir.split(b"k" * 32, threshold=2, num_shares=3, seed=2)
    assert shamir.split(7, threshold=2, num_shares=2) != shamir.split(7, threshold=2, num_shares=2)


@pytest.mark.parametrize("kwargs,match", [
    (dict(secret=1, threshold=0, num_shares=3), "threshold"),
    (dict(secret=1, threshold=4, num_shares=3), "threshold"),
    (dict(secret=1, threshold=1, num_shares=0), "num_shares"),
    (dict(secret=1, threshold=2.0, num_shares=3), "threshold"),
    (dict(secret=-1, threshold=2, num_shares=3), "secret"),
    (dict(secret=shamir.PRIME, threshold=2, num_shares=3), "secret"),
    (dict(secret=bytes(66), threshold=2, num_shares=3), "secret"),
    (dict(secret=1.5, threshold=2, num_shares=3), "secret"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    secret = kwargs.pop("secret")
    with pytest.raises(ValueError, match=match):
        shamir.split(secret, **kwargs)


def test_mixed_or_bad_share_lists_are_refused():
    a = shamir.split(b"x" * 32, threshold=2, num_shares=3, seed=1)
    b = shamir.split(5, threshold=2, num_shares=3, seed=1)
    with pytest.raises(ValueError, match="same split"):
        shamir.reconstruct([a[0], b[1]])
    with pytest.raises(ValueError, match="non-empty"):
        shamir.reconstruct([])
    with pytest.raises(ValueError, match="distinct"):
        shamir.lagrange_at_zero([(1, 2), (1, 3)])


def test_share_count_fits_the_2_byte_x_and_messages_stay_short():
    # Finding 10: num_shares = 70,000 was accepted although Share.to_bytes holds x in 2 bytes, and the
    # error message quoted the 157-digit PRIME − 1.
    with pytest.raises(ValueError, match=r"num_shares must be an integer in \[1, 65535\]") as info:
        shamir.split(1, threshold=1, num_shares=70_000)
    assert len(str(info.value)) < 80
    shares = shamir.split(1, threshold=1, num_shares=shamir.MAX_SHARES, seed=0)
    assert shares[-1].to_bytes()[:2] == b"\xff\xff" and len(shares[-1].to_bytes()) == 68


def test_seed_above_16_bytes_is_a_value_error():
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\^128 - 1\]"):
        shamir.split(1, threshold=2, num_shares=3, seed=2**200)


def test_two_shares_at_one_x_with_different_values_are_refused():
    # Finding 10: reconstruct kept the last of two shares with the same x and silently used it.
    shares = shamir.split(b"s" * 32, threshold=2, num_shares=3, seed=0)
    forged = shamir.Share(shares[0].x, (shares[0].y + 1) % shamir.PRIME, 2, 32)
    with pytest.raises(ValueError, match="different values at x = 1"):
        shamir.reconstruct([shares[0], forged, shares[1]])
    assert shamir.reconstruct([shares[0], shares[0], shares[1]]) == b"s" * 32  # an exact repeat is harmless
