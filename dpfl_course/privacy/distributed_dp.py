"""Distributed differential privacy: each client adds a share of the Gaussian noise, so that the
securely aggregated sum carries noise of std σ although no client adds all of it.

Caveat: the guarantee rests on the honest clients' shares. Shares added by clients that collude
with the server (or by Sybil clients the server controls) are known to it and can be subtracted:
with h honest clients out of n the effective noise std is σ·√(h/n). Over-provision for that
(Kairouz et al. 2021 do) just as for dropouts.
"""

from __future__ import annotations

import numpy as np

from dpfl_course._validate import check_finite, check_int

__all__ = ["distributed_noise", "noise_share_std"]


def noise_share_std(sigma: float, num_clients: int, *, max_dropouts: int = 0) -> float:
    """Each client's noise std so that the surviving clients' noise sums to std >= sigma.

    Independent Gaussians add variances: n − d shares of variance σ²/(n − d) sum to σ². With
    ``max_dropouts = 0`` each share is σ/√n; planning for dropouts over-provisions every share
    (pass the number of dropped *or colluding* clients to plan for, see the module docstring).

    >>> round(noise_share_std(1.0, 4), 3), round(noise_share_std(1.0, 4, max_dropouts=3), 3)
    (0.5, 1.0)
    """
    sigma = check_finite("sigma", sigma, low=0)
    num_clients = check_int("num_clients", num_clients, low=1)
    max_dropouts = check_int("max_dropouts", max_dropouts, low=0, high=num_clients - 1)
    return sigma / float(np.sqrt(num_clients - max_dropouts))


def distributed_noise(num_clients: int, size: int, *, sigma: float, max_dropouts: int = 0,
                      generator: np.random.Generator | None = None) -> np.ndarray:
    """Each client's Gaussian noise share, shape (num_clients, size), std :func:`noise_share_std`.

    A client adds its row to its update before encoding. After rounding to the fixed-point grid
    the mechanism is no longer exactly Gaussian; production systems use integer noise with a
    matching analysis (distributed discrete Gaussian, Kairouz et al. 2021; Skellam, Agarwal et al. 2021).

    Args:
        generator: a ``numpy.random.Generator`` (repeatable) or None (fresh OS entropy). The same
            rule as ``dp.mechanisms``; its helper is private, so the check is repeated here.
    """
    num_clients = check_int("num_clients", num_clients, low=1)
    size = check_int("size", size, low=1)
    std = noise_share_std(sigma, num_clients, max_dropouts=max_dropouts)
    if generator is None:
        generator = np.random.default_rng()
    elif not isinstance(generator, np.random.Generator):
        raise ValueError(f"generator must be a numpy.random.Generator or None, got {type(generator).__name__}")
    return generator.normal(0.0, std, size=(num_clients, size))
