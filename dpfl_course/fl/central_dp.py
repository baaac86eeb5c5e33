"""Central DP-FedAvg (McMahan et al. 2018), user-level DP: clip each client's update, noise the sum.

The server samples every client independently with probability q (Poisson sampling, what the
accountant assumes), clips each received update Δ_k = θ_k − θ to norm S, and publishes

    θ + Σ_k w_k · clip(Δ_k) / (q·W) + N(0, (z·S / (q·W))²)

with W = Σ_k w_k over *all* clients, a fixed denominator: one client's whole update moves the sum
by at most w_k·S <= S, so the noise z·S/(qW) makes each round a subsampled Gaussian mechanism
with noise multiplier z and sampling rate q, on users instead of records. ``weight_cap`` gives
McMahan's weights w_k = min(n_k / weight_cap, 1); without it every client weighs 1.

:class:`AdaptiveCentralDP` adds the adaptive clipping of Andrew et al. 2021: the clip norm
follows a target quantile of the update norms, estimated privately.
"""

from __future__ import annotations

import math

import torch

from dpfl_course._validate import check_delta, check_finite, check_int
from dpfl_course.dp.ledger import PrivacyLedger
from dpfl_course.fl.client import client_seeds
from dpfl_course.fl.parameters import parameters_to_vector, vector_to_parameters
from dpfl_course.fl.strategy import Strategy, StrategyWrapper, check_label

__all__ = ["CentralDP", "AdaptiveCentralDP", "adaptive_noise_multipliers"]

# The third word of the (seed, round, salt) hash that seeds a round's server noise: a word no
# client id takes in practice, so the stream differs from the clients' streams of the round.
_NOISE_SALT = 0x4E4F495345  # "NOISE" in ASCII


def _metric_average(results) -> dict:
    """The clients' numeric metrics averaged with weights n_k (as FedAvg reports them)."""
    if not results:
        return {}
    keys = set.intersection(*(set(res.metrics) for _, res in results))
    total = sum(res.num_examples for _, res in results)
    out = {}
    for key in sorted(keys - {"dp_steps", "dp_sample_rate"}):
        try:
            out[key] = sum(float(res.metrics[key]) * res.num_examples for _, res in results) / total
        except (TypeError, ValueError):
            continue
    return out


class CentralDP(StrategyWrapper):
    """DP-FedAvg with a fixed clipping norm: user-level DP added around a FedAvg-like strategy.

    The wrapped strategy decides how many clients train per round (``num_fit_clients``) and what
    they do (``fit_config``: epochs, batch size, lr); this wrapper replaces its sampling by Poisson
    sampling with the same expected number and its averaging by the clipped, noised,
    fixed-denominator estimator (module docstring). Flower's
    ``DifferentialPrivacyServerSideFixedClipping`` in spirit (Flower divides by the number of
    clients received, which leaks it; McMahan's fixed denominator does not).

    Args:
        strategy: e.g. ``FedAvg(clients_per_round=10, ...)``; q = num_fit_clients(N) / N.
        noise_multiplier: z >= 0 (0: clipping without noise, ε infinite).
        clip_norm: S > 0, the bound on each client update's L2 norm.
        delta: δ in (0, 1) at which the user-level ε is reported.
        weight_cap: None (every client weighs 1) or ŵ > 0: w_k = min(n_k / ŵ, 1).
        num_examples: every client's n_k (a sequence of N integers >= 1), needed only with
            ``weight_cap`` to compute W (McMahan et al. take the weights as known to the server).
        seed: seeds the server noise; round r draws from a generator seeded by (seed, r).
        label: how a round's entry is named in the ledger (``{server_round}`` is filled in).

    Attributes:
        ledger: the server's :class:`~dpfl_course.dp.PrivacyLedger` (RDP), one Gaussian spend per
            round (σ = z, sample rate q, 1 step): its ε is :func:`~dpfl_course.dp.epsilon` of the run.
        update_norms: dict round → norms of the received updates before clipping (diagnostics for
            the dashboard; like ``"clipped_fraction"`` they are not private and a real server
            would not publish them).

    The History gets ``"epsilon"`` (user-level, so far), ``"clip_norm"`` (S of the round),
    ``"clipped_fraction"`` (of the received updates; NaN when none) and the clients' averaged
    metrics (``"train_loss"``).

    >>> from dpfl_course.fl.fedavg import FedAvg
    >>> s = CentralDP(FedAvg(clients_per_round=10), noise_multiplier=1.0, clip_norm=0.5)
    >>> s.sample_rate(100), s.noise_std(100)
    (0.1, 0.05)
    """

    def __init__(self, strategy: Strategy, *, noise_multiplier: float, clip_norm: float, delta: float = 1e-5,
                 weight_cap: float | None = None, num_examples=None, seed: int = 0,
                 label: str = "round {server_round}"):
        super().__init__(strategy)
        if isinstance(strategy, StrategyWrapper):
            # CentralDP replaces the inner strategy's sampling and aggregation, so an inner wrapper
            # (LocalDP's ledgers, Stragglers' partial work) would be silently skipped.
            raise ValueError(f"strategy must be a plain strategy such as FedAvg or FedProx, got the wrapper "
                             f"{type(strategy).__name__}: wrap it around CentralDP instead "
                             f"({type(strategy).__name__}(CentralDP(FedAvg(...), ...), ...))")
        for needed in ("num_fit_clients", "fit_config"):
            if not callable(getattr(strategy, needed, None)):
                raise ValueError(f"strategy must have a {needed}() method (FedAvg and FedProx do), "
                                 f"got {type(strategy).__name__}")
        self.noise_multiplier = check_finite("noise_multiplier", noise_multiplier, low=0)
        self.clip_norm = check_finite("clip_norm", clip_norm, low=0, low_open=True)
        self.delta = check_delta(delta)
        self.weight_cap = None if weight_cap is None else check_finite("weight_cap", weight_cap, low=0, low_open=True)
        if num_examples is None:
            self.num_examples = None
            if self.weight_cap is not None:
                raise ValueError("num_examples must list every client's number of examples when weight_cap is "
                                 "given (the fixed denominator W sums every client's weight)")
        else:
            if isinstance(num_examples, (str, bytes)) or not hasattr(num_examples, "__len__") or not len(num_examples):
                raise ValueError("num_examples must be a non-empty sequence of integers >= 1, one per client")
            self.num_examples = [check_int(f"num_examples[{k}]", n, low=1) for k, n in enumerate(num_examples)]
        self.seed = check_int("seed", seed, low=0, high=2**64 - 1)
        self.label = check_label(label)
        self.ledger = PrivacyLedger(delta=self.delta, accountant="rdp")
        self.update_norms: dict[int, list[float]] = {}
        self._rounds: dict[int, tuple] = {}  # server_round -> (global parameters, q, num_clients, run seed)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.strategy!r}, noise_multiplier={self.noise_multiplier:g}, "
                f"clip_norm={self.clip_norm:g}, delta={self.delta:g}, weight_cap={self.weight_cap})")

    # ------------------------------------------------------------------ the estimator's constants
    def sample_rate(self, num_clients: int) -> float:
        """q = num_fit_clients(N) / N, each client's probability of taking part in a round."""
        num_clients = check_int("num_clients", num_clients, low=1)
        return self.strategy.num_fit_clients(num_clients) / num_clients

    def total_weight(self, num_clients: int) -> float:
        """W, the sum of every client's weight w_k (N without ``weight_cap``)."""
        num_clients = check_int("num_clients", num_clients, low=1)
        if self.weight_cap is None:
            return float(num_clients)
        if len(self.num_examples) != num_clients:
            raise ValueError(f"num_examples must hold one entry per client ({num_clients}), "
                             f"got {len(self.num_examples)}")
        return math.fsum(min(n / self.weight_cap, 1.0) for n in self.num_examples)

    def weight(self, num_examples: int) -> float:
        """w_k of a client with ``num_examples`` examples: 1, or min(n_k / weight_cap, 1)."""
        return 1.0 if self.weight_cap is None else min(num_examples / self.weight_cap, 1.0)

    def noise_std(self, num_clients: int) -> float:
        """The server noise's standard deviation per coordinate at the current clip: z·S/(q·W)
        (with adaptive clipping, z_Δ·C/(q·W), the multiplier actually applied to the update sum)."""
        return (self.update_noise_multiplier(num_clients) * self.clip_norm
                / (self.sample_rate(num_clients) * self.total_weight(num_clients)))

    def update_noise_multiplier(self, num_clients: int) -> float:
        """The noise multiplier on the update sum: z here (adaptive clipping raises it)."""
        return self.noise_multiplier

    # ------------------------------------------------------------------ the strategy
    def configure_fit(self, server_round, parameters, num_clients, generator):
        """Poisson sampling: every client takes part independently with probability q.

        Raises:
            ValueError: at round 1 if this strategy already ran (its ledger holds spent privacy and
                its clip may have moved): a new run needs a new strategy object.
        """
        if server_round == 1 and (self.update_norms or self._rounds or len(self.ledger)):
            raise ValueError("server_round 1 of a new run, but this strategy has already run one: create a new "
                             f"{type(self).__name__} for each run (its ledger and clip belong to the old run)")
        q = self.sample_rate(num_clients)
        self.total_weight(num_clients)  # checks num_examples against the clients before training
        chosen = (torch.rand(num_clients, generator=generator) < q).nonzero().squeeze(1).tolist()
        config = self.strategy.fit_config(server_round)
        # The server noise depends on this strategy's seed and on the run's (the server generator's
        # seed), so repetitions of a run with different seeds draw different noise.
        self._rounds[server_round] = (list(parameters), q, num_clients, generator.initial_seed())
        return [(cid, dict(config)) for cid in chosen]

    def _round_generator(self, server_round: int, run_seed: int) -> torch.Generator:
        own = client_seeds(self.seed, server_round, [_NOISE_SALT])[0]
        return torch.Generator().manual_seed(client_seeds(run_seed % 2**64, server_round, [own])[0])

    def aggregate_fit(self, server_round, results, failures):
        """θ + Σ w_k clip(Δ_k)/(qW) + noise; the noise is added even when no client reported.

        Raises:
            ValueError: if :meth:`configure_fit` was not called for this round, or a client's
                update is not finite.
        """
        parameters, metrics, _, _ = self._aggregate(server_round, results, self.clip_norm)
        return parameters, metrics

    def _aggregate(self, server_round, results, clip_norm):
        """The DP-FedAvg step; returns (parameters, metrics, norms, the round's generator)."""
        try:
            global_parameters, q, num_clients, run_seed = self._rounds.pop(server_round)
        except KeyError:
            raise ValueError(f"aggregate_fit(server_round={server_round}) must follow configure_fit for "
                             "that round (the server keeps the round's global parameters)") from None
        theta = parameters_to_vector(global_parameters).to(torch.float64)
        total_weight = self.total_weight(num_clients)
        scale = q * total_weight
        z_update = self.update_noise_multiplier(num_clients)
        if results:
            received = [parameters_to_vector(res.parameters).to(torch.float64) for _, res in results]
            updates = torch.stack(received) - theta
            norms = updates.norm(dim=1)
            bad = (~torch.isfinite(norms)).nonzero().squeeze(1).tolist()
            if bad:
                raise ValueError(f"client {results[bad[0]][0]} sent parameters that are not finite (NaN or inf)")
            factors = (clip_norm / norms).clamp(max=1.0)  # a zero update: S/0 = inf -> factor 1
            weights = torch.tensor([self.weight(res.num_examples) for _, res in results], dtype=torch.float64)
            total = (weights * factors) @ updates
            norm_list = norms.tolist()
            clipped = float((norms > clip_norm).double().mean())
        else:
            total = torch.zeros_like(theta)
            norm_list, clipped = [], math.nan
        generator = self._round_generator(server_round, run_seed)
        noise = torch.randn(theta.shape, generator=generator, dtype=torch.float64)
        std = z_update * clip_norm / scale
        new = theta + total / scale + std * noise
        parameters = [p.to(ref.dtype) for p, ref in zip(vector_to_parameters(new, global_parameters),
                                                         global_parameters)]
        self.update_norms[server_round] = norm_list
        if self.noise_multiplier > 0:
            self.ledger.spend_gaussian(self.label.format(server_round=server_round),
                                       noise_multiplier=self.noise_multiplier, sample_rate=q, steps=1)
            epsilon = self.ledger.epsilon
        else:
            epsilon = math.inf
        metrics = {**_metric_average(results), "epsilon": epsilon, "clip_norm": clip_norm,
                   "clipped_fraction": clipped}
        return parameters, metrics, norm_list, generator


def adaptive_noise_multipliers(noise_multiplier: float, count_stddev: float) -> float:
    """The update noise multiplier z_Δ = (z⁻² − (2σ_b)⁻²)^(-1/2) that, with the clipped count's noise
    σ_b, makes the round's total noise multiplier z (Andrew et al. 2021, Theorem 1).

    Raises:
        ValueError: if ``count_stddev`` <= z/2 (the count alone would spend the whole budget).

    >>> round(adaptive_noise_multipliers(1.0, 5.0), 4)
    1.005
    >>> adaptive_noise_multipliers(0.0, 0.0)
    0.0
    """
    z = check_finite("noise_multiplier", noise_multiplier, low=0)
    sigma_b = check_finite("count_stddev", count_stddev, low=0)
    if z == 0:
        return 0.0
    if 2 * sigma_b <= z:
        raise ValueError(f"count_stddev must be a finite number in ({z / 2:g}, inf) (more than half the "
                         f"noise_multiplier {z:g}, or the clipped count alone spends the whole budget), got "
                         f"{count_stddev!r}")
    return (z ** -2 - (2 * sigma_b) ** -2) ** -0.5


class AdaptiveCentralDP(CentralDP):
    """DP-FedAvg with adaptive clipping (Andrew et al. 2021): the clip norm tracks a quantile of the update norms.

    Each round, besides the noisy clipped sum, the server counts the received updates whose norm
    is at most the current clip C, adds N(0, σ_b²) to the count, divides by the expected number of
    clients q·N (b̃, a noisy fraction of unclipped updates), and moves the clip geometrically:
    ``C ← C · exp(−clip_lr · (b̃ − target_quantile))``. Too many unclipped updates shrink C, too
    few grow it; C settles near the ``target_quantile`` of the update norms. The count is a second
    Gaussian query on the same clients, so the update sum's noise multiplier is raised to
    z_Δ = (z⁻² − (2σ_b)⁻²)^(-1/2) (:func:`adaptive_noise_multipliers`) and the round, both
    queries together, is a subsampled Gaussian mechanism with multiplier z: the ledger is charged
    exactly as for :class:`CentralDP`.

    Args:
        strategy, noise_multiplier, delta, weight_cap, num_examples, seed, label: as :class:`CentralDP`.
        initial_clip_norm: C of the first round, > 0.
        target_quantile: γ in [0, 1], the fraction of updates to leave unclipped.
        clip_lr: η > 0, the geometric step of the clip.
        count_stddev: σ_b >= 0 of the count's noise; must exceed noise_multiplier / 2. None means
            the paper's choice, (expected clients per round)/20, but at least noise_multiplier (for
            small cohorts m/20 would take most or all of the budget; σ_b = z leaves z_Δ = 1.155·z),
            and 0 when noise_multiplier is 0.

    The History's ``"clip_norm"`` is the C used in each round; ``"unclipped_fraction"`` is b̃.

    >>> from dpfl_course.fl.fedavg import FedAvg
    >>> s = AdaptiveCentralDP(FedAvg(clients_per_round=20), noise_multiplier=1.0)
    >>> s.count_stddev_for(100), round(s.update_noise_multiplier(100), 4)
    (1.0, 1.1547)
    """

    def __init__(self, strategy: Strategy, *, noise_multiplier: float, initial_clip_norm: float = 0.1,
                 target_quantile: float = 0.5, clip_lr: float = 0.2, count_stddev: float | None = None,
                 delta: float = 1e-5, weight_cap: float | None = None, num_examples=None, seed: int = 0,
                 label: str = "round {server_round}"):
        initial_clip_norm = check_finite("initial_clip_norm", initial_clip_norm, low=0, low_open=True)
        super().__init__(strategy, noise_multiplier=noise_multiplier, clip_norm=initial_clip_norm, delta=delta,
                         weight_cap=weight_cap, num_examples=num_examples, seed=seed, label=label)
        self.initial_clip_norm = initial_clip_norm
        self.target_quantile = check_finite("target_quantile", target_quantile, low=0, high=1)
        self.clip_lr = check_finite("clip_lr", clip_lr, low=0, low_open=True)
        self.count_stddev = None if count_stddev is None else check_finite("count_stddev", count_stddev, low=0)
        if self.count_stddev is not None:
            adaptive_noise_multipliers(self.noise_multiplier, self.count_stddev)  # fails early if too small

    def count_stddev_for(self, num_clients: int) -> float:
        """σ_b: ``count_stddev``, or max(expected clients per round / 20, z) (0 without noise)."""
        if self.count_stddev is not None:
            return self.count_stddev
        if self.noise_multiplier == 0:
            return 0.0
        return max(self.sample_rate(num_clients) * num_clients / 20, self.noise_multiplier)

    def update_noise_multiplier(self, num_clients: int) -> float:
        """z_Δ, the noise multiplier on the clipped update sum (above z: the count takes its share)."""
        return adaptive_noise_multipliers(self.noise_multiplier, self.count_stddev_for(num_clients))

    def configure_fit(self, server_round, parameters, num_clients, generator):
        self.update_noise_multiplier(num_clients)  # a bad count_stddev fails before anyone trains
        return super().configure_fit(server_round, parameters, num_clients, generator)

    def aggregate_fit(self, server_round, results, failures):
        num_clients = self._rounds.get(server_round, (None, None, None, None))[2]
        clip_norm = self.clip_norm
        parameters, metrics, norms, generator = self._aggregate(server_round, results, clip_norm)
        expected = self.sample_rate(num_clients) * num_clients
        # The count is centred: each client adds b_k - 1/2 (in {-1/2, +1/2}), so one client moves
        # it by at most 1/2 and noise σ_b gives it noise multiplier 2σ_b — the 2σ_b of the split
        # z_Δ = (z⁻² − (2σ_b)⁻²)^(-1/2). A raw count (sensitivity 1) would have multiplier σ_b only,
        # and the round would cost more than the ledger's z (Andrew et al. 2021, Sec. 3; TF
        # Privacy's QuantileEstimatorQuery shifts by -0.5 for the same reason).
        centred = sum(n <= clip_norm for n in norms) - 0.5 * len(norms)
        noisy = centred + self.count_stddev_for(num_clients) * float(
            torch.randn(1, generator=generator, dtype=torch.float64))
        fraction = noisy / expected + 0.5
        self.clip_norm = clip_norm * math.exp(-self.clip_lr * (fraction - self.target_quantile))
        metrics["unclipped_fraction"] = fraction
        return parameters, metrics
