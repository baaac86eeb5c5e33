"""Notebook 08's exercises: the server's noise in DP-FedAvg, a client's accounting under local DP-SGD,
and the cheapest saved scenario that reaches a target accuracy."""

from __future__ import annotations

import math

from dpfl_course.exercises import Feedback, attempt, close, run_cases


def server_noise_std(*, noise_multiplier, clip_norm, sample_rate, num_clients):
    """Reference solution: the std per coordinate of DP-FedAvg's server noise, z·S/(q·N).

    Every client weighs 1, so the fixed denominator is q·W = q·N, the expected number of clients
    in a round; the sum of clipped updates moves by at most S when one client is added or removed.
    """
    return noise_multiplier * clip_norm / (sample_rate * num_clients)


def local_accounting(num_examples, *, batch_size, local_epochs, num_rounds):
    """Reference solution: (sample_rate, steps) of a client that runs local DP-SGD in every round.

    Poisson sampling at rate min(1, b/n_k); ceil(n_k / b) steps per epoch.
    """
    return min(1.0, batch_size / num_examples), num_rounds * local_epochs * math.ceil(num_examples / batch_size)


def cheapest_setting(rows, target_accuracy):
    """Reference solution: the row with the smallest ε whose accuracy reaches the target (None if none).

    Ties in ε go to the higher accuracy. Rows are dicts with at least "epsilon" and "accuracy".
    """
    reaching = [row for row in rows if row["accuracy"] >= target_accuracy]
    if not reaching:
        return None
    return min(reaching, key=lambda row: (row["epsilon"], -row["accuracy"]))


def check_server_noise_std(func) -> Feedback:
    """Check ``func(*, noise_multiplier, clip_norm, sample_rate, num_clients)`` on a few settings."""
    settings = [(1.0, 1.0, 0.2, 100), (1.065, 0.5, 0.2, 100), (2.7, 1.0, 0.1, 200), (0.8, 3.0, 1.0, 10),
                (4.0, 0.1, 0.05, 1000)]
    cases = [((z, s, q, n), server_noise_std(noise_multiplier=z, clip_norm=s, sample_rate=q, num_clients=n))
             for z, s, q, n in settings]
    return run_cases(lambda z, s, q, n: func(noise_multiplier=z, clip_norm=s, sample_rate=q, num_clients=n),
                     cases, compare=lambda got, want: close(got, want, rel=1e-9),
                     describe=lambda a: f"noise_multiplier={a[0]}, clip_norm={a[1]}, sample_rate={a[2]}, "
                                        f"num_clients={a[3]}")


def check_local_accounting(func) -> Feedback:
    """Check ``func(num_examples, *, batch_size, local_epochs, num_rounds)`` -> (sample_rate, steps)."""
    settings = [(135, 10, 1, 30), (25, 10, 2, 30), (3, 10, 2, 30), (10, 10, 1, 5), (101, 32, 3, 7), (1, 1, 1, 1)]
    for n, b, e, r in settings:
        where = f"num_examples={n}, batch_size={b}, local_epochs={e}, num_rounds={r}"
        got, failed = attempt(lambda: func(n, batch_size=b, local_epochs=e, num_rounds=r), where=f"on {where} ")
        if failed is not None:
            return failed
        want_q, want_steps = local_accounting(n, batch_size=b, local_epochs=e, num_rounds=r)
        try:
            q, steps = got
        except (TypeError, ValueError):
            return Feedback(False, f"Not yet: on {where} return a pair (sample_rate, steps), got {got!r}.")
        if not close(q, want_q):
            hint = " (a rate is a probability: at most 1)" if b > n else ""
            return Feedback(False, f"Not yet: on {where} the sample rate should be {want_q:.4g}, got {q!r}{hint}.")
        if not close(steps, want_steps):
            return Feedback(False, f"Not yet: on {where} the client takes {want_steps} steps in all "
                                   f"(every round, every epoch, ceil(n/b) steps per epoch), got {steps!r}.")
    return Feedback(True, f"Correct on all {len(settings)} test cases.")


def check_cheapest_setting(func) -> Feedback:
    """Check ``func(rows, target_accuracy)`` on small tables of saved scenarios."""
    table = [{"mode": "central", "epsilon": 8.0, "accuracy": 0.84},
             {"mode": "central", "epsilon": 2.0, "accuracy": 0.55},
             {"mode": "adaptive", "epsilon": 4.0, "accuracy": 0.80},
             {"mode": "local", "epsilon": 4.0, "accuracy": 0.81},
             {"mode": "none", "epsilon": math.inf, "accuracy": 0.92}]
    cases = [((table, 0.8), table[3]),  # two rows at ε = 4 reach it: the more accurate one
             ((table, 0.84), table[0]),  # exactly the target counts as reaching it
             ((table, 0.5), table[1]),
             ((table, 0.9), table[4]),  # only the non-private run reaches it: ε = inf
             ((table, 0.95), None),
             ((table[:0], 0.5), None)]

    def describe(args):
        rows, target = args
        return f"a table of {len(rows)} rows and target_accuracy={target}"

    return run_cases(lambda rows, target: func([dict(r) for r in rows], target), cases,
                     compare=lambda got, want: got == want, describe=describe)
