# bci_app — the two set-up commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow lint bench clean install

# Create the virtualenv and install: torch first (a CPU build; any other spec pulls CUDA),
# then the app with the constraints that keep the pins (see constraints.txt).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24" "setuptools>=77.0.3,<81" wheel
	$(PIP) install -c constraints.txt "torch==2.13.0"
	$(PIP) install -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Start the app on its embedded default source (BrainFlow synthetic board, no hardware).
run: $(STAMP)
	$(VENV)/bin/bci-app

## Run the whole default test suite headless (Qt offscreen, LSL on loopback).
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## The heavier checks (long soak, full-size evaluations).
test-slow: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
