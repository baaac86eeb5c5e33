"""A client: its local data and local training, returning (parameters, num_examples, metrics).

This is the readable, one-client-at-a-time version of local training: load the global
parameters, run ``local_epochs`` of minibatch SGD on the local data, send the parameters back.
The shape follows Flower's ``NumPyClient.fit(parameters, config)``; the config keys are:

- ``"local_epochs"`` (int >= 1), ``"batch_size"`` (int >= 1; 0 (what FedAvg sends, a config
  holds numbers) or None means the whole local dataset, i.e. one full-batch step per epoch),
  ``"lr"`` (float > 0),
- ``"proximal_mu"`` (float >= 0, FedProx's μ; 0 or absent means plain local SGD),
- ``"seed"`` (int in [0, 2**64 - 1]): seeds this client's generator for shuffling in this round;
  the simulation engines set it to :func:`client_seed` (seed, server_round, client id).
- ``"noise_multiplier"`` (float >= 0) and ``"max_grad_norm"`` (float > 0), given together: local
  DP-SGD (record-level DP, see :mod:`dpfl_course.fl.client_dp`): Poisson batches of rate
  ``batch_size / n_k``, ``ceil(n_k / batch_size)`` steps per epoch, every example's gradient
  clipped to ``max_grad_norm``, noise N(0, (σ·C)²) on the clipped sum, divided by the expected
  batch size; the noise and the batches come from the generator seeded by ``"seed"``. Absent or
  None: plain local SGD. The client then also reports ``"dp_steps"`` and ``"dp_sample_rate"``.

:func:`parse_fit_config` reads and checks these keys for both simulation engines.
"""

from __future__ import annotations

import functools
import math

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dpfl_course._validate import check_finite, check_int
from dpfl_course.fl.client_dp import check_local_dp_settings, dp_sgd_local_step, local_dp_draws
from dpfl_course.fl.parameters import get_parameters, set_parameters

__all__ = ["FitRes", "FitConfig", "parse_fit_config", "check_client_id", "Client", "client_seed", "client_seeds",
           "epoch_permutations", "batch_schedule", "train_local", "evaluate", "accuracy_per_class"]

_SEED_PART_MAX = 2**64 - 1  # seeds and the parts of client_seed's triple are 64-bit words


class FitRes(NamedTuple):
    """What a client sends back after local training (Flower's ``FitRes``)."""

    parameters: list[torch.Tensor]
    num_examples: int
    metrics: dict


class FitConfig(NamedTuple):
    """A checked fit config (see the module docstring); ``batch_size`` None means the whole local dataset.

    ``noise_multiplier`` and ``max_grad_norm`` are None for plain local SGD, both set for local DP-SGD.
    """

    local_epochs: int
    batch_size: int | None
    lr: float
    proximal_mu: float
    seed: int
    noise_multiplier: float | None = None
    max_grad_norm: float | None = None

    @property
    def private(self) -> bool:
        """True when the client trains with local DP-SGD."""
        return self.noise_multiplier is not None


def parse_fit_config(config) -> FitConfig:
    """Read and check a fit config, filling in the defaults: what both simulation engines train with.

    Defaults: ``local_epochs`` 1, ``batch_size`` 10, ``lr`` 0.1, ``proximal_mu`` 0, ``seed`` 0,
    ``noise_multiplier`` and ``max_grad_norm`` None (no local DP). Other keys are ignored (a
    strategy may send more). Nothing is truncated: ``local_epochs=1.7`` is an error, not one epoch.

    Raises:
        ValueError: naming the key, for a value of the wrong type or out of range.

    >>> parse_fit_config({"local_epochs": 2, "batch_size": 0, "lr": 0.5})  # doctest: +NORMALIZE_WHITESPACE
    FitConfig(local_epochs=2, batch_size=None, lr=0.5, proximal_mu=0.0, seed=0, noise_multiplier=None,
              max_grad_norm=None)
    >>> parse_fit_config({"noise_multiplier": 1.1, "max_grad_norm": 1.0}).private
    True
    >>> parse_fit_config({"local_epochs": 1.7})
    Traceback (most recent call last):
    ...
    ValueError: local_epochs must be an integer in [1, inf), got 1.7
    """
    if not hasattr(config, "get"):
        raise ValueError(f"config must be a dict of fit settings, got {type(config).__name__}")
    seed = check_int("seed", config.get("seed", 0), low=0, high=_SEED_PART_MAX)
    settings = (config.get("local_epochs", 1), config.get("batch_size", 10), config.get("lr", 0.1),
                config.get("proximal_mu", 0.0), config.get("noise_multiplier"), config.get("max_grad_norm"))
    # Every client of a round usually gets the same settings (only the seed differs): plain
    # numbers are checked once and cached; anything else (numpy, tensors) is checked each time.
    plain = all(type(v) in _PLAIN for v in settings)
    return (_parse_settings if plain else _parse_settings.__wrapped__)(*settings)._replace(seed=seed)


_PLAIN = (int, float, type(None))


@functools.lru_cache(maxsize=256)
def _parse_settings(local_epochs, batch_size, lr, proximal_mu, noise_multiplier, max_grad_norm) -> FitConfig:
    if batch_size is not None:  # 0 (what FedAvg sends for None: a config holds numbers) means all
        batch_size = check_int("batch_size", batch_size, low=0) or None
    noise_multiplier, max_grad_norm = check_local_dp_settings(noise_multiplier, max_grad_norm)
    return FitConfig(local_epochs=check_int("local_epochs", local_epochs, low=1), batch_size=batch_size,
                     lr=check_finite("lr", lr, low=0, low_open=True),
                     proximal_mu=check_finite("proximal_mu", proximal_mu, low=0), seed=0,
                     noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm)


def check_client_id(cid, num_clients: int) -> int:
    """``cid`` as an int after checking it names one of ``num_clients`` clients (both engines' check).

    >>> check_client_id(2, 3)
    2
    """
    return check_int("client id", cid, low=0, high=num_clients - 1)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """One step of the SplitMix64 mixer (Steele et al. 2014) on uint64 arrays: a cheap, well-spread
    64-bit hash (uint64 arithmetic wraps modulo 2**64, as the mixer wants)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def client_seeds(seed: int, server_round: int, cids) -> list[int]:
    """:func:`client_seed` of every client in ``cids`` at once (what the simulation engines use).

    >>> client_seeds(0, 1, [3, 4]) == [client_seed(0, 1, 3), client_seed(0, 1, 4)]
    True
    """
    seed = check_int("seed", seed, low=0, high=_SEED_PART_MAX)
    server_round = check_int("server_round", server_round, low=0, high=_SEED_PART_MAX)
    cids = [check_int("cid", c, low=0, high=_SEED_PART_MAX) for c in cids]
    h = _splitmix64(np.array([seed], dtype=np.uint64))
    h = _splitmix64(h ^ np.uint64(server_round))
    return (_splitmix64(h ^ np.array(cids, dtype=np.uint64)) >> np.uint64(1)).tolist()


def client_seed(seed: int, server_round: int, cid: int) -> int:
    """The seed of client ``cid``'s shuffling generator in round ``server_round`` of run ``seed``.

    A SplitMix64 hash of the triple, so that nearby (seed, round, client) triples give unrelated
    streams; both simulation engines use it, so they draw identical minibatches. The result is in
    [0, 2**63) and suits ``torch.Generator().manual_seed``.

    Raises:
        ValueError: naming ``seed``, ``server_round`` or ``cid`` if it is not an integer in
            [0, 2**64 - 1] (the hash works on 64-bit words).

    >>> client_seed(0, 1, 3) == client_seed(0, 1, 3) != client_seed(0, 2, 3)
    True
    """
    return client_seeds(seed, server_round, [cid])[0]


def epoch_permutations(num_examples: int, local_epochs: int, generator: torch.Generator) -> torch.Tensor:
    """The order in which local training visits the examples: one random permutation per epoch.

    Returns:
        An int64 tensor of shape (local_epochs, num_examples), drawn with ``torch.randperm`` from
        ``generator`` one epoch after the other. Both simulation engines cut these rows into
        minibatches the same way (:func:`batch_schedule`), so they train on the same batches.

    >>> epoch_permutations(4, 2, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 4])
    """
    num_examples = check_int("num_examples", num_examples, low=1)
    local_epochs = check_int("local_epochs", local_epochs, low=1)
    return _visit_order(num_examples, local_epochs, generator).view(local_epochs, num_examples)


def _visit_order(num_examples: int, local_epochs: int, generator: torch.Generator) -> torch.Tensor:
    """:func:`epoch_permutations` flattened, for arguments already checked (the engine's hot loop)."""
    if local_epochs == 1:
        return torch.randperm(num_examples, generator=generator)
    return torch.cat([torch.randperm(num_examples, generator=generator) for _ in range(local_epochs)])


def batch_schedule(num_examples: int, *, local_epochs: int, batch_size: int | None,
                   generator: torch.Generator) -> list[torch.Tensor]:
    """The minibatches of local training: each epoch's permutation cut into consecutive batches.

    The last batch of an epoch is smaller when ``batch_size`` does not divide ``num_examples``
    (nothing is dropped). ``batch_size=None`` means one batch of all examples per epoch.

    Returns:
        A list of int64 index tensors, one per SGD step, in order.

    >>> g = torch.Generator().manual_seed(0)
    >>> [len(b) for b in batch_schedule(5, local_epochs=2, batch_size=2, generator=g)]
    [2, 2, 1, 2, 2, 1]
    """
    size = num_examples if batch_size is None else check_int("batch_size", batch_size, low=1)
    steps = []
    for perm in epoch_permutations(num_examples, local_epochs, generator):
        steps.extend(perm.split(size))
    return steps


def train_local(model: nn.Module, parameters: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor, *,
                local_epochs: int = 1, batch_size: int | None = 10, lr: float = 0.1, proximal_mu: float = 0.0,
                generator: torch.Generator, noise_multiplier: float | None = None,
                max_grad_norm: float | None = None) -> FitRes:
    """Local training at one client: start from ``parameters``, run minibatch SGD, return the result.

    Each step minimises the mean cross-entropy of the batch plus, for FedProx, the proximal term
    ``proximal_mu / 2 * ||w - w_global||^2`` that keeps the local model near the global one.
    ``model`` is used as scratch space: its parameters are overwritten.

    Args:
        model: the architecture (its current weights are ignored).
        parameters: the global parameters to start from (not modified).
        X, y: the client's examples (float features, int64 labels).
        local_epochs: passes over the local data.
        batch_size: examples per step; None means one full-batch step per epoch (FedSGD).
        lr: SGD step size.
        proximal_mu: FedProx's μ >= 0.
        generator: a ``torch.Generator`` for the shuffling (and, with local DP, the Poisson
            batches and the noise).
        noise_multiplier, max_grad_norm: σ >= 0 and C > 0 for local DP-SGD (record-level DP; see
            :mod:`dpfl_course.fl.client_dp`), both None for plain SGD.

    Returns:
        ``FitRes(parameters, num_examples, {"train_loss": ...})``, the train loss being the mean
        cross-entropy over every example seen during local training (without the proximal term;
        NaN if local DP-SGD's Poisson batches happened to be all empty). With local DP the
        metrics also hold ``"dp_steps"`` and ``"dp_sample_rate"``, what the client's privacy
        ledger is charged.

    Raises:
        ValueError: for an empty client or hyperparameters out of range.
    """
    lr = check_finite("lr", lr, low=0, low_open=True)
    proximal_mu = check_finite("proximal_mu", proximal_mu, low=0)
    noise_multiplier, max_grad_norm = check_local_dp_settings(noise_multiplier, max_grad_norm)
    if len(X) == 0:
        raise ValueError("X must hold at least one example (an empty client cannot train)")
    if noise_multiplier is not None:
        return _train_local_dp(model, parameters, X, y, local_epochs=local_epochs, batch_size=batch_size, lr=lr,
                               proximal_mu=proximal_mu, generator=generator, noise_multiplier=noise_multiplier,
                               max_grad_norm=max_grad_norm)
    steps = batch_schedule(len(X), local_epochs=local_epochs, batch_size=batch_size, generator=generator)
    set_parameters(model, parameters)
    anchor = [p.detach() for p in parameters]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_sum, seen = 0.0, 0
    for batch in steps:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X[batch]), y[batch])
        objective = loss
        if proximal_mu > 0:
            proximal = sum(((w - w0) ** 2).sum() for w, w0 in zip(model.parameters(), anchor))
            objective = loss + proximal_mu / 2 * proximal
        objective.backward()
        optimizer.step()
        loss_sum += loss.item() * len(batch)
        seen += len(batch)
    return FitRes(get_parameters(model), len(X), {"train_loss": loss_sum / seen})


def _train_local_dp(model: nn.Module, parameters, X, y, *, local_epochs, batch_size, lr, proximal_mu, generator,
                    noise_multiplier, max_grad_norm) -> FitRes:
    """:func:`train_local` with local DP-SGD: each step's gradient is the noisy clipped mean of
    :func:`~dpfl_course.fl.client_dp.dp_sgd_local_step` on a Poisson batch."""
    set_parameters(model, parameters)
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach().clone() for n, p in zip(names, parameters)}
    anchor = {n: p.detach() for n, p in zip(names, parameters)}
    draws = local_dp_draws(len(X), sum(p.numel() for p in parameters), local_epochs=local_epochs,
                           batch_size=batch_size, generator=generator)
    loss_sum, seen = 0.0, 0
    for mask, noise in zip(draws.masks, draws.noise):
        batch = mask.nonzero().squeeze(1)
        grads, losses = dp_sgd_local_step(model, params, X[batch], y[batch], noise, max_grad_norm=max_grad_norm,
                                          noise_multiplier=noise_multiplier,
                                          expected_batch_size=draws.expected_batch_size)
        with torch.no_grad():
            for n, p in params.items():
                g = grads[n]
                if proximal_mu > 0:  # FedProx's term is data-independent: added after the noise
                    g = g + proximal_mu * (p - anchor[n])
                p.sub_(lr * g)
        loss_sum += losses.double().sum().item()
        seen += len(batch)
    set_parameters(model, list(params.values()))
    return FitRes(get_parameters(model), len(X), {"train_loss": loss_sum / seen if seen else math.nan,
                                                  "dp_steps": draws.steps, "dp_sample_rate": draws.sample_rate})


def _logits(model: nn.Module, parameters: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """``model``'s outputs on ``X`` with ``parameters`` in place of its own weights (left untouched)."""
    if len(X) == 0:
        raise ValueError("X must hold at least one example to evaluate on")
    names = [n for n, _ in model.named_parameters()]
    return torch.func.functional_call(model, dict(zip(names, parameters)), (X,))


@torch.no_grad()
def evaluate(model: nn.Module, parameters: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``parameters`` (loaded into ``model``) on ``(X, y)``.

    Uses ``torch.func.functional_call``, so ``model``'s own weights are left untouched.

    >>> m = nn.Linear(2, 2)
    >>> loss, acc = evaluate(m, [torch.eye(2), torch.zeros(2)], torch.eye(2), torch.tensor([0, 1]))
    >>> round(loss, 4), acc
    (0.3133, 1.0)
    """
    logits = _logits(model, parameters, X)
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).double().mean().item()
    return loss, accuracy


@torch.no_grad()
def accuracy_per_class(model: nn.Module, parameters: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor,
                       num_classes: int) -> list[float]:
    """Accuracy of ``parameters`` (loaded into ``model``) on the examples of each class separately.

    What a global model knows and what it has forgotten: entry c is the fraction of the examples
    with label c that are predicted as c (NaN for a class with no example in ``y``). ``model``'s
    own weights are left untouched.

    Args:
        model: the architecture.
        parameters: the parameters to evaluate (a list of tensors, as in ``model.parameters()``).
        X, y: examples and their integer labels.
        num_classes: number of classes, an integer >= 1; labels must lie in [0, num_classes).

    Returns:
        A list of ``num_classes`` floats in [0, 1] (or NaN).

    Raises:
        ValueError: for an empty ``X``, a bad ``num_classes`` or labels out of range.

    >>> m = nn.Linear(2, 3)
    >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]]), torch.tensor([0, 1, 0])
    >>> accuracy_per_class(m, [torch.eye(3, 2), torch.zeros(3)], X, y, num_classes=3)
    [0.5, 1.0, nan]
    """
    num_classes = check_int("num_classes", num_classes, low=1)
    y = torch.as_tensor(y)
    if len(y) != len(X):
        raise ValueError(f"y must hold one label per row of X, got {len(y)} labels for {len(X)} rows")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"y must hold labels in [0, {num_classes - 1}] (num_classes={num_classes}), "
                         f"got {int(y.min())}..{int(y.max())}")
    correct = (_logits(model, parameters, X).argmax(1) == y).double()
    hits = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, y, correct)
    counts = torch.bincount(y, minlength=num_classes).double()
    return (hits / counts).tolist()  # 0 / 0 = NaN for an absent class


class Client:
    """One client of the simulation: an id, its data, and a model to train on (Flower's ``NumPyClient``).

    >>> c = Client(0, torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]), nn.Linear(3, 2))
    >>> res = c.fit(c.get_parameters(), {"local_epochs": 1, "batch_size": 2, "lr": 0.1, "seed": 0})
    >>> res.num_examples
    4
    """

    def __init__(self, cid: int, X: torch.Tensor, y: torch.Tensor, model: nn.Module):
        self.cid = check_int("cid", cid, low=0)
        if len(X) == 0:
            raise ValueError(f"client {cid}: X must hold at least one example (an empty client cannot train)")
        self.X, self.y, self.model = X, y, model

    def get_parameters(self) -> list[torch.Tensor]:
        """The parameters of this client's model."""
        return get_parameters(self.model)

    def fit(self, parameters: list[torch.Tensor], config: dict) -> FitRes:
        """Train locally from ``parameters`` as ``config`` says (keys in the module docstring)."""
        c = parse_fit_config(config)
        return train_local(self.model, parameters, self.X, self.y, local_epochs=c.local_epochs,
                           batch_size=c.batch_size, lr=c.lr, proximal_mu=c.proximal_mu,
                           generator=torch.Generator().manual_seed(c.seed), noise_multiplier=c.noise_multiplier,
                           max_grad_norm=c.max_grad_norm)

    def evaluate(self, parameters: list[torch.Tensor], config: dict | None = None) -> tuple[float, int, dict]:
        """Loss, number of examples and ``{"accuracy": ...}`` of ``parameters`` on this client's data."""
        loss, accuracy = evaluate(self.model, parameters, self.X, self.y)
        return loss, len(self.X), {"accuracy": accuracy}
