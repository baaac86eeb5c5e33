"""Fixed-point encoding for secure aggregation: real numbers ↔ integers mod 2^bits, with headroom
so that the sum of many encoded vectors still decodes to the sum of the (rounded) values.

Masks are uniform integers mod 2^bits, so updates must be integers too: each value is rounded to
the grid of step 1/scale and negative values wrap around (two's complement). Sums mod 2^bits are
exact; they decode correctly while the true integer sum stays in [−2^(bits−1), 2^(bits−1) − 1].
All headroom arithmetic is done in Python integers: 2^(bits−1) − 1 is not a float64 above 53 bits.

>>> encoded = encode([0.5, -1.25], scale=4, bits=8)
>>> decode((encoded + encode([1.0, 1.0], scale=4, bits=8)) % 256, scale=4, bits=8).tolist()
[1.5, -0.25]
"""

from __future__ import annotations

import math

import numpy as np

from dpfl_course._validate import check_finite, check_int

__all__ = ["DEFAULT_BITS", "DEFAULT_SCALE", "check_bits", "decode", "encode", "headroom_scale", "modulus_mask"]

DEFAULT_BITS = 32
"""The modulus is 2^32 by default (Flower's SecAgg+ ``modulus_range`` is 2^32 too)."""
DEFAULT_SCALE = 2.0**16
"""Values are rounded to multiples of 2^-16 by default."""


def check_bits(bits) -> int:
    """``bits`` as an int if it is a modulus exponent this module supports (8 to 64), else ValueError.

    >>> check_bits(32)
    32
    >>> check_bits(65)
    Traceback (most recent call last):
    ...
    ValueError: bits must be an integer in [8, 64], got 65
    """
    return check_int("bits", bits, low=8, high=64)


def modulus_mask(bits: int) -> np.uint64:
    """2^bits − 1 as uint64: ``v & modulus_mask(bits)`` is v mod 2^bits for uint64 v (bits <= 64).

    Raises:
        ValueError: bits outside [8, 64] (as :func:`check_bits`).

    >>> int(np.uint64(300) & modulus_mask(8))
    44
    """
    return np.uint64((1 << check_bits(bits)) - 1)


def _room(num_clients: int, bits: int) -> int:
    """The largest integer each of ``num_clients`` values may reach in absolute value (exact integers)."""
    return ((1 << (bits - 1)) - 1) // num_clients


def _fits(max_abs: float, scale: float, room: int) -> bool:
    # np.rint(x·scale) <= ceil(fl(max_abs·scale)) for |x| <= max_abs (float products are monotone), so
    # the integer check below bounds every rounded value exactly as encode computes it.
    return math.ceil(max_abs * scale) <= room


def headroom_scale(max_abs: float, *, num_clients: int, bits: int = DEFAULT_BITS) -> float:
    """The largest scale for which a sum of ``num_clients`` encoded vectors with |x| <= max_abs decodes.

    Each rounded value is at most ⌈max_abs·scale⌉ in absolute value, and a sum decodes correctly
    while it lies in [−2^(bits−1), 2^(bits−1) − 1]; so scale must satisfy
    num_clients·⌈max_abs·scale⌉ <= 2^(bits−1) − 1. The check is done in integers.

    Returns:
        The largest float scale that passes (inf when max_abs = 0; 0.0 when not even the grid step 1 fits).

    >>> headroom_scale(1.0, num_clients=10, bits=32)   # ⌊(2^31 − 1)/10⌋
    214748364.0
    >>> headroom_scale(1.0, num_clients=2, bits=64) < 2.0**62
    True
    """
    bits = check_bits(bits)
    num_clients = check_int("num_clients", num_clients, low=1)
    max_abs = check_finite("max_abs", max_abs, low=0)
    if max_abs == 0:
        return float("inf")
    room = _room(num_clients, bits)
    if room == 0:
        return 0.0
    scale = room / max_abs  # float division of an exact integer: within a few ulps of the answer
    for _ in range(64):  # a few steps of one ulp settle it; the bound only guards against a float surprise
        if _fits(max_abs, scale, room):
            break
        scale = float(np.nextafter(scale, 0.0))
    for _ in range(64):
        up = float(np.nextafter(scale, np.inf))
        if not _fits(max_abs, up, room):
            break
        scale = up
    return scale


def encode(values, *, scale: float = DEFAULT_SCALE, bits: int = DEFAULT_BITS, num_clients: int = 1) -> np.ndarray:
    """Real numbers → integers mod 2^bits (uint64): round(x·scale), negatives wrapped around.

    Rounding puts each value on the grid of step 1/scale (error at most 1/(2·scale)); after that
    all arithmetic is exact modulo 2^bits. ``num_clients`` reserves headroom: the sum of that
    many vectors as large as this one must still decode (see :func:`headroom_scale`).

    Raises:
        ValueError: NaN/inf values, scale <= 0, bits outside [8, 64], or too little headroom.

    >>> encode([1.5, -0.25], scale=4, bits=8).tolist()   # -1 ↦ 255 = 2^8 − 1
    [6, 255]
    """
    bits = check_bits(bits)
    scale = check_finite("scale", scale, low=0, low_open=True)
    num_clients = check_int("num_clients", num_clients, low=1)
    x = np.asarray(values, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("values must be finite numbers, got NaN or inf")
    max_abs = float(np.abs(x).max()) if x.size else 0.0
    if not _fits(max_abs, scale, _room(num_clients, bits)):
        limit = headroom_scale(max_abs, num_clients=num_clients, bits=bits)
        raise ValueError(f"scale must be at most {limit!r} for the sum of {num_clients} vectors with "
                         f"max |x| = {max_abs:.6g} to fit in {bits} bits (raise bits, lower scale or clip), "
                         f"got {scale!r}")
    return np.rint(x * scale).astype(np.int64).view(np.uint64) & modulus_mask(bits)


def decode(encoded, *, scale: float = DEFAULT_SCALE, bits: int = DEFAULT_BITS) -> np.ndarray:
    """Integers mod 2^bits → signed real numbers: values of 2^(bits−1) and above are negative.

    Args:
        encoded: non-negative integers (uint64 array, int array or list); they are read mod 2^bits.

    Raises:
        ValueError: negative or non-integer values, scale <= 0, bits outside [8, 64].

    >>> decode([6, 255], scale=4, bits=8).tolist()
    [1.5, -0.25]
    """
    bits = check_bits(bits)
    scale = check_finite("scale", scale, low=0, low_open=True)
    v = _as_uint64(encoded)
    v = v & modulus_mask(bits)
    shift = np.uint64(64 - bits)
    signed = (v << shift).view(np.int64) >> np.int64(64 - bits)  # arithmetic shift: sign extension
    return signed.astype(np.float64) / scale


def _as_uint64(encoded) -> np.ndarray:
    """``encoded`` as uint64, refusing what would be silently changed (negative or fractional values)."""
    a = np.asarray(encoded)
    if a.dtype.kind == "u":
        return a.astype(np.uint64)
    if a.dtype.kind == "i":
        if (a < 0).any():
            raise ValueError("encoded must be integers in [0, 2^bits), got a negative value")
        return a.astype(np.uint64)
    if a.dtype.kind == "O" and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in a.flat):
        if any(int(v) < 0 for v in a.flat):
            raise ValueError("encoded must be integers in [0, 2^bits), got a negative value")
        return np.array([int(v) & ((1 << 64) - 1) for v in a.flat], dtype=np.uint64).reshape(a.shape)
    raise ValueError(f"encoded must be integers in [0, 2^bits) (e.g. the uint64 output of encode), "
                     f"got dtype {a.dtype}")
