"""The demo behind ``gdbp demo``: an MLP learns scikit-learn's handwritten digits.

The digits are 1,797 images of 8x8 pixels (values 0..16), ten classes. A
stratified 25% of them are held out as the test set (always the same split);
features are standardised with the training set's mean and standard
deviation; a 64-128-10 MLP with ReLU is trained with Adam on the chosen
backend, and its accuracy on the held-out set is reported. The test set is
also evaluated after every epoch, for the loss curves only: nothing (no early
stopping, no checkpoint choice) is decided on it.

``distributed=True`` (``mpiexec -n N gdbp demo --distributed``) trains the
same model on N processes, each with ``batch_size`` samples of every global
batch of ``N * batch_size``: the weights, and so the test accuracy, are those
of one process with that global batch, up to float32 summation order. Rank 0
prints and writes the files.
"""

from __future__ import annotations

import time
from pathlib import Path

from .. import backends
from ._data import positive_int, whole

__all__ = ["run_demo", "OPTIMIZERS"]

#: The seed of the train/test split: fixed, so that every run is scored on the same test set.
SPLIT_SEED = 0

#: Optimizer name -> (class name in gdbp.descent, default learning rate, extra arguments).
OPTIMIZERS = {
    "adam": ("Adam", 1e-3, {}),
    "adamw": ("AdamW", 1e-3, {}),
    "sgd": ("SGD", 0.1, {}),
    "momentum": ("SGD", 0.05, {"momentum": 0.9}),
    "rmsprop": ("RMSprop", 1e-3, {}),
    "adagrad": ("Adagrad", 0.05, {}),
}

#: The defaults of run_demo (also what ``None`` means for each).
DEFAULTS = {"epochs": 30, "batch_size": 32, "optimizer": "adam"}


def _require_demo_extras():
    missing = []
    for module in ("sklearn", "safetensors", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(f"the demo needs {', '.join(missing)}: pip install 'gdbp[demo]'")


def _digits(backend):
    """Standardised train/test arrays of the digits on ``backend``: float32 features, int64 labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.25, stratify=labels, random_state=SPLIT_SEED
    )
    xp = backend.xp

    def features(a):
        return xp.astype(backends.transfer(a, backend), xp.float32)

    def classes(a):
        return xp.astype(backends.transfer(a, backend), xp.int64)

    x_train, x_test = features(x_train), features(x_test)
    mean = xp.mean(x_train, axis=0)
    std = xp.std(x_train, axis=0)
    # Border pixels that are 0 in every training image would divide by zero: leave them unscaled.
    std = xp.where(std > 0, std, xp.ones_like(std))
    return (x_train - mean) / std, classes(y_train), (x_test - mean) / std, classes(y_test)


def _model(backend, seed: int, hidden: int):
    from ..nn import Linear, ReLU, Sequential

    stream = backends.host_rng(seed)
    return Sequential(
        Linear(64, hidden, backend=backend, rng=stream),
        ReLU(),
        Linear(hidden, 10, backend=backend, rng=stream),
    )


def run_demo(backend="auto", epochs: int | None = 30, batch_size: int | None = 32, lr: float | None = None,
             optimizer: str | None = "adam", seed: int = 0, out="runs/demo", progress: bool = True,
             hidden: int = 128, verbose: bool = True, distributed=False) -> dict:
    """Train an MLP on the handwritten digits and report its test accuracy.

    Parameters
    ----------
    backend : str
        ``"auto"`` (CuPy when a CUDA device answers, else NumPy) or any spec
        :func:`gdbp.backends.resolve` accepts.
    epochs : int, optional
        Default 30.
    batch_size : int, optional
        Default 32.
    lr : float, optional
        The learning rate (default: 1e-3 for Adam, AdamW and RMSprop, 0.1
        for plain SGD, 0.05 for SGD with momentum 0.9 and for Adagrad).
    optimizer : {"adam", "adamw", "sgd", "momentum", "rmsprop", "adagrad"}, optional
        Default "adam".
    seed : int
        Seeds the initial weights and the shuffling (the split is fixed).
    out : str or os.PathLike
        Directory for ``model.safetensors`` (the trained model and optimizer)
        and ``loss.png`` (the cost and accuracy curves).
    progress : bool
        Show a progress bar when standard error is a terminal.
    hidden : int
        Width of the hidden layer.
    verbose : bool
        Print the backend, the accuracy, the time per epoch and the files.
    distributed : bool or gdbp.distributed.Communicator
        Train on every process of the job (True: ``gdbp.distributed.init()``,
        which is a single process without an MPI launcher); ``batch_size`` is
        then each rank's share of a global batch ``size * batch_size``. Only
        rank 0 prints and writes the checkpoint and the plot.

    Returns
    -------
    dict
        ``backend``, ``backend_reason``, ``test_accuracy``, ``test_cost``,
        ``epochs``, ``seconds_per_epoch``, ``seconds``, ``checkpoint``,
        ``plot``, ``history``, ``ranks``.

    Raises
    ------
    ImportError
        scikit-learn, safetensors or matplotlib is missing (``pip install 'gdbp[demo]'``).
    """
    _require_demo_extras()
    from .. import descent
    from ..nn import cross_entropy
    from .checkpoint import save
    from .loop import evaluate, fit

    say = print if verbose else (lambda *a, **k: None)
    where = "run_demo"
    epochs = positive_int("epochs", DEFAULTS["epochs"] if epochs is None else epochs, where)
    batch_size = positive_int("batch_size", DEFAULTS["batch_size"] if batch_size is None else batch_size, where)
    seed = whole("seed", seed, where)
    hidden = positive_int("hidden", hidden, where)
    name = str(DEFAULTS["optimizer"] if optimizer is None else optimizer).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"run_demo: unknown optimizer {optimizer!r}; choose among {sorted(OPTIMIZERS)}")
    cls_name, default_lr, kwargs = OPTIMIZERS[name]
    lr = default_lr if lr is None else lr
    comm = None
    if distributed is True:
        from ..distributed import init

        comm = init()  # before any array: under NCCL it picks this rank's GPU
    elif distributed is not False and distributed is not None:
        comm = distributed
    ranks = 1 if comm is None else comm.size
    if comm is not None and comm.rank != 0:
        say = lambda *a, **k: None  # noqa: E731  (rank 0 speaks for all)

    if isinstance(backend, str) and backend.strip().lower() == "auto":
        chosen, why = backends.auto()
    else:
        chosen = backends.resolve(backend)
        why = f"asked for: {backend}"
    say(f"backend: {chosen.spec} ({why})")

    x_train, y_train, x_test, y_test = _digits(chosen)
    model = _model(chosen, seed, hidden)
    opt = getattr(descent, cls_name)(model.parameters(), lr=lr, **kwargs)
    say(f"digits: {x_train.shape[0]} training and {x_test.shape[0]} test images; "
        f"MLP 64-{hidden}-10, {cls_name}(lr={lr:g}), {epochs} epochs of batches of {batch_size}")
    if comm is not None:
        say(f"distributed: {comm.size} process(es) over {comm.backend}, {batch_size} samples each of every "
            f"global batch of {batch_size * comm.size}")

    started = time.perf_counter()
    history = fit(model, cross_entropy, opt, (x_train, y_train), epochs=epochs, batch_size=batch_size,
                  val_data=(x_test, y_test), metrics=["accuracy"], progress=progress, seed=seed, distributed=comm)
    seconds = time.perf_counter() - started
    scores = evaluate(model, (x_test, y_test), ["accuracy", "cost"], cost=cross_entropy, distributed=comm)

    out = Path(out)
    checkpoint = out / "model.safetensors"
    plot = out / "loss.png"
    if comm is None or comm.rank == 0:
        checkpoint = save(checkpoint, model, opt, extra={"test_accuracy": scores["accuracy"]}, epoch=epochs,
                          shuffle_seed=seed)
        history.plot(plot)
    per_epoch = seconds / len(history)
    say(f"test accuracy: {scores['accuracy']:.2%} on {x_test.shape[0]} held-out images")
    say(f"time per epoch: {per_epoch * 1000:.0f} ms ({seconds:.1f} s in all, evaluation included)")
    say(f"checkpoint: {checkpoint}")
    say(f"loss curves: {plot}")
    return {
        "backend": chosen.spec,
        "backend_reason": why,
        "test_accuracy": scores["accuracy"],
        "test_cost": scores["cost"],
        "epochs": len(history),
        "seconds_per_epoch": per_epoch,
        "seconds": seconds,
        "checkpoint": str(checkpoint),
        "plot": str(plot),
        "history": history,
        "ranks": ranks,
    }
