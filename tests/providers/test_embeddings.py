"""providers/embeddings.py: the built-in lexical embedding, and the OpenAI-compatible client
against the local provider's `/v1/embeddings` (and a tiny flaky server) over real HTTP.

No timing assertions: a timeout is shown by the client giving up while the provider waits."""

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from providers.embeddings import (
    BATCH_SIZE,
    dimensions_of,
    embed,
    estimate_tokens,
    lexical_embedding,
)
from providers.errors import ProviderError, ProviderTimeout
from providers.registry import BUILTIN_EMBEDDING, AiModel, get_model
from providers.words import words
from tests.fake_provider import embed as fake_vector


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.EMBEDDING_HTTP_BACKOFF_SECONDS = 0
    settings.EMBEDDING_HTTP_RETRIES = 2


@pytest.fixture
def model(provider_models) -> AiModel:
    return get_model("fake-embedding")


def cosine(a, b) -> float:
    return float(np.dot(a, b))


# --- the built-in lexical embedding -----------------------------------------------------------


def test_builtin_is_512_unit_vectors_and_deterministic():
    builtin = get_model(BUILTIN_EMBEDDING)
    assert builtin.is_builtin and dimensions_of(builtin) == 512
    result = embed(model=builtin, texts=["Reset your password in Settings.", "重置密码请打开设置"])
    assert result.vectors.shape == (2, 512) and result.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0)
    again = embed(model=builtin, texts=["Reset your password in Settings."]).vectors[0]
    assert np.array_equal(again, result.vectors[0])
    assert result.tokens == len(words("Reset your password in Settings.")) + len(words("重置密码请打开设置"))


def test_builtin_matches_shared_words_not_meaning():
    [query, same_words, other_words, meaning] = lexical_embedding(
        ["refund policy", "Our refund policy: refunds within 30 days", "Zebras live in Africa", "money back rules"]
    )
    assert cosine(query, same_words) > 0.4
    assert cosine(query, same_words) > cosine(query, other_words)
    assert abs(cosine(query, meaning)) < 0.2  # a lexical model knows no synonyms


def test_builtin_chinese_words_and_case():
    [a, b, c] = lexical_embedding(["北京是中国的首都", "首都北京", "PASSWORD Reset"])
    [d] = lexical_embedding(["password reset"])
    assert cosine(a, b) > 0.3
    assert np.allclose(c, d)  # words are lowercased


def test_builtin_sublinear_term_frequency():
    [once, many, other] = lexical_embedding(["apple banana", "apple apple apple apple banana", "banana"])
    # Four times the word is not four times the weight: 1 + ln 4 ≈ 2.4.
    assert cosine(many, other) > 0.3
    assert cosine(once, many) > 0.9


def test_builtin_leaves_function_words_out_unless_nothing_else():
    [question, keywords, only_function, chinese, chinese_keywords] = lexical_embedding(
        ["How do I reset the password?", "reset password", "how to do it", "我的密码在哪里", "密码 哪里"]
    )
    assert np.allclose(question, keywords)  # "how", "do", "i", "the" carry no weight
    assert only_function.any()  # a text of function words only keeps them
    assert cosine(chinese, chinese_keywords) > 0.99  # 我 的 在 left out
    billed = embed(model=get_model(BUILTIN_EMBEDDING), texts=["How do I reset the password?"]).tokens
    assert billed == len(words("How do I reset the password?"))  # every word is still billed


def test_builtin_text_without_words_is_a_zero_row():
    vectors = lexical_embedding(["", "  ,.!?  ", "word"])
    assert not vectors[0].any() and not vectors[1].any() and vectors[2].any()


def test_no_texts_no_call(model, provider_models):
    assert embed(model=model, texts=[]).vectors.shape[0] == 0
    assert provider_models.requests == []


# --- OpenAI-compatible HTTP ---------------------------------------------------------------


def test_vectors_come_back_in_order_normalised_with_usage(model, provider_models):
    texts = ["first text", "second text here"]
    result = embed(model=model, texts=texts)
    assert result.vectors.shape == (2, 64)
    assert np.allclose(result.vectors, np.array([fake_vector(t, 64) for t in texts], dtype=np.float32), atol=1e-6)
    assert result.tokens == 5  # the provider's usage (it counts words)
    [sent] = provider_models.requests
    assert sent["path"] == "/v1/embeddings"
    assert sent["headers"]["authorization"] == "Bearer test-provider-key"
    assert sent["body"] == {"model": "fake-embedding", "input": texts}


def test_batches_of_at_most_64(model, provider_models):
    texts = [f"text number {i}" for i in range(2 * BATCH_SIZE + 5)]
    result = embed(model=model, texts=texts)
    assert result.vectors.shape == (len(texts), 64)
    assert [len(r["body"]["input"]) for r in provider_models.requests] == [64, 64, 5]
    assert np.allclose(result.vectors[-1], fake_vector(texts[-1], 64), atol=1e-6)
    assert result.tokens == 3 * len(texts)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_statuses_are_retried_then_reported(model, provider_models, status):
    with pytest.raises(ProviderError) as caught:
        embed(model=model, texts=[f"boom [[fail:{status}]]"])
    assert not isinstance(caught.value, ProviderTimeout)
    assert len(provider_models.requests) == 3  # 1 + EMBEDDING_HTTP_RETRIES
    message = caught.value.message
    assert f"Embedding model 'fake-embedding' at {provider_models.base_url}: HTTP {status} after 3 attempts" in message
    assert f"[[fail:{status}]]" in message  # the provider's own text is kept


def test_client_errors_are_not_retried(model, provider_models):
    with pytest.raises(ProviderError) as caught:
        embed(model=model, texts=["bad [[fail:400]]"])
    assert len(provider_models.requests) == 1
    assert "HTTP 400:" in caught.value.message


def test_a_slow_provider_times_out(model, provider_models):
    slow = dataclasses.replace(model, timeout=0.3)
    with pytest.raises(ProviderTimeout) as caught:
        embed(model=slow, texts=["slow [[delay:3]]"])
    assert "no answer within 0.3 s" in caught.value.message


def test_an_unreachable_provider_is_a_clear_error(model):
    gone = dataclasses.replace(model, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ProviderError) as caught:
        embed(model=gone, texts=["x"])
    assert "connection failed after 3 attempts" in caught.value.message


def test_declared_dimensions_must_match(model):
    wrong = dataclasses.replace(model, dimensions=128)
    with pytest.raises(ProviderError) as caught:
        embed(model=wrong, texts=["x"])
    assert "answered 64-dimension vectors but is declared with 128" in caught.value.message


# --- a provider that fails first, or answers oddly ------------------------------------------


class Scripted:
    """A local HTTP server answering POST /v1/embeddings from a script of (status, body)."""

    def __init__(self, script):
        self.script, self.calls, self.headers = list(script), [], []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                owner.calls.append(body)
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, payload, headers = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(*script):
        server = Scripted(script)
        servers.append(server)
        return server, AiModel(name="scripted", type="embedding", base_url=server.base_url, timeout=5)

    yield make
    for server in servers:
        server.close()


def ok(vectors, usage=None):
    body = {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}
    if usage is not None:
        body["usage"] = usage
    return 200, body, {}


def test_a_failure_then_success_is_retried_transparently(scripted):
    server, model = scripted(
        (503, {"error": {"message": "overloaded"}}, {}),
        (429, {"error": {"message": "slow down"}}, {"retry-after": "0"}),
        ok([[3.0, 4.0]], usage={"prompt_tokens": 7, "total_tokens": 7}),
    )
    result = embed(model=model, texts=["hello"])
    assert len(server.calls) == 3
    assert np.allclose(result.vectors, [[0.6, 0.8]])  # normalised here
    assert result.tokens == 7
    assert "authorization" not in server.headers[0]  # no key declared, none sent


def test_unordered_answers_are_put_back_in_order_and_usage_estimated(scripted):
    server, model = scripted(
        (200, {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]}, {}),
    )
    result = embed(model=model, texts=["first", "北京 second"])
    assert result.vectors.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert result.tokens == estimate_tokens("first") + estimate_tokens("北京 second")


@pytest.mark.parametrize(
    "body",
    [{"data": []}, {"nothing": True}, {"data": [{"index": 0, "embedding": [1.0, "x"]}]},
     {"data": [{"index": 0, "embedding": []}]}, {"data": "?"}, ["not", "an", "object"]],
)
def test_unreadable_answers_are_a_clear_error(scripted, body):
    _, model = scripted((200, body, {}))
    with pytest.raises(ProviderError) as caught:
        embed(model=model, texts=["hello"])
    assert "Embedding model 'scripted'" in caught.value.message and "unreadable answer" in caught.value.message


def test_estimate_tokens():
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd efgh") == 2
    assert estimate_tokens("北京") == 2
