"""The size of an answer: a `topK` count cap and the `limit` token budget.

The budget is strict: results are taken in rank order while their tokens (q + a) still fit in
`limit`; the first that does not fit ends the list (later, smaller ones are not picked, so the
order is never changed). The best result is always returned, even when it alone is over the
budget. FastGPT instead keeps the item that crosses the budget (up to limit + 500 tokens).
"""

from collections.abc import Iterable
from itertools import islice

from providers.token_count import estimate_text

MAX_LIMIT = 20000
DEFAULT_LIMIT = 5000


def count_tokens(text: str) -> int:
    """The providers' token estimate (no tokenizer is bundled; see providers/token_count.py)."""
    return estimate_text(text)


def within_budget(items: Iterable, *, limit: int, top_k: int | None, text_of) -> list:
    """The leading items that fit in `top_k` and in `limit` tokens; at least one if any. Reads
    `items` no further than it takes."""
    out, total = [], 0
    for item in items if top_k is None else islice(items, top_k):
        total += count_tokens(text_of(item))
        if total > limit and out:
            break
        out.append(item)
        if total >= limit:
            break
    return out
