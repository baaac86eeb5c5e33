import math

import pytest
import torch

from dpfl_course import fl
from dpfl_course.exercises import nb07


def skeleton(*args, **kwargs):
    raise NotImplementedError("Student exercise: ...")


def test_reference_solutions_pass():
    assert nb07.check_clip_update(nb07.clip_update).passed
    assert nb07.check_noisy_average(nb07.noisy_average).passed
    assert nb07.check_sample_rate_and_steps(nb07.sample_rate_and_steps).passed


def test_skeletons_and_crashes_give_messages_not_tracebacks():
    for check in (nb07.check_clip_update, nb07.check_noisy_average, nb07.check_sample_rate_and_steps):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb07.check_clip_update(lambda update, clip_norm: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    fb = nb07.check_sample_rate_and_steps(lambda level, **kwargs: None)  # returns nothing
    assert not fb.passed and "pair" in fb.message


# ---------------------------------------------------------------- exercise 1


def test_clip_reference_bounds_the_norm_and_keeps_short_updates():
    g = torch.Generator().manual_seed(0)
    update = [torch.randn(5, 3, generator=g), torch.randn(5, generator=g)]
    norm = math.sqrt(sum(float(t.pow(2).sum()) for t in update))
    clipped = nb07.clip_update(update, norm / 2)
    assert math.sqrt(sum(float(t.pow(2).sum()) for t in clipped)) == pytest.approx(norm / 2, rel=1e-6)
    for a, b in zip(nb07.clip_update(update, 2 * norm), update):
        assert torch.equal(a, b)


def test_clip_checker_rejects_clipping_each_tensor_on_its_own():
    # plausible mistake: each layer clipped to S separately, so the whole update can reach S·√(layers)
    def per_tensor(update, clip_norm):
        return [t * min(1.0, clip_norm / max(float(t.norm()), 1e-12)) for t in update]

    fb = nb07.check_clip_update(per_tensor)
    assert not fb.passed and "each tensor on its own" in fb.message


def test_clip_checker_rejects_normalising_every_update():
    # plausible mistake: scaling every update to norm exactly S (short updates are stretched)
    def normalise(update, clip_norm):
        norm = math.sqrt(sum(float(t.pow(2).sum()) for t in update))
        return [t * (clip_norm / norm) if norm > 0 else t for t in update]

    fb = nb07.check_clip_update(normalise)
    assert not fb.passed and "min(1, clip_norm / norm)" in fb.message


def test_clip_checker_rejects_changing_the_update_in_place():
    def in_place(update, clip_norm):
        norm = math.sqrt(sum(float(t.pow(2).sum()) for t in update))
        for t in update:
            t.mul_(min(1.0, clip_norm / norm) if norm > 0 else 1.0)
        return update

    fb = nb07.check_clip_update(in_place)
    assert not fb.passed and "in place" in fb.message


# ---------------------------------------------------------------- exercise 2


def test_noisy_average_reference_noise_std_is_z_s_over_qw():
    # the package requirement, on the reference: zero updates give pure noise of std z·S/(qW)
    z, S, q, W = 1.5, 0.8, 0.25, 40.0
    updates = [[torch.zeros(50_000)] for _ in range(7)]
    out = nb07.noisy_average(updates, [1.0] * 7, clip_norm=S, noise_multiplier=z, sample_rate=q, total_weight=W,
                             generator=torch.Generator().manual_seed(1))[0]
    want = z * S / (q * W)
    # 5 standard errors of a sample std (≈ σ/√(2n)) and of a sample mean (σ/√n)
    assert abs(float(out.std()) - want) < 5 * want / math.sqrt(2 * out.numel())
    assert abs(float(out.mean())) < 5 * want / math.sqrt(out.numel())


def test_noisy_average_checker_rejects_dividing_by_the_sampled_weight():
    # plausible mistake: the ordinary FedAvg mean over who was sampled (a data-dependent denominator)
    def by_sampled(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator):
        total = sum(weights)
        out = []
        for j in range(len(updates[0])):
            s = sum(w * nb07.clip_update(u, clip_norm)[j] for u, w in zip(updates, weights)) / total
            std = noise_multiplier * clip_norm / (sample_rate * total_weight)
            out.append(s + std * torch.randn(s.shape, generator=generator))
        return out

    fb = nb07.check_noisy_average(by_sampled)
    assert not fb.passed and "fixed" in fb.message


def test_noisy_average_checker_rejects_noise_not_divided_by_qw():
    # plausible mistake: noise of std z·S (the sensitivity of the sum) added to the average
    def unscaled(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator):
        mean = nb07.noisy_average(updates, weights, clip_norm=clip_norm, noise_multiplier=0.0,
                                  sample_rate=sample_rate, total_weight=total_weight, generator=generator)
        return [m + noise_multiplier * clip_norm * torch.randn(m.shape, generator=generator) for m in mean]

    fb = nb07.check_noisy_average(unscaled)
    assert not fb.passed and "z·S: divide the noise by q·W" in fb.message


def test_noisy_average_checker_rejects_missing_clipping():
    def unclipped(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator):
        d = sample_rate * total_weight
        return [sum(w * u[j] for u, w in zip(updates, weights)) / d
                + noise_multiplier * clip_norm / d * torch.randn(updates[0][j].shape, generator=generator)
                for j in range(len(updates[0]))]

    fb = nb07.check_noisy_average(unclipped)
    assert not fb.passed and "Clip every update" in fb.message


def test_noisy_average_checker_rejects_no_noise():
    def no_noise(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator):
        return nb07.noisy_average(updates, weights, clip_norm=clip_norm, noise_multiplier=0.0,
                                  sample_rate=sample_rate, total_weight=total_weight, generator=generator)

    fb = nb07.check_noisy_average(no_noise)
    assert not fb.passed and "noise std should be" in fb.message


def test_noisy_average_checker_rejects_noise_from_the_global_generator():
    # the mistake: torch.randn without generator= (the run is then not reproducible from its seed)
    def global_noise(updates, weights, *, clip_norm, noise_multiplier, sample_rate, total_weight, generator):
        return nb07.noisy_average(updates, weights, clip_norm=clip_norm, noise_multiplier=noise_multiplier,
                                  sample_rate=sample_rate, total_weight=total_weight,
                                  generator=torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,)))))

    fb = nb07.check_noisy_average(global_noise)
    assert not fb.passed and "generator you are given" in fb.message


# ---------------------------------------------------------------- exercise 3


def test_accounting_reference_matches_the_local_dp_plan_of_the_package():
    # record level: what the package's clients report (rate and steps per round) times the rounds
    for n, b, e in [(135, 10, 1), (134, 16, 3), (13, 32, 2), (7, 7, 1)]:
        q, steps_per_round = fl.local_dp_plan(n, local_epochs=e, batch_size=b)
        assert nb07.sample_rate_and_steps("record", num_examples=n, batch_size=b, local_epochs=e, num_rounds=4,
                                          num_clients=10, clients_per_round=10) == (q, 4 * steps_per_round)


def test_accounting_checker_rejects_the_articles_formula():
    # the source article's mistake: q = 1/num_clients, steps = num_clients × epochs
    def article(level, *, num_examples, batch_size, local_epochs, num_rounds, num_clients, clients_per_round):
        return 1 / num_clients, num_clients * local_epochs

    fb = nb07.check_sample_rate_and_steps(article)
    assert not fb.passed and "article" in fb.message


def test_accounting_checker_rejects_client_sampling_for_records():
    # plausible mistake: crediting client sampling to record-level DP
    def client_rate(level, **kwargs):
        q, steps = nb07.sample_rate_and_steps(level, **kwargs)
        return (kwargs["clients_per_round"] / kwargs["num_clients"], steps) if level == "record" else (q, steps)

    fb = nb07.check_sample_rate_and_steps(client_rate)
    assert not fb.passed and "Client sampling gives no credit" in fb.message


def test_accounting_checker_rejects_one_step_per_epoch():
    def one_per_epoch(level, **kwargs):
        q, steps = nb07.sample_rate_and_steps(level, **kwargs)
        return (q, kwargs["num_rounds"] * kwargs["local_epochs"]) if level == "record" else (q, steps)

    fb = nb07.check_sample_rate_and_steps(one_per_epoch)
    assert not fb.passed and "ceil(num_examples / batch_size)" in fb.message


def test_accounting_checker_rejects_a_rate_above_one():
    def unbounded(level, **kwargs):
        q, steps = nb07.sample_rate_and_steps(level, **kwargs)
        return (kwargs["batch_size"] / kwargs["num_examples"], steps) if level == "record" else (q, steps)

    fb = nb07.check_sample_rate_and_steps(unbounded)
    assert not fb.passed and "at most 1" in fb.message


def test_accounting_checker_rejects_local_steps_for_users():
    # plausible mistake: counting the clients' local steps as user-level steps
    def local_steps(level, **kwargs):
        return nb07.sample_rate_and_steps("record", **kwargs) if level == "user" else \
            nb07.sample_rate_and_steps(level, **kwargs)

    fb = nb07.check_sample_rate_and_steps(local_steps)
    assert not fb.passed and "clients_per_round / num_clients" in fb.message

