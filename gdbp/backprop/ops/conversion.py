"""Dtype casts and moves between devices and backends."""

from __future__ import annotations

from ... import backends
from ..primitive import defn, defprim
from ..tensor import unwrap

# --- astype: between floating dtypes (real or complex) the gradient passes, cast back by the engine ----

_FLOATING = ("real floating", "complex floating")
astype_p = defprim("astype", lambda xp, x, dtype, copy=True: xp.astype(x, dtype, copy=copy),
                   lambda xp, g, ans, x, dtype, copy=True: g, linear=True, public=False)
astype_int_p = defprim("astype", lambda xp, x, dtype, copy=True: xp.astype(x, dtype, copy=copy),
                       differentiable=False, public=False)


@defn
def astype(x, dtype, /, *, copy=True, device=None):
    """x cast to dtype; a cast between floating dtypes (real or complex) passes the gradient through.

    A real x cast to a complex dtype gets the real part of the gradient back.
    """
    raw = unwrap(x)
    xp = backends.namespace(raw)
    if device is not None:
        x = to_device(x, device)
    if xp.isdtype(dtype, _FLOATING) and xp.isdtype(raw.dtype, _FLOATING):
        return astype_p(x, dtype=dtype, copy=copy)
    return astype_int_p(x, dtype=dtype, copy=copy)


# --- moving between devices and backends: the gradient moves back ---------------------------


def _mover(name: str, move, origin):
    """A primitive that moves x elsewhere, ``move(kernels, x, where)``; its gradient moves back to ``origin(x)``.

    ``kernels(xp)`` does the move: the backend's on a plain backward pass, a
    recorded primitive on gdbp's namespace, so that higher derivatives flow through.
    """

    def forward(xp, x, /, where):
        return move(backends.kernels(xp), x, where)

    def vjp(xp, g, ans, x, *, where):
        return move(backends.kernels(xp), g, origin(unwrap(x)))

    return defprim(name, forward, vjp, linear=True, moves=True, public=False)


to_device_p = _mover("to_device", lambda k, x, device: k.to_device(x, device), backends.device_of)
transfer_p = _mover("transfer", lambda k, x, backend: k.transfer(x, backend), backends.backend_of)


@defn(namespace=False)
def to_device(x, device, /):
    """x on another device of its own library; the gradient moves back."""
    return to_device_p(x, where=device)


@defn(namespace=False)
def transfer(x, backend, /):
    """x's values on another backend (an explicit copy); the gradient moves back."""
    return transfer_p(x, where=backends.resolve(backend))
