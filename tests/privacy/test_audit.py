"""Privacy auditing: Clopper–Pearson against scipy, ε_LB against known trade-off curves, the honest
threshold, and the audit of DP-SGD: below the claimed ε when DP-SGD is correct, above it for the bug."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.optimize import brentq

from dpfl_course import data, dp
from dpfl_course.privacy import audit, membership

DELTA = 1e-5


# ---------------------------------------------------------------- Clopper–Pearson


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2], ids=["a05", "a01", "a20"])
def test_clopper_pearson_equals_scipys_exact_interval(alpha):
    for n in [1, 2, 7, 50, 333, 1000]:
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            want = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
            low, high = audit.clopper_pearson(k, n, alpha=alpha)
            assert low == pytest.approx(want.low, abs=1e-12) and high == pytest.approx(want.high, abs=1e-12), (k, n)


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2], ids=["a05", "a01", "a20"])
def test_the_vectorised_bounds_the_threshold_search_uses_equal_clopper_pearson(alpha):
    # _best_threshold scores every candidate with _cp_bounds: it must be the same interval, for every k
    for n in [1, 2, 7, 50, 333]:
        low, high = audit._cp_bounds(np.arange(n + 1), n, alpha)
        for k in range(n + 1):
            want = audit.clopper_pearson(k, n, alpha=alpha)
            assert (low[k], high[k]) == pytest.approx(want, abs=1e-12), (k, n)


@pytest.mark.parametrize("p", [0.03, 0.3, 0.5], ids=["p03", "p30", "p50"])
def test_clopper_pearson_covers_the_true_proportion(p):
    # 4000 simulated experiments: the standard error of a coverage near 0.95 is sqrt(.95·.05/4000) ≈ 0.0034,
    # so "≥ 0.95 − 0.014" is 4 standard errors of slack (Clopper–Pearson is conservative: true coverage ≥ 0.95).
    rng = np.random.default_rng(7)
    n, reps = 40, 4000
    ks = rng.binomial(n, p, size=reps)
    intervals = {k: audit.clopper_pearson(int(k), n) for k in np.unique(ks)}
    covered = np.mean([intervals[k][0] <= p <= intervals[k][1] for k in ks])
    assert covered >= 0.95 - 0.014


# ---------------------------------------------------------------- from rates and counts to ε


def gaussian_epsilon(mu, delta):
    """The exact ε of the Gaussian mechanism N(0,1) vs N(μ,1) at δ (Balle & Wang 2018's δ(ε))."""
    Phi = scipy.stats.norm.cdf
    delta_of = lambda e: Phi(-e / mu + mu / 2) - math.exp(e) * Phi(-e / mu - mu / 2)
    return brentq(lambda e: delta_of(e) - delta, 0, 100)


def test_epsilon_from_rates_is_the_tightest_epsilon_allowed():
    for tpr, fpr in [(0.5, 0.1), (0.9, 0.3), (0.99, 0.5), (0.2, 0.01)]:
        eps = audit.epsilon_from_rates(tpr, fpr, delta=DELTA)
        e = math.exp(eps)
        # both DP inequalities hold at ε (one with equality), and one fails just below it
        assert tpr <= e * fpr + DELTA + 1e-12 and 1 - fpr <= e * (1 - tpr) + DELTA + 1e-12
        e = math.exp(eps - 1e-6)
        assert tpr > e * fpr + DELTA or 1 - fpr > e * (1 - tpr) + DELTA


def test_epsilon_lower_bound_approaches_the_gaussian_mechanisms_curve_from_below():
    # N(0,1) without the canary, N(μ,1) with it; the test "score > τ" has TPR = Φ(μ − τ), FPR = Φ(−τ)
    mu, tau = 2.0, 3.0
    tpr, fpr = scipy.stats.norm.sf(tau - mu), scipy.stats.norm.sf(tau)
    at_rates = audit.epsilon_from_rates(tpr, fpr, delta=DELTA)
    true_epsilon = gaussian_epsilon(mu, DELTA)
    assert at_rates <= true_epsilon  # one threshold of the optimal test never exceeds the mechanism's ε
    bounds = []
    for n in [10**3, 10**4, 10**5, 10**7]:
        bounds.append(audit.epsilon_lower_bound(round(n * tpr), n, round(n * fpr), n, delta=DELTA))
    assert all(b <= at_rates + 1e-3 for b in bounds)  # counts at the exact rates: always below
    assert bounds == sorted(bounds) and bounds[0] < at_rates - 0.5  # more trials, tighter
    assert bounds[-1] == pytest.approx(at_rates, abs=0.03)  # 10⁷ trials: within 0.03 of the curve


def test_epsilon_lower_bound_is_zero_when_the_worlds_are_identical():
    for n, k in [(1000, 500), (1000, 3), (20, 20), (5000, 4999)]:
        assert audit.epsilon_lower_bound(k, n, k, n, delta=DELTA) == 0.0
    rng = np.random.default_rng(3)
    for _ in range(5):  # two draws of the same distribution: nothing to find (fixed seed)
        bound = audit.audit_scores(rng.normal(size=2000), rng.normal(size=2000), delta=DELTA)
        assert bound.epsilon == 0.0


def test_delta_zero_audits_pure_dp_everywhere():
    # δ = 0 (pure DP) is accepted by every function; a smaller δ can only prove more
    assert audit.epsilon_from_rates(0.5, 0.1, delta=0.0) == pytest.approx(math.log(5))
    low, high = audit.clopper_pearson(990, 1000)[0], audit.clopper_pearson(10, 1000)[1]
    want = max(math.log(low / high), math.log((1 - high) / (1 - low)))
    assert audit.epsilon_lower_bound(990, 1000, 10, 1000, delta=0.0) == pytest.approx(want, rel=1e-12)
    assert audit.epsilon_lower_bound(990, 1000, 10, 1000, delta=0.0) > \
        audit.epsilon_lower_bound(990, 1000, 10, 1000, delta=0.01)
    p = 0.025 ** (1 / 1000)
    assert audit.max_provable_epsilon(1000, delta=0.0) == pytest.approx(math.log(p / (1 - p)), rel=1e-9)
    rng = np.random.default_rng(4)
    s_in, s_out = rng.normal(3, 1, 1000), rng.normal(0, 1, 1000)
    bound = audit.audit_scores(s_in, s_out, delta=0.0)
    assert bound.epsilon == audit.epsilon_lower_bound(bound.true_positives, 500, bound.false_positives, 500,
                                                      delta=0.0) > 0
    assert audit.one_run_p_value(100, 10, 10, epsilon=1.0, delta=0.0) == pytest.approx(
        scipy.stats.binom.sf(9, 10, 1 / (1 + math.exp(-1.0))))
    assert audit.one_run_epsilon_lower_bound(1000, 100, 90, delta=0.0) >= \
        audit.one_run_epsilon_lower_bound(1000, 100, 90, delta=1e-5)
    X, y = torch.rand(20, 4, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 3
    result = audit.one_run_audit(X, y, num_canaries=200, guesses_in=20, noise_multiplier=1.0, max_grad_norm=1.0,
                                 sample_rate=0.5, steps=5, lr=0.1, delta=0.0, clip=False)
    assert result.epsilon == audit.one_run_epsilon_lower_bound(200, 20, result.correct, delta=0.0) > 1


def test_max_provable_epsilon_is_all_correct_guesses_and_grows_like_log_trials():
    for k in [10, 100, 1000, 10000]:
        p = 0.025 ** (1 / k)  # one-sided α/2 Clopper–Pearson bound for k/k
        assert audit.max_provable_epsilon(k, delta=DELTA) == pytest.approx(math.log((p - DELTA) / (1 - p)), rel=1e-9)
    assert audit.max_provable_epsilon(100, delta=DELTA) < 4 < audit.max_provable_epsilon(1000, delta=DELTA)


# ---------------------------------------------------------------- the honest threshold


def test_audit_scores_picks_the_threshold_on_the_first_half_and_counts_on_the_second():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(2.0, 1, 1000), rng.normal(0.0, 1, 1000)
    bound = audit.audit_scores(s_in, s_out, delta=DELTA)
    # the counts are those of the evaluation halves at the reported threshold
    assert bound.positives == 500 and bound.negatives == 500
    assert bound.true_positives == int((s_in[500:] > bound.threshold).sum())
    assert bound.false_positives == int((s_out[500:] > bound.threshold).sum())
    assert bound.epsilon == audit.epsilon_lower_bound(bound.true_positives, 500, bound.false_positives, 500,
                                                      delta=DELTA)
    # the evaluation halves do not influence the threshold: replace them, the threshold stays
    s_in2, s_out2 = s_in.copy(), s_out.copy()
    s_in2[500:], s_out2[500:] = rng.normal(5.0, 1, 500), rng.normal(-3.0, 1, 500)
    assert audit.audit_scores(s_in2, s_out2, delta=DELTA).threshold == bound.threshold
    # ... while changing the calibration halves does move it
    s_in3 = s_in.copy()
    s_in3[:500] = rng.normal(4.0, 1, 500)
    assert audit.audit_scores(s_in3, s_out, delta=DELTA).threshold != bound.threshold


def test_the_bound_carries_the_counted_halves_and_their_roc():
    # AuditBound.counted_in / counted_out are the evaluation halves: the counts follow from them, and
    # membership.roc_curve on them is the attack's ROC on the counted runs (what notebook 10 draws)
    rng = np.random.default_rng(3)
    s_in, s_out = rng.normal(1.0, 1, 801), rng.normal(0.0, 1, 600)  # odd length: the counted half is the larger
    bound = audit.audit_scores(s_in, s_out, delta=DELTA)
    assert np.array_equal(bound.counted_in, s_in[400:]) and np.array_equal(bound.counted_out, s_out[300:])
    assert bound.positives == len(bound.counted_in) == 401 and bound.negatives == len(bound.counted_out) == 300
    assert bound.true_positives == int((bound.counted_in > bound.threshold).sum())
    assert bound.false_positives == int((bound.counted_out > bound.threshold).sum())
    fpr, tpr, thresholds = membership.roc_curve(bound.counted_in, bound.counted_out)
    # the audit's point (rule "> threshold") is on that ROC (rule "≥ t"): at the next score above the threshold
    above = thresholds[thresholds > bound.threshold].min()
    k = int(np.flatnonzero(thresholds == above)[0])
    assert (fpr[k], tpr[k]) == pytest.approx((bound.fpr, bound.tpr))
    # equal bounds compare equal (the arrays are left out of == and of the repr: no ambiguous array truth)
    assert audit.audit_scores(s_in.copy(), s_out.copy(), delta=DELTA) == bound
    assert "counted_in" not in repr(bound)
    # copies, not views of the caller's arrays: changing the scores afterwards leaves the bound alone
    s_in[400:] = 0.0
    assert not np.array_equal(bound.counted_in, s_in[400:])


def test_a_score_equal_to_the_threshold_is_guessed_out():
    # the test is "score > threshold": with whole-number scores many evaluation runs sit exactly at the
    # threshold, and they count as "out" in both worlds
    rng = np.random.default_rng(2)
    s_in, s_out = rng.poisson(6.0, 2000).astype(float), rng.poisson(2.0, 2000).astype(float)
    bound = audit.audit_scores(s_in, s_out, delta=DELTA)
    assert (s_in[1000:] == bound.threshold).sum() > 50  # many ties: the rule matters
    assert bound.true_positives == int((s_in[1000:] > bound.threshold).sum())
    assert bound.false_positives == int((s_out[1000:] > bound.threshold).sum())


def test_the_threshold_chosen_on_the_calibration_half_is_the_best_one_there():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(1.5, 1, 600), rng.normal(0.0, 1, 600)
    bound = audit.audit_scores(s_in, s_out, delta=DELTA)
    cal = lambda t: audit.epsilon_lower_bound(int((s_in[:300] > t).sum()), 300, int((s_out[:300] > t).sum()), 300,
                                              delta=DELTA)
    best = cal(bound.threshold)
    assert all(cal(t) <= best + 1e-12 for t in np.unique(np.concatenate([s_in[:300], s_out[:300]])))


# ---------------------------------------------------------------- the game: DP-SGD with a canary


@pytest.fixture(scope="module")
def digits():
    d = data.load_digits()
    return d.X_train[:32], d.y_train[:32]


GAME = dict(sample_rate=0.2, steps=10, lr=0.5, max_grad_norm=1.0, canary_pixel=0)


def test_the_canary_weight_moves_by_the_clipped_canary_and_the_noise_only(digits):
    X, y = digits
    sigma = 1.5
    game = audit.canary_game(X, y, trials=2000, noise_multiplier=sigma, seed=0, **GAME)
    out, inn = game.updates_out.flatten(), game.updates_in.flatten()
    # 20,000 draws each: standard error of a mean is σ/√20000 ≈ 0.011; 5 standard errors of slack
    assert abs(float(out.mean())) < 5 * sigma / math.sqrt(out.numel())
    assert float(out.std()) == pytest.approx(sigma, rel=0.03)  # std's relative s.e. is 1/√(2N) = 0.005
    # with the canary: a Bernoulli(q) step of one clipped unit (canary norm 10 C clipped to C)
    assert float(inn.mean()) == pytest.approx(0.2, abs=5 * sigma / math.sqrt(inn.numel()))
    bug = audit.canary_game(X, y, trials=2000, noise_multiplier=sigma, clip=False, seed=0, **GAME)
    assert float(bug.updates_in.mean()) == pytest.approx(0.2 * 10, abs=5 * 3.2 / math.sqrt(inn.numel()))


@pytest.mark.parametrize("max_grad_norm", [0.5, 3.0], ids=["C05", "C3"])
def test_the_noise_is_sigma_times_the_clip_norm(digits, max_grad_norm):
    # updates are in units of C: noise N(0, (σC)²) is std σ in those units whatever C is (noise of std σ
    # instead of σC would show as σ/C: 2σ at C = 0.5, σ/3 at C = 3). The canary step is still one unit.
    X, y = digits
    sigma = 1.5
    game = audit.canary_game(X, y, trials=2000, noise_multiplier=sigma, seed=1,
                             **{**GAME, "max_grad_norm": max_grad_norm})
    out, inn = game.updates_out.flatten(), game.updates_in.flatten()
    assert float(out.std()) == pytest.approx(sigma, rel=0.03)  # relative s.e. of a std: 1/√(2·20000) = 0.005
    assert float(inn.mean()) == pytest.approx(0.2, abs=5 * sigma / math.sqrt(inn.numel()))


def every_step_score_by_hand(u, q, sigma, shift):
    """Σ_t [log((1 − q)·φ(u_t; 0, σ) + q·φ(u_t; shift, σ)) − log φ(u_t; 0, σ)], written with scipy."""
    u = np.asarray(u, dtype=float)
    inside = (1 - q) * scipy.stats.norm.pdf(u, 0, sigma) + q * scipy.stats.norm.pdf(u, shift, sigma)
    return (np.log(inside) - scipy.stats.norm.logpdf(u, 0, sigma)).sum(-1)


@pytest.mark.parametrize("q, sigma, shift", [(0.2, 1.5, 1.0), (0.05, 0.8, 1.0), (0.5, 2.0, 0.3), (1.0, 1.0, 1.0)],
                         ids=["q20", "q05", "small_canary", "q100"])
def test_the_every_step_score_is_the_likelihood_ratio(q, sigma, shift):
    u = torch.from_numpy(np.random.default_rng(6).normal(0.3, sigma, size=(50, 10)))
    scores = audit._scores(u, q, sigma, shift)
    assert np.allclose(scores["every_step"].numpy(), every_step_score_by_hand(u.numpy(), q, sigma, shift),
                       rtol=1e-9, atol=1e-9)
    assert np.allclose(scores["final"].numpy(), u.numpy().sum(-1))


def test_a_canary_smaller_than_the_clip_norm_is_scored_with_its_own_step(digits):
    # canary norm 0.3 C is not clipped: it moves its weight by 0.3 units, and the score uses that step
    X, y = digits
    game = audit.canary_game(X, y, trials=1000, noise_multiplier=0.5, canary_norm=0.3, seed=2, **GAME)
    assert float(game.updates_in.mean()) == pytest.approx(0.2 * 0.3, abs=5 * 0.5 / math.sqrt(game.updates_in.numel()))
    for world, updates in [(0, game.updates_in), (1, game.updates_out)]:
        want = every_step_score_by_hand(updates.double().numpy(), 0.2, 0.5, 0.3)
        assert np.allclose(game.scores["every_step"][world].numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("max_grad_norm, clip", [(0.05, True), (1.0, True), (1e9, False)],
                         ids=["clipping_active", "clipping_loose", "no_clipping"])
def test_the_games_training_is_dp_sgd_as_the_course_runs_it(digits, max_grad_norm, clip):
    # The vectorised runs equal dp.dp_sgd_step (the course's DP-SGD) on the same Poisson batches. Noise is
    # switched off (std 0) so the two can be compared exactly; the noise is tested above. Clipping off is
    # compared with a clip norm so large that nothing is clipped.
    X, y = digits
    q, steps, lr, runs = 0.3, 6, 0.5, 3
    included = torch.zeros(runs, 1, dtype=torch.bool)
    _, b_expected, W, b = audit._dp_sgd_with_canaries(
        X, y, included, [0], [0], num_classes=10, noise_multiplier=0.0, max_grad_norm=max_grad_norm,
        sample_rate=q, steps=steps, lr=lr, canary_norm=1.0, clip=clip, generator=torch.Generator().manual_seed(5))
    assert b_expected == pytest.approx(q * len(X))
    replay = torch.Generator().manual_seed(5)  # the same draws, in the same order
    batches = []
    for _ in range(steps):
        batches.append((torch.rand(runs, len(X), generator=replay) < q))
        torch.rand(runs, 1, generator=replay)
        torch.normal(0.0, 0.0, size=(runs, 10, X.shape[1]), generator=replay)
        torch.normal(0.0, 0.0, size=(runs, 10), generator=replay)
    for r in range(runs):
        model = torch.nn.Linear(X.shape[1], 10)
        torch.nn.init.zeros_(model.weight), torch.nn.init.zeros_(model.bias)
        for batch in batches:
            idx = batch[r].nonzero().reshape(-1)
            dp.dp_sgd_step(model, X[idx], y[idx], max_grad_norm=max_grad_norm, noise_multiplier=0.0,
                           expected_batch_size=q * len(X), lr=lr, generator=torch.Generator(), method="vmap")
        assert torch.allclose(W[r], model.weight.detach(), atol=1e-5), r
        assert torch.allclose(b[r], model.bias.detach(), atol=1e-5), r


def test_canary_game_is_reproducible_and_refuses_a_pixel_real_data_touch(digits):
    X, y = digits
    a = audit.canary_game(X, y, trials=10, noise_multiplier=1.0, seed=3, **GAME)
    b = audit.canary_game(X, y, trials=10, noise_multiplier=1.0, seed=3, **GAME)
    assert torch.equal(a.updates_in, b.updates_in) and torch.equal(a.scores["final"][1], b.scores["final"][1])
    with pytest.raises(ValueError, match="canary_pixel"):
        audit.canary_game(X, y, trials=10, noise_multiplier=1.0, **{**GAME, "canary_pixel": 20})


@pytest.mark.parametrize("claimed", [1.0, 2.0, 4.0], ids=["eps1", "eps2", "eps4"])
def test_audit_never_exceeds_the_claimed_epsilon_of_correct_dp_sgd(digits, claimed):
    X, y = digits
    sigma = dp.noise_multiplier_for(target_epsilon=claimed, sample_rate=GAME["sample_rate"], steps=GAME["steps"],
                                    delta=DELTA)
    for seed in range(3):
        game = audit.canary_game(X, y, trials=1000, noise_multiplier=sigma, seed=seed, **GAME)
        for adversary in audit.ADVERSARIES:
            bound = audit.audit_scores(*game.scores[adversary], delta=DELTA)
            assert bound.epsilon <= claimed, (seed, adversary, bound)


def test_audit_catches_dp_sgd_with_clipping_switched_off(digits):
    X, y = digits
    claimed = 1.0
    sigma = dp.noise_multiplier_for(target_epsilon=claimed, sample_rate=GAME["sample_rate"], steps=GAME["steps"],
                                    delta=DELTA)
    for seed in [0, 1]:
        game = audit.canary_game(X, y, trials=1000, noise_multiplier=sigma, clip=False, seed=seed, **GAME)
        for adversary in audit.ADVERSARIES:
            bound = audit.audit_scores(*game.scores[adversary], delta=DELTA)
            assert bound.epsilon > 3 * claimed, (seed, adversary, bound)
    # the same game with clipping on stays below the claim
    game = audit.canary_game(X, y, trials=1000, noise_multiplier=sigma, seed=0, **GAME)
    assert audit.audit_scores(*game.scores["every_step"], delta=DELTA).epsilon <= claimed


def test_with_one_full_batch_step_both_adversaries_see_the_same_thing(digits):
    # T = 1, q = 1: the final model is the one update, and the likelihood ratio is increasing in it,
    # so the two scores order the runs alike and the audits agree exactly
    X, y = digits
    game = audit.canary_game(X, y, trials=500, noise_multiplier=1.0, seed=0,
                             **{**GAME, "sample_rate": 1.0, "steps": 1})
    for world in (0, 1):
        final, every = game.scores["final"][world], game.scores["every_step"][world]
        assert torch.equal(torch.argsort(final), torch.argsort(every))
    final = audit.audit_scores(*game.scores["final"], delta=DELTA)
    every = audit.audit_scores(*game.scores["every_step"], delta=DELTA)
    assert (final.true_positives, final.false_positives) == (every.true_positives, every.false_positives)
    assert final.epsilon == every.epsilon > 0


# ---------------------------------------------------------------- one training run (Steinke et al. 2023)


def p_value_by_the_theorem(m, r, v, epsilon, delta):
    """Steinke, Nasr & Jagielski 2023's bound written as a plain loop (an independent implementation)."""
    p = 1 / (1 + math.exp(-epsilon))
    tail = scipy.stats.binom.sf(v - 1, r, p)
    best, mass = 0.0, 0.0
    for i in range(1, v + 1):
        mass += scipy.stats.binom.pmf(v - i, r, p)
        best = max(best, mass / i)
    return min(tail + 2 * m * delta * best, 1.0)


def test_one_run_p_value_is_the_theorems_bound():
    for m, r, v, eps, delta in [(1000, 100, 90, 1.0, 1e-5), (1000, 100, 60, 0.5, 1e-5), (500, 500, 400, 2.0, 1e-6),
                                (100, 10, 10, 3.0, 0.0), (1000, 200, 0, 1.0, 1e-5)]:
        assert audit.one_run_p_value(m, r, v, epsilon=eps, delta=delta) == pytest.approx(
            p_value_by_the_theorem(m, r, v, eps, delta), rel=1e-9, abs=1e-15)


def test_one_run_epsilon_lower_bound_is_where_the_p_value_crosses_alpha():
    for m, r, v in [(1000, 100, 90), (1000, 200, 150), (1000, 50, 50)]:
        eps = audit.one_run_epsilon_lower_bound(m, r, v, delta=DELTA)
        assert p_value_by_the_theorem(m, r, v, eps, DELTA) < 0.05 <= p_value_by_the_theorem(m, r, v, eps + 1e-5, DELTA)
    assert audit.one_run_epsilon_lower_bound(1000, 100, 50, delta=DELTA) == 0.0  # chance level: nothing refuted
    # more right guesses, larger bound
    bounds = [audit.one_run_epsilon_lower_bound(1000, 100, v, delta=DELTA) for v in (70, 80, 90, 100)]
    assert bounds == sorted(bounds) and bounds[0] > 0


ONE_RUN = dict(num_canaries=1000, guesses_in=100, sample_rate=0.2, steps=10, lr=0.5, max_grad_norm=1.0, delta=DELTA)


@pytest.mark.parametrize("claimed", [1.0, 4.0, 8.0], ids=["eps1", "eps4", "eps8"])
def test_one_run_audit_stays_below_the_claim_of_correct_dp_sgd(digits, claimed):
    X, y = digits
    sigma = dp.noise_multiplier_for(target_epsilon=claimed, sample_rate=0.2, steps=10, delta=DELTA)
    for seed in range(5):
        for adversary in audit.ADVERSARIES:
            result = audit.one_run_audit(X, y, noise_multiplier=sigma, adversary=adversary, seed=seed, **ONE_RUN)
            assert result.epsilon <= claimed, (seed, adversary, result.correct)


def test_one_run_audit_catches_the_planted_bug(digits):
    X, y = digits
    sigma = dp.noise_multiplier_for(target_epsilon=1.0, sample_rate=0.2, steps=10, delta=DELTA)
    for seed in range(3):
        result = audit.one_run_audit(X, y, noise_multiplier=sigma, clip=False, seed=seed, **ONE_RUN)
        assert result.epsilon > 3.0 and result.correct == result.guesses == 100
        # about half of the canaries are in (each with probability ½): 5 standard deviations of Binomial(1000, ½)
        assert abs(int(result.included.sum()) - 500) < 5 * math.sqrt(250)


def test_one_run_audit_counts_guesses_out_among_the_lowest_scores(digits):
    # guesses "in" for the 100 highest scores and "out" for the 100 lowest, counted by hand
    X, y = digits
    sigma = dp.noise_multiplier_for(target_epsilon=1.0, sample_rate=0.2, steps=10, delta=DELTA)
    for clip in (False, True):
        result = audit.one_run_audit(X, y, noise_multiplier=sigma, clip=clip, seed=0,
                                     **{**ONE_RUN, "guesses_out": 100})
        order = np.argsort(-result.scores.numpy(), kind="stable")
        inside = result.included.numpy()
        want = int(inside[order[:100]].sum()) + int((~inside[order[-100:]]).sum())
        assert result.guesses == 200 and result.correct == want, clip
        assert result.epsilon == audit.one_run_epsilon_lower_bound(1000, 200, want, delta=DELTA)
        if not clip:  # the bug: the top 100 are all in; the bottom 100 mostly out (an in-canary never drawn in
            # 10 steps, probability 0.8¹⁰ ≈ 0.11, looks out), where the next 100 from the top would be mostly in
            assert int(inside[order[:100]].sum()) == 100 and int((~inside[order[-100:]]).sum()) > 75


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("call, name", [
    (lambda: audit.clopper_pearson(5, 0), "trials"),
    (lambda: audit.clopper_pearson(11, 10), "successes"),
    (lambda: audit.clopper_pearson(-1, 10), "successes"),
    (lambda: audit.clopper_pearson(1.5, 10), "successes"),
    (lambda: audit.clopper_pearson(1, 10, alpha=0.0), "alpha"),
    (lambda: audit.clopper_pearson(1, 10, alpha=float("nan")), "alpha"),
    (lambda: audit.epsilon_from_rates(1.2, 0.1, delta=DELTA), "tpr"),
    (lambda: audit.epsilon_from_rates(0.5, float("nan"), delta=DELTA), "fpr"),
    (lambda: audit.epsilon_lower_bound(5, 10, 11, 10, delta=DELTA), "false_positives"),
    (lambda: audit.epsilon_lower_bound(5, 0, 1, 10, delta=DELTA), "positives"),
    (lambda: audit.epsilon_lower_bound(5, 10, 1, 10, delta=1.0), "delta"),
    (lambda: audit.epsilon_lower_bound(5, 10, 1, 10, delta=-0.1), "delta"),
    (lambda: audit.audit_scores([1.0, 2.0], [0.0, 1.0], delta=-1e-9), "delta"),
    (lambda: audit.max_provable_epsilon(10, delta=1.0), "delta"),
    (lambda: audit.max_provable_epsilon(0, delta=DELTA), "trials"),
    (lambda: audit.audit_scores([1.0], [0.0, 1.0], delta=DELTA), "scores_in"),
    (lambda: audit.audit_scores([1.0, 2.0], [0.0, float("inf")], delta=DELTA), "scores_out"),
    (lambda: audit.one_run_p_value(10, 11, 5, epsilon=1.0, delta=DELTA), "guesses"),
    (lambda: audit.one_run_p_value(10, 5, 6, epsilon=1.0, delta=DELTA), "correct"),
    (lambda: audit.one_run_p_value(10, 5, 3, epsilon=-1.0, delta=DELTA), "epsilon"),
    (lambda: audit.one_run_epsilon_lower_bound(0, 0, 0, delta=DELTA), "num_canaries"),
    (lambda: audit.one_run_epsilon_lower_bound(10, 5, 3, delta=1.5), "delta"),
    (lambda: audit.one_run_epsilon_lower_bound(10, 5, 3, delta=DELTA, alpha=1.0), "alpha"),
], ids=[f"bad{i}" for i in range(23)])
def test_bad_inputs_raise_value_errors_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("kwargs, name", [
    (dict(trials=1), "trials"),
    (dict(noise_multiplier=0.0), "noise_multiplier"),
    (dict(max_grad_norm=-1.0), "max_grad_norm"),
    (dict(sample_rate=1.5), "sample_rate"),
    (dict(steps=0), "steps"),
    (dict(lr=float("nan")), "lr"),
    (dict(canary_pixel=64), "canary_pixel"),
    (dict(canary_norm=0.0), "canary_norm"),
    (dict(canary_norm=1e300), "canary_norm"),
    (dict(clip="no"), "clip"),
    (dict(canary_class=10), "canary_class"),
    (dict(canary_class=50), "canary_class"),
    (dict(noise_multiplier=1e300), "noise_multiplier"),
    (dict(noise_multiplier=1e-200), "noise_multiplier"),
], ids=["trials", "sigma", "clip_norm", "q", "steps", "lr", "pixel", "canary_norm", "canary_norm_huge", "clip",
        "class10", "class50", "sigma_huge", "sigma_tiny"])
def test_canary_game_rejects_bad_arguments(digits, kwargs, name):
    X, y = digits
    args = dict(trials=10, noise_multiplier=1.0, **GAME)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        audit.canary_game(X, y, **args)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_canaries=0), "num_canaries"),
    (dict(guesses_in=2000), "guesses_in"),
    (dict(guesses_in=900, guesses_out=200), "guesses_out"),
    (dict(guesses_in=0), "guesses_in"),
    (dict(adversary="oracle"), "adversary"),
    (dict(delta=-0.1), "delta"),
    (dict(delta=1.0), "delta"),
    (dict(noise_multiplier=float("inf")), "noise_multiplier"),
    (dict(noise_multiplier=1e300), "noise_multiplier"),
    (dict(noise_multiplier=1e-200), "noise_multiplier"),
], ids=["m", "k_in", "k_out", "no_guess", "adversary", "delta_neg", "delta_one", "sigma", "sigma_huge", "sigma_tiny"])
def test_one_run_audit_rejects_bad_arguments(digits, kwargs, name):
    X, y = digits
    args = dict(noise_multiplier=1.0, **ONE_RUN)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        audit.one_run_audit(X, y, **args)


@pytest.mark.parametrize("make, name", [
    (lambda X, y: (X.numpy(), y), "X and y must be torch tensors"),
    (lambda X, y: (X.reshape(len(X), 8, 8), y), r"X must have shape \(n, d\)"),
    (lambda X, y: (X[:0], y[:0]), "X must hold at least one example"),
    (lambda X, y: (X[:5], y), "one row per label"),
    (lambda X, y: (torch.where(X == X.max(), float("nan"), X), y), "X must hold finite"),
    (lambda X, y: ((X * 16).long(), y), "X must hold finite floating-point"),
    (lambda X, y: (X, y.float()), "y must hold integer class labels"),
    (lambda X, y: (X, y - 1), "y must hold class labels ≥ 0"),
], ids=["numpy", "images", "empty", "lengths", "nan", "int_X", "float_y", "negative_y"])
def test_the_audits_reject_a_bad_dataset_naming_it(digits, make, name):
    X, y = make(*digits)
    with pytest.raises(ValueError, match=name):
        audit.canary_game(X, y, trials=10, noise_multiplier=1.0, **GAME)
    with pytest.raises(ValueError, match=name):
        audit.one_run_audit(X, y, noise_multiplier=1.0, **ONE_RUN)


def test_a_float64_dataset_is_audited_as_float32(digits):
    # the game computes in float32: float64 rows give the same scores as their float32 copy
    X, y = digits
    a = audit.canary_game(X, y, trials=10, noise_multiplier=1.0, seed=5, **GAME)
    b = audit.canary_game(X.double(), y, trials=10, noise_multiplier=1.0, seed=5, **GAME)
    assert torch.equal(a.updates_in, b.updates_in) and torch.equal(a.updates_out, b.updates_out)


def test_every_name_the_docstrings_cite_as_data_is_public():
    # a docstring that sends the reader to :data:`SIGMA_RANGE` must name something `from audit import *` gives
    import inspect
    import re

    cited = set(re.findall(r":data:`(\w+)`", inspect.getsource(audit)))
    assert cited and cited <= set(audit.__all__), cited - set(audit.__all__)
    assert all(hasattr(audit, name) for name in audit.__all__)
