"""The sequential simulation engine: the server asks each sampled client in turn (the lesson)."""

from __future__ import annotations

import torch
from torch import nn

from dpfl_course.fl.client import Client, FitRes, check_client_id
from dpfl_course.fl.client_data import check_client_data

__all__ = ["SequentialEngine"]


class SequentialEngine:
    """Runs the clients' local training one after the other, exactly as written in :class:`Client`.

    Args:
        model: the architecture; used as scratch space by every client in turn.
        client_data: list of ``(X, y)`` pairs, one per client.
    """

    def __init__(self, model: nn.Module, client_data):
        self.clients = [Client(cid, X, y, model) for cid, (X, y) in enumerate(check_client_data(client_data))]

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    def fit(self, parameters: list[torch.Tensor], instructions: list[tuple[int, dict]]) -> list[tuple[int, FitRes]]:
        """Each instructed client trains from ``parameters`` with its config; results in the same order."""
        return [(cid, self.clients[check_client_id(cid, self.num_clients)].fit(parameters, config))
                for cid, config in instructions]
