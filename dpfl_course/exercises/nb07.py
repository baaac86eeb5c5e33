"""Notebook 07's exercises: clip a client update, DP-FedAvg's noisy fixed-denominator average, and
the (sample rate, steps) an accountant needs for record-level and for user-level DP.

The checkers compare the learner's function with the reference solution and, when the answer is
wrong, recognise the usual mistakes (clipping each tensor on its own, dividing by the number of
clients that happened to be sampled, noise not scaled by 1/(qW), the source article's
q = 1/num_clients and steps = num_clients × epochs) and say which.
"""

from __future__ import annotations

import math

import torch

from dpfl_course.exercises import Feedback, attempt, close, close_tensors, show_tensors

# ---------------------------------------------------------------- reference solutions


def clip_update(update, clip_norm):
    """Reference solution: scale the whole update (all its tensors together) to norm at most ``clip_norm``.

    The norm is that of the update flattened into one vector; every tensor is multiplied by the
    same factor ``min(1, clip_norm / norm)``, so an update already inside the ball is unchanged.

    >>> [t.tolist() for t in clip_update([torch.tensor([3.0]), torch.tensor([4.0])], 1.0)]
    [[0.6000000238418579], [0.800000011920929]]
    """
    norm = math.sqrt(sum(float(t.double().pow(2).sum()) for t in update))
    factor = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return [t * factor for t in update]


def noisy_average(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator):
    """Reference solution: DP-FedAvg's server step (McMahan et al. 2018) on the sampled clients' updates.

    Every update is clipped to ``clip_norm``; the weighted sum is divided by the *fixed* expected
    total weight ``sample_rate * total_weight`` (qW, not the weight of who was sampled), and
    Gaussian noise of std ``noise_multiplier * clip_norm / (sample_rate * total_weight)`` is added
    to every coordinate.

    Args:
        updates: the sampled clients' updates (at least one), each a list of tensors.
        weights: one weight w_k in [0, 1] per update.
        clip_norm: S > 0.
        noise_multiplier: z >= 0.
        sample_rate: q, the probability with which each client was sampled.
        total_weight: W, the sum of the weights of *all* clients (sampled or not).
        generator: a ``torch.Generator`` for the noise.

    Returns:
        The noisy average update, a list of tensors.
    """
    denominator = sample_rate * total_weight
    shapes = [t.shape for t in updates[0]]
    total = [torch.zeros(s) for s in shapes]
    for update, w in zip(updates, weights):
        for acc, t in zip(total, clip_update(update, clip_norm)):
            acc += w * t
    std = noise_multiplier * clip_norm / denominator
    return [acc / denominator + std * torch.randn(acc.shape, generator=generator) for acc in total]


def sample_rate_and_steps(level, *, num_examples, batch_size, local_epochs, num_rounds, num_clients,
                          clients_per_round):
    """Reference solution: the ``(sample_rate, steps)`` of the subsampled Gaussian runs to account.

    * ``"record"`` — local DP-SGD at one client that trained in ``num_rounds`` rounds: its records
      are Poisson-sampled at ``min(1, batch_size / num_examples)`` per step, and it takes
      ``local_epochs * ceil(num_examples / batch_size)`` noisy steps per round.
    * ``"user"`` — DP-FedAvg: each client is sampled at ``clients_per_round / num_clients`` per
      round, and each round is one noisy step (one release of the noisy average).

    >>> sample_rate_and_steps("user", num_examples=135, batch_size=10, local_epochs=2, num_rounds=20,
    ...                       num_clients=100, clients_per_round=10)
    (0.1, 20)
    >>> sample_rate_and_steps("record", num_examples=135, batch_size=10, local_epochs=2, num_rounds=20,
    ...                       num_clients=100, clients_per_round=10)
    (0.07407407407407407, 560)
    """
    if level == "record":
        return min(1.0, batch_size / num_examples), num_rounds * local_epochs * math.ceil(num_examples / batch_size)
    if level == "user":
        return clients_per_round / num_clients, num_rounds
    raise ValueError(f"level must be 'record' or 'user', got {level!r}")


# ---------------------------------------------------------------- helpers


def _flat(tensors) -> torch.Tensor:
    return torch.cat([torch.as_tensor(t).double().flatten() for t in tensors])


# ---------------------------------------------------------------- exercise 1


def _clip_cases():
    t = torch.tensor
    return [
        (([t([0.3, -0.4])], 1.0), "an update of norm 0.5 and clip_norm 1 (inside the ball)"),
        (([t([3.0, 4.0])], 1.0), "an update of norm 5 and clip_norm 1"),
        (([t([[1.0, 2.0], [2.0, 0.0]]), t([4.0])], 2.5),
         "an update of two tensors (a weight matrix of norm 3 and a bias of norm 4: norm 5) and clip_norm 2.5"),
        (([t([0.0, 0.0]), t([0.0])], 0.1), "an all-zero update"),
        (([t([6.0, 8.0]), t([0.0, 0.5])], 20.0), "an update of norm about 10 and clip_norm 20"),
    ]


def check_clip_update(func) -> Feedback:
    """Check ``func(update, clip_norm)`` scales the whole update to norm at most clip_norm."""
    cases = _clip_cases()
    for (update, clip_norm), describe in cases:
        copies = [u.clone() for u in update]
        got, fail = attempt(lambda: func(copies, clip_norm), where=f"on {describe} ")
        if fail is not None:
            return fail
        if any(not torch.equal(a, b) for a, b in zip(copies, update)):
            return Feedback(False, f"Not yet: on {describe} your function changed the client's tensors in place; "
                                   "return new tensors instead.")
        want = clip_update(update, clip_norm)
        if close_tensors(got, want):
            continue
        per_tensor = [clip_update([u], clip_norm)[0] for u in update]
        norm = float(_flat(update).norm())
        normalised = [u * (clip_norm / norm) for u in update] if norm > 0 else None
        hint = ""
        if len(update) > 1 and close_tensors(got, per_tensor):
            hint = (" You clipped each tensor on its own. The clip bounds the norm of the whole update "
                    "(all tensors flattened into one vector): one factor for every tensor.")
        elif normalised is not None and close_tensors(got, normalised):
            hint = (" You scaled the update to norm exactly clip_norm. An update already shorter than "
                    "clip_norm must stay as it is: the factor is min(1, clip_norm / norm).")
        return Feedback(False, f"Not yet: on {describe} expected {show_tensors(want)}, got {show_tensors(got)}.{hint}")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")


# ---------------------------------------------------------------- exercise 2


def _noise_free_cases():
    t = torch.tensor
    # (updates, weights, clip_norm, sample_rate, total_weight, description)
    return [
        ([[t([0.3, 0.4])], [t([0.0, 1.0])]], [1.0, 1.0], 1.0, 0.5, 4.0,
         "2 sampled clients of 4, q = 0.5, weights 1, both updates inside the clip"),
        ([[t([3.0, 4.0])], [t([0.0, 0.2])], [t([0.6, 0.8])]], [1.0, 1.0, 1.0], 1.0, 0.2, 10.0,
         "3 sampled clients of 10, q = 0.2 (2 expected), one update of norm 5 with clip_norm 1"),
        ([[t([1.0, 0.0]), t([2.0])], [t([0.0, 0.0]), t([-0.5])]], [0.5, 1.0], 2.0, 0.1, 20.0,
         "2 sampled clients of weights 0.5 and 1, q = 0.1, W = 20, updates of two tensors"),
    ]


def _noise_only_case():
    # Zero updates: the result is the noise alone, 20,000 coordinates to measure its std on.
    updates = [[torch.zeros(100, 100), torch.zeros(10000)] for _ in range(3)]
    return updates, [1.0, 1.0, 1.0], 0.5, 2.0, 0.1, 50.0  # z = 2, S = 0.5, q = 0.1, W = 50: std 0.2


def check_noisy_average(func) -> Feedback:
    """Check ``func(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator)``.

    First without noise (``noise_multiplier=0``): the clipped, weighted sum over the fixed
    denominator qW, exactly. Then on zero updates with z = 2, S = 0.5, q = 0.1, W = 50: the
    result is pure noise, whose measured std over 20,000 coordinates must be z·S/(qW) = 0.2 within
    5 standard errors (the std of a sample std is about σ/√(2n) = 0.001 here) and mean 0 within 5
    standard errors (σ/√n).
    """
    for updates, weights, clip_norm, q, W, describe in _noise_free_cases():
        args = dict(clip_norm=clip_norm, noise_multiplier=0.0, sample_rate=q, total_weight=W,
                    generator=torch.Generator().manual_seed(0))
        copies = [[t.clone() for t in u] for u in updates]
        got, fail = attempt(lambda: func(copies, list(weights), **args), where=f"on {describe} ")
        if fail is not None:
            return fail
        want = noisy_average(updates, weights, **{**args, "generator": torch.Generator()})
        if close_tensors(got, want):
            continue
        clipped = [clip_update(u, clip_norm) for u in updates]
        hint = ""
        actual = sum(weights)
        by_actual = [sum(w * c[j] for w, c in zip(weights, clipped)) / actual for j in range(len(want))]
        unclipped = [sum(w * u[j] for w, u in zip(weights, updates)) / (q * W) for j in range(len(want))]
        by_all = [sum(w * c[j] for w, c in zip(weights, clipped)) / W for j in range(len(want))]
        if close_tensors(got, by_actual):
            hint = (" You divided by the weight of the clients that were sampled. DP-FedAvg divides by the fixed "
                    "expected weight q·W, whoever was sampled: then one client changes the sum by at most S "
                    "and the average by at most S/(qW), and the denominator reveals nothing.")
        elif close_tensors(got, unclipped):
            hint = " Clip every update to clip_norm before summing (you may use your clip_update)."
        elif close_tensors(got, by_all):
            hint = " Divide by q·W, the expected weight of a round's clients, not by W (all clients)."
        return Feedback(False, f"Not yet: on {describe}, without noise, expected {show_tensors(want)}, "
                               f"got {show_tensors(got)}.{hint}")

    updates, weights, clip_norm, z, q, W = _noise_only_case()
    std_want = z * clip_norm / (q * W)
    got, fail = attempt(lambda: func(updates, weights, clip_norm=clip_norm, noise_multiplier=z, sample_rate=q,
                                     total_weight=W, generator=torch.Generator().manual_seed(7)),
                        where="on zero updates with noise ")
    if fail is not None:
        return fail
    try:
        noise = _flat(got)
    except (TypeError, ValueError, RuntimeError):
        return Feedback(False, f"Not yet: on zero updates with noise, expected a list of tensors, got {got!r}.")
    n = noise.numel()
    if n != 20000 or not torch.isfinite(noise).all():
        return Feedback(False, f"Not yet: on zero updates with noise the result should hold {20000} finite numbers "
                               f"(the shapes of the updates), got {n}.")
    std, mean = float(noise.std()), float(noise.mean())
    describe = f"zero updates, z = {z:g}, S = {clip_norm:g}, q = {q:g}, W = {W:g}"
    if abs(std - std_want) > 5 * std_want / math.sqrt(2 * n):
        hint = ""
        for value, what in [(z * clip_norm, "z·S: divide the noise by q·W too, as the sum is"),
                            (z * clip_norm / len(updates), "z·S / (number of sampled clients): use q·W"),
                            (z * clip_norm / W, "z·S / W: the denominator is q·W"),
                            (z / (q * W), "z / (qW): the noise scales with the clip norm S")]:
            if abs(std - value) <= 5 * value / math.sqrt(2 * n):
                hint = f" That is {what}."
        return Feedback(False, f"Not yet: on {describe} the noise std should be z·S/(qW) = {std_want:.3f}, "
                               f"measured {std:.3f}.{hint}")
    if abs(mean) > 5 * std_want / math.sqrt(n):
        return Feedback(False, f"Not yet: on {describe} the noise should have mean 0, measured {mean:.4f}.")
    # The same generator seed must give the same noise, whatever the global generator's state.
    state = torch.get_rng_state()
    try:
        torch.manual_seed(12345)
        again, fail = attempt(lambda: func(updates, weights, clip_norm=clip_norm, noise_multiplier=z, sample_rate=q,
                                           total_weight=W, generator=torch.Generator().manual_seed(7)),
                              where="on zero updates with noise ")
    finally:
        torch.set_rng_state(state)
    if fail is not None:
        return fail
    if not torch.equal(_flat(again), noise):
        return Feedback(False, "Not yet: the same generator gave different noise. Draw the noise with the generator "
                               "you are given (torch.randn(..., generator=generator)), not the global one.")
    return Feedback(True, f"Correct: the clipped weighted sum over qW on {len(_noise_free_cases())} cases, and "
                          f"noise of std {std:.3f} ≈ z·S/(qW) = {std_want:.3f} on zero updates.")


# ---------------------------------------------------------------- exercise 3


_ACCOUNTING_CASES = [
    # level, num_examples, batch_size, local_epochs, num_rounds, num_clients, clients_per_round
    ("record", 135, 10, 1, 15, 10, 10),
    ("record", 134, 16, 3, 20, 10, 5),
    ("record", 13, 32, 2, 15, 100, 100),  # batch larger than the client: every record every step
    ("user", 135, 10, 1, 15, 10, 10),
    ("user", 13, 10, 5, 30, 100, 20),
]


def _describe_accounting(case) -> str:
    level, n, b, e, r, k, m = case
    return (f"level={level!r}, num_examples={n}, batch_size={b}, local_epochs={e}, num_rounds={r}, "
            f"num_clients={k}, clients_per_round={m}")


def check_sample_rate_and_steps(func) -> Feedback:
    """Check ``func(level, *, num_examples, batch_size, local_epochs, num_rounds, num_clients, clients_per_round)``."""
    for case in _ACCOUNTING_CASES:
        level, n, b, e, r, k, m = case
        kwargs = dict(num_examples=n, batch_size=b, local_epochs=e, num_rounds=r, num_clients=k,
                      clients_per_round=m)
        describe = _describe_accounting(case)
        got, fail = attempt(lambda: func(level, **kwargs), where=f"on {describe} ")
        if fail is not None:
            return fail
        want = sample_rate_and_steps(level, **kwargs)
        try:
            q, steps = got
        except (TypeError, ValueError):
            return Feedback(False, f"Not yet: on {describe} expected a pair (sample_rate, steps), got {got!r}.")
        if close(q, want[0]) and close(steps, want[1]) and float(steps) == int(float(steps)):
            continue
        hint = ""
        if close(q, 1 / k) and (close(steps, k * e) or close(steps, k * e * r)):
            hint = (" That is the source article's accounting (q = 1/num_clients, steps = num_clients × epochs). "
                    "No record is sampled with probability 1/num_clients, and no client takes num_clients × epochs steps.")
        elif level == "record" and close(q, m / k):
            hint = (" For record-level DP the sampling is of records inside one client: batch_size / num_examples "
                    "per step. Client sampling gives no credit here (the client knows when it trains).")
        elif level == "record" and close(q, b / n) and b > n:
            hint = " A sample rate is a probability: at most 1 (a batch larger than the client takes every record)."
        elif level == "record" and close(steps, r * e):
            hint = " Every local step is a noisy release: count ceil(num_examples / batch_size) steps per epoch."
        elif level == "user" and close(q, min(1.0, b / n)):
            hint = " For user-level DP the sampling is of clients: clients_per_round / num_clients per round."
        elif level == "user" and not close(steps, r):
            hint = " For user-level DP each round releases one noisy average: one step per round."
        return Feedback(False, f"Not yet: on {describe} expected {want!r}, got {got!r}.{hint}")
    return Feedback(True, f"Correct on all {len(_ACCOUNTING_CASES)} test cases.")
