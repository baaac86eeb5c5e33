"""Local DP-SGD at one client: Poisson batches, per-example clipping, Gaussian noise (record-level DP).

What a client does when its fit config holds ``"noise_multiplier"`` and ``"max_grad_norm"``
(see :mod:`dpfl_course.fl.client`), following Opacus's conventions so that the accountant's
assumptions hold:

- **Poisson sampling.** Each step includes every local example independently with probability
  ``sample_rate = min(1, batch_size / n_k)``; there are ``ceil(n_k / batch_size)`` steps per
  epoch (``batch_size`` None or >= n_k: one step of all examples per epoch). A step's batch may
  be empty; it still adds noise.
- **Per-example clipping.** Every example's gradient is scaled by ``min(1, C / (norm + 1e-6))``
  (Opacus's factor), C = ``max_grad_norm``.
- **Noise.** N(0, (σ·C)²) per coordinate is added to the clipped sum, which is then divided by the
  *expected* batch size ``sample_rate · n_k`` (not the batch's actual size, which would leak it).

All the randomness of a client's round (which examples each step samples, and the noise of every
step) comes from :func:`local_dp_draws`, drawn from the client's own generator in one fixed order;
both simulation engines call it, so they train on the same batches with the same noise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dpfl_course._validate import check_finite, check_int
from dpfl_course.dp.dpsgd import clip_factors, functional_per_sample_gradients

__all__ = ["LocalDPDraws", "local_dp_plan", "local_dp_draws", "clip_factors",
           "per_example_gradients", "dp_sgd_local_step", "check_local_dp_settings"]


class LocalDPDraws(NamedTuple):
    """A client's random draws for one round of local DP-SGD (see :func:`local_dp_draws`).

    ``masks[t, i]`` says whether example i is in step t's batch; ``noise[t]`` is step t's standard
    normal noise, one value per model coordinate (flattened in ``named_parameters`` order), to be
    multiplied by σ·C.
    """

    sample_rate: float
    steps: int
    expected_batch_size: float
    masks: torch.Tensor
    noise: torch.Tensor


def local_dp_plan(num_examples: int, *, local_epochs: int, batch_size: int | None) -> tuple[float, int]:
    """The sampling rate and number of steps of a client's local DP-SGD in one round.

    ``sample_rate = min(1, batch_size / num_examples)`` and ``steps = local_epochs ·
    ceil(num_examples / batch_size)``; ``batch_size`` None (or >= ``num_examples``) means one
    step of every example per epoch (rate 1). These are what the client reports
    (``"dp_sample_rate"``, ``"dp_steps"``) and what its privacy ledger is charged.

    >>> local_dp_plan(25, local_epochs=2, batch_size=10)
    (0.4, 6)
    >>> local_dp_plan(25, local_epochs=1, batch_size=None)
    (1.0, 1)
    """
    n = check_int("num_examples", num_examples, low=1)
    epochs = check_int("local_epochs", local_epochs, low=1)
    if batch_size is None:
        return 1.0, epochs
    b = check_int("batch_size", batch_size, low=1)
    if b >= n:
        return 1.0, epochs
    return b / n, epochs * math.ceil(n / b)


def local_dp_draws(num_examples: int, num_parameters: int, *, local_epochs: int, batch_size: int | None,
                   generator: torch.Generator) -> LocalDPDraws:
    """Every random draw of one client's round of local DP-SGD, from its own ``generator``.

    First the Poisson masks of all steps (one ``torch.rand`` of shape (steps, num_examples)),
    then the standard normal noise of all steps (one ``torch.randn`` of shape (steps,
    num_parameters)). Both engines call this with the client's seeded generator, so they draw
    the same batches and the same noise.

    Args:
        num_examples: the client's n_k >= 1.
        num_parameters: how many numbers the model has (the noise's width).
        local_epochs, batch_size: as in the fit config (see :func:`local_dp_plan`).
        generator: a ``torch.Generator`` (never the global one).

    >>> d = local_dp_draws(10, 3, local_epochs=1, batch_size=5, generator=torch.Generator().manual_seed(0))
    >>> d.sample_rate, d.steps, d.expected_batch_size, tuple(d.masks.shape), tuple(d.noise.shape)
    (0.5, 2, 5.0, (2, 10), (2, 3))
    """
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    num_parameters = check_int("num_parameters", num_parameters, low=1)
    q, steps = local_dp_plan(num_examples, local_epochs=local_epochs, batch_size=batch_size)
    if q == 1.0:  # every example every step; nothing to draw (and no draw to spend)
        masks = torch.ones(steps, num_examples, dtype=torch.bool)
    else:
        masks = torch.rand(steps, num_examples, generator=generator) < q
    noise = torch.randn(steps, num_parameters, generator=generator)
    return LocalDPDraws(q, steps, q * num_examples, masks, noise)


#: The per-example gradients at given parameters (name → (B, *shape)), as dp.dpsgd computes them.
per_example_gradients = functional_per_sample_gradients


def dp_sgd_local_step(model: nn.Module, params: dict, X: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, *,
                      max_grad_norm: float, noise_multiplier: float,
                      expected_batch_size: float) -> tuple[dict, torch.Tensor]:
    """The noisy clipped mean gradient of one DP-SGD step (Opacus's order): clip, sum, add noise, divide.

    Args:
        params: name → tensor, where to take the gradients.
        X, y: this step's (Poisson) batch, possibly empty.
        noise: standard normal, one value per coordinate (flattened in ``params`` order).
        max_grad_norm, noise_multiplier, expected_batch_size: C, σ, and q·n_k.

    Returns:
        (name → gradient estimate, per-example losses (B,)).

    >>> m = nn.Linear(2, 2)
    >>> params = {n: torch.zeros_like(p) for n, p in m.named_parameters()}
    >>> X, y = torch.tensor([[30.0, 40.0]]), torch.tensor([0])
    >>> grads, _ = dp_sgd_local_step(m, params, X, y, torch.zeros(6), max_grad_norm=1.0, noise_multiplier=1.0,
    ...                              expected_batch_size=1.0)
    >>> round(float(torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))), 4)  # clipped to C = 1
    1.0
    """
    grads = per_example_gradients(model, params, X, y)
    B = len(X)
    if B:
        norms = torch.sqrt(sum(g.reshape(B, -1).pow(2).sum(1) for g in grads.values()))
        factors = clip_factors(norms, max_grad_norm)
    out, offset = {}, 0
    for name, p in params.items():
        size = p.numel()
        clipped_sum = torch.einsum("b,b...->...", factors, grads[name]) if B else torch.zeros_like(p)
        step_noise = noise[offset:offset + size].view_as(p)
        out[name] = (clipped_sum + (noise_multiplier * max_grad_norm) * step_noise) / expected_batch_size
        offset += size
    with torch.no_grad():
        losses = (F.cross_entropy(functional_call(model, params, (X,)), y, reduction="none") if B
                  else X.new_zeros(0))
    return out, losses


def check_local_dp_settings(noise_multiplier, max_grad_norm) -> tuple[float | None, float | None]:
    """Check a fit config's local DP keys: both None (non-private) or σ >= 0 and C > 0 together.

    >>> check_local_dp_settings(1.1, 1.0)
    (1.1, 1.0)
    >>> check_local_dp_settings(None, None)
    (None, None)
    """
    if noise_multiplier is None and max_grad_norm is None:
        return None, None
    if noise_multiplier is None or max_grad_norm is None:
        raise ValueError("noise_multiplier and max_grad_norm must be given together for local DP-SGD "
                         f"(or both left out), got noise_multiplier={noise_multiplier!r}, "
                         f"max_grad_norm={max_grad_norm!r}")
    return (check_finite("noise_multiplier", noise_multiplier, low=0),
            check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True))
