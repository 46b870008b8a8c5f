"""The functional face: grad, value_and_grad, vjp.

For plain NumPy or CuPy arrays in, the results are arrays of the same
library, on the same device, in the same dtype. Arguments may be arrays or
lists, tuples and dicts of arrays (the gradient has the same structure).
Nested calls (``grad(grad(f))``) record the inner backward pass, so that the
outer one can differentiate it.

The Tensors f receives are gdbp's own: in-place updates of them (``x[i] = v``,
``x += 1``, array-api-extra's ``at``) are recorded and differentiated, and the
caller's arrays are never written (a write that would go into one copies it
first), nor copied when nothing writes.
"""

from __future__ import annotations

import operator

from .. import backends
from .mode import state as _mode
from .errors import GradRequirementError
from .primitive import defprim
from .sweep import backprop
from .engine import _FLOATING, Node
from .tensor import Tensor, make, unwrap
from .tree import flatten as _flatten
from . import trace as _trace

__all__ = ["grad", "value_and_grad", "vjp"]


def _to_tensor(x):
    if isinstance(x, Tensor):
        return x
    if backends.is_array(x):
        return Tensor(x)
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        return Tensor(backends.current().xp.asarray(float(x)))
    if isinstance(x, complex):
        return Tensor(backends.current().xp.asarray(x))
    raise TypeError(
        f"cannot differentiate with respect to a {type(x).__name__}: pass an array, a Tensor, "
        "a float, a complex, or a list/tuple/dict of them"
    )


def _target(x, nested):
    """The Tensor whose gradient is wanted for input x."""
    backend = backends.backend_of(x)
    if backend is not None and type(x) is backend.array_type and backends.isdtype(backend.xp, x.dtype, _FLOATING):
        t = make(x, backend)  # the common case, an array of floats: Tensor(x) with requires_grad, unchecked
        t._rg = True
        return t
    if isinstance(x, Tensor) and x._rg and nested:
        return x  # differentiating inside an outer transform: keep the link to its graph
    t = _to_tensor(x)
    if t._rg or t is x:
        t = Tensor(t.data)
    t.requires_grad = True
    return t


class Borrowed(list):
    """The version counter of a Tensor whose array a caller of grad or vjp lent: a write into it copies it first.

    (A recorded write is out of place anyway.) So the caller's array is never written, and never copied
    when nothing writes; views share the counter, so they copy too. Tensor's in-place writes call :func:`own`.
    """

    __slots__ = ()


def own(t) -> None:
    """Before a write into t's array, which a caller lent: copy it, where the write would go into it."""
    if t._backend.mutable:  # otherwise the write is out of place anyway
        if _trace.tracing and _trace.tracer() is not None:
            # gdbp.compile traces: the copy is a step of the plan, so that a replay copies the array anew
            t.data = kernel_p(make(t.data, t._backend), name="copy_like").data
        else:
            t.data = t._backend.xp.asarray(t.data, copy=True)
        t._vc = None  # a new array, with versions of its own: what was saved from the old one stays valid


class Received(Borrowed):
    """The version counter of a leaf that grad made for a caller's array and gave f as it is.

    Such a leaf may be updated in place while gradients are recorded, as a non-leaf may: the write is
    recorded out of place (the Tensor takes the new value and its node), and the gradient is still the
    one with respect to the value f received, whose leaf the sweep was given before f ran.
    """

    __slots__ = ()


# An outer transform's Tensor gets a non-leaf alias instead (the same array, no copy): f's in-place updates of
# it are recorded on the alias, never on the caller's Tensor.
_input_p = defprim("input", lambda xp, x: x, lambda xp, g, ans, x: g, public=False, linear=True)


def _received(t, fresh: bool):
    """What f receives for a differentiated argument: t itself if grad made it, else an alias of t.

    Either way its version counter is Borrowed: a write that would go into the caller's array (under
    no_grad) copies it first. The alias's node is built here rather than by engine.apply, which would
    cost twice as much.
    """
    if fresh:
        t._vc = Received([0])
        return t
    data, parent = t.data, (t if t._node is None else t._node)
    return make(data, t._backend, node=Node(_input_p, [parent], [data], {}, data, t._backend, None),
                vc=Borrowed([0]))


def _lent(x):
    """What f receives for an argument not differentiated: the caller's array, copied before any write."""
    backend = backends.backend_of(x)
    if backend is not None and type(x) is backend.array_type:
        return make(x, backend, vc=Borrowed([0]))
    t = Tensor(x)
    t._vc = Borrowed([0])
    return t


def _unwrap_like(value, raw_out):
    """Tensors back to raw arrays when the caller passed raw arrays; raw arrays to Tensors when it passed Tensors."""
    leaves, rebuild = _flatten(value)
    if raw_out:
        return rebuild([unwrap(leaf) for leaf in leaves])
    return rebuild([Tensor(leaf) if backends.is_array(leaf) else leaf for leaf in leaves])


_ARGNUMS: dict = {}  # (argnums, number of arguments) -> _argnums' answer: a program uses a few forms


def _argnums(argnums, n):
    """argnums as a tuple of argument positions (in the order given, repeats kept), and whether it was one int."""
    key = (argnums if not isinstance(argnums, list) else tuple(argnums), n)
    try:
        found = _ARGNUMS.get(key) if not isinstance(argnums, bool) else None
    except TypeError:  # something unhashable: not argnums, as the checks below say
        found = key = None
    if found is not None:
        return found
    single = not isinstance(argnums, (tuple, list))
    given = (argnums,) if single else tuple(argnums)
    nums = []
    for i in given:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(
                f"argnums must be an int or a tuple of ints (positions of the arguments to differentiate), "
                f"got {argnums!r}"
            )
        i = operator.index(i)
        if not -n <= i < n:
            raise IndexError(f"argnums {argnums} out of range for a function called with {n} positional arguments")
        nums.append(i % n)
    found = (tuple(nums), single)
    if key is not None and len(_ARGNUMS) < 256 and all(type(i) is int for i in given):
        _ARGNUMS[key] = found
    return found


def _call(f, args, kwargs, argnums):
    """Run f with the chosen arguments as fresh leaves; return everything backprop needs."""
    nums, single = _argnums(argnums, len(args))
    state = _mode
    nested = state.depth > 0
    flat = [_flatten(a) for a in args]
    raw_out = True
    for i, (leaves, _) in enumerate(flat):
        for leaf in leaves:
            if isinstance(leaf, Tensor):
                raw_out = False
                if leaf._rg and i in nums:
                    nested = True  # a tracked Tensor came in: keep the result differentiable
    call_args = list(args)
    wanted = {}
    previous = state.grad_enabled
    state.depth += 1  # inside f, a nested transform records its backward pass for this one
    state.grad_enabled = True
    try:
        for i, (leaves, rebuild) in enumerate(flat):
            if i in nums:
                ts = [_target(leaf, nested) for leaf in leaves]
                # What the sweep differentiates with respect to, taken now: f may update a leaf in place.
                keys = [t._node if t._node is not None else t for t in ts]
                wanted[i] = (ts, rebuild, keys)
                given = [_received(t, t is not leaf) for t, leaf in zip(ts, leaves)]
            else:
                given = [_lent(leaf) if backends.is_array(leaf) else leaf for leaf in leaves]
            call_args[i] = rebuild(given)
        out = f(*call_args, **kwargs)
    finally:
        state.grad_enabled = previous
        state.depth -= 1
    # In argnums' order, a repeated position twice (as JAX does): grad(f, (1, 0)) gives (df/dx1, df/dx0).
    targets = [(wanted[i][0], wanted[i][2]) for i in nums]
    rebuilds = [wanted[i][1] for i in nums]
    return out, targets, rebuilds, single, nested, raw_out


def _output_tensor(out, fname, what):
    """f's output as a Tensor; anything but an array is an error that says why it cannot be differentiated."""
    if isinstance(out, Tensor):
        return out
    if backends.is_array(out):
        return Tensor(out)
    hint = (" (a Python number: the function turned its result into one, with float() or .item(), "
            "which leaves the gradient behind; return the 0-d array itself)") if isinstance(out, float) else ""
    raise TypeError(f"{fname}: the function must return {what}, got {type(out).__name__}{hint}")


def _scalar_output(out, fname):
    out = _output_tensor(out, fname, "a scalar array")
    if out.size != 1:
        raise GradRequirementError(
            f"{fname}: the function must return a scalar, got shape {out.shape}; "
            "reduce it (e.g. xp.sum or xp.mean) or use gdbp.vjp for non-scalar outputs"
        )
    if backends.isdtype(out.backend.xp, out.dtype, "complex floating"):
        raise TypeError(
            f"{fname}: the function must return a real scalar, got dtype {out.dtype}; a complex value has no "
            "gradient of its own (as in PyTorch): return a real cost, e.g. xp.real(y) or xp.abs(y) ** 2"
        )
    if not backends.isdtype(out.backend.xp, out.dtype, "real floating"):
        raise TypeError(
            f"{fname}: the function must return a real floating-point scalar, got dtype {out.dtype}; "
            "a gradient of an integer or boolean output is not defined (cast it, e.g. xp.astype(y, xp.float64))"
        )
    return out


def _gradients(outs, seeds, targets, nested, retain=False):
    flat = [t for ts, _ in targets for t in ts]
    if any(o._rg for o in outs):
        tracked = [o for o in outs if o._rg]
        tracked_seeds = [s for o, s in zip(outs, seeds) if o._rg]
        keys = [k for _, ks in targets for k in ks]
        found = backprop(tracked, tracked_seeds, targets=flat, create_graph=nested, retain_graph=nested or retain,
                         keys=keys)
    else:
        found = [None] * len(flat)  # the output does not depend on the inputs at all
    result = []
    for t, g in zip(flat, found):  # the sweep hands each gradient out as its own array
        if g is None:
            g = t._backend.xp.zeros_like(t.data)
        if nested and not isinstance(g, Tensor):
            g = Tensor(g)
        result.append(g)
    return result


def _structure(grads, targets, rebuilds, single):
    out, start = [], 0
    for (ts, _), rebuild in zip(targets, rebuilds):
        out.append(rebuild(grads[start:start + len(ts)]))
        start += len(ts)
    return out[0] if single else tuple(out)


def value_and_grad(f, argnums=0, has_aux=False):
    """A function giving f's value and its gradient with respect to argument(s) ``argnums``.

    Parameters
    ----------
    f : callable
        Returns a scalar (or ``(scalar, aux)`` with ``has_aux``), written
        against the array API standard or with gdbp Tensors.
    argnums : int or tuple of int
        Which positional arguments to differentiate with respect to.
    has_aux : bool
        f returns a pair (value, auxiliary data); aux is passed through.

    Returns
    -------
    callable
        ``(value, grad)``, or ``((value, aux), grad)`` with ``has_aux``.
        ``grad`` matches the argument's structure (a tuple for a tuple
        ``argnums``), in the caller's array library, device and dtype.

    Examples
    --------
    >>> cost = lambda w: (w ** 2).sum()
    >>> value, dw = gdbp.value_and_grad(cost)(np.array([1.0, 2.0]))   # 5.0, [2.0, 4.0]
    """

    def wrapped(*args, **kwargs):
        out, targets, rebuilds, single, nested, raw_out = _call(f, args, kwargs, argnums)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("value_and_grad(has_aux=True): the function must return a pair (value, aux)")
            out, aux = out
        out = _scalar_output(out, "value_and_grad")
        seed = out._backend.xp.ones_like(out.data)
        grads = _gradients([out], [seed], targets, nested)
        if raw_out and not nested:  # arrays in, arrays out: the sweep's gradients are the caller's arrays already
            value, g = out.data, _structure(grads, targets, rebuilds, single)
        else:
            value = out if nested else out.detach()
            g = _unwrap_like(_structure(grads, targets, rebuilds, single), raw_out)
            value = _unwrap_like(value, raw_out)
        if has_aux:
            return (value, _unwrap_like(aux, raw_out)), g
        return value, g

    wrapped.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    wrapped.__doc__ = f.__doc__
    return wrapped


def grad(f, argnums=0, has_aux=False):
    """A function giving the gradient of scalar-valued f with respect to argument(s) ``argnums``.

    See :func:`value_and_grad`; ``grad(f)(x)`` is its second half.

    Examples
    --------
    >>> import array_api_compat, gdbp
    >>> def cost(w, x, y):
    ...     xp = array_api_compat.array_namespace(w, x, y)
    ...     return xp.mean((xp.tanh(x @ w) - y) ** 2)
    >>> dw = gdbp.grad(cost)(w, x, y)   # numpy arrays in, a numpy array out
    """
    vg = value_and_grad(f, argnums=argnums, has_aux=has_aux)

    def wrapped(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g

    wrapped.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    wrapped.__doc__ = f.__doc__
    return wrapped


def vjp(f, *xs):
    """f's output at xs, and a function pulling an output gradient back to the inputs.

    Returns
    -------
    out : array
        ``f(*xs)``.
    vjp_fn : callable
        ``vjp_fn(g)`` gives a tuple with one gradient per x: the
        vector-Jacobian product ``g^T J``. It may be called many times.
    """
    out, targets, rebuilds, _, nested, raw_out = _call(f, xs, {}, tuple(range(len(xs))))
    outs, rebuild_out = _flatten(out)
    outs = [_output_tensor(o, "vjp", "arrays") for o in outs]

    def vjp_fn(g):
        seeds, _ = _flatten(g)
        if len(seeds) != len(outs):
            raise ValueError(f"vjp_fn: expected {len(outs)} output gradient(s), got {len(seeds)}")
        raw_seeds = []
        for o, s in zip(outs, seeds):
            s = s.data if isinstance(s, Tensor) and not nested else s
            if tuple(s.shape) != tuple(o.shape):
                raise ValueError(f"vjp_fn: output gradient of shape {tuple(s.shape)} for an output of shape {o.shape}")
            raw_seeds.append(s)
        grads = _gradients(outs, raw_seeds, targets, nested, retain=True)  # vjp_fn may be called again
        return _unwrap_like(_structure(grads, targets, rebuilds, False), raw_out)

    value = rebuild_out([o if nested else o.detach() for o in outs])
    return _unwrap_like(value, raw_out), vjp_fn


from .namespace import kernel_p  # noqa: E402  (the namespace is built on the ops, which import this module's users)
