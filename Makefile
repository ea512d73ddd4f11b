# seqmodels: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEQ := $(VENV)/bin/seqmodels

.DEFAULT_GOAL := help
.PHONY: help install test test-reliability lint notebooks docs data demo bench pretrained clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,docs,forecast,tensorboard,onnx]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install seqmodels (editable) with its dev tools

# pytest-xdist: one worker per core of a 2-core laptop; a file's tests stay on one worker, so
# its module fixtures (a trained tiny run) are made once
TEST_WORKERS ?= 2

test: install ## run the whole test suite (TEST_WORKERS=2 processes)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-reliability: install ## kill -9 a training run 20 times (resuming each time) and the hostile-file tests (about 6 min)
	$(PY) -m pytest tests/reliability --kills 20 -s

lint: install ## ruff over the package and tests
	$(VENV)/bin/ruff check seqmodels tests

notebooks: install ## execute the five notebooks and store their outputs in them (a few minutes)
	MPLBACKEND=Agg $(VENV)/bin/jupyter execute --inplace notebooks/*.ipynb

docs: install ## build the documentation site into site/ (mkdocs, strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

data: data/raw/kjv.txt ## write the built-in corpus to data/raw/kjv.txt

data/raw/kjv.txt: | $(STAMP)
	$(SEQ) corpus kjv --quiet --export $@

DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)
DEMO_ARGS := --cell lstm --layers 2 --units 128 --max-time 150s

demo: install ## train a char LSTM on the built-in corpus for 150 s, evaluate it, generate text
	$(SEQ) corpus --quiet
	$(SEQ) train $(DEMO_ARGS) --out $(DEMO_RUN)
	$(SEQ) evaluate $(DEMO_RUN) --quiet
	$(SEQ) generate-text $(DEMO_RUN) --prompt "And God said" --length 400 --temperature 0.8 --seed 1

bench: install ## measure training, evaluation and generation speed against the baselines
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

PRETRAIN_MINUTES ?= 40

pretrained: install ## rebuild the built-in model: its corpus from Python's own texts, then training (PRETRAIN_MINUTES=40)
	$(PY) data/pretrain.py --minutes $(PRETRAIN_MINUTES)

clean: ## remove the virtual environment and caches (never runs/ or data/)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
