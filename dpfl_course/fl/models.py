"""Small models for the digits: multinomial logistic regression and a one-hidden-layer MLP.

Plain ``torch.nn.Module`` objects, initialised from an explicit ``torch.Generator`` so that a run is
repeatable without touching torch's global generator.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dpfl_course._validate import check_int

__all__ = ["LogisticRegression", "MLP", "init_parameters"]


def _linear(in_features: int, out_features: int) -> nn.Linear:
    """An ``nn.Linear`` built without PyTorch's default initialisation, which draws from the global
    generator; :func:`init_parameters` fills it from an explicit one."""
    return nn.utils.skip_init(nn.Linear, in_features, out_features)


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


@torch.no_grad()
def init_parameters(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Re-initialise every ``nn.Linear`` in ``model`` like PyTorch's default, from ``generator``.

    Weights and biases are drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default for
    ``nn.Linear`` draws the bias from that range too). ``generator=None`` means a fresh generator
    seeded with 0, never the global one.

    Returns:
        ``model`` itself, for chaining.

    >>> m = init_parameters(nn.Linear(4, 2), torch.Generator().manual_seed(1))
    >>> bool(m.weight.abs().max() <= 0.5)
    True
    """
    g = _generator(generator)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.in_features)
            module.weight.copy_(torch.rand(module.weight.shape, generator=g) * 2 * bound - bound)
            if module.bias is not None:
                module.bias.copy_(torch.rand(module.bias.shape, generator=g) * 2 * bound - bound)
    return model


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: one linear layer; the loss (cross-entropy) adds the softmax.

    Args:
        num_features: input size (64 for the 8×8 digits).
        num_classes: number of labels.
        generator: a ``torch.Generator`` for the initial weights; None means seed 0.

    >>> LogisticRegression(64, 10)(torch.zeros(3, 64)).shape
    torch.Size([3, 10])
    """

    def __init__(self, num_features: int = 64, num_classes: int = 10, *, generator: torch.Generator | None = None):
        super().__init__()
        num_features = check_int("num_features", num_features, low=1)
        num_classes = check_int("num_classes", num_classes, low=2)
        self.linear = _linear(num_features, num_classes)
        init_parameters(self, generator)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.linear(X)

    @staticmethod
    def forward_stacked(params: dict, X: torch.Tensor) -> torch.Tensor:
        """K models at once: ``params`` stacked (K, ...) by name, X (K, B, d) → logits (K, B, C).

        Equals ``vmap(functional_call)`` over the K models, with one batched matrix product and
        less overhead per call; the vectorised engine uses it when a model has it.
        """
        return torch.baddbmm(params["linear.bias"].unsqueeze(1), X, params["linear.weight"].transpose(1, 2))


class MLP(nn.Module):
    """A multilayer perceptron num_features → hidden → num_classes with a ReLU in between.

    Args:
        num_features: input size (64 for the 8×8 digits).
        hidden: width of the hidden layer.
        num_classes: number of labels.
        generator: a ``torch.Generator`` for the initial weights; None means seed 0.

    >>> sum(p.numel() for p in MLP(64, 32, 10).parameters())
    2410
    """

    def __init__(self, num_features: int = 64, hidden: int = 32, num_classes: int = 10, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        num_features = check_int("num_features", num_features, low=1)
        hidden = check_int("hidden", hidden, low=1)
        num_classes = check_int("num_classes", num_classes, low=2)
        self.hidden = _linear(num_features, hidden)
        self.output = _linear(hidden, num_classes)
        init_parameters(self, generator)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(X)))

    @staticmethod
    def forward_stacked(params: dict, X: torch.Tensor) -> torch.Tensor:
        """K models at once: ``params`` stacked (K, ...) by name, X (K, B, d) → logits (K, B, C).

        Equals ``vmap(functional_call)`` over the K models, with batched matrix products and less
        overhead per call; the vectorised engine uses it when a model has it.
        """
        h = torch.relu(torch.baddbmm(params["hidden.bias"].unsqueeze(1), X, params["hidden.weight"].transpose(1, 2)))
        return torch.baddbmm(params["output.bias"].unsqueeze(1), h, params["output.weight"].transpose(1, 2))
