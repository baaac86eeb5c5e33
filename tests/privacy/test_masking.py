"""Key agreement and the PRG: both sides of a pair derive the same seed, every pair/round/client
gets its own, and the PRG is deterministic and seed-sensitive."""

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dpfl_course.privacy import masking


def test_key_agreement_is_symmetric_and_distinct_per_pair_and_round():
    keys = [masking.derive_private_key(0, u) for u in range(3)]
    pubs = [masking.public_bytes(k) for k in keys]
    s01 = masking.pair_seed(keys[0], pubs[1], u=0, v=1)
    assert s01 == masking.pair_seed(keys[1], pubs[0], u=1, v=0)
    assert len(s01) == 32
    assert s01 != masking.pair_seed(keys[0], pubs[2], u=0, v=2)
    assert s01 != masking.pair_seed(keys[0], pubs[1], u=0, v=1, server_round=1)
    # unseeded keys (operating-system randomness) agree just the same
    a, b = (X25519PrivateKey.generate() for _ in range(2))
    seed_ab = masking.pair_seed(a, masking.public_bytes(b), u=3, v=5)
    assert seed_ab == masking.pair_seed(b, masking.public_bytes(a), u=5, v=3)


def test_derived_keys_and_secrets_differ_per_client_round_seed_and_purpose():
    # Finding 9: a derivation that ignores the client id or round would give everyone one key.
    publics = {masking.public_bytes(masking.derive_private_key(s, u, server_round=r))
               for s in (0, 1) for u in range(4) for r in (0, 1)}
    assert len(publics) == 16
    secrets = {masking.derive_secret(s, p, u, server_round=r)
               for s in (0, 1) for p in ("self seed", "shamir") for u in range(4) for r in (0, 1)}
    assert len(secrets) == 32


def test_prg_is_deterministic_and_seed_sensitive():
    a = masking.prg_mask(bytes(32), 1000)
    np.testing.assert_array_equal(a, masking.prg_mask(bytes(32), 1000))
    b = masking.prg_mask(bytes(31) + b"\x01", 1000)
    assert (a != b).mean() > 0.99  # equal by chance with probability 2^-32 per value
    assert a.max() < 2**32 and a.dtype == np.uint64
    with pytest.raises(ValueError, match="32 bytes"):
        masking.prg_mask(bytes(16), 10)


def test_seed_must_fit_in_16_bytes():
    # Finding 10: seed = 2^200 raised OverflowError from int.to_bytes
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\^128 - 1\]"):
        masking.derive_private_key(2**200, 0)
    with pytest.raises(ValueError, match="seed"):
        masking.derive_secret(-1, "self seed", 0)
    masking.derive_private_key(2**128 - 1, 0)  # the largest seed works
