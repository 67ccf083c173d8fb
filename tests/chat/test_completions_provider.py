"""Chat completions against a real OpenAI-compatible provider (the local fake): context sent,
real usage, streaming relay, and every way the provider can fail."""

import json

import pytest
from django.test.utils import override_settings

from chat.models import App, Chat, ChatItem
from keys.models import ApiKey
from tests.chat.completion_calls import ask, post


@pytest.fixture
def models(provider_models):
    return provider_models


def chat_requests(provider) -> list[dict]:
    return [r["body"] for r in provider.requests if r["path"].endswith("/chat/completions")]


def sent_messages(provider) -> list[dict]:
    return chat_requests(provider)[-1]["messages"]


def test_the_provider_answers_with_real_usage(models, app_key):
    body = post(ask("hello there"), key=app_key).json()
    assert body["choices"][0]["message"]["content"] == "Answer to: hello there"
    assert body["model"] == "fake-llm"
    # the fake counts words: prompt "hello there" = 2, answer "Answer to: hello there" = 4
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
    request = models.requests[-1]
    assert request["headers"]["authorization"] == f"Bearer {models.api_key}"
    assert request["body"]["model"] == "fake-llm" and request["body"]["stream"] is False


def test_the_apps_settings_reach_the_provider(models, app, app_key):
    App.objects.filter(pk=app.pk).update(
        system_prompt="You help {{name}} in {{lang}}; {{unknown}} stays.", temperature=0.2, max_tokens=300
    )
    post(ask("hi", variables={"name": "Ann", "lang": "French"}), key=app_key)
    request = chat_requests(models)[-1]
    assert request["messages"][0] == {"role": "system", "content": "You help Ann in French; {{unknown}} stays."}
    assert (request["temperature"], request["max_tokens"]) == (0.2, 300)


def test_without_chat_id_the_messages_are_the_whole_context(models, app_key):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"},
    ]
    post({"messages": messages}, key=app_key)
    assert sent_messages(models) == messages


def test_with_chat_id_history_comes_from_the_database_and_only_the_last_message_is_new(models, app_key):
    post(ask("first", chatId="c1"), key=app_key)
    messages = [{"role": "user", "content": "ignored"}, {"role": "assistant", "content": "ignored"},
                {"role": "user", "content": "second"}]
    post({"chatId": "c1", "messages": messages}, key=app_key)
    assert sent_messages(models) == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Answer to: first"},
        {"role": "user", "content": "second"},
    ]


def test_history_is_limited_to_the_apps_turns(models, app, app_key):
    App.objects.filter(pk=app.pk).update(history_turns=1)
    for text in ("one", "two", "three"):
        post(ask(text, chatId="c1"), key=app_key)
    assert [m["content"] for m in sent_messages(models)] == ["two", "Answer to: two", "three"]


def test_stored_variables_apply_on_later_turns(models, app, app_key):
    App.objects.filter(pk=app.pk).update(system_prompt="Hi {{name}}")
    post(ask("one", chatId="c1", variables={"name": "Bo"}), key=app_key)
    post(ask("two", chatId="c1"), key=app_key)
    assert sent_messages(models)[0] == {"role": "system", "content": "Hi Bo"}


def test_images_and_files_are_passed_on_and_stored_as_typed_parts(models, app_key):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "file_url", "name": "a.pdf", "url": "https://example.com/a.pdf"},
    ]
    post({"chatId": "c1", "messages": [{"role": "user", "content": content}]}, key=app_key)
    sent = sent_messages(models)[-1]["content"]
    assert {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}} in sent
    assert any(p["type"] == "text" and "a.pdf" in p["text"] for p in sent)
    human = ChatItem.objects.get(obj="Human")
    assert human.value[1] == {"type": "file", "file": {"type": "image", "name": "", "url": "https://example.com/cat.png"}}
    assert human.value[2]["file"]["url"] == "https://example.com/a.pdf"


def test_provider_failure_is_502_and_the_turn_is_stored_with_the_error(models, app_key):
    answer = post(ask("hi [[fail:500]]", chatId="c1"), key=app_key)
    assert answer.status_code == 502
    body = answer.json()
    assert (body["code"], body["statusText"]) == (502, "upstreamError")
    assert "500" in body["message"] and body["error"]["message"] == body["message"]
    human, ai = ChatItem.objects.order_by("id")
    assert human.text == "hi [[fail:500]]"
    assert ai.obj == "AI" and ai.value == [] and "500" in ai.error_msg
    assert ai.response_data[0]["errorText"] == ai.error_msg
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == 0


def test_a_failed_answer_is_left_out_of_the_next_context(models, app_key):
    post(ask("broken [[fail:500]]", chatId="c1"), key=app_key)
    post(ask("again", chatId="c1"), key=app_key)
    assert [m["role"] for m in sent_messages(models)] == ["user", "user"]


@pytest.mark.parametrize("stream", [False, True])
def test_provider_timeout_is_504_and_stored(models, settings, app_key, stream):
    declared = json.loads(settings.AI_MODELS)
    declared[0]["timeout"] = 0.3
    settings.AI_MODELS = json.dumps(declared)
    answer = post(ask("slow [[delay:2]]", chatId="c1", stream=stream), key=app_key)
    assert answer.status_code == 504
    assert answer.json()["statusText"] == "upstreamTimeout"
    assert "in time" in ChatItem.objects.get(obj="AI").error_msg


def test_unreachable_provider_is_502(settings, app_key):
    settings.AI_MODELS = json.dumps([{"name": "gone", "type": "llm", "baseUrl": "http://127.0.0.1:9/v1"}])
    settings.DEFAULT_LLM_MODEL = "gone"
    answer = post(ask("hi"), key=app_key)
    assert answer.status_code == 502
    assert "could not be reached" in answer.json()["message"]


def test_an_app_naming_an_undeclared_model_gets_a_clear_502(models, app, app_key):
    App.objects.filter(pk=app.pk).update(model="nonexistent-model")
    answer = post(ask("hi"), key=app_key)
    assert answer.status_code == 502
    assert "nonexistent-model" in answer.json()["message"]


def test_stream_relays_the_providers_chunks(models, app_key):
    answer = post(ask("one two three", stream=True, stream_options={"include_usage": True}), key=app_key)
    chunks = [json.loads(data) for _, data in answer.events()[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert deltas[:5] == ["Answer ", "to: ", "one ", "two ", "three"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    assert chat_requests(models)[-1]["stream_options"] == {"include_usage": True}
    assert ChatItem.objects.get(obj="AI").text == "Answer to: one two three"
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == 8


def test_stream_usage_is_estimated_when_the_provider_sends_none(models, app_key):
    post(ask("hi [[no-usage]]", stream=True, detail=True), key=app_key)
    node = ChatItem.objects.get(obj="AI").response_data[0]
    assert node["tokensEstimated"] is True and node["tokens"] > 0


def test_stream_refused_by_the_provider_is_a_json_error_not_a_stream(models, app_key):
    answer = post(ask("hi [[fail:503]]", stream=True), key=app_key)
    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("application/json")
    assert ChatItem.objects.get(obj="AI").error_msg


def test_a_stream_cut_by_the_provider_ends_with_an_error_chunk_and_keeps_the_partial_answer(models, app_key):
    answer = post(ask("one two three four [[cut:2]]", stream=True), key=app_key)
    assert answer.status_code == 200
    events = answer.events()
    assert events[-1] == (None, "[DONE]")
    error = json.loads(events[-2][1])["error"]
    assert error["statusText"] == "upstreamError" and "early" in error["message"]
    ai = ChatItem.objects.get(obj="AI")
    assert ai.text == "Answer to: " and "early" in ai.error_msg and not ai.interrupted


def test_a_cut_stream_with_detail_sends_fastgpts_error_event(models, app_key):
    events = post(ask("one two [[cut:1]]", stream=True, detail=True), key=app_key).events()
    assert events[-1][0] == "error"
    assert json.loads(events[-1][1])["code"] == 502


@override_settings(STREAM_KEEPALIVE_SECONDS=0.05)
def test_keepalive_comments_fill_a_long_silence(models, app_key):
    answer = post(ask("hi [[first-chunk-delay:0.4]]", stream=True), key=app_key)
    events = answer.events()
    first_content = next(i for i, (name, _) in enumerate(events) if name is None)
    assert ("comment", "keep-alive") in events[:first_content]
    assert events[-1] == (None, "[DONE]")


def test_every_request_of_a_chat_is_kept(models, app_key):
    for index in range(3):
        post(ask(f"q{index}", chatId="c1", stream=index % 2 == 1), key=app_key)
    assert Chat.objects.count() == 1
    assert ChatItem.objects.count() == 6


def test_a_question_and_its_answer_get_distinct_times(app_key, provider_models):
    """The question is stamped when asked, the answer when it was complete."""
    from chat.models import ChatItem

    assert post(ask("hi", chatId="times"), key=app_key).status_code == 200
    question, answer = ChatItem.objects.order_by("id")
    assert (question.obj, answer.obj) == ("Human", "AI")
    assert question.time < answer.time
    assert (answer.time - question.time).total_seconds() == pytest.approx(answer.duration_seconds, abs=0.01)
