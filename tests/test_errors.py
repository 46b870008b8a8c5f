"""Every bad input raises the documented error, and its message names the problem and what to do."""

from __future__ import annotations

import importlib.util

import array_api_compat
import array_api_strict
import numpy as np
import pytest
import torch

import gdbp
from gdbp import (
    GradRequirementError,
    GraphFreedError,
    InPlaceError,
    NotDifferentiableError,
    ShapeError,
    backends,
)
from gdbp.backends import BackendError, BackendMismatchError, BackendUnavailableError

CUDA_OK, CUDA_WHY = backends.probe_cuda()
CUPY_INSTALLED = importlib.util.find_spec("cupy") is not None
no_cuda = pytest.mark.skipif(CUDA_OK, reason="a CUDA device answers here: cupy is available")


def ten(backend, values, dtype="float64", requires_grad=False):
    return gdbp.tensor(backends.transfer(np.asarray(values, dtype=dtype), backend), requires_grad=requires_grad)


def test_error_types_are_the_documented_ones():
    assert issubclass(ShapeError, ValueError)
    assert issubclass(GradRequirementError, TypeError)
    assert issubclass(NotDifferentiableError, TypeError)
    assert issubclass(InPlaceError, RuntimeError) and issubclass(GraphFreedError, RuntimeError)
    assert issubclass(BackendMismatchError, TypeError)
    assert issubclass(BackendUnavailableError, BackendError)


# --- backward() ------------------------------------------------------------------------------------


def test_backward_on_a_non_scalar_needs_a_seed(backend):
    y = ten(backend, np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(GradRequirementError) as info:
        y.backward()
    message = str(info.value)
    assert "(2, 3)" in message and "grad=" in message and "sum()" in message


def test_backward_on_a_tensor_that_does_not_require_grad(backend):
    y = ten(backend, [1.0, 2.0]).sum()
    with pytest.raises(GradRequirementError, match="does not require grad") as info:
        y.backward()
    assert "requires_grad=True" in str(info.value)


def test_backward_under_no_grad_result(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    with gdbp.no_grad():
        y = (x * x).sum()
    with pytest.raises(GradRequirementError, match="no_grad"):
        y.backward()


def test_backward_seed_of_the_wrong_shape(backend):
    y = ten(backend, [1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(ShapeError, match=r"seed gradient of shape \(3,\).*shape \(2,\)"):
        y.backward(backends.transfer(np.ones(3), backend))


def test_backward_twice_names_the_fix(backend):
    x = ten(backend, [1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        y.backward()


# --- shapes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, op",
    [("add", lambda a, b: a + b), ("subtract", lambda a, b: a - b), ("multiply", lambda a, b: a * b),
     ("divide", lambda a, b: a / b), ("pow", lambda a, b: a ** b), ("greater", lambda a, b: a > b)],
    ids=["add", "subtract", "multiply", "divide", "pow", "greater"],
)
def test_shapes_that_do_not_broadcast(backend, name, op):
    a = ten(backend, np.ones((2, 3)), requires_grad=True)
    b = ten(backend, np.ones(4))
    with pytest.raises(ShapeError) as info:
        op(a, b)
    assert str(info.value) == f"{name}: shapes (2, 3) and (4,) do not broadcast"
    with pytest.raises(ShapeError, match=rf"{name}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        op(a, b.data)  # a raw array operand too


def test_namespace_functions_that_do_not_broadcast(backend):
    x = ten(backend, np.ones((2, 3)))
    xp = x.__array_namespace__()
    with pytest.raises(ShapeError, match=r"maximum: shapes \(2, 3\) and \(4,\) do not broadcast"):
        xp.maximum(x, ten(backend, np.ones(4)))
    with pytest.raises(ShapeError, match=r"where: shapes \(2, 3\) and \(2, 3\) and \(4,\) do not broadcast"):
        xp.where(x > 0, x, ten(backend, np.ones(4)))


def test_inplace_that_does_not_broadcast(backend):
    y = ten(backend, np.ones((2, 3)), requires_grad=True) * 1.0
    with pytest.raises(ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        y += ten(backend, np.ones(4))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((2, 3), (4, 2), r"matmul: shapes \(2, 3\) and \(4, 2\) are not aligned: the last axis of the first \(3\) "
                         r"must match the second-to-last axis of the second \(4\)"),
        ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) are not aligned: .*\(3\).*only axis.*\(4\)"),
        ((2, 3), (5,), r"matmul: shapes \(2, 3\) and \(5,\) are not aligned"),
        ((2, 3, 4), (5, 4, 2), r"matmul: the batch axes of shapes \(2, 3, 4\) and \(5, 4, 2\) do not broadcast"),
    ],
    ids=["2d", "1d", "2d-1d", "batch"],
)
def test_matmul_misaligned(backend, a, b, expected):
    x = ten(backend, np.ones(a), requires_grad=True)
    y = ten(backend, np.ones(b))
    with pytest.raises(ShapeError, match=expected):
        x @ y


def test_matmul_of_a_0d_array(backend):
    with pytest.raises(ShapeError, match="at least 1 dimension"):
        ten(backend, 2.0) @ ten(backend, np.ones((2, 2)))


def test_inplace_that_would_change_the_shape(backend):
    y = ten(backend, [1.0, 2.0], requires_grad=True) * 1.0
    with pytest.raises(ShapeError, match=r"from \(2,\) to \(3, 2\)"):
        y *= ten(backend, np.ones((3, 2)))


# --- gradient requirements ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integer_or_boolean_inputs_cannot_require_grad(backend, dtype):
    with pytest.raises(GradRequirementError) as info:
        ten(backend, [1, 0], dtype, requires_grad=True)
    message = str(info.value)
    assert "real floating-point" in message and dtype in message and "astype" in message


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_grad_of_an_integer_array(backend, dtype):
    x = backends.transfer(np.asarray([1, 0, 1], dtype=dtype), backend)
    with pytest.raises(GradRequirementError, match=f"real floating-point.*{dtype}"):
        gdbp.grad(lambda a: array_api_compat.array_namespace(a).sum(a))(x)


def test_grad_of_a_function_returning_a_non_scalar(backend):
    x = ten(backend, [1.0, 2.0, 3.0]).data
    for transform in (gdbp.grad, gdbp.value_and_grad):
        with pytest.raises(GradRequirementError) as info:
            transform(lambda a: a * 2.0)(x)
        message = str(info.value)
        assert "scalar" in message and "(3,)" in message and "gdbp.vjp" in message


def test_grad_of_a_function_returning_a_python_float(backend):
    with pytest.raises(TypeError, match="must return a scalar array, got float"):
        gdbp.grad(lambda a: 3.0)(ten(backend, [1.0]).data)


def test_grad_with_respect_to_a_string():
    with pytest.raises(TypeError, match="cannot differentiate with respect to a str"):
        gdbp.grad(lambda a: a)("abc")


def test_requires_grad_off_on_a_computed_tensor(backend):
    y = ten(backend, [1.0], requires_grad=True) * 2.0
    with pytest.raises(GradRequirementError, match="detach"):
        y.requires_grad = False


# --- not differentiable ----------------------------------------------------------------------------------


def test_differentiating_through_unique_values_names_it(backend):
    x = ten(backend, [3.0, 1.0, 3.0, 2.0]).data

    def f(a):
        xp = array_api_compat.array_namespace(a)
        return xp.sum(xp.unique_values(a) ** 2)

    with pytest.raises(NotDifferentiableError) as info:
        gdbp.grad(f)(x)
    message = str(info.value)
    assert "unique_values" in message and "custom_vjp" in message and "detach" in message


def test_unique_values_on_a_detached_value_is_fine(backend):
    x = ten(backend, [3.0, 1.0, 3.0], requires_grad=True)
    xp = x.__array_namespace__()
    u = xp.unique_values(x.detach())
    assert not u.requires_grad


def test_a_primitive_without_a_gradient_for_an_argument_names_it(backend):
    prim = gdbp.backprop.Primitive("halve", lambda xp, x: x / 2, vjps=(None,))
    y = prim(ten(backend, [1.0, 2.0], requires_grad=True))
    with pytest.raises(NotDifferentiableError, match="cannot differentiate halve with respect to its argument 0"):
        y.sum().backward()


def test_second_derivative_through_a_transfer_between_backends():
    x = np.asarray([1.0, 2.0])

    def inner(a):
        return (a.to("torch") ** 3).sum()

    # The transfer's gradient rule moves the gradient back with a recorded transfer: d/da sum(3 a^2) = 6 a.
    second = gdbp.grad(lambda a: gdbp.grad(inner)(a).sum())(gdbp.tensor(x))
    assert second.backend is gdbp.backends.resolve("numpy")
    np.testing.assert_allclose(second.numpy(), 6 * x)


# --- in place ------------------------------------------------------------------------------------------------


def test_inplace_on_a_leaf_while_recording_says_what_to_do(backend):
    w = ten(backend, [1.0, 2.0], requires_grad=True)
    with pytest.raises(InPlaceError) as info:
        w -= 0.1
    message = str(info.value)
    assert "leaf" in message and "gdbp.no_grad()" in message


def test_stale_saved_value_says_what_to_do(backend):
    x = ten(backend, [1.0, 2.0], requires_grad=True)
    y = x.__array_namespace__().exp(x)
    with gdbp.no_grad():
        y *= 2.0
    with pytest.raises(InPlaceError) as info:
        y.sum().backward()
    message = str(info.value)
    assert "exp" in message and "changed in place" in message and "y = y + 1" in message


# --- mixing backends ------------------------------------------------------------------------------------------


OTHER = {"numpy": "torch", "torch": "array_api_strict", "array_api_strict": "numpy", "cupy": "numpy"}


def test_two_tensors_of_two_backends(backend):
    other = OTHER[backend.name]
    a = ten(backend, [1.0, 2.0], requires_grad=True)
    b = ten(other, [1.0, 2.0])
    for op in (lambda: a + b, lambda: b * a, lambda: a @ b,
               lambda: a.__array_namespace__().maximum(a, b)):
        with pytest.raises(BackendMismatchError) as info:
            op()
        message = str(info.value)
        assert backend.spec in message and other in message
        assert "to(backend)" in message or "gdbp.transfer" in message


def test_numpy_tensor_plus_torch_tensor_message():
    a = gdbp.tensor(np.ones(2))
    b = gdbp.tensor(torch.ones(2, dtype=torch.float64))
    with pytest.raises(BackendMismatchError) as info:
        a + b
    assert str(info.value) == "add: Tensors from two backends met: numpy and torch; move one with tensor.to(backend)"


@pytest.mark.parametrize(
    "make_raw, name",
    [(lambda: torch.ones(2, dtype=torch.float64), "torch"), (lambda: array_api_strict.ones(2), "array_api_strict")],
    ids=["torch", "strict"],
)
def test_tensor_and_a_raw_array_of_another_library(make_raw, name):
    a = gdbp.tensor(np.ones(2), requires_grad=True)
    raw = make_raw()
    ops = [lambda: a + raw, lambda: a * raw, lambda: a.__array_namespace__().add(a, raw)]
    if name == "torch":
        ops.append(lambda: raw + a)  # torch hands the operation to the Tensor
    for op in ops:
        with pytest.raises(BackendMismatchError) as info:
            op()
        message = str(info.value)
        assert "numpy" in message and name in message and "gdbp.transfer" in message


def test_numpy_raw_array_and_a_torch_tensor():
    t = gdbp.tensor(torch.ones(2, dtype=torch.float64), requires_grad=True)
    with pytest.raises(BackendMismatchError, match=r"torch and numpy \(numpy.ndarray\)"):
        np.ones(2) * t


@pytest.mark.parametrize("grad_mode", ["no_grad", "recording"])
def test_inplace_with_another_backend_is_an_error_not_a_silent_copy(grad_mode):
    base = gdbp.tensor(np.asarray([1.0, 2.0]), requires_grad=True)
    x = base if grad_mode == "no_grad" else base * 1.0
    values = [torch.ones(2, dtype=torch.float64), gdbp.tensor(torch.ones(2, dtype=torch.float64))]
    for value in values:
        for write in (lambda: x.__iadd__(value), lambda: x.__setitem__(slice(0, 2), value)):
            if grad_mode == "no_grad":
                with gdbp.no_grad(), pytest.raises(BackendMismatchError, match="numpy and torch"):
                    write()
            else:
                with pytest.raises(BackendMismatchError, match="numpy and torch"):
                    write()
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])  # nothing was written


def test_tensor_of_an_array_on_another_backend_suggests_transfer():
    with pytest.raises(BackendMismatchError) as info:
        gdbp.tensor(np.ones(3), backend="torch")
    message = str(info.value)
    assert "numpy" in message and "torch" in message and "gdbp.transfer" in message


def test_tensor_with_another_dtype_suggests_astype():
    with pytest.raises(TypeError, match=r"float64.*float32.*astype"):
        gdbp.tensor(np.ones(3), dtype=np.float32)


@pytest.mark.parametrize("data", [{"a": 1}, "abc", object()], ids=["dict", "str", "object"])
def test_tensor_of_something_that_is_not_numbers(data):
    with pytest.raises(TypeError, match="gdbp.tensor: cannot make"):
        gdbp.tensor(data, backend="numpy")


def test_tensor_constructor_of_a_list():
    with pytest.raises(TypeError, match=r"got list; use gdbp.tensor\(data\)"):
        gdbp.Tensor([1.0])


def test_grad_of_mixed_backend_arguments():
    def f(a, b):
        return (a * b).sum()

    with pytest.raises(BackendMismatchError, match="numpy.*torch"):
        gdbp.grad(f)(np.ones(2), torch.ones(2, dtype=torch.float64))


# --- backends that are not there ---------------------------------------------------------------------------


@no_cuda
@pytest.mark.parametrize(
    "call",
    [lambda: backends.resolve("cupy"), lambda: backends.resolve("cupy:1"), lambda: gdbp.use("cupy"),
     lambda: gdbp.tensor([1.0], backend="cupy"), lambda: backends.transfer(np.ones(2), "cupy")],
    ids=["resolve", "resolve-index", "use", "tensor", "transfer"],
)
def test_unavailable_backend_names_what_is_missing_and_how_to_get_it(call):
    with pytest.raises(BackendUnavailableError) as info:
        call()
    message = str(info.value)
    assert "cupy" in message
    if not CUPY_INSTALLED:
        assert "not installed" in message and "pip install 'gdbp[cuda12]'" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a CUDA device here")
def test_torch_cuda_unavailable():
    with pytest.raises(BackendUnavailableError, match=r"torch:cuda.*sees no CUDA device"):
        gdbp.tensor([1.0], backend="torch:cuda")


def test_unknown_backend_spec():
    with pytest.raises(BackendError, match=r"unknown backend spec 'tensorflow': use 'auto', 'numpy'"):
        gdbp.use("tensorflow")


# --- the array object -----------------------------------------------------------------------------------------


def test_unsupported_array_api_version():
    with pytest.raises(ValueError, match="2021.12.*2024.12"):
        gdbp.tensor(np.ones(2)).__array_namespace__(api_version="2021.12")


def test_list_index():
    with pytest.raises(TypeError, match="not a list"):
        gdbp.tensor(np.ones(3))[[0, 1]]


def test_permute_dims_with_bad_axes():
    x = gdbp.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"permute_dims: axes \(0, 0\) are not a permutation of the 2 axes"):
        x.__array_namespace__().permute_dims(x, (0, 0))
