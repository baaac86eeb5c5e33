"""dp.epsilon_curve: ε after every step at once, equal to dp.epsilon at each point."""

import numpy as np
import pytest

from dpfl_course import dp

RUNS = {
    # name: (noise_multiplier, sample_rate, steps)
    "dp-sgd-small-q": (1.1, 0.01, 400),
    "dp-fedavg-q0.2": (0.9, 0.2, 60),
    "full-batch": (3.0, 1.0, 50),
    "low-noise": (0.5, 0.37, 40),
    "high-noise": (8.0, 0.05, 100),  # ε small: the large orders (up to 1024) win early on
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_epsilon_curve_equals_epsilon_at_every_step(run):
    sigma, q, steps = RUNS[run]
    curve = dp.epsilon_curve(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5)
    reference = [dp.epsilon(noise_multiplier=sigma, sample_rate=q, steps=t, delta=1e-5) for t in range(1, steps + 1)]
    assert curve.shape == (steps,)
    assert curve.tolist() == reference  # to the last digit
    assert np.all(np.diff(curve) >= 0)


def test_epsilon_curve_of_zero_steps_is_empty():
    assert dp.epsilon_curve(noise_multiplier=1.0, sample_rate=0.1, steps=0, delta=1e-5).shape == (0,)


@pytest.mark.parametrize("kwargs, name", [
    ({"noise_multiplier": 0.0}, "noise_multiplier"),
    ({"noise_multiplier": float("nan")}, "noise_multiplier"),
    ({"sample_rate": 0.0}, "sample_rate"),
    ({"sample_rate": 1.5}, "sample_rate"),
    ({"steps": -1}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"delta": 1.0}, "delta"),
    ({"delta": 0.0}, "delta"),
], ids=["zero-noise", "nan-noise", "zero-rate", "rate-above-one", "negative-steps", "fractional-steps",
        "delta-one", "delta-zero"])
def test_epsilon_curve_rejects_bad_arguments(kwargs, name):
    settings = {"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 10, "delta": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=name):
        dp.epsilon_curve(**settings)
