"""Module and Parameter: registration, names, state dicts, modes, moving between backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gdbp
from conftest import CPU_BACKENDS, random_array, to_numpy
from gdbp import backends, nn


class Net(nn.Module):
    def __init__(self, backend="numpy"):
        super().__init__()
        self.fc1 = nn.Linear(3, 4, backend=backend, seed=0)
        self.norm = nn.BatchNorm1d(4, backend=backend)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2, backend=backend, seed=1)

    def forward(self, x):
        return self.fc2(self.act(self.norm(self.fc1(x))))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(3, 4)
        self.norm = torch.nn.BatchNorm1d(4)
        self.act = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(4, 2)


def mlp(backend="numpy", seed=0):
    return nn.Sequential(nn.Linear(3, 5, backend=backend, seed=seed), nn.Tanh(), nn.BatchNorm1d(5, backend=backend),
                         nn.Linear(5, 2, backend=backend, seed=seed + 1))


# --- Parameter ----------------------------------------------------------------------------


def test_parameter_owns_a_copy_and_requires_grad():
    source = np.ones(3, dtype=np.float32)
    p = nn.Parameter(source)
    assert isinstance(p, gdbp.Tensor) and p.requires_grad and p.is_leaf
    with gdbp.no_grad():
        p -= 1.0
    assert source[0] == 1.0 and to_numpy(p)[0] == 0.0


def test_parameter_refuses_integers():
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.arange(3))


# --- registration and names -----------------------------------------------------------------


def test_names_and_order_match_torch():
    ours = [name for name, _ in Net().named_parameters()]
    theirs = [name for name, _ in TorchNet().named_parameters()]
    assert ours == theirs == ["fc1.weight", "fc1.bias", "norm.weight", "norm.bias", "fc2.weight", "fc2.bias"]
    assert list(Net().state_dict()) == list(TorchNet().state_dict())


def test_sequential_names_and_state_dict_keys_match_torch():
    ours = mlp()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 2))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "2.running_var" in ours.state_dict() and "0.weight" in ours.state_dict()


def test_sequential_indexing():
    model = mlp()
    assert len(model) == 4
    assert isinstance(model[0], nn.Linear) and model[-1] is model[3]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and len(head) == 3 and head[0] is model[1]
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 2))
    names = ["2.weight", "2.bias", "3.weight", "3.bias"]
    assert [n for n, _ in head.named_parameters()] == [n for n, _ in theirs[1:].named_parameters()] == names
    head.append(nn.ReLU())
    assert list(head._modules) == ["1", "2", "3", "4"]
    assert list(model) == [model[i] for i in range(4)]
    with pytest.raises(IndexError):
        model[4]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(lambda x: x)


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2, backend="numpy")
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_reassigning_and_deleting():
    net = Net()
    net.fc2 = nn.Linear(4, 7, backend="numpy")
    assert dict(net.named_parameters())["fc2.weight"].shape == (7, 4)
    net.norm = None
    assert not any(name.startswith("norm") for name in net.state_dict())
    del net.fc2
    assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias"]
    with pytest.raises(TypeError, match="is a Parameter"):
        net.fc1.weight = np.zeros((4, 3), dtype=np.float32)


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_repr_shows_the_tree():
    text = repr(mlp())
    assert "(0): Linear(in_features=3, out_features=5, bias=True)" in text and "(1): Tanh()" in text


# --- modes and gradients -------------------------------------------------------------------------


def test_train_eval_reach_every_submodule():
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_forgets_every_gradient(rng):
    net = Net()
    net(rng.standard_normal((4, 3)).astype(np.float32)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# --- state dicts -------------------------------------------------------------------------------------


def test_state_dict_round_trip(backend, rng):
    source, target = mlp(backend, seed=0), mlp(backend, seed=10)
    x = random_array(rng, (6, 3), backend, "float32")
    source(x)  # move the running statistics
    source.eval()
    target.eval()
    assert not np.allclose(to_numpy(source(x)), to_numpy(target(x)))
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(to_numpy(source(x)), to_numpy(target(x)))
    # The values were copied, not shared.
    with gdbp.no_grad():
        source[0].weight += 1.0
    assert not np.array_equal(to_numpy(source[0].weight), to_numpy(target[0].weight))


@pytest.mark.parametrize("source_name", CPU_BACKENDS)
def test_state_dict_loads_across_backends(source_name):
    source, target = mlp(source_name, seed=0), mlp("torch", seed=5)
    target.load_state_dict(source.state_dict())
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert backends.backend_of(b) is backends.resolve("torch"), name
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=name)


def test_state_dict_is_live_unless_copied():
    model = mlp()
    live, snapshot = model.state_dict(), model.state_dict(copy=True)
    with gdbp.no_grad():
        model[0].weight -= 1.0
    np.testing.assert_array_equal(live["0.weight"], to_numpy(model[0].weight))
    assert not np.array_equal(snapshot["0.weight"], to_numpy(model[0].weight))


def test_load_state_dict_names_missing_and_unexpected_keys():
    model = mlp()
    state = model.state_dict(copy=True)
    del state["0.bias"]
    state["9.weight"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(nn.StateDictError, match=r"missing keys \['0.bias'\].*unexpected keys \['9.weight'\]"):
        model.load_state_dict(state)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["9.weight"]


def test_load_state_dict_checks_shape_and_dtype_and_changes_nothing_on_error():
    model = mlp()
    before = model.state_dict(copy=True)
    bad = {k: v + 1 if v.dtype == np.float32 else v for k, v in before.items()}
    bad["3.weight"] = np.zeros((3, 5), dtype=np.float32)
    with pytest.raises(gdbp.ShapeError, match=r"'3.weight' has shape \(3, 5\).*\(2, 5\)"):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    bad["3.weight"] = np.zeros((2, 5), dtype=np.float64)
    with pytest.raises(TypeError, match="'3.weight' has dtype float64"):
        model.load_state_dict(bad)


# --- backends ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target_name", CPU_BACKENDS)
def test_to_moves_every_parameter_and_buffer(target_name, rng):
    model = mlp("numpy")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    model(x).sum().backward()
    params = list(model.parameters())
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    target = backends.resolve(target_name)
    assert model.to(target_name) is model
    assert model.backend is target
    assert list(model.parameters()) == params  # the same objects: an optimizer keeps working
    for name, value in model.state_dict().items():
        assert backends.backend_of(value) is target, name
        np.testing.assert_array_equal(to_numpy(value), before[name], err_msg=name)
    for p in model.parameters():
        assert p.backend is target and p.grad.backend is target
    y = model(backends.transfer(x, target))
    assert y.backend is target


def test_backend_property_refuses_a_mixed_module():
    model = nn.Sequential(nn.Linear(2, 2, backend="numpy"), nn.Linear(2, 2, backend="torch"))
    with pytest.raises(backends.BackendMismatchError, match="two backends"):
        model.backend
    assert nn.ReLU().backend is None


def test_layers_default_to_the_current_backend_and_float32():
    with gdbp.use("torch"):
        layer = nn.Linear(2, 3)
    assert layer.backend is backends.resolve("torch") and layer.weight.dtype == torch.float32
    assert nn.Linear(2, 3, backend="numpy", dtype="float64").weight.dtype == np.float64


def test_deepcopy_gives_an_independent_model(backend, rng):
    import copy

    model = mlp(backend)
    before = to_numpy(model[0].weight).copy()
    twin = copy.deepcopy(model)
    assert twin.backend is backend and twin[0].weight is not model[0].weight
    assert isinstance(twin[0].weight, nn.Parameter)
    with gdbp.no_grad():
        model[0].weight -= 1.0
    np.testing.assert_array_equal(to_numpy(twin[0].weight), before)
    assert not np.array_equal(to_numpy(model[0].weight), before)
