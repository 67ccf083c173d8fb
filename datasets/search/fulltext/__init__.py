"""Full-text recall over `Data.search_words` (the words of q and a, from providers.words), one
interface over two backends chosen like the vector ones (by database vendor):

- PostgreSQL: a stored `search_vector` tsvector (generated from search_words) under a GIN
  index, ranked BM25-style: each word weighted by its IDF in the searched datasets, words in
  most chunks kept out of the candidate set (postgres.py).
- SQLite: the FTS5 table `datasets_data_fts` (kept in sync by triggers), ranked by `bm25()`.

Query words are matched as literal terms, any of them (OR): no user text is ever parsed as
tsquery or FTS5 syntax, so quotes, `*`, `:`, `&`, `!`, `NEAR`, `OR`… are just words or
punctuation.
"""

from dataclasses import dataclass
from typing import Protocol

from django.db import connection

# A query longer than this many distinct words keeps its first ones (a pasted document as a
# query would otherwise build an enormous OR).
MAX_QUERY_WORDS = 64


@dataclass(frozen=True)
class TextHit:
    data_id: str
    score: float  # IDF-weighted ts_rank (PostgreSQL) / -bm25 (SQLite): higher is better


class FullTextBackend(Protocol):
    def recall(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> list[TextHit]:
        """Data items matching any of `words`, best first (≤ `limit`)."""


def query_terms(words: list[str]) -> list[str]:
    """Distinct non-empty words, in first-seen order, at most MAX_QUERY_WORDS (NUL removed:
    neither PostgreSQL text nor an FTS5 string can hold it)."""
    seen: dict[str, None] = {}
    for word in words:
        word = word.replace("\x00", "").strip()
        if word and word not in seen:
            seen[word] = None
            if len(seen) == MAX_QUERY_WORDS:
                break
    return list(seen)


def fulltext_backend() -> FullTextBackend:
    if connection.vendor == "postgresql":
        from datasets.search.fulltext.postgres import PostgresFullText

        return PostgresFullText()
    if connection.vendor == "sqlite":
        from datasets.search.fulltext.sqlite import SqliteFullText

        return SqliteFullText()
    raise NotImplementedError(f"no full-text backend for the {connection.vendor} database")
