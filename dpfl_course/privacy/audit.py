"""Privacy auditing: an empirical lower bound on ε from a distinguishing game, against the ε claimed.

An (ε, δ)-DP algorithm M limits every test that tries to tell M(D) from M(D') for neighbouring
datasets D, D' (Kairouz, Oh & Viswanath 2015's hypothesis-testing view). For any rule "guess that
the canary was in" with true-positive rate TPR and false-positive rate FPR,

    TPR ≤ e^ε·FPR + δ          (equivalently FNR + e^ε·FPR ≥ 1 − δ)
    1 − FPR ≤ e^ε·(1 − TPR) + δ (equivalently FPR + e^ε·FNR ≥ 1 − δ)

so ε ≥ max( ln((TPR − δ)/FPR), ln((1 − δ − FPR)/(1 − TPR)) ). An audit (Jagielski, Ullman &
Oprea 2020; Nasr et al. 2021) trains many times with and without a *canary*, measures TPR and FPR
of a test, and turns them into a lower bound ε_LB that holds with a chosen confidence:
**both** inequalities need a *lower* bound on TPR and an *upper* bound on FPR (Clopper & Pearson
1934's exact binomial bounds), each one-sided at level α/2, so by Bonferroni the pair holds, and
ε_LB ≤ ε, with probability at least 1 − α. If the algorithm is (ε, δ)-DP, ε_LB exceeds ε with
probability at most α; a measured ε_LB above the claimed ε is evidence of a bug.

The threshold of the test must not be chosen on the trials that evaluate it (the best of many
thresholds on the same data is optimistically biased): :func:`audit_scores` picks it on one half
of each world's trials and counts on the other half.

The game (:func:`canary_game`) is DP-SGD as the course runs it (``dp.clip_factors``' clipping,
Poisson sampling, noise N(0, (σC)²) on every coordinate, division by the expected batch size),
for a softmax regression, many independent training runs at once in torch. The canary is a
*gradient canary* (Nasr et al. 2021): an extra example whose gradient is ``canary_norm`` times a
unit vector on the weight of a pixel that is 0 in every real example, so that weight moves only
by the canary and the noise. ``clip=False`` is the planted bug: clipping switched off while the
accountant still claims the ε of the clip norm C.

:func:`one_run_audit` audits in a single training run instead (Steinke, Nasr & Jagielski 2023):
many canaries, each in with probability ½, and a binomial bound on the number of right guesses
(:func:`one_run_epsilon_lower_bound`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from dpfl_course._validate import check_data, check_delta, check_finite, check_int, check_scores
from dpfl_course.dp.dpsgd import clip_factors

__all__ = [
    "clopper_pearson",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "max_provable_epsilon",
    "AuditBound",
    "audit_scores",
    "GameScores",
    "canary_game",
    "ADVERSARIES",
    "SIGMA_RANGE",
    "MAX_CANARY_NORM",
    "one_run_p_value",
    "one_run_epsilon_lower_bound",
    "OneRunAudit",
    "one_run_audit",
]

#: The two adversaries of :func:`canary_game`: who sees only the final model, who sees every update.
ADVERSARIES = ("final", "every_step")


# ---------------------------------------------------------------- checks


def _check_alpha(alpha) -> float:
    return check_finite("alpha", alpha, low=0, high=1, low_open=True, high_open=True)


def _check_counts(successes, trials, *, name_successes="successes", name_trials="trials") -> tuple[int, int]:
    n = check_int(name_trials, trials, low=1)
    k = check_int(name_successes, successes, low=0, high=n)
    return k, n


# ---------------------------------------------------------------- confidence intervals


def clopper_pearson(successes, trials, *, alpha=0.05) -> tuple[float, float]:
    """The exact (Clopper–Pearson 1934) two-sided 1 − α confidence interval of a binomial proportion.

    ``low = Beta(α/2; k, n − k + 1)`` and ``high = Beta(1 − α/2; k + 1, n − k)`` (quantiles), with
    low = 0 when k = 0 and high = 1 when k = n. Each side fails with probability at most α/2, so
    the endpoints are also one-sided 1 − α/2 bounds. Equal to
    ``scipy.stats.binomtest(k, n).proportion_ci(1 − α, method="exact")``.

    Raises:
        ValueError: if ``trials`` < 1, ``successes`` is not in [0, trials] or α is not in (0, 1).

    >>> [round(v, 4) for v in clopper_pearson(0, 10)]
    [0.0, 0.3085]
    >>> [round(v, 4) for v in clopper_pearson(5, 10, alpha=0.1)]
    [0.2224, 0.7776]
    """
    from scipy.stats import beta

    k, n = _check_counts(successes, trials)
    a = _check_alpha(alpha)
    low = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def _cp_bounds(k: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`clopper_pearson` endpoints for many k (no checks)."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k == 0, 0.0, beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1))
        high = np.where(k == n, 1.0, beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)))
    return low, high


# ---------------------------------------------------------------- from rates to ε


def _epsilon_from_rates(tpr, fpr, delta):
    """Vectorised :func:`epsilon_from_rates` (no checks)."""
    tpr, fpr = np.asarray(tpr, dtype=float), np.asarray(fpr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        one = np.where(tpr - delta > 0, np.log(np.maximum(tpr - delta, 1e-300)) - np.log(fpr), -np.inf)
        two = np.where(1 - delta - fpr > 0, np.log(np.maximum(1 - delta - fpr, 1e-300)) - np.log(1 - tpr), -np.inf)
    return np.maximum(np.maximum(one, two), 0.0)


def epsilon_from_rates(tpr, fpr, *, delta) -> float:
    """The smallest ε ≥ 0 for which a test with these TPR and FPR is allowed by (ε, δ)-DP.

    ``max(0, ln((TPR − δ)/FPR), ln((1 − δ − FPR)/(1 − TPR)))``: the two inequalities
    ``TPR ≤ e^ε·FPR + δ`` and ``1 − FPR ≤ e^ε·(1 − TPR) + δ`` that (ε, δ)-DP imposes on every test.
    ``inf`` when no finite ε allows it (e.g. FPR = 0 and TPR > δ). These are *true* rates; from
    counts, use :func:`epsilon_lower_bound`, which accounts for sampling error.

    Raises:
        ValueError: if a rate is not in [0, 1] or δ is not in [0, 1).

    >>> round(epsilon_from_rates(0.5, 0.1, delta=0.0), 4)  # ln(5)
    1.6094
    >>> epsilon_from_rates(0.3, 0.3, delta=1e-5)  # a coin flip reveals nothing
    0.0
    """
    tpr = check_finite("tpr", tpr, low=0, high=1)
    fpr = check_finite("fpr", fpr, low=0, high=1)
    d = check_delta(delta, allow_zero=True)
    return float(_epsilon_from_rates(tpr, fpr, d))


def epsilon_lower_bound(true_positives, positives, false_positives, negatives, *, delta, alpha=0.05) -> float:
    """ε_LB from the counts of a distinguishing game: ε ≥ ε_LB with confidence at least 1 − α.

    ``positives`` trials were run with the canary (``true_positives`` of them guessed "in") and
    ``negatives`` without it (``false_positives`` of them guessed "in"). Both DP inequalities
    (see :func:`epsilon_from_rates`) grow with TPR and shrink with FPR, so ε_LB plugs in
    Clopper–Pearson's lower bound on TPR and upper bound on FPR, each one-sided at level α/2
    (the endpoints of the two-sided 1 − α intervals); by Bonferroni both hold at once with
    probability ≥ 1 − α, and then ε_LB ≤ ε for every (ε, δ)-DP algorithm. Never negative.

    Raises:
        ValueError: if a count is out of range, δ is not in [0, 1) or α is not in (0, 1).

    >>> round(epsilon_lower_bound(990, 1000, 10, 1000, delta=1e-5), 2)
    3.98
    >>> epsilon_lower_bound(500, 1000, 500, 1000, delta=1e-5)
    0.0
    """
    tp, p = _check_counts(true_positives, positives, name_successes="true_positives", name_trials="positives")
    fp, m = _check_counts(false_positives, negatives, name_successes="false_positives", name_trials="negatives")
    d = check_delta(delta, allow_zero=True)
    a = _check_alpha(alpha)
    tpr_low, _ = clopper_pearson(tp, p, alpha=a)
    _, fpr_high = clopper_pearson(fp, m, alpha=a)
    return float(_epsilon_from_rates(tpr_low, fpr_high, d))


def max_provable_epsilon(trials, *, delta, alpha=0.05) -> float:
    """The largest ε_LB that ``trials`` runs per world can give: every guess right, no mistake.

    With TPR = k/k and FPR = 0/k, Clopper–Pearson still leaves TPR ≥ (α/2)^(1/k) and
    FPR ≤ 1 − (α/2)^(1/k), so no audit with k trials per world can prove more than
    ``ln(((α/2)^(1/k) − δ)/(1 − (α/2)^(1/k)))`` ≈ ln(k / ln(2/α)): proving a large ε needs
    exponentially many trials. ``trials`` counts the runs per world that are *counted*:
    :func:`audit_scores` counts half of the runs it is given (the other half calibrates).

    Raises:
        ValueError: if ``trials`` < 1, δ is not in [0, 1) or α is not in (0, 1).

    >>> round(max_provable_epsilon(1000, delta=1e-5), 2)
    5.6
    """
    k = check_int("trials", trials, low=1)
    return epsilon_lower_bound(k, k, 0, k, delta=delta, alpha=alpha)


# ---------------------------------------------------------------- from scores to ε, honestly


@dataclass(frozen=True)
class AuditBound:
    """The outcome of an audit: ε_LB and what it was computed from.

    Attributes:
        epsilon: the lower bound ε_LB (≥ 0), valid with probability ≥ ``confidence``.
        threshold: the test "guess in if score > threshold", chosen on the calibration half.
        true_positives, positives, false_positives, negatives: the counts on the evaluation half.
        tpr_interval, fpr_interval: Clopper–Pearson 1 − α intervals of TPR and FPR.
        confidence: 1 − α, the joint confidence of the two one-sided bounds used.
        counted_in, counted_out: the scores of the evaluation half (the counted trials) of each
            world, as float arrays; e.g. ``membership.roc_curve(counted_in, counted_out)`` is the
            attack's ROC on the trials that were counted.
    """

    epsilon: float
    threshold: float
    true_positives: int
    positives: int
    false_positives: int
    negatives: int
    tpr_interval: tuple[float, float]
    fpr_interval: tuple[float, float]
    confidence: float
    counted_in: np.ndarray = field(repr=False, compare=False)
    counted_out: np.ndarray = field(repr=False, compare=False)

    @property
    def tpr(self) -> float:
        """The measured true-positive rate on the evaluation half."""
        return self.true_positives / self.positives

    @property
    def fpr(self) -> float:
        """The measured false-positive rate on the evaluation half."""
        return self.false_positives / self.negatives


def _best_threshold(scores_in, scores_out, delta, alpha) -> float:
    """The threshold maximising ε_LB on these scores (the calibration half)."""
    candidates = np.unique(np.concatenate([scores_in, scores_out]))
    if len(candidates) > 400:  # quantiles are enough: the bound varies slowly between them
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, 401)))
    s_in, s_out = np.sort(scores_in), np.sort(scores_out)
    tp = len(s_in) - np.searchsorted(s_in, candidates, side="right")  # count of scores > threshold
    fp = len(s_out) - np.searchsorted(s_out, candidates, side="right")
    tpr_low, _ = _cp_bounds(tp, len(s_in), alpha)
    _, fpr_high = _cp_bounds(fp, len(s_out), alpha)
    eps = _epsilon_from_rates(tpr_low, fpr_high, delta)
    return float(candidates[int(np.argmax(eps))])


def audit_scores(scores_in, scores_out, *, delta, alpha=0.05) -> AuditBound:
    """ε_LB from a test's scores on trials with the canary (``scores_in``) and without it (``scores_out``).

    The test is "guess in if score > threshold". Honest threshold choice: the first half of each
    array (the *calibration* trials) picks the threshold that maximises ε_LB there; the second
    half (the *evaluation* trials, never looked at before) gives the counts and ε_LB
    (:func:`epsilon_lower_bound`). Picking the threshold on the trials that are counted would
    take the best of many tests on the same data and inflate ε_LB. Trials must be independent
    and in random order (as :func:`canary_game` makes them), so that the halves are alike.

    Raises:
        ValueError: if the scores are not 1-D finite arrays of ≥ 2 values, δ ∉ [0, 1) or α ∉ (0, 1).

    >>> rng = np.random.default_rng(0)
    >>> bound = audit_scores(rng.normal(3, 1, 2000), rng.normal(0, 1, 2000), delta=1e-5)
    >>> bound.positives, bound.true_positives, bound.false_positives, round(bound.epsilon, 2)
    (1000, 509, 1, 4.45)
    """
    s_in = check_scores("scores_in", scores_in, min_size=2)
    s_out = check_scores("scores_out", scores_out, min_size=2)
    d = check_delta(delta, allow_zero=True)
    a = _check_alpha(alpha)
    half_in, half_out = len(s_in) // 2, len(s_out) // 2
    threshold = _best_threshold(s_in[:half_in], s_out[:half_out], d, a)
    eval_in, eval_out = s_in[half_in:].copy(), s_out[half_out:].copy()  # copies: never the caller's array
    tp, fp = int((eval_in > threshold).sum()), int((eval_out > threshold).sum())
    epsilon = epsilon_lower_bound(tp, len(eval_in), fp, len(eval_out), delta=d, alpha=a)
    return AuditBound(epsilon=epsilon, threshold=threshold, true_positives=tp, positives=len(eval_in),
                      false_positives=fp, negatives=len(eval_out),
                      tpr_interval=clopper_pearson(tp, len(eval_in), alpha=a),
                      fpr_interval=clopper_pearson(fp, len(eval_out), alpha=a), confidence=1 - a,
                      counted_in=eval_in, counted_out=eval_out)


# ---------------------------------------------------------------- the game: DP-SGD with a canary


@dataclass(frozen=True)
class GameScores:
    """Scores of :func:`canary_game`'s trials, one tensor per world and adversary.

    ``scores[adversary] = (scores_in, scores_out)`` with adversary in :data:`ADVERSARIES`:
    ``"final"`` sees only the trained model, ``"every_step"`` sees every update. Larger means
    "the canary was in". ``updates_in`` / ``updates_out`` are the canary weight's per-step
    updates in units of C (trials × steps).
    """

    scores: dict
    updates_in: torch.Tensor
    updates_out: torch.Tensor


def _check_dataset(X, y):
    # check_data's rules (tensors, one finite float row per label ≥ 0, not empty), plus the game's own:
    # X is a matrix of rows (n, d), and the game computes in float32
    X, y = check_data(X, y)
    if X.dim() != 2:
        raise ValueError(f"X must have shape (n, d), one row of features per example, got shape {tuple(X.shape)}")
    return X.to(torch.float32), y


#: σ outside this range is no audit anyone runs, and breaks the arithmetic: the every-step score divides
#: by σ² (σ = 1e-200 gives infinite scores, σ = 1e300 overflows).
SIGMA_RANGE = (1e-3, 1e3)
#: The largest canary norm, in units of C (bounded for the same reason).
MAX_CANARY_NORM = 1e6


def _check_training(noise_multiplier, max_grad_norm, sample_rate, steps, lr, canary_norm, clip, seed):
    sigma = check_finite("noise_multiplier", noise_multiplier, low=SIGMA_RANGE[0], high=SIGMA_RANGE[1])
    c = check_finite("max_grad_norm", max_grad_norm, low=0, low_open=True)
    q = check_finite("sample_rate", sample_rate, low=0, high=1, low_open=True)
    steps = check_int("steps", steps, low=1)
    lr = check_finite("lr", lr, low=0, low_open=True)
    m = 10 * c if canary_norm is None else check_finite("canary_norm", canary_norm, low=0, high=MAX_CANARY_NORM * c,
                                                        low_open=True)
    if not isinstance(clip, bool):
        raise ValueError(f"clip must be True or False, got {clip!r}")
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    return sigma, c, q, steps, lr, m, seed


def _dp_sgd_with_canaries(X, y, included, canary_class, canary_pixel, *, num_classes, noise_multiplier,
                          max_grad_norm, sample_rate, steps, lr, canary_norm, clip, generator):
    """DP-SGD on (X, y) for ``len(included)`` independent runs at once, with gradient canaries.

    ``included`` (runs, m) says which of the m canaries is in each run's dataset; canary j's gradient
    is ``canary_norm`` on weight (canary_class[j], canary_pixel[j]). Returns the canary weights'
    per-step updates in units of C, shape (runs, m, steps): −Δw·B/(lr·C), the expected batch size,
    and the trained weights and biases (runs, k, d) and (runs, k).
    """
    runs, m = included.shape
    n, d = X.shape
    onehot = torch.nn.functional.one_hot(y, num_classes).to(X.dtype)  # (n, k)
    x_norm2 = (X * X).sum(1)  # (n,)
    W = torch.zeros(runs, num_classes, d)
    b = torch.zeros(runs, num_classes)
    expected_batch_size = sample_rate * n  # public: the same divisor with and without the canaries
    c = max_grad_norm
    canary_step = float(clip_factors(torch.tensor(canary_norm), c)) * canary_norm if clip else canary_norm
    std = noise_multiplier * c
    scale = -lr / expected_batch_size
    updates = torch.empty(runs, m, steps)
    for t in range(steps):
        batch = (torch.rand(runs, n, generator=generator) < sample_rate).to(X.dtype)  # Poisson batches
        canary_in = (torch.rand(runs, m, generator=generator) < sample_rate) & included
        logits = torch.einsum("nd,rkd->rnk", X, W) + b[:, None, :]
        G = torch.softmax(logits, dim=2) - onehot  # ∂ℓ_i/∂logits, per run and example
        if clip:  # ‖G_i x_iᵀ‖² + ‖G_i‖² (weight and bias) = ‖G_i‖²(‖x_i‖² + 1)
            norms = G.norm(dim=2) * (x_norm2 + 1).sqrt()
            factors = clip_factors(norms, c) * batch
        else:
            factors = batch
        cG = G * factors[:, :, None]
        grad_W = torch.einsum("rnk,nd->rkd", cG, X)
        grad_b = cG.sum(1)
        grad_W[:, canary_class, canary_pixel] += canary_step * canary_in.to(X.dtype)
        noise_W = torch.normal(0.0, std, size=W.shape, generator=generator)
        noise_b = torch.normal(0.0, std, size=b.shape, generator=generator)
        before = W[:, canary_class, canary_pixel].clone()
        W += scale * (grad_W + noise_W)
        b += scale * (grad_b + noise_b)
        updates[:, :, t] = (W[:, canary_class, canary_pixel] - before) / (scale * c)
    return updates, expected_batch_size, W, b


def _scores(updates, sample_rate, noise_multiplier, shift=1.0):
    """The two adversaries' scores from per-step updates (..., steps): total movement, likelihood ratio.

    ``updates`` are in units of C; ``shift`` is the canary's clipped step in the same units
    (:func:`_shift`). The every-step score is Σ_t log((1 − q) + q·φ(u_t; s, σ)/φ(u_t; 0, σ)), and
    log φ(u; s, σ) − log φ(u; 0, σ) = s(2u − s)/(2σ²) = (2(u/s) − 1)/(2(σ/s)²).
    """
    final = updates.sum(-1)
    updates, noise_multiplier = updates / shift, noise_multiplier / shift
    a = (2 * updates - 1) / (2 * noise_multiplier**2)
    log_1mq = math.log1p(-sample_rate) if sample_rate < 1 else -math.inf
    every = torch.logaddexp(torch.full_like(a, log_1mq), a + math.log(sample_rate)).sum(-1)
    return {"final": final, "every_step": every}


def _shift(canary_norm, max_grad_norm):
    """The canary's step when clipping works, in units of C: min(canary_norm, C)/C (clip_factors' 10⁻⁶ aside)."""
    return min(canary_norm, max_grad_norm) / max_grad_norm


def canary_game(X, y, *, trials, noise_multiplier, max_grad_norm, sample_rate, steps, lr, canary_pixel,
                canary_class=0, canary_norm=None, clip=True, seed=0) -> GameScores:
    """Train softmax regression with DP-SGD ``2 × trials`` times, half with a gradient canary; score each run.

    Every run starts from zero weights and takes ``steps`` DP-SGD steps on (X, y) as the course
    runs them: Poisson sampling at ``sample_rate``, each example's gradient clipped by
    :func:`dpfl_course.dp.clip_factors` (its norm ‖g_i‖·√(‖x_i‖² + 1), as ghost clipping
    computes it), noise N(0, (σC)²) on every weight and bias, the sum divided by the expected batch
    size ``sample_rate × len(X)`` (the same in both worlds) and a step of size ``lr``. In the
    first ``trials`` runs the canary is in the dataset: it joins each Poisson batch with
    probability ``sample_rate`` and its gradient is ``canary_norm`` (default 10 C) on the weight
    (``canary_class``, ``canary_pixel``) and zero elsewhere, clipped like every other example.
    ``canary_pixel`` must be 0 in every row of X, so no real example moves that weight.

    The two adversaries' scores, from that weight alone:

    * ``"final"``: its total movement −(w_T − w_0)·B/(lr·C), in units of C;
    * ``"every_step"``: the log-likelihood ratio Σ_t log(1 − q + q·exp(s(2x_t − s)/(2σ²))) of its
      per-step updates x_t (units of C), the Neyman–Pearson test for "canary in" when clipping
      works: each x_t is N(s·b_t, σ²) with b_t ~ Bernoulli(q) in, 0 out, and s = min(canary_norm, C)/C
      the clipped canary step. With the bug the score is unchanged (it is the test for the claim).

    ``clip=False`` is the planted bug: no example is clipped (the noise is still σC).

    Args:
        X, y: the dataset D (float rows, integer labels in [0, num classes)); the number of
            classes is ``max(y) + 1``.
        trials: runs per world, ≥ 2.
        noise_multiplier: σ in [10⁻³, 10³] (:data:`SIGMA_RANGE`; the every-step score divides by σ²).
        max_grad_norm: C > 0.
        sample_rate: q in (0, 1].
        steps: T ≥ 1.
        lr: learning rate > 0.
        canary_pixel, canary_class: the weight the canary moves (``canary_class`` ≤ max(y)).
        canary_norm: the canary gradient's norm before clipping, in (0, 10⁶ C] (default 10 C).
        clip: False switches clipping off (the planted bug).
        seed: seeds every draw (batches, noise), so a game is reproducible.

    Raises:
        ValueError: if an argument is out of range, or ``canary_pixel`` is not 0 in every row of X.

    >>> X, y = torch.rand(20, 4, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 3
    >>> X[:, 0] = 0
    >>> game = canary_game(X, y, trials=50, noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.5,
    ...                    steps=5, lr=0.1, canary_pixel=0)
    >>> [tuple(s.shape) for s in game.scores["every_step"]]
    [(50,), (50,)]
    """
    X, y = _check_dataset(X, y)
    trials = check_int("trials", trials, low=2)
    sigma, c, q, steps, lr, m, seed = _check_training(noise_multiplier, max_grad_norm, sample_rate, steps, lr,
                                                      canary_norm, clip, seed)
    d = X.shape[1]
    pixel = check_int("canary_pixel", canary_pixel, low=0, high=d - 1)
    if bool((X[:, pixel] != 0).any()):
        raise ValueError(f"canary_pixel must be a feature that is 0 in every row of X, got {pixel} "
                         f"(nonzero in {int((X[:, pixel] != 0).sum())} rows)")
    cls = check_int("canary_class", canary_class, low=0, high=int(y.max()))
    included = torch.zeros(2 * trials, 1, dtype=torch.bool)
    included[:trials] = True  # runs 0..trials−1: D' = D + canary; the rest: D
    updates, _, _, _ = _dp_sgd_with_canaries(
        X, y, included, [cls], [pixel], num_classes=int(y.max()) + 1, noise_multiplier=sigma,
        max_grad_norm=c, sample_rate=q, steps=steps, lr=lr, canary_norm=m, clip=clip,
        generator=torch.Generator().manual_seed(seed))
    updates = updates[:, 0, :]
    scores = {name: (s[:trials], s[trials:]) for name, s in _scores(updates, q, sigma, _shift(m, c)).items()}
    return GameScores(scores=scores, updates_in=updates[:trials], updates_out=updates[trials:])


# ---------------------------------------------------------------- one training run (Steinke et al. 2023)


def _one_run_p_value(m, r, v, epsilon, delta):
    from scipy.stats import binom

    p = 1.0 / (1.0 + math.exp(-epsilon))  # accuracy of ε-DP randomized response on one bit
    tail = float(binom.sf(v - 1, r, p))  # P[Binomial(r, p) ≥ v]
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, p)  # P[Binomial = v − i] for i = 1..v
    spread = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))  # max_i P[v − i ≤ Binomial < v] / i
    return min(tail + 2 * m * delta * spread, 1.0)


def _check_one_run_counts(num_canaries, guesses, correct):
    m = check_int("num_canaries", num_canaries, low=1)
    r = check_int("guesses", guesses, low=0, high=m)
    v = check_int("correct", correct, low=0, high=r)
    return m, r, v


def one_run_p_value(num_canaries, guesses, correct, *, epsilon, delta) -> float:
    """How likely an (ε, δ)-DP run makes ``correct`` or more right guesses out of ``guesses`` (one-run audit).

    Steinke, Nasr & Jagielski (2023): m canaries, each in the training set independently with
    probability ½; after one training run the auditor guesses in/out for ``guesses`` = r of them
    (abstaining on the rest). If training is (ε, δ)-DP, the number of right guesses W satisfies
    ``P[W ≥ v] ≤ P[Binomial(r, e^ε/(1 + e^ε)) ≥ v] + 2mδ·max_i P[v − i ≤ Binomial(r, ·) < v]/i``
    (their Theorem for approximate DP). This returns that bound, capped at 1.

    >>> round(one_run_p_value(1000, 100, 90, epsilon=1.0, delta=1e-5), 6)
    0.000841
    """
    m, r, v = _check_one_run_counts(num_canaries, guesses, correct)
    epsilon = check_finite("epsilon", epsilon, low=0)
    delta = check_delta(delta, allow_zero=True)
    return _one_run_p_value(m, r, v, epsilon, delta)


def one_run_epsilon_lower_bound(num_canaries, guesses, correct, *, delta, alpha=0.05) -> float:
    """ε_LB from one training run with ``num_canaries`` canaries: the largest ε rejected at level α.

    Every ε whose :func:`one_run_p_value` is below α is refuted with confidence 1 − α; the
    p-value grows with ε, so the refuted ε form an interval [0, ε_LB) found by bisection
    (to 1e-6). 0 when not even ε = 0 is refuted.

    Raises:
        ValueError: if the counts are out of range (0 ≤ correct ≤ guesses ≤ num_canaries),
            δ ∉ [0, 1) or α ∉ (0, 1).

    >>> round(one_run_epsilon_lower_bound(1000, 100, 90, delta=1e-5), 2)
    1.63
    >>> one_run_epsilon_lower_bound(1000, 100, 50, delta=1e-5)  # a coin flip's score
    0.0
    """
    m, r, v = _check_one_run_counts(num_canaries, guesses, correct)
    delta = check_delta(delta, allow_zero=True)
    a = _check_alpha(alpha)
    if _one_run_p_value(m, r, v, 0.0, delta) >= a:
        return 0.0
    low, high = 0.0, 1.0
    while _one_run_p_value(m, r, v, high, delta) < a:  # v = r and tiny α can push ε_LB high
        low, high = high, 2 * high
        if high > 1e3:
            return low
    while high - low > 1e-6:
        mid = (low + high) / 2
        low, high = (mid, high) if _one_run_p_value(m, r, v, mid, delta) < a else (low, mid)
    return low


@dataclass(frozen=True)
class OneRunAudit:
    """The outcome of :func:`one_run_audit`.

    Attributes:
        epsilon: ε_LB at confidence ``confidence``.
        num_canaries, guesses, correct: m, r (guesses made) and v (right guesses).
        included: which canaries were in the training set (bool, m).
        scores: each canary's score (larger: "in").
        confidence: 1 − α.
    """

    epsilon: float
    num_canaries: int
    guesses: int
    correct: int
    included: torch.Tensor
    scores: torch.Tensor
    confidence: float


def one_run_audit(X, y, *, num_canaries, guesses_in, guesses_out=0, noise_multiplier, max_grad_norm, sample_rate,
                  steps, lr, delta, alpha=0.05, adversary="every_step", canary_norm=None, clip=True,
                  seed=0) -> OneRunAudit:
    """Audit DP-SGD in one training run (Steinke, Nasr & Jagielski 2023) with ``num_canaries`` gradient canaries.

    The model is softmax regression on X with ``num_canaries`` extra inputs that are 0 in every
    real example (a blank border: they leave the real data's training unchanged); canary j's
    gradient is ``canary_norm`` (default 10 C) on the class-0 weight of extra input j, and each
    canary is in the training set independently with probability ½. One DP-SGD run, exactly as
    in :func:`canary_game` (clipping, Poisson sampling, noise σC, expected batch size q·len(X));
    each canary is scored by ``adversary`` (``"final"`` or ``"every_step"``, as there). The
    auditor guesses "in" for the ``guesses_in`` highest scores and "out" for the ``guesses_out``
    lowest, abstains on the rest (the numbers are fixed before the run), and
    :func:`one_run_epsilon_lower_bound` turns the right guesses into ε_LB.

    Raises:
        ValueError: if an argument is out of range (guesses_in + guesses_out ≤ num_canaries).

    >>> X, y = torch.rand(20, 4, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 3
    >>> result = one_run_audit(X, y, num_canaries=200, guesses_in=20, noise_multiplier=1.0, max_grad_norm=1.0,
    ...                        sample_rate=0.5, steps=5, lr=0.1, delta=1e-5, clip=False)
    >>> result.guesses, result.correct, result.epsilon > 1
    (20, 20, True)
    """
    X, y = _check_dataset(X, y)
    m = check_int("num_canaries", num_canaries, low=1)
    k_in = check_int("guesses_in", guesses_in, low=0, high=m)
    k_out = check_int("guesses_out", guesses_out, low=0, high=m - k_in)
    if k_in + k_out == 0:
        raise ValueError("guesses_in + guesses_out must be at least 1")
    sigma, c, q, steps, lr, norm, seed = _check_training(noise_multiplier, max_grad_norm, sample_rate, steps, lr,
                                                         canary_norm, clip, seed)
    delta = check_delta(delta, allow_zero=True)
    a = _check_alpha(alpha)
    if adversary not in ADVERSARIES:
        raise ValueError(f"adversary must be one of {ADVERSARIES}, got {adversary!r}")
    generator = torch.Generator().manual_seed(seed)
    included = torch.rand(1, m, generator=generator) < 0.5
    padded = torch.cat([X, torch.zeros(len(X), m)], dim=1)
    d = X.shape[1]
    updates, _, _, _ = _dp_sgd_with_canaries(
        padded, y, included, [0] * m, list(range(d, d + m)), num_classes=max(int(y.max()), 0) + 1,
        noise_multiplier=sigma, max_grad_norm=c, sample_rate=q, steps=steps, lr=lr, canary_norm=norm, clip=clip,
        generator=generator)
    scores = _scores(updates[0], q, sigma, _shift(norm, c))[adversary]  # (m,)
    order = torch.argsort(scores, descending=True)
    guessed_in, guessed_out = order[:k_in], order[m - k_out:] if k_out else order[:0]
    inside = included[0]
    correct = int(inside[guessed_in].sum()) + int((~inside[guessed_out]).sum())
    epsilon = one_run_epsilon_lower_bound(m, k_in + k_out, correct, delta=delta, alpha=a)
    return OneRunAudit(epsilon=epsilon, num_canaries=m, guesses=k_in + k_out, correct=correct, included=inside,
                       scores=scores, confidence=1 - a)
