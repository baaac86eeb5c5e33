"""Tests for dpfl_course.fl.parameters and models: round trips, bytes, seeded initialisation."""

import pytest
import torch

from dpfl_course import fl


def test_get_set_round_trip_and_copy_semantics():
    model = fl.MLP(6, 5, 3, generator=torch.Generator().manual_seed(0))
    params = fl.get_parameters(model)
    params[0].zero_()  # a copy: the model is untouched
    assert not torch.equal(next(model.parameters()), params[0])
    other = fl.MLP(6, 5, 3, generator=torch.Generator().manual_seed(1))
    fl.set_parameters(other, fl.get_parameters(model))
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(other(x), model(x))


def test_set_parameters_rejects_wrong_count_and_shape():
    model = fl.LogisticRegression(6, 3)
    with pytest.raises(ValueError, match="must hold 2 tensors"):
        fl.set_parameters(model, [torch.zeros(3, 6)])
    with pytest.raises(ValueError, match=r"parameters\[0\] must have shape \(3, 6\)"):
        fl.set_parameters(model, [torch.zeros(6, 3), torch.zeros(3)])


def test_vector_round_trip():
    params = fl.get_parameters(fl.MLP(6, 5, 3))
    vec = fl.parameters_to_vector(params)
    assert vec.shape == (6 * 5 + 5 + 5 * 3 + 3,)
    for a, b in zip(fl.vector_to_parameters(vec, params), params):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="vector must be 1-D with"):
        fl.vector_to_parameters(vec[:-1], params)


def test_parameter_bytes_counts_four_bytes_per_float32():
    assert fl.parameter_bytes(fl.get_parameters(fl.LogisticRegression(64, 10))) == (64 * 10 + 10) * 4
    assert fl.parameter_bytes(fl.get_parameters(fl.MLP(64, 32, 10))) == (64 * 32 + 32 + 32 * 10 + 10) * 4


def test_models_initialise_from_their_generator_only():
    torch.manual_seed(123)
    a = fl.get_parameters(fl.MLP(8, 4, 3, generator=torch.Generator().manual_seed(5)))
    torch.manual_seed(456)  # the global generator must not matter
    b = fl.get_parameters(fl.MLP(8, 4, 3, generator=torch.Generator().manual_seed(5)))
    c = fl.get_parameters(fl.MLP(8, 4, 3, generator=torch.Generator().manual_seed(6)))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    bound = 1 / 8 ** 0.5
    assert a[0].abs().max() <= bound


@pytest.mark.parametrize("make", [lambda: fl.MLP(8, 4, 3), lambda: fl.LogisticRegression(8, 3)], ids=["mlp", "logreg"])
def test_building_a_model_leaves_the_global_generator_alone(make):
    # nn.Linear's own initialisation would draw from torch's global generator; ours must not.
    state = torch.get_rng_state()
    make()
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("kwargs, name", [
    ({"num_features": 0}, "num_features"), ({"hidden": 0}, "hidden"), ({"num_classes": 1}, "num_classes"),
    ({"hidden": 2.5}, "hidden")], ids=["features", "hidden", "classes", "hidden-float"])
def test_model_arguments_validated(kwargs, name):
    with pytest.raises(ValueError, match=name):
        fl.MLP(**kwargs)


def test_generator_must_be_a_torch_generator():
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        fl.LogisticRegression(4, 2, generator=0)
