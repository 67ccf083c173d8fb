"""providers/rerank.py against the local provider's `/v1/rerank` over real HTTP.

No timing assertions: a timeout is shown by the client giving up while the provider waits."""

import dataclasses

import httpx
import pytest

from providers.errors import ProviderError, ProviderTimeout
from providers.registry import get_model
from providers.rerank import RerankScore, rerank

DOCS = [
    "Pandas reads CSV files into data frames.",
    "The rerank model orders search results by relevance.",
    "Nothing to see here.",
    "Search results ordered: relevance decides the rerank order.",
]


@pytest.fixture
def model(provider_models):
    return get_model("fake-rerank")


def test_scores_come_back_best_first_with_their_document_index(model, provider_models):
    result = rerank(model=model, query="rerank search relevance", documents=DOCS)

    assert [s.index for s in result.scores] == [1, 3, 0, 2]
    assert result.scores[0] == RerankScore(index=1, score=1.0)
    assert result.scores[-1].score == 0.0
    assert result.tokens and result.tokens > 0
    sent = provider_models.requests[-1]
    assert sent["path"] == "/v1/rerank"
    assert sent["headers"]["authorization"] == "Bearer test-provider-key"
    assert sent["body"] == {
        "model": "fake-rerank", "query": "rerank search relevance", "documents": DOCS, "top_n": 4,
    }


def test_top_n_limits_the_results(model):
    result = rerank(model=model, query="rerank search relevance", documents=DOCS, top_n=2)
    assert [s.index for s in result.scores] == [1, 3]


def test_no_documents_make_no_call(model, provider_models):
    assert rerank(model=model, query="anything", documents=[]).scores == []
    assert provider_models.requests == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failing_provider_raises_a_clear_error(model, status):
    with pytest.raises(ProviderError) as caught:
        rerank(model=model, query=f"rerank [[fail:{status}]]", documents=DOCS)
    assert not isinstance(caught.value, ProviderTimeout)
    assert f"Rerank model 'fake-rerank' answered HTTP {status}" in caught.value.message
    assert f"[[fail:{status}]]" in caught.value.message  # the provider's own message is kept


def test_a_slow_provider_times_out(model):
    slow = dataclasses.replace(model, timeout=0.2)
    with pytest.raises(ProviderTimeout) as caught:
        rerank(model=slow, query="rerank [[delay:5]]", documents=DOCS)
    assert "did not answer in time" in caught.value.message


def test_an_unreachable_provider_raises(model):
    gone = dataclasses.replace(model, base_url="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(ProviderError) as caught:
        rerank(model=gone, query="rerank", documents=DOCS)
    assert "could not be reached" in caught.value.message


def test_a_wrong_key_is_reported(model):
    with pytest.raises(ProviderError) as caught:
        rerank(model=dataclasses.replace(model, api_key="wrong"), query="rerank", documents=DOCS)
    assert "HTTP 401" in caught.value.message


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"data": []}',
        b'{"results": [{"index": 7, "relevance_score": 0.5}]}',
        b'{"results": [{"index": 0, "relevance_score": "high"}]}',
        b'{"results": [{"relevance_score": 0.5}]}',
    ],
)
def test_a_malformed_answer_is_reported(model, monkeypatch, payload):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=payload))
    monkeypatch.setattr("providers.rerank._client", httpx.Client(transport=transport))
    with pytest.raises(ProviderError, match="malformed answer"):
        rerank(model=model, query="rerank", documents=DOCS)


def test_only_rerank_models_are_called(provider_models):
    with pytest.raises(ProviderError, match="not a rerank model"):
        rerank(model=get_model("fake-llm"), query="q", documents=DOCS)
