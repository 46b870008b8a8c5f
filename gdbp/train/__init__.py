"""Training: the fit loop, metrics, callbacks, checkpoints, history plots and the digits demo.

Minibatches stay on the device; per-step costs are brought to the host in
chunks (see :mod:`gdbp.train.loop`). The optional dependencies are imported
only when a feature needs them: tqdm (progress bar) and safetensors
(checkpoints) from the ``train`` extra, matplotlib (plots) from ``plot``,
scikit-learn (the demo's data) from ``demo``.
"""

from . import callbacks
from .callbacks import BestCheckpoint, Callback, EarlyStopping, LRSchedule, ModelCheckpoint, Run
from .checkpoint import Checkpoint, CheckpointError, load, save
from .demo import run_demo
from .history import History, plot_history
from .loop import evaluate, fit, predict
from .metrics import accuracy

__all__ = [
    "BestCheckpoint", "Callback", "Checkpoint", "CheckpointError", "EarlyStopping", "History", "LRSchedule",
    "ModelCheckpoint", "Run", "accuracy", "callbacks", "evaluate", "fit", "load", "plot_history", "predict",
    "run_demo", "save",
]
