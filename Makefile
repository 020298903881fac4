# Every target creates the virtualenv itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export TF_ENABLE_ONEDNN_OPTS ?= 0

.PHONY: setup test test-fast demo benchmark lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on bundled data: a loss search on long-tailed digits (about 1-2 minutes).
demo: $(STAMP)
	$(BIN)/lossearch demo

# Search quality, overhead, workers and memory figures, written to BENCHMARKS.md (~30 minutes).
benchmark: $(STAMP)
	$(BIN)/python benchmarks/search_benchmark.py
	$(BIN)/python benchmarks/scaleout_benchmark.py

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
