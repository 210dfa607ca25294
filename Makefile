# One command each, from a fresh clone: `make demo` runs the main demo, `make test` the linter and the test suite.
# Both create and fill the virtual environment .venv on first use (and again when pyproject.toml changes).
#
# torch is installed first and pinned: `pip install torch==2.13.0` takes the CPU build where a copy lies on the
# machine's disk (this project's machines); elsewhere pip downloads PyPI's torch 2.13.0, which on x86-64 Linux is
# the CUDA build (several GB). To install another build, set TORCH, e.g. `make test TORCH="torch==2.13.0+cpu"`
# with pip configured for that index, or install torch into .venv yourself before the first `make`.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python experiments/student_teacher.py

lint: $(STAMP)
	$(BIN)/ruff check meanfield experiments benchmarks tests

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/velocity.py
	$(BIN)/python benchmarks/time_to_risk.py
	$(BIN)/python benchmarks/contention.py

clean-venv:
	rm -rf $(VENV)
