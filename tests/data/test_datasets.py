"""The Dataset object and the offline loaders (digits, diabetes, breast cancer)."""

import numpy as np
import pytest
import torch

from dpfl_course.data.datasets import Dataset, load_breast_cancer, load_diabetes, load_digits


# ---------------------------------------------------------------- digits

def test_digits_shapes_dtypes_and_range():
    data = load_digits()
    assert data.X_train.shape == (1347, 64) and data.X_test.shape == (450, 64)
    assert data.y_train.shape == (1347,) and data.y_test.shape == (450,)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.X.min() == 0.0 and data.X.max() == 1.0  # 16/16: the brightest pixel maps to 1
    assert (data.X * 16 - torch.round(data.X * 16)).abs().max() < 1e-6  # scaled by 16, nothing else
    assert set(data.y.tolist()) == set(range(10))
    assert data.num_classes == 10 and data.image_shape == (8, 8) and data.num_features == 64
    assert (data.num_train, data.num_test) == (1347, 450)
    assert data.class_names == tuple("0123456789") and len(data.feature_names) == 64


def test_digits_split_is_stratified():
    data = load_digits()
    overall = torch.bincount(data.y, minlength=10).double() / len(data.y)
    for part in (data.y_test, data.y_train):
        share = torch.bincount(part, minlength=10).double() / len(part)
        assert (share - overall).abs().max() <= 0.02
    # Tighter than ±2 %, which a plain random split usually meets too: each class's test count is
    # its exact share of the 450 test images, rounded either way.
    expected = torch.bincount(data.y, minlength=10).double() * 450 / 1797
    assert (torch.bincount(data.y_test, minlength=10) - expected).abs().max() < 1


def test_digits_is_the_sklearn_data_rearranged():
    import sklearn.datasets

    raw = sklearn.datasets.load_digits()
    data = load_digits()
    rows = {tuple(r) for r in (raw.data / 16).astype(np.float32).tolist()}
    assert len(data.X) == len(raw.data)
    assert all(tuple(r) in rows for r in data.X_test.tolist())
    assert sorted(data.y.tolist()) == sorted(raw.target.tolist())


def test_digits_seed_fixes_the_split():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, c.X_train)


def test_digits_test_size():
    data = load_digits(test_size=0.5)
    assert data.num_train + data.num_test == 1797 and abs(data.num_test - 898.5) <= 1


@pytest.mark.parametrize("test_size", [0, 1, -0.1, 1.5, float("nan"), float("inf"), None])
def test_digits_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match=r"test_size must be .* in \(0, 1\)"):
        load_digits(test_size=test_size)


@pytest.mark.parametrize("seed", [-1, 1.5, 2**32, "0", True])
def test_loaders_reject_bad_seed(seed):
    for loader in (load_digits, load_diabetes, load_breast_cancer):
        with pytest.raises(ValueError, match="seed must be an integer"):
            loader(seed=seed)


# ---------------------------------------------------------------- diabetes

def test_diabetes_values_are_raw():
    data = load_diabetes(test_size=0)
    names = data.feature_names
    assert names == ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    col = {name: data.X[:, j] for j, name in enumerate(names)}
    assert 18 <= col["age"].min() and col["age"].max() <= 80
    assert set(col["sex"].tolist()) == {1.0, 2.0}
    assert 15 <= col["bmi"].min() and col["bmi"].max() <= 45
    assert 50 <= col["bp"].min() and col["bp"].max() <= 140
    assert data.X.dtype == torch.float32 and len(data.X) == 442


def test_diabetes_label_is_target_above_median():
    data = load_diabetes(seed=1)
    assert data.target.dtype == torch.float32 and data.target.shape == (442,)
    assert 25 <= data.target.min() and data.target.max() <= 346
    median = float(np.median(data.target.numpy()))  # not torch's median: that is the lower middle value
    assert torch.equal(data.y, (data.target > median).long())
    assert data.y.sum() == 221
    assert data.num_classes == 2 and data.class_names == ("below median", "above median")


def test_diabetes_target_is_aligned_with_rows():
    import sklearn.datasets

    raw = sklearn.datasets.load_diabetes(scaled=False)
    data = load_diabetes(seed=5)
    by_row = {tuple(np.float32(r).tolist()): t for r, t in zip(raw.data, raw.target)}
    for x, t in zip(data.X.tolist(), data.target.tolist()):
        assert by_row[tuple(x)] == t


def test_diabetes_test_size_zero_keeps_every_row_in_train():
    data = load_diabetes(test_size=0)
    assert data.X_train.shape == (442, 10) and data.X_test.shape == (0, 10)
    assert data.y_test.shape == (0,) and data.y_test.dtype == torch.int64
    assert data.num_test == 0 and torch.equal(data.X, data.X_train)
    default = load_diabetes()
    assert (default.num_train, default.num_test) == (331, 111)


@pytest.mark.parametrize("loader", [load_diabetes, load_breast_cancer])
@pytest.mark.parametrize("test_size", [1, -0.01, float("nan")])
def test_tables_reject_bad_test_size(loader, test_size):
    with pytest.raises(ValueError, match=r"test_size must be .* in \[0, 1\)"):
        loader(test_size=test_size)


# ---------------------------------------------------------------- breast cancer

def test_breast_cancer():
    data = load_breast_cancer()
    assert len(data.X) == 569 and data.num_features == 30 and len(data.feature_names) == 30
    assert data.feature_names[0] == "mean radius"
    assert data.class_names == ("malignant", "benign") and data.num_classes == 2
    assert torch.bincount(data.y).tolist() == [212, 357]
    assert data.X[:, 0].max() > 20  # raw radii in micrometre-scale units, not standardised
    for seed in range(5):  # stratified: the benign share of the test set is kept exactly, whatever the seed
        assert abs(load_breast_cancer(seed=seed).y_test.sum().item() - 357 * 143 / 569) < 1
    everything = load_breast_cancer(test_size=0)
    assert everything.num_train == 569 and everything.X_test.shape == (0, 30)


# ---------------------------------------------------------------- the Dataset object

def test_repr_is_short():
    assert repr(load_digits()) == "Dataset('digits', train=1347, test=450, features=64, classes=10)"
    assert "tensor" not in repr(load_diabetes()) and "/" not in repr(load_diabetes())


def test_dataset_is_frozen_and_checks_shapes():
    data = load_digits()
    with pytest.raises(AttributeError):
        data.num_classes = 3
    fields = dict(
        name="toy", X_train=torch.zeros(4, 2), y_train=torch.zeros(4, dtype=torch.int64),
        X_test=torch.zeros(1, 2), y_test=torch.zeros(1, dtype=torch.int64), num_classes=2,
        feature_names=("a", "b"), target_name="t", class_names=("no", "yes"), source="made up",
    )
    toy = Dataset(**fields)
    assert toy.image_shape is None and toy.clients is None and toy.target is None
    assert toy.X.shape == (5, 2) and toy.y.shape == (5,)
    with pytest.raises(ValueError, match="y_train"):
        Dataset(**{**fields, "y_train": torch.zeros(3, dtype=torch.int64)})
    with pytest.raises(ValueError, match="X_test"):
        Dataset(**{**fields, "X_test": torch.zeros(1, 2, dtype=torch.float64)})
    with pytest.raises(ValueError, match="class_names"):
        Dataset(**{**fields, "num_classes": 3})
    with pytest.raises(ValueError, match="target"):
        Dataset(**{**fields, "target": torch.zeros(4)})
