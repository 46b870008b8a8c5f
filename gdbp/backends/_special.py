"""scipy.special's functions on each library's arrays, and the names of NumPy's and scipy's ufuncs.

gdbp's special-function primitives (:mod:`gdbp.backprop.ops.special_functions`)
take their forward values from here, through ``kernels(xp).special(name)``:
scipy.special on NumPy arrays, cupyx.scipy.special on CuPy arrays,
torch.special on torch tensors, and, for any other library's CPU arrays,
scipy.special on the same memory handed over through DLPack (no copy).

scipy stays optional: it is imported the first time one of these functions
is asked for on a NumPy (or other CPU) array, never by ``import gdbp``.
"""

from __future__ import annotations

import importlib
import sys

import numpy

from ._backend import BackendUnavailableError

__all__ = ["SPECIAL_NAMES", "ufunc_names", "scipy_special", "cupyx_special", "torch_special", "host_special"]

#: The scipy.special functions gdbp has a gradient rule for (``digamma`` is also scipy's ``psi``).
SPECIAL_NAMES = ("expit", "log_expit", "logit", "erf", "erfc", "erfinv", "gammaln", "digamma", "polygamma", "xlogy",
                 "xlog1py", "entr", "rel_entr", "ndtr", "log_ndtr")

# -- what a ufunc is called -----------------------------------------------------------------------

_numpy_names: dict = {}  # ufunc -> its public names in numpy ("arccos" and "acos" are one ufunc)


def ufunc_names(ufunc) -> tuple:
    """The public names of a NumPy or scipy.special ufunc, with their module (``"numpy.arccos"``).

    Empty for any other ufunc. scipy.special is looked at only if it has
    been imported already (a ufunc of scipy's cannot exist before that).
    """
    if not _numpy_names:
        for name, value in vars(numpy).items():
            if isinstance(value, numpy.ufunc) and not name.startswith("_"):
                _numpy_names.setdefault(value, []).append(f"numpy.{name}")
        _numpy_names.update((u, tuple(sorted(names))) for u, names in _numpy_names.items())
    found = _numpy_names.get(ufunc)
    if found is not None:
        return found
    special = sys.modules.get("scipy.special")
    name = getattr(ufunc, "__name__", None)
    public = getattr(special, name, None) if special is not None and name else None
    # With SCIPY_ARRAY_API=1, scipy.special's public function wraps the ufunc (functools.wraps keeps it).
    if public is not None and (public is ufunc or getattr(public, "__wrapped__", None) is ufunc):
        return (f"scipy.special.{name}",)
    return ()


# -- forwards ---------------------------------------------------------------------------------------


def _check(name):
    if name not in SPECIAL_NAMES:
        raise ValueError(f"no special function {name!r}: gdbp has {', '.join(SPECIAL_NAMES)}")


def _floating_dtype(xp, args):
    """The dtype the standard's promotion gives the floating array arguments (None if there are none)."""
    floats = [a for a in args if hasattr(a, "dtype") and xp.isdtype(a.dtype, "real floating")]
    return xp.result_type(*floats) if floats else None


def _keeping_dtype(xp, fn):
    """fn, with its result cast back to the inputs' floating dtype.

    scipy.special computes some functions of float32 in float64
    (``xlogy(float32, 2.0)``, ``polygamma``); a float32 computation must
    stay float32.
    """

    def run(*args):
        out = fn(*args)
        want = _floating_dtype(xp, args)
        if want is not None and out.dtype != want and xp.isdtype(out.dtype, "real floating"):
            out = xp.astype(out, want)
        return out

    return run


def _import(module: str, why: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(f"{why} needs {module.split('.')[0]} ({exc}): pip install scipy") from None


_scipy_cache: dict = {}


def scipy_special(name: str):
    """scipy.special's ``name`` on NumPy arrays, as a 0-d-safe function of the standard's dtypes."""
    fn = _scipy_cache.get(name)
    if fn is None:
        _check(name)
        special = _import("scipy.special", f"scipy.special.{name} on NumPy arrays")
        raw = getattr(special, name)

        def on_numpy(*args):
            return numpy.asarray(raw(*args))  # scipy gives NumPy scalars for 0-d inputs

        import array_api_compat.numpy as compat_numpy  # here: NumPy's backend has imported it already

        fn = _scipy_cache[name] = _keeping_dtype(compat_numpy, on_numpy)
    return fn


def cupyx_special(xp, name: str):
    """cupyx.scipy.special's ``name`` on CuPy arrays."""
    _check(name)
    special = _import("cupyx.scipy.special", f"scipy.special.{name} on CuPy arrays")
    fn = getattr(special, name, None)
    if fn is None:
        raise BackendUnavailableError(
            f"scipy.special.{name} on CuPy arrays: this CuPy has no cupyx.scipy.special.{name}; upgrade CuPy"
        )
    return _keeping_dtype(xp, fn)


def torch_special(xp, name: str):
    """torch.special's ``name`` on torch tensors, or None where torch has none (rel_entr)."""
    _check(name)
    special = sys.modules["torch"].special  # a torch backend exists, so torch is imported
    fn = getattr(special, name, None)
    if fn is None:
        return None
    if name == "polygamma":
        return lambda n, x: fn(int(n), x)  # torch takes the order as a Python int
    if name in ("xlogy", "xlog1py"):
        return _keeping_dtype(xp, fn)  # torch gives float64 for a float32 tensor with a Python float
    return fn


def host_special(xp, name: str):
    """scipy.special's ``name`` on another library's CPU arrays, their memory handed over by DLPack.

    Raises
    ------
    BackendUnavailableError
        (when called) on arrays that DLPack cannot hand to NumPy, such as
        arrays on a GPU, for which gdbp has no forward of this function.
    """
    on_numpy = scipy_special(name)

    def run(*args):
        try:
            host = [numpy.from_dlpack(a) if hasattr(a, "__dlpack__") else a for a in args]
        except (BufferError, RuntimeError, TypeError, ValueError) as exc:
            raise BackendUnavailableError(
                f"scipy.special.{name} on {xp.__name__} arrays: gdbp computes it with scipy on CPU memory "
                f"shared through DLPack, which these arrays refuse ({exc}); move them to NumPy "
                "(gdbp.transfer(x, 'numpy')) or to CuPy"
            ) from None
        return xp.from_dlpack(on_numpy(*host))

    return run
