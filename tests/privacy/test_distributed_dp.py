"""Distributed DP: each client's share of the noise, and the std of the securely aggregated sum."""

import numpy as np
import pytest

from dpfl_course.privacy import distributed_dp, secagg


@pytest.mark.parametrize("n,d_out", [(10, 0), (10, 4), (20, 10)], ids=["n10-d0", "n10-d4", "n20-d10"])
def test_distributed_noise_sums_to_sigma_and_dropouts_lose_noise(n, d_out):
    sigma, size = 2.0, 20_000
    noise = distributed_dp.distributed_noise(n, size, sigma=sigma, generator=np.random.default_rng(n + d_out))
    result = secagg.secure_sum(noise, threshold=n - d_out if d_out else n // 2 + 1,
                               dropouts=range(d_out), seed=0)
    want = sigma * np.sqrt((n - d_out) / n)
    # the sample std of `size` Gaussian values has relative standard error 1/√(2·size) = 0.5 %; 5 SE
    assert result.sum.std() == pytest.approx(want, rel=5 / np.sqrt(2 * size))


def test_over_provisioned_noise_keeps_sigma_after_the_planned_dropouts():
    n, d_out, sigma, size = 10, 3, 1.0, 20_000
    noise = distributed_dp.distributed_noise(n, size, sigma=sigma, max_dropouts=d_out,
                                             generator=np.random.default_rng(0))
    result = secagg.secure_sum(noise, threshold=5, dropouts=[0, 5, 9], seed=1)
    assert result.sum.std() == pytest.approx(sigma, rel=5 / np.sqrt(2 * size))


def test_colluding_clients_noise_can_be_subtracted():
    # The caveat in the module docstring: the server knows the shares of the clients it colludes
    # with, so the noise it cannot remove has std σ·√(h/n) for h honest clients.
    n, colluding, sigma, size = 10, 4, 1.0, 20_000
    noise = distributed_dp.distributed_noise(n, size, sigma=sigma, generator=np.random.default_rng(3))
    result = secagg.secure_sum(noise, threshold=6, seed=2)
    left = result.sum - noise[:colluding].sum(axis=0)
    assert left.std() == pytest.approx(sigma * np.sqrt((n - colluding) / n), rel=5 / np.sqrt(2 * size))


def test_noise_share_validation():
    with pytest.raises(ValueError, match="sigma"):
        distributed_dp.noise_share_std(-1.0, 3)
    with pytest.raises(ValueError, match="max_dropouts"):
        distributed_dp.noise_share_std(1.0, 3, max_dropouts=3)
    with pytest.raises(ValueError, match="generator"):
        distributed_dp.distributed_noise(3, 4, sigma=1.0, generator=0)
