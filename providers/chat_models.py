"""Calling chat models: OpenAI-compatible `/chat/completions` over HTTP, or the built-in
offline responder, behind one interface.

Streams are read with providers/event_stream.py (the SSE wire format: events, comments,
multi-line data); the HTTP plumbing (pooled clients, timeouts, error mapping) is
providers/http.py.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp

from providers import event_stream, http, offline_responder, token_count
from providers.errors import ProviderError, ProviderTimeout
from providers.registry import AiModel

DONE = "[DONE]"
# A provider's token count above this is not believed (and would overflow a usage counter).
MAX_TOKEN_COUNT = 10**9


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
    return Usage(token_count.estimate_messages(messages), token_count.estimate_text(answer), estimated=True)


def _token_count(value) -> int | None:
    """A count as a provider should send it (a whole, non-negative, plausible number), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # null, a string, an object…
    if isinstance(value, float) and not value.is_integer():
        return None  # also NaN and infinities
    return int(value) if 0 <= value <= MAX_TOKEN_COUNT else None


def usage_from(raw, messages: list[dict], answer: str) -> Usage:
    """The usage of a call from what the provider sent (`raw`, untrusted: any JSON value).

    Each count the provider got right is kept; a missing or malformed one (null, a string,
    negative, fractional, absurd) is estimated instead, and the usage is then marked estimated.
    """
    raw = raw if isinstance(raw, dict) else {}
    prompt = _token_count(raw.get("prompt_tokens"))
    completion = _token_count(raw.get("completion_tokens"))
    estimated = prompt is None or completion is None
    if prompt is None:
        prompt = token_count.estimate_messages(messages)
    if completion is None:
        completion = token_count.estimate_text(answer)
    return Usage(prompt, completion, estimated=estimated)


def _text(content) -> str | None:
    """A message's or delta's `content` as text: a string, null (no text), or text parts;
    None when it is none of these."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return None


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
    return f"{model.base_url}/chat/completions", body


def _parse_completion(model: AiModel, messages: list[dict], data) -> Completion:
    """The answer's text and usage; every field is checked (a provider is not trusted)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    text = _text(message.get("content")) if isinstance(message, dict) else None
    if text is None:
        raise ProviderError(f"Model '{model.name}' sent a malformed answer.")
    return Completion(text, usage_from(data.get("usage"), messages, text))


# --- one answer ---------------------------------------------------------------------------


def complete_sync(
    *, model: AiModel, messages: list[dict], temperature: float, max_tokens: int, quotes: list[dict] | None = None
) -> Completion:
    """One whole answer, for sync callers (e.g. the question guide). ``quotes``: the knowledge
    base quotes of a grounded turn (plain dicts) — only the offline responder reads them, a
    model has them in its prompt already."""
    if model.is_builtin:
        return _offline_completion(messages, quotes, min(max_tokens, model.max_response))
    url, body = _request(model, messages, temperature=temperature, max_tokens=max_tokens, stream=False)
    return _parse_completion(model, messages, http.post_json_sync(model, url, body))


async def complete(
    *, model: AiModel, messages: list[dict], temperature: float, max_tokens: int, quotes: list[dict] | None = None
) -> Completion:
    """One whole answer, awaited (``quotes``: as for `complete_sync`)."""
    if model.is_builtin:
        return _offline_completion(messages, quotes, min(max_tokens, model.max_response))
    url, body = _request(model, messages, temperature=temperature, max_tokens=max_tokens, stream=False)
    return _parse_completion(model, messages, await http.post_json(model, url, body))


def _offline_completion(messages: list[dict], quotes: list[dict] | None, max_tokens: int) -> Completion:
    text = offline_responder.answer(messages, quotes, max_tokens)
    return Completion(text, estimated_usage(messages, text))


# --- streams ------------------------------------------------------------------------------


@dataclass
class AnswerStream:
    """An opened answer stream: iterate `deltas()` for text; `usage` is set when it ends."""

    model: AiModel
    messages: list[dict]
    _response: aiohttp.ClientResponse | None = None
    _pieces: list[str] = field(default_factory=list)
    _raw_usage: object = None  # the provider's `usage`, as sent
    usage: Usage | None = None  # set when the stream has ended
    text: str = ""

    async def deltas(self) -> AsyncIterator[str]:
        source = self._provider_deltas() if self._response is not None else self._offline_deltas()
        async for piece in source:
            self.text += piece
            yield piece
        self.usage = self.usage_so_far()

    def usage_so_far(self) -> Usage:
        """The usage of what has been answered (the provider's counts, checked, else estimated)."""
        return usage_from(self._raw_usage, self.messages, self.text)

    async def _offline_deltas(self) -> AsyncIterator[str]:
        for piece in self._pieces:
            yield piece

    async def _provider_deltas(self) -> AsyncIterator[str]:
        done = False
        try:
            if not event_stream.is_event_stream(self._response.headers.get("Content-Type", "")):
                raise ProviderError(f"Model '{self.model.name}' did not answer with an event stream.")
            async for data in event_stream.event_data(http.body_chunks(self._response)):
                if data == DONE:
                    done = True
                    break
                if not data:
                    continue  # an event with empty data
                piece = self._read_chunk(data)
                if piece:
                    yield piece
        except asyncio.TimeoutError as exc:  # aiohttp's read timeouts are also ClientErrors
            raise ProviderTimeout(f"Model '{self.model.name}' stopped sending mid-answer.") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(f"Model '{self.model.name}' ended its stream early (connection broken).") from exc
        finally:
            self._response.release()  # back to the pool if read to its end, else closed
        if not done:
            raise ProviderError(f"Model '{self.model.name}' ended its stream early.")

    def _read_chunk(self, payload: str) -> str:
        """A chunk's text. Every field is checked: an odd chunk (a delta that is not an object,
        content that is not text, choices that are not a list) adds nothing, never fails."""
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise ProviderError(f"Model '{self.model.name}' sent a malformed stream chunk.") from None
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error"):
            raise ProviderError(f"Model '{self.model.name}' failed mid-stream: {chunk['error']}"[:1000])
        if chunk.get("usage") is not None:  # OpenAI sends `"usage": null` in every other chunk
            self._raw_usage = chunk["usage"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        delta = choice.get("delta") if isinstance(choice, dict) else None
        return (_text(delta.get("content")) or "") if isinstance(delta, dict) else ""

    async def close(self) -> None:
        if self._response is not None:
            self._response.release()


async def open_stream(
    *, model: AiModel, messages: list[dict], temperature: float, max_tokens: int, quotes: list[dict] | None = None
) -> AnswerStream:
    """Send the request and wait for the provider's status, so a refusal (4xx/5xx) is raised
    here, before our own response starts; the body is then read by `AnswerStream.deltas()`.
    ``quotes``: as for `complete_sync`."""
    if model.is_builtin:
        text = offline_responder.answer(messages, quotes, min(max_tokens, model.max_response))
        return AnswerStream(model, messages, _pieces=offline_responder.pieces(text))
    url, body = _request(model, messages, temperature=temperature, max_tokens=max_tokens, stream=True)
    return AnswerStream(model, messages, _response=await http.open_stream(model, url, body))
