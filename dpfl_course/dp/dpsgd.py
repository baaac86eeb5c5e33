"""DP-SGD (Abadi et al. 2016) from scratch: per-sample gradients, clipping, noise, one SGD step.

One DP-SGD step on a batch drawn by Poisson sampling (every example in with probability
``sample_rate``):

1. the gradient of each example's own loss (:func:`per_sample_gradients`, ``vmap(grad(...))``);
2. each one clipped to L2 norm at most ``max_grad_norm`` C (:func:`clip_per_sample`);
3. the clipped gradients summed, Gaussian noise N(0, (σC)²) added to every coordinate;
4. the result divided by the *expected* batch size (not the drawn one, which leaks), one SGD step.

:func:`dp_sgd_step` does this exactly as Opacus's ``DPOptimizer`` does (``clip_and_accumulate``,
``add_noise``, ``scale_grad``): the same clipping factor ``min(1, C / (norm + 1e-6))``, the noise
drawn parameter by parameter with ``torch.normal`` from the same generator, so that the same
batch and the same seeded generator give the same step as Opacus (tested).

**The fast path ("ghost clipping").** For a layer ``z = a Wᵀ + b`` applied to one input row per
example, the gradient of example i's loss with respect to W is the outer product ``g_iᵀ a_i``
(g_i = ∂ℓ_i/∂z_i), whose norm is ``‖g_i‖·‖a_i‖`` — no per-sample gradient needs to be built to
know it (Goodfellow 2015; Li et al. 2022 call it ghost clipping). With the clipping factors c_i
known, the clipped sum of the weight gradients is one matrix product ``(c ⊙ G)ᵀ A``. This holds
only if example i's loss depends on example i's input alone: a forward pass that combines examples
(batch normalisation, subtracting the batch mean) makes every ℓ_i depend on the whole batch, and
one example could then move the clipped sum by more than C. So the fast path accepts only models
built entirely from an allowlist of modules (``nn.Linear``, ``nn.Sequential``, the course's
``fl.MLP`` / ``fl.LogisticRegression``, ``nn.Identity``, ``nn.Flatten``, ``nn.Dropout`` and
elementwise activations such as ReLU; see :func:`supports_ghost_clipping`); for those,
:func:`ghost_clipped_sum` gets the activations A and output gradients G of
every layer from one forward and one backward pass; it equals the ``vmap`` path (tested) and
costs roughly 1.5× a non-private step, where the ``vmap`` path costs about 10× (MLP 64→128→10,
batch 64) to 90× (784→128→10, batch 256); ``benchmarks/bench_dpsgd.py`` measures both.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dpfl_course._validate import check_data, check_delta, check_finite, check_generator, check_int, check_model

__all__ = [
    "CLIP_EPSILON",
    "clip_factors",
    "functional_per_sample_gradients",
    "per_sample_gradients",
    "clip_per_sample",
    "supports_ghost_clipping",
    "GhostClipping",
    "ghost_clipped_sum",
    "dp_sgd_step",
    "poisson_batches",
    "steps_per_epoch_for",
    "train_dp_sgd",
]

#: Added to a per-sample norm before dividing, as Opacus does: ``min(1, C / (norm + 1e-6))``.
CLIP_EPSILON = 1e-6

_METHODS = ("auto", "vmap", "ghost")

#: Modules the fast path accepts: none of them combines examples in its forward pass. Matched by
#: exact type (a subclass may override ``forward``).
_FAST_PATH_MODULES = (
    nn.Linear, nn.Sequential, nn.Identity, nn.Flatten, nn.Dropout,
    nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.LeakyReLU, nn.Softplus,
)
#: The course's own models (``dpfl_course.fl.models``; matched by name, as fl imports dp): their
#: forward passes are Linear → ReLU → Linear and Linear, example by example.
_FAST_PATH_COURSE_MODELS = ("MLP", "LogisticRegression")
_FAST_PATH_HINT = "use method='vmap' (per-sample gradients, any model whose forward treats examples separately)"


# ---------------------------------------------------------------- checks


def _check_method(method) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return method


def _cross_entropy_sum(logits, y):
    return nn.functional.cross_entropy(logits, y, reduction="sum")


# ---------------------------------------------------------------- the lesson: vmap(grad)


def clip_factors(norms: torch.Tensor, max_grad_norm) -> torch.Tensor:
    """Opacus's per-example clipping factors ``min(1, C / (norm + 1e-6))``.

    ``max_grad_norm`` is a number > 0, or a tensor of C's that broadcasts against ``norms``
    (one per client in the vectorised FL engine; checked by its caller).

    >>> clip_factors(torch.tensor([0.5, 2.0, 0.0]), 1.0)
    tensor([1.0000, 0.5000, 1.0000])
    """
    if not isinstance(max_grad_norm, torch.Tensor):
        max_grad_norm = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
    return (max_grad_norm / (norms + CLIP_EPSILON)).clamp(max=1.0)


def functional_per_sample_gradients(model: nn.Module, params: dict, X: torch.Tensor, y: torch.Tensor,
                                    buffers: dict | None = None) -> dict:
    """Per-sample gradients at ``params`` (name → tensor) instead of ``model``'s own weights.

    The engine of :func:`per_sample_gradients`, for callers that hold parameters apart from the
    model (the FL clients). No argument checks; an empty batch gives (0, ...) tensors.

    Returns:
        name → tensor of shape (B, *param.shape).

    >>> m = nn.Linear(3, 2)
    >>> params = {n: torch.zeros_like(p) for n, p in m.named_parameters()}
    >>> g = functional_per_sample_gradients(m, params, torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
    >>> tuple(g["weight"].shape)
    (4, 2, 3)
    """
    if len(X) == 0:
        return {n: p.new_zeros((0, *p.shape)) for n, p in params.items()}
    def loss_one(p, x, t):
        state = p if buffers is None else (p, buffers)
        return _cross_entropy_sum(torch.func.functional_call(model, state, (x.unsqueeze(0),)), t.unsqueeze(0))

    return torch.func.vmap(torch.func.grad(loss_one), in_dims=(None, 0, 0))(params, X, y)


def per_sample_gradients(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The gradient of each example's own cross-entropy loss, one tensor per trainable parameter.

    ``torch.func.vmap(grad(loss of one example))`` over the batch: tensor j has shape
    ``(B, *parameter_j.shape)`` and row i is ∂ℓ(model(x_i), y_i)/∂parameter_j. Their sum over the
    batch is the ordinary gradient of the summed loss. ``model`` is not modified. The model is
    called on one example at a time, so its forward must not combine examples (no batch
    normalisation in training mode, no ``x - x.mean(0)``); such a model computes something else here.

    Raises:
        ValueError: if ``model`` has no trainable parameter, or X, y are not a non-empty batch
            (X at least 2-D, y 1-D non-negative integer labels).

    >>> model = nn.Linear(3, 2)
    >>> X, y = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0, 1])
    >>> [tuple(g.shape) for g in per_sample_gradients(model, X, y)]
    [(5, 2, 3), (5, 2)]
    """
    named = check_model(model)
    X, y = check_data(X, y)
    params = {n: p.detach() for n, p in named}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    grads = functional_per_sample_gradients(model, params, X, y, buffers)
    return [grads[n] for n, _ in named]


def clip_per_sample(grads, *, max_grad_norm) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Clip every example's gradient (across all parameters) to L2 norm at most ``max_grad_norm``.

    Example i is scaled by ``min(1, C / (‖g_i‖ + 1e-6))``, Opacus's "flat" clipping: its norm is
    then at most C, and a gradient already shorter is left as it is.

    Args:
        grads: per-sample gradients, tensors of shape (B, ...), as from :func:`per_sample_gradients`.
        max_grad_norm: C > 0.

    Returns:
        ``(clipped, norms)``: the clipped tensors (new tensors) and the norms before clipping, (B,).

    >>> clipped, norms = clip_per_sample([torch.tensor([[3.0, 4.0], [0.3, 0.4]])], max_grad_norm=1.0)
    >>> norms.tolist()
    [5.0, 0.5]
    >>> [round(v, 4) for v in clipped[0].norm(dim=1).tolist()]
    [1.0, 0.5]
    """
    c = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
    grads = list(grads)
    if not grads or not all(isinstance(g, torch.Tensor) and g.dim() >= 1 for g in grads):
        raise ValueError("grads must be a non-empty list of tensors of shape (B, ...)")
    batch = len(grads[0])
    if any(len(g) != batch for g in grads):
        raise ValueError(f"grads must all have the same batch size, got {[len(g) for g in grads]}")
    if not all(g.is_floating_point() for g in grads):
        raise ValueError(f"grads must be floating-point tensors, got {[g.dtype for g in grads]}")
    if not all(bool(torch.isfinite(g).all()) for g in grads):
        raise ValueError("grads must hold finite numbers (a NaN or inf gradient cannot be clipped)")
    if batch == 0:  # an empty batch: nothing to clip
        return [g.clone() for g in grads], torch.zeros(0, dtype=grads[0].dtype)
    norms = torch.stack([g.reshape(batch, -1).norm(2, dim=1) for g in grads], dim=1).norm(2, dim=1)
    factor = clip_factors(norms, c)
    clipped = [g * factor.view(-1, *([1] * (g.dim() - 1))).to(g.dtype) for g in grads]
    return clipped, norms


# ---------------------------------------------------------------- the fast path


def _fast_path_module(module: nn.Module) -> bool:
    kind = type(module)
    if kind in _FAST_PATH_MODULES:
        return True
    return kind.__module__ == "dpfl_course.fl.models" and kind.__name__ in _FAST_PATH_COURSE_MODELS


def _fast_path_refusal(model) -> str | None:
    """Why ``model`` cannot use the fast path, or None if it can."""
    if not isinstance(model, nn.Module):
        return f"model must be a torch.nn.Module, got {type(model).__name__}"
    others = sorted({type(m).__name__ for m in model.modules() if not _fast_path_module(m)})
    if others:
        return (f"ghost clipping accepts only models built from nn.Linear, nn.Sequential, fl.MLP, "
                f"fl.LogisticRegression, nn.Identity, nn.Flatten, nn.Dropout and elementwise activations "
                f"(a forward pass that combines examples, such as batch normalisation, would break the "
                f"per-example clipping), got {', '.join(others)}; {_FAST_PATH_HINT}")
    if not any(p.requires_grad for p in model.parameters()):
        return "model must have at least one trainable parameter"
    return None


def supports_ghost_clipping(model: nn.Module) -> bool:
    """True if ``model`` may use the fast path: it is built only from modules on an allowlist.

    The allowlist: ``nn.Linear``, ``nn.Sequential``, the course's ``fl.MLP`` and
    ``fl.LogisticRegression``, ``nn.Identity``, ``nn.Flatten``, ``nn.Dropout`` and the elementwise
    activations ReLU, Tanh, Sigmoid, GELU, ELU, LeakyReLU, Softplus (exact types: a subclass may
    override ``forward``). None of them combines examples in its forward pass, which the fast path
    needs: with batch normalisation or ``x - x.mean(0)``, example i's loss depends on the other
    examples and the clipping no longer bounds one example's influence. Anything else (a custom
    module, even parameter-free) is refused; use ``method="vmap"``, and write a custom forward so
    that it does not combine examples. Each layer must also see one input row per example,
    checked when it runs.

    >>> supports_ghost_clipping(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
    True
    >>> supports_ghost_clipping(nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3)))
    False
    >>> supports_ghost_clipping(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, affine=False)))
    False
    """
    return _fast_path_refusal(model) is None


class GhostClipping:
    """The fast path, kept ready across steps: hooks on ``model``'s ``nn.Linear`` layers.

    Each forward pass of ``model`` records every layer's input and output; :meth:`clipped_sum`
    runs one forward and one backward pass and returns the clipped sum of the per-sample
    gradients (see :func:`ghost_clipped_sum`, which is this for one batch). Attaching the hooks
    once per training run, not once per step, is what keeps a DP step near a plain one.
    Use as a context manager, or call :meth:`close` to remove the hooks.

    Raises:
        ValueError: if ``model`` has a module outside the allowlist of :func:`supports_ghost_clipping`.

    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> with GhostClipping(model) as ghost:
    ...     summed, norms = ghost.clipped_sum(torch.ones(5, 4), torch.zeros(5, dtype=torch.int64),
    ...                                       max_grad_norm=1.0)
    >>> [tuple(s.shape) for s in summed], bool((norms > 0).all())
    ([(8, 4), (8,), (3, 8), (3,)], True)
    """

    def __init__(self, model: nn.Module):
        self.named = check_model(model)
        refusal = _fast_path_refusal(model)
        if refusal is not None:
            raise ValueError(refusal)
        self.model = model
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, tuple[torch.Tensor, int]] = {}
        self._calls: dict[int, int] = {}
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module, inputs, output):
        key = id(module)
        self._calls[key] = self._calls.get(key, 0) + 1
        self._inputs[key] = inputs[0].detach()
        self._outputs[key] = (output, output._version)  # the version reveals a later in-place change

    def _clear(self):
        self._inputs.clear()
        self._outputs.clear()
        self._calls.clear()

    def close(self) -> None:
        """Remove the hooks from the model (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def clipped_sum(self, X: torch.Tensor, y: torch.Tensor, *, max_grad_norm,
                    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(summed, norms)``: the clipped per-sample gradients summed, one tensor per trainable
        parameter in ``parameters()`` order, and the per-sample norms before clipping, (B,)."""
        c = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
        X, y = check_data(X, y)
        if not self._handles:
            raise ValueError("this GhostClipping is closed; make a new one")
        return self._clipped_sum(X, y, c)

    def _clipped_sum(self, X, y, max_grad_norm):
        """:meth:`clipped_sum` without argument checks (the training loop's hot path)."""
        inputs, outputs, calls = self._inputs, self._outputs, self._calls
        inputs.clear(), outputs.clear(), calls.clear()
        try:
            loss = _cross_entropy_sum(self.model(X), y)
            trainable, taps = [], []
            for m in self.layers:
                key = id(m)
                if key not in outputs:
                    continue
                output, version = outputs[key]
                if calls[key] != 1 or inputs[key].dim() != 2 or output._version != version:
                    raise ValueError("ghost clipping needs every nn.Linear called once per forward pass on a "
                                     "2-D input (one row per example), its output not changed in place (e.g. "
                                     "by ReLU(inplace=True)); use method='vmap' for this model")
                weight = m.weight.requires_grad
                bias = m.bias is not None and m.bias.requires_grad
                if weight or bias:
                    trainable.append((m, weight, bias, inputs[key]))
                    taps.append(output)
            # One backward pass, to the layers' outputs only: G = ∂(Σ_i ℓ_i)/∂z, row i is example i's g_i.
            out_grads = torch.autograd.grad(loss, taps) if taps else ()
            summed = {}
            with torch.no_grad():
                sq = None
                for (m, weight, bias, A), G in zip(trainable, out_grads):
                    g2 = torch.linalg.vecdot(G, G)
                    if weight:  # ‖g_i a_iᵀ‖² = ‖g_i‖²‖a_i‖², and ‖g_i‖² more for the bias
                        a2 = torch.linalg.vecdot(A, A)
                        term = g2 * (a2 + 1) if bias else g2 * a2
                    else:
                        term = g2
                    sq = term if sq is None else sq.add_(term)
                norms = sq.sqrt_() if sq is not None else torch.zeros(len(X), dtype=loss.dtype)
                factor = clip_factors(norms, max_grad_norm).unsqueeze(1)
                for (m, weight, bias, A), G in zip(trainable, out_grads):
                    cG = G * factor
                    if weight:
                        summed[id(m.weight)] = cG.T @ A  # Σ_i c_i g_i a_iᵀ, one matrix product
                    if bias:
                        summed[id(m.bias)] = cG.sum(0)
        finally:
            inputs.clear(), outputs.clear(), calls.clear()
        return [summed[id(p)] if id(p) in summed else torch.zeros_like(p) for _, p in self.named], norms


def ghost_clipped_sum(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, max_grad_norm
                      ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The sum of the clipped per-sample gradients, without building any per-sample gradient.

    For a model built from the allowlist of :func:`supports_ghost_clipping` (``nn.Linear`` layers,
    elementwise activations ...; no module that combines examples, such as batch normalisation;
    anything else is refused: use ``method="vmap"``): one forward
    and one backward pass give every layer's inputs A (B, in) and output gradients G (B, out);
    example i's squared gradient norm is Σ_layers ‖g_i‖²(‖a_i‖² + 1) (the 1 for the bias), and
    the clipped sum of a weight's gradients is ``(c ⊙ G)ᵀ A``. Equals clipping the output of
    :func:`per_sample_gradients` with :func:`clip_per_sample` and summing. For many steps,
    keep one :class:`GhostClipping` instead (this attaches and removes its hooks every call).

    Returns:
        ``(summed, norms)``: one tensor per trainable parameter (in ``parameters()`` order) and
        the per-sample norms before clipping, shape (B,).

    Raises:
        ValueError: if the model has a module outside that allowlist, a layer is
            called more than once or on a non-2-D input, or an argument is out of range.

    >>> g = torch.Generator().manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> X, y = torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g)
    >>> fast, norms = ghost_clipped_sum(model, X, y, max_grad_norm=0.5)
    >>> slow, _ = clip_per_sample(per_sample_gradients(model, X, y), max_grad_norm=0.5)
    >>> all(torch.allclose(a, b.sum(0), atol=1e-6) for a, b in zip(fast, slow))
    True
    """
    with GhostClipping(model) as ghost:
        return ghost.clipped_sum(X, y, max_grad_norm=max_grad_norm)


# ---------------------------------------------------------------- one step


def _noisy_step(params, summed, *, std, expected_batch_size, lr, generator):
    """Opacus's add_noise, scale_grad and plain SGD's step, parameter by parameter, in order."""
    with torch.no_grad():
        if std > 0:
            # Drawn exactly as Opacus's _generate_noise (secure_mode off) draws it, parameter by parameter.
            noise = [torch.normal(mean=0, std=std, size=p.shape, device=p.device, generator=generator, dtype=p.dtype)
                     for p in params]
            torch._foreach_add_(noise, summed)
            summed = noise
        # p − lr·(s + noise)/b for all parameters at once (as torch.optim's SGD does); equal to Opacus's
        # divide-then-step up to float rounding.
        torch._foreach_add_(params, summed, alpha=-lr / expected_batch_size)


def _clipped_sum(model, named, X, y, c, method, ghost=None):
    if len(X) == 0:  # an empty Poisson batch: nothing to clip, the noise is still added
        return [torch.zeros_like(p) for _, p in named], torch.zeros(0)
    if method == "vmap":
        clipped, norms = clip_per_sample(per_sample_gradients(model, X, y), max_grad_norm=c)
        return [g.sum(0) for g in clipped], norms
    if ghost is None:
        with GhostClipping(model) as ghost:
            return ghost._clipped_sum(X, y, c)
    return ghost._clipped_sum(X, y, c)


def _resolve_method(model, method) -> str:
    method = _check_method(method)
    if method == "auto":
        return "ghost" if supports_ghost_clipping(model) else "vmap"
    if method == "ghost":
        refusal = _fast_path_refusal(model)
        if refusal is not None:
            raise ValueError(f"method='ghost': {refusal}")
    return method


def dp_sgd_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, max_grad_norm, noise_multiplier,
                expected_batch_size, lr, generator: torch.Generator, method: str = "auto",
                ghost: GhostClipping | None = None) -> torch.Tensor:
    """One DP-SGD step on the batch (X, y), in place on ``model``; return the per-sample norms.

    Clip each example's gradient to ``max_grad_norm`` C, sum, add N(0, (σC)²) noise to every
    coordinate (drawn from ``generator`` parameter by parameter, as Opacus's optimizer draws it),
    divide by ``expected_batch_size``, and take an SGD step of size ``lr``. With the same batch and
    a generator in the same state, this is the step of Opacus's ``make_private`` with plain SGD.

    Args:
        model: the model to update; its loss is cross-entropy on its outputs (logits).
        X, y: the batch (may be empty: a Poisson batch can be; then the step is noise only).
        max_grad_norm: C > 0.
        noise_multiplier: σ ≥ 0 (0: clipping without noise, not private).
        expected_batch_size: the divisor, sample_rate × dataset size (Opacus's convention), > 0.
        lr: learning rate > 0.
        generator: a ``torch.Generator`` for the noise.
        method: ``"vmap"`` (per-sample gradients, any model whose forward treats each example on
            its own), ``"ghost"`` (the fast path, models built from the allowlist of
            :func:`supports_ghost_clipping`) or ``"auto"`` (ghost when the model is on it, else vmap).
        ghost: a :class:`GhostClipping` attached to ``model``, reused across steps (faster);
            None attaches one for this step when the fast path is used.

    Returns:
        The per-sample gradient norms before clipping, shape (B,).

    >>> g = torch.Generator().manual_seed(0)
    >>> model = nn.Linear(3, 2)
    >>> norms = dp_sgd_step(model, torch.randn(4, 3, generator=g), torch.tensor([0, 1, 0, 1]),
    ...                     max_grad_norm=1.0, noise_multiplier=1.1, expected_batch_size=4, lr=0.1,
    ...                     generator=g)
    >>> norms.shape
    torch.Size([4])
    """
    named = check_model(model)
    c = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
    sigma = check_finite("noise_multiplier", noise_multiplier, low=0)
    b = check_finite("expected_batch_size", expected_batch_size, low=0, low_open=True)
    lr = check_finite("lr", lr, low=0, low_open=True)
    generator = check_generator(generator)
    X, y = check_data(X, y, allow_empty=True)
    if ghost is None:
        method = _resolve_method(model, method)
    else:  # the model was checked when the GhostClipping was made
        if not isinstance(ghost, GhostClipping) or ghost.model is not model or not ghost._handles:
            raise ValueError("ghost must be an open GhostClipping attached to this model, or None")
        if _check_method(method) not in ("auto", "ghost"):
            raise ValueError(f"ghost is given, so method must be 'auto' or 'ghost', got {method!r}")
        method = "ghost"
    summed, norms = _clipped_sum(model, named, X, y, c, method, ghost)
    _noisy_step([p for _, p in named], summed, std=sigma * c, expected_batch_size=b, lr=lr, generator=generator)
    return norms


# ---------------------------------------------------------------- sampling


def poisson_batches(num_examples, *, sample_rate, steps, generator: torch.Generator) -> list[torch.Tensor]:
    """Index batches drawn by Poisson sampling: each example is in each batch with prob. ``sample_rate``.

    This is the sampling the DP-SGD accountant assumes (and Opacus's ``DPDataLoader`` draws, with
    the same ``torch.rand(n) < q`` per step). Batch sizes vary around ``sample_rate × num_examples``
    and a batch may be empty.

    Returns:
        ``steps`` int64 index tensors, each sorted.

    >>> batches = poisson_batches(10, sample_rate=0.3, steps=4, generator=torch.Generator().manual_seed(0))
    >>> len(batches), all(b.dtype == torch.int64 for b in batches)
    (4, True)
    """
    n = check_int("num_examples", num_examples, low=1)
    q = check_finite("sample_rate", sample_rate, low=0, high=1, low_open=True)
    steps = check_int("steps", steps, low=0)
    generator = check_generator(generator)
    return [(torch.rand(n, generator=generator) < q).nonzero().reshape(-1) for _ in range(steps)]


# ---------------------------------------------------------------- training


def steps_per_epoch_for(num_examples, batch_size) -> int:
    """Steps in one DP-SGD epoch: ``num_examples / batch_size`` rounded half up, at least 1.

    Integer arithmetic, ``(2n + b) // (2b)``, so that 49 / 2 = 24.5 gives 25 (Python's ``round``
    would give 24, rounding half to even) and every caller counts the same steps.

    >>> steps_per_epoch_for(1347, 64), steps_per_epoch_for(49, 2), steps_per_epoch_for(10, 10)
    (21, 25, 1)
    """
    n = check_int("num_examples", num_examples, low=1)
    b = check_int("batch_size", batch_size, low=1, high=n)
    return max(1, (2 * n + b) // (2 * b))


def _accuracy(model, X, y) -> float:
    with torch.no_grad():
        return float((model(X).argmax(1) == y).double().mean())


def train_dp_sgd(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, noise_multiplier, max_grad_norm, batch_size,
                 epochs, lr, delta, seed=0, test_data=None, progress=False, method="auto", ledger=None):
    """Train ``model`` (in place) with DP-SGD on (X, y); return its parameters and a per-epoch history.

    Poisson sampling with ``sample_rate = batch_size / len(X)`` and
    :func:`steps_per_epoch_for` ``(len(X), batch_size)`` steps per epoch, n / b rounded half up (so
    an epoch sees each example about once on average), each step
    :func:`dp_sgd_step` with ``expected_batch_size = batch_size``. Batches and noise come from one
    ``torch.Generator`` seeded with ``seed``. The fast path (ghost clipping) is used when the model
    allows it (``method="auto"``).

    Args:
        noise_multiplier: σ ≥ 0 (0 trains with clipping but no noise: ε is infinite).
        max_grad_norm: C > 0.
        batch_size: expected batch size, in [1, len(X)].
        epochs: number of epochs ≥ 1.
        lr: learning rate > 0.
        delta: δ in (0, 1) at which ε is reported.
        seed: seed of the sampling and noise generator.
        test_data: optional ``(X_test, y_test)``; the history then has ``test_accuracy``.
        progress: show a tqdm progress bar over the epochs.
        method: ``"auto"``, ``"ghost"`` or ``"vmap"`` (see :func:`dp_sgd_step`).
        ledger: optional :class:`~dpfl_course.dp.PrivacyLedger` to spend each epoch in; its δ
            must equal ``delta``. The history's ε is then the ledger's total, computed by the
            ledger's own accountant (which may differ from the RDP accountant used otherwise).

    Returns:
        ``(parameters, history)``: a detached copy of the trained parameters, and a
        :class:`~dpfl_course.fl.History` with one row per epoch: ``epoch``, ``steps`` (so far),
        ``sample_rate``, ``noise_multiplier``, ``epsilon`` (so far; RDP accountant, or the ledger's),
        ``train_loss`` (on the whole training set after the epoch) and ``test_accuracy``.

    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(100, 4, generator=g), torch.randint(0, 2, (100,), generator=g)
    >>> _, history = train_dp_sgd(nn.Linear(4, 2), X, y, noise_multiplier=1.0, max_grad_norm=1.0,
    ...                           batch_size=10, epochs=2, lr=0.1, delta=1e-5)
    >>> history["steps"], round(history["epsilon"][-1], 2)
    ([10, 20], 4.22)
    """
    from dpfl_course.dp.ledger import PrivacyLedger
    from dpfl_course.fl.history import History  # here, not at the top: fl imports dp

    named = check_model(model)
    X, y = check_data(X, y)
    training = model.training
    try:  # the number of classes, from one example in eval mode (no batch statistics, no dropout draw)
        with torch.no_grad():
            num_classes = model.eval()(X[:1]).shape[-1]
    finally:
        model.train(training)
    if int(y.max()) >= num_classes:
        raise ValueError(f"y must hold class labels < {num_classes} (the model's outputs), got {int(y.max())}")
    sigma = check_finite("noise_multiplier", noise_multiplier, low=0)
    c = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
    batch_size = check_int("batch_size", batch_size, low=1, high=len(X))
    epochs = check_int("epochs", epochs, low=1)
    lr = check_finite("lr", lr, low=0, low_open=True)
    delta = check_delta(delta)
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    method = _resolve_method(model, method)
    if test_data is not None:
        try:
            X_test, y_test = test_data
        except (TypeError, ValueError):
            raise ValueError("test_data must be a pair (X_test, y_test)") from None
        X_test, y_test = check_data(X_test, y_test, name_X="test_data's X", name_y="test_data's y",
                                     num_classes=num_classes)
    if ledger is not None:
        if not isinstance(ledger, PrivacyLedger) or ledger.delta is None:
            raise ValueError("ledger must be a PrivacyLedger with a delta, or None")
        if ledger.delta != delta:
            raise ValueError(f"ledger.delta must equal delta: the history reports ε at the ledger's δ, got "
                             f"ledger.delta = {ledger.delta} and delta = {delta}")
    elif sigma > 0:
        ledger = PrivacyLedger(delta=delta, accountant="rdp")

    n = len(X)
    q = batch_size / n
    steps_per_epoch = steps_per_epoch_for(n, batch_size)
    generator = torch.Generator().manual_seed(seed)
    params = [p for _, p in named]
    ghost = GhostClipping(model) if method == "ghost" else None
    history = History()
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="DP-SGD", unit="epoch")
    try:
        for epoch in epoch_iter:
            for idx in poisson_batches(n, sample_rate=q, steps=steps_per_epoch, generator=generator):
                summed, _ = _clipped_sum(model, named, X[idx], y[idx], c, method, ghost)
                _noisy_step(params, summed, std=sigma * c, expected_batch_size=batch_size, lr=lr,
                            generator=generator)
            row = dict(epoch=epoch, steps=epoch * steps_per_epoch, sample_rate=q, noise_multiplier=sigma)
            if sigma > 0:
                ledger.spend_gaussian(f"DP-SGD epoch {epoch}", noise_multiplier=sigma, sample_rate=q,
                                      steps=steps_per_epoch)
                row["epsilon"] = ledger.epsilon
            else:
                row["epsilon"] = math.inf
            with torch.no_grad():
                row["train_loss"] = float(nn.functional.cross_entropy(model(X), y))
            if test_data is not None:
                row["test_accuracy"] = _accuracy(model, X_test, y_test)
            history.add(**row)
    finally:
        if ghost is not None:
            ghost.close()
    return [p.detach().clone() for p in params], history
