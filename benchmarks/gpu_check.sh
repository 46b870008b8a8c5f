#!/usr/bin/env bash
# The GPU checks in one go, for a machine with an NVIDIA GPU (CuPy and PyTorch preinstalled, no network):
#   1. install the wheels carried in .whl/ (benchmarks/fetch_wheels.sh fetches them) into /tmp/site;
#   2. nvidia-smi;
#   3. the GPU tests: python3 -m pytest -m gpu -q            -> OUT_DIR/pytest_gpu.log
#   4. the GPU benchmark: python3 -m benchmarks.gpu          -> OUT_DIR/gpu.md, gpu.json, gpu-*.png
#
# Usage: benchmarks/gpu_check.sh OUT_DIR [extra arguments for benchmarks.gpu, e.g. --quick]
# Exit status: 0 when the tests and the benchmark both succeed, else the first failure's.
set -uo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUT_DIR [benchmarks.gpu arguments]" >&2
    exit 2
fi
mkdir -p "$1" || exit 2
OUT="$(cd "$1" && pwd)"  # absolute, before moving to the repository root
shift
cd "$(dirname "$0")/.."

echo "== python: $(python3 --version 2>&1) at $(command -v python3)"
export PYTHONPATH="$PWD"
if compgen -G ".whl/*.whl" > /dev/null; then
    if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
        echo "== installed $(ls .whl/*.whl | wc -l) wheels from .whl/ into /tmp/site"
    else
        # One wheel that does not fit this Python should not keep the others out.
        echo "== installing all of .whl/ at once failed; trying one wheel at a time" >&2
        for w in .whl/*.whl; do
            python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$w" \
                || echo "   could not install $w" >&2
        done
    fi
    export PYTHONPATH="/tmp/site:$PWD"
else
    echo "== no wheels in .whl/ (run benchmarks/fetch_wheels.sh where there is network): using what is installed" >&2
fi

echo "== nvidia-smi"
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"

echo "== python3 -m pytest -m gpu -q"
python3 -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest_gpu.log"
tests=${PIPESTATUS[0]}
if [ "$tests" -eq 5 ]; then
    echo "== pytest collected no gpu test (exit 5)" | tee -a "$OUT/pytest_gpu.log"
fi

echo "== python3 -m benchmarks.gpu --out $OUT $*"
python3 -m benchmarks.gpu --out "$OUT" "$@" 2>&1 | tee "$OUT/bench_gpu.log"
bench=${PIPESTATUS[0]}

echo "== pytest exit $tests, benchmark exit $bench; results in $OUT"
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
exit "$bench"
