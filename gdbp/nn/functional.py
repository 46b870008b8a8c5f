"""The functional forms of the layers and cost functions (``import gdbp.nn.functional as F``)."""

from __future__ import annotations

from ..backprop.ops import linear
from .activations import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .costs import binary_cross_entropy_with_logits, cross_entropy, huber, mae, mse, nll
from .dropout import dropout
from .layers import embedding, flatten
from .normalization import layer_norm

huber_loss = huber
mse_loss = mse
l1_loss = mae
nll_loss = nll

__all__ = [
    "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "embedding", "flatten", "gelu", "huber",
    "huber_loss", "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "mae", "mse", "mse_loss",
    "nll", "nll_loss", "relu", "sigmoid", "softmax", "tanh",
]
