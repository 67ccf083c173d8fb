"""Query extension (`datasetSearchUsingExtensionQuery`): a language model writes a few
alternative phrasings of the question; each is recalled like the question and the lists fused.

With only the built-in offline responder (no language model declared) there is nothing to ask:
extension is skipped and the search says so in its notes. A failing model is also only noted —
the search still answers from the question itself.
"""

import json
import re
from dataclasses import dataclass

from providers.chat_models import complete_sync
from providers.errors import ProviderError
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


def complete(*, model: AiModel, messages: list[dict]) -> tuple[str, int]:
    """One non-stream answer of a chat model: (text, tokens used)."""
    completion = complete_sync(model=model, messages=messages, temperature=0, max_tokens=300)
    return completion.text, completion.usage.total_tokens
