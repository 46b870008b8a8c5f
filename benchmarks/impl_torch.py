"""PyTorch eager: raw tensors with a hand-written SGD update, and nn.Sequential with optim.SGD.

Each class takes a device ("cpu" or "cuda"), so the GPU suite reuses them.
"""

from __future__ import annotations

from .problems import Skip

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # the suite reports the skip and goes on
    torch = None
    _why = f"PyTorch is not installed ({exc}): pip install torch"

__all__ = ["TorchMLP", "TorchSequentialMLP", "TorchTiny", "TorchAdam", "BENCHES"]


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


BENCHES = {
    ("mlp", "torch"): TorchMLP,
    ("mlp", "torch-nn"): TorchSequentialMLP,
    ("tiny", "torch"): TorchTiny,
    ("adam", "torch"): TorchAdam,
}
