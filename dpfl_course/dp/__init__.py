"""Differential privacy: mechanisms, floating-point-safe samplers, composition and accounting
(thin over Opacus's accountants), and a privacy ledger that notebooks spend on.

    from dpfl_course import dp
    dp.laplace_mechanism(42.0, sensitivity=1.0, epsilon=0.5, generator=rng)
    dp.epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=1000, delta=1e-5)
"""

from dpfl_course.dp.mechanisms import *  # noqa: F401,F403
from dpfl_course.dp.samplers import *  # noqa: F401,F403
from dpfl_course.dp.accounting import *  # noqa: F401,F403
from dpfl_course.dp.composition import *  # noqa: F401,F403
from dpfl_course.dp.ledger import *  # noqa: F401,F403
from dpfl_course.dp.dpsgd import *  # noqa: F401,F403
