"""Fixed-point encoding: round trips, exact sums mod 2^bits, and a headroom check that is exact at
its boundary — in 16 bits and in 64 bits, where 2^63 − 1 is not a float64."""

import warnings

import numpy as np
import pytest

from dpfl_course.privacy import fixed_point


def test_encode_decode_round_trip_and_sum_of_encodings_decodes_to_sum_of_rounded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 500)) * 3
    for bits, scale in [(32, 2.0**16), (16, 100.0), (64, 2.0**40)]:
        enc = fixed_point.encode(x, scale=scale, bits=bits, num_clients=7)
        rounded = np.rint(x * scale) / scale
        np.testing.assert_array_equal(fixed_point.decode(enc, scale=scale, bits=bits), rounded)
        total = enc.sum(axis=0) & np.uint64((1 << bits) - 1) if bits < 64 else enc.sum(axis=0)
        # exact: integer sums of the rounded values, compared in integers
        want = np.rint(x * scale).astype(np.int64).sum(axis=0)
        got = np.rint(fixed_point.decode(total, scale=scale, bits=bits) * scale).astype(np.int64)
        np.testing.assert_array_equal(got, want)


def test_encode_refuses_too_little_headroom_nan_and_bad_scale():
    with pytest.raises(ValueError, match="scale must be at most"):
        fixed_point.encode([1.0], scale=2.0**16, bits=16, num_clients=1)
    fixed_point.encode([1.0], scale=2.0**12, bits=16, num_clients=1)  # fits
    with pytest.raises(ValueError, match="scale must be at most"):
        fixed_point.encode([1.0], scale=2.0**12, bits=16, num_clients=16)  # 16 · 4096 ≥ 2^15
    with pytest.raises(ValueError, match="finite"):
        fixed_point.encode([np.nan])
    with pytest.raises(ValueError, match="scale"):
        fixed_point.encode([1.0], scale=0)
    with pytest.raises(ValueError, match="bits"):
        fixed_point.encode([1.0], bits=4)


CORNERS = [(m, n) for m in (1.0, 0.3, 7.25) for n in (1, 2, 3, 10)]


@pytest.mark.parametrize("max_abs,n", CORNERS, ids=[f"m{m}-n{n}" for m, n in CORNERS])
def test_headroom_scale_is_the_exact_boundary(max_abs, n):
    # At the largest allowed scale, n rows of +m and n rows of −m still sum and decode exactly;
    # 1 % more scale is refused. (Pins 2^(bits−1): a 2^bits limit would wrap the +m sum negative.)
    bits = 16
    scale = fixed_point.headroom_scale(max_abs, num_clients=n, bits=bits)
    for sign in (1.0, -1.0):
        rows = np.full((n, 3), sign * max_abs)
        enc = fixed_point.encode(rows, scale=scale, bits=bits, num_clients=n)
        total = enc.sum(axis=0) & np.uint64(2**bits - 1)
        want = n * np.rint(sign * max_abs * scale) / scale  # the same integer / scale as decode computes
        np.testing.assert_array_equal(fixed_point.decode(total, scale=scale, bits=bits), want)
    assert n * np.ceil(max_abs * scale) <= 2 ** (bits - 1) - 1
    with pytest.raises(ValueError, match="scale must be at most"):
        fixed_point.encode(np.full((n, 3), max_abs), scale=scale * 1.01, bits=bits, num_clients=n)


def test_headroom_in_64_bits_is_checked_in_integers():
    # Finding 1: (2.0**63 − 1) rounds to 2^63 in float64, so the old check let scale = 2^63 through
    # (encode gave −1.0 with a RuntimeWarning) and 2 × 2^62 wrapped to −2.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="scale must be at most"):
            fixed_point.encode([1.0], scale=2.0**63, bits=64)
        with pytest.raises(ValueError, match="scale must be at most"):
            fixed_point.encode([[1.0], [1.0]], scale=2.0**62, bits=64, num_clients=2)
        scale = fixed_point.headroom_scale(1.0, num_clients=2, bits=64)
        assert 2 * int(scale) <= 2**63 - 1 and scale > 2.0**61
        enc = fixed_point.encode([[1.0], [1.0]], scale=scale, bits=64, num_clients=2)
        assert fixed_point.decode(enc.sum(axis=0), scale=scale, bits=64).tolist() == [2.0]


def test_decode_refuses_negative_and_fractional_values():
    # Finding 10: decode([-1]) raised OverflowError, decode([1.5]) truncated silently.
    with pytest.raises(ValueError, match="encoded must be integers"):
        fixed_point.decode([-1])
    with pytest.raises(ValueError, match="encoded must be integers"):
        fixed_point.decode([1.5])
    with pytest.raises(ValueError, match="encoded must be integers"):
        fixed_point.decode(np.array([1.0]))
    assert fixed_point.decode([2**64 - 1], scale=1, bits=64).tolist() == [-1.0]  # Python ints above 2^63
    assert fixed_point.decode(np.array([255], dtype=np.int64), scale=1, bits=8).tolist() == [-1.0]


@pytest.mark.parametrize("bits", [8, 13, 32, 63, 64])
def test_modulus_mask_reduces_mod_2_to_the_bits(bits):
    # Review item 11c: check_bits and modulus_mask are public (masking, secagg, secure_fedavg use them).
    values = np.random.default_rng(bits).integers(0, 2**63, size=50, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    reduced = values & fixed_point.modulus_mask(bits)
    assert [int(r) for r in reduced] == [int(v) % 2**bits for v in values]
    assert fixed_point.check_bits(np.int64(bits)) == bits and type(fixed_point.check_bits(bits)) is int


@pytest.mark.parametrize("bits", [7, 65, 32.5, True, "32"], ids=["7", "65", "32.5", "True", "str"])
def test_check_bits_and_modulus_mask_refuse_bits_outside_8_to_64(bits):
    for function in (fixed_point.check_bits, fixed_point.modulus_mask):
        with pytest.raises(ValueError, match=r"bits must be an integer in \[8, 64\]"):
            function(bits)
