"""Fixtures of the config tests: the ASGI application called in the test's thread, a spy
on the session and CSRF middlewares, and the request signals' threads."""

import threading

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.middleware.csrf import CsrfViewMiddleware


@pytest.fixture
def keep_the_test_connection():
    """The application runs in the test's thread here (async_to_sync) and closes the thread's
    database connections at each request's end — the test's own, inside its transaction.
    Django's test client does the same as this for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def middleware_calls(monkeypatch):
    """Names of the session and CSRF middleware hooks that ran."""
    calls = []
    for cls, hook in ((SessionMiddleware, "process_request"), (SessionMiddleware, "process_response"),
                      (CsrfViewMiddleware, "process_request"),
                      (CsrfViewMiddleware, "process_response")):
        original = getattr(cls, hook)

        def spy(self, *args, _original=original, _name=f"{cls.__name__}.{hook}"):
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(cls, hook, spy)
    return calls


@pytest.fixture
def signal_threads():
    """(signal, thread name) for each request_started / request_finished sent."""
    sent = []

    def started(**kwargs):
        sent.append(("started", threading.current_thread().name))

    def finished(**kwargs):
        sent.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    yield sent
    request_started.disconnect(started)
    request_finished.disconnect(finished)
