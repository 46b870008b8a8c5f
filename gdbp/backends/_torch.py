"""PyTorch (CPU and CUDA) as an array library: a test oracle and a second GPU path."""

from __future__ import annotations

from ._backend import Backend, BackendUnavailableError, import_library, intern
from ._kernels import UNKNOWN, Kernels, library_kernels
from ._philox import library_seed
from ._scatter import as_key, assign_selected, has_int_array

__all__ = ["TorchKernels", "torch_backend"]


class TorchKernels(Kernels):
    def __init__(self, xp):
        super().__init__(xp)
        self._generators: dict = {}  # device -> the torch.Generator reseeded for each draw there

    def memory_of(self, a):
        if a._base is None:  # torch marks a view (expand, reshape, slicing) by its base
            return None
        return UNKNOWN if 0 in a.stride() else a._base  # an expanded view repeats elements

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

    def known_all_false(self, mask) -> bool:
        # On the CPU the answer costs nothing; on a GPU it would stall the stream.
        return mask.device.type == "cpu" and not bool(mask.any())

    def to_numpy(self, x):
        # torch's conj() (and negation of a conjugate's imaginary part) only set a bit on a view: resolve it,
        # as .numpy() refuses such tensors (a no-op on others).
        return x.detach().cpu().resolve_conj().resolve_neg().numpy()

    def special_forward(self, name: str):
        from ._special import torch_special

        # torch.special where it has the function; rel_entr through scipy (CPU tensors only).
        return torch_special(self.xp, name) or super().special_forward(name)

    def uniform(self, key: int, counter: int, shape: tuple, dtype, backend):
        if not backend.is_gpu:
            return super().uniform(key, counter, shape, dtype, backend)
        return self.seeded_uniform(key, counter, shape, dtype, backend.device)

    def seeded_uniform(self, key: int, counter: int, shape: tuple, dtype, device):
        """U[0, 1) from torch's own generator on ``device``, seeded afresh from ``(key, counter)``.

        torch has no uint64 arithmetic on CUDA to compute Philox with, so a
        draw on torch:cuda is torch's (its numbers differ from the other
        backends'); the stream's state is still gdbp's key and counter. One
        generator per device is kept and reseeded: seeding it is cheap.
        """
        import torch

        g = self._generators.get(device)
        if g is None:
            g = self._generators[device] = torch.Generator(device=device)
        g.manual_seed(library_seed(key, counter))
        return torch.rand(tuple(shape), generator=g, device=device, dtype=self.dtype(dtype))


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
