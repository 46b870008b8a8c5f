"""Long-lived worker processes, one per framework, that build and time benchmark steps.

Each framework runs in its own process so that thread pools never compete:
the parent sends one block of work at a time to one worker while the others
wait on their pipes, idle. Every worker gets the same thread settings
(OMP/OpenBLAS/MKL environment variables, and torch.set_num_threads).

After its blocks the worker waits until its own process is quiet before it
answers: OpenBLAS's helper threads keep spinning for about 0.1 s after the
last product, and would otherwise steal a core from the next worker's blocks.
"""

from __future__ import annotations

import importlib
import math
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

FAMILIES = {
    "numpy": "benchmarks.impl_numpy",
    "gdbp": "benchmarks.impl_gdbp",
    "torch": "benchmarks.impl_torch",
    "autograd": "benchmarks.impl_autograd",
}

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


class WorkerError(RuntimeError):
    """A worker raised, or died; the message carries its traceback."""


# --- inside the worker ----------------------------------------------------------------------


def settle(max_s: float = 0.5, window_s: float = 0.005, busy: float = 0.1) -> float:
    """Wait until this process uses under ``busy`` of a core (its thread pools asleep); return the wait."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_s:
        c0 = time.process_time()
        time.sleep(window_s)
        if time.process_time() - c0 < busy * window_s:
            break
    return time.perf_counter() - start


def _time_steps(bench, n: int) -> list[float]:
    times = []
    clock = time.perf_counter
    step = bench.step
    for _ in range(n):
        t0 = clock()
        step()
        times.append(clock() - t0)
    return times


class _Server:
    def __init__(self, family: str, threads: int):
        self.family = family
        self.module = importlib.import_module(FAMILIES[family])
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)
        self.benches = {}

    def hello(self):
        """Versions and the thread pools this worker actually runs with."""
        info = {"family": self.family, "python": platform.python_version(), "pid": os.getpid(),
                "env": {k: os.environ.get(k) for k in THREAD_VARIABLES}}
        for name in ("numpy", "torch", "autograd", "gdbp"):
            mod = sys.modules.get(name)
            if mod is not None:
                info[name] = getattr(mod, "__version__", None) or _dist_version(name)
        torch = sys.modules.get("torch")
        if torch is not None:
            info["torch_threads"] = torch.get_num_threads()
        try:
            from threadpoolctl import threadpool_info

            info["threadpools"] = [
                {k: p.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer", "architecture")}
                for p in threadpool_info()
            ]
        except ImportError:
            pass
        return info

    def make(self, task, impl, size, seed):
        from .problems import make

        factory = self.module.BENCHES[(task, impl)]
        return factory(make(task, size, seed))

    def check(self, task, impl, size, seed, steps):
        bench = self.make(task, impl, size, seed)
        for _ in range(steps):
            bench.step()
        return bench.result()

    def build(self, key, seed, warm_s, min_steps=5):
        """Build a bench and warm it up for warm_s; return its step time once warm."""
        task, impl, size = key
        bench = self.benches[key] = self.make(task, impl, size, seed)
        times = _time_steps(bench, min_steps)
        while sum(times) < warm_s:
            times += _time_steps(bench, len(times))
        settle()
        return statistics.median(times[-max(3, len(times) // 3):])

    def time_many(self, blocks):
        """Time blocks of several benches back to back, [(key, n_warm, n)] -> [step times of each].

        One settle at the end: consecutive blocks in one process meet only
        its own thread pool, as the steps of one training loop do.
        """
        out = []
        for key, n_warm, n in blocks:
            bench = self.benches[key]
            _time_steps(bench, n_warm)
            out.append(_time_steps(bench, n))
        settle()
        return out

    def info(self, key):
        return getattr(self.benches[key], "products", None)

    def drop(self, key):
        self.benches.pop(key, None)


def _dist_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def serve(family: str, threads: int) -> None:
    """The worker's loop: read requests from stdin, answer ("ok", value), ("skip", reason) or ("error", traceback).

    Requests and answers are pickled on the process's own pipes; anything a
    library prints goes to stderr, so that it cannot garble an answer.
    """
    from .problems import Skip

    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def answer(status, value):
        pickle.dump((status, value), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()

    try:
        server = _Server(family, threads)
    except Exception:
        answer("error", traceback.format_exc())
        return
    while True:
        try:
            op, *args = pickle.load(requests)
        except EOFError:
            return
        if op == "close":
            return
        try:
            answer("ok", getattr(server, op)(*args))
        except Skip as exc:
            answer("skip", str(exc))
        except Exception:
            answer("error", traceback.format_exc())


# --- in the parent --------------------------------------------------------------------------


class Workers:
    """One worker process per framework family, started together, closed on exit.

    Workers are fresh interpreters (``python -m benchmarks.worker``), so they
    inherit no thread pools and need no ``__main__`` guard from the caller.
    """

    def __init__(self, families, threads: int):
        self.threads = threads
        self.procs = {}
        env = dict(os.environ)
        env.update({k: str(threads) for k in THREAD_VARIABLES})
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            for family in families:
                self.procs[family] = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.worker", family, str(threads)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root,
                )
        except BaseException:
            self.close()
            raise

    def send(self, family, *msg):
        proc = self.procs[family]
        try:
            pickle.dump(msg, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except OSError:
            raise WorkerError(f"the {family} worker died (exit code {proc.poll()})") from None

    def receive(self, family):
        proc = self.procs[family]
        try:
            return pickle.load(proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise WorkerError(f"the {family} worker died (exit code {proc.wait(5)})") from None

    def call(self, family, *msg):
        """Send one request and wait for its answer: (status, value)."""
        self.send(family, *msg)
        status, value = self.receive(family)
        if status == "error":
            raise WorkerError(f"the {family} worker failed on {msg[0]}{tuple(msg[1:])}:\n{value}")
        return status, value

    def close(self):
        for proc in self.procs.values():
            try:
                proc.stdin.close()  # end of requests: the worker returns
            except OSError:
                pass
        deadline = time.monotonic() + 0.5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:  # its results are in; a slow interpreter exit is not worth a wait
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def blocks(step_s: float, block_s: float) -> tuple[int, int]:
    """(untimed warm-up steps, timed steps) for one block of about block_s seconds."""
    n = max(1, min(100_000, round(block_s / max(step_s, 1e-7))))
    return max(1, math.ceil(n / 20)), n


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
