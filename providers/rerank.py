"""Rerank models: OpenAI-compatible `POST {baseUrl}/rerank` in the Jina/Cohere shape.

    request  {"model", "query", "documents": [str, ...], "top_n"}
    response {"results": [{"index", "relevance_score"}, ...], "usage": {"total_tokens"}?}

Served by Jina, Cohere (v2 compatible), Xinference, vLLM, TEI's OpenAI router, OneAPI/NewAPI.
A declared model of type `rerank` names its `baseUrl` (e.g. `http://host:9997/v1`) and
optionally its `timeout` in seconds (default 60; searches usually want a few seconds).

Sync on purpose: the search pipeline runs in a sync request. One pooled client per process.
"""

import json
from dataclasses import dataclass

import httpx
from django.conf import settings

from providers.errors import ProviderError, ProviderTimeout
from providers.registry import AiModel

_client: httpx.Client | None = None


@dataclass(frozen=True)
class RerankScore:
    index: int  # position of the document in the request's `documents`
    score: float  # the model's relevance_score, higher is better (usually 0..1)


@dataclass
class Reranked:
    scores: list[RerankScore]  # best first
    tokens: int | None  # tokens the provider billed, None when it reports none


def _http() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(
            limits=httpx.Limits(
                max_connections=settings.PROVIDER_MAX_CONNECTIONS,
                max_keepalive_connections=settings.PROVIDER_MAX_KEEPALIVE,
            )
        )
    return _client


def rerank(*, model: AiModel, query: str, documents: list[str], top_n: int | None = None) -> Reranked:
    """Score `documents` against `query`, best first.

    Raises ProviderError (bad status, unreachable, malformed answer) or ProviderTimeout."""
    if model.type != "rerank":
        raise ProviderError(f"Model '{model.name}' is not a rerank model.")
    if model.is_builtin:
        raise ProviderError(f"Model '{model.name}' has no provider to call.")
    if not documents:
        return Reranked(scores=[], tokens=0)
    body = {
        "model": model.name,
        "query": query,
        "documents": documents,
        "top_n": len(documents) if top_n is None else top_n,
    }
    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    timeout = httpx.Timeout(model.timeout, connect=min(model.timeout, settings.PROVIDER_CONNECT_TIMEOUT))
    try:
        response = _http().post(f"{model.base_url}/rerank", json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"Rerank model '{model.name}' did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"Rerank model '{model.name}' could not be reached: {exc.__class__.__name__}."
        ) from exc
    if response.status_code != 200:
        raise ProviderError(_status_message(model, response))
    return _parse(model, response.content, len(documents))


def _status_message(model: AiModel, response: httpx.Response) -> str:
    detail = ""
    try:
        payload = json.loads(response.content)
        error = payload.get("error") if isinstance(payload, dict) else None
        detail = error.get("message", "") if isinstance(error, dict) else str(error or payload.get("detail", ""))
    except (ValueError, AttributeError):
        pass
    message = f"Rerank model '{model.name}' answered HTTP {response.status_code}"
    return f"{message}: {detail}" if detail else message


def _parse(model: AiModel, content: bytes, count: int) -> Reranked:
    malformed = ProviderError(f"Rerank model '{model.name}' sent a malformed answer.")
    try:
        payload = json.loads(content)
        results = payload["results"]
        scores = []
        for item in results:
            index, score = item["index"], item["relevance_score"]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise malformed
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise malformed
            scores.append(RerankScore(index=index, score=float(score)))
    except (ValueError, KeyError, TypeError):
        raise malformed from None
    scores.sort(key=lambda s: (-s.score, s.index))
    usage = payload.get("usage")
    tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
    return Reranked(scores=scores, tokens=int(tokens) if isinstance(tokens, (int, float)) else None)
