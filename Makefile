PYTHON ?= python3
VENV := .venv
TASKS_VENV := .venv-tasks
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
PROVIDER ?= litellm-gemini

.PHONY: setup tf-schema demo lint test test-steps test-faults test-badinput stack bench clean

setup: $(VENV)/.installed $(TASKS_VENV)/.installed $(CHECKOV_VENV)/.installed tf-schema

$(VENV)/.installed: requirements.txt requirements-dev.txt functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(TASKS_VENV)/.installed: dev/requirements-tasks-emulator.txt
	$(PYTHON) -m venv $(TASKS_VENV)
	$(TASKS_VENV)/bin/pip install --quiet --upgrade pip
	$(TASKS_VENV)/bin/pip install --quiet -r dev/requirements-tasks-emulator.txt
	touch $@

# checkov (offline Terraform checks) in its own venv: its dependencies clash with the app's.
$(CHECKOV_VENV)/.installed: infra/requirements-checks.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r infra/requirements-checks.txt
	touch $@

# Provider schemas for the offline Terraform check (tests/infra/test_provider_schema.py): the npm
# packages pinned in infra/provider-schemas.txt, fetched once with `npm pack` (dev/tf-schema-fetch.sh,
# about 65 MB) into .cache/tf-schema/, integrity-checked, and derived into compact JSON schemas there.
# Once cached this reads them and returns in about a second; only a changed pin or dev/tf_schema.py
# derives again (from the cached tarballs).
tf-schema: $(VENV)/.installed
	$(PY) -m dev.tf_schema

demo: setup
	PYTHONPATH=functions:. $(PY) -m dev.demo --provider $(PROVIDER)

# Static checks (configured in pyproject.toml): ruff, mypy on functions/, and the import
# layering contracts. `make test` runs them first; Cloud Build's `lint` step runs this target.
LINT_PATHS := functions tests dev bench

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy
	PYTHONPATH=functions $(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest

test-steps: $(VENV)/.installed
	$(PY) -m pytest tests/steps -q

test-faults: setup
	$(PY) -m pytest -m faults

test-badinput: setup
	$(PY) -m pytest -m badinput

bench: setup
	PYTHONPATH=functions:. $(PY) -m bench.run

stack: setup
	PYTHONPATH=functions:. $(PY) -m dev.stack -v

clean:
	rm -rf $(VENV) $(TASKS_VENV) $(CHECKOV_VENV) out .stack .cache/tf-schema
