"""The course's datasets as one kind of object, and the loaders for the offline ones.

Every loader returns a :class:`Dataset`: torch tensors split into train and test, plus the names a
notebook needs to label a figure. The three loaders here read tables bundled with scikit-learn, so
they never touch the network. MNIST lives in :mod:`dpfl_course.data.mnist` and LEAF's
Synthetic(α, β) in :mod:`dpfl_course.data.synthetic`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sklearn.datasets
import torch
from sklearn.model_selection import train_test_split

from dpfl_course._validate import check_finite, check_int

__all__ = ["Dataset", "load_digits", "load_diabetes", "load_breast_cancer"]

# train_test_split (and NumPy's legacy seeding under it) accepts seeds up to 2**32 - 1.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True, eq=False, kw_only=True)
class Dataset:
    """A dataset split into train and test, with the names needed to label its figures.

    Attributes:
        name: short name, e.g. ``"digits"``.
        X_train, X_test: float32 tensors of shape (n, num_features).
        y_train, y_test: int64 label tensors of shape (n,).
        num_classes: number of label values; labels are 0 .. num_classes - 1.
        feature_names: one name per column of X.
        target_name: what y is.
        class_names: one name per label value.
        image_shape: (height, width) when each row is a flattened image, else None.
        clients: for datasets that come already split across clients (Synthetic), one index
            array into the training rows per client; None otherwise.
        source: one line saying where the data comes from and under which licence.
        target: the raw continuous target when y is derived from it (diabetes), aligned with
            ``X`` (train rows, then test rows); None otherwise.

    ``eq=False``: comparing tensors element-wise has no single truth value, so datasets compare by
    identity.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    feature_names: tuple[str, ...]
    target_name: str
    class_names: tuple[str, ...]
    source: str
    image_shape: tuple[int, int] | None = None
    clients: tuple[np.ndarray, ...] | None = None
    target: torch.Tensor | None = None

    def __post_init__(self):
        # A loader bug caught here beats a shape error deep inside a training loop in class.
        d = len(self.feature_names)
        for part, X, y in (("train", self.X_train, self.y_train), ("test", self.X_test, self.y_test)):
            if X.dtype != torch.float32 or X.ndim != 2 or X.shape[1] != d:
                raise ValueError(f"X_{part} must be float32 of shape (n, {d}), got {X.dtype} {tuple(X.shape)}")
            if y.dtype != torch.int64 or y.shape != (X.shape[0],):
                raise ValueError(f"y_{part} must be int64 of shape ({X.shape[0]},), got {y.dtype} {tuple(y.shape)}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names must have num_classes={self.num_classes} names, got {len(self.class_names)}")
        if self.target is not None and self.target.shape != (self.num_train + self.num_test,):
            raise ValueError(f"target must have one value per row of X, got shape {tuple(self.target.shape)}")

    @property
    def X(self) -> torch.Tensor:
        """All rows: train, then test."""
        return torch.cat([self.X_train, self.X_test])

    @property
    def y(self) -> torch.Tensor:
        """All labels: train, then test."""
        return torch.cat([self.y_train, self.y_test])

    @property
    def num_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def num_train(self) -> int:
        return self.X_train.shape[0]

    @property
    def num_test(self) -> int:
        return self.X_test.shape[0]

    def __repr__(self) -> str:
        extra = "" if self.clients is None else f", clients={len(self.clients)}"
        return (
            f"Dataset({self.name!r}, train={self.num_train}, test={self.num_test}, "
            f"features={self.num_features}, classes={self.num_classes}{extra})"
        )


def _split(y: np.ndarray, *, test_size: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices; test_size 0 keeps every row in train, in the table's order."""
    rows = np.arange(len(y))
    if test_size == 0:
        return rows, rows[:0]
    return train_test_split(rows, test_size=test_size, random_state=seed, stratify=y if stratify else None)


def _tensors(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict:
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    return dict(X_train=X[train], y_train=y[train], X_test=X[test], y_test=y[test])


def load_digits(*, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """Load scikit-learn's bundled handwritten digits (1,797 8×8 images), split stratified by label.

    Pixels (0..16 in the file) are scaled to [0, 1] and each image is flattened to 64 features.

    Args:
        test_size: fraction of images in the test set, in (0, 1).
        seed: integer in [0, 2**32 - 1] fixing the split.

    Returns:
        A :class:`Dataset` with ``image_shape=(8, 8)`` and 10 classes.

    Raises:
        ValueError: if ``test_size`` or ``seed`` is out of range.

    >>> load_digits()
    Dataset('digits', train=1347, test=450, features=64, classes=10)
    >>> load_digits().num_classes
    10
    """
    test_size = check_finite("test_size", test_size, low=0, high=1, low_open=True, high_open=True)
    seed = check_int("seed", seed, low=0, high=MAX_SEED)
    raw = sklearn.datasets.load_digits()
    train, test = _split(raw.target, test_size=test_size, seed=seed, stratify=True)
    return Dataset(
        name="digits",
        **_tensors(raw.data / 16.0, raw.target, train, test),
        num_classes=10,
        feature_names=tuple(raw.feature_names),
        target_name="digit",
        class_names=tuple(str(c) for c in range(10)),
        image_shape=(8, 8),
        source="UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998), via scikit-learn; CC BY 4.0",
    )


def load_diabetes(*, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """Load scikit-learn's bundled diabetes table (442 patients) with its raw, unscaled values.

    The features are as measured: age in years, sex coded 1/2, body mass index, mean blood
    pressure, and six blood serum measurements s1..s6. The original target, a disease progression
    score one year after baseline (25..346), is kept in ``target``; ``y`` is the binary label
    "progression above the median of the whole table", so the table also serves classification.

    Args:
        test_size: fraction of rows in the test set, in [0, 1); 0 keeps every row in train (in the
            table's order), which is what counting queries on the whole table want.
        seed: integer in [0, 2**32 - 1] fixing the (non-stratified) split.

    Returns:
        A :class:`Dataset` with 10 features, 2 classes and the continuous ``target``.

    Raises:
        ValueError: if ``test_size`` or ``seed`` is out of range.

    >>> load_diabetes()
    Dataset('diabetes', train=331, test=111, features=10, classes=2)
    >>> data = load_diabetes(test_size=0)
    >>> data.num_train, data.num_test, data.feature_names[:4]
    (442, 0, ('age', 'sex', 'bmi', 'bp'))
    """
    test_size = check_finite("test_size", test_size, low=0, high=1, high_open=True)
    seed = check_int("seed", seed, low=0, high=MAX_SEED)
    raw = sklearn.datasets.load_diabetes(scaled=False)
    # The median score is 140.5, a value no patient has, so the two classes are 221 patients each.
    above = (raw.target > np.median(raw.target)).astype(np.int64)
    train, test = _split(above, test_size=test_size, seed=seed, stratify=False)
    order = np.concatenate([train, test])
    return Dataset(
        name="diabetes",
        **_tensors(raw.data, above, train, test),
        num_classes=2,
        feature_names=tuple(raw.feature_names),
        target_name="progression above median",
        class_names=("below median", "above median"),
        target=torch.as_tensor(raw.target[order], dtype=torch.float32),
        source="Diabetes data of Efron, Hastie, Johnstone & Tibshirani (2004), bundled with scikit-learn; no separate licence stated",
    )


def load_breast_cancer(*, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """Load scikit-learn's bundled Breast Cancer Wisconsin (Diagnostic) table, split stratified.

    569 tumours, 30 raw (unscaled) features computed from cell-nucleus images; label 0 is
    malignant and 1 benign, as in scikit-learn.

    Args:
        test_size: fraction of rows in the test set, in [0, 1); 0 keeps every row in train.
        seed: integer in [0, 2**32 - 1] fixing the split.

    Returns:
        A :class:`Dataset` with 30 features and 2 classes.

    Raises:
        ValueError: if ``test_size`` or ``seed`` is out of range.

    >>> data = load_breast_cancer()
    >>> data
    Dataset('breast_cancer', train=426, test=143, features=30, classes=2)
    >>> data.class_names
    ('malignant', 'benign')
    """
    test_size = check_finite("test_size", test_size, low=0, high=1, high_open=True)
    seed = check_int("seed", seed, low=0, high=MAX_SEED)
    raw = sklearn.datasets.load_breast_cancer()
    train, test = _split(raw.target, test_size=test_size, seed=seed, stratify=True)
    return Dataset(
        name="breast_cancer",
        **_tensors(raw.data, raw.target, train, test),
        num_classes=2,
        feature_names=tuple(str(f) for f in raw.feature_names),
        target_name="diagnosis",
        class_names=tuple(str(c) for c in raw.target_names),
        source="UCI Breast Cancer Wisconsin (Diagnostic) (Wolberg, Street & Mangasarian 1995), "
        "via scikit-learn; CC BY 4.0",
    )
