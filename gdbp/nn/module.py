"""Module: the base class of layers and models.

A Module registers the Parameters, buffers and sub-Modules assigned to its
attributes, in definition order, and names them with dotted paths as PyTorch
does ("0.weight", "encoder.fc1.bias"), so that state dicts read alike.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Iterator

from .. import backends
from ..backprop import Tensor, unwrap
from .parameter import Parameter

__all__ = ["Module", "StateDictError", "LoadResult"]

LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])


class StateDictError(ValueError):
    """A state dict's names do not match the module's."""


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign Parameters, Modules
    and buffers (:meth:`register_buffer`) to attributes, and define
    :meth:`forward`; calling the module calls ``forward``.

    Attributes
    ----------
    training : bool
        Training mode (Dropout drops, BatchNorm uses batch statistics) or
        evaluation mode; set with :meth:`train` and :meth:`eval`.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------

    def __setattr__(self, name, value):
        registry = self.__dict__.get("_parameters")
        if registry is None:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() in __init__ before assigning attributes"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in buffers:
            if value is not None and backends.backend_of(unwrap(value)) is None:
                raise TypeError(f"buffer {name!r} holds a backend array or None, got {type(value).__name__}")
            value = unwrap(value)
            buffers[name] = value
        elif name in params or name in modules:
            if value is not None:
                kind = "Parameter" if name in params else "Module"
                raise TypeError(
                    f"{name!r} is a {kind} of {type(self).__name__}; assign a {kind} or None, "
                    f"not {type(value).__name__}"
                )
            (params if name in params else modules)[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array) -> None:
        """Register non-trainable state (e.g. running statistics): a backend array, saved in the state dict."""
        if array is not None and backends.backend_of(unwrap(array)) is None:
            raise TypeError(f"buffer {name!r} holds a backend array or None, got {type(array).__name__}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"{name!r} is already a Parameter or Module of {type(self).__name__}")
        self._buffers[name] = None
        setattr(self, name, array)

    def register_parameter(self, name: str, param) -> None:
        """Register a Parameter (or None, for an optional one such as a missing bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter expects a Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    # -- calling ---------------------------------------------------------------------

    def forward(self, *args, **kw):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kw):
        return self.forward(*args, **kw)

    # -- walking the tree ------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module (each once), with dotted names ("" for self)."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, each Parameter once even if shared."""
        seen = set()
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, object]]:
        for prefix, m in self.named_modules():
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{prefix}.{name}" if prefix else name), b

    def buffers(self) -> Iterator[object]:
        for _, b in self.named_buffers():
            yield b

    def _named_state(self):
        """(module, attribute, dotted name, kind) for every entry of the state dict, in order."""
        for prefix, m in self.named_modules():
            for kind, registry in (("parameter", m._parameters), ("buffer", m._buffers)):
                for name, v in registry.items():
                    if v is not None:
                        yield m, name, (f"{prefix}.{name}" if prefix else name), kind

    # -- modes and gradients --------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and every sub-module; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``p.grad = None``).

        The memory of a gradient nobody else holds is kept for the next
        backward pass to write into (see :meth:`gdbp.Tensor.zero_grad_`).
        """
        for p in self.parameters():
            p.zero_grad_()

    # -- backends ----------------------------------------------------------------------

    @property
    def backend(self):
        """The backend of the module's parameters and buffers (None if it has none)."""
        found = None
        for m, attr, name, kind in self._named_state():
            value = m._parameters[attr].data if kind == "parameter" else m._buffers[attr]
            b = backends.backend_of(value)
            if found is None:
                found = b
            elif b is not found:
                raise backends.BackendMismatchError(
                    f"{type(self).__name__} holds arrays on two backends: {found.spec} and {b.spec} ({name}); "
                    "move the whole module with module.to(backend)"
                )
        return found

    def to(self, backend) -> "Module":
        """Move every parameter (with its gradient) and buffer to ``backend``, in place; returns self.

        The Parameter objects stay the same (an optimizer built on them keeps
        working); their values are copied to the new backend.
        """
        target = backends.resolve(backend)
        for m, name, _, kind in list(self._named_state()):
            if kind == "parameter":
                m._parameters[name]._move_to(target)
            else:
                setattr(m, name, backends.transfer(m._buffers[name], target))
        return self

    # -- state dicts -------------------------------------------------------------------

    def state_dict(self, copy: bool = False) -> dict:
        """Every parameter and buffer by dotted name, as raw backend arrays.

        Parameters
        ----------
        copy : bool
            Copy the arrays. By default they are the live ones (as in
            PyTorch): an in-place optimizer step changes them too, so copy
            when you keep a snapshot while training goes on.
        """
        out = {}
        for m, name, dotted, kind in self._named_state():
            value = m._parameters[name].data if kind == "parameter" else m._buffers[name]
            if copy:
                value = backends.namespace(value).asarray(value, copy=True)
            out[dotted] = value
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> LoadResult:
        """Copy values from a state dict into the existing parameters and buffers.

        Values may be arrays of any backend (or Tensors): each is transferred
        explicitly to the backend of the entry it fills. Nothing is changed
        unless every entry checks out (see :meth:`check_state_dict`).

        Parameters
        ----------
        state : dict
            Dotted name -> array, e.g. from :meth:`state_dict` or a checkpoint.
        strict : bool
            Require the names to match exactly.

        Returns
        -------
        LoadResult
            ``(missing_keys, unexpected_keys)`` (both empty when strict).

        Raises
        ------
        StateDictError
            strict, and names are missing or unexpected.
        ShapeError
            A value's shape differs from its entry's.
        TypeError
            A value's dtype differs from its entry's.
        """
        result, staged = self._stage(state, strict, copy=True)
        for m, name, kind, value in staged:
            if kind == "parameter":
                p = m._parameters[name]
                p.data = value
                p.mark_changed()
            else:
                setattr(m, name, value)
        return result

    def check_state_dict(self, state: dict, strict: bool = True) -> LoadResult:
        """Check that :meth:`load_state_dict` would accept ``state``, changing nothing.

        Names, shapes and dtypes are checked as :meth:`load_state_dict` checks
        them; no value is copied (arrays of another backend are transferred to
        compare their dtypes). Used to check a whole checkpoint before any of
        it is loaded.

        Returns
        -------
        LoadResult

        Raises
        ------
        StateDictError, ShapeError, TypeError
            As :meth:`load_state_dict`.
        """
        return self._stage(state, strict, copy=False)[0]

    def _stage(self, state: dict, strict: bool, copy: bool):
        """(LoadResult, [(module, attribute, kind, value)]): every entry checked, nothing changed."""
        entries = {dotted: (m, name, kind) for m, name, dotted, kind in self._named_state()}
        missing = [k for k in entries if k not in state]
        unexpected = [k for k in state if k not in entries]
        if strict and (missing or unexpected):
            raise StateDictError(
                f"state dict does not match {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}; pass strict=False to load the matching entries only"
            )
        staged = []
        for dotted, (m, name, kind) in entries.items():
            if dotted not in state:
                continue
            current = m._parameters[name].data if kind == "parameter" else m._buffers[name]
            value = unwrap(state[dotted])
            if backends.backend_of(value) is None:
                raise TypeError(f"state dict entry {dotted!r} is not an array (got {type(value).__name__})")
            target = backends.backend_of(current)
            what = f"state dict entry {dotted!r}"
            backends.check_fits(value, backends.backend_of(value), current.shape, None, what, "the module's")
            moved = backends.transfer(value, target)
            backends.check_fits(moved, target, None, current.dtype, what, "the module's", "; cast the value first")
            if copy and moved is value:  # already on the target: copy, so the module owns its values
                moved = target.kernels.copy(value)
            staged.append((m, name, kind, moved))
        return LoadResult(missing, unexpected), staged

    # -- printing ------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of the module's repr."""
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, m in kids:
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
