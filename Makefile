# The two commands a new user needs: `make run` and `make test`.
# `make run` creates .venv with the runtime dependencies only (requirements.txt, as a production
# install); `make test` and the other developer targets add requirements-dev.txt to the same venv.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

AXE_DIR := tests/ui/axe

.PHONY: axe run run-worker run-webhook manage test test-fast venv venv-dev lint format typecheck contracts migrate bench bench-quick clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## The runtime dependencies only (what a production install has).
venv: $(VENV)/.installed

## The runtime dependencies plus the test, benchmark, emulator, type and lint tools.
venv-dev: $(VENV)/.installed-dev

## Start the portal: SQLite, in-process jobs, demo data, admin user (password printed).
run: venv
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --no-input -v0
	DEBUG=$${DEBUG:-1} $(PY) manage.py ipam_demo
	DEBUG=$${DEBUG:-1} $(PY) manage.py runserver $(HOST):$(PORT)

## Any management command with the settings of `make run` (DEBUG=1, same database):
## make manage ARGS="ipam_lookup 2001:db8::10"
manage: venv
	DEBUG=$${DEBUG:-1} $(PY) manage.py $(ARGS)

## The portal over HTTPS for the Shoot admission webhook (docs/admission.md): gunicorn with a
## development CA (kept between runs), client certificates verified when presented; prints the caBundle.
WEBHOOK_PORT ?= 8443
WEBHOOK_CERTS ?= .webhook-certs
run-webhook: venv
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --no-input -v0
	DEBUG=$${DEBUG:-1} $(PY) manage.py ipam_webhook_certs --dir $(WEBHOOK_CERTS) --host $(HOST) --host localhost
	DEBUG=$${DEBUG:-1} $(PY) -m gunicorn ipam_portal.wsgi:application --bind $(HOST):$(WEBHOOK_PORT) \
		--certfile $(WEBHOOK_CERTS)/server.pem --keyfile $(WEBHOOK_CERTS)/server-key.pem \
		--ca-certs $(WEBHOOK_CERTS)/ca.pem --cert-reqs 1 --workers $${WEB_CONCURRENCY:-2}

## A Celery worker (with the beat scheduler) on a real broker, for a portal started with the same
## CELERY_BROKER_URL (without one, `make run` runs jobs in-process and needs no worker).
BROKER ?= redis://127.0.0.1:6379/0
run-worker: venv
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(BROKER)} DEBUG=$${DEBUG:-1} sh -c "mkdir -p artifacts && exec $(PY) -m celery -A ipam_portal worker --beat --schedule=artifacts/celerybeat-schedule --loglevel=INFO"

## Run the whole suite (SQLite by default; set DATABASE_URL for PostgreSQL): lint, types, import
## contracts, Django checks, then every test.
test: lint typecheck contracts
	DEBUG=1 $(PY) manage.py check
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run -v0
	$(PY) -m pytest $(PYTEST_ARGS)

## The inner loop (under 3 minutes): lint and the tests that start no emulator, no browser and
## nothing slow (markers in pyproject.toml).
test-fast: lint
	$(PY) -m pytest -q -m "not emulator and not browser and not slow" $(PYTEST_ARGS)

## axe-core for the accessibility check of every page (tests/ui/test_browser_pages.py): the pinned
## npm package of tests/ui/axe (package-lock.json), installed with `npm ci`.
axe: $(AXE_DIR)/node_modules/axe-core/axe.min.js

$(AXE_DIR)/node_modules/axe-core/axe.min.js: $(AXE_DIR)/package-lock.json
	cd $(AXE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: venv-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## mypy with the Django and DRF stubs on the whole project (config in pyproject.toml).
typecheck: venv-dev
	DEBUG=1 $(PY) -m mypy

## The import contracts between the apps and the kernel (import-linter, config in pyproject.toml).
contracts: venv-dev
	$(VENV)/bin/lint-imports

format: venv-dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

migrate: venv
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate

bench: venv-dev
	DEBUG=1 $(PY) bench/allocate.py --db both

bench-quick: venv-dev
	DEBUG=1 $(PY) bench/allocate.py --quick --db both

clean:
	rm -rf $(VENV) $(AXE_DIR)/node_modules db.sqlite3 db.sqlite3-* .pytest_cache .ruff_cache .hypothesis .mypy_cache .import_linter_cache

## Build the Neutron virtualenv for the OpenStack adapter tests (the tests also build it when missing).
NEUTRON_VENV ?= .venv-neutron
.PHONY: neutron-venv
neutron-venv: venv-dev
	NEUTRON_VENV=$(NEUTRON_VENV) $(PY) -c "from tests.support.fixtures_openstack import ensure_neutron_venv as e; print(e())"
