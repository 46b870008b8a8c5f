"""Small data sets and models shared by the tests of gdbp.train."""

from __future__ import annotations

import numpy as np

from gdbp import backends, descent, nn


def blobs(n=120, features=4, classes=3, seed=0, backend="numpy"):
    """Separable Gaussian blobs: float32 features, int64 labels, on ``backend``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centres[y] + rng.normal(size=(n, features))
    b = backends.resolve(backend)
    return backends.transfer(x.astype(np.float32), b), backends.transfer(y.astype(np.int64), b)


def mlp(features=4, hidden=16, classes=3, seed=0, backend="numpy"):
    stream = backends.host_rng(seed)
    return nn.Sequential(
        nn.Linear(features, hidden, backend=backend, rng=stream),
        nn.ReLU(),
        nn.Linear(hidden, classes, backend=backend, rng=stream),
    )


def adam(model, lr=1e-2):
    return descent.Adam(model.parameters(), lr=lr)


def host_state(model) -> dict:
    """The model's state dict as host NumPy arrays."""
    return {k: np.array(backends.to_numpy(v)) for k, v in model.state_dict().items()}
