"""The same program on every backend: values and gradients agree, and dtypes hold.

Every case of the table (op_cases.py) runs on NumPy, array-api-strict and
torch (CPU), and on CuPy where a CUDA device answers; float32 (and complex64)
inputs must give float32 or complex64 values and gradients in each input's
own dtype, as arrays of the inputs' own library.
"""

from __future__ import annotations

import numpy as np
import pytest

import gdbp
from conftest import CPU_BACKENDS, backend_params
from gdbp.testing import assert_backends_agree
from op_cases import CASES, ns, host_args, make_args

# The CPU backends together; CuPy beside NumPy, marked gpu by the shared generator.
GROUPS = [pytest.param(CPU_BACKENDS, id="cpu")] + [
    pytest.param(("numpy", p.values[0]), marks=p.marks, id=p.id) for p in backend_params(("cupy",))
]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_values_and_gradients_agree_across_backends(case, group, rng):
    names = tuple(b for b in group if b not in case.skip)
    assert len(names) >= 2, f"{case.id} runs on fewer than two backends: {case.skip}"
    assert_backends_agree(case.fn, *host_args(case, rng), backends=names, argnums=case.float_argnums())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_float32_in_float32_out(case, backend, rng):
    if backend.name in case.skip:
        pytest.skip(case.skip[backend.name])
    args = make_args(case, rng, backend, dtype="float32")
    argnums = case.float_argnums()

    def summed(*a):
        outs = case.fn(*a)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        total = 0.0
        for o in outs:
            xp = ns(o)
            complex_out = xp.isdtype(o.dtype, "complex floating")
            total = total + (xp.sum(xp.real(o)) + xp.sum(xp.imag(o)) if complex_out else xp.sum(o))
        return total, outs

    (_, outs), grads = gdbp.value_and_grad(summed, argnums=argnums, has_aux=True)(*args)
    xp = backend.xp
    want = (xp.float32, xp.complex64) if case.keeps_dtype else (xp.float64, xp.complex128)
    for k, out in enumerate(outs):
        assert type(out) is backend.array_type, f"output {k} is a {type(out).__name__}"
        assert out.dtype in want, f"output {k} has dtype {out.dtype}"
    for i, g in zip(argnums, grads):
        assert type(g) is backend.array_type, f"gradient {i} is a {type(g).__name__}"
        assert g.dtype == args[i].dtype, f"gradient {i} has dtype {g.dtype}, its input {args[i].dtype}"
        assert g.dtype in (xp.float32, xp.complex64), f"gradient {i} has dtype {g.dtype}"
        assert tuple(g.shape) == tuple(args[i].shape)


# --- the checker itself ----------------------------------------------------------------------------


def test_assert_backends_agree_returns_host_values_and_gradients(rng):
    x = rng.uniform(-1, 1, size=(2, 3))
    result = assert_backends_agree(lambda a: ns(a).sin(a) * 2.0, x)
    assert set(result) == {"numpy", "array_api_strict", "torch"}
    values, grads = result["torch"]
    np.testing.assert_allclose(values[0], 2 * np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(grads[0], 2 * np.cos(x), rtol=1e-12)


def test_assert_backends_agree_catches_a_backend_that_differs(rng):
    @gdbp.custom_vjp
    def odd(x):
        xp = ns(x)
        return xp.sin(x)

    @odd.defvjp
    def _(g, ans, x):
        # A rule that is wrong on torch only.
        return (g * (2.0 if type(x).__module__.startswith("torch") else 1.0),)

    with pytest.raises(AssertionError, match="gradient of argument 0: torch and numpy disagree"):
        assert_backends_agree(odd, rng.uniform(-1, 1, size=(3,)), backends=("numpy", "torch"))


def test_assert_backends_agree_catches_a_changed_dtype(rng):
    def widen_on_strict(x):
        xp = ns(x)
        return xp.astype(x, xp.float64) if "strict" in repr(xp) else x * 1.0

    with pytest.raises(AssertionError, match="dtype float64 on array_api_strict"):
        assert_backends_agree(widen_on_strict, rng.uniform(-1, 1, size=(3,)).astype(np.float32),
                              backends=("numpy", "array_api_strict"))


def test_assert_backends_agree_raises_for_an_unknown_backend(rng):
    with pytest.raises(gdbp.backends.BackendError, match="no-such-backend"):
        assert_backends_agree(lambda a: a * 2.0, rng.uniform(size=3), backends=("numpy", "no-such-backend"))


def test_assert_backends_agree_raises_for_an_unavailable_backend(rng):
    if gdbp.backends.probe_cuda()[0]:
        pytest.skip("a CUDA device answers here: cupy is available")
    with pytest.raises(gdbp.backends.BackendUnavailableError, match="cupy"):
        assert_backends_agree(lambda a: a * 2.0, rng.uniform(size=3), backends=("numpy", "cupy"))


def test_assert_backends_agree_accepts_arrays_of_any_backend(rng):
    x = gdbp.transfer(rng.uniform(-1, 1, size=(4,)), "torch")
    result = assert_backends_agree(lambda a: ns(a).exp(a), x, backends=("array_api_strict", "numpy"))
    np.testing.assert_allclose(result["numpy"][1][0], np.exp(x.numpy()), rtol=1e-12)
