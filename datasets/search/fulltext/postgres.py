"""PostgreSQL full text over the stored `search_vector` tsvector (generated from `search_words`,
GIN index: migration 0005), ranked BM25-style.

`ts_rank`/`ts_rank_cd` alone have no inverse document frequency: with the `simple`
configuration, "how", "the", "a" match nearly every chunk and long chunks full of them win.
So a query takes two statements (three when every word is common and no chunk has them all):

1. Statistics: the query's lexemes (its words through `to_tsvector('simple', …)`, normalised
   exactly as the indexed ones), each one's document frequency in the searched datasets — a
   count capped at MAX_COUNTED_DF, read through the GIN index — and the number of chunks
   searched (capped at MAX_COUNTED_CHUNKS).
2. Ranking: the candidates are the chunks holding any *uncommon* word (document frequency
   under `common_threshold(n)`); common words still add to a candidate's score but do not
   widen the candidate set. A candidate's score is Σ idf(word) · ts_rank(vector, word) —
   `ts_rank` of one word is PostgreSQL's saturating term frequency (0.61, 0.76, 0.82 … → 1 of
   its weight for 1, 2, 3 … occurrences, close to BM25's with k1 ≈ 0.6) — divided by BM25's
   length normalisation 1 − b + b · length / average length (length = distinct lexemes, the
   average over the candidates). idf is BM25's: ln(1 + (n − df + ½) / (df + ½)).
   When every word is common, the candidates are the chunks holding all of them; if there are
   none, any of them (at most MAX_CANDIDATES).

Every word reaches the tsquery as a quoted lexeme (backslash and quote escaped), so no user
character is ever read as tsquery syntax.
"""

import math

from django.db import connection

from datasets.models import Data
from datasets.search.fulltext import TextHit, query_terms

# Document frequencies are counted up to this many chunks (a word seen this often is common in
# any dataset big enough for it to matter), the chunks searched up to MAX_COUNTED_CHUNKS: each
# count walks its rows (EXPLAIN ANALYZE: ~2.5 ms per 20,000 chunks, ~3 ms per 1,000 matches on
# a loaded machine), so beyond them idf is computed as if the dataset held MAX_COUNTED_CHUNKS.
MAX_COUNTED_DF = 1000
MAX_COUNTED_CHUNKS = 20_000
# A word in at least this share of the searched chunks (and at least MIN_COMMON_DF of them, at
# most MAX_COUNTED_DF) is common: it scores but does not select candidates.
COMMON_SHARE = 0.1
MIN_COMMON_DF = 50
# Candidates ranked per query (an arbitrary subset beyond: only reached when all words are common).
MAX_CANDIDATES = 5000
LENGTH_WEIGHT = 0.5  # BM25's b


def tsquery_literal(lexeme: str) -> str:
    """A lexeme as one quoted tsquery operand."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def common_threshold(chunks: int) -> int:
    return max(MIN_COMMON_DF, min(MAX_COUNTED_DF, math.ceil(COMMON_SHARE * chunks)))


def idf(*, df: int, chunks: int) -> float:
    return math.log(1.0 + (chunks - df + 0.5) / (df + 0.5))


class PostgresFullText:
    def _scope(self, dataset_ids: list[str], collection_ids: list[str] | None) -> tuple[str, list]:
        where, params = "d.dataset_id = ANY(%s)", [list(dataset_ids)]
        if collection_ids is not None:
            where += " AND d.collection_id = ANY(%s)"
            params.append(list(collection_ids))
        return where, params

    def stats_sql(
        self, *, dataset_ids: list[str], words: list[str], collection_ids: list[str] | None = None
    ) -> tuple[str, list]:
        """(lexeme, capped document frequency, capped number of chunks searched) per query lexeme."""
        table = connection.ops.quote_name(Data._meta.db_table)
        scope, scope_params = self._scope(dataset_ids, collection_ids)
        sql = (
            "SELECT t.lexeme, "
            f"(SELECT count(*) FROM (SELECT 1 FROM {table} d WHERE d.search_vector @@ t.q AND {scope} "
            "LIMIT %s) f), "
            f"(SELECT count(*) FROM (SELECT 1 FROM {table} d WHERE {scope} LIMIT %s) n) "
            "FROM (SELECT lexeme, ('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''')::tsquery "
            "AS q FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) AS lexeme) t"
        )
        params = [*scope_params, MAX_COUNTED_DF, *scope_params, MAX_COUNTED_CHUNKS, " ".join(query_terms(words))]
        return sql, params

    def _stats(self, **kw) -> tuple[list[tuple[str, int]], int]:
        sql, params = self.stats_sql(**kw)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        chunks = rows[0][2] if rows else 0
        return [(lexeme, df) for lexeme, df, _ in rows if df > 0], chunks

    def rank_sql(
        self, *, dataset_ids: list[str], weighted: list[tuple[str, float]], match: list[str], operator: str,
        limit: int, collection_ids: list[str] | None = None,
    ) -> tuple[str, list]:
        """Rank the chunks matching `match` (lexemes joined by `operator`, `|` or `&`) by
        Σ weight · ts_rank(word) over `weighted`, length-normalised."""
        table = connection.ops.quote_name(Data._meta.db_table)
        scope, scope_params = self._scope(dataset_ids, collection_ids)
        score = " + ".join(["%s * ts_rank(d.search_vector, %s::tsquery)"] * len(weighted))
        score_params = [value for lexeme, weight in weighted for value in (weight, tsquery_literal(lexeme))]
        sql = (
            "SELECT c.id, c.s / (%s + %s * c.len / greatest(avg(c.len) OVER (), 1.0)) AS score FROM ("
            f"SELECT d.id, length(d.search_vector)::float8 AS len, ({score}) AS s FROM {table} d "
            f"WHERE d.search_vector @@ %s::tsquery AND {scope} LIMIT %s"
            ") c ORDER BY score DESC, c.id LIMIT %s"
        )
        params = [
            1.0 - LENGTH_WEIGHT, LENGTH_WEIGHT, *score_params,
            f" {operator} ".join(tsquery_literal(lexeme) for lexeme in match), *scope_params,
            MAX_CANDIDATES, int(limit),
        ]
        return sql, params

    def plan(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> list[tuple[str, list]]:
        """The ranking statements to try in order (the first with rows answers), after reading
        the words' statistics; [] when no word occurs in the searched chunks."""
        found, chunks = self._stats(dataset_ids=dataset_ids, words=words, collection_ids=collection_ids)
        if not found:
            return []
        threshold = common_threshold(chunks)
        weighted = [(lexeme, idf(df=min(df, chunks), chunks=chunks)) for lexeme, df in found]
        rare = [lexeme for lexeme, df in found if df < threshold]
        every = [lexeme for lexeme, _ in found]
        kw = dict(dataset_ids=dataset_ids, weighted=weighted, limit=limit, collection_ids=collection_ids)
        if rare:
            return [self.rank_sql(match=rare, operator="|", **kw)]
        if len(every) == 1:
            return [self.rank_sql(match=every, operator="|", **kw)]
        # Every word is common: the chunks holding them all, else (none) those holding any.
        return [self.rank_sql(match=every, operator="&", **kw), self.rank_sql(match=every, operator="|", **kw)]

    def recall_sql(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> tuple[str, list] | None:
        """The first ranking statement of a query (for EXPLAIN), or None when nothing can match."""
        statements = self.plan(dataset_ids=dataset_ids, words=words, limit=limit, collection_ids=collection_ids)
        return statements[0] if statements else None

    def recall(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> list[TextHit]:
        if not dataset_ids or limit <= 0 or collection_ids == [] or not query_terms(words):
            return []
        statements = self.plan(dataset_ids=dataset_ids, words=words, limit=limit, collection_ids=collection_ids)
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
                if rows:
                    return [TextHit(data_id=data_id, score=float(score)) for data_id, score in rows]
        return []
