# Growth Stack: `make demo` and `make test` do all the set-up on a fresh machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export GROWTH_STACK_HOME ?= $(CURDIR)/.growth_stack
export DAGSTER_HOME ?= $(GROWTH_STACK_HOME)/dagster_home

.PHONY: install browser-deps test-sdks demo test test-slow test-all bench dbt-parse stop clean

# The venv is rebuilt when pyproject.toml changes. uv when available (fast), else pip. Bytecode is
# compiled at install, as pip does (uv does not by default): every dbt, Dagster and server process
# starts faster, also where PYTHONDONTWRITEBYTECODE is set.
$(BIN)/growth-stack: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	@if ! command -v uv >/dev/null; then $(PYTHON) -m pip install --quiet uv || true; fi
	@if command -v uv >/dev/null; then \
		uv venv --quiet --allow-existing --python $(PYTHON) $(VENV) && \
		uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'; \
	else \
		$(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet -e '.[dev]'; \
	fi
	@touch $@

install: $(BIN)/growth-stack

# Debian's Chromium for the browser tests (Playwright drives it; its own browser download cannot work here).
browser-deps:
	@bash scripts/browser-deps.sh

# The official Node and browser SDKs the tests drive, from npm (pinned in tests/sdks/package.json; cached).
test-sdks:
	@bash scripts/test-sdks.sh >/dev/null

# dbt parse only when a file or folder of the dbt project (a folder changes when a file is added or deleted)
# or the venv is newer than the manifest: a rerun of `make demo` or `make test` does not wait for it.
DBT_PROJECT_FILES := $(shell find dbt_project \( -path dbt_project/target -o -path dbt_project/logs \
	-o -path dbt_project/dbt_packages \) -prune -o -print)
dbt_project/target/manifest.json: $(BIN)/growth-stack $(DBT_PROJECT_FILES)
	@$(BIN)/dbt parse --quiet --project-dir dbt_project --profiles-dir dbt_project
	@touch $@

dbt-parse: install dbt_project/target/manifest.json
	@:

# Starts the sandbox and the collector, generates the example company, runs every flow once,
# prints what happened, then serves the Dagster UI on http://127.0.0.1:3000 (Ctrl-C stops everything).
demo: install dbt-parse
	@bash scripts/demo.sh

# The test suite CI runs: unit, integration (real servers on loopback) and end-to-end tests.
test: install browser-deps test-sdks dbt-parse
	@$(BIN)/pytest -q -p no:cacheprovider

# Long suites left out of `make test` (large volumes, soak tests).
test-slow: install browser-deps dbt-parse
	@$(BIN)/pytest -q -p no:cacheprovider -m slow

test-all: install browser-deps dbt-parse
	@$(BIN)/pytest -q -p no:cacheprovider -m ''

# Benchmarks print each figure beside a baseline measured in the same run.
bench: install dbt-parse
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }  # collector load generator
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

stop:
	@bash scripts/demo.sh stop

clean: stop
	rm -rf $(GROWTH_STACK_HOME) dbt_project/target dbt_project/logs
