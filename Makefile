# make run   — start the server and two background workers on the embedded default (SQLite, offline
#              models), printing demo keys
# make serve — production-style: migrate, then `manage.py serve` with WORKERS processes (rate
#              limits shared through the database unless CACHE_URL says otherwise) and a worker
# make test  — the whole test suite, on SQLite and then on PostgreSQL (+pgvector)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed-stamp
# Proxies whose X-Forwarded-For/-Proto are believed (comma-separated IPs or networks). Empty:
# none, so a client cannot set its own address (uvicorn alone would trust 127.0.0.1).
FORWARDED_ALLOW_IPS ?=

.PHONY: run serve test test-sqlite test-postgres install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The server and TRAINING_WORKERS background workers (knowledge-base training runs there: two share a
# large upload's batches, measured +15 % chunks/s on SQLite and +50 % on PostgreSQL on 2 cores,
# docs/benchmarks.md); they are stopped when the server exits. Production runs `manage.py
# db_worker` on its own (docs/production.md).
TRAINING_WORKERS ?= 2
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo --base-url http://$(HOST):$(PORT)
	@echo "Admin: http://$(HOST):$(PORT)/admin/  (make a login first: $(PY) manage.py createsuperuser)"
	@workers=""; for i in $$(seq $(TRAINING_WORKERS)); do \
		$(PY) manage.py db_worker --no-reload --interval 0.5 --verbosity 0 & workers="$$workers $$!"; done; \
	trap 'kill $$workers 2>/dev/null; wait $$workers 2>/dev/null' EXIT INT TERM; \
	echo "$(TRAINING_WORKERS) background workers started (pids$$workers): train knowledge bases"; \
	$(PY) -m uvicorn config.asgi:application --host $(HOST) --port $(PORT) --lifespan off \
		--forwarded-allow-ips '$(FORWARDED_ALLOW_IPS)'

# Several server processes (docs/production.md): `manage.py serve` checks the cache (a key's
# rate limit must hold across them) and runs uvicorn --workers; one background worker beside.
WORKERS ?= 2
serve: $(STAMP)
	$(PY) manage.py migrate --noinput
	@$(PY) manage.py db_worker --no-reload --interval 0.5 --verbosity 0 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	echo "background worker started (pid $$worker): trains knowledge bases"; \
	$(PY) manage.py serve --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--forwarded-allow-ips '$(FORWARDED_ALLOW_IPS)'

test: test-sqlite test-postgres

test-sqlite: $(STAMP)
	$(PY) -m pytest

test-postgres: $(STAMP)
	$(PY) -m tests.with_postgres $(PY) -m pytest

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* .pytest_cache
