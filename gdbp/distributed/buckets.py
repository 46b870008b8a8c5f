"""Gradients summed over the ranks in buckets, each started as soon as the backward sweep has finished it.

A bucket is one contiguous array that holds the gradients of a run of
parameters: with a ``flat=True`` optimizer, a range of its flat gradient
buffer (the slices the sweep writes the gradients into, so nothing is
copied); otherwise a buffer of about 25 MB per dtype, into which each
gradient is copied when it is ready. A grad-ready hook
(:func:`gdbp.backprop.on_grad_ready`) counts the gradients of each bucket;
when a bucket is complete its non-blocking all-reduce starts, while the
sweep goes on with the earlier layers, so that communication overlaps the
rest of the backward pass (PyTorch DDP's and Horovod's scheme). Buckets
follow the parameters in reverse order, the order a backward pass finishes
them in, and start strictly in that order, so that every rank issues the
same collectives in the same order whatever its graph.

:meth:`GradReducer.finish` completes a step before the optimizer's:
parameters the graph did not reach on this rank (or every parameter, on a
rank without samples in the step) contribute a zero gradient, so no rank
waits forever for a bucket; a parameter that no rank reached keeps no
gradient (as on one process, the optimizer then skips it), which one small
exchange of flags settles.
"""

from __future__ import annotations

import time

from ..backprop import Tensor, on_grad_ready, unwrap

__all__ = ["GradReducer", "DEFAULT_BUCKET_BYTES"]

#: The size a bucket grows to before a new one is started (PyTorch DDP's default).
DEFAULT_BUCKET_BYTES = 25 * 2**20


def _itemsize(xp, dtype) -> int:
    info = xp.finfo(dtype) if xp.isdtype(dtype, ("real floating", "complex floating")) else xp.iinfo(dtype)
    bits = info.bits * (2 if xp.isdtype(dtype, "complex floating") else 1)
    return bits // 8


def _runs(sizes: list, limit: int) -> list:
    """(start, stop) runs of consecutive items, from the last one back, each under ``limit`` bytes (or one item)."""
    runs = []
    stop = len(sizes)
    while stop > 0:
        start, total = stop - 1, sizes[stop - 1]
        while start > 0 and total + sizes[start - 1] <= limit:
            start -= 1
            total += sizes[start]
        runs.append((start, stop))
        stop = start
    return runs


class _Bucket:
    """One all-reduce: a contiguous array and each parameter's view of it.

    A bucket of a flat optimizer reads its array from the group each time:
    the optimizer may replace the group's gradient buffer at ``zero_grad``.
    """

    __slots__ = ("params", "ready", "count", "pending", "group", "span", "array", "parts", "last")

    def __init__(self, params, last: int, group=None, span=None, array=None, parts=None):
        self.params, self.last = params, last
        self.group, self.span, self.array, self.parts = group, span, array, parts
        self.ready = [False] * len(params)
        self.count = 0
        self.pending = None

    def buffer(self):
        if self.group is None:
            return self.array
        _, _, a, b = self.span
        return self.group.grad[a:b]

    def views(self) -> list:
        if self.group is None:
            return self.parts
        j0, j1, _, _ = self.span
        return self.group.grad_views[j0:j1]

    @property
    def complete(self) -> bool:
        return self.count == len(self.params)


class GradReducer:
    """Sums every parameter's gradient over the ranks, bucket by bucket, during the backward sweep.

    Parameters
    ----------
    comm : Communicator
    params : iterable of Tensor
        The parameters whose gradients to reduce (a model's); those that do
        not require grad are left out.
    optimizer : gdbp.descent.Optimizer, optional
        With ``flat=True``, its flat gradient buffers are the buckets (cut at
        parameter boundaries into runs of about ``bucket_bytes``).
    bucket_bytes : int
        The size a bucket grows to.

    Use: :meth:`begin` before the backward pass (after the optimizer's
    ``zero_grad``), :meth:`finish` after it and before ``optimizer.step()``,
    :meth:`close` at the end (the hooks stay registered until then, inert
    outside a step). The result is the SUM of the ranks' gradients: weight
    each rank's cost first (its share of the global batch) for a mean.

    Attributes
    ----------
    buckets : list
        In the order their all-reduces start.
    wait_seconds : float
        Time spent in :meth:`finish` waiting for the all-reduces (what the
        backward pass did not hide), summed over steps.
    """

    def __init__(self, comm, params, optimizer=None, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        self.comm = comm
        params = [p for p in params if p.requires_grad]
        ids = {id(p) for p in params}
        for group in (optimizer.flat_groups if optimizer is not None else ()):
            if any(id(p) in ids for p in group.params):  # a flat buffer is reduced whole
                params += [p for p in group.params if id(p) not in ids]
                ids |= {id(p) for p in group.params}
        self.params = params
        self.buckets = self._make_buckets(params, optimizer, bucket_bytes)
        self._slot = {id(p): (b, k) for b in self.buckets for k, p in enumerate(b.params)}
        self._handles = [on_grad_ready(p, self._ready) for p in params]
        self._armed = False
        self._next = 0
        self._inflight = []
        self.wait_seconds = 0.0

    def _make_buckets(self, params, optimizer, limit) -> list:
        order = {id(p): i for i, p in enumerate(params)}
        buckets, covered = [], set()
        for group in (optimizer.flat_groups if optimizer is not None else ()):
            if not any(id(p) in order for p in group.params):
                continue
            size = _itemsize(group.backend.xp, group.data.dtype)
            for j0, j1 in _runs([p.size * size for p in group.params], limit):
                span = (j0, j1, group.bounds[j0][0], group.bounds[j1 - 1][1])
                members = group.params[j0:j1]
                buckets.append(_Bucket(members, max(order[id(p)] for p in members), group=group, span=span))
            covered |= {id(p) for p in group.params}
        kinds: dict = {}
        for p in params:
            if id(p) not in covered:
                kinds.setdefault((p.backend, p.dtype), []).append(p)
        for (backend, dtype), members in kinds.items():
            xp = backend.xp
            for j0, j1 in _runs([p.size * _itemsize(xp, dtype) for p in members], limit):
                run = members[j0:j1]
                array = xp.empty(sum(p.size for p in run), dtype=dtype, device=backend.device)
                parts, start = [], 0
                for p in run:
                    parts.append(xp.reshape(array[start:start + p.size], p.shape))
                    start += p.size
                buckets.append(_Bucket(run, max(order[id(p)] for p in run), array=array, parts=parts))
        # The last parameters' gradients are ready first: their buckets start first.
        return sorted(buckets, key=lambda b: -b.last)

    # -- a step ------------------------------------------------------------------------------

    def begin(self) -> None:
        """Arm the hooks for one backward pass."""
        for b in self.buckets:
            b.ready = [False] * len(b.params)
            b.count = 0
            b.pending = None
        self._next = 0
        self._inflight = []
        self._armed = True

    def _ready(self, p) -> None:
        if not self._armed:
            return  # a backward pass outside a training step
        bucket, k = self._slot[id(p)]
        if bucket.ready[k] or p.grad is None:
            return
        g = unwrap(p.grad)
        view = bucket.views()[k]
        if g is not view:  # the sweep wrote the gradient elsewhere: copy it into the bucket
            view[...] = g
        bucket.ready[k] = True
        bucket.count += 1
        if bucket.complete:
            self._start_complete()
        elif self._inflight:
            self.comm.progress(self._inflight)

    def _start_complete(self) -> None:
        """Start, in order, every bucket whose gradients are all there and whose predecessors have started."""
        while self._next < len(self.buckets) and self.buckets[self._next].complete:
            b = self.buckets[self._next]
            b.pending = self.comm.start_allreduce(b.buffer(), "sum")
            self._inflight.append(b.pending)
            self._next += 1
        self.comm.progress(self._inflight)

    def finish(self) -> None:
        """Complete the step: zeros for the gradients this rank lacks, wait for every bucket, set each ``.grad``.

        Afterwards each parameter that some rank reached holds the sum over
        the ranks in ``.grad`` (a view of its bucket); one that no rank
        reached has ``.grad = None``.

        Raises
        ------
        RankFailedError
            Another rank failed meanwhile.
        """
        if not self._armed:
            raise RuntimeError("GradReducer.finish() without begin(): call begin() before the backward pass")
        self._armed = False
        for b in self.buckets:
            if not b.complete:
                views = b.views()
                for k, done in enumerate(b.ready):
                    if not done:
                        views[k][...] = 0  # this rank did not reach it: it adds nothing to the sum
                b.count = len(b.params)
        self._start_complete()
        reached = [float(r) for b in self.buckets for r in b.ready]
        started = time.perf_counter()
        everyone = self.comm.allgather_floats(reached, "the gradient all-reduce") if self.comm.size > 1 else [reached]
        self.comm.wait(self._inflight, "the gradient all-reduce")
        self.wait_seconds += time.perf_counter() - started
        i = 0
        for b in self.buckets:
            views = b.views()
            for k, p in enumerate(b.params):
                p.grad = Tensor(views[k]) if any(row[i] for row in everyone) else None
                i += 1
        self._inflight = []

    def close(self) -> None:
        """Unregister the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._armed = False
