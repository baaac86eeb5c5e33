"""Federated learning from scratch, in the shape of Flower.

A client's local training returns ``(parameters, num_examples, metrics)``; a :class:`Strategy`
chooses clients (``configure_fit``) and combines their results (``aggregate_fit``);
:func:`run_federated` plays the rounds with a readable sequential engine or a vectorised one
(``torch.func``) that gives the same model faster. Differential privacy is added by wrapping a
strategy: :class:`LocalDP` (DP-SGD inside every client, record level), :class:`CentralDP` and
:class:`AdaptiveCentralDP` (DP-FedAvg at the server, user level).

>>> import torch
>>> from dpfl_course import fl
>>> g = torch.Generator().manual_seed(0)
>>> X, y = torch.randn(60, 4, generator=g), torch.randint(0, 3, (60,), generator=g)
>>> clients = fl.make_client_data(X, y, [range(0, 20), range(20, 60)])
>>> params, history = fl.run_federated(fl.LogisticRegression(4, 3), clients, fl.FedAvg(lr=0.1),
...                                    num_rounds=2, test_data=(X, y))
>>> history["clients_succeeded"]
[0, 2, 2]
"""

from dpfl_course.fl.aggregate import weighted_average
from dpfl_course.fl.client import (
    Client,
    FitConfig,
    FitRes,
    accuracy_per_class,
    batch_schedule,
    client_seed,
    client_seeds,
    epoch_permutations,
    evaluate,
    parse_fit_config,
    train_local,
)
from dpfl_course.fl.central_dp import AdaptiveCentralDP, CentralDP, adaptive_noise_multipliers
from dpfl_course.fl.client_data import check_client_data, make_client_data
from dpfl_course.fl.client_dp import clip_factors, local_dp_draws, local_dp_plan, per_example_gradients
from dpfl_course.fl.fedavg import FedAvg, FedSGD, sample_clients
from dpfl_course.fl.fedprox import FedProx
from dpfl_course.fl.history import History
from dpfl_course.fl.local_dp import LocalDP
from dpfl_course.fl.models import MLP, LogisticRegression, init_parameters
from dpfl_course.fl.parameters import (
    get_parameters,
    parameter_bytes,
    parameters_to_vector,
    set_parameters,
    vector_to_parameters,
)
from dpfl_course.fl.sequential import SequentialEngine
from dpfl_course.fl.simulation import ENGINES, run_federated, train_client_by_client
from dpfl_course.fl.stragglers import Stragglers
from dpfl_course.fl.strategy import Strategy, StrategyWrapper
from dpfl_course.fl.vectorised import VectorisedEngine

__all__ = [
    "AdaptiveCentralDP", "CentralDP", "LocalDP", "adaptive_noise_multipliers", "clip_factors", "local_dp_draws",
    "local_dp_plan", "per_example_gradients",
    "ENGINES", "Client", "FedAvg", "FedProx", "FedSGD", "FitConfig", "FitRes", "History",
    "LogisticRegression", "MLP", "SequentialEngine", "Strategy", "StrategyWrapper", "Stragglers",
    "VectorisedEngine", "accuracy_per_class", "batch_schedule", "check_client_data", "client_seed",
    "client_seeds", "epoch_permutations", "evaluate", "get_parameters", "init_parameters",
    "make_client_data", "parameter_bytes", "parse_fit_config", "parameters_to_vector", "run_federated",
    "sample_clients", "set_parameters", "train_client_by_client", "train_local", "vector_to_parameters",
    "weighted_average",
]
