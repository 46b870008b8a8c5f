# The two commands of the quick start, each self-sufficient on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench conformance install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,demo,plot]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gdbp demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

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

clean:
	rm -rf $(VENV) runs build *.egg-info
