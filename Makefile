# Turnout — each target does its own setup on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test check install pool sandbox bench bench-free clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Run the gateway on $TURNOUT_HOST:$TURNOUT_PORT (default 127.0.0.1:8080).
run: $(STAMP)
	$(BIN)/turnout serve

## Lint and type-check the package (ruff, mypy --strict); .ci/run runs it before the tests.
check: $(STAMP)
	$(BIN)/ruff check turnout
	$(BIN)/mypy

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

pool: $(STAMP)
	$(BIN)/turnout pool

sandbox: $(STAMP)
	$(BIN)/turnout sandbox

## The benchmark of issue 6 (< 10 min; needs apt for nginx and wrk). BENCH_ARGS=--smoke for a 30 s check.
bench: $(STAMP)
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache data
