"""Failures of ours and of the app's configuration: answered in the envelope with OpenAI's
`error` object (never Django's page), and stored like any other failed turn."""

import json

import pytest
from django.test.utils import override_settings

from chat.models import App, ChatItem
from keys.models import ApiKey
from tests.chat.completion_calls import ask, post


def assert_openai_error(answer, status: int, status_text: str):
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["statusText"] == status_text
    assert body["error"] == {"message": body["message"], "type": status_text, "code": body["code"]}


@pytest.mark.parametrize("debug", [False, True])
def test_a_crash_of_ours_is_a_json_500_with_the_openai_error(app_key, monkeypatch, debug):
    from chat.completions import views

    def crash(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "prepare_turn", crash)
    with override_settings(DEBUG=debug):
        answer = post(ask("hi"), key=app_key)
    assert_openai_error(answer, 500, "internalServerError")
    assert "boom" not in answer.text and "Traceback" not in answer.text


def test_a_crash_after_the_model_answered_still_answers_json(provider_models, app_key, monkeypatch):
    from django.db import DatabaseError

    from chat.completions import services

    def broken_save(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(services, "save_turn", broken_save)
    assert_openai_error(post(ask("hi"), key=app_key), 500, "internalServerError")


def test_method_not_allowed_says_which_method_is(app_key):
    answer = post(None, key=app_key, method="get")
    assert_openai_error(answer, 405, "methodNotAllowed")
    assert answer.headers["Allow"] == "POST"


@pytest.mark.parametrize("stream", [False, True])
def test_an_app_naming_an_undeclared_model_stores_its_failed_turns(provider_models, app, app_key, stream):
    App.objects.filter(pk=app.pk).update(model="gpt-typo-model")
    answer = post(ask("where is my order?", chatId="c1", stream=stream), key=app_key)
    assert_openai_error(answer, 502, "upstreamError")
    assert "gpt-typo-model" in answer.json()["message"]
    human = ChatItem.objects.get(chat__chat_id="c1", obj="Human")
    ai = ChatItem.objects.get(chat__chat_id="c1", obj="AI")
    assert human.text == "where is my order?"
    assert "gpt-typo-model" in ai.error_msg and ai.text == ""
    assert ai.response_data[0]["model"] == "gpt-typo-model"
    assert provider_models.requests == []  # no model was called
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == 0


def test_an_undeclared_model_failure_shows_in_the_history(provider_models, app, app_key, api):
    App.objects.filter(pk=app.pk).update(model="gpt-typo-model")
    post(ask("hi", chatId="c2"), key=app_key)
    records = api.post(
        "/api/core/chat/getPaginationRecords", {"appId": app.pk, "chatId": "c2"}, format="json"
    ).json()["data"]["list"]
    assert [r["obj"] for r in records] == ["Human", "AI"]
    assert "gpt-typo-model" in records[1]["errorMsg"]
    json.dumps(records)
