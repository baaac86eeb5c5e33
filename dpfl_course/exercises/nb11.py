"""Notebook 11's exercises: pairwise masks that cancel, Shamir reconstruction at 0, and each
client's share of the distributed-DP noise."""

from __future__ import annotations

import numpy as np

from dpfl_course.exercises import Feedback, attempt, close, run_cases
from dpfl_course.privacy import shamir


def mask_update(x, u, pair_masks, modulus):
    """Reference solution: y_u = x_u + Σ_{v>u} m_uv − Σ_{v<u} m_vu  (mod modulus).

    ``pair_masks[(a, b)]`` (a < b) is the mask clients a and b share.
    """
    y = np.asarray(x, dtype=np.int64) % modulus
    for (a, b), m in pair_masks.items():
        if a == u:
            y = y + np.asarray(m, dtype=np.int64)
        elif b == u:
            y = y - np.asarray(m, dtype=np.int64)
    return y % modulus


def lagrange_at_zero(points, prime):
    """Reference solution: f(0) of the polynomial through ``points`` mod ``prime`` (Lagrange)."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        numerator = denominator = 1
        for j, (xj, _) in enumerate(points):
            if j != i:
                numerator = numerator * xj % prime
                denominator = denominator * (xj - xi) % prime
        total = (total + yi * numerator * pow(denominator, -1, prime)) % prime
    return total


def noise_share_std(sigma, num_clients):
    """Reference solution: each of n clients adds N(0, σ²/n), so its std is σ/√n."""
    return sigma / np.sqrt(num_clients)


def _mask_case(num_clients, size, modulus, seed):
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, modulus, size=(num_clients, size))
    masks = {(a, b): rng.integers(0, modulus, size=size)
             for a in range(num_clients) for b in range(a + 1, num_clients)}
    return xs, masks


def check_mask_update(func) -> Feedback:
    """Check ``func(x, u, pair_masks, modulus)`` masks one client so that the masks cancel in the sum."""
    for num_clients, size, modulus, seed in [(2, 3, 256, 0), (3, 5, 256, 1), (5, 8, 2**16, 2)]:
        xs, masks = _mask_case(num_clients, size, modulus, seed)
        where = f"on {num_clients} clients mod {modulus} "
        uploads = []
        for u in range(num_clients):
            got, failed = attempt(lambda: func(xs[u].copy(), u, masks, modulus), where=where)
            if failed is not None:
                return failed
            try:
                got = np.asarray(got, dtype=np.int64).reshape(size)
            except (TypeError, ValueError):
                return Feedback(False, f"Not yet: {where}return an array of {size} integers, got {got!r}.")
            if ((got < 0) | (got >= modulus)).any():
                return Feedback(False, f"Not yet: {where}the upload must be reduced mod {modulus} "
                                       f"(values in [0, {modulus})), got {got.tolist()}.")
            uploads.append(got)
        total = np.sum(uploads, axis=0) % modulus
        want = xs.sum(axis=0) % modulus
        if not np.array_equal(total, want):
            return Feedback(False, f"Not yet: {where}the uploads sum to {total.tolist()}, but the updates sum to "
                                   f"{want.tolist()}: each shared mask must be added by one client of the pair "
                                   f"(the smaller id) and subtracted by the other.")
        for u in range(num_clients):
            if not np.array_equal(uploads[u], mask_update(xs[u], u, masks, modulus)):
                return Feedback(False, f"Not yet: {where}the sum is right but client {u}'s upload is not "
                                       f"x_u + Σ_(v>u) m_uv − Σ_(v<u) m_vu: add the masks with larger ids.")
    return Feedback(True, "Correct: every pairwise mask cancels and the server gets the exact sum.")


_LAGRANGE_CASES = [
    (([(1, 5), (2, 7)], 11), 3),  # f(x) = 3 + 2x
    (([(2, 7), (1, 5)], 11), 3),  # order does not matter
    (([(1, 6), (2, 11), (3, 18)], 97), 3),  # f(x) = 3 + 2x + x²
]


def _shamir_cases():
    cases = list(_LAGRANGE_CASES)
    for seed, (t, n) in enumerate([(2, 3), (3, 5), (4, 4)]):
        secret = 10**30 + seed
        shares = shamir.split(secret, threshold=t, num_shares=n, seed=seed)
        cases.append((([(s.x, s.y) for s in shares[n - t:]], shamir.PRIME), secret))
    return cases


def check_lagrange_at_zero(func) -> Feedback:
    """Check ``func(points, prime)`` rebuilds f(0) exactly — in modular integers, not floats."""
    return run_cases(func, _shamir_cases(),
                     compare=lambda got, want: isinstance(got, (int, np.integer)) and int(got) == want,
                     describe=lambda args: f"{len(args[0])} points mod "
                                           f"{'2^521 − 1' if args[1] == shamir.PRIME else args[1]}")


def check_noise_share_std(func) -> Feedback:
    """Check ``func(sigma, num_clients)`` is σ/√n: n independent shares then sum to variance σ²."""
    cases = [((1.0, 1), 1.0), ((1.0, 4), 0.5), ((2.0, 100), 0.2), ((3.0, 9), 1.0), ((0.5, 10), 0.5 / np.sqrt(10))]
    feedback = run_cases(func, cases, compare=lambda got, want: close(got, want, rel=1e-9),
                         describe=lambda args: f"σ = {args[0]}, n = {args[1]}")
    if not feedback:
        return feedback
    # The statistical consequence, at a fixed seed and at a setting not among the cases above:
    # 25 shares of std func(2, 25) must sum to std σ = 2. The sample std of 20,000 Gaussian values
    # has relative standard error 1/√(2·20,000) = 0.5 %; 5 SE = 2.5 % (a right answer fails with
    # probability < 1e-6; σ/n or σ instead of σ/√n is off by a factor of 5).
    std = float(func(2.0, 25))
    if not np.isfinite(std) or std < 0:
        return Feedback(False, f"Not yet: for σ = 2.0, n = 25 the share std must be a number >= 0, got {std!r}.")
    rng = np.random.default_rng(0)
    total = rng.normal(0.0, std, size=(25, 20_000)).sum(axis=0)
    if abs(total.std() / 2.0 - 1.0) > 5 / np.sqrt(2 * 20_000):
        return Feedback(False, f"Not yet: for σ = 2.0, n = 25, 25 shares of std {std:.3g} sum to std "
                               f"{total.std():.3f}, expected ≈ 2: the variances σ²/n must add up to σ².")
    return Feedback(True, f"Correct on all {len(cases)} cases: 25 shares of std {std:.2f} sum to "
                          f"std {total.std():.3f} ≈ σ = 2.")
