"""Question guide: up to 3 follow-up questions from the app's model (the local fake provider
here), the last 6 rounds as context; the built-in offline responder suggests nothing."""

import json

import pytest

from chat.history.question_guide import parse_questions
from keys.models import ApiKey

GUIDE = "/api/core/ai/agent/v2/createQuestionGuide"
OLD_GUIDE = "/api/core/ai/agent/createQuestionGuide"


def guide(api, app, chat_id="c1", **fields):
    return api.post(GUIDE, {"appId": app.pk, "chatId": chat_id, **fields}, format="json")


def answering(text: str) -> dict:
    """A questionGuide config whose prompt makes the fake provider answer ``text`` exactly.
    (The prompt is the last user message the provider sees, where it reads its directives.)"""
    return {"customPrompt": f"[[answer:{text}]]"}


def sent_messages(provider) -> list[dict]:
    calls = [r["body"] for r in provider.requests if r["path"].endswith("/chat/completions")]
    assert len(calls) == 1
    return calls[0]["messages"]


def test_the_offline_responder_suggests_nothing(api, app, chat):
    response = guide(api, app)
    assert response.status_code == 200
    assert response.json() == {"code": 200, "statusText": "", "message": "", "data": []}


def test_questions_one_per_line_lose_their_numbering(api, app, chat, provider_models):
    answer = "1. How does X work?\n2) Why Y?\n- When is Z?\n4. A fourth one?"
    response = guide(api, app, questionGuide=answering(answer))
    assert response.status_code == 200
    assert response.json()["data"] == ["How does X work?", "Why Y?", "When is Z?"]


def test_a_json_array_answer(api, app, chat, provider_models):
    # The trailing space keeps the array's "]" apart from the directive's closing "]]".
    response = guide(api, app, questionGuide=answering('Sure: ["What is X?", "Who made Y?"] '))
    assert response.json()["data"] == ["What is X?", "Who made Y?"]


def test_the_context_is_the_last_six_rounds_then_the_prompt(api, app, make_chat, add_turn, provider_models):
    conversation = make_chat(app, chat_id="long")
    for n in range(8):
        add_turn(conversation, f"question {n}", f"answer {n}")
    guide(api, app, chat_id="long")
    messages = sent_messages(provider_models)
    assert len(messages) == 13
    assert messages[0] == {"role": "user", "content": "question 2"}
    assert messages[1] == {"role": "assistant", "content": "answer 2"}
    assert messages[11] == {"role": "assistant", "content": "answer 7"}
    assert messages[12]["role"] == "user" and "JSON array" in messages[12]["content"]


def test_the_apps_model_is_used_and_usage_is_counted(api, app, chat, global_key, provider_models):
    app.model = "fake-llm"
    app.save()
    guide(api, app, questionGuide=answering("Why?"))
    assert [r["body"]["model"] for r in provider_models.requests] == ["fake-llm"]
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points > 0


def test_an_app_on_the_offline_responder_suggests_nothing_even_with_a_provider(api, app, chat, provider_models):
    app.model = "builtin-offline-responder"
    app.save()
    assert guide(api, app).json()["data"] == []
    assert provider_models.requests == []


def test_a_chat_without_records_suggests_nothing(api, app, make_chat, provider_models):
    make_chat(app, chat_id="empty")
    assert guide(api, app, chat_id="empty").json()["data"] == []
    assert provider_models.requests == []


def test_provider_failure_is_502_in_the_envelope(api, app, chat, provider_models):
    response = guide(api, app, questionGuide={"customPrompt": "[[fail:500]]"})
    assert response.status_code == 502
    body = response.json()
    assert (body["code"], body["statusText"]) == (502, "upstreamError")


def test_provider_timeout_is_504(api, app, chat, provider_models, settings):
    declared = json.loads(settings.AI_MODELS)
    declared[0]["timeout"] = 0.3
    settings.AI_MODELS = json.dumps(declared)
    response = guide(api, app, questionGuide={"customPrompt": "[[delay:2]]"})
    assert response.status_code == 504
    assert response.json()["statusText"] == "upstreamTimeout"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"chatId": "c1"}, "appId"),
        ({"appId": "APP"}, "chatId"),
        ({"appId": "APP", "chatId": 5.5}, None),  # numbers become strings: a 404, not a crash
        ({"appId": "APP", "chatId": "c1", "questionGuide": "yes"}, "questionGuide"),
        ({"appId": "APP", "chatId": "c1", "questionGuide": {"model": "no-such-model"}}, "questionGuide.model"),
        ({"appId": "APP", "chatId": "c1", "questionGuide": {"model": "builtin-lexical-embedding"}}, "questionGuide.model"),
    ],
)
def test_bad_input(api, app, chat, body, field):
    body = {k: (app.pk if v == "APP" else v) for k, v in body.items()}
    response = api.post(GUIDE, body, format="json")
    if field is None:
        assert response.status_code == 404
        return
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_unknown_chat_is_404(api, app):
    assert guide(api, app, chat_id="nope").status_code == 404


# --- the older endpoint: the conversation in the body ---------------------------------------


def test_older_endpoint_uses_the_messages_sent(api, app, provider_models):
    messages = [{"role": "user", "content": "Tell me about X"}, {"role": "assistant", "content": "X is…"}]
    response = api.post(OLD_GUIDE, {"messages": messages, "appId": app.pk}, format="json")
    assert response.status_code == 200
    sent = sent_messages(provider_models)
    assert sent[:2] == messages
    assert sent[2]["role"] == "user"


def test_older_endpoint_keeps_text_parts_and_the_last_twelve_messages(client_for, app_key, provider_models):
    messages = [{"role": "user", "content": f"m{n}"} for n in range(20)]
    messages[-1] = {"role": "user", "content": [{"type": "text", "text": "last"}, {"type": "image_url", "image_url": {"url": "https://x"}}]}
    response = client_for(app_key).post(OLD_GUIDE, {"messages": messages}, format="json")
    assert response.status_code == 200
    sent = sent_messages(provider_models)
    assert [m["content"] for m in sent[:-1]] == [f"m{n}" for n in range(8, 19)] + ["last"]


def test_older_endpoint_with_a_global_key_and_no_app_uses_the_default_model(api, provider_models):
    response = api.post(OLD_GUIDE, {"messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert response.status_code == 200
    assert provider_models.requests[0]["body"]["model"] == "fake-llm"


def test_older_endpoint_offline_suggests_nothing(api):
    response = api.post(OLD_GUIDE, {"messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert response.json()["data"] == []


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": 5}]}, "content"),
        ({"messages": [{"role": "user"}]}, "content"),
        ({"messages": [{"role": "user", "content": "hi"}], "appId": ["x"]}, "appId"),
    ],
)
def test_older_endpoint_bad_input(api, body, field):
    response = api.post(OLD_GUIDE, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["message"]


# --- parsing a model's answer ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text,questions",
    [
        ('["a?", "b?", "c?", "d?"]', ["a?", "b?", "c?"]),
        ('```json\n["a?", "b?"]\n```', ["a?", "b?"]),
        ("1、第一个问题？\n2、第二个问题？", ["第一个问题？", "第二个问题？"]),
        ('* "quoted?"\n\n• bullet?', ["quoted?", "bullet?"]),
        ("(1) one?\n(2) two?", ["one?", "two?"]),
        ("", []),
        ('[1, "two?", {"x": 1}, ""]', ["1", "two?"]),
        ("[not json] but a line", ["[not json] but a line"]),
    ],
)
def test_parse_questions(text, questions):
    assert parse_questions(text) == questions


def test_older_endpoint_with_a_legacy_app_suffixed_key_uses_that_app(client_for, global_key, app, provider_models):
    from tests.issued_keys import IssuedKey

    app.model = "builtin-offline-responder"  # so that using the app shows as "no provider call"
    app.save()
    legacy = IssuedKey(global_key.row, f"{global_key.plaintext}-{app.pk}")
    response = client_for(legacy).post(OLD_GUIDE, {"messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] == []
    assert provider_models.requests == []
