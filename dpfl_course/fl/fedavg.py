"""FedAvg (McMahan et al. 2017): sample clients, train locally, average weighted by num_examples."""

from __future__ import annotations

import math

import torch

from dpfl_course._validate import check_finite, check_int
from dpfl_course.fl.aggregate import weighted_average, weighted_metrics
from dpfl_course.fl.client import FitRes
from dpfl_course.fl.strategy import Strategy

__all__ = ["FedAvg", "FedSGD", "sample_clients"]


def sample_clients(num_clients: int, clients_per_round: int, generator: torch.Generator) -> list[int]:
    """``clients_per_round`` distinct client ids drawn uniformly without replacement, ascending.

    >>> sample_clients(10, 3, torch.Generator().manual_seed(0))
    [1, 4, 7]
    """
    num_clients = check_int("num_clients", num_clients, low=1)
    clients_per_round = check_int("clients_per_round", clients_per_round, low=1, high=num_clients)
    return sorted(torch.randperm(num_clients, generator=generator)[:clients_per_round].tolist())


class FedAvg(Strategy):
    """Federated averaging: each round a random subset of clients trains, the server averages.

    Args:
        fraction_fit: fraction C of the clients that train each round; the server samples
            max(1, floor(C * num_clients)) of them (as McMahan et al.). Ignored when
            ``clients_per_round`` is given.
        clients_per_round: how many clients train each round (overrides ``fraction_fit``).
        local_epochs: passes over its data each sampled client makes.
        batch_size: minibatch size of local SGD; None means full batch (one step per epoch).
        lr: local SGD step size.

    Raises:
        ValueError: for values out of range; ``clients_per_round > num_clients`` is reported by
            :meth:`configure_fit`, the first place the number of clients is known.

    >>> strategy = FedAvg(clients_per_round=2, local_epochs=1, batch_size=10, lr=0.1)
    >>> for cid, config in strategy.configure_fit(1, [], 5, torch.Generator().manual_seed(0)):
    ...     print(cid, config)
    0 {'local_epochs': 1, 'batch_size': 10, 'lr': 0.1}
    4 {'local_epochs': 1, 'batch_size': 10, 'lr': 0.1}
    """

    def __init__(self, *, fraction_fit: float = 1.0, clients_per_round: int | None = None, local_epochs: int = 1,
                 batch_size: int | None = 10, lr: float = 0.1):
        self.fraction_fit = check_finite("fraction_fit", fraction_fit, low=0, high=1, low_open=True)
        self.clients_per_round = None if clients_per_round is None else check_int(
            "clients_per_round", clients_per_round, low=1)
        self.local_epochs = check_int("local_epochs", local_epochs, low=1)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, low=1)
        self.lr = check_finite("lr", lr, low=0, low_open=True)

    def __repr__(self) -> str:
        who = (f"clients_per_round={self.clients_per_round}" if self.clients_per_round is not None
               else f"fraction_fit={self.fraction_fit:g}")
        return (f"{type(self).__name__}({who}, local_epochs={self.local_epochs}, "
                f"batch_size={self.batch_size}, lr={self.lr:g}{self._extra_repr()})")

    def _extra_repr(self) -> str:
        return ""

    def num_fit_clients(self, num_clients: int) -> int:
        """How many of ``num_clients`` clients train each round."""
        num_clients = check_int("num_clients", num_clients, low=1)
        if self.clients_per_round is not None:
            if self.clients_per_round > num_clients:
                raise ValueError(f"clients_per_round must be an integer in [1, num_clients={num_clients}], "
                                 f"got {self.clients_per_round}")
            return self.clients_per_round
        return max(1, math.floor(self.fraction_fit * num_clients + 1e-9))

    def fit_config(self, server_round: int) -> dict:
        """The config every sampled client receives (keys as in :mod:`dpfl_course.fl.client`)."""
        return {"local_epochs": self.local_epochs, "batch_size": self.batch_size or 0, "lr": self.lr}

    def configure_fit(self, server_round, parameters, num_clients, generator):
        chosen = sample_clients(num_clients, self.num_fit_clients(num_clients), generator)
        config = self.fit_config(server_round)
        return [(cid, dict(config)) for cid in chosen]

    def aggregate_fit(self, server_round, results, failures):
        """Weighted average of the survivors' parameters; None when every client dropped out.

        Metrics: the clients' numeric metrics (e.g. ``train_loss``) averaged with the same weights.
        """
        if not results:
            return None, {}
        fit_results = [res for _, res in results]
        parameters = weighted_average([(res.parameters, res.num_examples) for res in fit_results])
        metrics = weighted_metrics([(res.metrics, res.num_examples) for res in fit_results])
        return parameters, metrics


class FedSGD(FedAvg):
    """FedSGD: FedAvg with one full-batch gradient step per client per round.

    Averaging the clients' one-step models with weights n_k/n equals one step of gradient descent
    on the union of their data (with every client taking part).

    >>> FedSGD(lr=0.5)
    FedSGD(fraction_fit=1, local_epochs=1, batch_size=None, lr=0.5)
    """

    def __init__(self, *, fraction_fit: float = 1.0, clients_per_round: int | None = None, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, clients_per_round=clients_per_round, local_epochs=1,
                         batch_size=None, lr=lr)
