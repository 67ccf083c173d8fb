"""Calling chat models: OpenAI-compatible `/chat/completions` over HTTP, or the built-in
offline responder, behind one interface.

httpx rather than requests: the streaming path must hold a thousand open streams per process,
which needs an async client (see docs/benchmarks.md); the sync client serves the few sync
callers with the same request building and error mapping. Clients are pooled: one sync client
per process, one async client per event loop.
"""

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from chat import offline_responder, tokens
from providers.registry import AiModel
from providers.errors import ProviderError, ProviderTimeout


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # True when the provider gave none and we counted

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class Completion:
    text: str
    usage: Usage


def estimated_usage(messages: list[dict], answer: str) -> Usage:
    return Usage(tokens.estimate_messages(messages), tokens.estimate_text(answer), estimated=True)


# --- HTTP plumbing ------------------------------------------------------------------------

_sync_client: httpx.Client | None = None
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


def _limits() -> httpx.Limits:
    return httpx.Limits(
        max_connections=settings.PROVIDER_MAX_CONNECTIONS,
        max_keepalive_connections=settings.PROVIDER_MAX_KEEPALIVE,
    )


def _sync() -> httpx.Client:
    global _sync_client
    if _sync_client is None:
        _sync_client = httpx.Client(limits=_limits())
    return _sync_client


def _async() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = httpx.AsyncClient(limits=_limits())
    return client


def _request(model: AiModel, messages: list[dict], *, temperature: float, max_tokens: int, stream: bool):
    body = {
        "model": model.name,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": min(max_tokens, model.max_response),
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    timeout = httpx.Timeout(model.timeout, connect=settings.PROVIDER_CONNECT_TIMEOUT)
    return f"{model.base_url}/chat/completions", body, headers, timeout


def _status_error(model: AiModel, response: httpx.Response, body: bytes) -> ProviderError:
    detail = ""
    try:
        detail = json.loads(body).get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        pass
    message = f"Model '{model.name}' answered HTTP {response.status_code}"
    return ProviderError(f"{message}: {detail}" if detail else message)


def _transport_error(model: AiModel, exc: httpx.HTTPError) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"Model '{model.name}' did not answer in time.")
    return ProviderError(f"Model '{model.name}' could not be reached: {exc.__class__.__name__}.")


def _parse_completion(model: AiModel, messages: list[dict], data) -> Completion:
    try:
        text = data["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ProviderError(f"Model '{model.name}' sent a malformed answer.") from None
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        return Completion(text, Usage(int(usage["prompt_tokens"]), int(usage.get("completion_tokens", 0))))
    return Completion(text, estimated_usage(messages, text))


# --- one answer ---------------------------------------------------------------------------


def complete_sync(*, model: AiModel, messages: list[dict], temperature: float, max_tokens: int) -> Completion:
    """One whole answer, for sync callers (e.g. the question guide)."""
    if model.is_builtin:
        return _offline_completion(messages)
    url, body, headers, timeout = _request(model, messages, temperature=temperature, max_tokens=max_tokens, stream=False)
    try:
        response = _sync().post(url, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _transport_error(model, exc) from exc
    if response.status_code != 200:
        raise _status_error(model, response, response.content)
    return _parse_completion(model, messages, _json(model, response.content))


async def complete(*, model: AiModel, messages: list[dict], temperature: float, max_tokens: int) -> Completion:
    """One whole answer, awaited."""
    if model.is_builtin:
        return _offline_completion(messages)
    url, body, headers, timeout = _request(model, messages, temperature=temperature, max_tokens=max_tokens, stream=False)
    try:
        response = await _async().post(url, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _transport_error(model, exc) from exc
    if response.status_code != 200:
        raise _status_error(model, response, response.content)
    return _parse_completion(model, messages, _json(model, response.content))


def _json(model: AiModel, content: bytes):
    try:
        return json.loads(content)
    except ValueError:
        raise ProviderError(f"Model '{model.name}' sent a malformed answer.") from None


def _offline_completion(messages: list[dict]) -> Completion:
    text = offline_responder.answer(messages)
    return Completion(text, estimated_usage(messages, text))


# --- streams ------------------------------------------------------------------------------


@dataclass
class AnswerStream:
    """An opened answer stream: iterate `deltas()` for text; `usage` is set when it ends."""

    model: AiModel
    messages: list[dict]
    _response: httpx.Response | None = None
    _pieces: list[str] = field(default_factory=list)
    usage: Usage | None = None
    text: str = ""

    async def deltas(self) -> AsyncIterator[str]:
        source = self._provider_deltas() if self._response is not None else self._offline_deltas()
        async for piece in source:
            self.text += piece
            yield piece
        if self.usage is None:
            self.usage = estimated_usage(self.messages, self.text)

    async def _offline_deltas(self) -> AsyncIterator[str]:
        for piece in self._pieces:
            yield piece

    async def _provider_deltas(self) -> AsyncIterator[str]:
        done = False
        try:
            async for line in self._response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # comments, event names, blank separators
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                piece = self._read_chunk(payload)
                if piece:
                    yield piece
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"Model '{self.model.name}' stopped sending mid-answer.") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"Model '{self.model.name}' ended its stream early (connection broken).") from exc
        finally:
            await self._response.aclose()
        if not done:
            raise ProviderError(f"Model '{self.model.name}' ended its stream early.")

    def _read_chunk(self, payload: str) -> str:
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise ProviderError(f"Model '{self.model.name}' sent a malformed stream chunk.") from None
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error"):
            raise ProviderError(f"Model '{self.model.name}' failed mid-stream: {chunk['error']}")
        usage = chunk.get("usage")
        if isinstance(usage, dict) and "prompt_tokens" in usage:
            self.usage = Usage(int(usage["prompt_tokens"]), int(usage.get("completion_tokens", 0)))
        choices = chunk.get("choices") or []
        if choices and isinstance(choices[0], dict):
            return (choices[0].get("delta") or {}).get("content") or ""
        return ""

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()


async def open_stream(*, model: AiModel, messages: list[dict], temperature: float, max_tokens: int) -> AnswerStream:
    """Send the request and wait for the provider's status, so a refusal (4xx/5xx) is raised
    here, before our own response starts; the body is then read by `AnswerStream.deltas()`."""
    if model.is_builtin:
        text = offline_responder.answer(messages)
        return AnswerStream(model, messages, _pieces=offline_responder.pieces(text))
    url, body, headers, timeout = _request(model, messages, temperature=temperature, max_tokens=max_tokens, stream=True)
    client = _async()
    try:
        response = await client.send(client.build_request("POST", url, json=body, headers=headers, timeout=timeout), stream=True)
    except httpx.HTTPError as exc:
        raise _transport_error(model, exc) from exc
    if response.status_code != 200:
        content = await response.aread()
        await response.aclose()
        raise _status_error(model, response, content)
    return AnswerStream(model, messages, _response=response)
