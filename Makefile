# musictf: `make experiment-4` and `make test` are all the set-up a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PRESET ?= cpu
# The TensorFlow build to install: gpu where nvidia-smi lists a GPU, else cpu; override with ACCEL=cpu|gpu|tpu.
ACCEL  ?= $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo gpu || echo cpu)
ifeq ($(filter $(ACCEL),cpu gpu tpu),)
$(error ACCEL must be cpu, gpu or tpu, not '$(ACCEL)')
endif
# tensorflow-tpu's wheels are published on Google's libtpu index, not on PyPI.
PIP_INDEX_tpu := --find-links https://storage.googleapis.com/libtpu-tf-releases/index.html
STAMP  := $(VENV)/.installed-$(ACCEL)

.PHONY: install test test-slow lint clean report bench benchmark-jsb benchmarks gpu-check ablation-4 help
.DEFAULT_GOAL := help

help:  ## List the targets
	@grep -E '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

$(STAMP): setup.cfg pyproject.toml
	@echo "installing musictf with the TensorFlow build for ACCEL=$(ACCEL)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q $(PIP_INDEX_$(ACCEL)) -e '.[dev,$(ACCEL)]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install musictf, its dev extras and TensorFlow for ACCEL (cpu, gpu or tpu)

experiment-1 experiment-2 experiment-3 experiment-4 experiment-5 experiment-6: experiment-%: $(STAMP)  ## Train, evaluate and sample experiment N on the cpu preset
	$(BIN)/musictf run $* --preset $(PRESET)

TRIALS ?= 6
tune-1 tune-2 tune-3 tune-5 tune-6: tune-%: $(STAMP)  ## Keras Tuner search for experiment N (random, TRIALS trials, val_loss)
	$(BIN)/musictf tune $* --preset tune --tuner random --max-trials $(TRIALS) --objective val_loss

tune-4: $(STAMP)  ## Keras Tuner search for experiment 4 (random, TRIALS trials, validation F1)
	$(BIN)/musictf tune 4 --preset tune --tuner random --max-trials $(TRIALS) --objective val_f1


ablation-4: $(STAMP)  ## Experiment 4's ablation: experiment 3, + focal loss, + scheduled sampling, + threshold (about 20 min)
	$(BIN)/musictf ablation 4 --preset $(PRESET)

FILE ?=
benchmark-jsb: $(STAMP)  ## Experiments 2-4 on the JSB protocol, then the report: FILE=JSB.pickle (or .json) for the published file, else music21's chorales in C
	@for n in 2 3 4; do \
	  $(BIN)/musictf run $$n --preset jsb $(if $(FILE),--source "$(FILE)") || exit $$?; \
	done
	$(BIN)/musictf report

DATA ?=
EXPERIMENTS ?= 2 3
benchmarks: $(STAMP)  ## The polyphonic benchmark presets on the published files in DATA=folder (10-35 min each on 2 cores, 16 runs for all four; EXPERIMENTS=3 for one experiment, EXPERIMENTS=6 for the tied-parallel family), then the report
	@test -n "$(DATA)" || { echo "make benchmarks: name the folder holding the published files: make benchmarks DATA=folder" >&2; exit 2; }
	$(BIN)/musictf benchmarks "$(DATA)" $(foreach n,$(EXPERIMENTS),--experiment $(n))

report: $(STAMP)  ## Build reports/ (figures, tables, index.html) from the latest runs
	$(BIN)/musictf report

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev,bench,$(ACCEL)]' \
	  || echo "bench: torch==2.13.0 could not be installed; the PyTorch comparison is left out"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## Measure speed, memory and scaling (10-20 min on 2 cores): reports/bench.json and reports/bench.md
	$(BIN)/python -m tools.perf bench --size full

gpu-check: $(STAMP)  ## On a GPU machine (at most 10 min): paper presets, cuDNN, mixed precision, XLA, generation; writes reports/gpu.md
	$(BIN)/python -m tools.perf gpu-check

TEST_WORKERS ?= auto
test: $(STAMP)  ## Run the fast test suite, one worker per core (TEST_WORKERS=0: in one process)
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadscope

test-slow: $(STAMP)  ## Run only the slow tests
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)  ## ruff: the rules of ruff.toml (110 columns) and the formatter's layout; mypy on the engine's seams (mypy.ini)
	$(BIN)/ruff check musictf tests tools
	$(BIN)/ruff format --check musictf tests tools
	$(BIN)/mypy

clean:  ## Remove .venv, caches and runs
	rm -rf $(VENV) runs .cache .pytest_cache .ruff_cache *.egg-info
