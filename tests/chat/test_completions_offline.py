"""Chat completions with no model configured: the built-in offline responder answers, honestly,
and every turn is stored as a FastGPT client would find it."""

from chat.models import Chat, ChatItem
from providers.offline_responder import NO_MODEL_ANSWER
from providers.registry import BUILTIN_LLM
from keys.models import ApiKey
from tests.chat.completion_calls import ask, post


def test_non_stream_answer_has_the_openai_shape(app_key):
    answer = post(ask("导演是谁", chatId="111"), key=app_key)
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == "111"
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and body["created"] > 1_600_000_000
    assert body["model"] == BUILTIN_LLM
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": NO_MODEL_ANSWER}, "finish_reason": "stop"}
    ]
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "responseData" not in body


def test_the_offline_answer_says_no_model_is_configured_and_echoes_nothing(app_key):
    text = post(ask("What is the secret word xyzzy?"), key=app_key).json()["choices"][0]["message"]["content"]
    assert "No language model is configured" in text
    assert "xyzzy" not in text


def test_a_turn_is_stored_as_a_human_and_an_ai_record(app_key, app):
    post(ask("导演是谁", chatId="111", customUid="user-7", variables={"lang": "zh"}), key=app_key)
    chat = Chat.objects.get()
    assert (chat.app, chat.team_id, chat.chat_id) == (app, app.team_id, "111")
    assert (chat.source, chat.source_name, chat.custom_uid) == ("api", "app", "user-7")
    assert chat.title == "导演是谁"
    assert chat.variables == {"lang": "zh"}
    assert chat.metadata["originIp"] == "127.0.0.1"
    human, ai = ChatItem.objects.filter(chat=chat).order_by("id")
    assert (human.obj, human.value) == ("Human", [{"type": "text", "text": {"content": "导演是谁"}}])
    assert (ai.obj, ai.text, ai.error_msg, ai.interrupted) == ("AI", NO_MODEL_ANSWER, "", False)
    assert ai.response_data[0]["moduleType"] == "chatNode"
    assert ai.duration_seconds is not None


def test_without_chat_id_a_new_chat_is_stored_and_its_id_returned(app_key):
    body = post(ask("hello"), key=app_key).json()
    chat = Chat.objects.get()
    assert body["id"] == chat.chat_id and len(chat.chat_id) == 24
    assert ChatItem.objects.filter(chat=chat).count() == 2


def test_an_empty_chat_id_starts_a_new_chat_each_time(app_key):
    first = post(ask("a", chatId=""), key=app_key).json()["id"]
    second = post(ask("b", chatId=""), key=app_key).json()["id"]
    assert first != second and Chat.objects.count() == 2


def test_same_chat_id_appends_and_merges_variables(app_key):
    post(ask("one", chatId="c1", variables={"a": 1, "b": 1}), key=app_key)
    post(ask("two", chatId="c1", variables={"b": 2}, customUid="u2"), key=app_key)
    chat = Chat.objects.get()
    assert chat.variables == {"a": 1, "b": 2}
    assert chat.custom_uid == "u2"
    assert [i.obj for i in chat.items.order_by("id")] == ["Human", "AI", "Human", "AI"]
    assert chat.title == "one"


def test_response_chat_item_id_names_the_ai_record_and_cannot_repeat(app_key):
    body = post(ask("one", chatId="c1", responseChatItemId="my-ai-1"), key=app_key).json()
    assert body["responseChatItemId"] == "my-ai-1"
    assert ChatItem.objects.get(data_id="my-ai-1").obj == "AI"
    again = post(ask("two", chatId="c1", responseChatItemId="my-ai-1"), key=app_key)
    assert again.status_code == 400
    assert "responseChatItemId" in again.json()["message"]
    assert ChatItem.objects.count() == 2


def test_a_question_data_id_is_kept(app_key):
    body = {"chatId": "c1", "messages": [{"role": "user", "content": "hi", "dataId": "q-1"}]}
    post(body, key=app_key)
    assert ChatItem.objects.get(data_id="q-1").obj == "Human"


def test_detail_adds_response_data_and_new_variables(app_key, app):
    body = post(ask("hi", chatId="c1", detail=True, variables={"x": "1"}), key=app_key).json()
    node = body["responseData"][0]
    assert (node["moduleType"], node["nodeId"], node["model"]) == ("chatNode", "chatNode", BUILTIN_LLM)
    assert node["tokens"] == body["usage"]["total_tokens"]
    assert node["query"] == "hi"
    assert node["historyPreview"] == [{"obj": "Human", "value": "hi"}]
    assert node["maxToken"] == app.max_tokens
    assert isinstance(node["runningTime"], float)
    assert body["newVariables"] == {"x": "1"}


def test_usage_is_added_to_the_keys_usage_points(app_key):
    total = post(ask("hi"), key=app_key).json()["usage"]["total_tokens"]
    total += post(ask("again"), key=app_key).json()["usage"]["total_tokens"]
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points == total


def test_a_key_reaching_its_cap_is_refused_on_the_next_call(make_key, team, app):
    key = make_key(team, app, max_usage_points=1)
    assert post(ask("hi"), key=key).status_code == 200
    assert post(ask("hi"), key=key).status_code == 402


def test_stream_without_detail_is_plain_openai_chunks(app_key):
    answer = post(ask("hi", stream=True), key=app_key)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["X-Accel-Buffering"] == "no"
    events = answer.events()
    assert all(name is None for name, _ in events)  # no `event:` lines at all
    assert "event:" not in answer.text
    assert events[-1] == (None, "[DONE]")
    import json

    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == NO_MODEL_ANSWER
    assert len({c["id"] for c in chunks}) == 1
    assert Chat.objects.get().chat_id == chunks[0]["id"]


def test_stream_include_usage_adds_a_usage_chunk(app_key):
    import json

    events = post(ask("hi", stream=True, stream_options={"include_usage": True}), key=app_key).events()
    usage_chunk = json.loads(events[-2][1])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] > 0


def test_stream_with_detail_uses_fastgpts_named_events_in_order(app_key):
    import json

    events = post(ask("hi", stream=True, detail=True), key=app_key).events()
    names = [name for name, _ in events]
    assert names[0] == "flowNodeStatus"
    assert json.loads(events[0][1]) == {"status": "running", "name": "AI Chat"}
    assert set(names[1:-1]) == {"answer"}
    assert events[-2] == ("answer", "[DONE]")
    assert json.loads(events[-3][1])["choices"][0]["finish_reason"] == "stop"
    assert names[-1] == "flowResponses"
    flow = json.loads(events[-1][1])
    assert flow[0]["moduleType"] == "chatNode"
    assert flow == ChatItem.objects.get(obj="AI").response_data


def test_a_stream_whose_turn_cannot_be_stored_still_ends_and_says_so(app_key, monkeypatch):
    import json

    from django.db import DatabaseError

    from chat.completions import services

    def broken_save(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(services, "save_turn", broken_save)
    events = post(ask("hi", stream=True), key=app_key).events()
    assert events[-1] == (None, "[DONE]")
    assert json.loads(events[-2][1])["error"]["statusText"] == "storageError"
