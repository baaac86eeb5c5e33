"""Privacy accounting for the (Poisson-subsampled) Gaussian mechanism, thin over Opacus.

``epsilon`` answers "how much privacy did ``steps`` noisy steps spend?" and
``noise_multiplier_for`` answers the inverse question. Both are computed by Opacus's own
accountants (``RDPAccountant`` and ``PRVAccountant``), so a learner who moves on to Opacus gets
the same numbers. Two documented choices differ from Opacus's defaults:

* **RDP orders.** Opacus's ``RDPAccountant.DEFAULT_ALPHAS`` stop at order 63, which caps how small
  an RDP ε can be (about 0.1 at δ = 1e-5) and makes Opacus warn that the optimum is the largest
  order. :data:`RDP_ORDERS` appends 128, 256, 512 and 1024 (the orders Google's dp_accounting
  also uses). Whenever the best order is below 63 the result is Opacus's default to the last digit.
* **PRV error.** ``PRVAccountant.get_epsilon`` returns an upper bound ``estimate + eps_error``
  with an absolute ``eps_error`` of 0.01 by default, which is 10 % of an ε of 0.1. Here the error
  is relative: at most :data:`PRV_RELATIVE_ERROR` of ε (never above 0.01, never below
  :data:`PRV_MIN_EPS_ERROR`), so the bound stays within 1 % of the tight value. Where ε is in
  the hundreds (e.g. q = 1, σ = 0.7, 1000 steps) Opacus's PRV mesh would need tens of millions of
  points and returns inf after many seconds; there ``"prv"`` returns the RDP bound (a few % loose,
  still valid).

Opacus converts RDP to (ε, δ) with the improved bound of Balle et al. 2020 (Theorem 21),
``ε = rdp + log((α−1)/α) − (log δ + log α)/(α − 1)``, not the classic ``rdp − log δ/(α − 1)``
of Mironov 2017; so does dp_accounting. With the improved bound, TF-Privacy's example
(q = 150/60000, σ = 1.3, 6000 steps, δ = 1e-5) gives 0.7242; the classic bound gives 0.9419.

Results are cached on the validated arguments (``functools.lru_cache``): moving a slider back
to a value already seen costs microseconds. The per-step RDP of a (q, σ) pair is cached apart
from ``steps`` and δ, because RDP is linear in the number of steps: a steps or δ slider costs
one conversion, not a new RDP computation. For a new (q, σ) the RDP accountant computes only
the orders that can give the smallest ε (see ``_epsilon_rdp``): Opacus's result, about 2–5× faster.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from scipy.fft import next_fast_len

from dpfl_course._validate import check_delta, check_finite, check_int

# Opacus is imported on first use, not here: importing it loads its whole training stack (about
# 2 s), and notebooks 01-03 use the mechanisms without ever asking an accountant.


def _opacus_rdp():
    from opacus.accountants.analysis import rdp

    return rdp

__all__ = [
    "RDP_ORDERS",
    "PRV_RELATIVE_ERROR",
    "PRV_MIN_EPS_ERROR",
    "NOISE_MULTIPLIER_RTOL",
    "ACCOUNTANTS",
    "epsilon",
    "epsilon_curve",
    "composed_epsilon",
    "noise_multiplier_for",
    "gaussian_rdp",
    "subsampled_gaussian_rdp",
    "rdp_to_epsilon",
]

# Opacus's default RDP orders (``RDPAccountant.DEFAULT_ALPHAS``, tested equal).
_OPACUS_ORDERS: tuple[float, ...] = (tuple(1 + x / 10.0 for x in range(1, 100))
                                     + tuple(float(a) for a in range(12, 64)))

#: RDP orders α searched by the RDP accountant: Opacus's defaults plus four large orders.
RDP_ORDERS: tuple[float, ...] = _OPACUS_ORDERS + (128.0, 256.0, 512.0, 1024.0)

#: The PRV accountant's ε error, relative to ε (see the module docstring).
PRV_RELATIVE_ERROR = 0.005
#: Smallest absolute ε error asked of the PRV accountant (finer meshes cost too much memory).
PRV_MIN_EPS_ERROR = 1e-4
#: ``noise_multiplier_for`` stops when ε is within this fraction below the target.
NOISE_MULTIPLIER_RTOL = 1e-3
#: Names accepted by ``accountant=``.
ACCOUNTANTS = ("rdp", "prv")

_MAX_NOISE_MULTIPLIER = 1e6
_MIN_NOISE_MULTIPLIER = 1e-3
_MAX_PRV_GRID = 4_000_000  # points in the PRV accountant's mesh: about 30 MB per array


def _check_accountant(accountant) -> str:
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    return accountant


def _check_orders(orders) -> tuple[float, ...]:
    if orders is None:
        return RDP_ORDERS
    values = np.atleast_1d(np.asarray(orders, dtype=float))
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 1):
        raise ValueError(f"orders must be finite numbers in (1, inf), got {orders!r}")
    return tuple(float(a) for a in values)


def gaussian_rdp(*, noise_multiplier, orders=None) -> np.ndarray:
    """RDP of the Gaussian mechanism at each order: ``α / (2 σ²)``.

    ``noise_multiplier`` is σ = (noise standard deviation) / (L2 sensitivity). ``k`` runs compose
    to ``k`` times this (RDP adds up).

    >>> gaussian_rdp(noise_multiplier=2.0, orders=[2, 8])
    array([0.25, 1.  ])
    """
    sigma = check_finite("noise_multiplier", noise_multiplier, low=0, low_open=True)
    alphas = np.asarray(_check_orders(orders))
    return alphas / (2.0 * sigma**2)


@functools.lru_cache(maxsize=200_000)
def _rdp_at(noise_multiplier: float, sample_rate: float, order: float) -> float:
    """Opacus's RDP of one subsampled-Gaussian step at one order (cached: sliders revisit)."""
    return float(_opacus_rdp().compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier,
                                         steps=1, orders=float(order)))


def _rdp_per_step(noise_multiplier: float, sample_rate: float, orders: tuple) -> np.ndarray:
    return np.array([_rdp_at(noise_multiplier, sample_rate, a) for a in orders])


def subsampled_gaussian_rdp(*, noise_multiplier, sample_rate, steps=1, orders=None) -> np.ndarray:
    """RDP of ``steps`` runs of the Poisson-subsampled Gaussian mechanism, by Opacus's ``compute_rdp``.

    Each run includes every record independently with probability ``sample_rate`` and adds
    Gaussian noise of standard deviation ``noise_multiplier`` × sensitivity. With
    ``sample_rate=1`` this is :func:`gaussian_rdp` times ``steps``.

    >>> r = subsampled_gaussian_rdp(noise_multiplier=2.0, sample_rate=1.0, steps=3, orders=[2, 8])
    >>> bool(np.allclose(r, 3 * gaussian_rdp(noise_multiplier=2.0, orders=[2, 8])))
    True
    """
    sigma = check_finite("noise_multiplier", noise_multiplier, low=0, low_open=True)
    q = check_finite("sample_rate", sample_rate, low=0, high=1, low_open=True)
    n = check_int("steps", steps, low=0)
    return n * _rdp_per_step(sigma, q, _check_orders(orders))


def rdp_to_epsilon(rdp, *, delta, orders=None) -> tuple[float, float]:
    """Convert RDP values (one per order) to (ε, best order) at ``delta``, by Opacus's conversion.

    Opacus uses Balle et al. 2020, Theorem 21 (see the module docstring). Opacus's warning that
    the best order is the first or last one is silenced: :data:`RDP_ORDERS` reaches α = 1024, so
    the last order only wins for ε below about 0.005, and the first (α = 1.1) only for ε in the
    hundreds, where no one trains.

    >>> eps, alpha = rdp_to_epsilon(gaussian_rdp(noise_multiplier=1.0), delta=1e-5)
    >>> round(eps, 3), alpha
    (4.729, 5.4)
    """
    d = check_delta(delta)
    alphas = _check_orders(orders)
    values = np.atleast_1d(np.asarray(rdp, dtype=float))
    if values.shape != (len(alphas),):
        raise ValueError(f"rdp must hold one value per order ({len(alphas)}), got shape {values.shape}")
    if np.any(np.isnan(values)) or np.any(values < 0):
        raise ValueError("rdp must hold numbers in [0, inf]")
    if np.all(np.isinf(values)):
        return math.inf, float(alphas[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        eps, best = _opacus_rdp().get_privacy_spent(orders=list(alphas), rdp=values, delta=d)
    return float(eps), float(best)


def _canonical_runs(runs) -> tuple[tuple[float, float, int], ...]:
    """Merge runs with the same (σ, q) and sort them: composition does not depend on order."""
    steps: dict[tuple[float, float], int] = {}
    for sigma, q, n in runs:
        if n > 0:
            steps[(sigma, q)] = steps.get((sigma, q), 0) + n
    return tuple(sorted((sigma, q, n) for (sigma, q), n in steps.items()))


def _conversion_offset(alphas: np.ndarray, delta: float) -> np.ndarray:
    """The part of Opacus's RDP → ε conversion that does not depend on the RDP value."""
    return -(np.log(delta) + np.log(alphas)) / (alphas - 1) + np.log((alphas - 1) / alphas)


def _skeleton(orders: tuple) -> np.ndarray:
    """The orders computed first; every other order is bounded below from them (see _epsilon_rdp)."""
    return np.array([a for a in orders if float(a).is_integer() and a <= 63])


@functools.lru_cache(maxsize=4096)
def _epsilon_rdp(runs: tuple, delta: float, orders: tuple = RDP_ORDERS) -> float:
    """Opacus's RDP ε for the composition of ``runs``, computing only the orders that can win.

    Opacus computes RDP at all 155 orders and keeps the smallest ε; the fractional orders cost
    most of the time. RDP never decreases with the order, so the RDP at the integer order just
    below α bounds RDP(α) from below, hence ε(α) too. An order whose lower bound is above the
    best ε found is skipped (given RDP = inf, so Opacus's conversion ignores it): the result is
    Opacus's to the last digit (tested), at a fraction of the cost.
    """
    if not runs:
        return 0.0
    alphas = np.asarray(orders)
    skeleton = _skeleton(orders)
    offset = _conversion_offset(alphas, delta)

    def total(alpha):
        return sum(n * _rdp_at(sigma, q, alpha) for sigma, q, n in runs)

    rdp = np.full(len(alphas), np.inf)
    known = {}
    for i, a in enumerate(alphas):
        if a in skeleton:
            rdp[i] = known[a] = total(a)
    best = float(np.min(rdp + offset))
    for i, a in enumerate(alphas):
        if a in known:
            continue
        below = skeleton[skeleton < a]
        lower = known[below[-1]] if below.size else 0.0
        # A relative margin far above float rounding: an order within it is computed, not skipped.
        if lower + offset[i] <= best + 1e-9 * abs(best) + 1e-12:
            rdp[i] = total(a)
            best = min(best, rdp[i] + offset[i])
    return rdp_to_epsilon(rdp, delta=delta, orders=orders)[0]


@functools.cache
def _prv_accountant_class():
    """Opacus's PRV accountant, faster for sliders (a class made on first use: see the imports)."""
    from opacus.accountants import PRVAccountant

    class FastPRVAccountant(PRVAccountant):
        _get_domain = _safe_domain
    return FastPRVAccountant


def _safe_domain(self, prvs, num_self_compositions, eps_error, delta_error):
    """The PRV accountant's domain: Opacus's safe domain (Gopi et al., remark 5.6), sized from our
    cached RDP instead of two fresh RDP accountants (the same size as Opacus's
    ``compute_safe_domain_size``, tested), and widened to an FFT-friendly length."""
    from opacus.accountants.analysis.prv import Domain

    total = sum(num_self_compositions)
    runs = _canonical_runs((p.noise_multiplier, p.sample_rate, n)
                           for p, n in zip(prvs, num_self_compositions))
    size = _epsilon_rdp(runs, delta_error / 4, _OPACUS_ORDERS)
    for p in prvs:
        one = ((p.noise_multiplier, p.sample_rate, 1),)
        size = max(size, _epsilon_rdp(one, delta_error / (8 * total), _OPACUS_ORDERS))
    half_width = max(size, eps_error) + 3
    mesh_size = eps_error / np.sqrt(total * np.log(12 / delta_error) / 2)
    domain = Domain.create_aligned(-half_width, half_width, mesh_size)
    # Widen the domain evenly on both sides (Opacus's composition assumes it centred) to the
    # next even FFT-friendly length (2^a 3^b 5^c): the composition is one FFT of this length,
    # which costs up to 4x more at an awkward length. A wider domain only truncates less.
    fast = next_fast_len(domain.size, real=True)
    while fast % 2:  # even, like Opacus's sizes: the extra points split evenly
        fast = next_fast_len(fast + 1, real=True)
    extra = (fast - domain.size) // 2 * domain.dt
    return Domain(domain.t_min - extra, domain.t_max + extra, fast)


def _prv_epsilon(runs, delta, eps_error) -> float:
    """Opacus's PRV accountant (upper bound) for the composition of ``runs``."""
    accountant = _prv_accountant_class()()
    accountant.history = [(sigma, q, n) for sigma, q, n in runs]
    # At sample_rate = 1 its density takes log(1 - q) = log 0 (harmless: it means t > -inf).
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(accountant.get_epsilon(delta, eps_error=eps_error))


def _prv_grid_size(eps_bound, steps, delta, eps_error) -> float:
    """About how many points Opacus's PRV mesh will have (its domain is ±(ε + 3) wide)."""
    mesh = eps_error / math.sqrt(steps * math.log(12 / (delta / 1000)) / 2)
    return 2 * (eps_bound + 3) / mesh


def _relative_eps_error(estimate: float) -> float:
    return min(0.01, max(PRV_RELATIVE_ERROR * estimate, PRV_MIN_EPS_ERROR))


@functools.lru_cache(maxsize=1024)
def _epsilon_prv(runs: tuple, delta: float) -> float:
    if not runs:
        return 0.0
    rdp_bound = _epsilon_rdp(runs, delta)
    total_steps = sum(n for _, _, n in runs)
    # Where ε is in the hundreds the PRV mesh would need tens of millions of points (and
    # Opacus then returns inf after many seconds); the RDP bound is still a valid upper bound.
    if _prv_grid_size(rdp_bound, total_steps, delta, 0.01) > _MAX_PRV_GRID:
        return rdp_bound
    try:
        # The error asked for is relative to ε. PRV's ε is rarely below half the RDP bound, so
        # one pass usually suffices; if ε turns out smaller, a second pass asks for a finer error.
        guess = 0.5 * rdp_bound
        eps_error = _relative_eps_error(guess)
        while _prv_grid_size(rdp_bound, total_steps, delta, eps_error) > _MAX_PRV_GRID:
            eps_error = min(2 * eps_error, 0.01)  # 0.01 fits the grid (checked above)
        upper = _prv_epsilon(runs, delta, eps_error)
        finer = _relative_eps_error(upper - eps_error)  # get_epsilon returns estimate + eps_error
        if finer < eps_error and _prv_grid_size(rdp_bound, total_steps, delta, finer) <= _MAX_PRV_GRID:
            upper = _prv_epsilon(runs, delta, finer)
    except (RuntimeError, ValueError, FloatingPointError, MemoryError):
        upper = math.inf
    if not math.isfinite(upper):
        return rdp_bound
    # A bound below 0 means the runs are (0, δ)-DP (δ at least their total variation distance).
    return max(0.0, min(upper, rdp_bound))


def _check_run(noise_multiplier, sample_rate, steps, *, min_steps=0) -> tuple[float, float, int]:
    return (check_finite("noise_multiplier", noise_multiplier, low=0, low_open=True),
            check_finite("sample_rate", sample_rate, low=0, high=1, low_open=True),
            check_int("steps", steps, low=min_steps))


def composed_epsilon(runs, *, delta, accountant="rdp") -> float:
    """The ε of several subsampled-Gaussian runs on the same data, composed by the accountant.

    ``runs`` is a sequence of ``(noise_multiplier, sample_rate, steps)``, e.g. training phases
    with different noise. The runs are composed tightly (RDP adds up; PRV convolves), which is
    far better than adding their separate ε. One run gives exactly :func:`epsilon`.

    >>> one = epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=200, delta=1e-5)
    >>> two = composed_epsilon([(1.1, 0.01, 100), (1.1, 0.01, 100)], delta=1e-5)
    >>> one == two
    True
    >>> round(composed_epsilon([(1.1, 0.01, 100), (2.0, 0.01, 100)], delta=1e-5), 3)
    0.972
    """
    checked = []
    for run in runs:
        try:
            sigma, q, n = run
        except (TypeError, ValueError):
            raise ValueError("runs must hold (noise_multiplier, sample_rate, steps) triples, "
                             f"got {run!r}") from None
        checked.append(_check_run(sigma, q, n))
    d = check_delta(delta)
    kind = _check_accountant(accountant)
    canonical = _canonical_runs(checked)
    return _epsilon_rdp(canonical, d) if kind == "rdp" else _epsilon_prv(canonical, d)


def epsilon(*, noise_multiplier, sample_rate, steps, delta, accountant="rdp") -> float:
    """The ε spent by ``steps`` runs of the Poisson-subsampled Gaussian mechanism, at ``delta``.

    This is DP-SGD's privacy: each step samples every record with probability ``sample_rate``
    (batch size / dataset size) and adds Gaussian noise of ``noise_multiplier`` × clipping norm.

    Args:
        noise_multiplier: σ, noise standard deviation divided by the sensitivity; > 0.
        sample_rate: q, the Poisson sampling probability, in (0, 1].
        steps: number of steps, an integer ≥ 0 (0 steps spend ε = 0).
        delta: δ of the (ε, δ) guarantee, in (0, 1).
        accountant: ``"rdp"`` (Rényi DP, Opacus's RDPAccountant) or ``"prv"`` (numerical
            composition of privacy loss random variables, Opacus's PRVAccountant; tighter).

    Returns:
        ε as a float, an upper bound. ``"prv"`` is within about 0.5 % (or 1e-4) above the exact
        value; where ε is in the hundreds it returns the RDP bound (see the module docstring).

    Raises:
        ValueError: if an argument is out of range, naming it.

    >>> round(epsilon(noise_multiplier=1.3, sample_rate=150 / 60000, steps=6000, delta=1e-5), 4)
    0.7242
    >>> epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=0, delta=1e-5)
    0.0
    """
    sigma, q, n = _check_run(noise_multiplier, sample_rate, steps)
    d = check_delta(delta)
    kind = _check_accountant(accountant)
    runs = ((sigma, q, n),) if n > 0 else ()
    return _epsilon_rdp(runs, d) if kind == "rdp" else _epsilon_prv(runs, d)


_CURVE_BLOCK = 4096


def epsilon_curve(*, noise_multiplier, sample_rate, steps, delta) -> np.ndarray:
    """ε (RDP accountant) after each of steps 1, 2, ..., ``steps``, all at once.

    Equals ``[epsilon(noise_multiplier=σ, sample_rate=q, steps=t, delta=δ) for t in 1..steps]``
    to the last digit (tested), at the cost of one call: RDP is linear in the number of steps, so
    the RDP of step t at every order is t times one step's (computed once, cached), and the
    conversion to ε is one (steps × orders) array operation. This is what a history of ε per
    round (or per epoch) should use instead of one accountant call per point.

    Args:
        noise_multiplier: σ > 0.
        sample_rate: q in (0, 1].
        steps: the number of points, an integer >= 0 (0 gives an empty array).
        delta: δ in (0, 1).

    Returns:
        A float64 array of shape (steps,), non-decreasing.

    >>> curve = epsilon_curve(noise_multiplier=1.1, sample_rate=0.01, steps=1000, delta=1e-5)
    >>> curve.shape, bool(curve[-1] == epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=1000, delta=1e-5))
    ((1000,), True)
    """
    sigma, q, n = _check_run(noise_multiplier, sample_rate, steps)
    d = check_delta(delta)
    if n == 0:
        return np.zeros(0)
    alphas = np.asarray(RDP_ORDERS)
    offset = _conversion_offset(alphas, d)
    t = np.arange(1, n + 1)[:, None]
    # (steps × orders) arrays are built a block of rows at a time, so 10^6 steps stay a few MB.
    blocks = [slice(i, min(i + _CURVE_BLOCK, n)) for i in range(0, n, _CURVE_BLOCK)]
    # As in _epsilon_rdp: the integer orders first; another order is computed only if its lower
    # bound (RDP at the integer order below it) could beat the best ε at some step.
    skeleton = _skeleton(RDP_ORDERS)
    known = {a: _rdp_at(sigma, q, a) for a in skeleton}
    skeleton_rdp = np.array([known[a] for a in skeleton])[None, :]
    skeleton_offset = offset[np.isin(alphas, skeleton)]
    best = np.concatenate([np.min(t[b] * skeleton_rdp + skeleton_offset, axis=1) for b in blocks])
    per_step = np.full(len(alphas), np.inf)
    for i, a in enumerate(alphas):
        if a in known:
            per_step[i] = known[a]
            continue
        below = skeleton[skeleton < a]
        lower = t[:, 0] * (known[below[-1]] if below.size else 0.0) + offset[i]
        if np.any(lower <= best + 1e-9 * np.abs(best) + 1e-12):
            per_step[i] = _rdp_at(sigma, q, a)
    # The same floating-point operations as _epsilon_rdp then Opacus's get_privacy_spent, row by row.
    conversion = (np.log(d) + np.log(alphas)) / (alphas - 1)
    log_ratio = np.log((alphas - 1) / alphas)
    return np.concatenate([np.nanmin(t[b] * per_step[None, :] - conversion + log_ratio, axis=1)
                           for b in blocks]).astype(float)


@functools.lru_cache(maxsize=1024)
def _noise_multiplier_for(target: float, q: float, n: int, d: float, kind: str) -> float:
    def eps(sigma):
        return epsilon(noise_multiplier=sigma, sample_rate=q, steps=n, delta=d, accountant=kind)

    # Bracket: ε decreases as σ grows. hi always meets the target, lo never does.
    lo = hi = 1.0
    if eps(hi) > target:
        while eps(hi) > target:
            lo, hi = hi, 2 * hi
            if hi > _MAX_NOISE_MULTIPLIER:
                raise ValueError(
                    f"target_epsilon={target!r} cannot be met with a noise_multiplier up to "
                    f"{_MAX_NOISE_MULTIPLIER:g} (the accountant's smallest ε at this delta is larger)")
    else:
        while eps(lo) <= target:
            lo, hi = lo / 2, lo
            if lo < _MIN_NOISE_MULTIPLIER:
                raise ValueError(
                    f"target_epsilon={target!r} is met even by noise_multiplier={_MIN_NOISE_MULTIPLIER:g}; "
                    "choose a smaller target_epsilon")
    # Shrink the bracket until ε(hi) is within NOISE_MULTIPLIER_RTOL below the target. ε is
    # close to a power law in σ, so interpolating log ε against log σ (the Illinois variant of
    # regula falsi) needs a few accountant calls where bisection needs a dozen; a step that
    # cannot interpolate (ε infinite or 0) bisects.
    eps_hi = eps(hi)
    f_lo, f_hi, last = _log_ratio(eps(lo), target), _log_ratio(eps_hi, target), 0
    while target - eps_hi > NOISE_MULTIPLIER_RTOL * target and hi / lo > 1 + 1e-9:
        x_lo, x_hi = math.log(lo), math.log(hi)
        if math.isfinite(f_lo) and math.isfinite(f_hi) and f_lo > f_hi:
            x = x_hi - f_hi * (x_hi - x_lo) / (f_hi - f_lo)
            margin = 0.01 * (x_hi - x_lo)  # stay strictly inside the bracket
            x = min(max(x, x_lo + margin), x_hi - margin)
        else:
            x = 0.5 * (x_lo + x_hi)
        mid = math.exp(x)
        eps_mid = eps(mid)
        if eps_mid <= target:
            hi, eps_hi, f_hi = mid, eps_mid, _log_ratio(eps_mid, target)
            if last == -1:
                f_lo /= 2  # Illinois: the same end moved twice, so pull the other one in
            last = -1
        else:
            lo, f_lo = mid, _log_ratio(eps_mid, target)
            if last == 1:
                f_hi /= 2
            last = 1
    return hi


def _log_ratio(value: float, target: float) -> float:
    return math.log(value / target) if 0 < value < math.inf else math.nan


def noise_multiplier_for(*, target_epsilon, sample_rate, steps, delta, accountant="rdp") -> float:
    """The smallest noise multiplier σ (to within 0.1 %) whose ε is at most ``target_epsilon``.

    Inverts :func:`epsilon` by bracketing, then regula falsi on log ε against log σ, so
    ``epsilon(noise_multiplier=noise_multiplier_for(target_epsilon=t, ...), ...)`` lies in
    ``[t·(1 − NOISE_MULTIPLIER_RTOL), t]``.

    Raises:
        ValueError: if an argument is out of range, if ``steps`` is 0, or if no σ in
            [0.001, 1e6] meets the target.

    >>> sigma = noise_multiplier_for(target_epsilon=1.0, sample_rate=0.01, steps=1000, delta=1e-5)
    >>> round(sigma, 2)
    1.51
    >>> e = epsilon(noise_multiplier=sigma, sample_rate=0.01, steps=1000, delta=1e-5)
    >>> 0.999 <= e <= 1.0
    True
    """
    target = check_finite("target_epsilon", target_epsilon, low=0, low_open=True)
    q = check_finite("sample_rate", sample_rate, low=0, high=1, low_open=True)
    n = check_int("steps", steps, low=1)
    d = check_delta(delta)
    kind = _check_accountant(accountant)
    return _noise_multiplier_for(target, q, n, d, kind)
