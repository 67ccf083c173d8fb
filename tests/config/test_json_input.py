"""JSON bodies are decided at the input boundary (config/json_input.py): `\\u0000`, lone
surrogates and deep nesting are a 400 naming the field on every endpoint — before any model
is called, so no paid answer is ever lost to a save that cannot store its text."""

import json

import pytest

from chat.models import Chat, ChatItem
from config.errors import BadRequest
from config.json_input import MAX_DEPTH, parse_json
from tests.chat.completion_calls import ask, post

NUL = "\\u0000"  # as JSON text: json.dumps would escape a real one the same way
LONE = "\\ud800"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ('{"name": "a' + NUL + 'b"}', "name: text may not contain the NUL character"),
        ('{"a": {"b": ["ok", "' + LONE + '"]}}', "a.b[1]: text may not contain a lone surrogate"),
        ('{"' + NUL + '": 1}', "(the key)"),
        ('{"x": "\\udc00 trailing half"}', "x: text may not contain a lone surrogate (\\udc00)"),
        (nested(MAX_DEPTH + 1), "nested too deeply"),
        (nested(100_000), "nested too deeply"),
        ('{"name": ', "JSON parse error"),
    ],
)
def test_unstorable_or_broken_json_is_refused_naming_where(raw, fragment):
    with pytest.raises(BadRequest) as refused:
        parse_json(raw.encode())
    assert fragment in str(refused.value.detail)


def test_surrogate_pairs_nesting_within_the_limit_and_other_control_characters_pass():
    assert parse_json('{"emoji": "\\ud83d\\ude00", "tab": "a\\tb\\u0001"}'.encode()) == {
        "emoji": "😀", "tab": "a\tb\x01"
    }
    assert parse_json(nested(MAX_DEPTH).encode()) is not None


# --- DRF endpoints (the default parser) ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ('{"name": "Docs' + NUL + '"}', "name: text may not contain the NUL character"),
        ('{"name": "Docs", "intro": "' + LONE + '"}', "intro: text may not contain a lone surrogate"),
        ('{"name": "Docs", "x": ' + nested(1000) + "}", "nested too deeply"),
    ],
)
def test_a_drf_endpoint_answers_400_naming_the_field(api, raw, fragment):
    from datasets.models import Dataset

    response = api.post("/api/core/dataset/create", data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], body["statusText"]) == (400, "badRequest")
    assert fragment in body["message"]
    assert not Dataset.objects.exists()


def test_the_legacy_question_guide_refuses_a_lone_surrogate_before_calling_the_model(
    api, app, provider_models
):
    raw = '{"appId": "%s", "messages": [{"role": "user", "content": "hi %s"}]}' % (app.pk, LONE)
    response = api.post("/api/core/ai/agent/createQuestionGuide", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "messages[0].content: text may not contain a lone surrogate" in response.json()["message"]
    assert provider_models.requests == []


# --- chat completions (its own body parsing, same module) ---------------------------------------


@pytest.mark.parametrize(
    "field, value, path",
    [
        ("content", "hi " + NUL, "messages[0].content"),
        ("content", "hi " + LONE, "messages[0].content"),
        ("variables", '{"name": "x' + NUL + '"}', "variables.name"),
        ("metadata", '{"note": "' + LONE + '"}', "metadata.note"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_chat_refuses_unstorable_text_before_the_model_is_called(app_key, provider_models, field, value, path, stream):
    body = {"messages": [{"role": "user", "content": "hi"}], "chatId": "c1", "stream": stream}
    raw = json.dumps(body)
    if field == "content":
        raw = raw.replace('"content": "hi"', '"content": "%s"' % value)
    else:
        raw = raw[:-1] + ', "%s": %s}' % (field, value)
    answer = post(None, key=app_key, raw=raw.encode())
    assert answer.status_code == 400, answer.text
    assert f"{path}: text may not contain" in answer.json()["message"]
    assert answer.json()["error"]["type"] == "badRequest"
    assert provider_models.requests == []
    assert not Chat.objects.exists() and not ChatItem.objects.exists()


def test_chat_refuses_deep_nesting(app_key, provider_models):
    raw = json.dumps(ask("hi"))[:-1] + ', "variables": {"x": ' + nested(1000) + "}}"
    answer = post(None, key=app_key, raw=raw.encode())
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["message"]
    assert provider_models.requests == []


def test_chat_still_answers_text_with_astral_characters(app_key, provider_models):
    answer = post(None, key=app_key, raw=json.dumps(ask("smile 😀"), ensure_ascii=True).encode())
    assert answer.status_code == 200, answer.text
    assert ChatItem.objects.filter(obj="Human").get().text == "smile 😀"
