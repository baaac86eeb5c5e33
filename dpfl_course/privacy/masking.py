"""Masks for secure aggregation: X25519 key agreement, HKDF-derived seeds and a ChaCha20 PRG.

Two clients u and v agree on a seed s_uv without sending it (X25519: u's private key with v's
public key gives the same shared secret as v's private key with u's public key); HKDF-SHA256
(RFC 5869) turns the shared secret into a uniform 32-byte seed, and :func:`prg_mask` expands a
seed into a mask vector with the ChaCha20 keystream.

For the course's repeatable outputs, :func:`derive_private_key` and :func:`derive_secret` derive
keys and seeds from an integer seed with HKDF; anyone who knows that seed knows every key, so
this is for lessons only. In a deployment keys come from ``X25519PrivateKey.generate()``
and seeds from ``os.urandom``.

>>> alice, bob = derive_private_key(0, 0), derive_private_key(0, 1)
>>> pair_seed(alice, public_bytes(bob), u=0, v=1) == pair_seed(bob, public_bytes(alice), u=1, v=0)
True
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dpfl_course._validate import check_int
from dpfl_course.privacy.fixed_point import DEFAULT_BITS, check_bits, modulus_mask

__all__ = ["MAX_SEED", "check_seed", "derive_private_key", "derive_secret", "hkdf", "pair_seed", "prg_mask",
           "public_bytes"]

MAX_SEED = 2**128 - 1
"""Course seeds are integers in [0, 2^128 − 1] (16 bytes)."""


def check_seed(seed) -> int:
    """``seed`` as an int in [0, 2^128 − 1], or a ValueError naming it."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2^128 - 1], got {int(seed):.3g}")
    return check_int("seed", seed, low=0)


def hkdf(material: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``material``, bound to the label ``info``: ``length`` uniform bytes.

    >>> len(hkdf(b"shared secret", b"pair seed")), hkdf(b"k", b"a") != hkdf(b"k", b"b")
    (32, True)
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def _seed_material(seed: int) -> bytes:
    return hashlib.sha256(b"dpfl-course secagg|" + check_seed(seed).to_bytes(16, "big")).digest()


def derive_secret(seed: int, purpose: str, client_id: int, *, server_round: int = 0) -> bytes:
    """A 32-byte secret of one client for one purpose and round, derived from a course seed (lessons only).

    Different purposes (``"self seed"``, ``"shamir self seed"``, ``"shamir private key"`` ...), clients
    and rounds give independent secrets: each is HKDF with its own ``info`` label.

    >>> derive_secret(0, "self seed", 1) != derive_secret(0, "self seed", 2)
    True
    """
    client_id = check_int("client_id", client_id, low=0)
    server_round = check_int("server_round", server_round, low=0)
    info = b"%s|client %d|round %d" % (str(purpose).encode(), client_id, server_round)
    return hkdf(_seed_material(seed), info)


def derive_private_key(seed: int, client_id: int, *, server_round: int = 0) -> X25519PrivateKey:
    """A client's X25519 private key derived from a course seed (repeatable lessons only).

    In a deployment use ``X25519PrivateKey.generate()`` (operating-system randomness); anyone who
    knows ``seed`` can recompute this key.
    """
    return X25519PrivateKey.from_private_bytes(derive_secret(seed, "private key", client_id,
                                                             server_round=server_round))


def public_bytes(private_key: X25519PrivateKey) -> bytes:
    """The 32-byte public key a client advertises (RFC 7748 encoding)."""
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pair_seed(private_key: X25519PrivateKey, peer_public: bytes, *, u: int, v: int, server_round: int = 0) -> bytes:
    """The 32-byte seed s_uv that clients u and v agree on without ever sending it.

    X25519 gives both the same shared secret (u's private key with v's public key equals v's private
    key with u's public key); HKDF-SHA256 (RFC 5869) turns it into a uniform seed, with the pair
    (in sorted order, so s_uv = s_vu) and the round in its ``info`` so every pair and round gets a
    fresh seed.
    """
    u = check_int("u", u, low=0)
    v = check_int("v", v, low=0)
    if u == v:
        raise ValueError(f"v must differ from u, got u = v = {u}")
    server_round = check_int("server_round", server_round, low=0)
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(bytes(peer_public)))
    lo, hi = min(u, v), max(u, v)
    return hkdf(shared, b"pair seed|clients %d,%d|round %d" % (lo, hi, server_round))


def prg_mask(seed: bytes, size: int, *, bits: int = DEFAULT_BITS) -> np.ndarray:
    """Expand a 32-byte seed into ``size`` uniform integers mod 2^bits (uint64).

    The expansion is the ChaCha20 keystream under the seed (RFC 8439's cipher): without the seed
    the mask cannot be told from uniform noise. NumPy's PCG64 would be wrong here: it is fast and
    statistically good, but not cryptographic — its state can be recovered from a few outputs,
    and with it every later mask. Each seed masks one vector only, so a zero nonce is safe.
    Taking 64 random bits modulo 2^bits keeps them exactly uniform (2^bits divides 2^64).

    >>> a = prg_mask(bytes(32), 4, bits=8)
    >>> a.tolist() == prg_mask(bytes(32), 4, bits=8).tolist(), bool((a < 256).all())
    (True, True)
    """
    seed = bytes(seed)
    if len(seed) != 32:
        raise ValueError(f"seed must be 32 bytes, got {len(seed)}")
    size = check_int("size", size, low=0)
    bits = check_bits(bits)
    stream = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    return np.frombuffer(stream.update(bytes(8 * size)), dtype="<u8").astype(np.uint64) & modulus_mask(bits)
