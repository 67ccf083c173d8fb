"""Faults only a live server shows (uvicorn subprocess, real sockets, the fake provider):
clients that hang up, concurrent calls racing for a usage cap or for one record id."""

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from chat.models import ChatItem
from keys.models import ApiKey

pytestmark = pytest.mark.usefixtures("transactional_db")
URL = "/api/v1/chat/completions"


def wait_for(condition, *, seconds: float = 20):
    """Poll until ``condition()`` is truthy (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    return condition()


def provider_got(provider, marker: str) -> bool:
    return any(marker in json.dumps(r["body"]) for r in provider.requests)


def post_and_hang_up(live_server_url, key, body: dict, provider, marker: str) -> None:
    """Send the request on a raw socket, wait until the model is being asked, then hang up."""
    parts = urlsplit(live_server_url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: {key.header}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head + payload)
        assert wait_for(lambda: provider_got(provider, marker)), "the model was never asked"
        if body.get("stream"):
            assert sock.recv(1)  # the stream has started
    # closed: the client is gone


def stored_ai(chat_id: str):
    return ChatItem.objects.filter(chat__chat_id=chat_id, obj="AI").first()


def test_a_non_stream_client_that_hangs_up_leaves_the_turn_stored_and_counted(live_server_url, app_key, fake_provider):
    body = {"chatId": "gone-whole", "messages": [{"role": "user", "content": "q-whole [[delay:5]]"}]}
    post_and_hang_up(live_server_url, app_key, body, fake_provider, "q-whole")
    ai = wait_for(lambda: stored_ai("gone-whole"))
    assert ai is not None, "the interrupted turn was not stored"
    assert ai.interrupted is True and "disconnected" in ai.error_msg
    assert ChatItem.objects.get(chat__chat_id="gone-whole", obj="Human").text.startswith("q-whole")
    node = ai.response_data[0]
    assert node["tokensEstimated"] is True and node["inputTokens"] > 0
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == node["tokens"] > 0


def test_a_stream_client_that_hangs_up_leaves_the_partial_turn_stored_and_counted(live_server_url, app_key, fake_provider):
    words = " ".join(["w"] * 40)
    body = {"chatId": "gone-stream", "stream": True,
            "messages": [{"role": "user", "content": f"q-stream {words} [[chunk-delay:0.1]]"}]}
    post_and_hang_up(live_server_url, app_key, body, fake_provider, "q-stream")
    ai = wait_for(lambda: stored_ai("gone-stream"))
    assert ai is not None, "the interrupted turn was not stored"
    assert ai.interrupted is True and "disconnected" in ai.error_msg
    assert len(ai.text) < len("Answer to: q-stream ") + 40 * 2
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == ai.response_data[0]["tokens"] > 0


def concurrently(count: int, call) -> list:
    results = [None] * count

    def run(index):
        try:
            results[index] = call(index)
        except requests.RequestException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_calls_cannot_all_pass_a_usage_cap(live_server_url, make_key, team, app):
    cap = 10
    key = make_key(team, app, max_usage_points=cap)

    def call(index):
        return requests.post(
            f"{live_server_url}{URL}", headers={"Authorization": key.header}, timeout=30,
            json={"messages": [{"role": "user", "content": f"hi{index} [[delay:0.3]]"}]},
        )

    answers = concurrently(30, call)
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 402}, statuses
    answered = [a.json()["usage"]["total_tokens"] for a in answers if a.status_code == 200]
    spent = ApiKey.objects.get(pk=key.row.pk).usage_points
    assert spent == sum(answered)  # every answered call counted, every reservation settled
    assert 1 <= len(answered) <= 3, statuses
    assert spent < cap + max(answered) * 2


def test_concurrent_turns_reusing_one_response_id_are_told_the_id_actually_stored(live_server_url, app_key):
    def call(index):
        return requests.post(
            f"{live_server_url}{URL}", headers={"Authorization": app_key.header}, timeout=30,
            json={"chatId": "same-chat", "responseChatItemId": "SAME-AI-ID",
                  "messages": [{"role": "user", "content": f"question {index} [[delay:0.3]]"}]},
        )

    answers = concurrently(20, call)
    assert {a.status_code for a in answers} <= {200, 400}
    answered = [a.json() for a in answers if a.status_code == 200]
    ids = [body["responseChatItemId"] for body in answered]
    assert len(ids) == len(set(ids)), ids  # never two turns told the same id
    assert "SAME-AI-ID" in ids
    for body in answered:
        ai = ChatItem.objects.get(chat__chat_id="same-chat", data_id=body["responseChatItemId"])
        assert ai.text == body["choices"][0]["message"]["content"]  # the id names this turn's answer
