"""Datasets (offline by default, MNIST on request) and the partitions that spread them over clients.

>>> from dpfl_course import data
>>> data.load_digits()
Dataset('digits', train=1347, test=450, features=64, classes=10)
"""

from dpfl_course.data.datasets import Dataset, load_breast_cancer, load_diabetes, load_digits
from dpfl_course.data.mnist import DatasetUnavailableError, load_mnist, read_idx
from dpfl_course.data.partition import (
    describe_partition,
    label_counts,
    partition_dirichlet,
    partition_iid,
    partition_quantity_skew,
    partition_shards,
)
from dpfl_course.data.synthetic import load_synthetic

__all__ = [
    "Dataset", "DatasetUnavailableError", "describe_partition", "label_counts",
    "load_breast_cancer", "load_diabetes", "load_digits", "load_mnist", "load_synthetic",
    "partition_dirichlet", "partition_iid", "partition_quantity_skew", "partition_shards", "read_idx",
]
