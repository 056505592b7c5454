# Turnout — each target does its own setup on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two stamps: what the gateway needs to run, and that plus the test and lint tools.
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test check install pool sandbox bench bench-free clean

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "could not create $(VENV): on Debian/Ubuntu, apt install python3-venv" >&2; exit 1; }

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

## Run the gateway on $TURNOUT_HOST:$TURNOUT_PORT (default 127.0.0.1:8080); installs only what it needs to run.
run: $(RUN_STAMP)
	$(BIN)/turnout serve

## Lint and type-check the package (ruff, mypy --strict); .ci/run runs it before the tests.
check: $(STAMP)
	$(BIN)/ruff check turnout
	$(BIN)/mypy

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Print the pool the current catalogue gives (turnout pool; ARGS="--format json", ...).
pool: $(RUN_STAMP)
	$(BIN)/turnout pool $(ARGS)

## Run the sandbox OpenRouter alone on 127.0.0.1:8090.
sandbox: $(RUN_STAMP)
	$(BIN)/turnout sandbox

## The benchmark of issue 6 (< 10 min; needs apt for nginx and wrk). BENCH_ARGS=--smoke for a 30 s check.
bench: $(STAMP)
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache data
