"""End to end: a live uvicorn server on the test database, real clients, the fake provider.

The seed's curl examples are replayed byte for byte with `requests`; the official `openai`
SDK is pointed at our base URL; a client hangs up mid-stream; concurrent turns on one chat.
"""

import json
import threading
import time

import openai
import pytest
import requests

from chat.models import Chat, ChatItem

pytestmark = pytest.mark.usefixtures("transactional_db")

# The seed document's two curl examples, as their --data-raw bodies.
SEED_BODY = """{
    "chatId": "111",
    "stream": false,
    "detail": false,
    "messages": [
        {
            "content": "导演是谁",
            "role": "user"
        }
    ]
}"""
SEED_BODY_WITH_UID = """{
    "chatId": "111",
    "stream": false,
    "detail": false,
    "messages": [
        {
            "content": "导演是谁",
            "role": "user"
        }
    ],
    "customUid": "xxxxxx"
}"""


@pytest.fixture
def sdk(live_server_url, app_key):
    return openai.OpenAI(base_url=f"{live_server_url}/api/v1", api_key=app_key.plaintext, max_retries=0)


def seed_post(url, key, body):
    return requests.post(
        f"{url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {key.plaintext}", "Content-Type": "application/json"},
        data=body.encode(),
        timeout=30,
    )


def test_the_seed_curl_examples_work_as_written(live_server_url, app_key):
    first = seed_post(live_server_url, app_key, SEED_BODY)
    assert first.status_code == 200
    body = first.json()
    assert body["id"] == "111"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Answer to: 导演是谁"}
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]

    second = seed_post(live_server_url, app_key, SEED_BODY_WITH_UID)
    assert second.status_code == 200
    chat = Chat.objects.get(chat_id="111")
    assert chat.custom_uid == "xxxxxx"
    assert [i.obj for i in chat.items.order_by("id")] == ["Human", "AI", "Human", "AI"]


def test_openai_sdk_non_stream_with_fastgpt_extras(sdk, app_key):
    completion = sdk.chat.completions.create(
        model="anything",
        messages=[{"role": "user", "content": "hello sdk"}],
        extra_body={"chatId": "sdk-1", "customUid": "end-user-9", "variables": {"v": "1"}, "detail": True},
    )
    assert completion.id == "sdk-1"
    assert completion.choices[0].message.content == "Answer to: hello sdk"
    assert completion.usage.total_tokens == 2 + 4
    extras = completion.model_extra
    assert extras["responseData"][0]["moduleType"] == "chatNode"
    assert extras["newVariables"] == {"v": "1"}
    chat = Chat.objects.get(chat_id="sdk-1")
    assert (chat.custom_uid, chat.variables) == ("end-user-9", {"v": "1"})


def test_openai_sdk_stream(sdk):
    stream = sdk.chat.completions.create(
        model="anything",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"chatId": "sdk-2"},
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == "Answer to: stream me please"
    assert finish == "stop"
    assert usage.total_tokens == 3 + 5
    assert ChatItem.objects.get(chat__chat_id="sdk-2", obj="AI").text == "Answer to: stream me please"


def test_openai_sdk_sees_errors_with_their_message(sdk, live_server_url):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="x", messages=[{"role": "assistant", "content": "no question"}])
    assert "last message" in caught.value.body["message"]

    with pytest.raises(openai.InternalServerError) as upstream:  # 502 from the provider failure
        sdk.chat.completions.create(model="x", messages=[{"role": "user", "content": "x [[fail:500]]"}])
    assert upstream.value.status_code == 502

    bad_key = openai.OpenAI(base_url=f"{live_server_url}/api/v1", api_key="fastgpt-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])


def test_openai_sdk_stream_error_mid_way_raises(sdk):
    stream = sdk.chat.completions.create(
        model="x", messages=[{"role": "user", "content": "a b c d [[cut:2]]"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert "early" in str(caught.value)


def test_a_client_that_hangs_up_leaves_the_partial_answer_stored_and_marked(live_server_url, app_key):
    body = {"chatId": "gone", "stream": True,
            "messages": [{"role": "user", "content": " ".join(["w"] * 60) + " [[chunk-delay:0.05]]"}]}
    with requests.post(
        f"{live_server_url}/api/v1/chat/completions", json=body, stream=True, timeout=30,
        headers={"Authorization": app_key.header},
    ) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]  # a few chunks, then hang up
    assert any(line.startswith(b"data:") for line in received)

    deadline = time.monotonic() + 15
    ai = None
    while time.monotonic() < deadline:
        ai = ChatItem.objects.filter(chat__chat_id="gone", obj="AI").first()
        if ai is not None:
            break
        time.sleep(0.1)
    assert ai is not None, "the interrupted turn was not stored"
    assert ai.interrupted is True
    assert "disconnected" in ai.error_msg
    assert ai.text.startswith("Answer ")
    assert len(ai.text) < len("Answer to: ") + 60 * 2
    assert ChatItem.objects.filter(chat__chat_id="gone", obj="Human").count() == 1


def test_concurrent_turns_on_one_chat_lose_nothing(live_server_url, app_key):
    errors, count = [], 8

    def turn(index):
        try:
            response = seed_post(live_server_url, app_key, json.dumps({"chatId": "busy", "messages": [
                {"role": "user", "content": f"question {index}"}]}))
            if response.status_code != 200:
                errors.append(response.text)
        except requests.RequestException as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    chat = Chat.objects.get(chat_id="busy")
    questions = sorted(i.text for i in chat.items.filter(obj="Human"))
    assert questions == sorted(f"question {i}" for i in range(count))
    assert chat.items.filter(obj="AI").count() == count
