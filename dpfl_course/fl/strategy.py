"""The server's strategy: which clients train each round, and how their results are combined.

The interface of Flower's ``Strategy`` reduced to training: ``configure_fit`` picks clients and
their fit config, ``aggregate_fit`` turns the clients' results into the next global parameters.
A strategy never trains and never draws from a global generator; the simulation passes it one.

To add behaviour around an existing strategy (differential privacy, logging), wrap it: keep the
inner strategy in an attribute and override only the methods that change, calling the inner ones.
"""

from __future__ import annotations

import torch

from dpfl_course.fl.client import FitRes

__all__ = ["Strategy", "StrategyWrapper", "check_label"]


class Strategy:
    """Base class of the server strategies (FedAvg, FedProx, the DP wrappers).

    ``results`` passed to :meth:`aggregate_fit` are ``(cid, FitRes)`` pairs, ``FitRes`` being
    ``(parameters, num_examples, metrics)``; ``failures`` is the list of client ids that were
    asked to train but did not report (dropped out).
    """

    def configure_fit(self, server_round: int, parameters: list[torch.Tensor], num_clients: int,
                      generator: torch.Generator) -> list[tuple[int, dict]]:
        """The clients (ids in 0..num_clients-1, ascending) that train in this round, each with its config."""
        raise NotImplementedError

    def aggregate_fit(self, server_round: int, results: list[tuple[int, FitRes]],
                      failures: list[int]) -> tuple[list[torch.Tensor] | None, dict]:
        """The new global parameters (None: keep the current ones) and metrics for the history."""
        raise NotImplementedError


class StrategyWrapper(Strategy):
    """A strategy that adds behaviour around another one (e.g. clipping and noise for DP-FedAvg).

    Both methods pass through to the wrapped strategy; a subclass overrides only what it changes
    and calls ``self.strategy``'s method inside. Other attributes (``lr``, ``fit_config``,
    ``num_fit_clients`` ...) are read from the wrapped strategy.

    >>> from dpfl_course.fl.fedavg import FedAvg
    >>> class Logged(StrategyWrapper):
    ...     def aggregate_fit(self, server_round, results, failures):
    ...         parameters, metrics = self.strategy.aggregate_fit(server_round, results, failures)
    ...         return parameters, {**metrics, "num_failures": len(failures)}
    >>> Logged(FedAvg(lr=0.5)).lr
    0.5
    """

    def __init__(self, strategy: Strategy):
        if not isinstance(strategy, Strategy):
            raise ValueError(f"strategy must be a dpfl_course.fl.Strategy, got {type(strategy).__name__}")
        self.strategy = strategy

    def __getattr__(self, name):
        # Only called when normal lookup fails; guard against recursion before __init__ ran.
        if name == "strategy":
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strategy!r})"

    def configure_fit(self, server_round, parameters, num_clients, generator):
        return self.strategy.configure_fit(server_round, parameters, num_clients, generator)

    def aggregate_fit(self, server_round, results, failures):
        return self.strategy.aggregate_fit(server_round, results, failures)


def check_label(label) -> str:
    """``label`` after checking it is a string whose only field is ``{server_round}``.

    >>> check_label("round {server_round}")
    'round {server_round}'
    """
    if not isinstance(label, str):
        raise ValueError(f"label must be a string with the field {{server_round}}, got {type(label).__name__}")
    try:
        label.format(server_round=1)
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"label must be a string whose only field is {{server_round}}, got {label!r}") from None
    return label
