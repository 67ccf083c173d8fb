"""Every field a provider sends is untrusted: odd usage (null, strings, negative, absurd) and odd
chunks never give a 500 or a cut stream, and the turn is always stored."""

import json

import pytest

from chat.models import ChatItem
from keys.models import ApiKey
from tests.chat.completion_calls import ask, post

ODD_USAGE = [
    {"prompt_tokens": 5, "completion_tokens": None},
    {"prompt_tokens": 5, "completion_tokens": "7"},
    {"prompt_tokens": "five", "completion_tokens": 3},
    {"prompt_tokens": -5, "completion_tokens": -1},
    {"prompt_tokens": 2.5, "completion_tokens": True},
    {"prompt_tokens": 10**30, "completion_tokens": 3},
    {"prompt_tokens": {"n": 1}, "completion_tokens": [1]},
    None,
    "lots",
    [1, 2],
    {},
]


@pytest.fixture
def models(provider_models):
    return provider_models


def directive(name: str, value) -> str:
    text = json.dumps(value)
    assert "]]" not in text
    return f"[[{name}:{text} ]]"  # the space: JSON ending in "]" must not run into "]]"


def assert_usage_is_sane(usage: dict):
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage[name], int) and 0 <= usage[name] < 10**9, usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("usage", ODD_USAGE, ids=repr)
def test_odd_usage_in_a_whole_answer_is_estimated_not_a_500(models, app_key, usage):
    answer = post(ask("hi " + directive("usage", usage), detail=True), key=app_key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["choices"][0]["message"]["content"] == "Answer to: hi"
    assert_usage_is_sane(body["usage"])
    assert body["responseData"][0]["tokensEstimated"] is True
    ai = ChatItem.objects.get(obj="AI")
    assert ai.text == "Answer to: hi" and ai.error_msg == ""
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == body["usage"]["total_tokens"]


def test_a_valid_count_beside_an_odd_one_is_kept(models, app_key):
    body = post(ask("hi " + directive("usage", {"prompt_tokens": 5, "completion_tokens": None})), key=app_key).json()
    assert body["usage"]["prompt_tokens"] == 5


@pytest.mark.parametrize("usage", ODD_USAGE, ids=repr)
def test_odd_usage_in_a_stream_still_ends_the_stream_and_stores_the_turn(models, app_key, usage):
    answer = post(
        ask("hi " + directive("usage", usage), stream=True, stream_options={"include_usage": True}),
        key=app_key,
    )
    assert answer.status_code == 200
    events = answer.events()
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert not any("error" in chunk for chunk in chunks)
    assert_usage_is_sane(chunks[-1]["usage"])
    ai = ChatItem.objects.get(obj="AI")
    assert ai.text == "Answer to: hi" and ai.error_msg == ""
    assert ai.response_data[0]["tokensEstimated"] is True


ODD_CHUNKS = [
    {"choices": "not a list"},
    {"choices": [None]},
    {"choices": [{"delta": "not an object"}]},
    {"choices": [{"delta": {"content": 5}}]},
    {"choices": [{"delta": {"content": {"text": "x"}}}]},
    {"choices": [{"delta": None}]},
    {"choices": []},
    {"choices": [{"delta": {"content": [{"type": "text", "text": "part "}]}}]},
    {"usage": "lots"},
    [1, 2],
    "a string",
    42,
    None,
]


@pytest.mark.parametrize("detail", [False, True])
def test_odd_chunks_add_nothing_and_break_nothing(models, app_key, detail):
    answer = post(ask("hi " + directive("chunks", ODD_CHUNKS), stream=True, detail=detail), key=app_key)
    assert answer.status_code == 200
    events = answer.events()
    assert ("error" not in [name for name, _ in events])
    assert "[DONE]" in [data for _, data in events]
    ai = ChatItem.objects.get(obj="AI")
    assert ai.text == "part Answer to: hi" and ai.error_msg == ""


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        "text",
        {"choices": "x"},
        {"choices": []},
        {"choices": [None]},
        {"choices": [{"message": "text"}]},
        {"choices": [{"message": {"content": 5}}]},
        {"choices": [{"message": {"content": {"a": 1}}}]},
    ],
    ids=repr,
)
def test_a_malformed_whole_answer_is_a_502_and_the_failure_is_stored(models, app_key, body):
    answer = post(ask("hi " + directive("body", body)), key=app_key)
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["message"] == answer.json()["message"]
    ai = ChatItem.objects.get(obj="AI")
    assert "malformed" in ai.error_msg
    assert ChatItem.objects.filter(obj="Human").count() == 1


@pytest.mark.parametrize(
    "message, text",
    [
        ({"role": "assistant", "content": None}, ""),
        ({"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "x"}, "junk"]}, "a"),
    ],
    ids=["null content", "content parts"],
)
def test_a_whole_answer_with_null_or_part_content_is_read(models, app_key, message, text):
    body = {"choices": [{"index": 0, "message": message}], "usage": {"prompt_tokens": "1"}}
    answer = post(ask("hi " + directive("body", body)), key=app_key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == text
    assert_usage_is_sane(answer.json()["usage"])
