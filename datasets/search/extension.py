"""Query extension (`datasetSearchUsingExtensionQuery`): a language model writes a few
alternative phrasings of the question; each is recalled like the question and the lists fused.

With only the built-in offline responder (no language model declared) there is nothing to ask:
extension is skipped and the search says so in its notes. A failing model is also only noted —
the search still answers from the question itself.
"""

import json
import re
from dataclasses import dataclass

import httpx
from django.conf import settings

from datasets.search.budget import count_tokens
from providers.errors import ProviderError, ProviderTimeout
from providers.registry import AiModel, default_model, get_model

MAX_ALTERNATIVES = 3
MAX_QUERY_CHARS = 500

PROMPT = """You help a search engine. Rewrite the user's question as up to {count} alternative \
search queries that would find the same information: use synonyms, spell out abbreviations, \
make implicit subjects explicit, and keep the question's language.
{background}
Question: {query}

Answer with a JSON array of strings and nothing else, e.g. ["first query", "second query"]."""


@dataclass
class ExtensionResult:
    model: str
    queries: list[str]  # the alternatives (the question itself not included)
    tokens: int


class ExtensionSkipped(Exception):
    """Extension could not run; the message says why (it becomes a note of the search)."""


def extend_query(*, query: str, model_name: str, background: str) -> ExtensionResult:
    """Alternative queries for `query`; raises ExtensionSkipped when none could be had."""
    model = get_model(model_name) if model_name else default_model("llm")
    if model is None or model.type != "llm":
        raise ExtensionSkipped(f"query extension skipped: '{model_name}' is not a configured language model.")
    if model.is_builtin:
        raise ExtensionSkipped(
            "query extension skipped: no language model is configured (only the built-in offline "
            "responder, which cannot rewrite queries)."
        )
    background = f"Background of the knowledge base: {background.strip()}\n" if background.strip() else ""
    prompt = PROMPT.format(count=MAX_ALTERNATIVES, background=background, query=query)
    messages = [{"role": "user", "content": prompt}]
    try:
        text, tokens = complete(model=model, messages=messages)
    except ProviderError as exc:
        raise ExtensionSkipped(f"query extension failed ({exc.message}); searched with the question only.") from exc
    alternatives = parse_alternatives(text, original=query)
    return ExtensionResult(model=model.name, queries=alternatives, tokens=tokens)


def parse_alternatives(text: str, *, original: str) -> list[str]:
    """The queries in a model's answer: a JSON array of strings if there is one, else one per
    line (list markers removed). Blank ones, repeats and the question itself are dropped."""
    found: list[str] = []
    match = re.search(r"\[.*\]", text, re.DOTALL)
    if match:
        try:
            parsed = json.loads(match.group(0))
            if isinstance(parsed, list):
                found = [str(item) for item in parsed if isinstance(item, (str, int, float))]
        except ValueError:
            found = []
    if not found:
        found = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line) for line in text.splitlines()]
    seen = {original.strip().casefold()}
    out = []
    for item in found:
        item = item.strip().strip('"').strip()[:MAX_QUERY_CHARS]
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return out[:MAX_ALTERNATIVES]


_client: httpx.Client | None = None


def complete(*, model: AiModel, messages: list[dict]) -> tuple[str, int]:
    """One non-stream answer of a chat model: (text, tokens used).

    Merge note for the coordinator: this is the only model call here that is not in providers/;
    once the layout branch's chat client lives in providers/, this function becomes a call to
    its `complete_sync(model=..., messages=..., temperature=0, max_tokens=...)`."""
    global _client
    if _client is None:
        _client = httpx.Client()
    body = {"model": model.name, "messages": messages, "temperature": 0, "max_tokens": min(300, model.max_response)}
    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    timeout = httpx.Timeout(model.timeout, connect=settings.PROVIDER_CONNECT_TIMEOUT)
    try:
        response = _client.post(f"{model.base_url}/chat/completions", json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"Model '{model.name}' did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"Model '{model.name}' could not be reached: {exc.__class__.__name__}.") from exc
    if response.status_code != 200:
        raise ProviderError(f"Model '{model.name}' answered HTTP {response.status_code}")
    try:
        data = response.json()
        text = data["choices"][0]["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ProviderError(f"Model '{model.name}' sent a malformed answer.") from None
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
        return text, usage["total_tokens"]
    return text, count_tokens(messages[-1]["content"]) + count_tokens(text)
