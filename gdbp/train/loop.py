"""The training loop (:func:`fit`) and its evaluation-mode siblings (:func:`evaluate`, :func:`predict`).

Host round-trips are rationed, because each one stalls a GPU until its queue
drains:

- minibatches are cut on the device: the shuffling permutation is drawn on
  the host once per epoch, transferred once, and rows are gathered with
  ``xp.take``;
- per-step costs and metrics stay on the device as 0-d arrays; every
  ``sync_every`` steps (default 50) and at the end of each epoch they are
  stacked and copied to the host in one transfer. That is when the progress
  bar's cost and throughput are refreshed, and when a NaN/inf cost is
  detected: divergence is reported at most ``sync_every`` steps late, but
  it names the exact step where the cost first became non-finite.
"""

from __future__ import annotations

import time

from .. import backends
from ..compile import compile as compile_step
from ..backprop import Tensor, no_grad, unwrap
from ._data import (
    batch_bounds,
    check_array,
    check_data,
    check_finite,
    check_labels,
    model_backend,
    positive_int,
    take_rows,
    takes_class_labels,
    whole,
)
from ._parallel import shard, strategy
from .callbacks import LRSchedule, Run, stateful
from .history import History
from .metrics import RunningMean, batch_value, resolve_metrics, sync_all
from .progress import EpochBar, wants_bar

__all__ = ["fit", "evaluate", "predict"]


def fit(model, cost, optimizer, train_data, epochs: int = 1, batch_size: int = 32, val_data=None, metrics=(),
        callbacks=(), progress: bool = True, seed: int = 0, schedule=None, *, initial_epoch: int | None = None,
        resume=None, shuffle: bool = True, sync_every: int = 50, compile: bool = False,
        distributed=None) -> History:
    """Train a model by minibatch gradient descent.

    Each step: ``pred = model(x_batch)``, ``c = cost(pred, y_batch)``,
    ``c.backward()``, ``optimizer.step()``. The model is put in training
    mode (``model.train()``) at the start of every epoch and stays in it;
    validation runs in evaluation mode, after which each module's mode is
    restored.

    The data is checked once per fit, never per step: floating arrays (x,
    and y for regression) must be finite, and when the cost takes class
    labels (``cost.takes_class_labels``: gdbp's cross_entropy, nll and their
    Loss classes, or a ``functools.partial`` of them) every label of the
    training and validation data must lie in [0, K), K the number of class
    scores the model gives, checked before the first cost. Each check reads
    the device once (on a GPU: one reduction on the device, then a few
    bytes copied), so the training step itself has no added host sync.

    Parameters
    ----------
    model : gdbp.nn.Module
    cost : callable
        ``cost(pred, target) -> 0-d Tensor``, the batch mean (e.g.
        ``gdbp.nn.cross_entropy`` or ``gdbp.nn.MSELoss()``).
    optimizer : gdbp.descent.Optimizer
    train_data : (x, y)
        Arrays (or Tensors) of the model's backend; the first axis indexes samples.
    epochs : int
        Train until this many epochs are complete (counting those before
        ``initial_epoch``).
    batch_size : int
        Samples per step; the last batch of an epoch may be smaller.
    val_data : (x, y), optional
        Evaluated after every epoch (evaluation mode, no gradients); logged
        as ``val_cost`` and ``val_<metric>``.
    metrics : iterable
        ``"accuracy"``, ``"cost"`` or callables ``metric(pred, target)`` that
        return the batch mean as a 0-d array; or a dict name -> metric. The
        cost is always logged as ``"cost"``. Training metrics are averaged
        over the epoch's minibatches as the weights change (as in Keras).
    callbacks : iterable of Callback
        See :mod:`gdbp.train.callbacks` for when each hook runs.
    progress : bool
        Show a progress bar (tqdm) with the epoch, step, cost and samples/s,
        when standard error is a terminal. Never drawn otherwise.
    seed : int
        The shuffling seed, an integer >= 0 (a NumPy integer too): epoch ``e``
        is shuffled by a permutation drawn from ``(seed, e)``, so resuming at
        epoch ``e`` replays the same order.
    schedule : learning-rate schedule, optional
        A :mod:`gdbp.descent` schedule, stepped after every epoch (before the
        callbacks); a ReduceLROnPlateau gets ``val_cost`` (or ``cost``). Wrap
        it in :class:`LRSchedule` yourself to step per optimizer step.
    initial_epoch : int, optional
        The first epoch to train (0-based), to continue an earlier run.
    resume : str, os.PathLike or Checkpoint, optional
        A checkpoint (:func:`gdbp.save`, :class:`ModelCheckpoint`) to continue
        from: weights, optimizer state, module generator states and the
        schedule's state (given as ``schedule=`` or in an
        :class:`LRSchedule` callback) are loaded, ``initial_epoch`` defaults
        to the epochs it completed and the checkpoint's shuffling seed
        replaces ``seed``. A ModelCheckpoint's file also holds the states of
        the run's stateful callbacks (EarlyStopping, BestCheckpoint, ...),
        restored after ``on_train_begin``; the resumed run must have the same
        stateful callbacks (an error names the difference), and a run that a
        callback had stopped trains no further. Everything is checked before
        anything is loaded. On NumPy the result equals an uninterrupted run
        bit for bit.
    shuffle : bool
        Shuffle the samples every epoch.
    sync_every : int
        Steps between host syncs of the running cost (bar refresh and NaN check).
    compile : bool
        Run each step (zero_grad, forward, cost, backward, optimizer step) as
        a :func:`gdbp.compile` plan: traced at the first batch of each shape
        (the last batch of an epoch may be a second one), replayed after.
        The model must not read values on the host in its forward pass.
    distributed : gdbp.distributed.Communicator, optional
        Train on every rank of the communicator as one model
        (:mod:`gdbp.distributed`): each rank takes its contiguous part of
        every global batch of ``size * batch_size`` samples (the batch one
        process with that batch size takes; the last one split as evenly as
        possible, a rank with no samples still taking part), its gradient
        weighted by its share and summed over the ranks in buckets that
        overlap the backward pass. So N ranks with ``batch_size=b`` give the
        weights that one process gives with ``batch_size=N*b``, up to the
        order of floating-point sums, shuffled or not. Every rank must pass
        the same data, settings and seed (checked). Parameters and buffers
        are copied from rank 0 first; costs, metrics and validation are
        reduced over the ranks; the progress bar is drawn by rank 0 only;
        checkpoints are written by rank 0 only (``resume=`` loads on every
        rank, so the file must be visible to all of them); the ranks stop
        together. An exception on one rank makes the others raise
        :class:`gdbp.distributed.RankFailedError`, naming it.

    Returns
    -------
    History

    Raises
    ------
    gdbp.descent.DivergenceError
        The cost became NaN or infinite from finite data (names the epoch and step).
    gdbp.backends.BackendMismatchError
        The data and the model's parameters live on different backends.
    gdbp.ShapeError
        x and y hold different numbers of samples.
    ValueError, TypeError
        epochs, batch_size, sync_every are not positive ints, seed or
        initial_epoch not ints >= 0; the data holds a NaN or an infinity
        (the message names the first and its position); the cost function
        rejects the labels' dtype or shape; the resumed run's stateful
        callbacks differ from the checkpoint's.
    IndexError
        A class label lies outside [0, K) (named with its position).
    gdbp.train.CheckpointError
        The checkpoint to resume from is damaged or does not fit.
    """
    where = "fit"
    epochs = positive_int("epochs", epochs, where)
    batch_size = positive_int("batch_size", batch_size, where)
    sync_every = positive_int("sync_every", sync_every, where)
    seed = whole("seed", seed, where)
    if initial_epoch is not None:
        initial_epoch = whole("initial_epoch", initial_epoch, where)
    backend = model_backend(model, where)
    par = strategy(distributed, model, optimizer)  # alone, or one rank of a data-parallel run
    x, y = check_data(train_data, "train_data", backend, where)
    if val_data is not None:
        val_data = check_data(val_data, "val_data", backend, where)
    metric_fns = [(n, f) for n, f in resolve_metrics(metrics, cost, where) if n != "cost"]
    # The data is checked once, here, not per step: each check reads the device once.
    pairs = [("train_data", (x, y))] + ([("val_data", val_data)] if val_data is not None else [])
    for what, (a, b) in pairs:
        check_finite(a, f"{what} x", where)
        check_finite(b, f"{what} y", where)
    first_step = []  # checks that need the model's first predictions, run once before the first cost
    if takes_class_labels(cost):
        def labels_fit(pred):
            for what, (_, b) in pairs:
                check_labels(b, pred.shape[-1], f"{what} y", where)
        first_step.append(labels_fit)
    train_step = _step_function(model, cost, optimizer, first_step, par)
    if compile and distributed is not None:
        raise ValueError("fit: compile=True and distributed= cannot be combined yet (the gradient reduction "
                         "runs between the backward pass and the update, outside a plan); choose one")
    if compile:
        train_step = compile_step(train_step)
    callbacks = list(callbacks)
    if schedule is not None:
        callbacks.insert(0, LRSchedule(schedule))
    else:
        schedule = next((cb.schedule for cb in callbacks if isinstance(cb, LRSchedule)), None)
    restored, stopped = [], False
    if resume is not None:
        initial_epoch, seed, restored, stopped = _resume(resume, model, optimizer, schedule, callbacks, backend,
                                                         initial_epoch, seed)
    initial_epoch = 0 if initial_epoch is None else initial_epoch
    history = History()
    n = x.shape[0]
    bounds = batch_bounds(n, batch_size * par.size)  # global batches: each rank takes its part of every one
    par.agree(where, samples=n, batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch, seed=seed,
              shuffle=bool(shuffle), sync_every=sync_every, callbacks=len(callbacks),
              val_samples=-1 if val_data is None else val_data[0].shape[0],
              parameters=sum(p.size for p in model.parameters()))
    run = Run(model, optimizer, cost, history, epochs, initial_epoch, seed, len(bounds), schedule=schedule,
              callbacks=callbacks, distributed=distributed)
    draw_bar = wants_bar(progress) and par.rank == 0
    with par.training():
        _epochs(run, par, x, y, bounds, val_data, batch_size, metric_fns, callbacks, draw_bar, backend, shuffle,
                sync_every, train_step, restored, stopped)
    return history


def _epochs(run, par, x, y, bounds, val_data, batch_size, metric_fns, callbacks, draw_bar, backend, shuffle,
            sync_every, train_step, restored, stopped) -> None:
    model, optimizer, cost, history = run.model, run.optimizer, run.cost, run.history
    for cb in callbacks:
        cb.on_train_begin(run)
    # Restored after on_train_begin, which starts each callback afresh.
    for cb, state in restored:
        cb.load_state_dict(state)
    run.stop_training = run.stop_training or stopped
    for epoch in range(run.initial_epoch, run.epochs):
        if run.stop_training:  # a resumed run that had already ended
            break
        for cb in callbacks:
            cb.on_epoch_begin(run, epoch)
        started = time.perf_counter()
        lr = optimizer.lr
        bar = EpochBar(epoch, run.epochs, len(bounds)) if draw_bar else None
        try:
            logs = _train_epoch(run, par, epoch, x, y, bounds, metric_fns, callbacks, bar, backend, shuffle,
                                sync_every, train_step)
            par.end_epoch()
            if val_data is not None:
                scores = evaluate(model, val_data, {"cost": "cost", **dict(metric_fns)},
                                  batch_size=max(batch_size, 256), cost=cost, distributed=run.distributed)
                logs.update({f"val_{name}": v for name, v in scores.items()})
                if bar is not None:
                    bar.show_validation({k: v for k, v in logs.items() if k.startswith("val_")})
        finally:
            if bar is not None:
                bar.close()
        logs["lr"] = lr
        logs["seconds"] = time.perf_counter() - started
        history.append(epoch, logs)
        for cb in callbacks:
            cb.on_epoch_end(run, epoch, logs)
        for cb in callbacks:
            hook = getattr(cb, "on_checkpoint", None)  # callbacks written before the hook existed lack it
            if hook is not None:
                hook(run, epoch, logs)
        run.stop_training = par.any(run.stop_training)  # a callback of one rank stops them all
        if run.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end(run)


def _resume(resume, model, optimizer, schedule, callbacks, backend, initial_epoch, seed):
    """Check the checkpoint against everything it restores, then load it; the callback states to restore."""
    from .checkpoint import Checkpoint, CheckpointError, load

    ckpt = resume if isinstance(resume, Checkpoint) else load(resume, backend=backend)
    if ckpt.epoch is None:
        raise CheckpointError(ckpt.path, "records no epoch to resume from; save it with gdbp.save(..., epoch=n)")
    if initial_epoch is not None and initial_epoch != ckpt.epoch:
        raise ValueError(
            f"fit: initial_epoch={initial_epoch} but the checkpoint {ckpt.path!r} completed {ckpt.epoch} epochs; "
            "leave initial_epoch out to continue where it stopped"
        )
    restored, stopped = [], False
    if ckpt.run_state is not None:
        restored = _callback_states(ckpt, callbacks)
        stopped = ckpt.run_state["stop_training"]
        schedule = None  # restored with its LRSchedule callback
    load(ckpt, model, optimizer, schedule=schedule)
    return ckpt.epoch, (seed if ckpt.shuffle_seed is None else ckpt.shuffle_seed), restored, stopped


def _callback_states(ckpt, callbacks) -> list:
    """(callback, state) for every stateful callback, each state checked; nothing changes."""
    from .checkpoint import CheckpointError

    saved = ckpt.run_state["callbacks"]
    have = stateful(callbacks)
    if set(saved) != set(have):
        raise ValueError(
            f"fit: the checkpoint {ckpt.path!r} holds the states of the callbacks {sorted(saved)}, this run has "
            f"{sorted(have)}; resume with the same callbacks as the interrupted run, or start the callbacks "
            f"afresh: gdbp.load(path, model, optimizer), then fit(..., initial_epoch={ckpt.epoch}, "
            f"seed={ckpt.shuffle_seed})"
        )
    for key, cb in have.items():
        check = getattr(cb, "check_state_dict", None)
        if callable(check):
            try:
                check(saved[key])
            except Exception as exc:  # the callback names what is wrong; the file is at fault
                raise CheckpointError(ckpt.path, f"the state of callback {key} does not fit: {exc}") from exc
    return [(cb, saved[key]) for key, cb in have.items()]


def _step_function(model, cost, optimizer, first_step, par):
    """One optimizer step: ``step(xb, yb, share=None) -> (cost, prediction)``.

    ``share``: on a rank of a data-parallel run, (this rank's samples, the
    global batch's), which weight its gradient; ``xb`` is None for a rank
    with no samples in the last batch, which still takes part in the
    reduction and the update (and returns (None, None)).
    """

    def step(xb, yb, share=None):
        model.zero_grad()
        optimizer.zero_grad()
        par.begin_step()
        c = pred = None
        if xb is not None:
            pred = model(xb)
            while first_step:
                first_step.pop()(pred)
            c = cost(pred, yb)
            if not isinstance(c, Tensor) or c.size != 1:
                raise TypeError(
                    f"fit: the cost must return a Tensor holding one value (the batch mean), got "
                    f"{type(c).__name__} of shape {getattr(c, 'shape', None)}; use reduction='mean'"
                )
            c.backward(None if share is None else par.seed(c, *share))
        par.finish_step()
        optimizer.step()
        return c, pred

    return step


def _train_epoch(run, par, epoch, x, y, bounds, metric_fns, callbacks, bar, backend, shuffle, sync_every,
                 train_step) -> dict:
    from ..descent import DivergenceError

    model, optimizer = run.model, run.optimizer
    xp = backend.xp
    n = x.shape[0]
    order = backends.permutation(n, (run.seed, epoch), backend) if shuffle else None
    running = {"cost": RunningMean(), **{name: RunningMean() for name, _ in metric_fns}}
    done = 0
    means = {}

    def sync():
        par.before_sync()
        sync_all(running.values())  # one transfer for the cost and every metric
        combined, bad = par.combine(running)
        means.update(combined)
        if bad is not None:
            step, value = bad
            raise DivergenceError(value, f"epoch {epoch + 1}, step {step + 1} of {len(bounds)}", lr=optimizer.lr)
        if bar is not None:
            bar.show(done, means)

    model.train()
    for step, (global_start, global_stop) in enumerate(bounds):
        start, stop = par.part(global_start, global_stop)
        share = None if par.size == 1 else (stop - start, global_stop - global_start)
        if stop > start:
            xb = Tensor(take_rows(xp, x, order, start, stop))
            yb = Tensor(take_rows(xp, y, order, start, stop))
            c, pred = train_step(xb, yb, share) if share else train_step(xb, yb)
            weight = stop - start
            running["cost"].add(c.data, weight, step)
            if metric_fns:
                detached = pred.detach()
                for name, fn in metric_fns:
                    running[name].add(batch_value(fn, detached, yb), weight, step)
        else:  # a rank with no samples in the last batch still takes part in the reduction
            train_step(None, None, share)
        done += global_stop - global_start
        run.step += 1
        for cb in callbacks:
            cb.on_step_end(run, step)
        if bar is not None:
            bar.step()
        if (step + 1) % sync_every == 0:
            sync()
    sync()
    return dict(means)


class _EvalMode:
    """Evaluation mode and no gradients inside; every module's previous mode restored on exit."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        self.no_grad = no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc):
        self.no_grad.__exit__(*exc)
        # Module.train(mode) would set one mode on every sub-module; restore each one's own.
        for m, mode in self.modes:
            object.__setattr__(m, "training", mode)


def evaluate(model, data, metrics, batch_size: int = 256, *, cost=None, distributed=None) -> dict:
    """Metrics of a model on data, in evaluation mode and without recording gradients.

    Parameters
    ----------
    model : gdbp.nn.Module
    data : (x, y)
        Arrays (or Tensors) of the model's backend.
    metrics : iterable or dict
        ``"accuracy"``, ``"cost"`` (needs ``cost``) or callables
        ``metric(pred, target) -> 0-d array`` (the batch mean).
    batch_size : int
        Samples per forward pass (memory only: the result does not depend on it
        beyond float rounding).
    cost : callable, optional
        The cost function, for the metric ``"cost"``.
    distributed : gdbp.distributed.Communicator, optional
        Each rank evaluates its contiguous share of the data (every rank
        passes all of it) and the means are reduced over the ranks: every
        rank gets the values one process gets on the whole data.

    Returns
    -------
    dict
        name -> float, averaged over all samples (one host sync at the end).
        The model's training/evaluation mode is restored afterwards.
    """
    where = "evaluate"
    batch_size = positive_int("batch_size", batch_size, where)
    backend = model_backend(model, where)
    x, y = check_data(data, "data", backend, where)
    fns = resolve_metrics(metrics, cost, where)
    if not fns:
        raise ValueError(f"{where}: no metrics asked for; pass e.g. metrics=['accuracy']")
    par = strategy(distributed, model)
    first, last = shard(distributed, x.shape[0])  # each rank evaluates its contiguous share
    running = {name: RunningMean() for name, _ in fns}
    with _EvalMode(model):
        for step, (start, stop) in enumerate(batch_bounds(last - first, batch_size)):
            pred = model(Tensor(x[first + start:first + stop, ...]))
            yb = Tensor(y[first + start:first + stop, ...])
            for name, fn in fns:
                running[name].add(batch_value(fn, pred, yb), stop - start, step)
    par.before_sync()
    sync_all(running.values())
    return par.combine(running)[0]


def predict(model, x, batch_size: int = 256):
    """The model's outputs for x, in evaluation mode and without recording gradients.

    Parameters
    ----------
    model : gdbp.nn.Module
    x : array or Tensor
        Of the model's backend; the first axis indexes samples.
    batch_size : int
        Samples per forward pass.

    Returns
    -------
    array
        The outputs, concatenated along the first axis, as an array of the
        model's backend (no host copy). The model's mode is restored afterwards.
    """
    where = "predict"
    batch_size = positive_int("batch_size", batch_size, where)
    backend = model_backend(model, where)
    x = check_array(x, "x", backend, where)
    outs = []
    with _EvalMode(model):
        for start, stop in batch_bounds(x.shape[0], batch_size):
            outs.append(unwrap(model(Tensor(x[start:stop, ...]))))
    return outs[0] if len(outs) == 1 else backend.xp.concat(outs, axis=0)
