"""Running a federated simulation round by round, and the source article's client-by-client training.

One round of :func:`run_federated` is the five steps of federated learning:

1. the strategy picks this round's clients and their config (``configure_fit``);
2. the server sends them the global parameters (each sampled client may drop out, with
   probability ``dropout``, and then never reports);
3. each surviving client trains locally and 4. sends back (parameters, num_examples, metrics);
5. the strategy aggregates the results into the next global parameters (``aggregate_fit``).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from dpfl_course._validate import check_finite, check_int
from dpfl_course.fl.client import client_seed, client_seeds, evaluate, train_local
from dpfl_course.fl.client_data import check_client_data
from dpfl_course.fl.history import History
from dpfl_course.fl.parameters import get_parameters, parameter_bytes, set_parameters
from dpfl_course.fl.sequential import SequentialEngine
from dpfl_course.fl.strategy import Strategy
from dpfl_course.fl.vectorised import VectorisedEngine

__all__ = ["run_federated", "train_client_by_client", "ENGINES"]

ENGINES = {"sequential": SequentialEngine, "vectorised": VectorisedEngine}


def _check_test_data(test_data):
    if test_data is None:
        return None
    try:
        X, y = test_data
    except (TypeError, ValueError):
        raise ValueError("test_data must be an (X, y) pair or None") from None
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"test_data must hold at least one example and one label per row, got {len(X)} and {len(y)}")
    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    if not torch.isfinite(X).all():
        raise ValueError("test_data X must be finite (found NaN or inf)")
    if y.is_floating_point() or y.is_complex():
        raise ValueError(f"test_data y must be integer labels, got {y.dtype}")
    return X, y.to(torch.int64)


def _check_labels(model: nn.Module, client_data, test_data) -> None:
    """Every label (clients' and test) must index one of the model's outputs."""
    with torch.no_grad():
        num_outputs = model(client_data[0][0][:1]).shape[-1]
    labelled = [(f"client_data[{k}] y", y) for k, (_, y) in enumerate(client_data)]
    if test_data is not None:
        labelled.append(("test_data y", test_data[1]))
    every = torch.cat([y for _, y in labelled])  # one check for all; find the culprit only on failure
    if int(every.min()) >= 0 and int(every.max()) < num_outputs:
        return
    for name, y in labelled:
        if int(y.min()) < 0 or int(y.max()) >= num_outputs:
            raise ValueError(f"{name} must hold labels in [0, {num_outputs - 1}] (the model has {num_outputs} "
                             f"outputs), got {int(y.min())}..{int(y.max())}")


def _initial_parameters(model: nn.Module, initial_parameters) -> list[torch.Tensor]:
    """The run's starting parameters: ``model``'s own, or ``initial_parameters`` checked against it."""
    if initial_parameters is None:
        return get_parameters(model)
    parameters = get_parameters(set_parameters(copy.deepcopy(model), list(initial_parameters)))
    if not all(torch.isfinite(p).all() for p in parameters):
        raise ValueError("initial_parameters must be finite (found NaN or inf)")
    return parameters


def _as_model(model) -> nn.Module:
    """A private copy of ``model`` (an nn.Module, or a function of no arguments returning one)."""
    if not isinstance(model, nn.Module) and callable(model):
        model = model()
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module or a function returning one, got {type(model).__name__}")
    return copy.deepcopy(model)


def _check_instructions(instructions, num_clients: int) -> None:
    cids = [cid for cid, _ in instructions]
    if len(set(cids)) != len(cids) or any(
            isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_clients for c in cids):
        raise ValueError(f"configure_fit must return distinct client ids in [0, {num_clients - 1}], got {cids}")


def _progress(iterable, enabled: bool, total: int, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def _evaluated(row: dict, model, parameters, test_data) -> dict:
    if test_data is not None:
        row["test_loss"], row["test_accuracy"] = evaluate(model, parameters, *test_data)
    return row


def run_federated(model: nn.Module, client_data, strategy: Strategy, *, num_rounds: int,
                  engine: str = "vectorised", test_data=None, seed: int = 0, dropout: float = 0.0,
                  initial_parameters: list[torch.Tensor] | None = None, progress: bool = False,
                  on_round: Callable[[int, list[torch.Tensor], dict], None] | None = None):
    """Simulate ``num_rounds`` rounds of federated training; return the final parameters and the history.

    Args:
        model: the architecture; its current weights are the initial global model (unless
            ``initial_parameters`` is given). It is not modified. A function of no arguments
            returning the model (``model_fn``) is accepted too.
        client_data: list of ``(X, y)`` pairs, one per client (see :func:`make_client_data`).
        strategy: e.g. ``FedAvg(...)``, ``FedProx(...)``, or a wrapper around one.
        num_rounds: number of rounds >= 1.
        engine: ``"vectorised"`` (all sampled clients at once, fast) or ``"sequential"`` (one
            client after the other, the readable loop); both give the same model up to rounding.
            An engine object with ``fit(parameters, instructions)`` is accepted too.
        test_data: ``(X_test, y_test)`` to evaluate the global model on after every round, or None.
        seed: seeds the server's generator (client sampling, dropout) and, through
            :func:`client_seed`, every client's shuffling.
        dropout: probability in [0, 1) that a sampled client drops out of a round (independently).
            A round where every sampled client drops out keeps the global model.
        initial_parameters: start from these instead of ``model``'s weights.
        progress: show a tqdm progress bar over rounds.
        on_round: called as ``on_round(server_round, parameters, row)`` after each round.

    Returns:
        ``(parameters, history)``: the final global parameters (list of tensors) and a
        :class:`History` with a row for round 0 (the initial model) and one per round.

    Raises:
        ValueError: for out-of-range arguments (named), empty clients, or a strategy asking for
            more clients than exist.
    """
    num_rounds = check_int("num_rounds", num_rounds, low=1)
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    dropout = check_finite("dropout", dropout, low=0, high=1, high_open=True)
    client_data = check_client_data(client_data)
    test_data = _check_test_data(test_data)
    if not isinstance(strategy, Strategy):
        raise ValueError(f"strategy must be a dpfl_course.fl.Strategy, got {type(strategy).__name__}")
    model = _as_model(model)
    if isinstance(engine, str):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {engine!r}")
        engine = ENGINES[engine](model, client_data)
    parameters = _initial_parameters(model, initial_parameters)
    _check_labels(model, client_data, test_data)
    size = parameter_bytes(parameters)
    num_clients = len(client_data)
    server = torch.Generator().manual_seed(seed)

    history = History()
    history.add(**_evaluated({"round": 0, "clients_sampled": 0, "clients_succeeded": 0,
                              "bytes_down": 0, "bytes_up": 0}, model, parameters, test_data))
    for server_round in _progress(range(1, num_rounds + 1), progress, num_rounds, "rounds"):
        instructions = strategy.configure_fit(server_round, parameters, num_clients, server)
        _check_instructions(instructions, num_clients)
        # Drawn every round, even when dropout = 0, so the clients sampled in later rounds do not
        # depend on the dropout rate (a slider moving dropout changes only who drops out).
        dropped = (torch.rand(len(instructions), generator=server) < dropout).tolist()
        seeds = client_seeds(seed, server_round, [cid for cid, _ in instructions])
        survivors = [(cid, {**config, "seed": config.get("seed", client_seed_k)})
                     for (cid, config), lost, client_seed_k in zip(instructions, dropped, seeds) if not lost]
        failures = [cid for (cid, _), lost in zip(instructions, dropped) if lost]
        results = engine.fit(parameters, survivors)
        new, metrics = strategy.aggregate_fit(server_round, results, failures)
        if new is not None:
            parameters = new
        row = {"round": server_round, "clients_sampled": len(instructions), "clients_succeeded": len(results),
               "bytes_down": size * len(instructions), "bytes_up": size * len(results), **metrics}
        history.add(**_evaluated(row, model, parameters, test_data))
        if on_round is not None:
            on_round(server_round, parameters, row)
    return parameters, history


def train_client_by_client(model: nn.Module, client_data, *, local_epochs: int = 1, batch_size: int | None = 10,
                           lr: float = 0.1, num_passes: int = 1, test_data=None, seed: int = 0,
                           progress: bool = False):
    """The source article's "federated" training: one model trained on each client in turn.

    This is sequential fine-tuning, not FedAvg: the model visits client 0, trains there, moves on
    to client 1 with those weights, and so on; nothing is averaged. On non-IID clients the model
    drifts towards the last clients' labels and forgets the earlier ones.

    Args:
        model: the architecture and initial weights (not modified), or a function returning it.
        client_data: list of ``(X, y)`` pairs, one per client, visited in order.
        local_epochs, batch_size, lr: local SGD at each visit, as in FedAvg.
        num_passes: how many times to go through all clients.
        test_data: ``(X_test, y_test)`` to evaluate on after every visit, or None.
        seed: seeds the shuffling (visit p of client k uses ``client_seed(seed, p, k)``).
        progress: show a tqdm progress bar over visits.

    Returns:
        ``(parameters, history)``: one history row per visit (``round`` counts visits, ``client``
        says whose data it was), plus row 0 for the initial model; the model travels down to and
        back up from each client, so each visit counts the parameter bytes once each way.
    """
    local_epochs = check_int("local_epochs", local_epochs, low=1)
    if batch_size is not None:
        check_int("batch_size", batch_size, low=1)
    lr = check_finite("lr", lr, low=0, low_open=True)
    num_passes = check_int("num_passes", num_passes, low=1)
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    client_data = check_client_data(client_data)
    test_data = _check_test_data(test_data)
    model = _as_model(model)
    parameters = get_parameters(model)
    _check_labels(model, client_data, test_data)
    size = parameter_bytes(parameters)
    history = History()
    history.add(**_evaluated({"round": 0, "client": -1, "bytes_down": 0, "bytes_up": 0}, model, parameters, test_data))
    visits = [(p, k) for p in range(1, num_passes + 1) for k in range(len(client_data))]
    for visit, (p, k) in enumerate(_progress(visits, progress, len(visits), "clients"), start=1):
        X, y = client_data[k]
        generator = torch.Generator().manual_seed(client_seed(seed, p, k))
        parameters, _, metrics = train_local(model, parameters, X, y, local_epochs=local_epochs,
                                             batch_size=batch_size, lr=lr, generator=generator)
        row = {"round": visit, "client": k, "bytes_down": size, "bytes_up": size, **metrics}
        history.add(**_evaluated(row, model, parameters, test_data))
    return parameters, history
