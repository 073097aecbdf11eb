PYTHON ?= python3
VENV := .venv
TASKS_VENV := .venv-tasks
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
PROVIDER ?= litellm-gemini

.PHONY: setup system-packages tf-schema demo lint test test-steps test-faults test-badinput stack bench clean

setup: system-packages $(VENV)/.installed $(TASKS_VENV)/.installed $(CHECKOV_VENV)/.installed tf-schema

# Debian packages the tests use: chromium + chromium-driver (the console test drives headless
# Chromium, tests/integration/chromium.py) and jq (the deploy smoke test). Each only when missing:
# as root, one apt-get line installs them; otherwise it prints what to install and setup goes on
# (the test that needs one then fails saying so).
system-packages:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing=" chromium chromium-driver"; \
	command -v jq >/dev/null 2>&1 || missing="$$missing jq"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "system-packages: installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
		echo "system-packages: missing$$missing; install with: sudo apt-get update && sudo apt-get install -y$$missing"; \
	fi

# The `veorelay` command and Python client (clients/python, a package of its own) go in too,
# editable: .venv/bin/veorelay runs the tree's code.
$(VENV)/.installed: requirements.txt requirements-dev.txt functions/requirements.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet -e clients/python
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

# Static checks (configured in pyproject.toml): ruff, mypy on functions/ and clients/python, and the import
# layering contracts. `make test` runs them first; Cloud Build's `lint` step runs this target.
LINT_PATHS := functions tests dev bench clients

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
