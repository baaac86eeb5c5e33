"""dp.epsilon / dp.noise_multiplier_for against independent references.

References: Google's dp_accounting (a test dependency, never imported by the package) — its
RdpAccountant for the RDP accountant and its PLDAccountant (privacy loss distributions, the
tight numerical reference) for the PRV accountant; for sample_rate = 1 also the exact
(ε, δ) curve of the Gaussian mechanism (Balle & Wang 2018, Theorem 8), computed here.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings

import numpy as np
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from scipy.fft import next_fast_len
from opacus.accountants.utils import get_noise_multiplier
from scipy import integrate, optimize, special

import dp_accounting
from dp_accounting.pld import pld_privacy_accountant
from dpfl_course import dp
from dpfl_course.dp import accounting

SAMPLE_RATES = (0.001, 0.01, 0.1, 1.0)
NOISE_MULTIPLIERS = (0.7, 1.1, 2.0, 5.0)
STEPS = (1, 100, 1000)
DELTAS = (1e-5, 1e-3)
GRID = list(itertools.product(SAMPLE_RATES, NOISE_MULTIPLIERS, STEPS, DELTAS))


def _id(point):
    q, sigma, steps, delta = point
    return f"q{q:g}-sigma{sigma:g}-T{steps}-delta{delta:g}"


def _event(q, sigma, steps):
    gaussian = dp_accounting.GaussianDpEvent(sigma)
    one = gaussian if q == 1.0 else dp_accounting.PoissonSampledDpEvent(q, gaussian)
    return dp_accounting.SelfComposedDpEvent(one, steps)


def reference_rdp(q, sigma, steps, delta):
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(_event(q, sigma, steps))
    return accountant.get_epsilon(delta)


def reference_pld(q, sigma, steps, delta):
    accountant = pld_privacy_accountant.PLDAccountant()
    accountant.compose(_event(q, sigma, steps))
    return accountant.get_epsilon(delta)


def exact_gaussian_epsilon(sigma, steps, delta):
    """Exact ε of `steps` Gaussian mechanisms with noise multiplier sigma (sample rate 1).

    They are one Gaussian mechanism of sensitivity √steps, whose tight δ(ε) is
    Φ(a − b) − e^ε Φ(−a − b) with a = √steps/(2σ), b = εσ/√steps (Balle & Wang 2018, Thm 8).
    """
    sens = math.sqrt(steps)

    def log_delta_excess(eps):
        a, b = sens / (2 * sigma), eps * sigma / sens
        first, second = special.log_ndtr(a - b), eps + special.log_ndtr(-a - b)
        return first + math.log1p(-math.exp(second - first)) - math.log(delta)

    return optimize.brentq(log_delta_excess, 1e-9, 1e4, xtol=1e-12)


@pytest.fixture(autouse=True)
def _quiet_dp_accounting():
    # dp_accounting logs a warning for every RDP order it drops (see the non-convergence test).
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


# ---------------------------------------------------------------------------- RDP
# dp_accounting's series for fractional orders stops after 1000 terms; at these points it has
# not converged for orders 1.1-1.6, drops them, and reports a larger ε (tested separately below).
DP_ACCOUNTING_NOT_CONVERGED = {(0.1, 0.7, 1000, 1e-5), (0.1, 0.7, 1000, 1e-3)}


@pytest.mark.parametrize("point", [p for p in GRID if p not in DP_ACCOUNTING_NOT_CONVERGED], ids=_id)
def test_rdp_epsilon_agrees_with_dp_accounting(point):
    q, sigma, steps, delta = point
    ours = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    ref = reference_rdp(q, sigma, steps, delta)
    if ref == 0.0:
        # dp_accounting adds a shortcut Opacus lacks: if δ ≥ √(1 − e^(−D_α)) for some order α,
        # the two output distributions are within total variation δ and ε = 0 holds. These
        # are single steps with tiny ε; ours is the (valid, looser) Opacus conversion.
        rdp = dp.subsampled_gaussian_rdp(noise_multiplier=sigma, sample_rate=q, steps=steps)
        assert np.any(delta**2 + np.expm1(-rdp) > 0)
        assert 0 < ours < 0.2
    else:
        assert ours == pytest.approx(ref, rel=0.01)


@pytest.mark.parametrize("delta", [1e-5, 1e-3])
def test_rdp_where_dp_accounting_drops_orders(delta):
    q, sigma, steps = 0.1, 0.7, 1000
    ours = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    # Our RDP at the dropped orders matches direct numerical integration of
    # E_{x~N(0,σ²)}[((1−q) + q·exp((2x−1)/(2σ²)))^α] (Mironov et al. 2019, Sec. 3.3) ...
    for alpha in (1.1, 1.3, 1.5):
        def integrand(x):
            return math.exp(-x * x / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi)) * (
                (1 - q) + q * math.exp((2 * x - 1) / (2 * sigma**2))) ** alpha
        moment, _ = integrate.quad(integrand, -40, 40, limit=400, epsabs=0, epsrel=1e-12)
        ours_rdp = dp.subsampled_gaussian_rdp(noise_multiplier=sigma, sample_rate=q, orders=[alpha])[0]
        assert ours_rdp == pytest.approx(math.log(moment) / (alpha - 1), rel=1e-6)
    # ... so our ε is the smaller valid bound, and it stays above the tight PLD value.
    assert reference_pld(q, sigma, steps, delta) <= ours < reference_rdp(q, sigma, steps, delta)


def test_rdp_epsilon_is_opacus_rdp_accountant():
    q, sigma, steps, delta = 0.02, 0.9, 500, 1e-5
    opacus = RDPAccountant()
    for _ in range(steps):
        opacus.step(noise_multiplier=sigma, sample_rate=q)
    ours = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    assert ours == opacus.get_epsilon(delta, alphas=list(dp.RDP_ORDERS))
    # The best order here is below 63, so Opacus's default orders give the same number.
    assert ours == opacus.get_epsilon(delta)


@pytest.mark.parametrize("point", GRID, ids=_id)
def test_rdp_epsilon_is_opacus_to_the_last_digit(point):
    # epsilon() computes only the orders that can win; Opacus computes all of them.
    q, sigma, steps, delta = point
    opacus = RDPAccountant()
    opacus.history = [(sigma, q, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = opacus.get_epsilon(delta, alphas=list(dp.RDP_ORDERS))
    assert dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta) == full


def test_composed_rdp_epsilon_is_opacus_to_the_last_digit():
    runs = [(0.9, 0.03, 120), (1.7, 0.2, 40), (3.0, 1.0, 5)]
    opacus = RDPAccountant()
    opacus.history = [(s, q, n) for s, q, n in sorted(runs)]
    assert dp.composed_epsilon(runs, delta=1e-6) == opacus.get_epsilon(1e-6, alphas=list(dp.RDP_ORDERS))


def test_large_orders_help_only_for_small_epsilon():
    # With Opacus's default orders (up to 63) ε cannot go below ~0.1 at δ=1e-5; ours can.
    kwargs = dict(noise_multiplier=5.0, sample_rate=0.001, steps=1, delta=1e-5)
    opacus = RDPAccountant()
    opacus.history = [(5.0, 0.001, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = opacus.get_epsilon(1e-5)
    assert dp.epsilon(**kwargs) < 0.25 * default
    assert dp.epsilon(**kwargs) == pytest.approx(reference_rdp(0.001, 5.0, 1, 1e-5), rel=0.01)


# ---------------------------------------------------------------------------- PRV
# Below ε = 0.02 a relative 1 % is finer than either side resolves: the PRV error is at least
# PRV_MIN_EPS_ERROR = 1e-4 and dp_accounting's PLD discretizes privacy loss in steps of 1e-4.
ABSOLUTE_TOLERANCE = 2 * accounting.PRV_MIN_EPS_ERROR


def _prv_falls_back(q, sigma, steps, delta):
    """Where ε is in the hundreds the PRV mesh would need over 4 million points; there
    epsilon(accountant="prv") returns the RDP bound instead (valid, a few % loose)."""
    rdp = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    return accounting._prv_grid_size(rdp, steps, delta, 0.01) > accounting._MAX_PRV_GRID


@pytest.mark.parametrize("point", GRID, ids=_id)
def test_prv_epsilon_agrees_with_pld(point):
    q, sigma, steps, delta = point
    kwargs = dict(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    ours = dp.epsilon(**kwargs, accountant="prv")
    rdp = dp.epsilon(**kwargs)
    if _prv_falls_back(q, sigma, steps, delta):
        assert q == 1.0 and ours == rdp > 150  # only ε in the hundreds falls back
        exact = exact_gaussian_epsilon(sigma, steps, delta)
        assert exact < ours < 1.05 * exact  # still an upper bound, within 5 %
        return
    # With q = 1 the tight value is known exactly (and PLD would take seconds per point).
    ref = exact_gaussian_epsilon(sigma, steps, delta) if q == 1.0 else reference_pld(q, sigma, steps, delta)
    assert abs(ours - ref) <= max(0.01 * ref, ABSOLUTE_TOLERANCE)
    assert ours <= rdp  # PRV is never looser than RDP


@pytest.mark.parametrize("q, sigma, steps", [(0.01, 1.1, 1000), (0.004, 0.8, 3000), (0.1, 2.0, 50)])
def test_prv_matches_opacus_prv_accountant(q, sigma, steps):
    delta = 1e-5
    ours = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta, accountant="prv")
    opacus = PRVAccountant()
    opacus.history = [(sigma, q, steps)]
    default = opacus.get_epsilon(delta)  # estimate + 0.01
    # Ours asks for a finer eps_error (relative to ε), so it sits between the estimate and default.
    assert default - 0.01 - 1e-3 <= ours <= default
    # The error asked for: 0.5 % of half the RDP bound (one pass when PRV's ε is above that half).
    # Opacus's accountant with that error gives the same bound up to the discretisation: ours
    # only widens the domain to an FFT-friendly length.
    rdp = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    eps_error = min(0.01, max(accounting.PRV_RELATIVE_ERROR * 0.5 * rdp, accounting.PRV_MIN_EPS_ERROR))
    assert ours > 0.5 * rdp
    assert ours == pytest.approx(opacus.get_epsilon(delta, eps_error=eps_error), abs=eps_error / 10)


@pytest.mark.parametrize("runs", [[(1.1, 0.01, 1000)], [(0.9, 0.02, 300), (2.0, 0.01, 700)], [(3.0, 1.0, 5)]])
def test_prv_domain_is_opacus_safe_domain(runs):
    # Our PRV accountant sizes its domain from cached RDP; it must be Opacus's domain exactly.
    from opacus.accountants.analysis.prv import PoissonSubsampledGaussianPRV, compute_safe_domain_size

    prvs = [PoissonSubsampledGaussianPRV(q, sigma) for sigma, q, _ in runs]
    counts = [n for _, _, n in runs]
    eps_error, delta_error = 0.004, 1e-8
    ours = accounting._prv_accountant_class()()._get_domain(prvs, counts, eps_error, delta_error)
    theirs = PRVAccountant()._get_domain(prvs, counts, eps_error, delta_error)
    L = compute_safe_domain_size(prvs, counts, eps_error=eps_error, delta_error=delta_error)
    # Same mesh and centre as Opacus's domain, at least as wide, and an even FFT-friendly length.
    assert ours.dt == pytest.approx(theirs.dt, rel=1e-12)
    assert ours.t_min <= theirs.t_min and ours.t_max >= theirs.t_max >= L - theirs.dt
    assert ours.t_min + ours.t_max == pytest.approx(theirs.t_min + theirs.t_max)  # same centre
    assert ours.size - theirs.size < 0.1 * theirs.size and ours.size % 2 == 0
    assert ours.size == next_fast_len(ours.size, real=True)


# ---------------------------------------------------------------------------- reference numbers
def _classic_epsilon(q, sigma, steps, delta):
    """Mironov 2017, Proposition 3: ε = min_α rdp(α) − log δ / (α − 1)."""
    orders = np.asarray(dp.RDP_ORDERS)
    rdp = dp.subsampled_gaussian_rdp(noise_multiplier=sigma, sample_rate=q, steps=steps)
    return float(np.min(rdp - math.log(delta) / (orders - 1)))


def test_tf_privacy_reference_150_of_60000():
    # 0.7242 is what Opacus's conversion (Balle et al. 2020) gives; the classic one gives 0.94.
    eps = dp.epsilon(noise_multiplier=1.3, sample_rate=150 / 60000, steps=6000, delta=1e-5)
    assert round(eps, 4) == 0.7242
    assert _classic_epsilon(150 / 60000, 1.3, 6000, 1e-5) == pytest.approx(0.9419, abs=1e-4)


def test_tf_privacy_reference_256_of_60000_60_epochs():
    q = 256 / 60000
    steps = int(60 / q)
    assert _classic_epsilon(q, 1.1, steps, 1e-5) == pytest.approx(3.01, abs=0.005)
    rdp = dp.epsilon(noise_multiplier=1.1, sample_rate=q, steps=steps, delta=1e-5)
    assert rdp == pytest.approx(2.597, abs=1e-3)  # the improved conversion, ~14 % tighter
    prv = dp.epsilon(noise_multiplier=1.1, sample_rate=q, steps=steps, delta=1e-5, accountant="prv")
    assert prv == pytest.approx(2.38, rel=0.01)
    assert prv < rdp < _classic_epsilon(q, 1.1, steps, 1e-5)


# ---------------------------------------------------------------------------- RDP pieces
def test_gaussian_rdp_closed_form_matches_opacus_at_sample_rate_one():
    orders = [1.5, 2, 10, 64, 1024]
    closed = 7 * dp.gaussian_rdp(noise_multiplier=1.7, orders=orders)
    opacus = dp.subsampled_gaussian_rdp(noise_multiplier=1.7, sample_rate=1.0, steps=7, orders=orders)
    np.testing.assert_allclose(opacus, closed, rtol=1e-12)
    # ... and their conversion is epsilon(sample_rate=1).
    eps, _ = dp.rdp_to_epsilon(7 * dp.gaussian_rdp(noise_multiplier=1.7), delta=1e-5)
    assert eps == pytest.approx(dp.epsilon(noise_multiplier=1.7, sample_rate=1.0, steps=7, delta=1e-5), rel=1e-12)


def test_subsampling_amplifies_privacy():
    full = dp.subsampled_gaussian_rdp(noise_multiplier=1.0, sample_rate=1.0)
    sampled = dp.subsampled_gaussian_rdp(noise_multiplier=1.0, sample_rate=0.01)
    assert np.all(sampled < full)


def test_zero_steps_spend_nothing():
    for accountant in dp.ACCOUNTANTS:
        assert dp.epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=0, delta=1e-5,
                          accountant=accountant) == 0.0


def test_epsilon_grows_with_steps_and_falls_with_noise():
    eps = [dp.epsilon(noise_multiplier=1.0, sample_rate=0.05, steps=t, delta=1e-5) for t in (10, 100, 1000)]
    assert eps[0] < eps[1] < eps[2]
    eps = [dp.epsilon(noise_multiplier=s, sample_rate=0.05, steps=100, delta=1e-5) for s in (0.8, 1.6, 3.2)]
    assert eps[0] > eps[1] > eps[2]


# ---------------------------------------------------------------------------- composed runs
def test_composed_epsilon_of_one_run_is_epsilon():
    for accountant in dp.ACCOUNTANTS:
        one = dp.epsilon(noise_multiplier=1.2, sample_rate=0.02, steps=300, delta=1e-5, accountant=accountant)
        assert dp.composed_epsilon([(1.2, 0.02, 300)], delta=1e-5, accountant=accountant) == one


def test_composed_epsilon_of_different_runs_agrees_with_dp_accounting():
    runs = [(1.1, 0.01, 500), (2.0, 0.05, 200)]
    events = dp_accounting.ComposedDpEvent([_event(q, s, n) for s, q, n in runs])
    rdp_ref = dp_accounting.rdp.RdpAccountant()
    rdp_ref.compose(events)
    pld_ref = pld_privacy_accountant.PLDAccountant()
    pld_ref.compose(events)
    assert dp.composed_epsilon(runs, delta=1e-5) == pytest.approx(rdp_ref.get_epsilon(1e-5), rel=0.01)
    assert dp.composed_epsilon(runs, delta=1e-5, accountant="prv") == pytest.approx(
        pld_ref.get_epsilon(1e-5), rel=0.01)
    # Composing tightly beats adding the two ε's.
    separate = sum(dp.epsilon(noise_multiplier=s, sample_rate=q, steps=n, delta=1e-5) for s, q, n in runs)
    assert dp.composed_epsilon(runs, delta=1e-5) < separate


def test_composed_epsilon_ignores_order():
    runs = [(1.1, 0.01, 50), (2.0, 0.05, 20), (1.1, 0.01, 30)]
    for accountant in dp.ACCOUNTANTS:
        a = dp.composed_epsilon(runs, delta=1e-5, accountant=accountant)
        b = dp.composed_epsilon(runs[::-1], delta=1e-5, accountant=accountant)
        assert a == b


# ---------------------------------------------------------------------------- inverse
@pytest.mark.parametrize("accountant", dp.ACCOUNTANTS)
@pytest.mark.parametrize("target,q,steps", [(1.0, 0.01, 1000), (3.0, 256 / 60000, 5000), (8.0, 0.1, 300),
                                            (0.5, 1.0, 1)])
def test_noise_multiplier_for_inverts_epsilon(accountant, target, q, steps):
    sigma = dp.noise_multiplier_for(target_epsilon=target, sample_rate=q, steps=steps, delta=1e-5,
                                    accountant=accountant)
    eps = dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5, accountant=accountant)
    assert (1 - dp.NOISE_MULTIPLIER_RTOL) * target <= eps <= target


def test_noise_multiplier_for_agrees_with_opacus():
    ours = dp.noise_multiplier_for(target_epsilon=2.0, sample_rate=0.02, steps=2000, delta=1e-5)
    with warnings.catch_warnings():  # its bracketing tries σ = 20 first: best order is the last
        warnings.simplefilter("ignore")
        theirs = get_noise_multiplier(target_epsilon=2.0, target_delta=1e-5, sample_rate=0.02, steps=2000)
    # Opacus stops when ε is within 0.01 (absolute) of the target, we within 0.1 %.
    assert ours == pytest.approx(theirs, rel=0.01)


def test_noise_multiplier_for_rejects_unreachable_target():
    with pytest.raises(ValueError, match="target_epsilon"):
        dp.noise_multiplier_for(target_epsilon=1e-4, sample_rate=1.0, steps=10, delta=1e-5)


# ---------------------------------------------------------------------------- validation
GOOD = dict(noise_multiplier=1.0, sample_rate=0.01, steps=100, delta=1e-5)


@pytest.mark.parametrize("name,value", [
    ("noise_multiplier", 0.0), ("noise_multiplier", -1.0), ("noise_multiplier", math.nan),
    ("sample_rate", 0.0), ("sample_rate", 1.5), ("sample_rate", math.inf),
    ("steps", -1), ("steps", 2.5), ("steps", True),
    ("delta", 0.0), ("delta", 1.0), ("delta", math.nan),
    ("accountant", "gdp"),
])
def test_epsilon_rejects_bad_arguments(name, value):
    with pytest.raises(ValueError, match=name):
        dp.epsilon(**{**GOOD, name: value})


@pytest.mark.parametrize("name,value", [
    ("target_epsilon", 0.0), ("target_epsilon", -1.0), ("target_epsilon", math.inf),
    ("sample_rate", 0.0), ("steps", 0), ("delta", 1.0), ("accountant", "RDP"),
])
def test_noise_multiplier_for_rejects_bad_arguments(name, value):
    good = dict(target_epsilon=1.0, sample_rate=0.01, steps=100, delta=1e-5)
    with pytest.raises(ValueError, match=name):
        dp.noise_multiplier_for(**{**good, name: value})


def test_rdp_helpers_reject_bad_arguments():
    with pytest.raises(ValueError, match="orders"):
        dp.gaussian_rdp(noise_multiplier=1.0, orders=[0.5, 2])
    with pytest.raises(ValueError, match="orders"):
        dp.gaussian_rdp(noise_multiplier=1.0, orders=[])
    with pytest.raises(ValueError, match="rdp"):
        dp.rdp_to_epsilon([1.0, 2.0], delta=1e-5)
    with pytest.raises(ValueError, match="delta"):
        dp.rdp_to_epsilon(dp.gaussian_rdp(noise_multiplier=1.0), delta=0)
    with pytest.raises(ValueError, match="runs"):
        dp.composed_epsilon([(1.0, 0.1)], delta=1e-5)
    with pytest.raises(ValueError, match="sample_rate"):
        dp.composed_epsilon([(1.0, 0.0, 5)], delta=1e-5)


def test_orders_are_opacus_defaults_plus_four_large_ones():
    assert accounting._OPACUS_ORDERS == tuple(float(a) for a in RDPAccountant.DEFAULT_ALPHAS)
    assert accounting.RDP_ORDERS[-4:] == (128.0, 256.0, 512.0, 1024.0)


def test_importing_dp_does_not_import_opacus():
    # Notebooks 01-03 use only the mechanisms; Opacus (about 2 s to import) loads on first use.
    import subprocess
    import sys

    code = "import sys; from dpfl_course import dp; print('opacus' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
