import math

import torch

from dpfl_course import dashboard, fl
from dpfl_course.exercises import nb08


def test_reference_solutions_pass():
    assert nb08.check_server_noise_std(nb08.server_noise_std).passed
    assert nb08.check_local_accounting(nb08.local_accounting).passed
    assert nb08.check_cheapest_setting(nb08.cheapest_setting).passed


def test_server_noise_matches_the_package_on_zero_updates():
    # the reference formula is what fl.CentralDP adds: every client sends the global model back, so
    # only noise moves it; over 2,410 coordinates the sample std's relative standard error is
    # 1/sqrt(2·2410) ≈ 1.4 %, and 7 % is 5 standard errors
    theta = fl.get_parameters(fl.MLP(64, 32, 10))
    server = fl.CentralDP(fl.FedAvg(clients_per_round=20), noise_multiplier=1.5, clip_norm=0.7, seed=4)
    asked = server.configure_fit(1, theta, 100, torch.Generator().manual_seed(1))
    new, _ = server.aggregate_fit(1, [(cid, fl.FitRes(theta, 10, {})) for cid, _ in asked], [])
    measured = (fl.parameters_to_vector(new) - fl.parameters_to_vector(theta)).std().item()
    want = nb08.server_noise_std(noise_multiplier=1.5, clip_norm=0.7, sample_rate=0.2, num_clients=100)
    assert want == server.noise_std(100)
    assert abs(measured / want - 1) < 0.07


def test_noise_checker_rejects_plausible_mistakes():
    # mistake: the noise of the sum, forgetting to divide by the expected number of clients
    assert not nb08.check_server_noise_std(lambda *, noise_multiplier, clip_norm, sample_rate, num_clients:
                                           noise_multiplier * clip_norm).passed
    # mistake: dividing by every client N instead of the expected q·N of a round
    fb = nb08.check_server_noise_std(lambda *, noise_multiplier, clip_norm, sample_rate, num_clients:
                                     noise_multiplier * clip_norm / num_clients)
    assert not fb.passed and "sample_rate=0.2" in fb.message
    # mistake: the noise multiplier alone divided, forgetting the clip norm's scale
    assert not nb08.check_server_noise_std(lambda *, noise_multiplier, clip_norm, sample_rate, num_clients:
                                           noise_multiplier / (sample_rate * num_clients)).passed


def test_accounting_checker_rejects_plausible_mistakes():
    # mistake: a rate above 1 for a client with fewer examples than a batch
    fb = nb08.check_local_accounting(lambda n, *, batch_size, local_epochs, num_rounds:
                                     (batch_size / n, num_rounds * local_epochs * math.ceil(n / batch_size)))
    assert not fb.passed and "at most 1" in fb.message
    # mistake: floor instead of ceil (the last, smaller batch of an epoch forgotten)
    fb = nb08.check_local_accounting(lambda n, *, batch_size, local_epochs, num_rounds:
                                     (min(1.0, batch_size / n), num_rounds * local_epochs * (n // batch_size)))
    assert not fb.passed and "steps" in fb.message
    # mistake: one round's steps only
    fb = nb08.check_local_accounting(lambda n, *, batch_size, local_epochs, num_rounds:
                                     (min(1.0, batch_size / n), local_epochs * math.ceil(n / batch_size)))
    assert not fb.passed
    # mistake: the source article's rate, 1 / num_clients (here: one over the rounds), not the client's own
    fb = nb08.check_local_accounting(lambda n, *, batch_size, local_epochs, num_rounds:
                                     (1 / num_rounds, num_rounds * local_epochs))
    assert not fb.passed
    fb = nb08.check_local_accounting(lambda n, *, batch_size, local_epochs, num_rounds: 0.5)
    assert not fb.passed and "pair" in fb.message


def test_accounting_reference_is_the_dashboards():
    for n in (1, 3, 10, 11, 134, 135):
        assert nb08.local_accounting(n, batch_size=10, local_epochs=2, num_rounds=30) == \
            dashboard.local_dp_accounting(n, batch_size=10, local_epochs=2, num_rounds=30)


def test_cheapest_checker_rejects_plausible_mistakes():
    # mistake: the most accurate row, whatever its ε
    most_accurate = lambda rows, t: max(rows, key=lambda r: r["accuracy"]) if rows else None  # noqa: E731
    assert not nb08.check_cheapest_setting(most_accurate).passed
    # mistake: the smallest ε overall, ignoring the target
    smallest_epsilon = lambda rows, t: min(rows, key=lambda r: r["epsilon"]) if rows else None  # noqa: E731
    assert not nb08.check_cheapest_setting(smallest_epsilon).passed

    # mistake: "reaches" read as strictly above the target
    def strict(rows, target):
        above = [r for r in rows if r["accuracy"] > target]
        return min(above, key=lambda r: (r["epsilon"], -r["accuracy"])) if above else None

    fb = nb08.check_cheapest_setting(strict)
    assert not fb.passed and "target_accuracy=0.84" in fb.message

    # mistake: ties in ε broken by order, not by accuracy
    def first_tie(rows, target):
        above = [r for r in rows if r["accuracy"] >= target]
        return min(above, key=lambda r: r["epsilon"]) if above else None

    assert not nb08.check_cheapest_setting(first_tie).passed


def test_skeletons_give_messages_not_tracebacks():
    def skeleton(*args, **kwargs):
        raise NotImplementedError("Student exercise")

    for check in (nb08.check_server_noise_std, nb08.check_local_accounting, nb08.check_cheapest_setting):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb08.check_cheapest_setting(lambda rows, target: rows[0]["missing"])
    assert not fb.passed and "KeyError" in fb.message
