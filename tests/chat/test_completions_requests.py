"""Chat completions: who may call, and what a bad request gets (no model is called)."""

import pytest
from django.test.utils import override_settings

from chat.models import Chat, ChatItem
from keys import services
from tests.chat.completion_calls import ask, post


def assert_chat_error(answer, http_status, body_code, status_text, fragment=""):
    assert answer.status_code == http_status, answer.text
    body = answer.json()
    assert (body["code"], body["statusText"]) == (body_code, status_text)
    if http_status != 400:  # a validation error's data names the fields
        assert body["data"] is None
    assert body["error"]["message"] == body["message"]  # OpenAI-style, for SDKs
    assert body["error"]["type"] == status_text
    assert fragment in body["message"]
    assert not ChatItem.objects.exists()


def test_missing_key_is_401(db):
    answer = post(ask("hi"))
    assert_chat_error(answer, 401, 403, "unAuthorization")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_and_revoked_keys_are_401(app_key):
    from tests.issued_keys import IssuedKey

    assert_chat_error(post(ask("hi"), key=IssuedKey(None, "fastgpt-" + "z" * 48)), 401, 514, "unAuthApiKey")
    services.revoke_api_key(key=app_key.row)
    assert_chat_error(post(ask("hi"), key=app_key), 401, 514, "unAuthApiKey", "revoked")


def test_a_capped_key_is_refused_before_any_model_call(make_key, team, app):
    key = make_key(team, app, max_usage_points=5)
    services.add_usage(key=key.row, points=5)
    assert_chat_error(post(ask("hi"), key=key), 402, 510, "insufficientQuota")


@override_settings(API_KEY_RATE="2/minute")
def test_rate_limit_is_429_with_retry_after(app_key, fixed_clock):
    assert post(ask("one"), key=app_key).status_code == 200
    assert post(ask("two"), key=app_key).status_code == 200
    answer = post(ask("three"), key=app_key)
    assert answer.status_code == 429
    assert answer.json()["statusText"] == "tooManyRequests"
    assert 1 <= int(answer.headers["Retry-After"]) <= 60


def test_global_key_without_app_id_is_403_naming_the_fix(global_key):
    assert_chat_error(post(ask("hi"), key=global_key), 403, 403, "unAuthorization", "app")


def test_global_key_with_its_teams_app_id_chats(global_key, app):
    answer = post(ask("hi", appId=app.pk), key=global_key)
    assert answer.status_code == 200
    assert Chat.objects.get().app == app


def test_global_key_with_another_teams_app_is_404(global_key, other_app):
    assert_chat_error(post(ask("hi", appId=other_app.pk), key=global_key), 404, 502000, "appUnExist")
    assert not Chat.objects.exists()


def test_legacy_key_form_names_the_app_for_a_global_key(global_key, app):
    from tests.issued_keys import IssuedKey

    legacy = IssuedKey(None, f"{global_key.plaintext}-{app.pk}")
    assert post(ask("hi"), key=legacy).status_code == 200
    assert Chat.objects.get().app == app


def test_an_app_keys_own_app_wins_over_app_id(app_key, app, make_key, team):
    from chat.models import App

    second = App.objects.create(team=team, name="second")
    assert post(ask("hi", appId=second.pk), key=app_key).status_code == 200
    assert Chat.objects.get().app == app


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user"}]}, "empty"),
        ({"messages": [{"role": "user", "content": "   "}]}, "empty"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "last message"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": 5}]}, "content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "image_url"),
        (ask("hi", chatId="x" * 251), "chatId"),
        (ask("hi", variables=[1]), "variables"),
        (ask("hi", stream="maybe"), "stream"),
        (ask("hi", responseChatItemId="y" * 65), "responseChatItemId"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(app_key, body, fragment):
    assert_chat_error(post(body, key=app_key), 400, 400, "badRequest", fragment)


def test_bad_json_and_non_object_bodies_are_400(app_key):
    assert_chat_error(post(None, key=app_key, raw=b'{"messages": '), 400, 400, "badRequest", "JSON")
    assert_chat_error(post(None, key=app_key, raw=b"[1, 2]"), 400, 400, "badRequest", "object")
    assert_chat_error(post(None, key=app_key, raw=b""), 400, 400, "badRequest", "object")


def test_get_is_405(app_key):
    answer = post(None, key=app_key, method="get")
    assert answer.status_code == 405
    assert answer.json()["statusText"] == "methodNotAllowed"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_a_body_over_the_limit_is_413(app_key):
    assert_chat_error(post(ask("x" * 5000), key=app_key), 413, 413, "requestTooLarge")


def test_openai_fields_the_app_decides_are_accepted_and_ignored(app_key):
    body = ask("hi", model="gpt-4o", temperature=2, max_tokens=3, top_p=0.1, user="u1", n=1)
    assert post(body, key=app_key).status_code == 200


def test_the_openapi_schema_describes_chat_completions(db):
    from rest_framework.test import APIClient

    paths = APIClient().get("/api/schema/?format=json").json()["paths"]
    operation = paths["/api/v1/chat/completions"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"messages", "chatId", "customUid", "variables", "detail", "stream"} <= schema["properties"].keys()
    assert {"200", "401", "402", "429", "502", "504"} <= operation["responses"].keys()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["variables", "metadata"])
def test_non_finite_numbers_are_not_json_and_are_refused(app_key, constant, field):
    raw = f'{{"messages": [{{"role": "user", "content": "hi"}}], "{field}": {{"x": {constant}}}}}'.encode()
    assert_chat_error(post(None, key=app_key, raw=raw), 400, 400, "badRequest", constant)
