# One command each, from a fresh clone: `make demo` runs the main demo, `make test` the linter and the test suite,
# `make docs` builds the documentation site.
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

.PHONY: demo test lint bench docs clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python experiments/student_teacher.py

lint: $(STAMP)
	$(BIN)/ruff check meanfield experiments benchmarks tests examples docs/*.py

test: lint
	$(BIN)/python -m pytest -q

# The site, warnings as errors; the gallery examples run. MathJax comes from npm when npm is there (the site then
# renders its maths offline), else from its CDN.
docs: $(STAMP)
	@if [ ! -f docs/_static/mathjax/tex-svg.js ] && command -v npm >/dev/null; then \
		npm install --silent --prefix docs/_build/npm mathjax@3 && mkdir -p docs/_static/mathjax && \
		cp docs/_build/npm/node_modules/mathjax/es5/tex-svg.js docs/_static/mathjax/; fi
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

bench: $(STAMP)
	$(BIN)/python benchmarks/velocity.py
	$(BIN)/python benchmarks/time_to_risk.py
	$(BIN)/python benchmarks/contention.py

clean-venv:
	rm -rf $(VENV)
