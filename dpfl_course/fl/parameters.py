"""Model parameters as what travels between server and clients: a list of tensors.

As in Flower, the server and the clients exchange a model's parameters as an ordered list of
arrays (here tensors, in ``model.named_parameters()`` order), never the module itself.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["get_parameters", "set_parameters", "parameters_to_vector", "vector_to_parameters", "parameter_bytes"]


def get_parameters(model: nn.Module) -> list[torch.Tensor]:
    """A detached copy of ``model``'s parameters, in ``named_parameters()`` order.

    >>> [tuple(p.shape) for p in get_parameters(nn.Linear(3, 2))]
    [(2, 3), (2,)]
    """
    return [p.detach().clone() for p in model.parameters()]


@torch.no_grad()
def set_parameters(model: nn.Module, parameters: list[torch.Tensor]) -> nn.Module:
    """Copy ``parameters`` (a list as returned by :func:`get_parameters`) into ``model``.

    Raises:
        ValueError: if the number of tensors or a shape does not match the model.

    >>> m = set_parameters(nn.Linear(1, 1), [torch.ones(1, 1), torch.zeros(1)])
    >>> m(torch.tensor([[2.0]])).item()
    2.0
    """
    own = list(model.parameters())
    if len(parameters) != len(own):
        raise ValueError(f"parameters must hold {len(own)} tensors for this model, got {len(parameters)}")
    for i, (p, new) in enumerate(zip(own, parameters)):
        if tuple(new.shape) != tuple(p.shape):
            raise ValueError(f"parameters[{i}] must have shape {tuple(p.shape)}, got {tuple(new.shape)}")
        p.copy_(new)
    return model


def parameters_to_vector(parameters: list[torch.Tensor]) -> torch.Tensor:
    """All tensors flattened and concatenated into one vector (e.g. to clip an update's norm).

    >>> parameters_to_vector([torch.ones(2, 2), torch.zeros(1)]).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0]
    """
    return torch.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vector: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Split ``vector`` back into tensors shaped like ``like`` (inverse of :func:`parameters_to_vector`).

    Raises:
        ValueError: if ``vector`` does not have exactly as many elements as ``like``.

    >>> [p.shape for p in vector_to_parameters(torch.arange(5.0), [torch.ones(2, 2), torch.zeros(1)])]
    [torch.Size([2, 2]), torch.Size([1])]
    """
    total = sum(p.numel() for p in like)
    if vector.ndim != 1 or vector.numel() != total:
        raise ValueError(f"vector must be 1-D with {total} elements, got shape {tuple(vector.shape)}")
    out, start = [], 0
    for p in like:
        out.append(vector[start:start + p.numel()].reshape(p.shape))
        start += p.numel()
    return out


def parameter_bytes(parameters: list[torch.Tensor]) -> int:
    """Bytes needed to send ``parameters`` once, uncompressed (4 bytes per float32 number).

    >>> parameter_bytes([torch.zeros(10, 64), torch.zeros(10)])
    2600
    """
    return sum(p.numel() * p.element_size() for p in parameters)
