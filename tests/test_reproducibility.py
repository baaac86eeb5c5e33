import numpy as np
import pytest
import torch

from dpfl_course import seed_everything
from dpfl_course._validate import check_finite, check_int


def test_seed_everything_makes_numpy_torch_and_returned_generator_repeat():
    rng = seed_everything(123)
    a = (rng.random(3), np.random.rand(3), torch.rand(3))
    rng = seed_everything(123)
    b = (rng.random(3), np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert torch.equal(a[2], b[2])
    c = seed_everything(124).random(3)
    assert not np.array_equal(a[0], c)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", None, True])
def test_seed_everything_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "abc", None, True, 0.0, -1])
def test_check_finite_rejects_with_name_and_range(value):
    with pytest.raises(ValueError, match=r"epsilon must be a finite number in \(0, inf\)"):
        check_finite("epsilon", value, low=0, low_open=True)


def test_check_finite_bounds_inclusive_and_open():
    assert check_finite("delta", 0.5, low=0, high=1, low_open=True, high_open=True) == 0.5
    with pytest.raises(ValueError, match=r"delta must be a finite number in \(0, 1\)"):
        check_finite("delta", 1.0, low=0, high=1, low_open=True, high_open=True)
    assert check_finite("test_size", 0.0, low=0, high=1, high_open=True) == 0.0
    assert check_finite("x", np.float32(2.0)) == 2.0


def test_check_int():
    assert check_int("k", np.int64(4), low=1, high=4) == 4
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\], got 5"):
        check_int("k", 5, low=1, high=4)
    with pytest.raises(ValueError, match="k must be an integer"):
        check_int("k", 3.0, low=1)
