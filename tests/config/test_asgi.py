"""The lean path of POST /api/v1/chat/completions (config/asgi.py): every answer — errors with
their envelope and headers, a whole answer, a stream — is the same as through Django's full
handler; no session, CSRF, auth or messages middleware runs for it; the admin, the schema
and Swagger UI still get the full stack. Driven through the real ASGI application with httpx's ASGI transport."""

import pytest
from asgiref.sync import async_to_sync
from django.test.utils import override_settings

import config.asgi
from chat.models import ChatItem
from tests.chat.completion_calls import ask
from tests.config.asgi_calls import URL, assert_same, call, full, lean

pytestmark = pytest.mark.usefixtures("keep_the_test_connection")


@pytest.fixture
def models(provider_models):
    return provider_models


# --- the same answers as the full stack ---------------------------------------------------


def test_the_lean_application_serves_the_chat_path_and_nothing_else():
    handler = config.asgi.application
    assert isinstance(handler, config.asgi.Router)
    assert isinstance(handler.lean, config.asgi.LeanHandler)
    assert config.asgi.LEAN_PATHS == {URL}


@pytest.mark.parametrize(
    "kwargs, status, status_text",
    [
        ({}, 401, "unAuthorization"),  # no key
        ({"headers": {"Authorization": "Bearer fastgpt-nope"}}, 401, None),  # unknown key
        ({"method": "GET"}, 405, None),
        ({"method": "PUT"}, 405, None),
    ],
)
def test_errors_before_the_key_answer_the_same_envelope_and_headers(db, kwargs, status, status_text):
    a, b = lean(body=ask("hi"), **kwargs), full(body=ask("hi"), **kwargs)
    assert a.status == status
    assert_same(a, b)
    assert {"code", "statusText", "message", "data", "error"} <= set(a.json())
    if status_text:
        assert a.json()["statusText"] == status_text
    if status == 401:
        assert a.headers["www-authenticate"].startswith("Bearer")
    if status == 405:
        assert a.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"raw": b"{not json"}, 400),
        ({"raw": b"[1, 2]"}, 400),  # not an object
        ({"body": {"messages": "nope"}}, 400),  # naming the field
        ({"body": ask("x" * 3000)}, 413),  # above the limit set below
        ({"body": ask("x" * 3000), "chunked": True}, 413),  # the same without Content-Length
        ({"body": ask("hi"), "chunked": True}, 200),  # a chunked body read like any other
    ],
)
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_bad_bodies_answer_the_same_envelope_and_headers(db, models, app_key, kwargs, status):
    a, b = lean(key=app_key, **kwargs), full(key=app_key, **kwargs)
    assert a.status == status
    assert_same(a, b, same_body=status != 200)
    if status == 413:
        assert a.json()["code"] == 413 and a.json()["statusText"] == "requestTooLarge"


def test_a_global_key_without_app_id_is_the_same_403(db, global_key):
    a, b = lean(key=global_key, body=ask("hi")), full(key=global_key, body=ask("hi"))
    assert a.status == 403
    assert_same(a, b)


@override_settings(API_KEY_RATE="1/minute")
def test_the_rate_limit_is_the_same_429_with_retry_after(db, app_key, monkeypatch):
    from types import SimpleNamespace

    from django.core.cache import cache

    # The limit counts per clock minute: all four calls in the middle of the same one.
    monkeypatch.setattr("keys.throttling.time", SimpleNamespace(time=lambda: 1_800_000_030.0))

    answers = []
    for application in (config.asgi.application, config.asgi.full_application):
        cache.clear()
        assert call(application, key=app_key, body=ask("one")).status == 200
        answers.append(call(application, key=app_key, body=ask("two")))
    a, b = answers
    assert a.status == 429 and a.json()["statusText"] == "tooManyRequests"
    assert a.headers["retry-after"] == "30"
    assert_same(a, b)


def test_a_provider_failure_is_the_same_502_and_is_stored(db, models, app_key):
    a = lean(key=app_key, body=ask("hi [[fail:503]]"))
    b = full(key=app_key, body=ask("hi [[fail:503]]"))
    assert a.status == 502
    assert_same(a, b)
    assert a.json()["error"]["message"] and ChatItem.objects.filter(obj="AI").exclude(error_msg="").count() == 2


def test_a_whole_answer_has_the_same_headers_and_shape(db, models, app_key):
    a, b = lean(key=app_key, body=ask("hello there")), full(key=app_key, body=ask("hello there"))
    assert a.status == 200
    assert_same(a, b, same_body=False)
    assert a.headers["x-frame-options"] == "DENY"  # the inline clickjacking middleware
    assert a.headers["x-content-type-options"] == "nosniff"  # the inline security middleware
    assert set(a.json()) == set(b.json())
    assert a.json()["choices"][0]["message"]["content"] == b.json()["choices"][0]["message"]["content"]


def test_a_stream_has_the_same_headers_and_events(db, models, app_key):
    a = lean(key=app_key, body=ask("one two three", stream=True))
    b = full(key=app_key, body=ask("one two three", stream=True))
    assert a.status == 200
    assert_same(a, b, same_body=False)
    assert a.headers["content-type"].startswith("text/event-stream")
    assert a.text.rstrip().endswith("data: [DONE]")
    assert a.text.count("data: ") == b.text.count("data: ")


def test_a_crash_in_the_view_is_the_500_envelope(db, app_key, monkeypatch):
    import chat.completions.views

    def crash(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat.completions.views, "prepare_turn", crash)
    a, b = lean(key=app_key, body=ask("hi")), full(key=app_key, body=ask("hi"))
    assert a.status == 500
    assert_same(a, b)
    assert "boom" not in a.text


# --- which middlewares run ----------------------------------------------------------------


def test_no_session_or_csrf_middleware_runs_for_chat_completions(db, models, app_key, middleware_calls):
    assert lean(key=app_key, body=ask("hi")).status == 200
    assert lean(key=app_key, body=ask("hi", stream=True)).status == 200
    assert lean(body=ask("hi")).status == 401
    assert middleware_calls == []
    # The same request through the full stack does run them (the spy works).
    assert full(key=app_key, body=ask("hi")).status == 200
    assert "SessionMiddleware.process_request" in middleware_calls
    assert "CsrfViewMiddleware.process_request" in middleware_calls


def test_the_lean_chain_is_the_settings_chain_without_the_skipped_middlewares(settings):
    chain = config.asgi.lean_middleware()
    assert chain == [path for path in settings.MIDDLEWARE if path not in config.asgi.LEAN_SKIPPED]
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in chain
    assert "config.middleware.ApiErrorMiddleware" in chain and "config.middleware.ChunkedBodyMiddleware" in chain


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/core/dataset/nope"])
def test_the_schema_swagger_and_unknown_api_paths_get_the_full_stack(db, middleware_calls, path):
    # (The key-authenticated endpoints take the lean path too: tests/config/test_asgi_key_api.py.)
    answer = lean(method="GET", path=path, headers={"Content-Type": "text/html"})
    assert answer.status == (404 if path.endswith("nope") else 200)
    assert "SessionMiddleware.process_request" in middleware_calls
    assert "CsrfViewMiddleware.process_request" in middleware_calls


def test_a_trailing_slash_is_not_the_lean_path(db, middleware_calls):
    answer = lean(path=URL + "/", body=ask("hi"))
    assert answer.status == 404 and answer.json()["code"] == 404
    assert "SessionMiddleware.process_request" in middleware_calls


def test_the_admin_gets_the_full_stack_with_its_csrf_cookie(db, middleware_calls):
    answer = lean(method="GET", path="/admin/login/", headers={"Content-Type": "text/html"})
    assert answer.status == 200
    assert "csrftoken=" in answer.headers.get("set-cookie", "")
    assert "CsrfViewMiddleware.process_request" in middleware_calls


def test_lifespan_goes_to_djangos_handler_as_before():
    async def run():
        async def receive():
            return {"type": "lifespan.startup"}

        async def send(message):
            pass

        await config.asgi.application({"type": "lifespan"}, receive, send)

    with pytest.raises(ValueError, match="lifespan"):
        async_to_sync(run)()


class SyncOnlyHeader:
    """A plain sync middleware (neither sync_capable nor async_capable declared)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Sync-Only"] = "ran"
        return response


def test_a_sync_only_middleware_in_settings_runs_on_the_lean_path_too(db, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.config.test_asgi.SyncOnlyHeader"]
    answer = call(config.asgi.LeanHandler(), body=ask("hi"))
    assert answer.status == 401 and answer.headers["x-sync-only"] == "ran"
