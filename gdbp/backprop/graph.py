"""A public view of the graph that backprop sweeps: its nodes, its edges, and the gradient on each edge.

``graph(loss)`` reads the graph recorded while ``loss`` was computed: one
node per input (a Tensor that requires grad), per constant array, and per
operation, each with its value; one edge per argument an operation took.
It then walks the graph backward, in the order gdbp's own sweep visits it,
and applies the same VJP rules, so that each edge carries the gradient of
the loss that flows back along it and each node the sum over its edges.

The walk is graph.py's own: it reads the values the graph saved and leaves
every ``.grad`` alone. It therefore needs those values, which a plain
``loss.backward()`` frees: build the view before ``backward()``, or call
``backward(retain_graph=True)`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import backends
from .errors import GradRequirementError, GraphFreedError
from .tensor import Tensor

__all__ = ["graph", "Graph", "GraphNode", "GraphEdge", "format_array"]


# =====================================================================================
# Engine adapters: the ONLY code in this module that knows how the engine stores its
# graph (Tensor._node, Node.prim / .parents / .args / .kw / .ans / .backend, the
# primitives' forward and VJP rules, the sweep's order). When the engine changes
# shape, these functions change and nothing below them does.
# =====================================================================================


def _recorded(t: Tensor):
    """The handle of the recorded operation that produced t, or None for a leaf."""
    return t._node


def _sweep_order(root) -> list:
    """The recorded operations behind root, in the order the backward sweep visits them."""
    from .sweep import _toposort

    return list(reversed(_toposort([root])))


def _read(op) -> dict:
    """One recorded operation as plain data.

    ``inputs`` has one ``(kind, source, raw)`` per positional argument:
    ``("op", handle, value)`` for a computed value, ``("input", tensor,
    value)`` for a leaf that requires grad, ``("constant", None, raw)`` for
    anything else (an array that does not, a Python scalar, None).
    """
    if op.args is None:
        raise GraphFreedError(
            f"graph(): the values saved for {op.prim.name} were freed by a backward sweep; "
            "build the view before loss.backward(), or call loss.backward(retain_graph=True) first"
        )
    inputs = []
    for parent, raw in zip(op.parents, op.args):
        if parent is None:
            inputs.append(("constant", None, raw))
        elif isinstance(parent, Tensor):
            inputs.append(("input", parent, raw))
        else:
            inputs.append(("op", parent, raw))
    options = {k: v for k, v in op.kw.items() if k != "res"}  # "res": the engine's saved residuals
    return {"op": op.prim.name, "inputs": inputs, "options": options, "value": op.ans, "xp": op.backend.xp}


def _pull_back(op, g) -> list:
    """The op's VJP rules applied to g: one gradient per positional argument (None where none flows).

    As the sweep does: broadcasting summed away, the argument's dtype kept.
    """
    from .sweep import unbroadcast

    prim, xp = op.prim, op.backend.xp
    every = None if prim.vjp_all is None else prim.vjp_all(xp, g, op.ans, *op.args, **op.kw)
    out = []
    for i, (parent, a) in enumerate(zip(op.parents, op.args)):
        if parent is None:
            out.append(None)
            continue
        gi = every[i] if every is not None else prim.vjps[i](xp, g, op.ans, *op.args, **op.kw)
        if gi is not None:
            if tuple(gi.shape) != tuple(a.shape):
                gi = unbroadcast(xp, gi, tuple(a.shape))
            if gi.dtype != a.dtype:
                gi = xp.astype(gi, a.dtype)
            gi = xp.asarray(gi)  # NumPy gives scalars, not 0-d arrays, for some 0-d results
        out.append(gi)
    return out


def _run_forward(op, args) -> Any:
    """The op's forward rule on raw argument values (its recorded options kept)."""
    options = {k: v for k, v in op.kw.items() if k != "res"}
    ans = op.prim.forward(op.backend.xp, *args, **options)
    return ans[0] if op.prim.residuals else ans  # a primitive with residuals returns (ans, res)


# =====================================================================================
# The view
# =====================================================================================


@dataclass(frozen=True)
class GraphNode:
    """One value in the graph.

    Attributes
    ----------
    id : int
        Its place in forward order (every node after the nodes it reads).
    kind : {"input", "constant", "op"}
        A Tensor that requires grad (a weight), an array that does not
        (data, a target), or the result of an operation.
    op : str or None
        The operation's name (``"matmul"``, ``"sigmoid"``...); None unless kind is "op".
    name : str or None
        The name given in ``graph(..., names=...)``.
    value : array
        The value, an array of the loss's backend.
    inputs : tuple of (int or None)
        For an op, the id of the node behind each positional argument
        (None for a Python scalar, whose value is in ``scalars``).
    scalars : dict of int -> number
        The op's Python-scalar arguments, by position (e.g. ``{1: 2}`` for ``e ** 2``).
    options : dict
        The op's keyword options (e.g. ``{"axis": None, "keepdims": False}``).
    grad : array or None
        The gradient of the loss with respect to this value (the sum over
        its outgoing edges); None for constants, or when gradients were not asked for.
    """

    id: int
    kind: str
    op: str | None
    name: str | None
    value: Any = field(repr=False)
    inputs: tuple = ()
    scalars: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    grad: Any = field(default=None, repr=False)

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape)

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def label(self) -> str:
        """``name = op(·, 2)`` for an op (its scalar arguments shown), the name or the kind for the others."""
        if self.kind != "op":
            return self.name or self.kind
        op = self.op
        if self.scalars:
            parts = [repr(self.scalars[i]) if i in self.scalars else "·" for i in range(len(self.inputs))]
            op = f"{op}({', '.join(parts)})"
        return f"{self.name} = {op}" if self.name else op


@dataclass(frozen=True)
class GraphEdge:
    """One argument of an operation: the value of node ``src`` flows into node ``dst``.

    Attributes
    ----------
    src, dst : int
        Node ids.
    arg : int
        Which positional argument of dst it is.
    grad : array or None
        The gradient of the loss with respect to src's value along this
        edge: dst's VJP rule for argument ``arg`` applied to dst's gradient.
        None for a constant's edge (no gradient flows to it).
    """

    src: int
    dst: int
    arg: int
    grad: Any = field(default=None, repr=False)


class Graph:
    """The recorded graph of one loss; made by :func:`graph`.

    Attributes
    ----------
    nodes : list of GraphNode
        In forward order (``nodes[i].id == i``); the loss is ``nodes[root]``.
    edges : list of GraphEdge
    root : int
        The loss's node.
    order : list of int
        The op nodes in the order gdbp's backward sweep visits them (the loss first).
    """

    def __init__(self, nodes, edges, root, order, handles):
        self.nodes = nodes
        self.edges = edges
        self.root = root
        self.order = order
        self._handles = handles  # op node id -> the engine's record, for evaluate() and pullback()

    def node(self, key) -> GraphNode:
        """A node by id or by name."""
        if isinstance(key, int) and 0 <= key < len(self.nodes):
            return self.nodes[key]
        for n in self.nodes:
            if n.name is not None and n.name == key:
                return n
        names = sorted(n.name for n in self.nodes if n.name)
        raise KeyError(f"the graph has no node {key!r}: ids 0..{len(self.nodes) - 1}, names {names}")

    def edges_into(self, key) -> list:
        """The edges into a node, by argument position."""
        i = self.node(key).id
        return sorted((e for e in self.edges if e.dst == i), key=lambda e: e.arg)

    def edges_from(self, key) -> list:
        """The edges out of a node (one per use of its value)."""
        i = self.node(key).id
        return [e for e in self.edges if e.src == i]

    def evaluate(self, replace=None, at=None):
        """Run the recorded operations forward again, with some values replaced.

        Parameters
        ----------
        replace : dict, optional
            Node (id or name) -> array of the same shape, used instead of the
            recorded value; the operations after it are recomputed.
        at : int or str, optional
            The node whose value is returned (default the loss).

        Returns
        -------
        array
            Of the loss's backend. With no replacement it equals the recorded value.
        """
        values = {n.id: n.value for n in self.nodes}
        fixed = {self.node(k).id: v for k, v in (replace or {}).items()}
        values.update(fixed)
        target = self.root if at is None else self.node(at).id
        for n in self.nodes[: target + 1]:
            if n.kind == "op" and n.id not in fixed:
                args = [n.scalars.get(j) if src is None else values[src] for j, src in enumerate(n.inputs)]
                values[n.id] = _run_forward(self._handles[n.id], args)
        return values[target]

    def pullback(self, key, g) -> list:
        """An op node's VJP rules applied to a gradient g of its value.

        Returns
        -------
        list
            One gradient per positional argument, in the argument's shape
            (None for constants): the chain rule's step through this node.
        """
        n = self.node(key)
        if n.kind != "op":
            raise ValueError(f"pullback: node {key!r} is an {n.kind}, not an operation")
        return _pull_back(self._handles[n.id], g)

    def to_dot(self, values: bool = True, gradients: bool = True, precision: int = 4) -> str:
        """The graph in Graphviz's DOT language, drawn left to right as the forward pass runs.

        Parameters
        ----------
        values : bool
            Write each node's value under its label (arrays of up to 8 values).
        gradients : bool
            Write each edge's gradient on it.
        precision : int
            Significant digits of the numbers.

        Returns
        -------
        str
            ``digraph gdbp { ... }``: one statement per node (``n<id>``) and per
            edge; ``dot -Tpng`` draws it where Graphviz is installed.
        """
        lines = ["digraph gdbp {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];',
                 '  edge [fontname="Helvetica", fontsize=9];']
        for n in self.nodes:
            text = [n.label if n.kind == "op" else f"{n.label} ({n.kind})" if n.name else n.label,
                    f"shape {n.shape}" if n.shape else "scalar"]
            if values:
                text.append(format_array(n.value, precision))
            style = DOT_STYLE[n.kind]
            lines.append(f"  n{n.id} [label={_dot_quote(chr(10).join(text))}, {style}];")
        for e in self.edges:
            attrs = ""
            if gradients and e.grad is not None:
                attrs = f" [label={_dot_quote('grad ' + format_array(e.grad, precision))}]"
            elif self.nodes[e.src].kind == "constant":
                attrs = " [style=dashed]"
            lines.append(f"  n{e.src} -> n{e.dst}{attrs};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def __repr__(self):
        ops = sum(n.kind == "op" for n in self.nodes)
        loss = self.nodes[self.root].label
        return f"Graph({len(self.nodes)} nodes ({ops} operations), {len(self.edges)} edges, loss {loss})"


def graph(loss: Tensor, names=None, gradients: bool = True, seed=None) -> Graph:
    """The recorded graph behind ``loss``, with the gradient on every edge.

    Parameters
    ----------
    loss : Tensor
        A result computed from Tensors that require grad (its graph not yet
        freed by a plain ``backward()``).
    names : dict of str -> Tensor or array, optional
        Names for values in the graph: weights, inputs, intermediate results.
    gradients : bool
        Walk the graph backward (default True), in the sweep's order and with
        gdbp's VJP rules, and put the gradients on the edges and nodes.
    seed : array, optional
        The gradient of the loss with respect to itself (default ones, for a
        loss with one element; required for a larger one).

    Returns
    -------
    Graph

    Raises
    ------
    GradRequirementError
        loss was not computed from anything that requires grad, or it has
        many elements and no seed was given.
    GraphFreedError
        ``backward()`` already freed the saved values: build the view first,
        or sweep with ``backward(retain_graph=True)``.
    KeyError
        A named value is not in the graph.

    Examples
    --------
    >>> w = gdbp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> g = gdbp.backprop.graph((w * w).sum(), names={"w": w})
    >>> [n.label for n in g.nodes]         # w * w reads w twice: two edges, each carrying w
    ['w', 'multiply', 'sum']
    >>> [e.grad for e in g.edges_from("w")], g.node("w").grad
    ([array([1., 2.]), array([1., 2.])], array([2., 4.]))
    """
    root = _recorded(loss) if isinstance(loss, Tensor) else None
    if root is None:
        raise GradRequirementError(
            "graph(loss): loss was not computed from Tensors that require grad, so nothing was recorded; "
            "make the weights with gdbp.tensor(..., requires_grad=True) and compute loss outside gdbp.no_grad()"
        )
    sweep = _sweep_order(root)
    wanted = _name_keys(names)
    nodes, edges, handles, ids = [], [], {}, {}

    def add(key, **fields):
        ids[key] = len(nodes)
        nodes.append(dict(id=len(nodes), name=wanted.pop(key, None), **fields))
        return ids[key]

    for op in reversed(sweep):  # forward order: every op after the ops it reads
        rec = _read(op)
        inputs, scalars = [], {}
        for j, (kind, source, raw) in enumerate(rec["inputs"]):
            if kind == "constant" and not backends.is_array(raw):
                inputs.append(None)
                scalars[j] = raw
                continue
            key = id(source) if kind != "constant" else id(raw)
            if key not in ids:
                add(key, kind=kind, op=None, value=raw)
            inputs.append(ids[key])
        i = add(id(op), kind="op", op=rec["op"], value=rec["value"], inputs=tuple(inputs), scalars=scalars,
                options=rec["options"])
        handles[i] = op
        edges.extend({"src": src, "dst": i, "arg": j} for j, src in enumerate(inputs) if src is not None)
    if wanted:
        raise KeyError(f"graph(): {sorted(wanted.values())} not found in the graph of loss (names must refer to "
                       "Tensors or arrays the loss was computed from)")

    order = [ids[id(op)] for op in sweep]
    if gradients:
        _walk_back(nodes, edges, handles, order, ids[id(root)], seed)
    return Graph([GraphNode(**n) for n in nodes], [GraphEdge(**e) for e in edges], ids[id(root)], order, handles)


def _name_keys(names) -> dict:
    """id of what a name refers to (the op that made a Tensor, a leaf Tensor, or a constant's array) -> name."""
    keys = {}
    for name, x in (names or {}).items():
        if isinstance(x, Tensor):
            op = _recorded(x)
            key = id(op) if op is not None else id(x) if x.requires_grad else id(x.data)
        else:
            key = id(x)
        keys[key] = name
    return keys


def _walk_back(nodes, edges, handles, order, root, seed):
    """The backward sweep, node by node in gdbp's order, keeping each gradient on its edge."""
    value = nodes[root]["value"]
    xp = _read(handles[root])["xp"]
    if seed is None:
        if value.ndim and value.size != 1:
            raise GradRequirementError(
                f"graph(): the loss has shape {tuple(value.shape)}; pass seed= (its gradient, e.g. ones) "
                "or gradients=False"
            )
        seed = xp.ones_like(value)
    grads = {root: seed}
    into = {}
    for e in edges:
        into.setdefault(e["dst"], []).append(e)
    for i in order:
        g = grads.get(i)
        nodes[i]["grad"] = g
        if g is None:
            continue
        pulled = _pull_back(handles[i], g)
        for e in into.get(i, []):
            gi = pulled[e["arg"]]
            e["grad"] = gi
            if gi is not None:
                grads[e["src"]] = gi if e["src"] not in grads else grads[e["src"]] + gi
    for n in nodes:
        if n["kind"] == "input":
            n["grad"] = grads.get(n["id"])


DOT_STYLE = {
    "input": 'shape=box, style="rounded,filled", fillcolor="#dbeafe"',
    "constant": 'shape=box, style="rounded,dashed"',
    "op": 'shape=ellipse, style=filled, fillcolor="#f3f4f6"',
}


def _dot_quote(text: str) -> str:
    """A DOT string: backslashes and quotes escaped, line breaks as DOT's \\n."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def format_array(x, precision: int = 4, max_size: int = 8) -> str:
    """A short text of an array's values (``[0.1235, -2]``), or its shape alone when it is large."""
    host = backends.to_numpy(x)
    if host.size > max_size:
        return f"<{' x '.join(map(str, host.shape))} values>"

    def text(v):
        if isinstance(v, list):
            return "[" + ", ".join(text(u) for u in v) + "]"
        return f"{v:.{precision}g}"

    return text(host.tolist())
