# LoRA Hub. `make run` sets everything up and starts the site; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A CPU build of torch is enough here and avoids gigabytes of CUDA wheels. Set
# TORCH_INDEX_URL to a CPU wheel index where the default one serves CUDA builds.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests use the local PostgreSQL when one answers (CI sets DATABASE_URL itself).
PG_URL := postgres://postgres@127.0.0.1:5432/lorahub
PYTEST_ARGS ?=

.PHONY: run test fuzz bench lint fmt venv migrate seed worker web clean lock

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -c "import torch" 2>/dev/null || $(VPY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(VPY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The versions the Docker image installs: this environment's, of pyproject.toml's ranges.
lock: $(STAMP)
	$(VPY) deploy/lock.py > requirements.lock

migrate: $(STAMP)
	$(VPY) manage.py migrate --noinput

# The demo models are built offline: no model hub lookups, no library progress bars or
# warnings around our own lines.
seed: migrate
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONWARNINGS=ignore::UserWarning,ignore::FutureWarning \
		$(VPY) manage.py seed_demo

run: seed
	@echo ""
	@echo "  LoRA Hub is starting at http://$(HOST):$(PORT)/  (demo login: demo / demo-password)"
	@echo ""
	@# On exit stop the worker's main process only: it shuts its pool down itself (a pool
	@# child killed directly can die holding the task queue's lock and hang the worker).
	@# A second worker serves the fast lane ("Try it"), so a try never waits behind a job;
	@# a third imports and pushes, so a try never waits behind a transfer either.
	trap 'kill $$worker $$fast $$transfers 2>/dev/null; wait $$worker $$fast $$transfers' EXIT; \
	export COMPOSER_BASE_MODEL_ENDPOINT=http://$(HOST):$(PORT); \
	$(VENV)/bin/celery -A config worker -Q gpu,default --concurrency 1 --loglevel INFO & \
	worker=$$!; \
	$(VENV)/bin/celery -A config worker -Q fast -n fast@%h --concurrency 1 --loglevel INFO & \
	fast=$$!; \
	$(VENV)/bin/celery -A config worker -Q transfers -n transfers@%h --concurrency 2 --loglevel INFO & \
	transfers=$$!; \
	DEBUG=$${DEBUG:-1} $(VPY) manage.py runserver $(HOST):$(PORT)

test: $(STAMP)
	@url="$${DATABASE_URL:-}"; \
	if [ -z "$$url" ] && $(VPY) -c "import socket,sys; sys.exit(socket.socket().connect_ex(('127.0.0.1',5432)))" 2>/dev/null; then url=$(PG_URL); fi; \
	echo "tests on $${url:-SQLite}"; \
	DATABASE_URL="$$url" $(VENV)/bin/pytest $(PYTEST_ARGS)

# The parsers of hostile input under 125,000 generated inputs (25,000 per parser; make test
# runs 300 per parser).
fuzz: $(STAMP)
	FUZZ_EXAMPLES=25000 $(VENV)/bin/pytest tests/security/test_fuzz.py -q -p no:cacheprovider

bench: $(STAMP)
	$(VPY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var .pytest_cache
