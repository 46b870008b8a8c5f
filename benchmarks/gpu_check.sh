#!/usr/bin/env bash
# The GPU checks in one go, for a machine with an NVIDIA GPU and no network (CuPy and PyTorch preinstalled).
#
# What must travel with the checkout to the GPU machine:
#   - the working tree (tracked files: gdbp/, tests/, benchmarks/, pyproject.toml);
#   - .whl/, git-ignored, filled by benchmarks/fetch_wheels.sh on a machine with network: the wheels of
#     what gdbp and its tests import that the GPU machine's image lacks. Its image has numpy, pytest,
#     hypothesis, cupy-cuda13x 14.2, torch, scipy, mpi4py, the NCCL wheel, tqdm, safetensors and
#     pytest-timeout; it lacks array-api-compat (gdbp's own dependency: `import gdbp` fails without it)
#     and array-api-strict (imported by the tests). fetch_wheels.sh also fetches tqdm, safetensors,
#     pytest-timeout and the test runner's wheels, pinned to the versions the CPU suite is tested with.
#     With the device tool: run(..., carry=[".whl"]).
# Without them the check says which module is missing and how to get it, and stops (exit 3).
#
# Steps (benchmarks/gpu_check.py does 2 to 5; each writes into OUT_DIR as it goes):
#   1. install the wheels of .whl/ into /tmp/site (put first on PYTHONPATH);
#   2. check the imports; nvidia-smi                              -> OUT_DIR/nvidia-smi.txt
#   3. the CUDA probe (gdbp.backends.probe_cuda); a failed probe stops the check with its reason (exit 4)
#                                                                  -> OUT_DIR/probe.txt
#   4. the gpu tests: python3 -m pytest -m gpu; they fail when any test fails or when none ran
#                                                                  -> OUT_DIR/pytest_gpu.log, pytest_gpu.xml
#   5. the GPU benchmark: python3 -m benchmarks.gpu; each case catches its own failure, and the results
#      so far are rewritten as it goes                             -> OUT_DIR/gpu.md, gpu.json, gpu-*.png
#
# Usage: benchmarks/gpu_check.sh OUT_DIR [--quick] [more arguments for benchmarks.gpu]
#   --quick: about five minutes on a cold GPU: a chosen subset of the gpu tests with -x and a per-test
#   timeout, and the benchmark's --quick; each step with a time limit.
# PYTHON (default python3) is the interpreter.
# Exit status: 0 when every step passed; else the first failure's (3 missing imports, 4 probe, 1 tests ...).
set -uo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUT_DIR [--quick] [benchmarks.gpu arguments]" >&2
    exit 2
fi
PYTHON="${PYTHON:-python3}"
mkdir -p "$1" || exit 2
OUT="$(cd "$1" && pwd)"  # absolute, before moving to the repository root
shift
cd "$(dirname "$0")/.."

echo "== python: $("$PYTHON" --version 2>&1) at $(command -v "$PYTHON")"
export PYTHONPATH="$PWD"
if compgen -G ".whl/*.whl" > /dev/null; then
    if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
        echo "== installed $(ls .whl/*.whl | wc -l) wheels from .whl/ into /tmp/site"
    else
        # One wheel that does not fit this Python should not keep the others out.
        echo "== installing all of .whl/ at once failed; trying one wheel at a time" >&2
        for w in .whl/*.whl; do
            "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$w" \
                || echo "   could not install $w" >&2
        done
    fi
    export PYTHONPATH="/tmp/site:$PWD"
else
    echo "== no wheels in .whl/ (benchmarks/fetch_wheels.sh fetches them where there is network): using what is installed" >&2
fi

exec "$PYTHON" -m benchmarks.gpu_check "$OUT" "$@"
