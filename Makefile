# Thin wrappers. `make run` and `make test` work on a fresh machine with Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements

.PHONY: run test bench load lint venv db-upgrade db-migrate db-check clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: venv  ## the service with its demo: SQLite, embedded redis-server, WeChat sandbox
	$(BIN)/python -m app.launcher

test: venv  ## the whole suite (starts its own PostgreSQL, redis-server and sandbox)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv  ## benchmarks, as ratios against baselines measured in the same run
	$(BIN)/python -m tests.benchmarks

load: venv  ## mixed Locust load on gunicorn, then the money checked; LOAD_ARGS="--users 20"
	$(BIN)/python -m tests.load $(LOAD_ARGS)

lint: venv
	$(BIN)/ruff check .

db-upgrade: venv
	$(BIN)/flask --app wsgi db upgrade

db-migrate: venv  ## make db-migrate m="what changed"
	$(BIN)/flask --app wsgi db migrate -m "$(m)"

db-check: venv
	$(BIN)/flask --app wsgi db check

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
