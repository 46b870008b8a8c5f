"""Normalisation layers: LayerNorm and BatchNorm1d, composed from mean, subtract and sqrt."""

from __future__ import annotations

import math

from .. import backends
from ..backprop import ShapeError, ops, trace
from . import init
from ._util import as_tensor
from .layers import check_input
from .module import Module
from .parameter import Parameter

__all__ = ["layer_norm", "LayerNorm", "BatchNorm1d"]


def _normalise(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over axes, with the biased variance; also the mean and variance."""
    mu = ops.mean(x, axis=axes, keepdims=True)
    centred = x - mu
    var = ops.mean(centred * centred, axis=axes, keepdims=True)
    return centred / ops.sqrt(var + eps), mu, var


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing axes ``normalized_shape``, then scale and shift.

    y = (x - mean) / sqrt(var + eps) * weight + bias, where mean and the
    biased variance are taken over the last len(normalized_shape) axes.
    """
    x = as_tensor(x)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise ShapeError(
            f"layer_norm: input of shape {tuple(x.shape)} does not end in normalized_shape {normalized_shape}"
        )
    y, _, _ = _normalise(x, tuple(range(x.ndim - k, x.ndim)), eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class LayerNorm(Module):
    """Layer normalisation (Ba, Kiros & Hinton, 2016) over the trailing ``normalized_shape`` axes.

    weight starts at ones and bias at zeros, as in PyTorch.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 *, backend=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = Parameter(init.ones(self.normalized_shape, backend=backend, dtype=dtype))
            if bias:
                self.bias = Parameter(init.zeros(self.normalized_shape, backend=backend, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        if self.weight is not None:
            check_input(self, x, self.weight)
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class BatchNorm1d(Module):
    """Batch normalisation (Ioffe & Szegedy, 2015) of (N, C) or (N, C, L) inputs, per channel C.

    Training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the
    batch's mean and biased variance, and the running statistics move as in
    PyTorch::

        running_mean <- (1 - momentum) running_mean + momentum mean_B
        running_var  <- (1 - momentum) running_var  + momentum var_B n / (n - 1)

    (the unbiased batch variance; momentum=None averages over all batches
    seen, momentum = 1 / num_batches_tracked). Evaluation uses the running
    statistics. Buffers: running_mean, running_var, num_batches_tracked.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, backend=None, dtype=None):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        target = backends.resolve(backend)
        shape = (num_features,)
        if affine:
            self.weight = Parameter(init.ones(shape, backend=target, dtype=dtype))
            self.bias = Parameter(init.zeros(shape, backend=target, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", init.zeros(shape, backend=target, dtype=dtype))
            self.register_buffer("running_var", init.ones(shape, backend=target, dtype=dtype))
            self.register_buffer("num_batches_tracked", init.zeros((), backend=target, dtype=target.xp.int64))

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            xp = backends.namespace(self.running_mean)
            self.running_mean = xp.zeros_like(self.running_mean)
            self.running_var = xp.ones_like(self.running_var)
            self.num_batches_tracked = xp.zeros_like(self.num_batches_tracked)

    def _check(self, x):
        if x.ndim not in (2, 3):
            raise ShapeError(f"BatchNorm1d expects (N, C) or (N, C, L) input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"BatchNorm1d({self.num_features}): input of shape {tuple(x.shape)} has {x.shape[1]} channels"
            )
        if self.weight is not None:
            check_input(self, x, self.weight)
        elif self.track_running_stats and x.dtype != self.running_mean.dtype:
            raise TypeError(f"BatchNorm1d: input dtype {x.dtype} does not match the running statistics' "
                            f"({self.running_mean.dtype})")

    def forward(self, x):
        x = as_tensor(x)
        self._check(x)
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            n = math.prod(x.shape[a] for a in axes)
            if self.training and n == 1:
                raise ValueError(
                    f"BatchNorm1d: expected more than 1 value per channel when training, got input of shape "
                    f"{tuple(x.shape)}; use a larger batch or eval mode"
                )
            y, mu, var = _normalise(x, axes, self.eps)
            if self.training and self.track_running_stats:
                # A buffer update outside the graph: under gdbp.compile, replayed with each replay's statistics.
                trace.opaque(self._update, mu.data, var.data, n)
        else:
            xp = backends.namespace(self.running_mean)
            mean = xp.reshape(self.running_mean, shape)
            std = xp.sqrt(xp.reshape(self.running_var, shape) + self.eps)
            y = (x - mean) / std
        if self.weight is not None:
            y = y * ops.reshape(self.weight, shape) + ops.reshape(self.bias, shape)
        return y

    def _update(self, mean, var, n):
        """Move the running statistics toward the batch's (raw arrays: no graph)."""
        xp = backends.namespace(mean)
        self.num_batches_tracked = self.num_batches_tracked + 1
        if self.momentum is None:
            m = 1.0 / xp.astype(self.num_batches_tracked, mean.dtype)
        else:
            m = self.momentum
        mean = xp.reshape(mean, (self.num_features,))
        unbiased = xp.reshape(var, (self.num_features,)) * (n / (n - 1))
        self.running_mean = (1 - m) * self.running_mean + m * mean
        self.running_var = (1 - m) * self.running_var + m * unbiased

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}, "
                f"track_running_stats={self.track_running_stats}")
