# make run   — start the server on the embedded default (SQLite, offline models), printing demo keys
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

.PHONY: run test test-sqlite test-postgres install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo --base-url http://$(HOST):$(PORT)
	@echo "Admin: http://$(HOST):$(PORT)/admin/  (make a login first: $(PY) manage.py createsuperuser)"
	@echo "API docs: http://$(HOST):$(PORT)/api/docs/"
	$(PY) -m uvicorn config.asgi:application --host $(HOST) --port $(PORT) --lifespan off \
		--forwarded-allow-ips '$(FORWARDED_ALLOW_IPS)'


test: test-sqlite test-postgres

test-sqlite: $(STAMP)
	$(PY) -m pytest

test-postgres: $(STAMP)
	$(PY) -m tests.with_postgres $(PY) -m pytest

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* .pytest_cache
