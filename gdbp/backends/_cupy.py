"""CuPy: NVIDIA GPUs. CuPy is imported only when a CuPy backend is asked for or probed."""

from __future__ import annotations

from ._backend import INSTALL_HINTS, Backend, BackendUnavailableError, import_library, intern
from ._kernels import Kernels, library_kernels
from ._scatter import as_key, assign_selected, has_int_array

__all__ = ["CupyKernels", "cupy_backend", "probe_cuda"]


def probe_cuda() -> tuple[bool, str]:
    """Whether CuPy imports and a CUDA device answers, and why not if not."""
    try:
        import cupy  # noqa: F401  (guarded: the only place cupy is probed)
    except ImportError as exc:
        return False, f"cupy is not installed ({exc}): {INSTALL_HINTS['cupy']}"
    except Exception as exc:  # a broken CUDA install raises at import
        return False, f"cupy is installed but failed to import: {exc}"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "cupy is installed but no CUDA device answered: 0 devices found"
        cupy.zeros(1).sum().item()  # a device that is listed may still refuse work
    except Exception as exc:
        return False, f"cupy is installed but no CUDA device answered: {exc}"
    return True, f"cupy {cupy.__version__} with {n} CUDA device(s)"


class CupyKernels(Kernels):
    def __init__(self, xp):
        super().__init__(xp)
        import cupy

        self._cp = cupy

    def owns(self, a) -> bool:
        return a.base is None

    def scatter_add(self, g, key, shape):
        key = as_key(key)
        if not has_int_array(key, self.xp):
            return assign_selected(self.xp, g, key, shape)
        with g.device:
            z = self._cp.zeros(shape, dtype=g.dtype)
            self._cp.add.at(z, key, g)
        return z

    def to_numpy(self, x):
        return x.get()

    def special_forward(self, name: str):
        from ._special import cupyx_special

        return cupyx_special(self.xp, name)

    def stream(self, seed: int, backend):
        return CupyStream(seed, backend)


class CupyStream:
    """CuPy's own generator, on the backend's GPU."""

    def __init__(self, seed, backend):
        import cupy

        self.backend = backend
        self.seed = seed
        with backend.device:
            self._g = cupy.random.default_rng(seed)

    def random(self, shape, dtype=None):
        from ._random import numpy_dtype

        dtype = numpy_dtype(self.backend, dtype)
        with self.backend.device:
            return self._g.random((shape,) if isinstance(shape, int) else tuple(shape), dtype=dtype)

    def get_state(self):
        raise NotImplementedError(
            "CuPy's generator does not expose its state, so a CuPy stream cannot be saved; "
            "a resumed run restarts its masks from the seed"
        )

    set_state = get_state


def cupy_backend(index: int = 0) -> Backend:
    def make():
        ok, why = probe_cuda()
        if not ok:
            raise BackendUnavailableError(why)
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < n:
            raise BackendUnavailableError(
                f"cupy:{index} asked for, but this machine has {n} CUDA device(s): use cupy:0 .. cupy:{n - 1}"
            )
        xp = import_library("array_api_compat.cupy", "array_api_compat")
        k = library_kernels(xp, CupyKernels)
        return Backend("cupy", xp, cupy.cuda.Device(index), True, cupy.ndarray, cupy.__version__,
                       f"cupy:{index}", True, k)

    return intern(("cupy", index), make)
