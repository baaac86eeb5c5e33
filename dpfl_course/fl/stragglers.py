"""Stragglers (Li et al. 2020): clients that finish only part of their local work in a round."""

from __future__ import annotations

import torch

from dpfl_course._validate import check_finite
from dpfl_course.fl.strategy import Strategy, StrategyWrapper

__all__ = ["Stragglers"]


class Stragglers(StrategyWrapper):
    """Wraps a strategy so that some sampled clients run fewer local epochs (systems heterogeneity).

    Each client the wrapped strategy selects is, independently with probability ``fraction``, a
    straggler; a straggler's ``local_epochs`` is replaced by a number drawn uniformly from
    1..local_epochs. Both draws use the server's generator passed to :meth:`configure_fit`, so a
    run is reproducible from its seed. The server keeps the stragglers' partial work (FedProx's
    setting); to model FedAvg, which drops stragglers, use ``run_federated(..., dropout=...)``.
    Aggregation is the wrapped strategy's.

    Args:
        strategy: e.g. ``FedProx(...)`` or ``FedAvg(...)``; its fit config must hold ``local_epochs``.
        fraction: probability in [0, 1] that a sampled client is a straggler.

    >>> from dpfl_course.fl.fedavg import FedAvg
    >>> s = Stragglers(FedAvg(local_epochs=5, clients_per_round=4), fraction=1.0)
    >>> [c["local_epochs"] for _, c in s.configure_fit(1, [], 10, torch.Generator().manual_seed(0))]
    [2, 2, 4, 2]
    """

    def __init__(self, strategy: Strategy, fraction: float):
        super().__init__(strategy)
        self.fraction = check_finite("fraction", fraction, low=0, high=1)

    def __repr__(self) -> str:
        return f"Stragglers({self.strategy!r}, fraction={self.fraction:g})"

    def configure_fit(self, server_round, parameters, num_clients, generator):
        instructions = []
        for cid, config in self.strategy.configure_fit(server_round, parameters, num_clients, generator):
            if "local_epochs" not in config:
                raise ValueError(f"the wrapped strategy's fit config must hold local_epochs, got {sorted(config)}")
            if torch.rand(1, generator=generator).item() < self.fraction:
                epochs = int(config["local_epochs"])
                config = {**config, "local_epochs": int(torch.randint(1, epochs + 1, (1,), generator=generator))}
            instructions.append((cid, config))
        return instructions
