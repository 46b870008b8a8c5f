"""Dtype casts and moves between devices and backends."""

from __future__ import annotations

from ... import backends
from ..primitive import defn, defprim
from ..tensor import unwrap

# --- astype: float to float passes the gradient (cast back by the engine) -----------------

astype_p = defprim("astype", lambda xp, x, dtype, copy=True: xp.astype(x, dtype, copy=copy),
                   lambda xp, g, ans, x, dtype, copy=True: g, linear=True, public=False)
astype_int_p = defprim("astype", lambda xp, x, dtype, copy=True: xp.astype(x, dtype, copy=copy),
                       differentiable=False, public=False)


@defn
def astype(x, dtype, /, *, copy=True, device=None):
    """x cast to dtype; a cast between floating dtypes passes the gradient through."""
    raw = unwrap(x)
    xp = backends.namespace(raw)
    if device is not None:
        x = to_device(x, device)
    if xp.isdtype(dtype, "real floating") and xp.isdtype(raw.dtype, "real floating"):
        return astype_p(x, dtype=dtype, copy=copy)
    return astype_int_p(x, dtype=dtype, copy=copy)


# --- moving between devices and backends: the gradient moves back ---------------------------


def _to_device(xp, x, /, device):
    """x on another device of its own library; the gradient moves back."""
    return backends.kernels(xp).to_device(x, device)


def _to_device_vjp(xp, g, ans, x, *, device):
    return backends.kernels(xp).to_device(g, backends.device_of(unwrap(x)))


to_device_p = defprim("to_device", _to_device, _to_device_vjp, linear=True, moves=True, public=False)


@defn(namespace=False)
def to_device(x, device, /):
    """x on another device of its own library; the gradient moves back."""
    return to_device_p(x, device=device)


def _transfer(xp, x, /, backend):
    return backends.kernels(xp).transfer(x, backend)


def _transfer_vjp(xp, g, ans, x, *, backend):
    # g lives where the output does; it goes back to x's backend (kernels(xp): recorded when xp is gdbp's).
    return backends.kernels(xp).transfer(g, backends.backend_of(unwrap(x)))


transfer_p = defprim("transfer", _transfer, _transfer_vjp, linear=True, moves=True, public=False)


@defn(namespace=False)
def transfer(x, backend, /):
    """x's values on another backend (an explicit copy); the gradient moves back."""
    return transfer_p(x, backend=backends.resolve(backend))
