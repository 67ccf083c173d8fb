"""The built-in offline responder: what answers when no language model is configured.

It is not a language model and never pretends to be one. For an app that searches datasets it
answers with the best quotes the search found — source names, in order, trimmed to the app's
answer length — and says plainly that it is quoting, not generating; when the search found
nothing it says so. For an app without datasets it says that no model is configured and how
to declare one. It invents nothing and does not echo the question back.

Quotes arrive as plain data (FastGPT's quote items: `sourceName`, `q`, `a`, …): this module
knows nothing of chat or datasets.
"""

from providers.token_count import estimate_text

NO_MODEL_ANSWER = (
    "No language model is configured on this server, so this app cannot answer questions yet. "
    "An operator can declare an OpenAI-compatible model in AI_MODELS (see docs/configuration.md). "
    "(This reply comes from the built-in offline responder.)"
)
QUOTING_INTRO = (
    "No language model is configured, so this is not a generated answer: these are the "
    "knowledge base passages that best match the question, quoted as they are (built-in "
    "offline responder)."
)
NOTHING_FOUND_ANSWER = (
    "No language model is configured on this server, and the knowledge base search found "
    "nothing relevant to this question, so there is nothing to quote. "
    "(This reply comes from the built-in offline responder; an operator can declare a model "
    "in AI_MODELS, see docs/configuration.md.)"
)
CUT_MARK = " …"
DEFAULT_MAX_TOKENS = 4000
MIN_QUOTE_TOKENS = 16  # of the first quote, even when the intro alone fills the answer length


def answer(messages: list[dict], quotes: list[dict] | None = None, max_tokens: int | None = None) -> str:
    """The responder's full answer to a conversation.

    ``quotes``: None for an app without datasets; else the search's quotes, best first (an
    empty list: nothing was found). ``max_tokens``: the answer's length cap, in tokens."""
    if quotes is None:
        return NO_MODEL_ANSWER
    if not quotes:
        return NOTHING_FOUND_ANSWER
    return quoting_answer(quotes, max_tokens or DEFAULT_MAX_TOKENS)


def quoting_answer(quotes: list[dict], max_tokens: int) -> str:
    """The intro, then each quote as "[n] source" and its text, in order, while they fit in
    ``max_tokens`` (the intro always, and the start of the first quote; the last quote that
    does not fit whole is cut)."""
    parts = [QUOTING_INTRO]
    budget = max(max_tokens - estimate_text(QUOTING_INTRO), MIN_QUOTE_TOKENS)
    for position, quote in enumerate(quotes, start=1):
        source = str(quote.get("sourceName") or "(no source name)")
        text = "\n".join(str(quote.get(key) or "").strip() for key in ("q", "a") if quote.get(key)).strip()
        block = f"[{position}] {source}\n{text}"
        cost = estimate_text(block) + 1
        if cost <= budget:
            parts.append(block)
            budget -= cost
            continue
        cut = _cut(block, budget - estimate_text(CUT_MARK) - 1)
        if cut:
            parts.append(cut + CUT_MARK)
        break
    return "\n\n".join(parts)


def _cut(text: str, tokens: int) -> str:
    """The longest start of ``text`` within ``tokens`` (by the same estimate), at a word end
    when there is one."""
    if tokens <= 0:
        return ""
    low, high = 0, len(text)
    while low < high:  # the longest prefix whose estimate fits
        middle = (low + high + 1) // 2
        if estimate_text(text[:middle]) <= tokens:
            low = middle
        else:
            high = middle - 1
    prefix = text[:low]
    space = prefix.rfind(" ")
    if low < len(text) and space > len(prefix) // 2:
        prefix = prefix[:space]
    return prefix.rstrip()


def pieces(text: str) -> list[str]:
    """Split an answer into stream deltas (word by word, spaces kept)."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]
