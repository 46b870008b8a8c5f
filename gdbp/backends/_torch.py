"""PyTorch (CPU and CUDA) as an array library: a test oracle and a second GPU path."""

from __future__ import annotations

from ._backend import Backend, BackendUnavailableError, import_library, intern
from ._kernels import Kernels, library_kernels
from ._scatter import as_key, assign_selected, has_int_array

__all__ = ["TorchKernels", "torch_backend"]


class TorchKernels(Kernels):
    def owns(self, a) -> bool:
        return a._base is None  # torch marks a view (expand, reshape, slicing) by its base

    def scatter_add(self, g, key, shape):
        key = as_key(key)
        if not has_int_array(key, self.xp):
            return assign_selected(self.xp, g, key, shape)
        xp = self.xp
        z = xp.zeros(shape, dtype=g.dtype, device=g.device)
        # torch indexes with integer arrays beside slices: the flat positions of the selection.
        where = xp.reshape(xp.arange(z.numel(), device=g.device), shape)[key]
        g_flat = xp.reshape(xp.broadcast_to(g, where.shape), (-1,))
        xp.reshape(z, (-1,)).index_add_(0, xp.reshape(where, (-1,)), g_flat)
        return z

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def special_forward(self, name: str):
        from ._special import torch_special

        # torch.special where it has the function; rel_entr through scipy (CPU tensors only).
        return torch_special(self.xp, name) or super().special_forward(name)

    def stream(self, seed: int, backend):
        if backend.is_gpu:
            return TorchStream(seed, backend)
        return super().stream(seed, backend)


class TorchStream:
    """torch's own generator, on the backend's CUDA device."""

    def __init__(self, seed, backend):
        import torch

        self.backend = backend
        self.seed = seed
        self._torch = torch
        self._g = torch.Generator(device=backend.device)
        self._g.manual_seed(seed)

    def random(self, shape, dtype=None):
        dtype = self._torch.float32 if dtype is None else dtype
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return self._torch.rand(shape, generator=self._g, device=self.backend.device, dtype=dtype)

    def get_state(self):
        return self._g.get_state().tolist()

    def set_state(self, state) -> None:
        self._g.set_state(self._torch.tensor(state, dtype=self._torch.uint8))


def torch_backend(device="cpu") -> Backend:
    torch = import_library("torch", "torch")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch:{device} asked for, but torch {torch.__version__} sees no CUDA device"
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())

    def make():
        xp = import_library("array_api_compat.torch", "array_api_compat")
        spec = "torch" if dev.type == "cpu" else f"torch:{dev}"
        return Backend("torch", xp, dev, True, torch.Tensor, torch.__version__, spec, dev.type == "cuda",
                       library_kernels(xp, TorchKernels))

    return intern(("torch", str(dev)), make)
