"""Membership inference: was this example in the training data? Scores, ROC, AUC, and the DP bound.

The attacker holds the trained (federated) model and a candidate example. The **loss-threshold
attack** (Yeom et al. 2018) says "member" when the model's loss on the example is below a
threshold: training makes the loss small on the examples it saw. Its score is ``−loss``
(:func:`loss_scores`); sweeping the threshold gives a ROC curve (:func:`roc_curve`), summarised
by its area (:func:`roc_auc`, 0.5 = guessing) and by the membership advantage max(TPR − FPR)
(:func:`advantage`). A stronger attack calibrates each example's loss by its difficulty, the
mean loss of reference models trained without it (Watson et al. 2022; LiRA, Carlini et al. 2022,
fits a Gaussian per example instead): :func:`calibrated_scores`.

**What DP guarantees** (Kairouz et al. 2015). If training is (ε, δ)-DP for adding or removing one
record (the ε that :func:`dpfl_course.dp.epsilon` reports), any test that decides between training
*with* and *without* a record — the **in/out game**: the same data, the record added or not, the
model retrained (notebook 10 plays it) — has

    TPR ≤ e^ε · FPR + δ   and   1 − FPR ≤ e^ε · (1 − TPR) + δ,

i.e. TPR ≤ min(e^ε·FPR + δ, 1 − e^(−ε)·(1 − δ − FPR)) (:func:`dp_tpr_bound`). Hence the advantage
is at most (e^ε − 1 + 2δ)/(e^ε + 1) (:func:`dp_max_advantage`) and the AUC at most the area under
that curve (:func:`dp_max_auc`). The bound holds for every attack, weak or strong; an AUC near 0.5
for a weak attack, on the other hand, proves nothing.

**Members against held-out examples** on *one* trained model is a different experiment: a
**replace-one** comparison, where add/remove (ε, δ)-DP gives only (2ε, (1 + e^ε)δ)
(:func:`replace_one_guarantee`; pass ``neighbours="replace_one"`` to the bounds). Why: remove the
member x from the training set D (a factor e^ε and + δ); without x, x and a fresh held-out x′ from
the same distribution are exchangeable, so the test treats them alike; add x back, now a record
independent of x′ (another e^ε and + δ): TPR ≤ e^ε(e^ε·FPR + δ) + δ. The (ε, δ) region itself
can fail here: a pure ε = 1 mechanism exists whose member-vs-held-out test has TPR 0.497 at
FPR 0.153, above e·0.153 = 0.416 (``tests/privacy/test_membership.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from scipy.stats import rankdata

from dpfl_course._validate import check_delta, check_epsilon, check_finite, check_int, check_model_batch, check_scores

__all__ = ["example_losses", "loss_scores", "calibrated_scores", "roc_curve", "roc_auc", "advantage",
           "replace_one_guarantee", "dp_tpr_bound", "dp_max_advantage", "dp_max_auc", "dkw_margin",
           "roc_within_bound"]

#: The experiments a bound can be asked for: the in/out game (add or remove one record, the
#: guarantee as stated) and members against held-out examples on one model (replace one record).
_NEIGHBOURS = ("add_remove", "replace_one")


#: ε is capped at this exponent inside the bounds: e^700 is near the largest float, and the bound
#: is already 1 at every FPR above 1e-300.
_MAX_EXPONENT = 700.0


def example_losses(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Each example's cross-entropy loss under ``model`` (no gradient; eval mode), as a numpy array.

    >>> m = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = m.weight.zero_(), m.bias.zero_()
    >>> example_losses(m, torch.zeros(3, 2), torch.tensor([0, 1, 0])).round(4).tolist()  # log 2 each
    [0.6931, 0.6931, 0.6931]
    """
    _, X, y = check_model_batch(model, X, y)
    training = model.training
    try:
        with torch.no_grad():
            logits = model.eval()(X)
    finally:
        model.train(training)
    return nn.functional.cross_entropy(logits, y, reduction="none").double().numpy()


def loss_scores(losses) -> np.ndarray:
    """The loss-threshold attack's membership scores: ``−loss`` (higher means "more likely a member").

    >>> loss_scores([0.1, 2.0]).tolist()
    [-0.1, -2.0]
    """
    return -check_scores("losses", losses)


def calibrated_scores(losses, reference_losses) -> np.ndarray:
    """Difficulty-calibrated scores (Watson et al. 2022): mean reference loss − the target model's loss.

    ``reference_losses`` has one row per reference model trained *without* the candidates; an
    example that is hard for every model (high reference loss) is no longer mistaken for a
    non-member just because its loss is high.

    >>> calibrated_scores([0.1, 2.0], [[0.5, 2.0], [0.7, 2.2]]).round(6).tolist()
    [0.5, 0.1]
    """
    losses = check_scores("losses", losses)
    try:
        ref = np.asarray(reference_losses, dtype=float) if not isinstance(reference_losses, torch.Tensor) \
            else reference_losses.detach().double().cpu().numpy()
    except (TypeError, ValueError):  # ragged rows or text
        raise ValueError(f"reference_losses must be a finite (num_references ≥ 1, {len(losses)}) array of "
                         "numbers, one row per reference model") from None
    if ref.ndim != 2 or ref.shape[1] != len(losses) or ref.shape[0] == 0 or not np.isfinite(ref).all():
        raise ValueError(f"reference_losses must be a finite (num_references ≥ 1, {len(losses)}) array, "
                         f"got shape {ref.shape}")
    return ref.mean(axis=0) - losses


def roc_curve(member_scores, nonmember_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of the rule "member if score ≥ t", over every distinct threshold t.

    Returns:
        ``(fpr, tpr, thresholds)``, from (0, 0) (threshold +inf: nobody is called a member) to
        (1, 1), thresholds decreasing.

    >>> fpr, tpr, t = roc_curve([3.0, 2.0], [1.0, 2.0])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    members = check_scores("member_scores", member_scores)
    nonmembers = check_scores("nonmember_scores", nonmember_scores)
    thresholds = np.unique(np.concatenate([members, nonmembers]))[::-1]
    sorted_m, sorted_n = np.sort(members), np.sort(nonmembers)
    tpr = (len(members) - np.searchsorted(sorted_m, thresholds, side="left")) / len(members)
    fpr = (len(nonmembers) - np.searchsorted(sorted_n, thresholds, side="left")) / len(nonmembers)
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thresholds]


def roc_auc(member_scores, nonmember_scores) -> float:
    """Area under the ROC curve: P(a member scores above a non-member), ties counted ½ (Mann–Whitney).

    1 for scores that separate members from non-members, 0.5 for a coin flip (or identical scores).

    >>> roc_auc([3.0, 2.0], [1.0, 2.0])
    0.875
    """
    members = check_scores("member_scores", member_scores)
    nonmembers = check_scores("nonmember_scores", nonmember_scores)
    ranks = rankdata(np.concatenate([members, nonmembers]))  # ties get their average rank
    m, n = len(members), len(nonmembers)
    u = ranks[:m].sum() - m * (m + 1) / 2
    return float(u / (m * n))


def advantage(member_scores, nonmember_scores) -> float:
    """Membership advantage (Yeom et al. 2018): the best threshold's TPR − FPR, max over the ROC.

    >>> advantage([3.0, 2.0], [1.0, 2.0])
    0.5
    """
    fpr, tpr, _ = roc_curve(member_scores, nonmember_scores)
    return float(np.max(tpr - fpr))


def _check_neighbours(neighbours) -> str:
    if neighbours not in _NEIGHBOURS:
        raise ValueError(f"neighbours must be one of {_NEIGHBOURS}, got {neighbours!r}")
    return neighbours


def replace_one_guarantee(*, epsilon, delta=0.0) -> tuple[float, float]:
    """The guarantee for replacing one record implied by add/remove (ε, δ)-DP: (2ε, min(1, (1 + e^ε)·δ)).

    Replacing x by x′ is removing x, then adding x′: two add/remove steps, so
    P[M(D) ∈ S] ≤ e^ε·(e^ε·P[M(D′) ∈ S] + δ) + δ. This is the guarantee that covers comparing
    members with held-out examples on one trained model (see the module docstring). A δ of 1
    means no guarantee at all.

    >>> eps2, delta2 = replace_one_guarantee(epsilon=1.0, delta=1e-5)
    >>> eps2, round(delta2, 8)
    (2.0, 3.718e-05)
    """
    eps = check_epsilon(epsilon)
    d = check_delta(delta, allow_zero=True)
    return 2 * eps, min(1.0, (1 + math.exp(min(eps, _MAX_EXPONENT))) * d)


def _guarantee(epsilon, delta, neighbours) -> tuple[float, float]:
    # (ε, δ) of the experiment asked for; δ may be 1 (no guarantee) for replace_one
    if _check_neighbours(neighbours) == "replace_one":
        return replace_one_guarantee(epsilon=epsilon, delta=delta)
    return check_epsilon(epsilon), check_delta(delta, allow_zero=True)


def dp_tpr_bound(fpr, *, epsilon, delta=0.0, neighbours="add_remove"):
    """The largest TPR any membership test can have at false-positive rate ``fpr`` under (ε, δ)-DP.

    ``min(1, e^ε·FPR + δ, 1 − e^(−ε)·(1 − δ − FPR))`` (Kairouz et al. 2015). ``fpr`` is a number
    or an array in [0, 1]; the result is a float or an array of its shape.

    Args:
        epsilon, delta: the add/remove guarantee of training (what the accountant reports).
        neighbours: ``"add_remove"`` for the in/out game (the same data with or without the
            record, retrained); ``"replace_one"`` for members against held-out examples on one
            model, where the bound is the one at :func:`replace_one_guarantee` (2ε, (1 + e^ε)δ).

    >>> round(dp_tpr_bound(0.1, epsilon=1.0), 4)
    0.2718
    >>> round(dp_tpr_bound(0.1, epsilon=1.0, neighbours="replace_one"), 4)  # e² · 0.1
    0.7389
    >>> dp_tpr_bound(np.array([0.0, 0.5, 1.0]), epsilon=math.log(3), delta=0.01).round(4).tolist()
    [0.01, 0.8367, 1.0]
    """
    eps, d = _guarantee(epsilon, delta, neighbours)
    try:
        f = np.asarray(fpr, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"fpr must hold numbers in [0, 1], got {fpr!r}") from None
    if f.size == 0 or not np.isfinite(f).all() or (f < 0).any() or (f > 1).any():
        raise ValueError("fpr must hold numbers in [0, 1]")
    bound = _tpr_bound(f, eps, d)
    return float(bound) if bound.ndim == 0 else bound


def _tpr_bound(f: np.ndarray, eps: float, d: float) -> np.ndarray:
    # dp_tpr_bound on checked arguments (d may be 1: no guarantee, the bound is 1 everywhere)
    e = math.exp(min(eps, _MAX_EXPONENT))  # beyond e^700 the bound is 1 at every FPR > 1e-300 anyway
    return np.minimum(1.0, np.minimum(e * f + d, 1 - (1 - d - f) / e))


def dp_max_advantage(*, epsilon, delta=0.0, neighbours="add_remove") -> float:
    """The largest membership advantage max(TPR − FPR) under (ε, δ)-DP: (e^ε − 1 + 2δ) / (e^ε + 1).

    For δ = 0 it is tanh(ε/2): 0.46 at ε = 1, 0.96 at ε = 4. ``neighbours`` as in
    :func:`dp_tpr_bound` (``"replace_one"``: members against held-out examples, tanh(ε) for δ = 0).

    >>> round(dp_max_advantage(epsilon=1.0), 4), round(math.tanh(0.5), 4)
    (0.4621, 0.4621)
    >>> round(dp_max_advantage(epsilon=1.0, neighbours="replace_one"), 4)
    0.7616
    """
    eps, d = _guarantee(epsilon, delta, neighbours)
    e = math.exp(min(eps, _MAX_EXPONENT))
    return min(1.0, (e - 1 + 2 * d) / (e + 1)) if eps > 1e-6 else (math.expm1(eps) + 2 * d) / (e + 1)


def dp_max_auc(*, epsilon, delta=0.0, neighbours="add_remove") -> float:
    """The largest ROC AUC any membership test can have under (ε, δ)-DP: the area under :func:`dp_tpr_bound`.

    The bound is piecewise linear with corners at FPR = 0, (1 − δ)/(e^ε + 1) and 1 − δ, so the
    trapezoid rule on those points is exact. ``neighbours`` as in :func:`dp_tpr_bound`.

    >>> round(dp_max_auc(epsilon=1.0), 4)
    0.7311
    >>> round(dp_max_auc(epsilon=1.0, neighbours="replace_one"), 4)  # members against held-out examples
    0.8808
    >>> round(dp_max_auc(epsilon=1e-9), 4)  # no leakage: guessing
    0.5
    """
    eps, d = _guarantee(epsilon, delta, neighbours)
    xs = np.array([0.0, (1 - d) / (math.exp(min(eps, _MAX_EXPONENT)) + 1), 1 - d, 1.0])
    ys = _tpr_bound(xs, eps, d)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def dkw_margin(num_examples, *, confidence=0.999) -> float:
    """How far an empirical rate can be from the true one, at every threshold at once.

    The Dvoretzky–Kiefer–Wolfowitz inequality (with Massart's constant): the empirical CDF of n
    independent scores is within ``sqrt(ln(2/α)/(2n))`` of the true CDF at every point, with
    probability at least 1 − α, α = 1 − ``confidence``. An empirical TPR or FPR (one minus a CDF)
    inherits the margin.

    >>> round(dkw_margin(100, confidence=0.95), 4)
    0.1358
    """
    n = check_int("num_examples", num_examples, low=1)
    c = check_finite("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    return math.sqrt(math.log(2 / (1 - c)) / (2 * n))


def roc_within_bound(member_scores, nonmember_scores, *, epsilon, delta=0.0, neighbours="add_remove",
                     confidence=0.999) -> bool:
    """True if the attack's empirical ROC is consistent with (ε, δ)-DP, allowing for sampling error.

    An empirical ROC from m members and n non-members can exceed the true one by chance (a single
    member with the top score already gives TPR = 1/m at FPR = 0, above δ). Each point is
    therefore checked as ``TPR − a_m ≤ bound(FPR + a_n)``, with the :func:`dkw_margin` a of each
    side at ``confidence`` (split between the two sides). If every score were an independent draw
    (each from its own training run), this would fail for a DP run with probability at most
    1 − confidence. Member scores from *one* model are not independent draws, so on such an
    experiment the margin is a heuristic allowance for sampling error, not a proof.
    ``neighbours`` as in :func:`dp_tpr_bound` (``"replace_one"`` for members against held-out
    examples on one model).

    >>> rng = np.random.default_rng(0)
    >>> roc_within_bound(rng.normal(0, 1, 500), rng.normal(0, 1, 500), epsilon=0.1)
    True
    >>> roc_within_bound(rng.normal(3, 1, 500), rng.normal(0, 1, 500), epsilon=0.1)
    False
    """
    eps, d = _guarantee(epsilon, delta, neighbours)
    c = check_finite("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    fpr, tpr, _ = roc_curve(member_scores, nonmember_scores)
    side = 1 - (1 - c) / 2
    a_m = dkw_margin(len(np.ravel(member_scores)), confidence=side)
    a_n = dkw_margin(len(np.ravel(nonmember_scores)), confidence=side)
    return bool(np.all(tpr - a_m <= _tpr_bound(np.minimum(1.0, fpr + a_n), eps, d)))
