# driftline: `make demo` and `make test` set everything up from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?=

.PHONY: setup demo test test-fast bench bench-cpu bench-quality clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/driftline demo $(if $(DURATION),--duration $(DURATION),)

test: $(STAMP)
	$(BIN)/pytest -v

test-fast: $(STAMP)
	$(BIN)/pytest -m 'not slow'

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# CPU seconds of Pipeline.process (no Kafka): the stable measure on a shared machine; LABELS=1 for labels
bench-cpu: $(STAMP)
	PYTHONPATH=. $(BIN)/python benchmarks/cpu.py --rounds 3 --digest $(if $(LABELS),--labels,)

$(VENV)/.bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(VENV)/.bench

# SEEDS=3 SEED_BASE=0: re-run on streams that are not in the repository with another SEED_BASE
bench-quality: $(VENV)/.bench
	$(BIN)/python benchmarks/quality.py --seeds $(or $(SEEDS),3) --seed-base $(or $(SEED_BASE),0)

clean:
	rm -rf $(VENV) .driftline .pytest_cache
