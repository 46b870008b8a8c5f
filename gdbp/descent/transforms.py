"""Shared transforms of a gradient step: weight decay, and gradient clipping.

Weight decay comes in two kinds. The L2 penalty (``weight_decay / 2 * ||w||^2``
added to the cost) changes the gradient, ``g <- g + weight_decay * w``, before
any rule sees it (SGD, Adam, RMSprop, Adagrad). Decoupled decay (AdamW)
shrinks the weights apart from the gradient, ``w <- w - lr * weight_decay * w``,
so an adaptive rule does not rescale it.

The clipping functions give parameters new gradient arrays rather than
writing the old ones in place: a gradient array may be shared (the backward
pass of ``a + b`` hands the same array to ``a`` and ``b``), and scaling it in
place would scale it twice.
"""

from __future__ import annotations

import math

from .. import backends
from ..backprop import Tensor
from .validate import grad_array, nonnegative, number, set_grad_array

__all__ = ["l2_penalty", "decoupled_decay", "global_norm", "clip_grad_norm", "clip_grad_value"]


def l2_penalty(g, w, weight_decay: float):
    """``g + weight_decay * w``: the gradient of ``cost + weight_decay / 2 * ||w||^2``."""
    return g + weight_decay * w


def decoupled_decay(w, lr: float, weight_decay: float):
    """``lr * weight_decay * w``: the step that shrinks the weights toward 0, apart from the gradient."""
    return (lr * weight_decay) * w


def global_norm(arrays, norm_type: float = 2.0):
    r"""The norm of all the arrays' entries taken together, as a 0-d array.

    ``(sum_i sum_j |a_ij|^p)^(1/p)`` for ``norm_type = p``; the largest
    ``|a_ij|`` for ``norm_type = inf``. Computed on the arrays' backend
    and device, without a host round-trip.

    Parameters
    ----------
    arrays : sequence of arrays
        Non-empty; of one backend. Mixed float dtypes meet in their
        promoted dtype.
    norm_type : float
        p > 0, or ``math.inf``.
    """
    xp = backends.namespace(*arrays)
    dtype = xp.result_type(*arrays) if len(arrays) > 1 else arrays[0].dtype
    if norm_type == math.inf:
        parts = [xp.max(xp.abs(a)) for a in arrays]
    elif norm_type == 2.0:
        parts = [xp.sum(a * a) for a in arrays]
    else:
        parts = [xp.sum(xp.abs(a) ** norm_type) for a in arrays]
    parts = xp.stack([xp.astype(q, dtype) if q.dtype != dtype else q for q in parts])
    if norm_type == math.inf:
        return xp.max(parts)
    total = xp.sum(parts)
    return xp.sqrt(total) if norm_type == 2.0 else total ** (1.0 / norm_type)


def _params(params) -> list:
    if isinstance(params, Tensor):
        return [params]
    return list(params)


def clip_grad_norm(params, max_norm: float, norm_type: float = 2.0):
    r"""Scale the gradients so that their global norm is at most ``max_norm``, as ``torch.nn.utils.clip_grad_norm_``.

    ::

        n = || (g_1, ..., g_k) ||          the norm of all gradients together
        g_i <- g_i * min(1, max_norm / (n + 1e-6))

    The scale factor is computed on the device and applied to every gradient
    without reading n back to the host (so nothing branches on it).

    Parameters
    ----------
    params : Tensor or iterable of Tensor
        Parameters whose ``.grad`` to clip (those without a gradient are skipped).
    max_norm : float
        The largest allowed norm, >= 0.
    norm_type : float
        The norm's p (default 2), or ``math.inf`` for the largest entry.

    Returns
    -------
    array
        The global norm before clipping: a 0-d array on the parameters'
        backend and device, in their dtype (0 when no parameter has a gradient).

    Raises
    ------
    ValueError
        ``max_norm`` or ``norm_type`` is invalid, or ``params`` is empty.
    """
    params = _params(params)
    max_norm = nonnegative("max_norm", max_norm)
    norm_type = number("norm_type", norm_type)
    if not norm_type > 0.0:
        raise ValueError(f"invalid norm_type={norm_type!r}: it must be > 0 (or math.inf)")
    if not params:
        raise ValueError("clip_grad_norm got no parameters: pass model.parameters() or a list of Tensors")
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        p = params[0]
        with p.backend.kernels.creating(p.backend.device):
            return p.backend.xp.zeros((), dtype=p.dtype, device=p.backend.device)
    grads = [grad_array(p) for p in with_grad]
    backend = with_grad[0].backend
    xp = backend.xp
    total = global_norm(grads, norm_type)
    # Kernels.clip: minimum and maximum, where array-api-compat's clip would sync a GPU.
    scale = backend.kernels.clip(max_norm / (total + 1e-6), None, 1.0)
    for p, g in zip(with_grad, grads):
        s = scale if scale.dtype == g.dtype else xp.astype(scale, g.dtype)
        set_grad_array(p, g * s)
    return total


def clip_grad_value(params, clip_value: float) -> None:
    r"""Clip every gradient entry into ``[-clip_value, clip_value]``, as ``torch.nn.utils.clip_grad_value_``.

    ::

        g <- min(max(g, -clip_value), clip_value)

    Parameters
    ----------
    params : Tensor or iterable of Tensor
        Parameters whose ``.grad`` to clip (those without a gradient are skipped).
    clip_value : float
        The largest allowed magnitude, >= 0.
    """
    clip_value = nonnegative("clip_value", clip_value)
    for p in _params(params):
        g = grad_array(p)
        if g is not None:
            set_grad_array(p, p.backend.kernels.clip(g, -clip_value, clip_value))
