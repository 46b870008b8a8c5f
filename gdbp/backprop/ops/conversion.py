"""Dtype casts and device moves; and the rule for functions that have no gradient."""

from __future__ import annotations

from ... import backends
from ..engine import Node, Primitive, is_grad_enabled
from ..errors import NotDifferentiableError
from ..tensor import Tensor, _wrap

# --- astype: float to float passes the gradient (cast back by the engine) -----------------

astype_ = Primitive("astype", lambda xp, x, dtype, copy=True: xp.astype(x, dtype, copy=copy),
                    vjps=(lambda xp, g, ans, x, dtype, copy=True: g,), linear=True)
astype_int = Primitive("astype", lambda xp, x, dtype, copy=True: xp.astype(x, dtype, copy=copy),
                       differentiable=False)


def astype(x, dtype, /, *, copy=True, device=None):
    """x cast to dtype; a cast between floating dtypes passes the gradient through."""
    raw = x.data if isinstance(x, Tensor) else x
    xp = backends.namespace(raw)
    if device is not None:
        x = to_device(x, device)
    if xp.isdtype(dtype, "real floating") and xp.isdtype(raw.dtype, "real floating"):
        return astype_(x, dtype=dtype, copy=copy)
    return astype_int(x, dtype=dtype, copy=copy)


# --- moving between devices and backends ------------------------------------------------


def to_device(x, device, /):
    """x on another device of its own library; the gradient moves back."""
    raw = x.data if isinstance(x, Tensor) else x
    source = backends.backend_of(raw)
    moved = _to_device_raw(source.xp, raw, device)
    return _moved(x, moved, "to_device", lambda g: _to_device_raw(backends.namespace(g), g, backends.device_of(raw)))


def _to_device_raw(xp, raw, device):
    to = getattr(raw, "to_device", None)
    if to is not None:
        return to(device)
    return xp.asarray(raw, device=device, copy=True)


def transfer(x, backend, /):
    """x's values on another backend (an explicit copy); the gradient moves back."""
    raw = x.data if isinstance(x, Tensor) else x
    source = backends.backend_of(raw)
    target = backends.resolve(backend)
    moved = backends.transfer(raw, target)
    return _moved(x, moved, "transfer", lambda g: backends.transfer(g, source))


def _moved(x, moved, name, back):
    """Wrap a moved array; its node's VJP sends the gradient back where it came from."""
    target = backends.backend_of(moved)
    out = _wrap(moved, target)
    if isinstance(x, Tensor) and x._rg and is_grad_enabled():
        prim = Primitive(name, None, vjps=(lambda xp, g, ans, x: back(_raw(g)),), linear=True)
        parent = x._node if x._node is not None else x
        out._node = Node(prim, (parent,), (x.data,), {}, moved, target, ())
        out._rg = True
    return out


def _raw(g):
    if isinstance(g, Tensor):
        raise NotDifferentiableError("second derivatives through a transfer between backends are not supported")
    return g


# --- functions with no gradient -------------------------------------------------------------


def pass_through(name, fn, *args, **kw):
    """Call a backend function on the raw arrays and wrap its array outputs.

    Integer and boolean outputs carry no gradient. Floating outputs computed
    from Tensors that require grad get a node whose VJP says, if a gradient
    ever reaches it, that gdbp cannot differentiate this function.
    """
    raw = [a.data if isinstance(a, Tensor) else a for a in args]
    tracked = [a for a in args if isinstance(a, Tensor) and a._rg]
    xp = backends.namespace(*[a for a in raw if backends.is_array(a)])
    result = fn(xp, *raw, **kw)
    return _wrap_outputs(name, result, tracked, xp)


def _wrap_outputs(name, result, tracked, xp):
    if isinstance(result, tuple):
        wrapped = [_wrap_outputs(name, r, tracked, xp) for r in result]
        return type(result)(*wrapped) if hasattr(result, "_fields") else tuple(wrapped)
    if isinstance(result, list):
        return [_wrap_outputs(name, r, tracked, xp) for r in result]
    backend = backends.backend_of(result)
    if backend is None:
        return result
    if type(result) is not backend.array_type:
        result = backend.xp.asarray(result)
    out = _wrap(result, backend)
    if tracked and is_grad_enabled() and xp.isdtype(result.dtype, "real floating"):
        out._node = Node(_no_gradient(name), tuple(t if t._node is None else t._node for t in tracked), tuple(t.data for t in tracked),
                         {}, result, backend, ())
        out._rg = True
    return out


def _no_gradient(name):
    def refuse(xp, g, ans, *args):
        raise NotDifferentiableError(
            f"gdbp cannot differentiate through {name}: it has no gradient rule; "
            "compute it on a detached value (x.detach()) or write one with gdbp.custom_vjp"
        )

    return Primitive(name, None, vjp_all=refuse)


__all__ = ["astype", "to_device", "transfer", "pass_through"]
