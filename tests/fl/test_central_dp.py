"""Central DP-FedAvg (user-level DP) and adaptive clipping at the server.

What is checked: Poisson client sampling at rate q; every client update clipped to S; the server
noise's standard deviation is z·S/(qW), measured on zero updates; an empty round still adds noise
and spends ε; the ledger's ε equals dp.epsilon for (z, q, rounds) and the History's ε per round
equals dp.epsilon_curve; with no noise and a huge clip (q = 1, weight_cap >= max n_k) CentralDP
and AdaptiveCentralDP are FedAvg; both engines agree; adaptive clipping settles near the target
quantile of the update norms; bad inputs raise ValueError naming the parameter.
"""

import math

import numpy as np
import pytest
import torch

from dpfl_course import dp, fl

from .conftest import make_clients


class ZeroUpdates:
    """An engine whose clients send back the global parameters unchanged (Δ_k = 0)."""

    def __init__(self, sizes):
        self.sizes = sizes

    def fit(self, parameters, instructions):
        return [(cid, fl.FitRes([p.clone() for p in parameters], self.sizes[cid], {})) for cid, _ in instructions]


def _results(global_params, updates, sizes):
    """(cid, FitRes) pairs whose parameters are global + update (a flat vector per client)."""
    theta = fl.parameters_to_vector(global_params)
    return [(cid, fl.FitRes(fl.vector_to_parameters(theta + u, global_params), n, {}))
            for cid, (u, n) in enumerate(zip(updates, sizes))]


# ---------------------------------------------------------------------------------------- sampling
def test_clients_are_poisson_sampled_at_rate_q():
    strategy = fl.CentralDP(fl.FedAvg(clients_per_round=5), noise_multiplier=1.0, clip_norm=1.0)
    generator = torch.Generator().manual_seed(0)
    N, rounds = 50, 400
    counts = [len(strategy.configure_fit(r, [torch.zeros(1)], N, generator)) for r in range(1, rounds + 1)]
    q = strategy.sample_rate(N)
    assert q == 0.1
    # Mean of Binomial(N, q) counts within 5 standard errors; the count varies (Poisson, not fixed).
    assert abs(np.mean(counts) - N * q) < 5 * math.sqrt(N * q * (1 - q) / rounds)
    assert len(set(counts)) > 3
    config = strategy.configure_fit(rounds + 1, [torch.zeros(1)], N, generator)
    assert all(c == fl.FedAvg().fit_config(1) for _, c in config)


# ---------------------------------------------------------------------------------------- clipping and noise
def test_every_client_update_is_clipped_to_the_clip_norm():
    S = 0.5
    strategy = fl.CentralDP(fl.FedAvg(), noise_multiplier=0.0, clip_norm=S)  # q = 1, W = N
    params = [torch.zeros(3, 2), torch.zeros(2)]
    g = torch.Generator().manual_seed(0)
    norms = [0.1, 0.5, 2.0, 30.0]
    updates = [n * (v / v.norm()) for n, v in zip(norms, torch.randn(4, 8, generator=g, dtype=torch.float64))]
    strategy.configure_fit(1, params, 4, g)
    new, metrics = strategy.aggregate_fit(1, _results(params, updates, [5, 5, 5, 5]), [])
    expected = sum(u * min(1.0, S / n) for u, n in zip(updates, norms)) / 4
    torch.testing.assert_close(fl.parameters_to_vector(new).double(), expected, rtol=1e-6, atol=1e-7)
    assert metrics["clipped_fraction"] == 0.5 and metrics["clip_norm"] == S
    assert strategy.update_norms[1] == pytest.approx(norms)
    # One client alone (N = 1): the new model moved by exactly min(norm, S).
    for n in norms:
        single = fl.CentralDP(fl.FedAvg(), noise_multiplier=0.0, clip_norm=S)
        single.configure_fit(1, params, 1, g)
        new, _ = single.aggregate_fit(1, _results(params, [updates[norms.index(n)]], [5]), [])
        assert fl.parameters_to_vector(new).norm().item() == pytest.approx(min(n, S), rel=1e-5)


@pytest.mark.parametrize("weight_cap", [None, 6.0], ids=["unit-weights", "weight-cap"])
def test_server_noise_std_is_z_S_over_qW_on_zero_updates(weight_cap):
    sizes = [3, 9, 14, 5, 22, 1, 8, 4, 12, 7]
    z, S, N = 1.3, 0.8, len(sizes)
    strategy = fl.CentralDP(fl.FedAvg(clients_per_round=4), noise_multiplier=z, clip_norm=S, weight_cap=weight_cap,
                            num_examples=sizes if weight_cap else None, seed=3)
    q = 0.4
    W = N if weight_cap is None else sum(min(n / weight_cap, 1.0) for n in sizes)
    assert strategy.noise_std(N) == pytest.approx(z * S / (q * W))
    model = fl.LogisticRegression(64, 10)  # 650 coordinates per round
    start = fl.parameters_to_vector(fl.get_parameters(model))
    steps = []
    fl.run_federated(model, [(torch.zeros(n, 64), torch.zeros(n, dtype=torch.int64)) for n in sizes], strategy,
                     num_rounds=40, engine=ZeroUpdates(sizes),
                     on_round=lambda r, p, row: steps.append(fl.parameters_to_vector(p).double()))
    noise = torch.diff(torch.stack([start.double()] + steps), dim=0).flatten()
    n = noise.numel()
    std = z * S / (q * W)
    # The sample std of n Gaussians has relative standard error 1/sqrt(2n) (0.4 % here): allow 5.
    assert abs(noise.std().item() / std - 1) < 5 / math.sqrt(2 * n)
    assert abs(noise.mean().item()) < 5 * std / math.sqrt(n)


def test_an_empty_round_still_adds_noise_and_spends_epsilon():
    strategy = fl.CentralDP(fl.FedAvg(clients_per_round=1), noise_multiplier=1.0, clip_norm=1.0)
    params = [torch.zeros(100)]
    strategy.configure_fit(1, params, 10, torch.Generator().manual_seed(0))
    new, metrics = strategy.aggregate_fit(1, [], [])
    assert math.isnan(metrics["clipped_fraction"])
    noise = new[0].double()
    std = strategy.noise_std(10)  # 1 · 1 / (0.1 · 10) = 1
    assert abs(noise.std().item() / std - 1) < 5 / math.sqrt(200)  # 5 standard errors
    assert len(strategy.ledger) == 1 and metrics["epsilon"] == strategy.ledger.epsilon > 0


def test_noise_comes_from_the_seed_and_round_not_the_global_generator():
    def one_round(seed, server_round):
        s = fl.CentralDP(fl.FedAvg(), noise_multiplier=1.0, clip_norm=1.0, seed=seed)
        s.configure_fit(server_round, [torch.zeros(5)], 2, torch.Generator().manual_seed(0))
        return s.aggregate_fit(server_round, [], [])[0][0]

    state = torch.get_rng_state()
    first = one_round(0, 1)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    assert torch.equal(one_round(0, 1), first)
    assert not torch.equal(one_round(1, 1), first)
    assert not torch.equal(one_round(0, 2), first)


# ---------------------------------------------------------------------------------------- accounting
@pytest.mark.parametrize("cls", ["fixed", "adaptive"])
def test_ledger_epsilon_is_dp_epsilon_of_the_run(cls):
    clients = make_clients([6] * 20, seed=1)
    z, delta, rounds = 0.9, 1e-5, 12
    base = fl.FedAvg(clients_per_round=5, local_epochs=1, batch_size=3, lr=0.2)
    strategy = (fl.CentralDP(base, noise_multiplier=z, clip_norm=0.5, delta=delta) if cls == "fixed" else
                fl.AdaptiveCentralDP(base, noise_multiplier=z, delta=delta))
    _, history = fl.run_federated(fl.LogisticRegression(6, 3), clients, strategy, num_rounds=rounds)
    q = 5 / 20
    assert strategy.ledger.epsilon == dp.epsilon(noise_multiplier=z, sample_rate=q, steps=rounds, delta=delta)
    curve = dp.epsilon_curve(noise_multiplier=z, sample_rate=q, steps=rounds, delta=delta)
    assert history["epsilon"][1:] == curve.tolist()
    assert len(strategy.ledger) == rounds


def test_without_noise_epsilon_is_infinite_and_nothing_is_spent():
    strategy = fl.CentralDP(fl.FedAvg(), noise_multiplier=0.0, clip_norm=1.0)
    strategy.configure_fit(1, [torch.zeros(2)], 3, torch.Generator())
    _, metrics = strategy.aggregate_fit(1, [], [])
    assert metrics["epsilon"] == math.inf and len(strategy.ledger) == 0


# ---------------------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("engine", ["sequential", "vectorised"])
def test_without_noise_and_clipping_central_dp_is_fedavg(unequal_clients, test_set, engine):
    sizes = [len(X) for X, _ in unequal_clients]
    base = lambda: fl.FedAvg(local_epochs=2, batch_size=4, lr=0.3)  # q = 1: every client, every round
    run = lambda s: fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, s, num_rounds=4, engine=engine,
                                     test_data=test_set, seed=5)
    plain, h_plain = run(base())
    variants = {
        "weight-cap": fl.CentralDP(base(), noise_multiplier=0.0, clip_norm=1e9, weight_cap=max(sizes),
                                   num_examples=sizes),
        "weight-cap-above-max": fl.CentralDP(base(), noise_multiplier=0.0, clip_norm=1e9, weight_cap=10 * max(sizes),
                                             num_examples=sizes),
        "adaptive": fl.AdaptiveCentralDP(base(), noise_multiplier=0.0, initial_clip_norm=1e9, weight_cap=max(sizes),
                                         num_examples=sizes),
    }
    for name, strategy in variants.items():
        private, h_private = run(strategy)
        torch.testing.assert_close(private, plain, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(torch.tensor(h_private["train_loss"][1:]), torch.tensor(h_plain["train_loss"][1:]))


def test_without_weight_cap_on_equal_clients_central_dp_is_fedavg():
    clients = make_clients([7] * 6, seed=4)
    base = lambda: fl.FedAvg(local_epochs=1, batch_size=3, lr=0.3)
    plain, _ = fl.run_federated(fl.LogisticRegression(6, 3), clients, base(), num_rounds=3)
    private, _ = fl.run_federated(fl.LogisticRegression(6, 3), clients,
                                  fl.CentralDP(base(), noise_multiplier=0.0, clip_norm=1e9), num_rounds=3)
    torch.testing.assert_close(private, plain, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", ["fixed", "adaptive"])
def test_engines_agree_with_central_dp(unequal_clients, test_set, cls):
    runs = {}
    for engine in ("sequential", "vectorised"):
        base = fl.FedAvg(clients_per_round=4, local_epochs=2, batch_size=4, lr=0.3)
        strategy = (fl.CentralDP(base, noise_multiplier=0.7, clip_norm=0.3) if cls == "fixed"
                    else fl.AdaptiveCentralDP(base, noise_multiplier=0.7, initial_clip_norm=0.2))
        runs[engine] = fl.run_federated(fl.MLP(6, 5, 3), unequal_clients, strategy, num_rounds=5, engine=engine,
                                        test_data=test_set, seed=2, dropout=0.1)
    (p_seq, h_seq), (p_vec, h_vec) = runs["sequential"], runs["vectorised"]
    torch.testing.assert_close(p_vec, p_seq, rtol=0, atol=1e-5)
    assert h_vec["clients_sampled"] == h_seq["clients_sampled"] and h_vec["epsilon"] == h_seq["epsilon"]
    torch.testing.assert_close(torch.tensor(h_vec["clip_norm"][1:]), torch.tensor(h_seq["clip_norm"][1:]), rtol=1e-5,
                               atol=0)


def test_local_and_central_dp_compose(unequal_clients):
    # LocalDP outside CentralDP: clients run DP-SGD, the server clips and noises; both ledgers fill.
    central = fl.CentralDP(fl.FedAvg(clients_per_round=5, local_epochs=1, batch_size=4, lr=0.3),
                           noise_multiplier=0.5, clip_norm=1.0)
    both = fl.LocalDP(central, noise_multiplier=0.5, max_grad_norm=1.0)
    _, history = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, both, num_rounds=3)
    assert len(central.ledger) == 3 and len(both.ledgers) > 0
    assert history.last("epsilon") == max(both.epsilons(len(unequal_clients)))


# ---------------------------------------------------------------------------------------- adaptive clipping
@pytest.mark.parametrize("target_quantile", [0.5, 0.8], ids=["median", "q80"])
def test_adaptive_clip_settles_near_the_target_quantile_of_known_norms(target_quantile):
    N = 100
    norms = torch.linspace(1.0, 3.0, N, dtype=torch.float64)  # known update norms
    direction = torch.zeros(N, 4, dtype=torch.float64)
    direction[:, 0] = 1.0
    updates = list(norms.unsqueeze(1) * direction)
    params = [torch.zeros(4)]
    strategy = fl.AdaptiveCentralDP(fl.FedAvg(), noise_multiplier=0.0, initial_clip_norm=0.1,
                                    target_quantile=target_quantile, clip_lr=0.1)
    clips = []
    g = torch.Generator().manual_seed(0)
    for r in range(1, 201):
        strategy.configure_fit(r, params, N, g)
        _, metrics = strategy.aggregate_fit(r, _results(params, updates, [1] * N), [])
        clips.append(metrics["clip_norm"])
    target = float(torch.quantile(norms, target_quantile))
    # Geometric steps of at most exp(0.1 · max(γ, 1 − γ)) around the fixed point: the last 50
    # clips lie within one step's worth of quantile levels (±6 % of the norms) of the target.
    late = np.array(clips[-50:])
    assert clips[0] == 0.1 and abs(np.median(late) - target) < 0.05 * target
    low, high = (float(torch.quantile(norms, max(0.0, target_quantile - 0.06))),
                 float(torch.quantile(norms, min(1.0, target_quantile + 0.06))))
    assert low <= late.min() and late.max() <= high


def test_adaptive_clip_with_count_noise_still_tracks_the_median():
    N = 200
    norms = torch.linspace(0.5, 1.5, N, dtype=torch.float64)
    updates = [n * torch.tensor([1.0, 0.0], dtype=torch.float64) for n in norms]
    strategy = fl.AdaptiveCentralDP(fl.FedAvg(), noise_multiplier=1.0, initial_clip_norm=0.2, clip_lr=0.2, seed=1)
    assert strategy.count_stddev_for(N) == 10.0  # expected clients / 20
    params = [torch.zeros(2)]
    g = torch.Generator().manual_seed(0)
    clips = []
    for r in range(1, 301):
        strategy.configure_fit(r, params, N, g)
        clips.append(strategy.aggregate_fit(r, _results(params, updates, [1] * N), [])[1]["clip_norm"])
    # b̃ carries noise of std 10/200 = 0.05; the clip wanders within about ±10 % of the median.
    assert abs(np.median(clips[-150:]) - 1.0) < 0.1


def test_adaptive_noise_multipliers_compose_back_to_z():
    for z, sigma_b in [(1.0, 5.0), (0.8, 2.0), (2.0, 1.5)]:
        z_update = fl.adaptive_noise_multipliers(z, sigma_b)
        assert z_update > z
        assert (z_update ** -2 + (2 * sigma_b) ** -2) ** -0.5 == pytest.approx(z, rel=1e-12)


# ---------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("kwargs, name", [
    ({"noise_multiplier": -1.0}, "noise_multiplier"),
    ({"noise_multiplier": float("nan")}, "noise_multiplier"),
    ({"clip_norm": 0.0}, "clip_norm"),
    ({"clip_norm": -1.0}, "clip_norm"),
    ({"clip_norm": float("inf")}, "clip_norm"),
    ({"delta": 0.0}, "delta"),
    ({"delta": 1.5}, "delta"),
    ({"weight_cap": 0.0, "num_examples": [1, 2]}, "weight_cap"),
    ({"weight_cap": 5.0}, "num_examples"),
    ({"weight_cap": 5.0, "num_examples": [3, 0]}, "num_examples"),
    ({"seed": -1}, "seed"),
], ids=["negative-noise", "nan-noise", "zero-clip", "negative-clip", "inf-clip", "delta-zero", "delta-big",
        "zero-cap", "cap-without-sizes", "empty-client", "negative-seed"])
def test_central_dp_rejects_bad_arguments(kwargs, name):
    settings = {"noise_multiplier": 1.0, "clip_norm": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        fl.CentralDP(fl.FedAvg(), **settings)


@pytest.mark.parametrize("kwargs, name", [
    ({"target_quantile": 1.5}, "target_quantile"),
    ({"target_quantile": -0.1}, "target_quantile"),
    ({"clip_lr": 0.0}, "clip_lr"),
    ({"initial_clip_norm": 0.0}, "initial_clip_norm"),
    ({"count_stddev": 0.4}, "count_stddev"),  # <= z/2 = 0.5: the count would spend everything
    ({"count_stddev": float("nan")}, "count_stddev"),
    ({"noise_multiplier": -0.5}, "noise_multiplier"),
], ids=["quantile-above", "quantile-below", "zero-lr", "zero-clip", "count-too-small", "count-nan", "negative-noise"])
def test_adaptive_central_dp_rejects_bad_arguments(kwargs, name):
    settings = {"noise_multiplier": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        fl.AdaptiveCentralDP(fl.FedAvg(), **settings)


def test_central_dp_rejects_misuse():
    with pytest.raises(ValueError, match="num_fit_clients"):
        fl.CentralDP(fl.Strategy(), noise_multiplier=1.0, clip_norm=1.0)
    strategy = fl.CentralDP(fl.FedAvg(), noise_multiplier=1.0, clip_norm=1.0, weight_cap=2.0, num_examples=[1, 2, 3])
    with pytest.raises(ValueError, match="num_examples"):
        strategy.configure_fit(1, [torch.zeros(2)], 4, torch.Generator())  # 4 clients, 3 sizes
    with pytest.raises(ValueError, match="configure_fit"):
        strategy.aggregate_fit(7, [], [])
    params = [torch.zeros(2)]
    strategy.configure_fit(1, params, 3, torch.Generator())
    bad = [(0, fl.FitRes([torch.tensor([float("nan"), 0.0])], 1, {}))]
    with pytest.raises(ValueError, match="client 0"):
        strategy.aggregate_fit(1, bad, [])


# ---------------------------------------------------------------------------------------- review fixes
def _unclipped_fraction(norms, num_clients=10):
    s = fl.AdaptiveCentralDP(fl.FedAvg(clients_per_round=num_clients // 2), noise_multiplier=1.0,
                             initial_clip_norm=1.0, seed=3)
    s.configure_fit(1, [torch.zeros(2)], num_clients, torch.Generator().manual_seed(0))
    results = [(k, fl.FitRes([torch.tensor([n, 0.0])], 1, {})) for k, n in enumerate(norms)]
    return s.aggregate_fit(1, results, [])[1]["unclipped_fraction"], s.sample_rate(num_clients) * num_clients


@pytest.mark.parametrize("extra", [0.1, 5.0], ids=["unclipped-newcomer", "clipped-newcomer"])
def test_one_client_moves_the_adaptive_count_by_at_most_a_half(extra):
    # The split z_Δ = (z⁻² − (2σ_b)⁻²)^(-1/2) charges the count as a query of sensitivity 1/2: the
    # server must count b_k − 1/2. A raw count moves by 1 and the round would cost more than z.
    # Same seeds with and without the client: the noise cancels, the difference is the sensitivity.
    base = [0.5, 2.0, 0.3, 3.0]
    with_it, expected = _unclipped_fraction(base + [extra])
    without, _ = _unclipped_fraction(base)
    assert abs(with_it - without) * expected == pytest.approx(0.5, abs=1e-12)


def test_central_dp_refuses_a_wrapper_inside():
    # CentralDP replaces sampling and aggregation: LocalDP's ledgers or Stragglers inside it
    # would be skipped silently, so the order is enforced.
    for inner in (fl.LocalDP(fl.FedAvg(), noise_multiplier=1.0, max_grad_norm=1.0), fl.Stragglers(fl.FedAvg(), 0.5)):
        with pytest.raises(ValueError, match="wrap it around CentralDP"):
            fl.CentralDP(inner, noise_multiplier=1.0, clip_norm=1.0)


def test_local_dp_around_central_dp_keeps_both_epsilons(unequal_clients):
    central = fl.CentralDP(fl.FedAvg(clients_per_round=5, batch_size=4), noise_multiplier=0.8, clip_norm=1.0)
    both = fl.LocalDP(central, noise_multiplier=0.8, max_grad_norm=1.0)
    _, history = fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, both, num_rounds=2)
    assert history.last("user_epsilon") == central.ledger.epsilon
    assert history.last("record_epsilon") == history.last("epsilon") == max(both.epsilons(len(unequal_clients)))


@pytest.mark.parametrize("make", [
    lambda: fl.CentralDP(fl.FedAvg(clients_per_round=2), noise_multiplier=1.0, clip_norm=1.0),
    lambda: fl.AdaptiveCentralDP(fl.FedAvg(clients_per_round=2), noise_multiplier=1.0),
    lambda: fl.LocalDP(fl.FedAvg(clients_per_round=2), noise_multiplier=1.0, max_grad_norm=1.0),
], ids=["central", "adaptive", "local"])
def test_a_strategy_serves_one_run_only(make, unequal_clients):
    # Its ledger holds the privacy spent (and the adaptive clip has moved): a second run with the
    # same object would report the two runs' privacy as one run's, so it is refused.
    strategy = make()
    fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, strategy, num_rounds=2)
    with pytest.raises(ValueError, match="create a new"):
        fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, strategy, num_rounds=2)


def test_server_noise_changes_with_the_run_seed(unequal_clients):
    def final(seed):
        s = fl.CentralDP(fl.FedAvg(clients_per_round=2), noise_multiplier=1.0, clip_norm=1.0)
        return fl.run_federated(fl.LogisticRegression(6, 3), unequal_clients, s, num_rounds=1, seed=seed)[0][0]

    assert torch.equal(final(0), final(0))
    assert not torch.equal(final(0), final(1))


def test_adaptive_noise_std_reports_the_multiplier_applied():
    s = fl.AdaptiveCentralDP(fl.FedAvg(clients_per_round=20), noise_multiplier=1.0, initial_clip_norm=0.5)
    assert s.noise_std(100) == pytest.approx(s.update_noise_multiplier(100) * 0.5 / 20)


@pytest.mark.parametrize("label", [3, "round {x}", "round {0}"], ids=["not-text", "unknown-field", "positional"])
def test_a_bad_label_is_refused_at_construction(label):
    with pytest.raises(ValueError, match="label"):
        fl.CentralDP(fl.FedAvg(), noise_multiplier=1.0, clip_norm=1.0, label=label)
    with pytest.raises(ValueError, match="label"):
        fl.LocalDP(fl.FedAvg(), noise_multiplier=1.0, max_grad_norm=1.0, label=label)


@pytest.mark.parametrize("value", [-1.0, 0.0, float("nan"), "1"], ids=["negative", "zero", "nan", "text"])
def test_clip_factors_refuses_a_bad_clip(value):
    with pytest.raises(ValueError, match="max_grad_norm"):
        fl.clip_factors(torch.tensor([1.0]), value)


def test_numbers_given_as_text_are_refused():
    with pytest.raises(ValueError, match="noise_multiplier"):
        fl.CentralDP(fl.FedAvg(), noise_multiplier="1", clip_norm=1.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        fl.parse_fit_config({"noise_multiplier": 1.0, "max_grad_norm": "1"})
