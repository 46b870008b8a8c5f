"""on_grad_ready: a leaf's hooks run once per sweep, as soon as its gradient is complete."""

import numpy as np
import pytest

import gdbp
from gdbp.backprop import on_grad_ready


def _logged(name, log):
    """An identity op that logs when the sweep passes back through it."""

    @gdbp.custom_vjp
    def op(x):
        return x * 1.0

    @op.defvjp
    def _(g, ans, x):
        log.append(name)
        return (g,)

    return op


def test_a_hook_runs_once_the_gradient_is_complete_and_before_the_sweep_goes_on():
    log = []
    w1 = gdbp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    w2 = gdbp.tensor(np.array([3.0, 4.0]), requires_grad=True)
    late, early = _logged("near the input", log), _logged("near the loss", log)
    seen = {}

    def hook(t):
        log.append("w2 ready")
        seen["grad"] = t.grad.numpy().copy()

    on_grad_ready(w2, hook)
    # w2 is used twice near the loss; the sweep reaches w1's part afterwards.
    loss = (early(late(w1 * 2.0) * w2) + w2 * w2).sum()
    loss.backward()
    assert log == ["near the loss", "w2 ready", "near the input"]
    np.testing.assert_array_equal(seen["grad"], 2.0 * np.array([1.0, 2.0]) + 2 * np.array([3.0, 4.0]))
    np.testing.assert_array_equal(w2.grad.numpy(), seen["grad"])  # the gradient the hook saw is the final one
    np.testing.assert_array_equal(w1.grad.numpy(), 2.0 * np.array([3.0, 4.0]))


def test_every_sweep_runs_the_hook_and_remove_stops_it():
    w = gdbp.tensor(np.ones(3), requires_grad=True)
    calls = []
    handle = on_grad_ready(w, lambda t: calls.append(t.grad.numpy().sum()))
    (w * 2.0).sum().backward()
    (w * 2.0).sum().backward()  # accumulates: the hook sees 2 + 2
    assert calls == [6.0, 12.0]
    handle.remove()
    (w * 2.0).sum().backward()
    assert calls == [6.0, 12.0]


def test_a_hook_may_replace_the_gradient():
    w = gdbp.tensor(np.ones(2), requires_grad=True)
    on_grad_ready(w, lambda t: setattr(t, "grad", t.grad * 0.5))
    (w * 4.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_a_leaf_the_graph_does_not_reach_runs_no_hook():
    w, unused = gdbp.tensor(np.ones(2), requires_grad=True), gdbp.tensor(np.ones(2), requires_grad=True)
    calls = []
    on_grad_ready(unused, calls.append)
    (w * 2.0).sum().backward()
    assert calls == [] and unused.grad is None


def test_functional_transforms_do_not_run_hooks():
    w = gdbp.tensor(np.ones(2), requires_grad=True)
    calls = []
    on_grad_ready(w, calls.append)
    g = gdbp.grad(lambda v: (v * v).sum())(w)
    np.testing.assert_array_equal(g.numpy(), [2.0, 2.0])
    assert calls == []


@pytest.mark.parametrize("bad", [np.ones(2), "not a tensor"])
def test_only_leaves_that_require_grad_take_hooks(bad):
    with pytest.raises(TypeError, match="leaf Tensor that requires grad"):
        on_grad_ready(bad, print)
    with pytest.raises(TypeError, match="leaf Tensor that requires grad"):
        on_grad_ready(gdbp.tensor(np.ones(2)), print)
    with pytest.raises(TypeError, match="callable"):
        on_grad_ready(gdbp.tensor(np.ones(2), requires_grad=True), "print")
