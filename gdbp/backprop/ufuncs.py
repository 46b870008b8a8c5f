"""NumPy ufuncs on Tensors: each goes to the differentiable op gdbp has for it, or is refused by name.

``np.exp(t)`` is ``xp.exp(t)``, ``ndarray * t`` is ``xp.multiply(ndarray, t)``
(NumPy hands both to :meth:`Tensor.__array_ufunc__`), and a scipy.special
ufunc such as ``scipy.special.expit(t)`` is ``xp.special.expit(t)``. The rule
for a ufunc is found by its public names (NumPy's that are the standard's
names, ``numpy.arccos`` being ``numpy.acos``; scipy.special's under
``special.``), worked out once per ufunc in the backend layer, which alone
knows NumPy.

Of a ufunc's methods, ``reduce``, ``accumulate`` and ``outer`` go to the
reduction, scan or broadcast product that computes the same; ``at`` and
``reduceat`` are refused. ``out=`` may name a Tensor (written as
``out[...] = result``, recorded); a NumPy array as ``out`` is refused, since
its gradient would be lost (``ndarray += tensor`` is such a call).
A ufunc without a rule raises :class:`NotDifferentiableError`, naming it
and showing how to give it one with :func:`gdbp.custom_vjp`.

NumPy's other way in, ``np.asarray(t)`` (``Tensor.__array__``, which libraries
use to fall back to NumPy), gives the values of a CPU Tensor, and refuses a
Tensor that requires grad, as PyTorch does, rather than hand over values
whose gradient would be lost.
"""

from __future__ import annotations

from .. import backends
from .errors import NotDifferentiableError
from .primitive import NAMESPACE, OPS
from .tensor import Tensor

__all__ = ["array_ufunc", "rule_for", "host_values"]

#: ufunc -> (name in gdbp's namespace, op), or None where gdbp has no rule: filled as ufuncs arrive.
_rules: dict = {}

# The ufunc methods that gdbp computes with other ops: the ufunc's op name -> the op that does the same.
_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min", "logaddexp": "logsumexp",
           "logical_and": "all", "logical_or": "any"}
_ACCUMULATE = {"add": "cumulative_sum", "multiply": "cumulative_prod"}
# Keyword options each method passes on (NumPy hands over only those given).
_OPTIONS = {"__call__": (), "reduce": ("axis", "keepdims", "dtype"), "accumulate": ("axis", "dtype"), "outer": ()}


def rule_for(ufunc):
    """The ``(name, op)`` gdbp dispatches ``ufunc`` to, or None where it has no rule."""
    try:
        return _rules[ufunc]
    except KeyError:
        pass
    rule = None
    for qualified in backends.ufunc_names(ufunc):
        module, _, name = qualified.rpartition(".")
        if module == "numpy" and name in NAMESPACE:
            rule = (name, NAMESPACE[name])
        elif module == "scipy.special" and f"special.{name}" in OPS:
            rule = (f"special.{name}", OPS[f"special.{name}"])
        if rule is not None:
            break
    _rules[ufunc] = rule
    return rule


def _shown(ufunc) -> str:
    names = backends.ufunc_names(ufunc)
    if names:
        return names[0].replace("numpy.", "np.", 1)
    return getattr(ufunc, "__name__", repr(ufunc))


def _no_rule(ufunc) -> NotDifferentiableError:
    shown = _shown(ufunc)
    name = getattr(ufunc, "__name__", "f")
    args = ", ".join("xyzuvw"[i] for i in range(max(getattr(ufunc, "nin", 1), 1)))
    grads = ", ".join(f"g * d{name}_d{a}" for a in args.split(", ")) + ("," if "," not in args else "")
    return NotDifferentiableError(
        f"{shown} was applied to a gdbp Tensor, but gdbp has no gradient rule for it. "
        f"Without a gradient, apply it to the array inside (t.data). With one, make it a primitive "
        f"with gdbp.custom_vjp and call that instead of {shown}:\n\n"
        f"    @gdbp.custom_vjp\n"
        f"    def {name}({args}):\n"
        f"        return {shown}({args})        # runs on the raw arrays\n\n"
        f"    @{name}.defvjp\n"
        f"    def {name}_vjp(g, ans, {args}):\n"
        f"        return ({grads})   # one gradient per input, from g = d cost / d ans"
    )


def _options(ufunc, method, kwargs, op_name) -> dict:
    allowed = _OPTIONS[method] + (("axis",) if op_name == "vecdot" else ())
    for key in kwargs:
        if key not in allowed:
            raise TypeError(
                f"{_shown(ufunc)}{'' if method == '__call__' else '.' + method}(..., {key}=...) on a gdbp Tensor: "
                f"gdbp computes NumPy ufuncs with its own differentiable ops, which take no {key}=; "
                "drop it (cast with xp.astype, select with xp.where)"
            )
    return kwargs


def _outer(op, a, b):
    # op.outer(a, b)[i..., j...] = op(a[i...], b[j...]): a gets one trailing axis of size 1 per axis of b.
    ndim = getattr(b, "ndim", 0)
    if ndim and hasattr(a, "shape"):
        a = OPS["reshape"](a, tuple(a.shape) + (1,) * ndim)
    return op(a, b)


def _reduced(ufunc, method, name, x, kwargs):
    table = _REDUCE if method == "reduce" else _ACCUMULATE
    if name not in table:
        raise TypeError(
            f"{_shown(ufunc)}.{method} on a gdbp Tensor: gdbp computes {method} only for "
            f"{', '.join('np.' + n for n in table)}; write it with the namespace's functions instead"
        )
    dtype = kwargs.pop("dtype", None)
    if dtype is not None:
        x = OPS["astype"](x, dtype)
    axis = kwargs.pop("axis", 0)  # NumPy's default for ufunc methods: the first axis, not all of them
    return OPS[table[name]](x, axis=axis, **kwargs)


def _into(ufunc, out, result):
    """Write result into ``out=``: a Tensor takes it as ``out[...] = result``; anything else is refused."""
    if len(out) != 1 or not isinstance(out[0], Tensor):
        kinds = ", ".join(type(o).__name__ for o in out)
        raise TypeError(
            f"{_shown(ufunc)}(..., out={kinds}) with a gdbp Tensor among the inputs: gdbp does not write a "
            "Tensor's result into a plain array (its gradient would be lost); take the result instead, "
            "y = np.add(a, t) rather than np.add(a, t, out=a), and a = a + t rather than a += t"
        )
    target = out[0]
    if result.dtype != target.dtype:
        raise TypeError(
            f"{_shown(ufunc)}(..., out=t): the result's dtype {result.dtype} is not out's {target.dtype}; "
            "cast one of them first (xp.astype)"
        )
    target[...] = result
    return target


def array_ufunc(ufunc, method, inputs, kwargs):
    """What ``Tensor.__array_ufunc__`` does: the differentiable op for ``ufunc``'s ``method``.

    Raises
    ------
    NotDifferentiableError
        gdbp has no rule for the ufunc (the message shows how to write one).
    TypeError
        A method gdbp does not dispatch (``at``, ``reduceat``), an option its
        ops do not take (``where=``, ``casting=``...), or ``out=`` an array
        that is not a Tensor.
    """
    rule = rule_for(ufunc)
    if rule is None:
        raise _no_rule(ufunc)
    name, op = rule
    if method == "at":
        raise TypeError(
            f"{_shown(ufunc)}.at on a gdbp Tensor: ufunc.at writes into its first operand in place, which gdbp "
            "does not dispatch; for np.add.at(x, key, v), add out of place: "
            "x = x + gdbp.backprop.ops.index_add(v, key=key, shape=x.shape) (repeated indices add up)"
        )
    if method not in _OPTIONS:
        raise TypeError(
            f"{_shown(ufunc)}.{method} on a gdbp Tensor: gdbp does not dispatch ufunc.{method}; "
            "write it with the namespace's functions (xp.sum over slices, for reduceat)"
        )
    out = kwargs.pop("out", None)
    kwargs = _options(ufunc, method, kwargs, name)
    if method == "__call__":
        result = op(*inputs, **kwargs)
    elif method == "outer":
        result = _outer(op, *inputs)
    else:
        result = _reduced(ufunc, method, name, inputs[0], kwargs)
    if out is not None and any(o is not None for o in out):
        return _into(ufunc, out, result)
    return result


def host_values(t, dtype=None, copy=None):
    """What ``Tensor.__array__`` gives NumPy: the values, where no gradient and no GPU copy is hidden.

    Raises
    ------
    NotDifferentiableError
        t requires grad: NumPy's array would carry no gradient.
    TypeError
        t lives on a GPU: the copy to the host is made explicitly, with ``t.numpy()``.
    """
    if t._rg:
        raise NotDifferentiableError(
            "NumPy was asked for the values of a Tensor that requires grad (np.asarray(t), or a library falling "
            "back to NumPy for a function gdbp has no rule for): they would carry no gradient. Use "
            "t.detach().numpy() for the values, or make the function a primitive with gdbp.custom_vjp"
        )
    if t._backend.is_gpu:
        raise TypeError(
            f"np.asarray on a Tensor on {t._backend.spec} would copy it from the GPU behind your back; "
            "copy it explicitly with t.numpy()"
        )
    host = backends.to_numpy(t.data)
    if copy:
        host = host.copy()
    return host if dtype is None else host.astype(dtype, copy=False)
