"""Small federated setups shared by the fl tests: synthetic, seeded, with unequal client sizes."""

import pytest
import torch


def make_clients(sizes, *, num_features=6, num_classes=3, seed=0):
    """Clients with the given numbers of examples; labels depend on X so that training is meaningful.

    The labelling rule W is the same for every seed, so a test set drawn with another seed is
    from the same task.
    """
    W = torch.randn(num_features, num_classes, generator=torch.Generator().manual_seed(1234))
    g = torch.Generator().manual_seed(seed)
    clients = []
    for n in sizes:
        X = torch.randn(n, num_features, generator=g)
        y = (X @ W + 0.5 * torch.randn(n, num_classes, generator=g)).argmax(1)
        clients.append((X, y))
    return clients


@pytest.fixture
def unequal_clients():
    # Sizes chosen so that batch_size 4 leaves ragged last batches and steps per client differ.
    return make_clients([3, 9, 14, 5, 22, 1, 8])


@pytest.fixture
def test_set():
    (X, y), = make_clients([40], seed=99)
    return X, y
