"""Stragglers (Li et al. 2020): clients that finish only part of their local work in a round."""

from __future__ import annotations

import torch

from dpfl_course._validate import check_finite, check_int
from dpfl_course.fl.client import client_seeds
from dpfl_course.fl.strategy import Strategy, StrategyWrapper

__all__ = ["Stragglers"]

# XORed into a client's shuffling seed to seed its straggler draws: a different stream from the
# one that shuffles its minibatches, for the same (seed, round, client).
_SALT = 0x5354524147474C45  # "STRAGGLE" in ASCII, < 2**63


class Stragglers(StrategyWrapper):
    """Wraps a strategy so that some sampled clients run fewer local epochs (systems heterogeneity).

    Each client the wrapped strategy selects is, independently with probability ``fraction``, a
    straggler; a straggler's ``local_epochs`` is replaced by a number drawn uniformly from
    1..local_epochs. The server keeps the stragglers' partial work (FedProx's setting); to model
    FedAvg, which drops stragglers, use ``run_federated(..., dropout=...)``. Aggregation is the
    wrapped strategy's.

    Where the randomness comes from: the wrapper never draws from the server's generator, so the
    clients sampled and dropped in every round are exactly those of the wrapped strategy alone, and
    ``Stragglers(s, 0.0)`` trains the same model as ``s``. Both numbers of a client (the uniform
    that decides whether it straggles and the epochs it then runs) are drawn for every sampled
    client, whatever ``fraction``, from a generator of its own seeded by (run seed, round, client):
    :func:`~dpfl_course.fl.client_seeds` XOR a fixed salt. The run seed is read with
    ``generator.initial_seed()`` (the seed :func:`~dpfl_course.fl.run_federated` gave the server's
    generator), which draws nothing. So a run is reproducible from its seed, and raising
    ``fraction`` only turns more clients into stragglers: those already straggling keep their
    epochs.

    Args:
        strategy: e.g. ``FedProx(...)`` or ``FedAvg(...)``; its fit config must hold ``local_epochs``.
        fraction: probability in [0, 1] that a sampled client is a straggler.

    >>> from dpfl_course.fl.fedavg import FedAvg
    >>> s = Stragglers(FedAvg(local_epochs=5, clients_per_round=4), fraction=1.0)
    >>> [c["local_epochs"] for _, c in s.configure_fit(1, [], 10, torch.Generator().manual_seed(0))]
    [1, 5, 4, 4]
    """

    def __init__(self, strategy: Strategy, fraction: float):
        super().__init__(strategy)
        self.fraction = check_finite("fraction", fraction, low=0, high=1)

    def __repr__(self) -> str:
        return f"Stragglers({self.strategy!r}, fraction={self.fraction:g})"

    def configure_fit(self, server_round, parameters, num_clients, generator):
        instructions = self.strategy.configure_fit(server_round, parameters, num_clients, generator)
        seeds = client_seeds(generator.initial_seed(), server_round, [cid for cid, _ in instructions])
        own = torch.Generator()  # re-seeded per client
        out = []
        for (cid, config), seed in zip(instructions, seeds):
            if "local_epochs" not in config:
                raise ValueError(f"the wrapped strategy's fit config must hold local_epochs, got {sorted(config)}")
            epochs = check_int("local_epochs", config["local_epochs"], low=1)
            own.manual_seed(seed ^ _SALT)
            u = torch.rand(1, generator=own).item()  # both drawn for every client, whatever fraction
            partial = int(torch.randint(1, epochs + 1, (1,), generator=own))
            out.append((cid, {**config, "local_epochs": partial} if u < self.fraction else config))
        return out
