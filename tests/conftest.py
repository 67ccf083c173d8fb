"""Fixtures shared by every test: teams, apps, keys and API clients that send them; a fake
OpenAI-compatible provider (tests/fake_provider.py) and a live server process that calls it."""


from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from chat.models import App
from keys import services
from keys.models import Team
from tests.issued_keys import IssuedKey
from tests.live_servers import provider_models_json, uvicorn_server


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the cache; each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fixed_clock(monkeypatch):
    """The rate limiter's clock held 30 s into a window: no window ends during the test. (At
    the real time a minute turning between a test's requests started the count again, and a
    limit test on a slow machine saw 200 where it waited for 429.)"""
    from keys import throttling

    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: 1_000_030.0))


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


@pytest.fixture(scope="session")
def live_app_server(django_db_setup, _fake_provider_server, tmp_path_factory):
    """`uvicorn config.asgi:application` run as a subprocess on the test database, its models at
    the fake provider, with no rate limit, and a `db_worker` beside it as `make run` starts one
    (tests/live_servers.py): its `url`, and its and its worker's logs for failure messages.

    Tests using it must also use `transactional_db`: rows they create are then committed, so
    the subprocess sees them (and the tables are flushed after each test)."""
    with uvicorn_server(_fake_provider_server, tmp_path_factory.mktemp("live-server"), with_worker=True) as server:
        yield server


@pytest.fixture(scope="session")
def live_server_url(live_app_server):
    """Base URL (http://127.0.0.1:PORT) of the live server (`live_app_server`)."""
    return live_app_server.url
