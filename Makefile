# fairtrain: `make run` starts the demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

LINT_DIRS := $(wildcard src tests benchmarks scripts)

.PHONY: run test lint install uv system-deps services security soak benchmarks clean

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv

install: uv
	$(UV) sync --frozen

## Start the demo marketplace on http://127.0.0.1:8000 (SQLite, local vault, in-process jobs).
run: install
	$(UV) run fairtrain serve --demo --host 127.0.0.1 --port 8000

system-deps:
	@bash scripts/install-system-deps.sh

services:
	@bash scripts/start-services.sh

## Install everything and run the whole suite (SQLite and PostgreSQL).
test: install system-deps services
	$(UV) run pytest

## Fast security suite (also part of `make test`): authorisation matrix, fuzzing, web security.
security: install services
	$(UV) run pytest tests/security tests/functional/test_authz_matrix.py

## Long reliability runs (by hand, bounded): many kill -9 trials per operation and database,
## then a load soak on PostgreSQL that fails on any error or on memory that keeps growing.
SOAK_TRIALS ?= 10
SOAK_SECONDS ?= 1200
soak: install system-deps services
	FAIRTRAIN_CRASH_TRIALS=$(SOAK_TRIALS) timeout 7200 $(UV) run pytest -p no:randomly -s tests/reliability
	timeout $$(( $(SOAK_SECONDS) + 600 )) $(UV) run python benchmarks/load.py --seconds $(SOAK_SECONDS) --database postgres --max-errors 0 --max-growth 0.5

lint: install
	$(UV) run ruff check $(LINT_DIRS)
	$(UV) run ruff format --check $(LINT_DIRS)
	$(UV) run mypy --strict src/

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
