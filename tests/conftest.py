"""Fixtures shared by every test: teams, apps, keys and API clients that send them."""

import pytest
from rest_framework.test import APIClient

from chat.models import App
from keys import services
from keys.models import Team


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


class IssuedKey:
    """A key row and its plaintext, as a test (playing the client) would hold them."""

    def __init__(self, row, plaintext):
        self.row, self.plaintext = row, plaintext

    @property
    def header(self) -> str:
        return f"Bearer {self.plaintext}"


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
