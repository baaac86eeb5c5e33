"""Local DP: every client trains with DP-SGD on its own data (record-level DP), one ledger per client.

The source article's approach, done right: the server asks each sampled client to run DP-SGD
(Poisson batches, per-example clipping, Gaussian noise; see :mod:`dpfl_course.fl.client_dp`), and
each client's privacy is accounted on that client's own dataset, with its own sampling rate
``batch_size / n_k`` and its own number of steps. Being sampled by the server gives no extra
credit here: the guarantee is about one record of one client, whoever sees the update.

Accounting cost. Each client has its own sampling rate, so a run on unequal clients asks the
accountant about as many (σ, q) pairs as there are client sizes, and a new (σ, q) costs Opacus
tens of milliseconds. The round's ``"epsilon"`` (the largest client ε) is therefore found
without computing every client's ε: RDP at the integer orders (cheap) bounds each client's ε
from above and below, and only the clients whose upper bound reaches the others' lower bounds
are computed exactly. The per-client ledgers are filled when read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from dpfl_course._validate import check_delta, check_finite, check_int
from dpfl_course.dp.accounting import RDP_ORDERS, _conversion_offset, _rdp_at, _skeleton, composed_epsilon
from dpfl_course.dp.ledger import PrivacyLedger
from dpfl_course.fl.strategy import Strategy, StrategyWrapper, check_label

__all__ = ["LocalDP"]


class _Ledgers(Mapping):
    """client id → PrivacyLedger, each filled with its pending spends when it is read."""

    def __init__(self, owner: "LocalDP"):
        self._owner = owner

    def __getitem__(self, cid):
        return self._owner._ledger(cid)

    def __iter__(self):
        return iter(sorted(self._owner._runs))

    def __len__(self):
        return len(self._owner._runs)

    def __repr__(self):
        return f"{{{', '.join(f'{cid}: ε={eps:.3g}' for cid, eps in zip(self, self._owner._exact_all()))}}}"


class LocalDP(StrategyWrapper):
    """Wraps a strategy so that every client trains with local DP-SGD (record-level DP).

    ``configure_fit`` adds ``"noise_multiplier"`` and ``"max_grad_norm"`` to every fit config the
    wrapped strategy sends; aggregation is the wrapped strategy's. After each round, every client
    that reported is charged, in its own :class:`~dpfl_course.dp.PrivacyLedger` (RDP), the
    ``"dp_steps"`` steps at ``"dp_sample_rate"`` it reports, so a client's ε is exactly
    :func:`~dpfl_course.dp.epsilon` of its whole training (composed over the rounds it took part in).

    Args:
        strategy: e.g. ``FedAvg(...)``; its ``batch_size`` sets each client's sampling rate.
        noise_multiplier: σ >= 0 (0 means clipping without noise: ε is infinite).
        max_grad_norm: C > 0, the per-example clipping norm.
        delta: δ in (0, 1) at which each client's ε is reported.
        label: how a round's entry is named in the ledgers (``{server_round}`` is filled in),
            for the notebook's language.

    Attributes:
        ledgers: a read-only dict client id → :class:`~dpfl_course.dp.PrivacyLedger` of the
            clients that have trained, one entry per round they took part in (with σ = 0 the
            ledgers stay empty: there is no finite ε to record).

    The History gets ``"epsilon"`` (also as ``"record_epsilon"``): the largest client ε so far
    (the guarantee every client has). Wrapped around a :class:`~dpfl_course.fl.CentralDP`, the
    latter's user-level ε is kept as ``"user_epsilon"``. The clients' ``"train_loss"`` is
    reported without noise: a diagnostic of the simulation, not covered by the guarantee (a real
    deployment would not send it, or would privatise it too).

    A LocalDP object belongs to one run: its ledgers keep the privacy spent, so starting a second
    run with it raises a ValueError.

    >>> from dpfl_course.fl.fedavg import FedAvg
    >>> s = LocalDP(FedAvg(clients_per_round=2, batch_size=8), noise_multiplier=1.1, max_grad_norm=1.0)
    >>> s.fit_config(1)
    {'local_epochs': 1, 'batch_size': 8, 'lr': 0.1, 'noise_multiplier': 1.1, 'max_grad_norm': 1.0}
    """

    def __init__(self, strategy: Strategy, *, noise_multiplier: float, max_grad_norm: float, delta: float = 1e-5,
                 label: str = "round {server_round}"):
        super().__init__(strategy)
        self.noise_multiplier = check_finite("noise_multiplier", noise_multiplier, low=0)
        self.max_grad_norm = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
        self.delta = check_delta(delta)
        self.label = check_label(label)
        self._runs: dict[int, list[tuple[str, float, int]]] = {}  # cid -> (entry name, q, steps) per round
        self._filled: dict[int, PrivacyLedger] = {}  # cid -> ledger holding the first len(entries) runs
        self._integer_rdp: dict[int, np.ndarray] = {}  # cid -> RDP so far at the integer orders <= 63

    def __repr__(self) -> str:
        return (f"LocalDP({self.strategy!r}, noise_multiplier={self.noise_multiplier:g}, "
                f"max_grad_norm={self.max_grad_norm:g}, delta={self.delta:g})")

    @property
    def ledgers(self) -> Mapping:
        return _Ledgers(self)

    def _dp_keys(self) -> dict:
        return {"noise_multiplier": self.noise_multiplier, "max_grad_norm": self.max_grad_norm}

    def fit_config(self, server_round: int) -> dict:
        """The wrapped strategy's fit config plus the local DP keys (for wrappers that ask for it)."""
        return {**self.strategy.fit_config(server_round), **self._dp_keys()}

    def configure_fit(self, server_round, parameters, num_clients, generator):
        """The wrapped strategy's instructions, each config with the local DP keys added.

        Raises:
            ValueError: at round 1 if this strategy already ran (its ledgers hold spent privacy):
                a new run needs a new strategy object.
        """
        if server_round == 1 and self._runs:
            raise ValueError("server_round 1 of a new run, but this LocalDP has already run one: create a new "
                             "LocalDP for each run (its ledgers belong to the old run)")
        keys = self._dp_keys()
        return [(cid, {**config, **keys})
                for cid, config in self.strategy.configure_fit(server_round, parameters, num_clients, generator)]

    def aggregate_fit(self, server_round, results, failures):
        """Charge every reporting client, then aggregate with the wrapped strategy.

        Raises:
            ValueError: if a client's metrics lack ``"dp_steps"``/``"dp_sample_rate"`` (it did
                not run local DP-SGD, so its privacy cannot be accounted).
        """
        name = self.label.format(server_round=server_round)
        for cid, res in results:
            try:
                steps, sample_rate = res.metrics["dp_steps"], res.metrics["dp_sample_rate"]
            except (KeyError, TypeError):
                raise ValueError(f"client {cid} must report dp_steps and dp_sample_rate (it did not train with "
                                 "local DP-SGD)") from None
            steps = check_int("dp_steps", steps, low=1)
            sample_rate = check_finite("dp_sample_rate", sample_rate, low=0, high=1, low_open=True)
            self._runs.setdefault(cid, []).append((name, sample_rate, steps))
            if self.noise_multiplier > 0:
                per_step = np.array([_rdp_at(self.noise_multiplier, sample_rate, a) for a in _INTEGER_ORDERS])
                self._integer_rdp[cid] = self._integer_rdp.get(cid, 0.0) + steps * per_step
        parameters, metrics = self.strategy.aggregate_fit(server_round, results, failures)
        metrics = {k: v for k, v in metrics.items() if k not in ("dp_steps", "dp_sample_rate")}
        if "epsilon" in metrics:  # a CentralDP inside: keep its user-level ε under its own name
            metrics["user_epsilon"] = metrics["epsilon"]
        metrics["epsilon"] = metrics["record_epsilon"] = self.max_epsilon()
        return parameters, metrics

    # ------------------------------------------------------------------ accounting
    def _exact(self, cid) -> float:
        """Client ``cid``'s ε so far, exactly as its ledger (and dp.epsilon) reports it."""
        if self.noise_multiplier == 0:
            return math.inf
        runs = [(self.noise_multiplier, q, steps) for _, q, steps in self._runs[cid]]
        return composed_epsilon(runs, delta=self.delta)

    def _exact_all(self) -> list[float]:
        return [self._exact(cid) for cid in sorted(self._runs)]

    def max_epsilon(self) -> float:
        """The largest client ε so far (0 before any round), computing as few client ε as it can.

        Equals ``max(self.epsilons(...))`` (tested); see the module docstring for how.
        """
        if not self._runs:
            return 0.0
        if self.noise_multiplier == 0:
            return math.inf
        cids = sorted(self._runs)
        rdp = np.stack([self._integer_rdp[cid] for cid in cids])  # (clients, integer orders)
        offset = _conversion_offset(_ALPHAS, self.delta)
        upper = np.min(rdp + offset[_INTEGER_POSITIONS], axis=1)  # ε over a subset of the orders
        # RDP never decreases with the order: at order α it is at least the RDP at the largest
        # integer order <= α, which bounds ε(α) from below (the accountant's own skipping rule).
        # Orders below 2 have no integer order under them: their RDP is only known to be >= 0.
        floor_rdp = np.hstack([np.zeros((len(cids), 1)), rdp])[:, _FLOOR + 1]
        lower = np.min(floor_rdp + offset, axis=1)
        threshold = lower.max() * (1 - 1e-9) - 1e-12  # a margin far above the sums' rounding
        best = -math.inf
        for k in np.argsort(-upper, kind="stable"):
            if upper[k] < threshold or upper[k] <= best:
                break
            best = max(best, self._exact(cids[k]))
        return best

    def _ledger(self, cid) -> PrivacyLedger:
        if cid not in self._runs:
            raise KeyError(f"client {cid} has not trained yet")
        ledger = self._filled.get(cid)
        if ledger is None:
            ledger = self._filled[cid] = PrivacyLedger(delta=self.delta, accountant="rdp")
        if self.noise_multiplier > 0:
            for name, q, steps in self._runs[cid][len(ledger):]:
                ledger.spend_gaussian(name, noise_multiplier=self.noise_multiplier, sample_rate=q, steps=steps)
        return ledger

    def epsilons(self, num_clients: int) -> list[float]:
        """ε of clients 0..num_clients-1 so far (0 for a client that never trained; inf if σ = 0).

        >>> from dpfl_course.fl.fedavg import FedAvg
        >>> LocalDP(FedAvg(), noise_multiplier=1.0, max_grad_norm=1.0).epsilons(3)
        [0.0, 0.0, 0.0]
        """
        num_clients = check_int("num_clients", num_clients, low=1)
        return [self._exact(cid) if cid in self._runs else 0.0 for cid in range(num_clients)]


_ALPHAS = np.asarray(RDP_ORDERS)
_INTEGER_ORDERS = _skeleton(RDP_ORDERS)
_INTEGER_POSITIONS = np.array([RDP_ORDERS.index(a) for a in _INTEGER_ORDERS])
# For every order, the position in _INTEGER_ORDERS of the largest integer order <= it (-1 for
# the orders below 2).
_FLOOR = np.array([max((j for j, b in enumerate(_INTEGER_ORDERS) if b <= a), default=-1) for a in RDP_ORDERS])
