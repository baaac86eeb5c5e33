"""PrivacyLedger: totals, tight composition of Gaussian runs, budget, display, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpfl_course import dp


def test_pure_spends_total_is_basic_composition():
    rng = np.random.default_rng(1)
    eps = rng.uniform(0.05, 0.5, size=12)
    dels = rng.choice([0.0, 1e-7, 1e-6], size=12)
    ledger = dp.PrivacyLedger()
    for i, (e, d) in enumerate(zip(eps, dels)):
        total = ledger.spend(f"query {i}", epsilon=e, delta=d)
        assert total == pytest.approx(dp.basic_composition(eps[: i + 1], dels[: i + 1]), rel=1e-12)
    assert ledger.total() == pytest.approx(dp.basic_composition(eps, dels), rel=1e-12)
    assert [e.total.epsilon for e in ledger.entries] == sorted(e.total.epsilon for e in ledger.entries)


@pytest.mark.parametrize("accountant", dp.ACCOUNTANTS)
def test_single_dp_sgd_run_is_exactly_epsilon(accountant):
    ledger = dp.PrivacyLedger(delta=1e-5, accountant=accountant)
    ledger.spend_gaussian("DP-SGD", noise_multiplier=1.1, sample_rate=0.01, steps=1000)
    assert ledger.epsilon == dp.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=1000, delta=1e-5,
                                        accountant=accountant)
    assert ledger.total().delta == 1e-5


@pytest.mark.parametrize("accountant", dp.ACCOUNTANTS)
def test_two_identical_runs_equal_one_run_of_twice_the_steps(accountant):
    twice = dp.PrivacyLedger(delta=1e-5, accountant=accountant)
    twice.spend_gaussian("epoch 1", noise_multiplier=1.3, sample_rate=0.02, steps=250)
    twice.spend_gaussian("epoch 2", noise_multiplier=1.3, sample_rate=0.02, steps=250)
    once = dp.PrivacyLedger(delta=1e-5, accountant=accountant)
    once.spend_gaussian("both epochs", noise_multiplier=1.3, sample_rate=0.02, steps=500)
    assert twice.total() == once.total()
    # ... which is far less than adding the two runs' ε (basic composition).
    assert twice.epsilon < 2 * twice.entries[0].epsilon * 0.8


def test_runs_with_different_noise_compose_by_rdp():
    ledger = dp.PrivacyLedger(delta=1e-5)
    ledger.spend_gaussian("phase 1", noise_multiplier=1.0, sample_rate=0.01, steps=300)
    ledger.spend_gaussian("phase 2", noise_multiplier=2.0, sample_rate=0.05, steps=100)
    runs = [(1.0, 0.01, 300), (2.0, 0.05, 100)]
    assert ledger.epsilon == dp.composed_epsilon(runs, delta=1e-5)
    assert ledger.entries[0].total.epsilon == dp.epsilon(noise_multiplier=1.0, sample_rate=0.01,
                                                         steps=300, delta=1e-5)


def test_mixed_entries_add_the_gaussian_part_and_the_pure_part():
    ledger = dp.PrivacyLedger(delta=1e-5)
    ledger.spend("Laplace count", epsilon=0.5)
    ledger.spend_gaussian("DP-SGD", noise_multiplier=1.1, sample_rate=0.01, steps=500)
    ledger.spend("exponential choice", epsilon=0.25, delta=1e-7)
    ledger.spend_gaussian("fine-tune", noise_multiplier=1.1, sample_rate=0.01, steps=500)
    gauss = dp.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=1000, delta=1e-5)
    assert ledger.total() == pytest.approx((0.75 + gauss, 1e-5 + 1e-7), rel=1e-12)
    # The running total after each entry.
    first = dp.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=500, delta=1e-5)
    assert [e.total.epsilon for e in ledger.entries] == pytest.approx(
        [0.5, 0.5 + first, 0.75 + first, 0.75 + gauss], rel=1e-12)
    assert [e.total.delta for e in ledger.entries] == pytest.approx([0, 1e-5, 1e-5 + 1e-7, 1e-5 + 1e-7])


def test_empty_ledger_spends_nothing():
    ledger = dp.PrivacyLedger(delta=1e-5, budget=(1.0, 1e-5))
    assert ledger.total() == (0.0, 0.0)
    assert ledger.remaining() == (1.0, 1e-5)
    assert len(ledger) == 0 and "empty" in repr(ledger)


# ---------------------------------------------------------------------------- budget
def test_strict_spend_over_budget_raises_and_records_nothing():
    ledger = dp.PrivacyLedger(budget=(1.0, 1e-6))
    ledger.spend("first", epsilon=0.75)
    with pytest.raises(ValueError, match="budget"):
        ledger.spend("second", epsilon=0.5, strict=True)
    with pytest.raises(ValueError, match="budget"):
        ledger.spend("delta too big", epsilon=0.1, delta=1e-5, strict=True)
    assert len(ledger) == 1 and not ledger.over_budget
    assert ledger.remaining() == pytest.approx((0.25, 1e-6))


def test_strict_gaussian_spend_over_budget_raises():
    ledger = dp.PrivacyLedger(delta=1e-5, budget=(1.0, 1e-5), strict=True)
    with pytest.raises(ValueError, match="budget"):
        ledger.spend_gaussian("DP-SGD", noise_multiplier=0.8, sample_rate=0.05, steps=1000)
    assert len(ledger) == 0


def test_non_strict_spend_over_budget_is_flagged():
    ledger = dp.PrivacyLedger(budget=(1.0, 0.0))
    ledger.spend("first", epsilon=0.75)
    ledger.spend("second", epsilon=0.5)
    assert ledger.over_budget
    assert [e.over_budget for e in ledger.entries] == [False, True]
    assert ledger.remaining() == (0.0, 0.0)
    assert "over budget" in ledger.table()


def test_budget_spent_in_equal_parts_is_not_exceeded():
    ledger = dp.PrivacyLedger(budget=(1.0, 0.0), strict=True)
    for i in range(10):
        ledger.spend(f"query {i}", epsilon=0.1)  # 0.1 · 10 sums to 0.9999999999999999 or 1.0
    assert not ledger.over_budget


def test_remaining_needs_a_budget():
    with pytest.raises(ValueError, match="budget"):
        dp.PrivacyLedger().remaining()


# ---------------------------------------------------------------------------- display
def test_table_shows_rounded_numbers_and_running_totals():
    ledger = dp.PrivacyLedger(delta=1e-5, budget=(5.0, 1e-5))
    ledger.spend("Laplace count", epsilon=1 / 3)
    ledger.spend_gaussian("DP-SGD", noise_multiplier=1.1, sample_rate=0.01, steps=1000)
    text = ledger.table()
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["#", "mechanism"]
    assert "0.333" in lines[1] and "0.3333" not in lines[1]
    total = 1 / 3 + dp.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=1000, delta=1e-5)
    assert f"{total:.3f}" in lines[2] and "σ=1.1" in lines[2] and "1.0e-05" in lines[2]
    assert "remaining" in lines[-1]
    assert text in repr(ledger)
    translated = ledger.table(headers=("#", "机制", "ε", "δ", "累计 ε", "累计 δ"))
    assert translated.splitlines()[0].startswith("#  机制")
    html = ledger._repr_html_()
    assert html.count("<tr>") == 3 and "0.333" in html


def test_html_escapes_mechanism_names():
    ledger = dp.PrivacyLedger()
    ledger.spend("<b>count</b>", epsilon=0.1)
    assert "<b>" not in ledger._repr_html_()


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs,name", [
    (dict(delta=0.0), "delta"), (dict(delta=1.0), "delta"), (dict(accountant="moments"), "accountant"),
    (dict(budget=1.0), "budget"), (dict(budget=(0.0, 1e-5)), "budget epsilon"),
    (dict(budget=(1.0, 1.0)), "budget delta"), (dict(strict="yes"), "strict"),
])
def test_constructor_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        dp.PrivacyLedger(**kwargs)


@pytest.mark.parametrize("kwargs,name", [
    (dict(mechanism="", epsilon=0.1), "mechanism"), (dict(mechanism=3, epsilon=0.1), "mechanism"),
    (dict(mechanism="q", epsilon=-0.1), "epsilon"), (dict(mechanism="q", epsilon=math.nan), "epsilon"),
    (dict(mechanism="q", epsilon=0.1, delta=1.0), "delta"),
    (dict(mechanism="q", epsilon=0.1, strict="no"), "strict"),
])
def test_spend_rejects_bad_arguments(kwargs, name):
    ledger = dp.PrivacyLedger()
    mechanism = kwargs.pop("mechanism")
    with pytest.raises(ValueError, match=name):
        ledger.spend(mechanism, **kwargs)
    assert len(ledger) == 0


@pytest.mark.parametrize("kwargs,name", [
    (dict(noise_multiplier=0.0), "noise_multiplier"), (dict(noise_multiplier=1.0, sample_rate=0.0), "sample_rate"),
    (dict(noise_multiplier=1.0, steps=0), "steps"), (dict(noise_multiplier=1.0, steps=1.5), "steps"),
])
def test_spend_gaussian_rejects_bad_arguments(kwargs, name):
    ledger = dp.PrivacyLedger(delta=1e-5)
    with pytest.raises(ValueError, match=name):
        ledger.spend_gaussian("DP-SGD", **kwargs)


def test_spend_gaussian_needs_the_ledger_delta():
    with pytest.raises(ValueError, match="delta"):
        dp.PrivacyLedger().spend_gaussian("DP-SGD", noise_multiplier=1.0, sample_rate=0.1, steps=10)
