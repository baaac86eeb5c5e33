"""The vectorised simulation engine: every sampled client trains at once, as one batched computation.

The K sampled clients' parameters are stacked along a new first dimension; one SGD step of all of
them is one forward pass, ``torch.func.functional_call`` vmapped over the clients, and one
backward pass. Clients hold different numbers of examples, so their minibatches are padded to a
common batch size with a mask (padded examples weigh nothing in the loss), and the clients are
ordered by their number of steps, so that at each step only those still training — a prefix of
the stacked rows — are computed: a round costs the sum of the clients' steps, not the largest
client's steps times the number of clients. The minibatches are exactly those of the
sequential engine (the same :func:`~dpfl_course.fl.client.epoch_permutations` from the same
per-client seeds, cut into the same batches), so both engines compute the same model up to
floating-point rounding.

With local DP-SGD in the fit config (``noise_multiplier`` and ``max_grad_norm``), the batches are
the Poisson batches and the noise is the noise of :func:`~dpfl_course.fl.client_dp.local_dp_draws`
from the same per-client seeds as the sequential engine, padded with the mask like the shuffled
ones. Every example's gradient is clipped inside the stacked step: for the course's
:class:`~dpfl_course.fl.LogisticRegression` and :class:`~dpfl_course.fl.MLP` (linear layers and a
ReLU) in closed form, a per-example norm being Σ_layers ‖g_i‖²(‖a_i‖² + 1) (output gradient g,
input activation a: "ghost clipping") and the clipped sum one batched matrix product per layer,
so a private step costs about a non-private one; for other models by ``vmap(grad)`` over the
clients and their examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

import math

from dpfl_course.fl.client import FitRes, _visit_order, check_client_id, parse_fit_config
from dpfl_course.fl.client_data import check_client_data
from dpfl_course.dp.dpsgd import clip_factors
from dpfl_course.fl.client_dp import local_dp_draws

__all__ = ["VectorisedEngine"]


def _linear_layers(model: nn.Module):
    """The (weight, bias) names of the course's linear models, layer by layer (ReLU in between),
    or None for any other model (or one whose ``forward`` was changed): the closed-form
    per-example gradients of the local DP step need to know the layers."""
    from dpfl_course.fl.models import MLP, LogisticRegression

    stacked = _forward_stacked(model)
    if stacked is None:
        return None
    if stacked is LogisticRegression.forward_stacked and isinstance(model, LogisticRegression):
        return [("linear.weight", "linear.bias")]
    if stacked is MLP.forward_stacked and isinstance(model, MLP):
        return [("hidden.weight", "hidden.bias"), ("output.weight", "output.bias")]
    return None


def _forward_stacked(model: nn.Module):
    """``model.forward_stacked`` if it computes the model's own ``forward``, else None.

    A ``forward_stacked`` only matches the ``forward`` of the class that wrote it: a subclass that
    overrides ``forward`` (say an MLP with tanh) inherits a ``forward_stacked`` that still computes
    the parent's model. So the fast path is taken only when the class defining ``forward_stacked``
    is the one defining ``forward`` or a subclass of it (at the same or a more derived place in
    the MRO), and the instance does not replace ``forward`` itself.
    """
    mro = type(model).__mro__

    def level(name):
        return next((i for i, cls in enumerate(mro) if name in vars(cls)), None)

    stacked, forward = level("forward_stacked"), level("forward")
    if stacked is None or stacked > forward or "forward" in vars(model):
        return None
    return model.forward_stacked


class VectorisedEngine:
    """Trains all instructed clients at once with ``torch.func`` (for small models).

    Understands the same fit config as :class:`~dpfl_course.fl.client.Client` (``local_epochs``,
    ``batch_size``, ``lr``, ``proximal_mu``, ``seed``, and ``noise_multiplier`` with
    ``max_grad_norm`` for local DP-SGD), per client. A round where some client trains with local
    DP runs :meth:`dp_client_step` at every step instead of :meth:`client_step`.

    To change what a client does in one step (e.g. clip and noise per-example gradients for local
    DP-SGD), override :meth:`client_step`, which sees all clients' stacked tensors at once; during
    :meth:`fit`, ``self.instructions`` holds the round's ``(cid, config)`` list (row k of every
    stacked tensor is client ``self.instructions[k][0]``, and ``config["seed"]`` can seed its noise).

    Args:
        model: the architecture (its weights are not used; parameters are passed to :meth:`fit`).
        client_data: list of ``(X, y)`` pairs, one per client.
        use_forward_stacked: when the model has a ``forward_stacked(params, X)`` method (the
            course's :class:`~dpfl_course.fl.LogisticRegression` and :class:`~dpfl_course.fl.MLP`
            do), use it instead of ``vmap(functional_call)``: same maths, less overhead per step.
            Only a ``forward_stacked`` written with the model's own ``forward`` is used: a subclass
            that overrides ``forward`` without its own ``forward_stacked`` gets the generic path.
    """

    def __init__(self, model: nn.Module, client_data, *, use_forward_stacked: bool = True):
        client_data = check_client_data(client_data)
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.sizes = [len(X) for X, _ in client_data]
        self.offsets = torch.tensor([0] + self.sizes[:-1]).cumsum(0).tolist()
        self.X = torch.cat([X for X, _ in client_data])
        self.y = torch.cat([y for _, y in client_data])
        stacked = _forward_stacked(model) if use_forward_stacked else None
        self._forward = stacked or vmap(lambda params, X: functional_call(self.model, params, (X,)))
        self.num_parameters = sum(p.numel() for p in model.parameters())
        self._layers = _linear_layers(model) if use_forward_stacked else None
        self._per_example = None  # vmap(vmap(grad)) for other models, made on first use

    @property
    def num_clients(self) -> int:
        return len(self.sizes)

    def client_step(self, params: dict, X, y, mask, anchor: dict, mu, lr_active):
        """One SGD step of every client: ``params`` maps names to stacked (K, ...) tensors.

        The clients' parameters are independent, so the gradient of the sum of their batch losses
        with respect to the stacked parameters holds each client's own gradient in its slice: one
        backward pass serves all clients. The proximal term's gradient μ(w − w_global) is added
        in closed form.

        Args:
            X, y, mask: this step's padded batches, shapes (K, B, d), (K, B), (K, B).
            anchor: the global parameters (unstacked), for the proximal term.
            mu: FedProx's μ per client, shape (K,), or None when it is 0 for every client.
            lr_active: step size per client, shape (K,). :meth:`fit` passes only the clients that
                still have a batch at this step (the first K rows), so every row here trains.

        Returns:
            The stacked parameters after the step (updated in place), and the sum of this step's
            cross-entropies per client, shape (K,).
        """
        with torch.enable_grad():
            leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
            logits = self._forward(leaves, X)  # every client's model on its own batch
            losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(mask) * mask
            loss_sums = losses.sum(1)
            per_client = loss_sums / mask.sum(1).clamp(min=1.0)
            grads = torch.autograd.grad(per_client.sum(), list(leaves.values()))
        with torch.no_grad():  # in place: fresh (K, ...) tensors every step would cost page faults
            for (n, p), g in zip(params.items(), grads):
                shape = (-1,) + (1,) * (p.ndim - 1)
                if mu is not None:
                    g.addcmul_(mu.view(shape), p - anchor[n])
                p.addcmul_(lr_active.view(shape), g, value=-1.0)
        return params, loss_sums.detach()

    def _schedule(self, instructions):
        """Padded global example indices (K, S, B), -1 marking padding, from each client's config.

        Client k's epochs are its :func:`epoch_permutations`, each cut into consecutive batches of
        its batch size b_k exactly as :func:`batch_schedule` does: element j of epoch e goes to
        step e * ceil(n_k / b_k) + j // b_k, slot j % b_k. All clients are padded to the most
        steps S and the largest batch B. The positions are computed for all clients at once.

        Returns:
            ``(index, lr, mu, steps, visited)``: the (K, S, B) indices; the per-client step sizes
            and FedProx μ (None when all are 0); each client's number of SGD steps and of examples
            visited (n_k × E_k), shapes (K,).
        """
        perms, sizes, batch_sizes, epochs, cids, lrs, mus = [], [], [], [], [], [], []
        generator = torch.Generator()  # re-seeded per client: the same stream as a fresh one, made once
        num_clients = self.num_clients
        for cid, config in instructions:
            if type(cid) is not int or not 0 <= cid < num_clients:  # the check, without its cost per client
                cid = check_client_id(cid, num_clients)
            c = parse_fit_config(config)
            n = self.sizes[cid]
            generator.manual_seed(c.seed)
            perms.append(_visit_order(n, c.local_epochs, generator))  # epoch_permutations, flattened
            sizes.append(n)
            batch_sizes.append(n if c.batch_size is None else min(c.batch_size, n))
            epochs.append(c.local_epochs)
            cids.append(cid)
            lrs.append(c.lr)
            mus.append(c.proximal_mu)
        lr = torch.tensor(lrs, dtype=torch.float32)
        mu = torch.tensor(mus, dtype=torch.float32) if any(mus) else None
        n = torch.tensor(sizes)
        b = torch.tensor(batch_sizes)
        e = torch.tensor(epochs)
        steps_per_epoch = (n + b - 1) // b
        K, S, B = len(cids), int((steps_per_epoch * e).max()), int(b.max())
        lengths = n * e  # examples visited per client
        total = int(lengths.sum())
        owner = torch.repeat_interleave(torch.arange(K), lengths)
        start = torch.cumsum(lengths, 0) - lengths
        within = torch.arange(total) - start[owner]  # position in the client's visit sequence
        n_o, b_o = n[owner], b[owner]
        epoch, j = within // n_o, within % n_o
        step = epoch * steps_per_epoch[owner] + j // b_o
        flat = (owner * S + step) * B + j % b_o
        offsets = torch.tensor([self.offsets[c] for c in cids])
        index = torch.full((K * S * B,), -1, dtype=torch.int64)
        index[flat] = torch.cat(perms) + offsets[owner]
        return index.view(K, S, B), lr, mu, steps_per_epoch * e, lengths

    @torch.no_grad()
    def fit(self, parameters: list[torch.Tensor], instructions: list[tuple[int, dict]]) -> list[tuple[int, FitRes]]:
        """Each instructed client trains from ``parameters`` with its config; results in the same order.

        Clients with fewer examples (or epochs) run out of steps first. To spend no work on them
        once they have, the rows are ordered by number of steps, most first: at step s the clients
        still training are a prefix of the rows, and only that prefix is computed. During the
        call, ``self.instructions`` lists the clients in this row order.
        """
        if not instructions:
            return []
        if any(hasattr(config, "get") and (config.get("noise_multiplier") is not None
                                           or config.get("max_grad_norm") is not None)
               for _, config in instructions):
            return self._fit_dp(parameters, instructions)
        index, lr, mu, steps, visited = self._schedule(instructions)
        order = torch.argsort(steps, descending=True, stable=True)
        index, lr, steps, visited = index[order], lr[order], steps[order], visited[order]
        mu = None if mu is None else mu[order]
        self.instructions = [instructions[k] for k in order.tolist()]
        K, S, _ = index.shape
        # Clients still training at each step: a prefix of the rows, since rows are sorted by steps.
        training = steps.unsqueeze(0) > torch.arange(S).unsqueeze(1)  # (S, K), True on a prefix of each row
        active = training.sum(1).tolist()
        # The batches of the training clients only, step after step: one gather, then each step
        # is a contiguous slice [start, start + k) of the rows.
        batches = index.transpose(0, 1)[training]  # (sum of active, B)
        masks = (batches >= 0).to(self.X.dtype)
        safe = batches.clamp(min=0)
        Xs, ys = self.X[safe], self.y[safe]
        anchor = dict(zip(self.names, parameters))
        params = {n: p.unsqueeze(0).expand(K, *p.shape).clone() for n, p in anchor.items()}
        loss_sum = torch.zeros(K, dtype=torch.float64)
        start = 0
        for k in active:
            step = slice(start, start + k)  # this step's rows in the gathered batches
            start += k
            if k == K:  # every client still trains: no slicing
                rows, step_mu, step_lr, step_loss_sum = params, mu, lr, loss_sum
            else:  # views of the first k rows: updated in place
                rows = {n: p[:k] for n, p in params.items()}
                step_mu, step_lr, step_loss_sum = None if mu is None else mu[:k], lr[:k], loss_sum[:k]
            new, step_loss = self.client_step(rows, Xs[step], ys[step], masks[step], anchor, step_mu, step_lr)
            if new is not rows:  # a client_step that returns new tensors instead of updating in place
                for n, p in new.items():
                    if p is not rows[n]:
                        rows[n].copy_(p)
            step_loss_sum += step_loss
        train_loss = (loss_sum / visited.double()).tolist()
        per_client = list(zip(*(params[n].unbind(0) for n in self.names)))
        back = torch.argsort(order).tolist()  # row of each instruction, in the caller's order
        return [(cid, FitRes(list(per_client[r]), self.sizes[cid], {"train_loss": train_loss[r]}))
                for (cid, _), r in zip(instructions, back)]

    # ------------------------------------------------------------------ local DP-SGD
    def dp_client_step(self, params: dict, X, y, mask, anchor: dict, mu, lr_active, clip, noise_std, denom, noise):
        """One local DP-SGD step of every client (Opacus's order): clip each example's gradient,
        sum, add noise, divide by the expected batch size, then the SGD (and proximal) update.

        Args:
            params, X, y, mask, anchor, mu, lr_active: as in :meth:`client_step`.
            clip: C per client, shape (K,) (inf for a client without local DP in a mixed round).
            noise_std: σ·C per client, shape (K,) (0 without local DP).
            denom: the divisor per client, shape (K,): the expected batch size q·n_k, or NaN for
                "the batch's actual size" (a client without local DP).
            noise: standard normal noise, shape (K, num_parameters), flattened in parameter order.

        Returns:
            The stacked parameters after the step (updated in place), and the sum of this step's
            cross-entropies per client, shape (K,).
        """
        if self._layers is not None:
            grads, loss_sums = self._clipped_sums_linear(params, X, y, mask, clip)
        else:
            grads, loss_sums = self._clipped_sums_generic(params, X, y, mask, clip)
        denom = torch.where(torch.isnan(denom), mask.sum(1).clamp(min=1.0), denom)
        offset = 0
        for n, p in params.items():
            shape = (-1,) + (1,) * (p.ndim - 1)
            size = p[0].numel()
            g = grads[n]
            g.addcmul_(noise_std.view(shape), noise[:, offset:offset + size].view_as(g))
            g.div_(denom.view(shape))
            offset += size
            if mu is not None:
                g.addcmul_(mu.view(shape), p - anchor[n])
            p.addcmul_(lr_active.view(shape), g, value=-1.0)
        return params, loss_sums

    def _clipped_sums_linear(self, params, X, y, mask, clip):
        """Σ_i factor_i · g_i per client for the course's linear models, in closed form.

        For a linear layer z = a Wᵀ + b, example i's gradient is (g_i a_iᵀ, g_i) with g_i = ∂ℓ_i/∂z_i,
        so its squared norm is ‖g_i‖²(‖a_i‖² + 1) and the clipped sum is (factor·G)ᵀ A: no
        per-example gradient is ever stored. The cross-entropy's g at the logits is softmax − onehot.
        """
        inputs, pre = [], []
        h = X
        last = len(self._layers) - 1
        for l, (w, b) in enumerate(self._layers):
            inputs.append(h)
            z = torch.baddbmm(params[b].unsqueeze(1), h, params[w].transpose(1, 2))
            if l < last:
                pre.append(z)
                h = torch.relu(z)
        log_probs = torch.log_softmax(z, dim=2)
        target = y.unsqueeze(2)
        losses = -log_probs.gather(2, target).squeeze(2)
        g = log_probs.exp().scatter_add_(2, target, torch.full_like(log_probs[..., :1], -1.0))
        out_grads = [None] * len(self._layers)
        norms2 = torch.zeros_like(losses)
        for l in range(last, -1, -1):
            out_grads[l] = g
            a = inputs[l]
            norms2 += g.pow(2).sum(2) * (a.pow(2).sum(2) + 1.0)
            if l > 0:
                g = torch.bmm(g, params[self._layers[l][0]]) * (pre[l - 1] > 0)
        factors = clip_factors(norms2.sqrt(), clip.unsqueeze(1)) * mask
        grads = {}
        for (w, b), g, a in zip(self._layers, out_grads, inputs):
            weighted = g * factors.unsqueeze(2)
            grads[w] = torch.bmm(weighted.transpose(1, 2), a)
            grads[b] = weighted.sum(1)
        return grads, (losses * mask).sum(1)

    def _clipped_sums_generic(self, params, X, y, mask, clip):
        """Σ_i factor_i · g_i per client for any model: per-example gradients by vmap(vmap(grad))."""
        if self._per_example is None:
            model = self.model

            def loss_one(p, x, t):
                logits = functional_call(model, p, (x.unsqueeze(0),))
                return F.cross_entropy(logits, t.unsqueeze(0))

            per_client = vmap(torch.func.grad_and_value(loss_one), in_dims=(None, 0, 0))
            self._per_example = vmap(per_client, in_dims=(0, 0, 0))
        with torch.enable_grad():
            grads, losses = self._per_example(params, X, y)  # (K, B, *shape), (K, B)
        K, B = mask.shape
        norms = torch.sqrt(sum(g.reshape(K, B, -1).pow(2).sum(2) for g in grads.values()))
        factors = clip_factors(norms, clip.unsqueeze(1)) * mask
        sums = {n: torch.einsum("kb,kb...->k...", factors, g) for n, g in grads.items()}
        return sums, (losses.detach() * mask).sum(1)

    def _dp_schedule(self, instructions):
        """The padded (K, S, B) example indices of a round with local DP, and what each step needs.

        A private client's step t is the examples its Poisson mask t holds (in index order); a
        client without local DP in the same round gets its shuffled batches, as :meth:`_schedule`.
        The masks of all private clients are placed in one (K, S, n_max) tensor, so where each
        example goes is one ``nonzero`` and one ``cumsum`` for the whole round.
        Returns a dict of per-client tensors (caller's order).
        """
        num_clients = self.num_clients
        generator = torch.Generator()
        K = len(instructions)
        private, masks, owners, steps_at, slots, examples = [], [], [], [], [], []
        steps, visited, lrs, mus, clips, stds, denoms, noises, metrics = [], [], [], [], [], [], [], [], []
        offsets = []
        for k, (cid, config) in enumerate(instructions):
            if type(cid) is not int or not 0 <= cid < num_clients:
                cid = check_client_id(cid, num_clients)
            c = parse_fit_config(config)
            n = self.sizes[cid]
            offsets.append(self.offsets[cid])
            generator.manual_seed(c.seed)
            if c.private:
                draws = local_dp_draws(n, self.num_parameters, local_epochs=c.local_epochs,
                                       batch_size=c.batch_size, generator=generator)
                private.append(k)
                masks.append(draws.masks)
                T = draws.steps
                clips.append(c.max_grad_norm)
                stds.append(c.noise_multiplier * c.max_grad_norm)
                denoms.append(draws.expected_batch_size)
                noises.append(draws.noise)
                metrics.append({"dp_steps": draws.steps, "dp_sample_rate": draws.sample_rate})
                visited.append(None)  # counted from the masks below
            else:
                j = _visit_order(n, c.local_epochs, generator)
                b = n if c.batch_size is None else min(c.batch_size, n)
                per_epoch = -(-n // b)
                within = torch.arange(n * c.local_epochs)
                owners.append(torch.full((len(j),), k, dtype=torch.int64))
                steps_at.append((within // n) * per_epoch + (within % n) // b)
                slots.append((within % n) % b)
                examples.append(j + self.offsets[cid])
                T = per_epoch * c.local_epochs
                clips.append(math.inf)
                stds.append(0.0)
                denoms.append(math.nan)
                noises.append(torch.zeros(T, self.num_parameters))
                metrics.append({})
                visited.append(len(j))
            steps.append(T)
            lrs.append(c.lr)
            mus.append(c.proximal_mu)
        S = max(steps)
        if private:
            padded = torch.zeros(len(private), S, max(m.shape[1] for m in masks), dtype=torch.bool)
            for row, m in enumerate(masks):
                padded[row, :m.shape[0], :m.shape[1]] = m
            row, t, j = padded.nonzero(as_tuple=True)  # row-major: client, step, examples in index order
            slot = (padded.cumsum(2) - 1)[row, t, j]
            rows = torch.tensor(private)
            owners.append(rows[row])
            steps_at.append(t)
            slots.append(slot)
            examples.append(j + torch.tensor(offsets)[rows][row])
            for k, count in zip(private, padded.sum((1, 2)).tolist()):
                visited[k] = count
        slot = torch.cat(slots)
        B = int(slot.max()) + 1 if len(slot) else 1
        index = torch.full((K * S * B,), -1, dtype=torch.int64)
        index[(torch.cat(owners) * S + torch.cat(steps_at)) * B + slot] = torch.cat(examples)
        return {"index": index.view(K, S, B), "steps": torch.tensor(steps), "visited": torch.tensor(visited),
                "lr": torch.tensor(lrs, dtype=torch.float32),
                "mu": torch.tensor(mus, dtype=torch.float32) if any(mus) else None,
                "clip": torch.tensor(clips, dtype=torch.float32), "noise_std": torch.tensor(stds, dtype=torch.float32),
                "denom": torch.tensor(denoms, dtype=torch.float32), "noises": noises, "metrics": metrics}

    def _fit_dp(self, parameters, instructions):
        """:meth:`fit` for a round where some client trains with local DP-SGD."""
        plan = self._dp_schedule(instructions)
        steps = plan["steps"]
        order = torch.argsort(steps, descending=True, stable=True)
        index, steps, visited = plan["index"][order], steps[order], plan["visited"][order]
        per_client = {key: plan[key][order] for key in ("lr", "clip", "noise_std", "denom")}
        mu = None if plan["mu"] is None else plan["mu"][order]
        rows_order = order.tolist()
        self.instructions = [instructions[k] for k in rows_order]
        K, S, _ = index.shape
        training = steps.unsqueeze(0) > torch.arange(S).unsqueeze(1)  # (S, K)
        active = training.sum(1).tolist()
        batches = index.transpose(0, 1)[training]
        masks = (batches >= 0).to(self.X.dtype)
        safe = batches.clamp(min=0)
        Xs, ys = self.X[safe], self.y[safe]
        # Each client's noise rows, step-major like the batches: row s of client k is at start_k + s.
        noise_all = torch.cat([plan["noises"][k] for k in rows_order])
        starts = torch.cumsum(steps, 0) - steps
        step_idx, row_idx = training.nonzero(as_tuple=True)
        noise_steps = noise_all[starts[row_idx] + step_idx]
        anchor = dict(zip(self.names, parameters))
        params = {n: p.unsqueeze(0).expand(K, *p.shape).clone() for n, p in anchor.items()}
        loss_sum = torch.zeros(K, dtype=torch.float64)
        start = 0
        for k in active:
            step = slice(start, start + k)
            start += k
            rows = params if k == K else {n: p[:k] for n, p in params.items()}
            new, step_loss = self.dp_client_step(
                rows, Xs[step], ys[step], masks[step], anchor, None if mu is None else mu[:k],
                per_client["lr"][:k], per_client["clip"][:k], per_client["noise_std"][:k], per_client["denom"][:k],
                noise_steps[step])
            if new is not rows:
                for n, p in new.items():
                    if p is not rows[n]:
                        rows[n].copy_(p)
            loss_sum[:k] += step_loss
        train_loss = (loss_sum / visited.double()).tolist()
        stacked = list(zip(*(params[n].unbind(0) for n in self.names)))
        back = torch.argsort(order).tolist()
        return [(cid, FitRes(list(stacked[r]), self.sizes[cid], {"train_loss": train_loss[r], **plan["metrics"][i]}))
                for i, ((cid, _), r) in enumerate(zip(instructions, back))]
