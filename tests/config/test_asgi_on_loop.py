"""The lean handler's request on the event loop (config/asgi.py `LeanHandler.handle_on_loop`,
taken where the chat turn's database work runs on the loop): Django's steps, with the request
signals sent in the loop's own thread — no hop —, once each, after a stream has been sent, and
when the client leaves before the answer (the view then cancelled)."""

import asyncio
import json
import threading

import pytest
from django.test.utils import override_settings

import config.asgi
from tests.config import lean_urls

PATH = "/api/v1/chat/completions"


@pytest.fixture
def handler(monkeypatch):
    monkeypatch.setattr(config.asgi, "on_loop", lambda: True)  # as on PostgreSQL under uvicorn
    lean_urls.SEEN.clear()
    with override_settings(ROOT_URLCONF="tests.config.lean_urls"):
        yield config.asgi.LeanHandler()


def serve(handler, body: bytes, *, leave: bool = False, query_string: bytes = b"") -> list[dict]:
    """`handler` driven as uvicorn drives it, from an event loop with no sync caller: the
    messages it sent. ``leave``: the client disconnects right after sending its body."""
    sent = []

    async def run():
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if messages:
                return messages.pop(0)
            if leave:
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()  # the client stays until the answer is sent

        async def send(message):
            sent.append(message)

        await handler(scope(len(body), query_string), receive, send)

    asyncio.run(run())
    return sent


def scope(length: int, query_string: bytes) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": query_string, "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }


def status_and_body(sent: list[dict]) -> tuple[int, bytes]:
    start = next(message for message in sent if message["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_signals_and_the_view_run_in_the_loops_thread(handler, signal_threads):
    status, body = status_and_body(serve(handler, b'{"do": "answer"}'))
    assert (status, json.loads(body)) == (200, {"ok": True})
    here = threading.current_thread().name  # asyncio.run's loop runs in this thread
    assert signal_threads == [("started", here), ("finished", here)]
    assert lean_urls.SEEN == [("view", here)]


def test_a_stream_is_sent_whole_before_request_finished(handler, signal_threads):
    sent = serve(handler, b'{"do": "stream"}')
    assert status_and_body(sent) == (200, b"one two three")
    assert [signal for signal, _ in signal_threads] == ["started", "finished"]
    assert sent[-1]["type"] == "http.response.body" and not sent[-1].get("more_body")


def test_a_client_that_leaves_first_cancels_the_view_and_still_ends_the_request(handler, signal_threads):
    sent = serve(handler, b'{"do": "wait"}', leave=True)
    assert sent == []  # nothing to send to a client that is gone
    assert [what for what, _ in lean_urls.SEEN] == ["view", "cancelled"]
    assert [signal for signal, _ in signal_threads] == ["started", "finished"]


def test_a_request_django_cannot_build_is_answered_and_ended(handler, signal_threads):
    # A query string that is not UTF-8: Django builds no request and answers 400 itself.
    status, _ = status_and_body(serve(handler, b'{"do": "answer"}', query_string=b"q=\xff"))
    assert status == 400
    assert lean_urls.SEEN == []
    assert [signal for signal, _ in signal_threads] == ["started", "finished"]
