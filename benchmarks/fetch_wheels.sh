#!/usr/bin/env bash
# Download into .whl/ the wheels that the GPU machine lacks, for benchmarks/gpu_check.sh to install
# offline (carry .whl/ with the checkout). That machine has CuPy (CUDA 13), PyTorch, NumPy, pytest and
# hypothesis, but no network: gdbp's own dependency (array-api-compat) and the test suite's
# (array-api-strict) must travel as wheels; the rest of the list pins what the CPU suite is tested
# with (the test runner, tqdm and safetensors for the training tests, pytest-timeout for --quick, and the
# client libraries tests/test_clients.py differentiates; scipy is there already).
# benchmarks/gpu_check.py's NEEDS names the modules the check looks for.
#
# Usage: benchmarks/fetch_wheels.sh [NAME==VERSION ...]   (extra requirements are added to the list)
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned to the versions the CPU development environment is tested with.
WHEELS=(
    array-api-compat==1.16.0
    array-api-strict==2.6.1
    hypothesis==6.170.17
    sortedcontainers==2.4.0
    pytest==9.2.0
    pytest-timeout==2.4.0
    pluggy==1.7.0
    iniconfig==2.3.1
    packaging==26.4
    pygments==2.21.0
    tqdm==4.70.1
    safetensors==0.8.0
    einops==0.8.2
    array-api-extra==0.11.5
    scikit-learn==1.9.1
    joblib==1.6.0
    threadpoolctl==3.8.0
    "$@"
)

mkdir -p .whl
# The GPU machine runs CPython 3.12 on x86-64 Linux; pure-Python (py3-none-any) wheels match these tags too.
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}"
ls -l .whl
