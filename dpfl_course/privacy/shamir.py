"""Shamir secret sharing (Shamir 1979): split a secret into n shares so that any t rebuild it and
t − 1 reveal nothing.

The secret is the constant term of a random polynomial of degree t − 1 over the prime field
GF(p), p = 2^521 − 1 (a Mersenne prime, so a 32- or 64-byte key fits in one field element);
share i is the point (i, f(i)). Any t points determine the polynomial, and Lagrange
interpolation at x = 0 gives the secret back. With t − 1 points every value of the secret is
equally likely: for each candidate secret there is exactly one polynomial through the t − 1
points, so the shares carry no information about it.

Secure aggregation (``dpfl_course.privacy.secagg``) shares each client's self-mask seed and its
X25519 private key this way, so the server can recover a dropped client's masks from the survivors.

>>> shares = split(b"a 32-byte seed for the self mask", threshold=3, num_shares=5, seed=0)
>>> reconstruct(shares[1:4])
b'a 32-byte seed for the self mask'
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from dpfl_course._validate import check_int

__all__ = ["MAX_SHARES", "PRIME", "Share", "lagrange_at_zero", "reconstruct", "split"]

PRIME = 2**521 - 1
"""The field's modulus: the Mersenne prime 2^521 − 1 (secrets up to 65 bytes fit below it)."""

_MAX_SECRET_BYTES = 65  # 2^520 < PRIME, so any 65-byte string is a field element

MAX_SHARES = 2**16 - 1
"""At most 65,535 shares: a share's x travels in 2 bytes (:meth:`Share.to_bytes`)."""

_MAX_SEED = 2**128 - 1  # integer seeds travel in 16 bytes


@dataclass(frozen=True)
class Share:
    """One share of a secret: the point (x, y) on the secret's polynomial.

    Attributes:
        x: the evaluation point, 1..num_shares (never 0: f(0) is the secret).
        y: f(x) in GF(PRIME).
        threshold: how many shares rebuild the secret.
        length: the secret's length in bytes if it was ``bytes``, None if it was an ``int``.
    """

    x: int
    y: int
    threshold: int
    length: int | None = None

    def __repr__(self) -> str:  # a share is a 157-digit number: show its start only
        return f"Share(x={self.x}, y={str(self.y)[:8]}…, threshold={self.threshold})"

    def to_bytes(self) -> bytes:
        """The share as it would travel: x (2 bytes) and y (66 bytes), 68 bytes in all."""
        return self.x.to_bytes(2, "big") + self.y.to_bytes(66, "big")


def _random_bytes(seed):
    """A source of random bytes: the OS's CSPRNG, or (for repeatable lessons) a ChaCha20 keystream
    keyed by SHA-256 of ``seed`` — a cryptographic stream, unlike NumPy's PCG64."""
    if seed is None:
        return secrets.token_bytes
    if isinstance(seed, (bytes, bytearray)):
        material = bytes(seed)
    else:
        if isinstance(seed, int) and not isinstance(seed, bool) and seed > _MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2^128 - 1] or bytes, got {seed:.3g}")
        material = check_int("seed", seed, low=0).to_bytes(16, "big")
    key = hashlib.sha256(b"dpfl-course shamir coefficients|" + material).digest()
    stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return lambda n: stream.update(bytes(n))


def _field_element(random_bytes) -> int:
    # 80 bytes reduced mod a 521-bit prime: the bias from uniform is below 2^-119.
    return int.from_bytes(random_bytes(80), "big") % PRIME


def split(secret, *, threshold: int, num_shares: int, seed=None) -> list[Share]:
    """Split ``secret`` into ``num_shares`` shares, any ``threshold`` of which rebuild it.

    Args:
        secret: an ``int`` in [0, PRIME) or ``bytes`` of at most 65 bytes (e.g. a 32-byte key).
        threshold: t, the number of shares needed, in [1, num_shares] (t = 1 gives every holder
            the secret itself).
        num_shares: n in [1, 65535], one share per holder, at x = 1..n.
        seed: None for the operating system's randomness (``secrets``); an int in [0, 2^128 − 1] or bytes for
            repeatable shares in a lesson. Never reuse a seed for real secrets.

    Returns:
        A list of :class:`Share`, share i at x = i + 1.

    Raises:
        ValueError: if the secret is out of range, or threshold/num_shares are not as above.

    >>> [s.x for s in split(42, threshold=2, num_shares=3, seed=1)]
    [1, 2, 3]
    >>> split(42, threshold=4, num_shares=3)
    Traceback (most recent call last):
    ...
    ValueError: threshold must be an integer in [1, 3], got 4
    """
    num_shares = check_int("num_shares", num_shares, low=1, high=MAX_SHARES)
    threshold = check_int("threshold", threshold, low=1, high=num_shares)
    length = None
    if isinstance(secret, (bytes, bytearray)):
        if len(secret) > _MAX_SECRET_BYTES:
            raise ValueError(f"secret must be at most {_MAX_SECRET_BYTES} bytes, got {len(secret)}")
        length = len(secret)
        value = int.from_bytes(secret, "big")
    elif isinstance(secret, int) and not isinstance(secret, bool):
        if not 0 <= secret < PRIME:
            raise ValueError("secret must be an integer in [0, 2^521 - 1) or bytes, got an integer out of range")
        value = secret
    else:
        raise ValueError(f"secret must be an int or bytes, got {type(secret).__name__}")
    random_bytes = _random_bytes(seed)
    coefficients = [value] + [_field_element(random_bytes) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, num_shares + 1):
        y = 0
        for c in reversed(coefficients):  # Horner's rule, mod p
            y = (y * x + c) % PRIME
        shares.append(Share(x, y, threshold, length))
    return shares


def lagrange_at_zero(points, prime: int = PRIME) -> int:
    """The value at x = 0 of the polynomial through ``points`` (pairs (x, y)), mod ``prime``.

    f(0) = Σ_i y_i · Π_{j≠i} x_j / (x_j − x_i), every division a multiplication by a modular
    inverse. Distinct x values are required.

    >>> lagrange_at_zero([(1, 5), (2, 7)], prime=11)   # f(x) = 3 + 2x
    3
    """
    points = [(int(x) % prime, int(y) % prime) for x, y in points]
    xs = [x for x, _ in points]
    if not points:
        raise ValueError("points must hold at least one (x, y) pair, got none")
    if len(set(xs)) != len(xs) or 0 in xs:
        raise ValueError("points must have distinct, nonzero x values")
    total = 0
    for i, (xi, yi) in enumerate(points):
        numerator = denominator = 1
        for j, xj in enumerate(xs):
            if j != i:
                numerator = numerator * xj % prime
                denominator = denominator * (xj - xi) % prime
        total = (total + yi * numerator * pow(denominator, -1, prime)) % prime
    return total


def reconstruct(shares):
    """Rebuild the secret from at least ``threshold`` distinct shares (bytes or int, as it was split).

    Raises:
        ValueError: with fewer distinct shares than the threshold (the secret cannot be rebuilt,
            and t − 1 shares say nothing about it), two shares at the same x with different y
            (a corrupted or forged share), or shares from different splits.

    >>> shares = split(2024, threshold=2, num_shares=4, seed=7)
    >>> reconstruct([shares[3], shares[0]])
    2024
    """
    shares = list(shares)
    if not shares or not all(isinstance(s, Share) for s in shares):
        raise ValueError("shares must be a non-empty list of Share")
    threshold, length = shares[0].threshold, shares[0].length
    if any(s.threshold != threshold or s.length != length for s in shares):
        raise ValueError("shares must come from the same split (same threshold and secret type)")
    distinct = {}
    for s in shares:
        if s.x in distinct and distinct[s.x].y != s.y:
            raise ValueError(f"shares must agree where they repeat an x, got two different values at x = {s.x}")
        distinct[s.x] = s
    if len(distinct) < threshold:
        raise ValueError(f"shares must hold at least threshold = {threshold} distinct shares, got {len(distinct)}")
    value = lagrange_at_zero([(s.x, s.y) for s in list(distinct.values())[:threshold]])
    if length is None:
        return value
    if value >= 256**length:  # only possible when shares of different secrets were mixed
        raise ValueError("shares must come from the same split (they rebuild no secret of this length)")
    return value.to_bytes(length, "big")
