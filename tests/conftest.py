"""Fixtures shared by every test: teams, apps, keys and API clients that send them; a fake
OpenAI-compatible provider (tests/fake_provider.py) and a live server process that calls it."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests
from rest_framework.test import APIClient

from chat.models import App
from keys import services
from keys.models import Team
from tests.issued_keys import IssuedKey


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def team(db) -> Team:
    return Team.objects.create(name="acme")


@pytest.fixture
def other_team(db) -> Team:
    return Team.objects.create(name="globex")


@pytest.fixture
def app(team) -> App:
    return App.objects.create(team=team, name="Support bot")


@pytest.fixture
def other_app(other_team) -> App:
    return App.objects.create(team=other_team, name="Their bot")


@pytest.fixture
def make_key(db):
    def make(team, app=None, **fields) -> IssuedKey:
        return IssuedKey(*services.create_api_key(team=team, app=app, **fields))

    return make


@pytest.fixture
def global_key(make_key, team) -> IssuedKey:
    return make_key(team, name="global")


@pytest.fixture
def app_key(make_key, team, app) -> IssuedKey:
    return make_key(team, app, name="app")


@pytest.fixture
def other_global_key(make_key, other_team) -> IssuedKey:
    return make_key(other_team, name="other global")


@pytest.fixture
def client_for():
    """An APIClient sending ``key`` as Bearer credentials."""

    def make(key: IssuedKey | None) -> APIClient:
        client = APIClient()
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=key.header)
        return client

    return make


@pytest.fixture
def api(client_for, global_key) -> APIClient:
    """A client holding the team's global key."""
    return client_for(global_key)


class Clock:
    """A settable `timezone.now()`: tests move time instead of sleeping."""

    def __init__(self, start):
        self.now = start

    def advance(self, **delta):
        from datetime import timedelta

        self.now += timedelta(**delta)

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    from django.utils import timezone

    fake = Clock(timezone.now())
    monkeypatch.setattr(timezone, "now", fake)
    return fake


# --- the database, visible to other processes ---------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """SQLite's test database in a file rather than in memory, so that a server subprocess
    (`live_server_url`) can open the same database. SQLITE_TEST_NAME, when set, still wins."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not database.get("TEST", {}).get("NAME"):
        folder = tmp_path_factory.mktemp("sqlite")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL (as django-environ reads it) for the database `settings_dict` describes."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    # Query parameters become OPTIONS again (e.g. pgserver's `host=/socket/dir`).
    options = {k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if isinstance(v, (str, int))}
    host, port = settings_dict.get("HOST") or "", settings_dict.get("PORT") or ""
    if host.startswith("/"):  # a unix-socket directory cannot go in the URL's host part
        options["host"], host = host, ""
        if port:
            options["port"], port = port, ""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    netloc = f"{user}:{password}@{host}" + (f":{port}" if port else "")
    query = f"?{urlencode(options)}" if options else ""
    return f"postgresql://{netloc}/{quote(settings_dict['NAME'], safe='')}{query}"


# --- the fake model provider --------------------------------------------------------------

FAKE_PROVIDER_KEY = "test-provider-key"


@pytest.fixture(scope="session")
def _fake_provider_server():
    from tests.fake_provider import FakeProvider

    provider = FakeProvider(api_key=FAKE_PROVIDER_KEY)
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def fake_provider(_fake_provider_server):
    """The OpenAI-compatible fake provider (one per session), its recorded requests cleared.

    `fake_provider.base_url` is its OpenAI base URL, `fake_provider.requests` what it received.
    Steer an answer with directives in the last user message, e.g. "hi [[fail:500]]"."""
    _fake_provider_server.reset()
    return _fake_provider_server


def provider_models_json(provider) -> str:
    """AI_MODELS declaring `fake-llm`, `fake-embedding` (64 dimensions) and `fake-rerank` at `provider`."""
    common = {"baseUrl": provider.base_url, "apiKey": provider.api_key}
    return json.dumps(
        [
            {"name": "fake-llm", "type": "llm", "maxContext": 16000, "maxResponse": 4000, **common},
            {"name": "fake-embedding", "type": "embedding", "maxContext": 8000, "dimensions": 64, **common},
            {"name": "fake-rerank", "type": "rerank", "timeout": 10, **common},
        ]
    )


@pytest.fixture
def provider_models(settings, fake_provider):
    """Point the server's models at the fake provider (`fake-llm` is the default LLM).

    providers.registry caches parsed declarations keyed on the raw setting strings, so the new
    value takes effect at once and the old one comes back when `settings` is restored."""
    settings.AI_MODELS = provider_models_json(fake_provider)
    settings.AI_MODELS_FILE = ""
    settings.DEFAULT_LLM_MODEL = "fake-llm"
    return fake_provider


# --- a live server process ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, _fake_provider_server, tmp_path_factory):
    """Base URL (http://127.0.0.1:PORT) of `uvicorn config.asgi:application` run as a subprocess
    on the test database, its models at the fake provider, with no rate limit.

    Tests using it must also use `transactional_db`: rows they create are then committed, so
    the subprocess sees them (and the tables are flushed after each test)."""
    from django.db import connection

    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CONN_MAX_AGE": "0",  # no idle connection may outlive a request (the test db is dropped)
        "AI_MODELS": provider_models_json(_fake_provider_server),
        "AI_MODELS_FILE": "",
        "DEFAULT_LLM_MODEL": "fake-llm",
        "API_KEY_RATE": "",
    }
    folder = tmp_path_factory.mktemp("live-server")
    log_path = folder / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application",
               "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
    # The background worker beside it, as `make run` starts one: files and links are read and
    # chunks embedded there ([API] for the knowledge-base e2e tests).
    worker_command = [sys.executable, "manage.py", "db_worker", "--interval", "0.2",
                      "--no-startup-delay", "--no-reload"]
    root = Path(__file__).resolve().parent.parent
    # Files, not pipes: a full pipe would block the process.
    with open(log_path, "wb") as log, open(folder / "worker.log", "wb") as worker_log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        worker = subprocess.Popen(worker_command, cwd=root, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log_path)
        yield url
    finally:
        for child in (worker, process):
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_until_serving(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{url}/api/schema/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")[-4000:]
    pytest.fail(f"the live server did not start (exit code {process.poll()}); its log:\n{log}")
