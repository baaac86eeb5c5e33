"""Gradient inversion: rebuilding a client's training images from the update it sends (FedSGD).

In FedSGD a client uploads the gradient of its loss on a small batch. For one example that
gradient is a deterministic function of the example, and often an invertible one:

- **The label** (iDLG, Zhao et al. 2020). With cross-entropy on one example, the last layer's
  bias gradient is ``softmax(z) − onehot(y)``: every entry is positive except the true label's.
  The same sign pattern shows in the last weight matrix when its inputs are positive (sigmoid).
  :func:`infer_label` reads it.
- **The input, exactly** (Phong et al. 2017; Geiping et al. 2020, §3). For a first layer
  ``z = W₁x + b₁``, ``∂ℓ/∂W₁[i, :] = (∂ℓ/∂z_i)·x`` and ``∂ℓ/∂b₁[i] = ∂ℓ/∂z_i``, so
  ``x = ∇W₁[i, :] / ∇b₁[i]`` for any unit with ``∇b₁[i] ≠ 0``. :func:`analytic_inversion` uses the
  least-squares combination of all units, ``Σᵢ ∇b₁[i]·∇W₁[i, :] / Σᵢ ∇b₁[i]²``: the same answer
  without noise, and a least-squares estimate when noise has been added (biased toward 0 then:
  noise in ∇b₁ inflates the denominator).
- **The input, by optimisation** (DLG, Zhu et al. 2019). Start from a random dummy image and move
  it until its gradient matches the observed one; :func:`dlg` does it with L-BFGS, on the squared
  distance (DLG) or on the cosine distance (Geiping et al. 2020), which ignores the gradient's scale.

The defence is DP-FedSGD: the client clips its per-example gradients to norm C and adds
N(0, (σC)²) to every coordinate before uploading (:func:`dp_client_gradient`, built on
:func:`dpfl_course.fl.client_dp.dp_sgd_local_step`, the same step local DP-SGD takes). Clipping a
one-example gradient only rescales it: the analytic ratio and the cosine distance do not see the
scale. The noise is what defends.

Quality is scored with :func:`mse` and :func:`psnr` on images clipped to [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dpfl_course._validate import check_finite, check_generator, check_int, check_model, check_model_batch
from dpfl_course.fl.client_dp import dp_sgd_local_step
from dpfl_course.fl.models import init_parameters

__all__ = ["attack_model", "client_gradient", "dp_client_gradient", "infer_label", "analytic_inversion",
           "dlg", "mse", "psnr"]

_DISTANCES = ("l2", "cosine")


def attack_model(num_features: int = 64, hidden: int = 32, num_classes: int = 10, *,
                 generator: torch.Generator | None = None) -> nn.Sequential:
    """The model whose FedSGD update is attacked: Linear → Sigmoid → Linear, as in DLG.

    A smooth activation makes the gradient a smooth function of the input, which the DLG
    optimisation needs; the first layer has a bias, which the analytic leak needs. Initialised
    from ``generator`` (None: seed 0), like the course's other models.

    >>> m = attack_model(64, 32, 10)
    >>> [tuple(p.shape) for p in m.parameters()]
    [(32, 64), (32,), (10, 32), (10,)]
    """
    num_features = check_int("num_features", num_features, low=1)
    hidden = check_int("hidden", hidden, low=1)
    num_classes = check_int("num_classes", num_classes, low=2)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    model = nn.Sequential(nn.Linear(num_features, hidden), nn.Sigmoid(), nn.Linear(hidden, num_classes))
    return init_parameters(model, generator)


def _num_classes(model, num_features, dtype) -> int:
    with torch.no_grad():
        return model(torch.zeros(1, num_features, dtype=dtype)).shape[-1]


def client_gradient(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The FedSGD update without defence: the gradient of the mean cross-entropy on (X, y).

    One tensor per trainable parameter, detached. ``model`` is not modified.

    >>> m = attack_model(4, 3, 2)
    >>> [tuple(g.shape) for g in client_gradient(m, torch.ones(1, 4), torch.tensor([1]))]
    [(3, 4), (3,), (2, 3), (2,)]
    """
    named, X, y = check_model_batch(model, X, y)
    loss = nn.functional.cross_entropy(model(X), y)
    return [g.detach() for g in torch.autograd.grad(loss, [p for _, p in named])]


def dp_client_gradient(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, max_grad_norm: float,
                       noise_multiplier: float, generator: torch.Generator) -> list[torch.Tensor]:
    """The FedSGD update under DP: each example's gradient clipped to C, summed, N(0, (σC)²) added, / B.

    One step of DP-SGD on the whole batch (the step :class:`dpfl_course.fl.LocalDP` clients take,
    :func:`dpfl_course.fl.client_dp.dp_sgd_local_step`), divided by the batch size B. The noise is
    one standard normal draw per coordinate from ``generator``, times σ·C.

    B is the number of examples the client holds, a public number fixed in advance: this is
    DP-SGD at sampling rate q = 1, where the expected batch size of Opacus and of
    :class:`dpfl_course.fl.LocalDP` is the whole local data set. Dividing by a data-dependent
    count instead would let one record change the update by more than C/B, and the add/remove
    analysis behind the ε would no longer hold.

    Args:
        max_grad_norm: C > 0.
        noise_multiplier: σ ≥ 0 (0: clipping only).
        generator: a ``torch.Generator`` for the noise.

    >>> m = attack_model(4, 3, 2)
    >>> X, y = torch.full((1, 4), 10.0), torch.tensor([1])
    >>> g = dp_client_gradient(m, X, y, max_grad_norm=0.5, noise_multiplier=0.0,
    ...                        generator=torch.Generator().manual_seed(0))
    >>> round(float(torch.sqrt(sum(t.pow(2).sum() for t in g))), 4)  # clipped to C = 0.5
    0.5
    """
    named, X, y = check_model_batch(model, X, y)
    c = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
    sigma = check_finite("noise_multiplier", noise_multiplier, low=0)
    generator = check_generator(generator)
    params = {n: p.detach() for n, p in named}
    noise = torch.randn(sum(p.numel() for p in params.values()), generator=generator, dtype=X.dtype)
    grads, _ = dp_sgd_local_step(model, params, X, y, noise, max_grad_norm=c, noise_multiplier=sigma,
                                 expected_batch_size=float(len(X)))
    return [grads[n] for n, _ in named]


def _check_gradient(gradient, *, min_len=1) -> list[torch.Tensor]:
    if isinstance(gradient, torch.Tensor) or not hasattr(gradient, "__iter__"):
        raise ValueError("gradient must be a list of tensors, one per parameter")
    gradient = list(gradient)
    if len(gradient) < min_len or not all(isinstance(g, torch.Tensor) for g in gradient):
        raise ValueError(f"gradient must be a list of at least {min_len} tensors, one per parameter")
    if not all(g.is_floating_point() and bool(torch.isfinite(g).all()) for g in gradient):
        raise ValueError("gradient must hold finite floating-point numbers")
    return gradient


def infer_label(gradient) -> int:
    """iDLG: the label of a one-example update, the only negative entry of the last layer's gradient.

    ``gradient`` is the list of parameter gradients, last layer last. If the last tensor is a
    bias (1-D), its entries are ``softmax(z)_c − [c = y]``: negative only at the label. If it is a
    weight matrix, each row is that number times the layer's input, positive after a sigmoid, so
    the row sums carry the same sign. The most negative entry is returned (under noise it may
    be the wrong one: that is the defence working).

    >>> infer_label([torch.zeros(3, 2), torch.tensor([0.2, -0.7, 0.5])])
    1
    """
    gradient = _check_gradient(gradient)
    last = gradient[-1]
    if last.dim() == 1:
        scores = last
    elif last.dim() == 2:
        scores = last.sum(dim=1)
    else:
        raise ValueError(f"gradient[-1] must be the last layer's bias (1-D) or weight (2-D), got shape "
                         f"{tuple(last.shape)}")
    if len(scores) < 2:
        raise ValueError(f"gradient[-1] must have one entry per class (at least 2), got {len(scores)}")
    return int(torch.argmin(scores))


def analytic_inversion(gradient, *, unit: int | None = None) -> torch.Tensor:
    """The first layer's input, read off its gradient: ``x = ∇W₁[i, :] / ∇b₁[i]``.

    Exact for a batch of one example and a first layer ``W₁x + b₁`` (Phong et al. 2017): every
    unit's weight-gradient row is the input times its bias gradient. With ``unit=None`` the rows
    of all units are combined by least squares, ``Σᵢ ∇b₁[i]·∇W₁[i, :] / Σᵢ ∇b₁[i]²`` (the same
    answer without noise; with noise a least-squares estimate, biased toward 0 because noise in
    ∇b₁ inflates the denominator). For a batch of B > 1 examples the
    result is a mixture of the B inputs, weighted by their bias gradients.

    Args:
        gradient: the parameter gradients, the first layer's weight (out, in) and bias (out) first.
        unit: use this unit's ratio alone (its bias gradient must be non-zero), or None.

    Returns:
        The recovered input, shape (in,) (not clipped).

    >>> x = torch.tensor([0.0, 0.5, 1.0])
    >>> dz = torch.tensor([0.3, -0.2])  # ∂ℓ/∂z of two units
    >>> analytic_inversion([torch.outer(dz, x), dz]).tolist()
    [0.0, 0.5, 1.0]
    """
    gradient = _check_gradient(gradient, min_len=2)
    weight, bias = gradient[0], gradient[1]
    if weight.dim() != 2 or bias.dim() != 1 or len(bias) != len(weight):
        raise ValueError("gradient must start with the first layer's weight (out, in) and bias (out), got shapes "
                         f"{tuple(weight.shape)} and {tuple(bias.shape)}")
    if unit is not None:
        unit = check_int("unit", unit, low=0, high=len(bias) - 1)
        if bias[unit] == 0:
            raise ValueError(f"unit must have a non-zero bias gradient, got ∇b₁[{unit}] = 0")
        return weight[unit] / bias[unit]
    scale = bias.abs().max()
    if scale == 0:
        raise ValueError("gradient's first-layer bias gradient must not be all zero (nothing to divide by)")
    unit_bias = bias / scale  # normalised first: the squares of tiny gradients (~1e-30) would underflow to 0
    return unit_bias @ weight / (unit_bias.pow(2).sum() * scale)


def _distance(kind, dummy, target):
    if kind == "l2":
        return sum(((a - b) ** 2).sum() for a, b in zip(dummy, target))
    dot = sum((a * b).sum() for a, b in zip(dummy, target))
    norms = torch.sqrt(sum(a.pow(2).sum() for a in dummy)) * torch.sqrt(sum(b.pow(2).sum() for b in target))
    return 1 - dot / (norms + 1e-12)


def dlg(model: nn.Module, gradient, *, labels=None, num_examples: int = 1, distance: str = "cosine",
        max_iter: int = 100, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep Leakage from Gradients: optimise dummy inputs until their gradient matches ``gradient``.

    The dummy batch starts uniform in [0, 1] (drawn from ``generator``) and is moved by L-BFGS
    (strong-Wolfe line search) to minimise the distance between its gradient on ``model`` and the
    observed one: ``"l2"``, the squared distance of DLG (Zhu et al. 2019), or ``"cosine"``,
    1 − cos, as in Geiping et al. (2020), which ignores the gradient's scale (so clipping a
    one-example gradient does not stop it). Labels not given are inferred first with
    :func:`infer_label` (iDLG; one example only).

    Args:
        model: the model the client computed its gradient on (its weights are the global model,
            which the server sent); it is not modified.
        gradient: the observed update, one tensor per trainable parameter.
        labels: the batch's labels (a 1-D int tensor of length ``num_examples``), or None.
        num_examples: how many examples the update was computed on (B ≥ 1).
        distance: ``"cosine"`` or ``"l2"``.
        max_iter: L-BFGS iterations ≥ 1.
        generator: a ``torch.Generator`` for the dummy start.

    Returns:
        ``(X, labels)``: the reconstruction, shape (B, num_features), clipped to [0, 1], and the
        labels used.
    """
    named = check_model(model)
    params = [p for _, p in named]
    gradient = _check_gradient(gradient)
    if len(gradient) != len(params) or any(g.shape != p.shape for g, p in zip(gradient, params)):
        raise ValueError("gradient must have one tensor per trainable parameter of model, with its shape")
    B = check_int("num_examples", num_examples, low=1)
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
    max_iter = check_int("max_iter", max_iter, low=1)
    generator = check_generator(generator)
    if labels is None:
        if B != 1:
            raise ValueError(f"labels must be given when num_examples > 1 (iDLG reads one label), got num_examples={B}")
        labels = torch.tensor([infer_label(gradient)])
    elif not isinstance(labels, torch.Tensor) or labels.dim() != 1 or len(labels) != B \
            or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor of length num_examples = {B}")
    first = params[0]
    if first.dim() != 2:
        raise ValueError(f"model's first parameter must be a weight matrix (out, in), got shape {tuple(first.shape)}")
    classes = _num_classes(model, first.shape[1], first.dtype)
    if int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise ValueError(f"labels must be class labels in [0, {classes - 1}], got {labels.tolist()}")
    target = [g.detach().to(first.dtype) for g in gradient]
    dummy = torch.rand(B, first.shape[1], generator=generator, dtype=first.dtype).requires_grad_(True)
    optimiser = torch.optim.LBFGS([dummy], lr=1.0, max_iter=max_iter, history_size=100,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(dummy), labels)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        value = _distance(distance, grads, target)
        value.backward()
        return value

    saved = [p.grad for p in params]  # the closure's backward also reaches the model's parameters
    try:
        optimiser.step(closure)
    finally:
        for p, g in zip(params, saved):
            p.grad = g
    return dummy.detach().clamp(0, 1), labels


def _as_image(name, image) -> torch.Tensor:
    if isinstance(image, (str, bytes)) or image is None:
        raise ValueError(f"{name} must be an image (an array of numbers), got {type(image).__name__}")
    try:
        return torch.as_tensor(image).double()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be an image (an array of numbers), got {type(image).__name__}") from None


def _check_images(a, b):
    a, b = _as_image("a", a), _as_image("b", b)
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"images must be non-empty and have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("images must hold finite numbers")
    return a, b


def mse(a, b) -> float:
    """Mean squared error between two images (or batches), each first clipped to [0, 1].

    >>> mse(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.7]))
    0.125
    """
    a, b = _check_images(a, b)
    return float((a.clamp(0, 1) - b.clamp(0, 1)).pow(2).mean())


def psnr(a, b, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10·log10(data_range² / MSE)`` (inf for identical images).

    30 dB on images in [0, 1] means an RMS error of about 0.03 (3 % of the range); 10 dB about 0.3.

    >>> round(psnr(torch.tensor([0.0, 1.0]), torch.tensor([0.1, 0.9])), 2)
    20.0
    """
    r = check_finite("data_range", data_range, low=0, low_open=True)
    error = mse(a, b)
    return math.inf if error == 0 else 10 * math.log10(r * r / error)
