"""The lean path of the key-authenticated API (config/asgi.py `key_api_paths`): every
/api endpoint authenticated by API key only answers as through Django's full handler — errors
with their envelope and headers (401, 403, 404, 405, 400, 413, 415, 429, 500), successes —
with no session or CSRF middleware run; the schema, Swagger UI, an unknown /api path and the
admin keep the full stack. Driven through the real ASGI application with httpx's transport."""

import asyncio
import threading

import httpx
import pytest
from django.test.utils import override_settings

import config.asgi
from tests.config.asgi_calls import assert_same, call, full, lean
from tests.datasets.search.helpers import SEARCH_TEST, add_chunk, make_collection, make_dataset

pytestmark = pytest.mark.usefixtures("keep_the_test_connection")

LIST = "/api/core/dataset/list"
HISTORIES = "/api/core/chat/history/getHistories"


@pytest.fixture
def kb(team):
    dataset = make_dataset(team, "Help center")
    collection = make_collection(dataset, "help.md")
    add_chunk(collection, "How to reset a forgotten password: open Settings and click Reset password.")
    add_chunk(collection, "Invoices are emailed on the first day of each month.", chunk_index=1)
    return dataset


def both(**kwargs):
    return lean(**kwargs), full(**kwargs)


# --- which paths --------------------------------------------------------------------------


def test_the_key_authenticated_endpoints_take_the_lean_path():
    paths = config.asgi.application.paths
    assert {SEARCH_TEST, LIST, HISTORIES, "/api/core/dataset/data/pushData",
            "/api/core/dataset/collection/create/localFile", "/api/v1/chat/completions"} <= paths
    for path in ("/api/schema/", "/api/docs/", "/api/", "/admin/", "/admin/login/", "/", SEARCH_TEST + "/"):
        assert path not in paths


@override_settings(ROOT_URLCONF="tests.config.key_api_urls")
def test_only_drf_views_authenticated_by_api_key_alone_count():
    # Not: a view that also accepts a session (SessionAuthentication enforces CSRF, which the
    # lean path skips), one without authentication (the schema's), a plain Django view, paths
    # that are not exact (converters, regexes) and paths outside /api/.
    assert config.asgi.key_api_paths() == {"/api/key", "/api/default", "/api/nested/deep"}


# --- the same answers as the full stack ---------------------------------------------------


@pytest.mark.parametrize("path", [SEARCH_TEST, LIST, HISTORIES])
@pytest.mark.parametrize(
    "keyed, kwargs, status",
    [
        (False, {}, 401),  # no key
        (False, {"headers": {"Authorization": "Bearer fastgpt-nope"}}, 401),  # unknown key
        (True, {"method": "GET"}, 405),  # (authentication comes first in DRF)
        (True, {"method": "PUT"}, 405),
    ],
)
def test_errors_answer_the_same_envelope_and_headers(db, global_key, path, keyed, kwargs, status):
    a, b = both(path=path, body={"text": "hi"}, key=global_key if keyed else None, **kwargs)
    assert a.status == status
    assert_same(a, b)
    assert set(a.json()) == {"code", "statusText", "message", "data"}
    if status == 401:
        assert a.headers["www-authenticate"].startswith("Bearer")
    if status == 405:
        assert a.headers["allow"] == "POST, OPTIONS"


def test_an_app_key_is_the_same_403(db, app_key, kb):
    a, b = both(key=app_key, path=SEARCH_TEST, body={"datasetId": kb.id, "text": "password"})
    assert a.status == 403
    assert_same(a, b)


def test_another_teams_dataset_is_the_same_404(db, other_global_key, kb):
    a, b = both(key=other_global_key, path=SEARCH_TEST, body={"datasetId": kb.id, "text": "password"})
    assert a.status == 404
    assert_same(a, b)


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"raw": b"{not json"}, 400),
        ({"body": {"text": "hi"}}, 400),  # no datasetId: naming the field
        ({"body": {"text": "x" * 3000}}, 413),  # above the limit set below
        ({"body": {"text": "x" * 3000}, "chunked": True}, 413),  # the same without Content-Length
        ({"raw": b"text=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
    ],
)
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_bad_bodies_answer_the_same_envelope_and_headers(db, global_key, kwargs, status):
    a, b = both(key=global_key, path=SEARCH_TEST, **kwargs)
    assert a.status == status
    assert_same(a, b)
    assert a.json()["code"] == status


@override_settings(API_KEY_RATE="1/minute")
def test_the_rate_limit_is_the_same_429_with_retry_after(db, global_key, kb, monkeypatch):
    from types import SimpleNamespace

    from django.core.cache import cache

    monkeypatch.setattr("keys.throttling.time", SimpleNamespace(time=lambda: 1_800_000_030.0))
    body = {"datasetId": kb.id, "text": "password"}
    answers = []
    for application in (config.asgi.application, config.asgi.full_application):
        cache.clear()
        assert call(application, key=global_key, path=SEARCH_TEST, body=body).status == 200
        answers.append(call(application, key=global_key, path=SEARCH_TEST, body=body))
    a, b = answers
    assert a.status == 429 and a.headers["retry-after"] == "30"
    assert_same(a, b)


def test_a_crash_in_the_view_is_the_same_500_envelope(db, global_key, kb, monkeypatch):
    import datasets.views.search

    def crash(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(datasets.views.search, "search_test", crash)
    a, b = both(key=global_key, path=SEARCH_TEST, body={"datasetId": kb.id, "text": "password"})
    assert a.status == 500
    assert_same(a, b)
    assert "boom" not in a.text


@pytest.mark.parametrize("mode", ["embedding", "fullTextRecall", "mixedRecall"])
def test_a_search_answers_the_same_headers_and_hits(db, global_key, kb, mode):
    body = {"datasetId": kb.id, "text": "reset my password", "searchMode": mode}
    a, b = both(key=global_key, path=SEARCH_TEST, body=body)
    assert a.status == 200
    assert_same(a, b, same_body=False)
    assert a.headers["x-frame-options"] == "DENY" and a.headers["x-content-type-options"] == "nosniff"
    assert "vary" not in a.headers or "cookie" not in a.headers["vary"].lower()
    data_a, data_b = a.json()["data"], b.json()["data"]
    assert data_a.pop("duration").endswith("s") and data_b.pop("duration").endswith("s")
    assert data_a == data_b
    assert data_a["list"][0]["q"].startswith("How to reset a forgotten password")


def test_a_list_answers_the_same(db, global_key, kb):
    a, b = both(key=global_key, path=LIST, body={})
    assert a.status == 200
    assert_same(a, b)
    assert [d["name"] for d in a.json()["data"]] == ["Help center"]


# --- which middlewares run ----------------------------------------------------------------


def test_no_session_or_csrf_middleware_runs_for_the_key_api(db, global_key, kb, middleware_calls):
    assert lean(key=global_key, path=SEARCH_TEST, body={"datasetId": kb.id, "text": "password"}).status == 200
    assert lean(key=global_key, path=LIST, body={}).status == 200
    assert lean(path=SEARCH_TEST, body={"text": "x"}).status == 401
    assert middleware_calls == []
    # The same request through the full stack does run them (the spy works).
    assert full(key=global_key, path=LIST, body={}).status == 200
    assert "SessionMiddleware.process_request" in middleware_calls


def test_a_session_cookie_is_neither_read_nor_answered_on_the_lean_path(db, global_key, kb, middleware_calls):
    # A browser's cookies (a stale admin session, no CSRF token) on a key-authenticated POST:
    # not a credential here — without the key the answer is 401, with it the key decides.
    cookie = {"Cookie": "sessionid=stale; csrftoken=x"}
    assert lean(path=LIST, body={}, headers=cookie).status == 401
    a, b = both(key=global_key, path=LIST, body={}, headers=cookie)
    assert a.status == b.status == 200 and a.json() == b.json()
    # The one difference, by design (config/asgi.py): the full stack looks the session up and,
    # finding none, answers `Vary: Cookie` and deletes the stale cookie; the lean path does
    # not read cookies, so its answer neither varies on them nor touches them.
    assert "set-cookie" not in a.headers and "vary" not in a.headers
    assert b.headers["set-cookie"].startswith('sessionid="";') and b.headers["vary"] == "Cookie"
    assert a.header_names == [name for name in b.header_names if name not in ("set-cookie", "vary")]
    assert "SessionMiddleware.process_request" in middleware_calls  # the full call's only


def test_the_admin_login_keeps_its_session_and_csrf(db, middleware_calls):
    answer = lean(method="GET", path="/admin/login/", headers={"Content-Type": "text/html"})
    assert answer.status == 200 and "csrftoken=" in answer.headers.get("set-cookie", "")
    # A login POST without the CSRF token is refused by the CSRF middleware (full stack).
    refused = lean(method="POST", path="/admin/login/", raw=b"username=a&password=b",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert refused.status == 403
    assert "CsrfViewMiddleware.process_request" in middleware_calls


# --- one hop onto a thread of the handler's pool ------------------------------------------


def served_by_the_event_loop(app, path: str, body: dict | None = None) -> httpx.Response:
    """A request as uvicorn makes it: from an event loop with no sync caller waiting on it."""

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, json=body or {})

    return asyncio.run(run())


def test_the_key_api_is_served_by_the_one_hop_handler():
    app = config.asgi.application
    assert isinstance(app.one_hop, config.asgi.OneHopHandler)
    assert SEARCH_TEST in app.key_paths and "/api/v1/chat/completions" not in app.key_paths
    assert app.paths == app.key_paths | config.asgi.LEAN_PATHS


def test_from_the_event_loop_the_whole_request_runs_in_one_thread_of_the_pool(signal_threads):
    answer = served_by_the_event_loop(config.asgi.application, SEARCH_TEST, {"text": "x"})
    assert answer.status_code == 401
    assert [signal for signal, _ in signal_threads] == ["started", "finished"]
    threads = {thread for _, thread in signal_threads}
    assert len(threads) == 1 and threads.pop().startswith("key-api")


def test_a_sync_caller_gets_the_request_run_in_its_own_thread(signal_threads):
    # async_to_sync (tests, management commands): the caller's thread, hence its connection.
    assert lean(path=SEARCH_TEST, body={"text": "x"}).status == 401
    assert signal_threads == [("started", threading.current_thread().name),
                              ("finished", threading.current_thread().name)]


@override_settings(ROOT_URLCONF="tests.config.key_api_urls")
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")  # Django's, as ever
def test_a_streaming_answer_is_sent_whole_then_closed(signal_threads):
    handler = config.asgi.OneHopHandler(threads=2)
    answer = served_by_the_event_loop(handler, "/api/stream")
    assert answer.status_code == 200 and answer.text == "one two three"
    assert [signal for signal, _ in signal_threads] == ["started", "finished"]
