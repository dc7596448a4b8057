# Linkage — the two commands: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run run-distributed test test-all install install-dev lint typecheck bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# No line per request unless asked: `make run ACCESS_LOG=true`; JSON logs: LINKAGE_LOG_FORMAT=json
ACCESS_LOG ?= false
run: install
	LINKAGE_ACCESS_LOG=$(ACCESS_LOG) $(BIN)/linkage serve --host $(HOST) --port $(PORT) --demo

# Distributed mode on this machine: Tansu broker, relay, faust worker, two hubs (PORT, PORT+1),
# demo feeds; PostgreSQL and Redis from LINKAGE_POSTGRES_DSN / LINKAGE_REDIS_URL. Access log as for `run`.
run-distributed: install-dev
	LINKAGE_ACCESS_LOG=$(ACCESS_LOG) $(BIN)/linkage up --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy

# The slow scale tests (marked `slow`: minutes each) run under CI=true (.ci/run) and in `make test-all`;
# a plain `make test` leaves them out to stay fast.
SLOW := $(if $(filter true 1 yes,$(CI)),,-m "not slow")
test: install-dev lint typecheck
	$(BIN)/python -m pytest -q -ra $(SLOW)

test-all: install-dev lint typecheck
	$(BIN)/python -m pytest -q -ra

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
