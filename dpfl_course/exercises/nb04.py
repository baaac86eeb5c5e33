"""Notebook 04's exercises: weighted averaging of client parameters, and one round of FedAvg.

The checkers compare the learner's function with the reference solution on small cases and, when
the answer is wrong, recognise the usual mistakes (a plain unweighted mean, forgetting to divide by
the total, training the clients one after the other as the source article does) and say which.
"""

from __future__ import annotations

import torch

from dpfl_course.exercises import Feedback, attempt, close_tensors, show_tensors


def weighted_average(results):
    """Reference solution: tensor by tensor, ``sum_k n_k * w_k / sum_k n_k``.

    Args:
        results: a list of ``(parameters, num_examples)`` pairs, ``parameters`` a list of tensors.

    >>> weighted_average([([torch.tensor([0.0])], 1), ([torch.tensor([3.0])], 2)])
    [tensor([2.])]
    """
    total = sum(n for _, n in results)
    num_tensors = len(results[0][0])
    return [sum(n * params[j] for params, n in results) / total for j in range(num_tensors)]


def fedavg_round(global_parameters, client_data, selected, local_train):
    """Reference solution: one round of FedAvg over the ``selected`` clients.

    Every selected client starts from (a copy of) the same global parameters, trains on its own
    data, and sends back ``(parameters, num_examples, metrics)``; the server averages the
    parameters weighted by ``num_examples``. The global parameters are not modified.

    Args:
        global_parameters: list of tensors, the current global model.
        client_data: list of ``(X, y)`` pairs, one per client.
        selected: ids of the clients that train this round.
        local_train: ``local_train(parameters, X, y) -> (parameters, num_examples, metrics)``.

    >>> step = lambda params, X, y: ([p + y.sum() for p in params], len(y), {})
    >>> fedavg_round([torch.zeros(1)], [(None, torch.tensor([1.0])), (None, torch.tensor([2.0, 2.0]))],
    ...              [0, 1], step)
    [tensor([3.])]
    """
    results = []
    for cid in selected:
        X, y = client_data[cid]
        parameters, num_examples, _ = local_train([p.clone() for p in global_parameters], X, y)
        results.append((parameters, num_examples))
    return weighted_average(results)


# ---------------------------------------------------------------- helpers


def _call(func, args, describe):
    """Call the learner's function; return (result, None) or (None, Feedback)."""
    return attempt(lambda: func(*args), where=f"on {describe} ")


# ---------------------------------------------------------------- exercise 1


def _average_cases():
    t = torch.tensor
    return [
        # (results, description)
        ([([t([0.0, 2.0])], 1), ([t([3.0, 2.0])], 2)], "two clients with 1 and 2 examples"),
        ([([t([[1.0, 2.0], [3.0, 4.0]]), t([1.0])], 10),
          ([t([[5.0, 6.0], [7.0, 8.0]]), t([-1.0])], 30),
          ([t([[0.0, 0.0], [0.0, 0.0]]), t([4.0])], 60)],
         "three clients with 10, 30 and 60 examples and two tensors each (a weight matrix and a bias)"),
        ([([t([0.5, -1.5, 2.0])], 7)], "a single client (the average is its own parameters)"),
        ([([t([1.0])], 1), ([t([1.0])], 1), ([t([1.0])], 1), ([t([4.0])], 97)],
         "four clients, one of them holding 97 of the 100 examples"),
    ]


def check_weighted_average(func) -> Feedback:
    """Check ``func(results)`` returns, per tensor, the num_examples-weighted mean of the clients'."""
    cases = _average_cases()
    for results, describe in cases:
        copies = [([p.clone() for p in params], n) for params, n in results]
        got, fail = _call(func, (copies,), describe)
        if fail is not None:
            return fail
        want = weighted_average(results)
        if any(not torch.equal(a, b) for (pa, _), (pb, _) in zip(copies, results) for a, b in zip(pa, pb)):
            return Feedback(False, f"Not yet: on {describe} your function changed the clients' tensors in place; "
                                   "build new tensors for the average instead.")
        if close_tensors(got, want):
            continue
        plain = [sum(params[j] for params, _ in results) / len(results) for j in range(len(results[0][0]))]
        unnormalised = [sum(n * params[j] for params, n in results) for j in range(len(results[0][0]))]
        hint = ""
        if close_tensors(got, plain):
            hint = (" That is the plain mean: weight each client by its num_examples, so a client with "
                    "more data counts more.")
        elif close_tensors(got, unnormalised):
            hint = " You summed n_k · w_k but forgot to divide by the total number of examples Σ n_k."
        return Feedback(False, f"Not yet: on {describe} expected {show_tensors(want)}, got {show_tensors(got)}.{hint}")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")


# ---------------------------------------------------------------- exercise 2


def _toy_train(parameters, X, y):
    """A deterministic stand-in for local training whose result depends on where it starts.

    It moves every parameter halfway towards the client's mean label, so a client that starts
    from another client's result (training one after the other) ends somewhere else.
    """
    target = y.double().mean().to(parameters[0].dtype)
    return [p + 0.5 * (target - p) for p in parameters], len(y), {"train_loss": 0.0}


def _gd_train(parameters, X, y):
    """One full-batch gradient step of logistic regression (a real, if tiny, local training)."""
    W, b = (p.detach().clone().requires_grad_(True) for p in parameters)
    loss = torch.nn.functional.cross_entropy(X @ W.T + b, y)
    loss.backward()
    with torch.no_grad():
        return [W - 0.5 * W.grad, b - 0.5 * b.grad], len(y), {"train_loss": loss.item()}


def _round_cases():
    g = torch.Generator().manual_seed(4)
    sizes = [3, 1, 6, 2]
    toy_clients = [(torch.zeros(n, 2), torch.randint(0, 5, (n,), generator=g)) for n in sizes]
    toy_global = [torch.tensor([1.0, -1.0]), torch.tensor([[0.0], [2.0]])]
    real_clients = [(torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (4, 9, 5)]
    real_global = [torch.randn(2, 3, generator=g), torch.zeros(2)]
    return [
        ((toy_global, toy_clients, [0, 1, 2, 3], _toy_train), "4 clients of sizes [3, 1, 6, 2], all selected"),
        ((toy_global, toy_clients, [1, 2], _toy_train), "4 clients of sizes [3, 1, 6, 2], clients [1, 2] selected"),
        ((real_global, real_clients, [0, 2], _gd_train),
         "logistic regression, 3 clients of sizes [4, 9, 5], clients [0, 2] selected, one gradient step each"),
    ]


def _sequential(global_parameters, client_data, selected, local_train):
    """The source article's mistake: each client starts from the previous client's result."""
    parameters, results = [p.clone() for p in global_parameters], []
    for cid in selected:
        X, y = client_data[cid]
        parameters, n, _ = local_train(parameters, X, y)
        results.append((parameters, n))
    return parameters, weighted_average(results)


def check_fedavg_round(func) -> Feedback:
    """Check ``func(global_parameters, client_data, selected, local_train)`` is one round of FedAvg."""
    cases = _round_cases()
    for (global_parameters, client_data, selected, local_train), describe in cases:
        before = [p.clone() for p in global_parameters]
        args = (global_parameters, client_data, list(selected), local_train)
        got, fail = _call(func, args, describe)
        if fail is not None:
            return fail
        if any(not torch.equal(a, b) for a, b in zip(global_parameters, before)):
            return Feedback(False, f"Not yet: on {describe} your function changed the global parameters in place; "
                                   "every client should receive a copy, and the new model should be new tensors.")
        want = fedavg_round(global_parameters, client_data, selected, local_train)
        if close_tensors(got, want):
            continue
        last, chained = _sequential(global_parameters, client_data, selected, local_train)
        everyone = fedavg_round(global_parameters, client_data, range(len(client_data)), local_train)
        results = [local_train([p.clone() for p in global_parameters], *client_data[c])[0] for c in selected]
        plain = [sum(r[j] for r in results) / len(results) for j in range(len(global_parameters))]
        hint = ""
        if close_tensors(got, last) or close_tensors(got, chained):
            hint = (" Your clients train one after the other, each starting from the previous one's result "
                    "(the source article's mistake). In FedAvg every selected client starts from the same "
                    "global parameters.")
        elif close_tensors(got, everyone) and len(selected) < len(client_data):
            hint = " You trained every client; only the selected ones take part in this round."
        elif close_tensors(got, plain):
            hint = " That is the plain mean of the clients' parameters: weight each by its num_examples."
        return Feedback(False, f"Not yet: on {describe} expected {show_tensors(want)}, got {show_tensors(got)}.{hint}")
    return Feedback(True, f"Correct on all {len(cases)} test cases.")
