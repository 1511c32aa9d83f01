# Fresh machine: `make demo` and `make test` create .venv and install everything they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format venv weights bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU wheel first: a bare `torch` requirement would otherwise pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/afvsr demo

test: $(STAMP)
	$(BIN)/ruff check afvsr tests benchmarks
	$(BIN)/ruff format --check afvsr tests benchmarks
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format afvsr tests benchmarks
	$(BIN)/ruff check --fix afvsr tests benchmarks

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
