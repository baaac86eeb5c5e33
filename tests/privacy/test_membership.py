"""Membership inference: ROC/AUC against scikit-learn, the DP bound (in/out and replace-one), and the attack
under local DP."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from dpfl_course import data, dp, fl
from dpfl_course.privacy import membership as mi


def membership_ok(members, nonmembers, epsilon, delta):
    # members against held-out examples on one model: the replace-one bound (review 09, finding 1)
    return mi.roc_within_bound(members, nonmembers, epsilon=epsilon, delta=delta, neighbours="replace_one",
                               confidence=0.999)


def sk_auc(members, nonmembers):
    return roc_auc_score(np.r_[np.ones(len(members)), np.zeros(len(nonmembers))], np.r_[members, nonmembers])


@pytest.mark.parametrize("seed", range(5), ids=[f"seed{s}" for s in range(5)])
def test_roc_auc_equals_sklearn_on_random_and_tied_scores(seed):
    rng = np.random.default_rng(seed)
    members, nonmembers = rng.normal(0.3, 1, 37), rng.normal(0, 1, 53)
    assert mi.roc_auc(members, nonmembers) == pytest.approx(sk_auc(members, nonmembers), abs=1e-12)
    tied_m, tied_n = rng.integers(0, 4, 40).astype(float), rng.integers(0, 4, 25).astype(float)  # many ties
    assert mi.roc_auc(tied_m, tied_n) == pytest.approx(sk_auc(tied_m, tied_n), abs=1e-12)
    # the ROC points are scikit-learn's (which drops collinear points: compare on its thresholds)
    fpr, tpr, thresholds = mi.roc_curve(tied_m, tied_n)
    sk_fpr, sk_tpr, _ = sk_roc_curve(np.r_[np.ones(40), np.zeros(25)], np.r_[tied_m, tied_n],
                                     drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(mi.roc_auc(tied_m, tied_n), abs=1e-12)


def test_auc_extremes_and_advantage():
    assert mi.roc_auc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert mi.roc_auc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert mi.roc_auc([1.0, 1.0, 1.0], [1.0, 1.0]) == 0.5
    assert mi.advantage([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert mi.advantage([1.0, 1.0], [1.0]) == 0.0
    # lower loss = member: the scores are −loss
    assert mi.roc_auc(mi.loss_scores([0.1, 0.2]), mi.loss_scores([1.0, 2.0])) == 1.0


def test_calibrated_scores_remove_the_difficulty_of_each_example():
    # Members have low loss *relative to* their difficulty; raw loss confuses hard members with
    # non-members, the calibrated score does not.
    difficulty = np.array([3.0, 3.1, 0.1, 0.2])  # the members happen to be hard digits
    members = np.array([True, True, False, False])
    losses = difficulty - 0.05 * members  # training lowers each member's loss a little
    raw = mi.loss_scores(losses)
    calibrated = mi.calibrated_scores(losses, [difficulty, difficulty])
    assert mi.roc_auc(raw[members], raw[~members]) == 0.0
    assert mi.roc_auc(calibrated[members], calibrated[~members]) == 1.0


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 4.0], ids=["eps0.1", "eps1", "eps4"])
@pytest.mark.parametrize("delta", [0.0, 1e-3], ids=["delta0", "delta1e-3"])
def test_dp_bound_matches_its_closed_forms(epsilon, delta):
    f = np.linspace(0, 1, 100_001)
    bound = mi.dp_tpr_bound(f, epsilon=epsilon, delta=delta)
    assert np.all(np.diff(bound) >= -1e-15) and bound[-1] == 1.0
    assert np.max(bound - f) == pytest.approx(mi.dp_max_advantage(epsilon=epsilon, delta=delta), abs=1e-5)
    assert np.trapezoid(bound, f) == pytest.approx(mi.dp_max_auc(epsilon=epsilon, delta=delta), abs=1e-8)
    # δ = 0: the advantage is tanh(ε/2) and the AUC e^ε/(e^ε + 1) (the corner of the bound)
    if delta == 0:
        assert mi.dp_max_advantage(epsilon=epsilon) == pytest.approx(math.tanh(epsilon / 2))
        assert mi.dp_max_auc(epsilon=epsilon) == pytest.approx(math.exp(epsilon) / (math.exp(epsilon) + 1))


def test_loss_attack_under_local_dp_respects_the_bound():
    # A SMOKE TEST of the pipeline (local DP training → losses → ROC → bound), not a test of DP:
    # the loss attack is so weak here that its ROC passes even without any noise, and even
    # against the bound at ε = 0.1 (review 09, finding 3). The tests that can catch a wrong bound
    # or a wrong check are the randomized-response and the counterexample tests below.
    # Record-level DP-SGD at every client (fl.LocalDP) at ε = 1; members against held-out digits
    # on one model is a replace-one comparison, so every threshold's (FPR, TPR) must lie under the
    # (2ε, (1 + e^ε)δ) curve, up to sampling error. Tolerance: the DKW inequality bounds the
    # distance between an empirical and a true CDF, uniformly over thresholds, by
    # sqrt(ln(2/α)/(2n)) with probability 1 − α for independent scores (α = 1e-3 on each rate);
    # scores from one model are not independent, so this is an allowance, not a proof.
    digits = data.load_digits()
    n, num_clients, delta, epsilon = 200, 5, 1e-5, 1.0
    perm = torch.randperm(len(digits.X_train), generator=torch.Generator().manual_seed(0))
    X, y = digits.X_train[perm[:n]], digits.y_train[perm[:n]]
    clients = fl.make_client_data(X, y, data.partition_iid(y, num_clients, seed=0))
    config = dict(local_epochs=2, batch_size=10, lr=0.5)
    num_rounds = 10
    q, steps = fl.local_dp_plan(n // num_clients, local_epochs=2, batch_size=10)
    sigma = dp.noise_multiplier_for(target_epsilon=epsilon, sample_rate=q, steps=steps * num_rounds, delta=delta)
    strategy = fl.LocalDP(fl.FedAvg(**config), noise_multiplier=sigma, max_grad_norm=1.0, delta=delta)
    params, history = fl.run_federated(fl.MLP(64, 64, 10), clients, strategy, num_rounds=num_rounds)
    assert history.last("epsilon") <= epsilon * 1.001
    model = fl.MLP(64, 64, 10)
    fl.set_parameters(model, params)
    members = mi.loss_scores(mi.example_losses(model, X, y))
    nonmembers = mi.loss_scores(mi.example_losses(model, digits.X_test, digits.y_test))
    fpr, tpr, _ = mi.roc_curve(members, nonmembers)
    band_m = math.sqrt(math.log(2 / 1e-3) / (2 * len(members)))
    band_n = math.sqrt(math.log(2 / 1e-3) / (2 * len(nonmembers)))
    allowed = mi.dp_tpr_bound(np.minimum(1.0, fpr + band_n), epsilon=epsilon, delta=delta,
                              neighbours="replace_one") + band_m
    assert np.all(tpr <= allowed)
    assert membership_ok(members, nonmembers, epsilon, delta)
    assert mi.roc_auc(members, nonmembers) <= mi.dp_max_auc(epsilon=epsilon, delta=delta,
                                                            neighbours="replace_one") + band_m + band_n


def test_roc_within_bound_flags_an_attack_that_beats_the_bound():
    # Scores separated by 2 standard deviations: AUC ≈ 0.92, far above e^ε/(e^ε + 1) = 0.62 at ε = 0.5
    # (the margins at 400 + 400 scores are ≈ 0.1); a tiny shift stays within the bound.
    rng = np.random.default_rng(1)
    assert not mi.roc_within_bound(rng.normal(2, 1, 400), rng.normal(0, 1, 400), epsilon=0.5)
    assert mi.roc_within_bound(rng.normal(0.05, 1, 400), rng.normal(0, 1, 400), epsilon=0.5)
    assert mi.dkw_margin(200, confidence=0.999) == pytest.approx(math.sqrt(math.log(2000) / 400))


@pytest.mark.parametrize("call, name", [
    (lambda: mi.roc_auc([], [1.0]), "member_scores"),
    (lambda: mi.roc_auc([1.0], [math.nan]), "nonmember_scores"),
    (lambda: mi.roc_curve([[1.0]], [1.0]), "member_scores"),
    (lambda: mi.advantage([1.0], ["a"]), "nonmember_scores"),
    (lambda: mi.loss_scores([math.inf]), "losses"),
    (lambda: mi.calibrated_scores([1.0, 2.0], [[1.0]]), "reference_losses"),
    (lambda: mi.dp_tpr_bound(0.5, epsilon=0), "epsilon"),
    (lambda: mi.dp_tpr_bound(1.5, epsilon=1.0), "fpr"),
    (lambda: mi.dp_tpr_bound(0.5, epsilon=1.0, delta=1.0), "delta"),
    (lambda: mi.dp_max_auc(epsilon=math.inf), "epsilon"),
    (lambda: mi.dp_max_advantage(epsilon=1.0, delta=-0.1), "delta"),
    (lambda: mi.dkw_margin(0), "num_examples"),
    (lambda: mi.roc_within_bound([1.0], [0.0], epsilon=1.0, confidence=1.0), "confidence"),
    (lambda: mi.example_losses("model", torch.zeros(1, 2), torch.tensor([0])), "model"),
    (lambda: mi.example_losses(torch.nn.Linear(2, 2), torch.zeros(1, 2), torch.tensor([5])), "y"),
    # review 09, finding 6: these raised numpy / torch errors, or returned loss 0, before
    (lambda: mi.example_losses(torch.nn.Linear(2, 2), torch.zeros(1, 3), torch.tensor([0])), "X must have 2"),
    (lambda: mi.example_losses(torch.nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.float64), torch.tensor([0])),
     "X must have the model's dtype"),
    (lambda: mi.example_losses(torch.nn.Linear(2, 1), torch.zeros(1, 2), torch.tensor([0])), "model"),
    (lambda: mi.calibrated_scores([1.0, 2.0], [[1.0, 2.0], [1.0]]), "reference_losses"),
    (lambda: mi.calibrated_scores([1.0, 2.0], [["a", "b"]]), "reference_losses"),
    (lambda: mi.dp_tpr_bound("a", epsilon=1.0), "fpr"),
    (lambda: mi.dp_max_auc(epsilon=1.0, neighbours="swap"), "neighbours"),
    (lambda: mi.replace_one_guarantee(epsilon=-1.0), "epsilon"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_inputs_raise_value_errors_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0], ids=["eps0.5", "eps1", "eps2"])
@pytest.mark.parametrize("seed", range(3), ids=[f"seed{s}" for s in range(3)])
def test_roc_within_bound_is_tight_on_randomized_response(epsilon, seed):
    # Review 09, finding 3 (the reviewer's test). Randomized response is exactly ε-DP and meets
    # the bound with equality at FPR = 1/(e^ε + 1): its empirical ROC must pass at the true ε and
    # fail at ε/2 (a factor-2 accounting bug). n = 20,000 per side: the DKW margins are 0.014,
    # while ε → ε/2 lowers the bound at that corner by ≥ 0.05 (ε = 0.5) — more than 3 margins,
    # so the failing half is not luck. The scores are independent here, as DKW assumes.
    rng = np.random.default_rng(seed)
    n, p = 20_000, math.exp(epsilon) / (1 + math.exp(epsilon))
    members = (rng.random(n) < p).astype(float)
    nonmembers = (rng.random(n) < 1 - p).astype(float)
    assert mi.roc_within_bound(members, nonmembers, epsilon=epsilon)
    assert not mi.roc_within_bound(members, nonmembers, epsilon=epsilon / 2)


def test_member_against_held_out_needs_the_replace_one_bound():
    # Review 09, finding 1: the reviewer's counterexample, exact. Records: 5 equally likely values.
    # The training set is one record x; the mechanism outputs a set S (∅ or a singleton).
    #   M(∅):   each singleton with probability a, ∅ with 1 − 5a;
    #   M({x}): {x} with e·a, each other singleton with a/e, ∅ with e·(1 − 5a).
    # a = e / (4(e + 1)) makes the probabilities sum to 1. This is pure ε = 1 add/remove DP (checked
    # below), yet "member iff the candidate is in S", comparing the member x with a fresh record
    # x′ on the same output, beats the (ε, 0) region — and stays inside (2ε, (1 + e^ε)·0).
    e, k = math.e, 5
    a = e / (4 * (e + 1))
    empty = np.r_[np.full(k, a), 1 - 5 * a]  # outputs: {0}, ..., {4}, ∅
    with_x0 = np.r_[e * a, np.full(k - 1, a / e), e * (1 - 5 * a)]
    assert with_x0.sum() == pytest.approx(1.0) and empty.sum() == pytest.approx(1.0)
    ratios = with_x0 / empty  # every output's probability ratio (by symmetry, for every x)
    assert np.all(ratios <= e * (1 + 1e-12)) and np.all(ratios >= (1 - 1e-12) / e)  # ε = 1 add/remove
    tpr = with_x0[0]  # the member is in S
    fpr = with_x0[:k].mean()  # a fresh uniform record x′ is in S
    assert tpr == pytest.approx(0.497, abs=1e-3) and fpr == pytest.approx(0.153, abs=1e-3)
    assert tpr > mi.dp_tpr_bound(fpr, epsilon=1.0)  # the in/out region does not cover this test
    assert tpr <= mi.dp_tpr_bound(fpr, epsilon=1.0, neighbours="replace_one")
    # The complementary test ("member iff the candidate is NOT in S") obeys both halves as well.
    assert 1 - tpr <= mi.dp_tpr_bound(1 - fpr, epsilon=1.0, neighbours="replace_one")


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 4.0], ids=["eps0.1", "eps1", "eps4"])
@pytest.mark.parametrize("delta", [0.0, 1e-5], ids=["delta0", "delta1e-5"])
def test_replace_one_bounds_are_the_add_remove_ones_at_2eps(epsilon, delta):
    # Replacing a record = removing it and adding another: (2ε, (1 + e^ε)δ); δ = 0 gives tanh(ε)
    # for the advantage and e^{2ε}/(e^{2ε} + 1) for the AUC (1 − FPR ≤ e^{2ε}(1 − TPR) at the corner).
    eps2, delta2 = mi.replace_one_guarantee(epsilon=epsilon, delta=delta)
    assert eps2 == 2 * epsilon and delta2 == pytest.approx((1 + math.exp(epsilon)) * delta)
    f = np.linspace(0, 1, 1001)
    assert np.array_equal(mi.dp_tpr_bound(f, epsilon=epsilon, delta=delta, neighbours="replace_one"),
                          mi.dp_tpr_bound(f, epsilon=eps2, delta=delta2))
    assert mi.dp_max_auc(epsilon=epsilon, delta=delta, neighbours="replace_one") == \
        pytest.approx(mi.dp_max_auc(epsilon=eps2, delta=delta2))
    if delta == 0:
        assert mi.dp_max_advantage(epsilon=epsilon, neighbours="replace_one") == pytest.approx(math.tanh(epsilon))
        assert mi.dp_max_auc(epsilon=epsilon, neighbours="replace_one") == \
            pytest.approx(math.exp(2 * epsilon) / (math.exp(2 * epsilon) + 1))


def test_replace_one_bound_at_a_large_epsilon_is_no_bound():
    # (1 + e^ε)δ ≥ 1 (ε = 64, δ = 1e-5; or e^ε overflowing): no guarantee, the bound is 1 everywhere.
    assert mi.replace_one_guarantee(epsilon=64.0, delta=1e-5)[1] == 1.0
    assert mi.replace_one_guarantee(epsilon=1e6, delta=1e-5) == (2e6, 1.0)
    assert np.all(mi.dp_tpr_bound(np.array([0.0, 0.3, 1.0]), epsilon=64.0, delta=1e-5, neighbours="replace_one") == 1)
    assert mi.dp_max_auc(epsilon=64.0, delta=1e-5, neighbours="replace_one") == 1.0
    assert mi.dp_max_advantage(epsilon=1e6, delta=1e-5, neighbours="replace_one") == 1.0
    assert mi.roc_within_bound([3.0, 2.0], [0.0, 1.0], epsilon=64.0, delta=1e-5, neighbours="replace_one")
