"""FedProx (Li et al. 2020): FedAvg whose clients add a proximal term μ/2·||w − w_global||² locally."""

from __future__ import annotations

from dpfl_course._validate import check_finite
from dpfl_course.fl.fedavg import FedAvg

__all__ = ["FedProx"]


class FedProx(FedAvg):
    """FedAvg plus a proximal term in every client's local objective.

    The server side is FedAvg's; the strategy only passes ``proximal_mu`` in the fit config and
    the client adds ``proximal_mu / 2 * ||w - w_global||^2`` to its loss, which limits how far a
    client drifts on its own (non-IID) data. ``proximal_mu=0`` is exactly FedAvg.

    Args:
        proximal_mu: μ >= 0.
        **kwargs: as :class:`FedAvg`.

    >>> FedProx(proximal_mu=0.1, clients_per_round=3).fit_config(1)["proximal_mu"]
    0.1
    """

    def __init__(self, *, proximal_mu: float, **kwargs):
        super().__init__(**kwargs)
        self.proximal_mu = check_finite("proximal_mu", proximal_mu, low=0)

    def _extra_repr(self) -> str:
        return f", proximal_mu={self.proximal_mu:g}"

    def fit_config(self, server_round: int) -> dict:
        return {**super().fit_config(server_round), "proximal_mu": self.proximal_mu}
