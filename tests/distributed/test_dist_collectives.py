"""The Communicator's collectives against NumPy's results, on every rank (size 1 alone, 2 under mpiexec)."""

from __future__ import annotations

import numpy as np
import pytest
from dist_helpers import comm, gathered, under_mpiexec  # noqa: F401  (comm is a fixture)

import gdbp
from gdbp import backends, distributed
from gdbp.distributed import part


def _mine(rank, shape, dtype=np.float64, seed=0):
    """The array rank ``rank`` contributes: every rank can compute every other rank's."""
    return np.random.default_rng([seed, rank]).normal(size=shape).astype(dtype)


def test_init_gives_one_communicator_per_process(comm):
    assert distributed.init() is comm
    assert comm.backend == ("mpi" if under_mpiexec() else "single")
    assert 0 <= comm.rank < comm.size and 0 <= comm.local_rank < comm.size
    ranks = gathered(comm, [comm.rank, comm.size])
    assert ranks == [[r, comm.size] for r in range(comm.size)]
    assert distributed.init("single").size == 1


def test_init_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        distributed.init("gloo")


@pytest.mark.parametrize("op, reduce", [("sum", np.sum), ("mean", np.mean), ("max", np.max), ("min", np.min)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_allreduce_matches_numpy(comm, op, reduce, dtype):
    shapes = [(3, 4), (5,), ()]
    arrays = [_mine(comm.rank, s, dtype, seed=i) for i, s in enumerate(shapes)]
    comm.allreduce_(arrays, op=op)
    for i, (a, s) in enumerate(zip(arrays, shapes)):
        everyone = np.stack([_mine(r, s, dtype, seed=i) for r in range(comm.size)])
        want = reduce(everyone, axis=0).astype(dtype)
        assert a.dtype == dtype and a.shape == s
        np.testing.assert_allclose(a, want, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_allreduce_of_integers_sums_exactly(comm):
    a = np.arange(6, dtype=np.int64) * (comm.rank + 1)
    comm.allreduce_(a, op="sum")
    assert np.array_equal(a, np.arange(6) * sum(r + 1 for r in range(comm.size)))
    with pytest.raises(ValueError, match="use op='sum'"):
        comm.allreduce_(np.ones(3, dtype=np.int64), op="mean")


def test_allreduce_of_a_tensor_marks_it_changed(comm):
    w = gdbp.tensor(_mine(comm.rank, (4,)), requires_grad=True)
    y = (w * w).sum()
    comm.allreduce_(w, op="sum")
    np.testing.assert_allclose(w.data, sum(_mine(r, (4,)) for r in range(comm.size)), rtol=1e-14)
    if comm.size > 1:  # the graph saved the old value of w: it must refuse to backpropagate
        with pytest.raises(gdbp.backprop.InPlaceError):
            y.backward()


def test_allreduce_refuses_what_it_cannot_reduce(comm):
    with pytest.raises(ValueError, match="op must be one of"):
        comm.allreduce_(np.ones(2), op="prod")
    with pytest.raises(TypeError, match="not an array"):
        comm.allreduce_([np.ones(2), [1.0, 2.0]])
    if comm.size > 1:  # one process never hands the array to MPI
        with pytest.raises(ValueError, match="C-contiguous"):
            comm.allreduce_(np.ones((4, 4))[:, ::2])
        torch = pytest.importorskip("torch")
        with pytest.raises(TypeError, match="NumPy or CuPy"):
            comm.allreduce_(torch.ones(3))


@pytest.mark.parametrize("root", ["first", "last"])
def test_broadcast_gives_every_rank_the_roots_arrays(comm, root):
    root = 0 if root == "first" else comm.size - 1
    arrays = [_mine(comm.rank, (2, 3)), _mine(comm.rank, (7,), np.float32, seed=1)]
    comm.broadcast_(arrays, root=root)
    assert np.array_equal(arrays[0], _mine(root, (2, 3)))
    assert np.array_equal(arrays[1], _mine(root, (7,), np.float32, seed=1))
    with pytest.raises(ValueError, match="root must be a rank"):
        comm.broadcast_(arrays, root=comm.size)


def test_barrier_and_gather_of_host_values(comm):
    comm.barrier()
    rows = gathered(comm, [comm.rank * 1.5, -comm.rank])
    assert rows == [[r * 1.5, -float(r)] for r in range(comm.size)]


def test_started_collectives_complete_at_wait(comm):
    a, b = _mine(comm.rank, (100,)), _mine(comm.rank, (3,), seed=1)
    pending = [comm.start_allreduce(a, "sum"), comm.start_broadcast(b, 0)]
    comm.progress(pending)
    comm.wait(pending)
    np.testing.assert_allclose(a, sum(_mine(r, (100,)) for r in range(comm.size)), rtol=1e-13)
    assert np.array_equal(b, _mine(0, (3,), seed=1))


def test_guard_passes_an_error_through_on_one_process():
    single = distributed.init("single")
    with pytest.raises(KeyError):
        with single.guard():
            raise KeyError("x")
    assert not single.broken
    single.allreduce_(np.ones(2))  # still usable


@pytest.mark.parametrize("n, size", [(0, 1), (1, 2), (5, 2), (7, 3), (64, 4), (3, 5)])
def test_part_cuts_a_batch_into_contiguous_nearly_equal_pieces(n, size):
    pieces = [part(10, 10 + n, r, size) for r in range(size)]
    assert pieces[0][0] == 10 and pieces[-1][1] == 10 + n
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    sizes = [b - a for a, b in pieces]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_gdbp_info_says_how_cupy_arrays_travel_over_mpi():
    line = backends.mpi_report()
    assert line.startswith("mpi: ok mpi4py") and "CuPy arrays over MPI: staged through host memory" in line
    assert "distributed (gdbp.distributed):" in backends.report()


_LAUNCH_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE",
                     "PMIX_SIZE", "PMIX_RANK")


def test_the_launcher_is_read_from_the_environment(monkeypatch):
    for name in _LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert backends.launched_size() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert backends.launched_size() == 3
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    monkeypatch.setenv("PMIX_RANK", "0")  # launched, size known to MPI only
    assert backends.launched_size() == 0
    monkeypatch.delenv("PMIX_RANK")
    monkeypatch.setenv("PMI_SIZE", "1")
    assert distributed.init().backend == "single"  # mpiexec -n 1: one process needs no MPI


def test_a_job_without_mpi4py_is_refused_rather_than_trained_alone(monkeypatch):
    from gdbp.distributed import launch

    if "_mpi_engine" in launch._made:
        pytest.skip("this process has started MPI already (under mpiexec)")
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setattr(backends, "mpi_probe", lambda: (False, "mpi4py is not installed: pip install 'gdbp[mpi]'"))
    with pytest.raises(ImportError, match=r"started by an MPI launcher \(4 processes\) but mpi4py is not installed"):
        distributed.init()
