"""The fake OpenAI-compatible provider (tests/fake_provider.py) and the fixtures around it.

Driven over real HTTP with `requests` (the raw wire format) and with the `openai` SDK (that a
real client accepts it). No timing assertions: a delay is shown by a client timeout that fires
while the provider waits, i.e. by what happens first, never by how long something took.
"""

import base64
import json
import struct

import openai
import pytest
import requests

from tests.fake_provider import FakeProvider, embed, split_words

FAKE_PROVIDER_KEY = "test-provider-key"  # what the fake_provider fixture requires
AUTH = {"Authorization": f"Bearer {FAKE_PROVIDER_KEY}"}


def chat(provider, content, *, stream=False, timeout=10, **fields):
    """POST one user message to /chat/completions with `requests`."""
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": content}], "stream": stream, **fields}
    return requests.post(
        f"{provider.base_url}/chat/completions", json=body, headers=AUTH, stream=stream, timeout=timeout
    )


def sse_events(response):
    """The `data:` payloads of an SSE response, decoded (the final "[DONE]" kept as is)."""
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            data = line[len(b"data: ") :].decode()
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def deltas(events):
    return [e["choices"][0]["delta"].get("content", "") for e in events if e != "[DONE]" and e["choices"]]


@pytest.fixture
def sdk(fake_provider):
    # No retries: the SDK would otherwise repeat a [[fail:500]] twice before raising.
    return openai.OpenAI(base_url=fake_provider.base_url, api_key=FAKE_PROVIDER_KEY, max_retries=0)


# --- plain answers --------------------------------------------------------------------------


def test_a_completion_answers_the_last_user_message(fake_provider):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    response = requests.post(
        f"{fake_provider.base_url}/chat/completions",
        json={"model": "fake-llm", "messages": messages, "temperature": 0.2, "max_tokens": 50},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "fake-llm"
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Answer to: second question"}, "finish_reason": "stop"}
    ]
    # 2 + 2 + 2 + 2 words sent; "Answer to: second question" is 4 words.
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12}


def test_the_sdk_reads_a_completion(sdk):
    completion = sdk.chat.completions.create(model="fake-llm", messages=[{"role": "user", "content": "hello"}])
    assert completion.choices[0].message.content == "Answer to: hello"
    assert completion.usage.prompt_tokens == 1


def test_a_stream_sends_one_chunk_per_word_then_finish_usage_and_done(fake_provider):
    response = chat(fake_provider, "tell  me more", stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)

    assert deltas(events) == ["Answer ", "to: ", "tell  ", "me ", "more", ""]
    assert "".join(deltas(events)) == "Answer to: tell  me more"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    assert events[-1] == "[DONE]"


def test_a_stream_without_include_usage_has_no_usage_chunk(fake_provider):
    events = sse_events(chat(fake_provider, "hi", stream=True))
    assert [e for e in events if e != "[DONE]" and "usage" in e] == []
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1] == "[DONE]"


def test_the_sdk_reads_a_stream(sdk):
    stream = sdk.chat.completions.create(
        model="fake-llm",
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Answer to: stream this please"
    assert chunks[-1].usage.completion_tokens == 5


def test_words_keep_their_spaces():
    for answer in ["", "  ", "one", " lead", "trail ", "a  b\nc\t d", "Answer to: x"]:
        pieces = split_words(answer)
        assert "".join(pieces) == answer
        assert len(pieces) == max(1, len(answer.split()))


# --- directives -----------------------------------------------------------------------------


def test_answer_directive_sets_the_answer(fake_provider):
    body = chat(fake_provider, "ignored [[answer:Exactly this, with  spaces.]]").json()
    assert body["choices"][0]["message"]["content"] == "Exactly this, with  spaces."
    streamed = deltas(sse_events(chat(fake_provider, "[[answer:one two three]]", stream=True)))
    assert "".join(streamed) == "one two three"


def test_directives_are_removed_from_the_default_answer(fake_provider):
    body = chat(fake_provider, "[[delay:0]] what is it [[no-usage]]").json()
    assert body["choices"][0]["message"]["content"] == "Answer to: what is it"


def test_echo_messages_answers_with_the_context_received(sdk):
    messages = [
        {"role": "system", "content": "You are the system prompt. 你好"},
        {"role": "user", "content": "show me [[echo-messages]]"},
    ]
    completion = sdk.chat.completions.create(model="fake-llm", messages=messages)
    assert json.loads(completion.choices[0].message.content) == messages
    assert "你好" in completion.choices[0].message.content  # ensure_ascii=False


@pytest.mark.parametrize(
    "status, error",
    [(500, openai.InternalServerError), (429, openai.RateLimitError), (400, openai.BadRequestError)],
)
def test_fail_directive_answers_that_status(sdk, fake_provider, status, error):
    with pytest.raises(error) as raised:
        sdk.chat.completions.create(model="fake-llm", messages=[{"role": "user", "content": f"x [[fail:{status}]]"}])
    assert raised.value.status_code == status

    response = chat(fake_provider, f"x [[fail:{status}]]", stream=True)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "code"}


def test_cut_directive_drops_the_connection_mid_stream(fake_provider):
    response = chat(fake_provider, "one two three four [[cut:2]]", stream=True)
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in response.iter_lines():
            received.append(line)
    data = [line for line in received if line.startswith(b"data: ")]
    assert len(data) == 2  # two content chunks, then nothing: no finish chunk, no [DONE]
    assert b"[DONE]" not in b"".join(received)


def test_cut_directive_makes_the_sdk_stream_fail(sdk):
    stream = sdk.chat.completions.create(
        model="fake-llm", messages=[{"role": "user", "content": "a b c [[cut:1]]"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["Answer "]


def test_cut_beyond_the_last_word_still_drops_before_the_finish(fake_provider):
    response = chat(fake_provider, "short [[cut:99]]", stream=True)
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in response.iter_lines():
            received.append(line)
    assert b"".join(received).count(b"data: ") == 3  # "Answer ", "to: ", "short"
    assert b"finish_reason\":\"stop" not in b"".join(received)


def test_no_usage_directive(fake_provider):
    assert "usage" not in chat(fake_provider, "hi [[no-usage]]").json()
    events = sse_events(chat(fake_provider, "hi [[no-usage]]", stream=True, stream_options={"include_usage": True}))
    assert [e for e in events if e != "[DONE]" and e.get("usage")] == []
    assert events[-1] == "[DONE]"


def test_delay_directive_holds_back_the_response(fake_provider):
    # The client gives up long before the delay ends: no status line came in the meantime.
    with pytest.raises(requests.exceptions.ReadTimeout):
        chat(fake_provider, "slow [[delay:30]]", timeout=(5, 0.5))
    # A short delay still answers normally.
    assert chat(fake_provider, "[[delay:0.05]] ok").json()["choices"][0]["message"]["content"] == "Answer to: ok"


def test_first_chunk_delay_sends_the_headers_first(fake_provider):
    response = chat(fake_provider, "wait [[first-chunk-delay:30]]", stream=True, timeout=(5, 2))
    assert response.status_code == 200  # the headers came at once...
    with pytest.raises(requests.exceptions.ConnectionError):  # ...the first chunk did not
        next(response.iter_lines())
    response.close()


def test_chunk_delay_sends_the_first_chunk_then_waits(fake_provider):
    response = chat(fake_provider, "a b c [[chunk-delay:30]]", stream=True, timeout=(5, 2))
    lines = response.iter_lines()
    first = next(line for line in lines if line)
    assert json.loads(first[len(b"data: ") :])["choices"][0]["delta"]["content"] == "Answer "
    with pytest.raises(requests.exceptions.ConnectionError):
        next(line for line in lines if line)
    response.close()


def test_a_bad_directive_value_is_a_400(fake_provider):
    response = chat(fake_provider, "[[delay:soon]]")
    assert response.status_code == 400
    assert "delay" in response.json()["error"]["message"]


def test_an_invalid_request_is_a_400(fake_provider):
    response = requests.post(
        f"{fake_provider.base_url}/chat/completions", json={"model": "fake-llm"}, headers=AUTH, timeout=10
    )
    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]


# --- embeddings, models, auth, recording ----------------------------------------------------


def test_embeddings_are_deterministic_unit_vectors(fake_provider):
    def post(body):
        response = requests.post(f"{fake_provider.base_url}/embeddings", json=body, headers=AUTH, timeout=10)
        assert response.status_code == 200
        return response.json()

    body = post({"model": "fake-embedding", "input": ["alpha", "beta", "alpha"]})
    vectors = [item["embedding"] for item in body["data"]]
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(len(v) == 64 for v in vectors)
    assert all(abs(sum(x * x for x in v) - 1) < 1e-9 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}

    single = post({"model": "fake-embedding", "input": "alpha", "dimensions": 8})
    assert len(single["data"][0]["embedding"]) == 8
    assert post({"model": "fake-embedding", "input": "alpha"})["data"][0]["embedding"] == vectors[0]


def test_the_sdk_reads_embeddings(sdk):
    # The SDK may ask for base64; it must decode to the same vector as the float form.
    result = sdk.embeddings.create(model="fake-embedding", input=["gamma", "delta"], dimensions=16)
    assert [len(d.embedding) for d in result.data] == [16, 16]
    assert result.data[0].embedding == pytest.approx(embed("gamma", 16), abs=1e-6)


def test_base64_embeddings_are_little_endian_float32(fake_provider):
    body = {"model": "fake-embedding", "input": "x", "dimensions": 4, "encoding_format": "base64"}
    encoded = requests.post(f"{fake_provider.base_url}/embeddings", json=body, headers=AUTH, timeout=10).json()
    decoded = struct.unpack("<4f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert decoded == pytest.approx(embed("x", 4), abs=1e-6)


def test_embedding_inputs_honour_fail(sdk):
    with pytest.raises(openai.InternalServerError):
        sdk.embeddings.create(model="fake-embedding", input=["fine", "broken [[fail:500]]"])


def test_models_are_listed(sdk):
    assert {"fake-llm", "fake-embedding"} <= {model.id for model in sdk.models.list()}


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", FAKE_PROVIDER_KEY])
def test_a_missing_or_wrong_key_is_refused(fake_provider, header):
    headers = {"Authorization": header} if header else {}
    for method, path, body in [
        ("POST", "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        ("POST", "/embeddings", {"model": "m", "input": "x"}),
        ("GET", "/models", None),
    ]:
        response = requests.request(method, f"{fake_provider.base_url}{path}", json=body, headers=headers, timeout=10)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"message", "type", "code"}


def test_the_sdk_sees_a_refused_key_as_authentication_error(fake_provider):
    client = openai.OpenAI(base_url=fake_provider.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="fake-llm", messages=[{"role": "user", "content": "x"}])


def test_no_key_configured_means_no_key_required():
    with FakeProvider() as provider:
        response = requests.get(f"{provider.base_url}/models", timeout=10)
        assert response.status_code == 200


def test_requests_are_recorded_and_reset(fake_provider):
    assert fake_provider.requests == []  # the fixture reset what earlier tests sent
    chat(fake_provider, "remember me", temperature=0.5)
    [recorded] = fake_provider.requests
    assert recorded["method"] == "POST"
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["headers"]["authorization"] == f"Bearer {FAKE_PROVIDER_KEY}"
    assert recorded["body"]["messages"] == [{"role": "user", "content": "remember me"}]
    assert recorded["body"]["temperature"] == 0.5

    # The same list over HTTP, for a provider in another process.
    over_http = requests.get(f"{fake_provider.url}/_requests", timeout=10).json()
    assert over_http == fake_provider.requests
    assert requests.delete(f"{fake_provider.url}/_requests", timeout=10).status_code == 200
    assert fake_provider.requests == []

    fake_provider.reset()
    assert fake_provider.requests == []


# --- the fixtures built on it ---------------------------------------------------------------


def test_the_fixture_key_is_the_one_required(fake_provider):
    assert fake_provider.api_key == FAKE_PROVIDER_KEY


def test_provider_models_points_the_configuration_at_the_fake(provider_models):
    from providers import registry

    llm = registry.default_model("llm")
    assert (llm.name, llm.base_url, llm.api_key) == ("fake-llm", provider_models.base_url, FAKE_PROVIDER_KEY)
    embedding = registry.get_model("fake-embedding")
    assert (embedding.type, embedding.dimensions, embedding.base_url) == ("embedding", 64, provider_models.base_url)


def test_a_changed_ai_models_setting_takes_effect_without_clearing_a_cache(settings, fake_provider):
    # providers.registry caches with functools.cache keyed on the raw setting strings.
    from providers import registry
    from tests.live_servers import provider_models_json

    settings.AI_MODELS_FILE = ""
    settings.AI_MODELS = provider_models_json(fake_provider)
    assert registry.get_model("fake-llm").base_url == fake_provider.base_url
    settings.AI_MODELS = ""
    assert registry.get_model("fake-llm") is None
    settings.AI_MODELS = provider_models_json(fake_provider)
    assert registry.get_model("fake-llm") is not None


def test_the_live_server_serves(live_server_url, transactional_db):
    assert requests.get(f"{live_server_url}/api/schema/", timeout=10).status_code == 200
    refused = requests.post(f"{live_server_url}/api/core/dataset/list", json={}, timeout=10)
    assert refused.status_code == 401


def test_the_live_server_sees_rows_the_test_commits(live_server_url, transactional_db, global_key):
    # The key row was created by this test; the subprocess reads the same database.
    headers = {"Authorization": global_key.header}
    response = requests.post(f"{live_server_url}/api/core/dataset/list", json={}, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["data"] == []
