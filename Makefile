# rfqdesk: `make run` starts the service on http://127.0.0.1:8000, `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: install run serve migrate test test-slow test-all audit lint demo openapi bench clean

$(BIN)/rfqdesk: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(BIN)/rfqdesk

install: $(BIN)/rfqdesk  ## build .venv with the service and its dev tools

migrate: install  ## apply the Alembic migrations to RFQDESK_DATABASE_URL (default ./var/rfqdesk.db)
	$(BIN)/rfqdesk db upgrade

DEALERS ?= 8
DEALERS_PORT ?= 9100

run: migrate  ## migrate, start 8 simulated dealers, serve with the embedded defaults
	@# the dealers stop with the service, however it ends (a trap that ran `kill 0` on TERM
	@# signalled its own shell again, recursing until bash crashed)
	@$(BIN)/rfqdesk sim dealers --count $(DEALERS) --port $(DEALERS_PORT) \
	    --desk-url http://$(HOST):$(PORT) & dealers=$$!; \
	trap 'kill $$dealers 2>/dev/null; wait $$dealers 2>/dev/null' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(BIN)/rfqdesk serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

serve: migrate  ## the service alone, without simulated dealers
	$(BIN)/rfqdesk serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: install  ## the default suite (slow suites excluded)
	$(BIN)/pytest -q

test-slow: install  ## the slow suites alone: faults, long fuzzing, model quality
	$(BIN)/pytest -q -m slow

test-all: install  ## everything, slow suites included
	$(BIN)/pytest -q -m ''

audit: install  ## known vulnerabilities in the installed dependencies (pip-audit + PyPI fallback)
	$(BIN)/python tools/audit_deps.py

lint: install  ## ruff, mypy and the architecture contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests ml bench tools migrations/env.py
	$(BIN)/mypy app ml tools
	$(BIN)/lint-imports

demo: install  ## post example RFQs to the service started by `make run`
	$(BIN)/rfqdesk demo --url http://$(HOST):$(PORT)

openapi: install  ## regenerate openapi/openapi.json
	$(BIN)/rfqdesk openapi --out openapi/openapi.json

bench: install  ## the benchmarks under bench/
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
	@echo "== bench/bench_load.py with 4 simulated dealers answering at once"
	$(BIN)/python bench/bench_load.py --dealers 4 --paced 10 25

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
