# gmail-crm-sync: developer and CI entry points. See README.md and docs/LOCAL_STACK.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first Python 3.11+ that actually runs (pyenv shims exist for versions that are not active).
PYTHON ?= $(shell for p in python3 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; \
	done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv test lint up demo bench fuzz soak chaos

help:
	@echo "make venv   create $(VENV) from pyproject.toml (again when pyproject.toml changes)"
	@echo "make test   ruff, mypy, then the whole pytest suite (starts the local stack itself)"
	@echo "make lint   ruff, mypy, shellcheck"
	@echo "make up     run the local stack and its developer console in the foreground; Ctrl-C stops it"
	@echo "make demo   the end-to-end demo against a local stack"
	@echo "make bench  run the benchmarks in scripts/bench_*.py"
	@echo "make fuzz   fuzz every HTTP operation of openapi.yaml (10,500 cases, fixed seed; scripts/fuzz.py)"
	@echo "make soak   time-compressed soak: MAILBOXES=300 LIFETIMES=2 LIFETIME_SECONDS=120 (docs/SCALE.md)"
	@echo "make chaos  chaos at scale: CHAOS_MAILBOXES=100 CHAOS_MESSAGES=10000, faults and killed workers"

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required: none of python3, python3.12, python3.11 is; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + " at " + sys.executable + "); set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.txt -e '.[dev]'
	@touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/shellcheck .ci/run scripts/ensure_chromium.sh
	@if [ -f deploy.sh ]; then echo "$(BIN)/shellcheck deploy.sh"; $(BIN)/shellcheck deploy.sh; fi

test: lint
	@scripts/ensure_chromium.sh
	$(BIN)/pytest

up: venv
	$(BIN)/python -m devstack up

demo: venv
	$(BIN)/python -m devstack.demo

bench: venv
	@set -e; found=0; for script in scripts/bench_*.py; do \
	  [ -e "$$script" ] || continue; found=1; \
	  echo "== $$script"; $(BIN)/python "$$script"; \
	done; [ "$$found" = 1 ] || echo "no scripts/bench_*.py yet"

fuzz: venv
	$(BIN)/python scripts/fuzz.py $(FUZZ_ARGS)

# Scale (issue 11, docs/SCALE.md). Defaults finish in about 15 minutes on a 2-core machine;
# the figures in docs/SCALE.md come from MAILBOXES=1000.
MAILBOXES ?= 300
LIFETIMES ?= 2
LIFETIME_SECONDS ?= 120
soak: venv
	$(BIN)/python scripts/soak.py --mailboxes $(MAILBOXES) --lifetimes $(LIFETIMES) --lifetime-seconds $(LIFETIME_SECONDS)

CHAOS_MAILBOXES ?= 100
CHAOS_MESSAGES ?= 10000
chaos: venv
	$(BIN)/python scripts/chaos.py --mailboxes $(CHAOS_MAILBOXES) --messages $(CHAOS_MESSAGES)
