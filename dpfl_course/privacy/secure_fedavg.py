"""FedAvg through secure aggregation: the server learns only the weighted sum of the clients'
models (or updates) and the sum of their weights, and divides.

:func:`secure_weighted_average` is ``fl.weighted_average`` computed by
:func:`dpfl_course.privacy.secagg.secure_sum`; :class:`SecureAggregation` wraps a FedAvg-type
strategy so that ``fl.run_federated`` aggregates every round that way.
"""

from __future__ import annotations

import numpy as np
import torch

from dpfl_course._validate import check_finite, check_int
from dpfl_course.fl.aggregate import check_results, weighted_metrics
from dpfl_course.fl.parameters import parameters_to_vector, vector_to_parameters
from dpfl_course.fl.strategy import StrategyWrapper
from dpfl_course.privacy.fixed_point import DEFAULT_BITS, DEFAULT_SCALE, check_bits
from dpfl_course.privacy.masking import check_seed
from dpfl_course.privacy.secagg import RecoveryError, secure_sum

__all__ = ["DEFAULT_MAX_WEIGHT", "SecureAggregation", "secure_weighted_average"]

DEFAULT_MAX_WEIGHT = 1000.0
"""Flower's SecAgg+ workflow default ``max_weight``: a client's weight is num_examples / 1000."""


def secure_weighted_average(results, *, threshold: int | None = None, dropouts=(), late_dropouts=(),
                            max_weight: float | None = None, scale: float = DEFAULT_SCALE,
                            bits: int = DEFAULT_BITS, seed=None, server_round: int = 0):
    """FedAvg's weighted average computed through secure aggregation.

    Each client k has the weight r_k = n_k (or n_k / max_weight) and uploads [r_k·w_k, r_k] (its
    parameters flattened, then its weight) masked; the server learns only Σ r_k·w_k and Σ r_k over
    the clients that uploaded, and divides. Equals ``fl.weighted_average`` over them up to
    fixed-point rounding: each of the two sums is off by at most n/(2·scale) for n uploads, so every
    coordinate is off by at most n·(1 + |mean|)/(2·scale·Σr_k) (plus the float32 cast); with
    ``max_weight=None`` the weights are integers, Σr_k is exact and the bound is n/(2·scale·Σn_k).

    Args:
        results: list of (list of tensors, num_examples), as for ``fl.weighted_average``
            (validated as it does, by ``fl.aggregate.check_results``: same number, shapes and dtypes
            of tensors; num_examples >= 1).
        max_weight: None, or the largest num_examples expected (Flower's ``max_weight``): weights
            then lie in (0, 1], which keeps the encoded values small (headroom).
        other arguments: as for :func:`dpfl_course.privacy.secagg.secure_sum`.

    Returns:
        ``(parameters, result)``: the averaged tensors and the :class:`SecAggResult`.

    Raises:
        ValueError: fewer than 2 results, results that ``fl.weighted_average`` refuses, a
            num_examples above max_weight, or too little headroom.
        RecoveryError: too few clients in the unmasking stage.
    """
    if not isinstance(results, (list, tuple)) or len(results) < 2:
        raise ValueError("results must be a list of at least 2 (parameters, num_examples) pairs")
    check_results(results)  # fl.weighted_average's checks and messages, without the plaintext average
    template = [torch.empty(p.shape, dtype=p.dtype) for p in results[0][0]]  # shapes and dtypes only
    if max_weight is not None:
        max_weight = check_finite("max_weight", max_weight, low=0, low_open=True)
    rows = []
    for k, (params, n_k) in enumerate(results):
        if max_weight is not None and n_k > max_weight:
            raise ValueError(f"results[{k}] num_examples must be at most max_weight = {max_weight:g}, got {n_k}")
        weight = float(n_k) if max_weight is None else n_k / max_weight
        vector = parameters_to_vector(list(params)).detach().double().numpy()
        rows.append(np.concatenate([weight * vector, [weight]]))
    result = secure_sum(np.stack(rows), threshold=threshold, dropouts=dropouts, late_dropouts=late_dropouts,
                        scale=scale, bits=bits, seed=seed, server_round=server_round)
    total_weight = float(result.sum[-1])
    if total_weight <= 0:
        raise ValueError(f"scale must be large enough for the weights to survive rounding (Σ weights decoded "
                         f"to {total_weight:g}); raise scale or lower max_weight, got scale = {scale:g}")
    mean = torch.from_numpy(result.sum[:-1] / total_weight)
    return [p.to(t.dtype) for p, t in zip(vector_to_parameters(mean, template), template)], result


def _round_threshold(threshold, num_clients: int) -> int:
    """t for a round of ``num_clients``: an int as given (at most n), a fraction of n, or a majority."""
    if threshold is None:
        return num_clients // 2 + 1
    if isinstance(threshold, float):
        fraction = check_finite("threshold", threshold, low=0, high=1, low_open=True)
        return min(num_clients, max(2, int(np.ceil(fraction * num_clients))))
    return min(num_clients, check_int("threshold", threshold, low=2))


class SecureAggregation(StrategyWrapper):
    """Wraps a FedAvg-type strategy so that each round's weighted average goes through secure aggregation.

    Each reporting client's contribution is [r_k·(w_k − w_global), r_k] with r_k = n_k / max_weight
    (or r_k = n_k with ``max_weight=None``),
    as in Flower's SecAgg+ workflow, which uploads [n_k/max_weight, (n_k/max_weight)·parameters]
    quantised (it uploads parameters; the update Δ_k = w_k − w_global is smaller, which leaves more
    headroom). With r_k <= 1 the encoded values are at most |Δ|·scale, so the headroom check only
    fails for updates far larger than any training step (|Δ| > 3276 at 10 clients, scale 2^16).
    The price is precision: smaller values use less of the fixed-point grid, so with n clients the
    average is off by up to n·(1 + |mean|)/(2·scale·Σr_k) per round — about max_weight times more
    than with raw weights (raise ``scale`` to win it back, as far as the headroom allows).
    Clients in ``failures`` are treated as dropping out after the masks were agreed — the case that
    needs recovery. With fewer than t survivors (or none) the round is aborted: the global model is
    kept and the metric ``secagg_aborted`` is 1.

    In this simulation the server object still receives the clients' results in the clear (the
    engine hands them over); what the wrapper shows is that the protocol's output is the same model.
    ``last_result`` keeps the latest round's :class:`SecAggResult` (what the server saw).

    Args:
        strategy: a :class:`dpfl_course.fl.FedAvg` (FedProx and FedSGD are FedAvgs).
        threshold: t per round: an int >= 2 (capped at the round's clients), a float in (0, 1] as a
            fraction of them (Flower's ``reconstruction_threshold`` takes either), or None for a majority.
        max_weight: the largest num_examples a client may report (Flower's ``max_weight``, default
            1000); a client with more raises a ValueError (Flower only logs an overflow warning and
            uses a weight above 1). None uses the raw weights n_k: Σn_k is then exact and the rounding
            error about max_weight times smaller (the values use more of the grid), but n_k·|Δ| must
            fit in the headroom.
        scale, bits: the fixed-point encoding, as for :func:`secure_sum`.
        seed: None for real randomness, an int for repeatable keys (lessons only).
    """

    def __init__(self, strategy, *, threshold=None, max_weight: float | None = DEFAULT_MAX_WEIGHT,
                 scale: float = DEFAULT_SCALE, bits: int = DEFAULT_BITS, seed=None):
        from dpfl_course.fl.fedavg import FedAvg

        if not isinstance(strategy, FedAvg):
            raise ValueError(f"strategy must be a FedAvg-type strategy (a weighted average), "
                             f"got {type(strategy).__name__}")
        super().__init__(strategy)
        _round_threshold(threshold, 2)  # validate now, not in round 1
        self.threshold = threshold
        self.max_weight = None if max_weight is None else check_finite("max_weight", max_weight, low=0,
                                                                       low_open=True)
        self.scale = check_finite("scale", scale, low=0, low_open=True)
        self.bits = check_bits(bits)
        self.seed = None if seed is None else check_seed(seed)
        self.last_result = None
        self._global = {}

    def __repr__(self) -> str:
        return f"SecureAggregation({self.strategy!r}, threshold={self.threshold!r})"

    def configure_fit(self, server_round, parameters, num_clients, generator):
        """The wrapped strategy's choice; the global parameters are kept to form the updates Δ_k."""
        self._global = {server_round: [p.detach().clone() for p in parameters]}
        return self.strategy.configure_fit(server_round, parameters, num_clients, generator)

    def aggregate_fit(self, server_round, results, failures):
        """The weighted average of the reporting clients' models, computed by :func:`secure_weighted_average`."""
        global_params = self._global.pop(server_round, None)
        self.last_result = None
        if not results:
            return None, {"secagg_aborted": 1.0}
        cids = sorted([cid for cid, _ in results] + list(failures))
        if len(cids) < 2:
            raise ValueError(f"secure aggregation needs at least 2 clients per round, got {len(cids)}")
        by_cid = dict(results)
        zero = [torch.zeros_like(p) for p in global_params]
        # A client that failed never uploads: its row is never used (it is a dropout), zeros stand in.
        rows = [([w - g for w, g in zip(by_cid[cid].parameters, global_params)], by_cid[cid].num_examples)
                if cid in by_cid else (zero, 1) for cid in cids]
        dropouts = [i for i, cid in enumerate(cids) if cid not in by_cid]
        try:
            mean_delta, self.last_result = secure_weighted_average(
                rows, threshold=_round_threshold(self.threshold, len(cids)), dropouts=dropouts,
                max_weight=self.max_weight, scale=self.scale, bits=self.bits, seed=self.seed,
                server_round=server_round)
        except RecoveryError:
            return None, {"secagg_aborted": 1.0}
        parameters = [(g + d).to(g.dtype) for g, d in zip(global_params, mean_delta)]
        metrics = weighted_metrics([(res.metrics, res.num_examples) for _, res in results])
        return parameters, {**metrics, "secagg_aborted": 0.0}
