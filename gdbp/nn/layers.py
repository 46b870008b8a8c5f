"""Layers with weights (Linear, Embedding) and reshaping (Flatten); Sequential."""

from __future__ import annotations

import math

from .. import backends
from ..backprop import Tensor, ops, unwrap
from . import init
from ._util import refuse_out_of_range, size
from .module import Module
from .parameter import Parameter

__all__ = ["Linear", "Embedding", "Flatten", "Sequential", "flatten", "embedding", "check_input"]


def check_input(layer: Module, x, param) -> None:
    """Refuse an input on another backend, or whose dtype differs from the layer's parameters."""
    x = unwrap(x)
    if backends.fits(x, param.backend, None, param.dtype):  # every forward pass: no message unless needed
        return
    backends.check_fits(x, param.backend, None, param.dtype, f"{type(layer).__name__}: the input",
                        "the layer", "; move or cast the input (x.to(backend), x.astype(dtype)), or the layer "
                        f"(model.to(backend), or build it with dtype={param.dtype})")


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features), as in PyTorch.

    Initialised as PyTorch does: weight ~ kaiming_uniform(a=sqrt(5)), i.e.
    U[-1/sqrt(in_features), 1/sqrt(in_features)], and bias from the same
    uniform; the weight is drawn first, then the bias.

    Parameters
    ----------
    in_features, out_features : int
        Integers >= 0. Zero is allowed, as in PyTorch: with no input
        features the weight is (out_features, 0), the bias is zeros (its
        bound 1/sqrt(in_features) is taken as 0) and the output is the bias;
        with no output features the output is (n, 0).
    bias : bool
        Add a learned bias (default True).
    backend : str or Backend, optional
        Where the parameters live (default: the current backend).
    dtype : dtype or str, optional
        The parameters' dtype (default float32).
    seed : int, optional
        Draw the initial values from a fresh stream with this seed.
    rng : HostGenerator, optional
        Draw them from this stream instead (see :func:`gdbp.backends.host_rng`).
        With neither, the default stream of :mod:`gdbp.nn.init` is used.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, backend=None, dtype=None,
                 seed=None, rng=None):
        super().__init__()
        in_features = size("Linear", "in_features", in_features)
        out_features = size("Linear", "out_features", out_features)
        self.in_features = in_features
        self.out_features = out_features
        target = backends.resolve(backend)
        stream = init.generator(rng, seed)
        shape = (out_features, in_features)
        self.weight = Parameter(init.kaiming_uniform(shape, a=math.sqrt(5), rng=stream, backend=target, dtype=dtype))
        if bias:
            bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
            self.bias = Parameter(init.uniform((out_features,), -bound, bound, rng=stream, backend=target,
                                               dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        check_input(self, x, self.weight)
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def embedding(indices, weight):
    """Rows of ``weight`` picked by integer ``indices``: shape indices.shape + (dim,).

    The gradient adds up over repeated indices. On CPU backends an index
    outside [0, rows) raises an IndexError naming it and its position (a
    negative index is not read from the end). On GPU backends indices are
    not checked, since that would make the host wait for the device at
    every call; an index out of range gives an undefined result there.

    Raises
    ------
    TypeError
        indices are not integers.
    IndexError
        (CPU backends) an index lies outside [0, weight.shape[0]).
    """
    raw = unwrap(indices)
    xp = backends.namespace(raw)
    if not xp.isdtype(raw.dtype, "integral"):
        raise TypeError(f"embedding: indices must be integers, got dtype {raw.dtype}")
    rows = weight.shape[0]
    refuse_out_of_range("embedding", "index", raw, rows, f"the table has {rows} rows")
    picked = ops.take(weight, xp.reshape(raw, (-1,)), axis=0)
    return ops.reshape(picked, tuple(raw.shape) + (weight.shape[1],))


class Embedding(Module):
    """A lookup table: integer indices -> rows of a (num_embeddings, embedding_dim) weight.

    Initialised from N(0, 1), as in PyTorch. Takes ``backend``, ``dtype``,
    ``seed`` and ``rng`` as :class:`Linear` does. Indices outside
    [0, num_embeddings) are refused on CPU backends (see :func:`embedding`).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, backend=None, dtype=None, seed=None, rng=None):
        super().__init__()
        num_embeddings = size("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = size("Embedding", "embedding_dim", embedding_dim)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = Parameter(init.normal((num_embeddings, embedding_dim), rng=init.generator(rng, seed),
                                            backend=backend, dtype=dtype))

    def forward(self, indices):
        return embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


def flatten(x, start_dim: int = 1, end_dim: int = -1):
    """x with axes start_dim..end_dim (inclusive) merged into one."""
    shape = tuple(x.shape)
    n = len(shape)
    start, end = start_dim % n, end_dim % n
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a {n}-D input")
    merged = math.prod(shape[start:end + 1])
    return ops.reshape(x, shape[:start] + (merged,) + shape[end + 1:])


class Flatten(Module):
    """Merge axes start_dim..end_dim (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied one after another; named "0", "1", ... as in PyTorch.

    ``model[i]`` is the i-th module (negative i counts from the end),
    ``model[a:b]`` a Sequential of a slice (sharing the modules, keeping their names).
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "Sequential":
        """Add a module at the end, named by the next free index."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential holds Modules, got {type(module).__name__}")
        index = len(self._modules)
        while str(index) in self._modules:
            index += 1
        setattr(self, str(index), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            # Keep the original names, as PyTorch does: model[1:] holds "1", "2", ...
            part = Sequential()
            for name, m in list(self._modules.items())[index]:
                setattr(part, name, m)
            return part
        return list(self._modules.values())[index]

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x
