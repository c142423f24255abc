# Every target creates its own virtualenv, so a fresh machine needs only python3 (>= 3.10);
# `make test` also needs chromium, prometheus/promtool, PostgreSQL's server and Node.js with
# npm, which system-deps installs (Debian: apt-get, as root or through sudo) or, when it
# cannot, names with what to run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps run test test-instrumentations lint typecheck bench clean dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## system-deps: Debian packages the tests start for real (chromium, prometheus, postgresql, nodejs, npm)
system-deps:
	./scripts/install-system-deps

## run: the demo: a receiver with budgets, two days of traffic with an incident, the investigation (see README)
run: $(STAMP)
	$(BIN)/spanmeter demo

## test: lint + pyright strict + the price overlay check + the whole test suite + the instrumentation matrix
test: $(STAMP) system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pyright
	$(BIN)/spanmeter prices check
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-instrumentations

## test-instrumentations: the instrumentation matrix (tests/instrumentations), one virtualenv per
## group in .venv-instr/, made from PyPI and reused while its requirements file is unchanged
test-instrumentations:
	PYTHON=$(PYTHON) ./scripts/test-instrumentations

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

## typecheck: pyright in strict mode over src/ (pyproject.toml); `make test` runs it too
typecheck: $(STAMP)
	$(BIN)/pyright

bench: $(STAMP)
	$(BIN)/python bench/processor_overhead.py

## dashboards: regenerate the Grafana dashboards (deploy/grafana/dashboards) from deploy/grafana/generate.py
dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/generate.py

clean:
	rm -rf $(VENV) .venv-instr .pytest_cache .ruff_cache
