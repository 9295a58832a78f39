# Two commands matter: `make run` and `make test`. Both set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# openapi-python-client, for the test that generates a client from the contract, in a venv of its
# own: it pins typer below the version the `governance` command needs.
GENERATOR := $(VENV)/generator
export GOVERNANCE_DATABASE_URL ?= sqlite:///./governance.db

.PHONY: run worker test lint format openapi bench migrate demo clean install package-test package-preview \
	image-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(PYTHON) -m venv $(GENERATOR)
	$(GENERATOR)/bin/pip install --quiet 'openapi-python-client==0.29.1'
	touch $(STAMP)

install: $(STAMP)

# A development machine: webhooks may use plain http (see GOVERNANCE_ENVIRONMENT in the README).
run worker: export GOVERNANCE_ENVIRONMENT ?= development

## Serve the API on 127.0.0.1:$${GOVERNANCE_PORT:-8000} with an embedded SQLite database.
run: $(STAMP)
	$(BIN)/governance migrate
	$(BIN)/governance demo --if-empty
	$(BIN)/governance serve

worker: $(STAMP)
	$(BIN)/governance migrate
	$(BIN)/governance worker

migrate: $(STAMP)
	$(BIN)/governance migrate

## The whole Salesforce loop: fake org, service and worker; pull, check, push; then they keep
## running until Ctrl-C (scripts/demo.py).
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## Lint, then the whole suite (SQLite, or GOVERNANCE_TEST_DATABASE_URL for PostgreSQL), one
## pytest-xdist worker per core (TEST_WORKERS=0 runs it in one process); on PostgreSQL each
## worker uses its own database beside the one named (test_gw0, test_gw1, ...).
TEST_WORKERS ?= auto
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations scripts
	$(BIN)/ruff format --check src tests bench migrations scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sql.py

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench migrations scripts
	$(BIN)/ruff format src tests bench migrations scripts

## The Salesforce package (salesforce/): ESLint, Prettier (it parses every Apex class with
## Salesforce's own parser) and the dealGovernance component's Jest tests. Needs Node 20 and npm.
package-test:
	cd salesforce && npm ci --no-audit --no-fund --loglevel=error && npm test

## The component without an org (LWC OSS, lightning-base-components, SLDS; the service's
## answers from the package's fixtures), rendered by headless Chromium to
## salesforce/preview/preview.png. Not part of CI: the build takes a minute or two.
package-preview:
	cd salesforce/preview && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm run screenshot

## Build the Dockerfile with podman (no Docker engine needed; the python:3.11-slim base is made
## with debootstrap and cached in /var/tmp), start the image as its non-root user and check that
## /healthz, a check and the console answer (scripts/image_check.sh). Needs root or sudo.
image-check:
	scripts/image_check.sh

## Regenerate the committed OpenAPI contract from the app.
openapi: $(STAMP)
	$(BIN)/python -m governance.openapi > openapi/openapi.json

## Engine, HTTP, approvals and Salesforce sync figures (see bench/RESULTS.md; approvals also
## uses PostgreSQL at GOVERNANCE_BENCH_PG_URL, default the scratch database governance_bench on
## 127.0.0.1; the sync bench GOVERNANCE_SYNC_BENCH_PG_URL, default governance_sync_bench).
## The sync bench pulls 100,000 opportunities on SQLite: about ten minutes on its own. The
## analytics bench generates 1,000,000 deals into GOVERNANCE_ANALYTICS_BENCH_PG_URL (default the
## scratch database governance_analytics_bench; about 7 minutes, 6 GB) and times every report.
bench: $(STAMP)
	$(BIN)/python bench/engine_bench.py
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/approvals_bench.py
	$(BIN)/python bench/sync_bench.py
	$(BIN)/python bench/analytics_bench.py

clean:
	rm -rf $(VENV) governance.db governance.db-* .mypy_cache .ruff_cache .pytest_cache .hypothesis
