"""End to end: a two-layer MLP learns XOR with plain gradient descent."""

from __future__ import annotations

import numpy as np
import pytest

import gdbp
from conftest import CPU_BACKENDS, backend_params, to_numpy
from gdbp import backends, nn

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([0, 1, 1, 0])


@pytest.mark.parametrize("backend_name", backend_params(CPU_BACKENDS))
def test_mlp_learns_xor(backend_name):
    backend = backends.resolve(backend_name)
    model = nn.Sequential(nn.Linear(2, 8, backend=backend, seed=0), nn.Tanh(), nn.Linear(8, 2, backend=backend, seed=1))
    cost = nn.CrossEntropyLoss()
    x, y = backends.transfer(X, backend), backends.transfer(Y, backend)
    lr = 0.5
    first = None
    for step in range(300):
        model.zero_grad()
        loss = cost(model(x), y)
        loss.backward()
        with gdbp.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        first = loss.item() if first is None else first
    assert loss.item() < 0.05 < first
    predicted = np.argmax(to_numpy(model(x)), axis=-1)
    np.testing.assert_array_equal(predicted, Y)
