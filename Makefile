# PairUni: the handful of targets a researcher needs. Everything runs inside .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test test-fast lint format demo demo-unirl mutation clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest tests

# The quick loop while developing: everything but the `slow` end-to-end tests (CI runs `make test`).
test-fast: install
	$(PY) -m pytest tests -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# `make demo BACKBONE=lumina_dimoo`: the same demo on a toy Lumina-DiMOO (docs/lumina_dimoo.md).
BACKBONE ?= janus
demo: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH DEMO_BACKBONE=$(BACKBONE) bash scripts/demo.sh

# UniRL GRPO on the toy world: prompts with questions, no images (README "UniRL mode").
demo-unirl: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/demo_unirl.sh

# Mutation check of the pure math with the fast unit tests ([tool.mutmut] in pyproject.toml). Slow; not run in CI.
# mutmut is installed here only (not in requirements.txt): it is a developer tool.
mutation: install
	$(PY) -m pip install --quiet mutmut==3.8.1
	$(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results

clean:
	rm -rf demo_output demo_unirl_output .pytest_cache .ruff_cache mutants
