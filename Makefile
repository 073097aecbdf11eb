PYTHON ?= python3
VENV := .venv
TASKS_VENV := .venv-tasks
PY := $(VENV)/bin/python
PROVIDER ?= litellm-gemini

.PHONY: setup demo test stack bench clean

setup: $(VENV)/.installed $(TASKS_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(TASKS_VENV)/.installed: dev/requirements-tasks-emulator.txt
	$(PYTHON) -m venv $(TASKS_VENV)
	$(TASKS_VENV)/bin/pip install --quiet --upgrade pip
	$(TASKS_VENV)/bin/pip install --quiet -r dev/requirements-tasks-emulator.txt
	touch $@

demo: setup
	PYTHONPATH=functions:. $(PY) -m dev.demo --provider $(PROVIDER)

test: setup
	$(PY) -m pytest

stack: setup
	PYTHONPATH=functions:. $(PY) -m dev.stack -v

clean:
	rm -rf $(VENV) $(TASKS_VENV) out .stack
