"""The problems every implementation solves, made from a seed so that all start alike.

The problems:

- ``mlp``: one training step of an MLP 784-256-256-10 (ReLU, softmax
  cross-entropy from integer labels, plain SGD). Weights are listed as
  ``[W1, b1, W2, b2, W3, b3]`` with ``W`` of shape (out, in), as in PyTorch
  and ``gdbp.backprop.ops.linear``.
- ``plain``: the same step written as plain array-API code
  (:mod:`benchmarks.plain`), the same problem and reference.
- ``attention``: one SGD step of a batch of small attention-like blocks,
  built on batched matrix products (see :func:`attention`).
- ``tiny``: the framework overhead of a tiny graph,
  ``sum(relu(x @ W + b))`` and its backward pass, with x 4x8 and W 8x8.
- ``adam``: one Adam step over many small parameters (200 tensors of 64x64).

Each implementation returns its values as NumPy arrays; :func:`compare`
checks them against the hand-written NumPy reference.
"""

from __future__ import annotations

import math

import numpy as np

MLP_SIZES = (784, 256, 256, 10)
LR = 0.01
TINY_SHAPES = ((4, 8), (8, 8))
ADAM_COUNT, ADAM_SHAPE = 200, (64, 64)
ADAM_LR, ADAM_BETAS, ADAM_EPS = 1e-3, (0.9, 0.999), 1e-8
ADAM_CHECK_STEPS = 3
ATTENTION_SHAPE = (64, 16, 32)  # blocks B, tokens T, width D of the input X
ATTENTION_KEY = 32  # width H of the queries, keys and values
BATCHED_TASKS = ("mlp", "plain")  # the tasks timed at every batch size


class Skip(Exception):
    """An implementation cannot run here (a library is missing); the message says why."""


def mlp(batch: int, seed: int = 0, sizes=MLP_SIZES) -> dict:
    """Initial weights (PyTorch's default uniform init), a batch of inputs and integer labels.

    The weights depend on the seed only, the data on the seed and the batch size.
    """
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    data = np.random.default_rng([seed, batch])
    x = data.standard_normal((batch, sizes[0])).astype(np.float32)
    y = data.integers(0, sizes[-1], batch).astype(np.int64)
    return dict(params=params, x=x, y=y, lr=LR, sizes=tuple(sizes))


def tiny(seed: int = 0) -> dict:
    """x (4x8), W (8x8), b (8): the inputs of sum(relu(x @ W + b))."""
    rng = np.random.default_rng([seed, 7])
    (n, k), (_, m) = TINY_SHAPES
    return dict(
        x=rng.standard_normal((n, k)).astype(np.float32),
        W=rng.standard_normal((k, m)).astype(np.float32),
        b=rng.standard_normal(m).astype(np.float32),
    )


def attention(seed: int = 0, shape=ATTENTION_SHAPE, key=ATTENTION_KEY) -> dict:
    """Weights ``[Wq, Wk, Wv, Wo]``, inputs X and targets Y of a batch of attention-like blocks.

    For each of the B blocks, with Q = X Wq, K = X Wk, V = X Wv (T x H):

        cost = mean over blocks of || softmax(Q K^T / sqrt(H)) V Wo - Y ||^2

    (the softmax over each row, the squared norm summed over the block's
    T x D entries). Wq, Wk, Wv are D x H, Wo is H x D, uniform in
    +-1/sqrt(fan in); X and Y are standard normal, B x T x D.
    """
    rng = np.random.default_rng([seed, 13])
    blocks, tokens, width = shape
    params = []
    for fan_in, fan_out in ((width, key),) * 3 + ((key, width),):
        bound = 1 / math.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32))
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    return dict(params=params, x=x, y=y, lr=LR)


def adam(seed: int = 0) -> dict:
    """200 parameters of 64x64 and a fixed gradient for each."""
    rng = np.random.default_rng([seed, 11])
    params = [rng.standard_normal(ADAM_SHAPE).astype(np.float32) for _ in range(ADAM_COUNT)]
    grads = [rng.standard_normal(ADAM_SHAPE).astype(np.float32) for _ in range(ADAM_COUNT)]
    return dict(params=params, grads=grads, lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS)


def make(task: str, size, seed: int) -> dict:
    """The problem for a task; size is the batch for the tasks of BATCHED_TASKS ("plain" is "mlp"'s problem)."""
    if task in ("mlp", "plain"):
        return mlp(size, seed)
    if task == "attention":
        return attention(seed)
    if task == "tiny":
        return tiny(seed)
    if task == "adam":
        return adam(seed)
    raise ValueError(f"unknown task {task!r}: use mlp, plain, attention, tiny or adam")


# --- checking results -------------------------------------------------------------------

def compare(start: dict, ref: dict, got: dict, rtol: float = 1e-4) -> list[str]:
    """Why ``got`` disagrees with the reference ``ref`` (an empty list when it agrees).

    Values must be float32 (no silent float64 promotion) and have the
    reference's shapes. Updated weights are compared through their change
    from ``start`` (``-lr * grad`` for SGD), whose size sets the tolerance:
    a wrong gradient then shows even when lr is small. ``rtol`` is relative
    to the largest entry of each reference array; the absolute slack allows
    for float32 rounding of the weights the change was added to.
    """
    problems = []
    for name, r in ref.items():
        g = got.get(name)
        if g is None:
            problems.append(f"{name}: missing")
            continue
        r_list, g_list = (r, g) if isinstance(r, list) else ([r], [g])
        if len(r_list) != len(g_list):
            problems.append(f"{name}: {len(g_list)} arrays, expected {len(r_list)}")
            continue
        base = start.get(name) if name == "params" else None
        for i, (ri, gi) in enumerate(zip(r_list, g_list)):
            label = f"{name}[{i}]" if isinstance(r, list) else name
            ri, gi = np.asarray(ri), np.asarray(gi)
            if gi.dtype != np.float32:
                problems.append(f"{label}: dtype {gi.dtype}, expected float32")
                continue
            if gi.shape != ri.shape:
                problems.append(f"{label}: shape {gi.shape}, expected {ri.shape}")
                continue
            atol = 1e-7
            if base is not None:  # compare the update, not the weights it was added to
                atol = max(atol, 8 * float(np.finfo(np.float32).eps) * float(np.max(np.abs(base[i]), initial=0.0)))
                ri, gi = ri - base[i], gi - base[i]
            err = float(np.max(np.abs(gi.astype(np.float64) - ri), initial=0.0))
            scale = float(np.max(np.abs(ri), initial=0.0))
            if not np.all(np.isfinite(gi)) or err > rtol * scale + atol:
                problems.append(f"{label}: max abs error {err:.3g} against a scale of {scale:.3g}")
    return problems


def check_steps(task: str) -> int:
    """How many steps a correctness check runs before comparing."""
    return ADAM_CHECK_STEPS if task == "adam" else 1
