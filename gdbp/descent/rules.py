"""The update rules of gradient descent, each a pure function written once.

Every rule has the same shape::

    step, state = rule(xp, w, g, state, lr=..., **hyperparameters)
    w <- w - step

``w`` are the weights, ``g`` their gradient (weight decay, a shared
transform, is already in it), ``state`` what the rule keeps between steps
(an empty dict before the first one). A rule reads ``w`` only where its
formula does, never changes ``w``, ``g`` or the given state in place, and
is elementwise (each entry's update depends on that entry alone), so that
:func:`gdbp.descent.optimizer.applier` runs it on a tensor, on a flat
buffer of many tensors, or block by block, with the same bits. The
hyperparameters are Python floats, so float32 weights stay float32. The
formulas are ``torch.optim``'s, and so are the state names.
"""

from __future__ import annotations

import math

__all__ = ["sgd", "adam", "rmsprop", "adagrad"]


def sgd(xp, w, g, state, *, lr, momentum=0.0, dampening=0.0, nesterov=False):
    r"""Gradient descent, with momentum or Nesterov momentum::

        b <- momentum * b + (1 - dampening) * g      (b <- g at the first step)
        d <- g + momentum * b   if nesterov,   else  d <- b
        w <- w - lr * d

    Without momentum, ``d = g``: plain gradient descent, ``w <- w - lr * g``.
    State: ``momentum_buffer`` (with momentum).
    """
    if not momentum:
        return lr * g, state
    b = state.get("momentum_buffer")
    if b is None:
        b = xp.asarray(g, copy=True)  # g may be a buffer the next backward pass writes into
    else:
        b = momentum * b + (1.0 - dampening) * g
    d = g + momentum * b if nesterov else b
    return lr * d, {"momentum_buffer": b}


def adam(xp, w, g, state, *, lr, betas=(0.9, 0.999), eps=1e-8, amsgrad=False):
    r"""Adam (Kingma & Ba, 2015). At step t (counted per tensor, from 1)::

        m <- beta1 * m + (1 - beta1) * g              first moment
        v <- beta2 * v + (1 - beta2) * g * g          second moment
        v_max <- max(v_max, v)   and use v_max for v   (amsgrad only)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)      bias correction
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    The bias corrections undo the pull of ``m = v = 0`` toward zero in the
    first steps. State: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), and
    ``max_exp_avg_sq`` with amsgrad.
    """
    beta1, beta2 = betas
    if not state:
        zeros = xp.zeros_like(w)
        state = {"step": 0, "exp_avg": zeros, "exp_avg_sq": zeros}
        if amsgrad:
            state["max_exp_avg_sq"] = zeros
    t = state["step"] + 1
    m = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    v = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * (g * g)
    new = {"step": t, "exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        v = new["max_exp_avg_sq"] = xp.maximum(state["max_exp_avg_sq"], v)
    # m_hat / (sqrt(v_hat) + eps), with the bias corrections folded into scalars as PyTorch does
    step_size = lr / (1.0 - beta1**t)
    denom = xp.sqrt(v) / math.sqrt(1.0 - beta2**t) + eps
    return step_size * (m / denom), new


def rmsprop(xp, w, g, state, *, lr, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    r"""RMSprop (Hinton, 2012)::

        s <- alpha * s + (1 - alpha) * g * g                running mean square
        a <- alpha * a + (1 - alpha) * g                    running mean (centered only)
        r = sqrt(s - a * a) + eps   if centered,   else   r = sqrt(s) + eps
        b <- momentum * b + g / r,   w <- w - lr * b        with momentum
        w <- w - lr * g / r                                 without

    State: ``step``, ``square_avg`` (s), ``momentum_buffer`` (b, with
    momentum), ``grad_avg`` (a, centered).
    """
    if not state:
        zeros = xp.zeros_like(w)
        state = {"step": 0, "square_avg": zeros}
        if momentum:
            state["momentum_buffer"] = zeros
        if centered:
            state["grad_avg"] = zeros
    s = alpha * state["square_avg"] + (1.0 - alpha) * (g * g)
    new = {"step": state["step"] + 1, "square_avg": s}
    if centered:
        a = alpha * state["grad_avg"] + (1.0 - alpha) * g
        r = xp.sqrt(s - a * a) + eps
    else:
        r = xp.sqrt(s) + eps
    if momentum:
        b = new["momentum_buffer"] = momentum * state["momentum_buffer"] + g / r
        step = lr * b
    else:
        step = lr * (g / r)
    if centered:
        new["grad_avg"] = a
    return step, new


def adagrad(xp, w, g, state, *, lr, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    r"""Adagrad (Duchi et al., 2011). At step t (counted per tensor, from 1)::

        S <- S + g * g                                  (S starts at initial_accumulator_value)
        lr_t = lr / (1 + (t - 1) * lr_decay)
        w <- w - lr_t * g / (sqrt(S) + eps)

    Coordinates with large past gradients take small steps, rarely-moved
    ones large steps; since S only grows, the steps shrink over time.
    State: ``step``, ``sum`` (S).
    """
    if not state:
        state = {"step": 0, "sum": xp.full_like(w, initial_accumulator_value)}
    t = state["step"] + 1
    S = state["sum"] + g * g
    lr_t = lr / (1.0 + (t - 1) * lr_decay)
    return lr_t * (g / (xp.sqrt(S) + eps)), {"step": t, "sum": S}
