"""Seeding: one call at the top of every notebook makes its numbers repeatable."""

from __future__ import annotations

import os
import random

import numpy as np


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    if not 0 <= int(seed) <= 2**32 - 1:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed}")
    return int(seed)


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> np.random.Generator:
    """Seed Python's, NumPy's and torch's global generators; return a fresh NumPy Generator.

    The package itself never draws from a global generator (every function takes ``seed`` or
    ``generator``); this is for the code a learner writes in a notebook.

    Args:
        seed: an integer in [0, 2**32 - 1].
        deterministic: also ask torch for deterministic kernels (CPU kernels already are).

    Returns:
        ``numpy.random.default_rng(seed)``.

    Raises:
        ValueError: if ``seed`` is not an integer in range.

    >>> rng = seed_everything(0)
    >>> float(np.round(rng.random(), 4))
    0.637
    """
    seed = _check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses this notebook starts
    try:
        import torch
    except ImportError:  # the environment check in notebook 00 reports it in plain words
        pass
    else:
        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)
