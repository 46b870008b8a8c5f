"""PyTorch eager: raw tensors with a hand-written SGD update, and nn.Sequential with optim.SGD.

Each class takes a device ("cpu" or "cuda"), so the GPU suite reuses them.

:class:`TorchPlain` runs the plain programs of :mod:`benchmarks.plain`
mirrored line for line in torch's own functions (``torch.maximum`` for the
ReLU, ``torch.amax``/``exp``/``sum``/``log`` for the log-sum-exp,
``torch.take_along_dim`` for the labels), differentiated by torch.autograd.
"""

from __future__ import annotations

import functools
import math

from .problems import Skip

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # the suite reports the skip and goes on
    torch = None
    _why = f"PyTorch is not installed ({exc}): pip install torch"

__all__ = ["TorchMLP", "TorchSequentialMLP", "TorchTiny", "TorchAdam", "TorchPlain", "BENCHES"]


def _need_torch():
    if torch is None:
        raise Skip(_why)


def _param(array, device):
    return torch.tensor(array, device=device, requires_grad=True)


class TorchMLP:
    """F.linear / F.relu / F.cross_entropy on leaf tensors, loss.backward(), SGD by hand."""

    def __init__(self, problem, device="cpu"):
        _need_torch()
        self.params = [_param(p, device) for p in problem["params"]]
        self.x = torch.tensor(problem["x"], device=device)
        self.y = torch.tensor(problem["y"], device=device)
        self.lr = problem["lr"]
        self.loss = None

    def step(self):
        params = self.params
        h = self.x
        n_layers = len(params) // 2
        for k in range(n_layers):
            h = F.linear(h, params[2 * k], params[2 * k + 1])
            if k < n_layers - 1:
                h = F.relu(h)
        loss = F.cross_entropy(h, self.y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= self.lr * p.grad
                p.grad = None
        self.loss = loss

    def result(self):
        return {
            "loss": self.loss.detach().cpu().numpy(),
            "params": [p.detach().cpu().numpy().copy() for p in self.params],
        }


class TorchSequentialMLP:
    """torch.nn.Sequential of Linear and ReLU, nn.CrossEntropyLoss, torch.optim.SGD."""

    def __init__(self, problem, device="cpu"):
        _need_torch()
        sizes = problem["sizes"]
        layers = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(n_in, n_out))
            if k < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers).to(device)
        with torch.no_grad():
            for p, value in zip(self.model.parameters(), problem["params"]):
                p.copy_(torch.from_numpy(value))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=problem["lr"])
        self.cost = torch.nn.CrossEntropyLoss()
        self.x = torch.tensor(problem["x"], device=device)
        self.y = torch.tensor(problem["y"], device=device)
        self.loss = None

    def step(self):
        self.optimizer.zero_grad()
        loss = self.cost(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self.loss = loss

    def result(self):
        return {
            "loss": self.loss.detach().cpu().numpy(),
            "params": [p.detach().cpu().numpy().copy() for p in self.model.parameters()],
        }


class TorchTiny:
    """torch.relu(x @ W + b).sum().backward()."""

    def __init__(self, problem, device="cpu"):
        _need_torch()
        self.x = torch.tensor(problem["x"], device=device)
        self.W = _param(problem["W"], device)
        self.b = _param(problem["b"], device)

    def step(self):
        self.W.grad = self.b.grad = None
        out = torch.relu(self.x @ self.W + self.b).sum()
        out.backward()
        self.out = out

    def result(self):
        return {"out": self.out.detach().cpu().numpy(), "grads": [self.W.grad.cpu().numpy(), self.b.grad.cpu().numpy()]}


class TorchPlainTiny(TorchTiny):
    """benchmarks.plain.tiny in torch's functions: torch.sum(torch.maximum(x @ W + b, 0)).backward()."""

    def step(self):
        self.W.grad = self.b.grad = None
        zero = torch.zeros((), dtype=self.x.dtype, device=self.x.device)
        out = torch.sum(torch.maximum(self.x @ self.W + self.b, zero))
        out.backward()
        self.out = out


class TorchAdam:
    """torch.optim.Adam(foreach=True): a few multi-tensor kernels for all parameters."""

    def __init__(self, problem, device="cpu"):
        _need_torch()
        self.params = [_param(p, device) for p in problem["params"]]
        for p, g in zip(self.params, problem["grads"]):
            p.grad = torch.tensor(g, device=device)
        self.optimizer = torch.optim.Adam(
            self.params, lr=problem["lr"], betas=problem["betas"], eps=problem["eps"], foreach=True
        )

    def step(self):
        self.optimizer.step()

    def result(self):
        return {"params": [p.detach().cpu().numpy().copy() for p in self.params]}


def plain_mlp_cost(W1, b1, W2, b2, W3, b3, x, y):
    """benchmarks.plain.mlp_cost in torch's functions."""
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    h = torch.maximum(x @ W1 + b1, zero)
    h = torch.maximum(h @ W2 + b2, zero)
    z = h @ W3 + b3
    m = torch.amax(z, dim=1, keepdim=True)
    logsumexp = torch.log(torch.sum(torch.exp(z - m), dim=1)) + m[:, 0]
    picked = torch.take_along_dim(z, torch.unsqueeze(y, 1), dim=1)[:, 0]
    return torch.mean(logsumexp - picked)


def plain_attention_cost(Wq, Wk, Wv, Wo, x, y):
    """benchmarks.plain.attention_cost in torch's functions."""
    q, k, v = x @ Wq, x @ Wk, x @ Wv
    s = torch.matmul(q, torch.transpose(k, -2, -1)) / math.sqrt(Wq.shape[1])
    e = torch.exp(s - torch.amax(s, dim=-1, keepdim=True))
    p = e / torch.sum(e, dim=-1, keepdim=True)
    r = torch.matmul(p, v) @ Wo - y
    return torch.mean(torch.sum(r * r, dim=(1, 2)))


class TorchPlain:
    """A plain program's cost on leaf tensors, loss.backward(), SGD by hand under no_grad.

    ``program`` is "mlp" (the weights transposed to (in, out), as the plain
    code reads them) or "attention".
    """

    def __init__(self, problem, program, device="cpu"):
        _need_torch()
        self.cost = {"mlp": plain_mlp_cost, "attention": plain_attention_cost}[program]
        self.transposed = program == "mlp"
        self.params = [_param(p.T.copy() if self.transposed and p.ndim == 2 else p, device) for p in problem["params"]]
        self.x = torch.tensor(problem["x"], device=device)
        self.y = torch.tensor(problem["y"], device=device)
        self.lr = problem["lr"]
        self.loss = None

    def step(self):
        loss = self.cost(*self.params, self.x, self.y)
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= self.lr * p.grad
                p.grad = None
        self.loss = loss

    def result(self):
        params = [p.detach().cpu().numpy() for p in self.params]
        return {
            "loss": self.loss.detach().cpu().numpy(),
            "params": [p.T.copy() if self.transposed and p.ndim == 2 else p.copy() for p in params],
        }


BENCHES = {
    ("mlp", "torch"): TorchMLP,
    ("mlp", "torch-nn"): TorchSequentialMLP,
    ("plain", "torch-plain"): functools.partial(TorchPlain, program="mlp"),
    ("attention", "torch-plain"): functools.partial(TorchPlain, program="attention"),
    ("tiny", "torch"): TorchTiny,
    ("tiny", "torch-plain"): TorchPlainTiny,
    ("adam", "torch"): TorchAdam,
}
