"""Fixtures and helpers of the data-parallel tests (``from dist_helpers import comm, ...``).

Not a conftest.py: a second conftest module would take the name ``conftest``
from tests/conftest.py, which the other test files import helpers from.

These tests run twice in ``make test``: in the main pytest run, on one process
(``init()`` gives the single-process communicator, size 1), and as
``mpiexec -n 2 python -m pytest tests/distributed``, where every rank runs
every test and ``init()`` gives the MPI communicator of size 2. Each test makes
the same collectives in the same order on every rank, and checks on every rank
what all ranks computed, so that all ranks pass or fail together.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pytest

from gdbp import distributed


@pytest.fixture(scope="session")
def comm():
    """This process's communicator: MPI under mpiexec -n 2, the single-process one otherwise."""
    return distributed.init()


@pytest.fixture
def shared_dir(comm):
    """A folder every rank sees (rank 0 makes it and tells the others its name); removed afterwards."""
    name = np.zeros(512, dtype=np.uint8)
    if comm.rank == 0:
        path = tempfile.mkdtemp(prefix="gdbp-dist-")
        raw = path.encode()
        name[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    comm.broadcast_(name)
    path = bytes(name[name != 0]).decode()
    yield path
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def gathered(comm, values) -> list:
    """Every rank's list of numbers, in rank order."""
    return comm.allgather_floats(list(values))


def under_mpiexec() -> bool:
    return any(k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"))
