"""Composition: the privacy of several mechanisms run on the same data.

* **Basic composition** (Dwork et al. 2006): ε's and δ's add up.
* **Advanced composition** (Dwork, Rothblum & Vadhan 2010): k runs of an (ε, δ)-DP mechanism
  are (ε√(2k ln(1/δ')) + kε(e^ε − 1), kδ + δ')-DP for any δ' > 0 — ε grows like √k, not k.
* **RDP composition** (Mironov 2017): Rényi-DP values add up, then convert once to (ε, δ);
  see :mod:`dpfl_course.dp.accounting`.

:func:`gaussian_sigma_per_query` answers the planning question "k Gaussian queries share a total
budget (ε, δ): how much noise must each one get?" under each rule.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize

from dpfl_course._validate import check_delta, check_epsilon, check_finite, check_int
from dpfl_course.dp.accounting import RDP_ORDERS, _conversion_offset
from dpfl_course.dp.mechanisms import gaussian_sigma

__all__ = [
    "COMPOSITION_RULES",
    "basic_composition",
    "advanced_composition",
    "gaussian_sigma_per_query",
]

#: Rules accepted by :func:`gaussian_sigma_per_query`.
COMPOSITION_RULES = ("basic", "advanced", "rdp", "exact")


def basic_composition(epsilons, deltas=None) -> tuple[float, float]:
    """Total (ε, δ) of mechanisms with the given (ε_i, δ_i), run on the same data: the sums.

    Args:
        epsilons: the ε_i, each ≥ 0 (at least one).
        deltas: the δ_i, each in [0, 1); None means all 0 (pure ε-DP mechanisms).

    Returns:
        (Σ ε_i, Σ δ_i). A total δ ≥ 1 is returned as is: such a guarantee is empty.

    >>> basic_composition([0.5, 0.25, 0.25])
    (1.0, 0.0)
    >>> basic_composition([1.0, 1.0], [1e-6, 1e-6])
    (2.0, 2e-06)
    """
    eps = [check_finite(f"epsilons[{i}]", e, low=0) for i, e in enumerate(_as_list("epsilons", epsilons))]
    if not eps:
        raise ValueError("epsilons must hold at least one value, got an empty sequence")
    if deltas is None:
        dels = [0.0] * len(eps)
    else:
        dels = [check_finite(f"deltas[{i}]", d, low=0, high=1, high_open=True)
                for i, d in enumerate(_as_list("deltas", deltas))]
        if len(dels) != len(eps):
            raise ValueError(f"deltas must have one value per epsilon ({len(eps)}), got {len(dels)}")
    return float(math.fsum(eps)), float(math.fsum(dels))


def _as_list(name, values) -> list:
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got {values!r}")
    return list(np.asarray(values, dtype=object))


def advanced_composition(*, epsilon, delta, k, delta_prime) -> tuple[float, float]:
    """Total (ε', δ_total) of k runs of an (ε, δ)-DP mechanism, by advanced composition.

    ε' = ε·√(2k·ln(1/δ')) + k·ε·(e^ε − 1) and δ_total = k·δ + δ' (Dwork, Rothblum & Vadhan 2010;
    Dwork & Roth 2014, Theorem 3.20). It beats basic composition (kε) only when k is large
    and ε small; for a few queries basic composition is tighter — take the smaller of the two.

    Args:
        epsilon: ε of one run, > 0.
        delta: δ of one run, in [0, 1) (0 for pure ε-DP mechanisms).
        k: number of runs, an integer ≥ 1.
        delta_prime: the extra failure probability δ' in (0, 1) that buys the √k.

    >>> eps, dlt = advanced_composition(epsilon=0.1, delta=0.0, k=100, delta_prime=1e-5)
    >>> round(eps, 4), dlt
    (5.8502, 1e-05)
    """
    eps = check_epsilon(epsilon)
    dlt = check_delta(delta, allow_zero=True)
    runs = check_int("k", k, low=1)
    dp = check_finite("delta_prime", delta_prime, low=0, high=1, low_open=True, high_open=True)
    total_eps = eps * math.sqrt(2 * runs * math.log(1 / dp)) + runs * eps * math.expm1(eps)
    return float(total_eps), float(runs * dlt + dp)


def _rdp_gaussian_noise_multiplier(epsilon: float, delta: float, k: int) -> float:
    """Smallest σ (over the RDP orders) with k-fold Gaussian RDP converted to ≤ ε at δ.

    The k-fold Gaussian mechanism has RDP kα/(2σ²) at order α, and Opacus converts RDP to
    ε(α) = rdp + log((α−1)/α) − (log δ + log α)/(α − 1). Solving ε(α) = ε for σ at every order
    and keeping the smallest σ inverts the conversion exactly, without a root search.
    """
    alphas = np.asarray(RDP_ORDERS)
    slack = epsilon - _conversion_offset(alphas, delta)
    usable = slack > 0
    if not np.any(usable):
        raise ValueError(f"epsilon={epsilon!r} is below what RDP can certify at delta={delta!r}")
    return float(np.min(np.sqrt(k * alphas[usable] / (2 * slack[usable]))))


@functools.lru_cache(maxsize=8192)
def _sigma_per_query(epsilon: float, delta: float, k: int, rule: str) -> float:
    if rule == "basic":
        return gaussian_sigma(epsilon=epsilon / k, delta=delta / k)
    if rule == "exact":
        # k Gaussian queries of sensitivity 1 with noise σ each are one Gaussian query of the
        # k-vector, whose L2 sensitivity is √k: the composition is exact, no bound involved.
        return math.sqrt(k) * gaussian_sigma(epsilon=epsilon, delta=delta)
    if rule == "rdp":
        return _rdp_gaussian_noise_multiplier(epsilon, delta, k)
    # advanced: half of δ is δ', the other half is shared by the k queries; the per-query ε
    # is the one whose advanced composition is exactly the total ε (it increases with ε).
    delta_prime, delta_each = delta / 2, delta / (2 * k)

    def excess(eps_each):
        return advanced_composition(epsilon=eps_each, delta=delta_each, k=k,
                                    delta_prime=delta_prime)[0] - epsilon

    eps_each = optimize.brentq(excess, 1e-12 * epsilon, epsilon, xtol=1e-15, rtol=1e-12)
    return gaussian_sigma(epsilon=eps_each, delta=delta_each)


def gaussian_sigma_per_query(*, epsilon, delta, num_queries, composition="rdp", sensitivity=1.0) -> float:
    """Noise σ each of ``num_queries`` Gaussian queries needs so that together they are (ε, δ)-DP.

    Rules (``composition``):

    * ``"basic"``: each query gets (ε/k, δ/k); σ from the analytic Gaussian mechanism.
    * ``"advanced"``: δ/2 is advanced composition's δ', each query gets δ/(2k) and the ε_0 whose
      advanced composition is ε; σ from the analytic Gaussian mechanism.
    * ``"rdp"``: the k-fold Gaussian has RDP kα·Δ²/(2σ²); the smallest σ whose RDP converts
      (Opacus's conversion, :data:`RDP_ORDERS`) to ε at δ. Equals
      ``noise_multiplier_for(target_epsilon=ε, sample_rate=1, steps=k, delta=δ) · Δ``
      up to that function's 0.1 % tolerance.
    * ``"exact"``: k Gaussian queries are one Gaussian query of L2 sensitivity √k·Δ, so
      σ = √k · (analytic σ for (ε, δ)) — the least noise any rule can certify.

    >>> [round(gaussian_sigma_per_query(epsilon=1.0, delta=1e-5, num_queries=10, composition=r), 2)
    ...  for r in COMPOSITION_RULES]
    [36.3, 59.72, 12.79, 11.8]
    """
    eps = check_epsilon(epsilon)
    dlt = check_delta(delta)
    k = check_int("num_queries", num_queries, low=1)
    if composition not in COMPOSITION_RULES:
        raise ValueError(f"composition must be one of {COMPOSITION_RULES}, got {composition!r}")
    scale = check_finite("sensitivity", sensitivity, low=0, low_open=True)
    return scale * _sigma_per_query(eps, dlt, k, composition)

