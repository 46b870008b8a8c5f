# The two commands of the quick start, each self-sufficient on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A job of two processes that waited for each other forever would hold CI: end it after 10 minutes.
TIMEOUT := $(shell command -v timeout >/dev/null 2>&1 && echo timeout 600)

.PHONY: demo test bench bench-distributed conformance install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,demo,plot]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gdbp demo

# Then tests/distributed again as a job of two processes (the main run covers it on one).
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(TIMEOUT) $(BIN)/mpiexec -n 2 $(BIN)/python -m pytest tests/distributed -q -p no:cacheprovider

# The official array API conformance suite (the copy in ../shared/conformance) against gdbp's namespace over
# NumPy and against array_api_compat.numpy: both summary lines, and a failure where gdbp fails a test that
# tests/conformance_known_failures.txt does not list. `make test` runs the gdbp half (tests/test_conformance_suite.py).
conformance: $(STAMP)
	$(BIN)/python tests/conformance_suite.py

$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(VENV)/.bench

bench: $(VENV)/.bench
	$(BIN)/python -m benchmarks.run

# The data-parallel step on 1 and 2 processes (one BLAS thread each): benchmarks/results/distributed.*
bench-distributed: $(STAMP)
	$(BIN)/python -m benchmarks.distributed --mpiexec $(BIN)/mpiexec

clean:
	rm -rf $(VENV) runs build *.egg-info
