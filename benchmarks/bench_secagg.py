"""Secure aggregation's cost and exactness (notebook 11): time per client and at the server, bytes
uploaded per client, with and without dropouts; the largest difference between the decoded secure
sum and the plain sum; distributed-DP noise of the sum against σ.

Run with ``python3 course.py bench`` (or ``.venv/bin/python benchmarks/bench_secagg.py``).
Every number is measured in this run on this machine (times: median of ``REPEATS`` rounds; the
simulation runs every client in one process, one after the other). Bytes count the public key, the
Shamir shares (68 bytes each, unencrypted: an authenticated encryption adds ~28 bytes per share), the
masked vector (4 bytes per value at 32 bits) and the shares revealed in the unmasking stage.
"""

from __future__ import annotations

import math
import os
import statistics
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from dpfl_course.privacy import distributed_dp, secagg  # noqa: E402
from dpfl_course.testing import print_table  # noqa: E402

CLIENTS = [5, 10, 20, 50]
SIZES = [650, 100_000]  # the digits logistic-regression / MLP-sized update, and a larger model
REPEATS = 3


def measure(num_clients, size, dropout_fraction):
    rng = np.random.default_rng(num_clients * 7 + size)
    x = rng.uniform(-1, 1, size=(num_clients, size))
    dropouts = list(range(math.ceil(dropout_fraction * num_clients)))  # 10 %: at least one client
    threshold = num_clients // 2 + 1
    client, server, error = [], [], 0.0
    for r in range(REPEATS):
        result = secagg.secure_sum(x, threshold=threshold, dropouts=dropouts, seed=r)
        client.append(result.seconds["client"])
        server.append(result.seconds["server"])
        plain = x[list(result.survivors)].sum(axis=0)
        error = max(error, float(np.abs(result.sum - plain).max()))
    survivor = result.survivors[0]
    return (num_clients, size, len(dropouts), f"{statistics.median(client) * 1000:.1f}",
            f"{statistics.median(server) * 1000:.1f}", f"{result.bytes_uploaded[survivor]:,}", f"{size * 4:,}",
            f"{error:.1e}", f"{num_clients / (2 * result.scale):.1e}")


def noise_rows():
    rows = []
    sigma, size = 1.0, 50_000
    for num_clients, dropped, max_dropouts in [(10, 0, 0), (10, 3, 0), (10, 3, 3), (50, 0, 0), (50, 10, 0), (50, 10, 10)]:
        noise = distributed_dp.distributed_noise(num_clients, size, sigma=sigma, max_dropouts=max_dropouts,
                                         generator=np.random.default_rng(num_clients + dropped + max_dropouts))
        result = secagg.secure_sum(noise, threshold=num_clients // 2, dropouts=range(dropped), seed=0)
        predicted = sigma * np.sqrt((num_clients - dropped) / (num_clients - max_dropouts))
        # sample std of 50,000 Gaussian values: relative standard error 1/√(2·50,000) ≈ 0.3 %
        rows.append((num_clients, dropped, max_dropouts, f"{result.sum.std():.4f}", f"{predicted:.4f}"))
    return rows


def main():
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    rows = [measure(n, size, fraction) for size in SIZES for n in CLIENTS for fraction in (0.0, 0.1)]
    print_table("Secure aggregation per round (32-bit modulus, scale 2^16, threshold ⌊n/2⌋ + 1; median of "
                f"{REPEATS} rounds)", rows,
                ["clients n", "vector size", "dropouts", "ms per client", "ms server", "bytes per client",
                 "plain upload", "max |secure − plain|", "bound n/(2·scale)"])
    print_table("Distributed DP: noise std of the decoded sum (σ = 1, 50,000 values; each client adds "
                "σ²/(n − planned dropouts))", noise_rows(),
                ["clients n", "dropped", "planned dropouts", "measured std", "σ·√((n − dropped)/(n − planned))"])


if __name__ == "__main__":
    main()
