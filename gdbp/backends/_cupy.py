"""CuPy: NVIDIA GPUs. CuPy is imported only when a CuPy backend is asked for or probed."""

from __future__ import annotations

import math

from ._backend import INSTALL_HINTS, Backend, BackendUnavailableError, import_library, intern
from ._kernels import UNKNOWN, Kernels, Strided, library_kernels
from ._numpy import INTO_NAMES
from ._philox import M64
from ._scatter import as_key, assign_selected, has_int_array

__all__ = ["CupyKernels", "PHILOX_KERNEL", "cupy_backend", "probe_cuda"]


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


# Philox4x64-10 as NumPy computes it (see gdbp.backends._philox): element i of a draw is word i % 4 of
# the block at counter base + i // 4 (base = the stream's counter + 1), turned into a double from its top
# 53 bits. Each thread computes its element's whole block: Philox is a few dozen integer operations, and
# no thread waits on another.
PHILOX_PREAMBLE = r"""
__device__ inline unsigned long long gdbp_philox_word(unsigned long long k0, unsigned long long k1,
                                                      unsigned long long c0, int word) {
    unsigned long long c1 = 0, c2 = 0, c3 = 0;
    for (int r = 0; r < 10; ++r) {
        if (r) {
            k0 += 0x9E3779B97F4A7C15ULL;
            k1 += 0xBB67AE8584CAA73BULL;
        }
        unsigned long long hi0 = __umul64hi(0xD2E7470EE14C6C93ULL, c0), lo0 = 0xD2E7470EE14C6C93ULL * c0;
        unsigned long long hi1 = __umul64hi(0xCA5A826395121157ULL, c2), lo1 = 0xCA5A826395121157ULL * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    return word == 0 ? c0 : word == 1 ? c1 : word == 2 ? c2 : c3;
}
"""
PHILOX_OPERATION = (
    "u = (T)((double)(gdbp_philox_word(key0, key1, base + (unsigned long long)(i >> 2), (int)(i & 3)) >> 11)"
    " * (1.0 / 9007199254740992.0))"
)
PHILOX_KERNEL = dict(in_params="uint64 key0, uint64 key1, uint64 base", out_params="T u",
                     operation=PHILOX_OPERATION, name="gdbp_philox_uniform", preamble=PHILOX_PREAMBLE)


class CupyKernels(Strided, Kernels):
    """CuPy's fast paths: in-place products and sums, ``cupy.add.at``, one kernel per random draw.

    Parameters
    ----------
    xp : namespace
        array-api-compat's CuPy namespace.
    cp : module, optional
        The cupy module (imported when not given; a stand-in in the tests
        that run without a GPU).
    """

    def __init__(self, xp, cp=None):
        super().__init__(xp)
        if cp is None:
            import cupy as cp
        self._cp = cp
        self._philox = None

    def memory_of(self, a):
        if a.base is None:
            return None
        return UNKNOWN if 0 in a.strides else a.base  # a broadcast view repeats elements

    def into(self, name: str):
        # CuPy's ufuncs and matmul take out= as NumPy's do, under the same names.
        fn = INTO_NAMES.get(name)
        return getattr(self._cp, fn) if fn is not None else None

    def kernel_into(self, name: str):
        return self.matmul_into if name == "matmul" else None

    def copy_like(self, a, like=None):
        out = self._cp.empty_like(a if like is None or like.shape != a.shape else like)
        out[...] = a
        return out

    def reusable(self, a) -> bool:
        # CuPy arrays are always writeable; a view (base set) could alias another array.
        return a.base is None and a.flags.c_contiguous

    def matmul_into(self, a, b, out):
        return self._cp.matmul(a, b, out=out)

    def sum_into(self, a, axis, out):
        return self._cp.sum(a, axis=axis, out=out)

    def creating(self, device):
        # array-api-compat's creation functions ignore device= on CuPy: CuPy makes arrays on its
        # current device, so the device is made current for the creation.
        return self._cp.cuda.Device(device)

    def scatter_add(self, g, key, shape):
        key = as_key(key)
        with self.creating(g.device):
            if not has_int_array(key, self.xp):
                return assign_selected(self.xp, g, key, shape)
            # cupy.add.at, not cupyx.scatter_add (deprecated: it warns on every call).
            z = self._cp.zeros(shape, dtype=g.dtype)
            self._cp.add.at(z, key, g)
        return z

    def to_numpy(self, x):
        return x.get()

    def special_forward(self, name: str):
        from ._special import cupyx_special

        return cupyx_special(self.xp, name)

    def uniform(self, key: int, counter: int, shape: tuple, dtype, backend):
        import numpy as np

        dtype = np.dtype(self.dtype(dtype))
        n = math.prod(shape)
        # The kernel writes float32 or float64 (one rounding from the double, as NumPy's astype);
        # any other float dtype is rounded from the float64 draw.
        direct = dtype in (np.dtype(np.float32), np.dtype(np.float64))
        with self.creating(backend.device):
            out = self._cp.empty(n, dtype=dtype if direct else np.float64)
            if n:
                if self._philox is None:
                    self._philox = self._cp.ElementwiseKernel(**PHILOX_KERNEL)
                self._philox(np.uint64(key & M64), np.uint64(key >> 64), np.uint64(counter + 1), out)
            if not direct:
                out = out.astype(dtype)
            return out.reshape(tuple(shape))


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
