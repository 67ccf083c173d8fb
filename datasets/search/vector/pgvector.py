"""pgvector: HNSW (cosine) recall on PostgreSQL.

The `embedding` column is a `vector` without fixed size, so datasets whose models differ in
size share it. Each dataset large enough gets its own HNSW index, an expression + partial
index over its vectors cast to `halfvec` (2 bytes a dimension) — or to `sparsevec` for the
built-in embedding — built in one pass once a load is done (pgvector_indexes.py has the
lifecycle and why):

    CREATE INDEX "dataindex_hnsw_<dataset id>_1536" ON datasets_dataindex
        USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops)
        WHERE dataset_id = '<dataset id>' AND dimensions = 1536

Why halfvec for a provider's dense vectors (migration 0008, measured by bench/hnsw_params.py
at 100,000 chunks): the same recall@10 (0.961 against 0.962), half the index (130 against 260
MB, so twice as many vectors stay in the buffer cache), 6–14 % less CPU per query and 6 % per
insert, and an index for vectors of up to 4,000 dimensions where `vector` stops at 2,000
(text-embedding-3-large's 3,072 get one).

Why sparsevec for the built-in embedding (migration 0010; `has_sparse_vectors`): its vectors
set one of 512 dimensions per distinct word, ~20–90 of them in a chunk and 2–10 in a question.
As `sparsevec` (an index and a value per non-zero) a distance costs the merge of two short
lists instead of 512 multiplications: ~30 % less CPU per search at the same recall, an index
2.7× smaller, a build ~20–35 % longer (docs/benchmarks.md, "The built-in embedding's index over
sparsevec"); its graph is built with ef_construction 128 (pgvector_indexes.SPARSE_BUILD). Its
scores are the exact float32 cosines. A search must cast as the index does,
so the caller says which (`recall(sparse=…)`).

Recall asks each dataset apart (one subquery each, its id a constant, so the planner matches
that dataset's index; several datasets are merged by distance), has the planner use an index
that exists (`settings_sql`), orders by the indexed expression and repeats its predicate; the
score it reports is the same expression's: over halfvec, the cosine of the rounded vectors
(within 2·10⁻⁴ of the exact one; over sparsevec and on SQLite, exact). With a collection
filter an HNSW scan would stop after `ef_search` candidates and starve the filter; pgvector's
iterative index scans (`hnsw.iterative_scan = relaxed_order`) keep scanning until `limit` rows
pass it, and `hnsw.ef_search` is set per query from the limit and the size of the datasets'
indexes (`ef_search_for`). relaxed_order may return rows slightly out of order: they are sorted
again here.

A dataset without its index (small, still loading; as this process last read the indexes, at
most a minute ago) and vectors of more than 4,000 dimensions are searched exactly, over the
stored `vector`s as they are: no cast per row.
"""

import logging
import math

import numpy as np
from django.db import connection

from datasets.fields import sparse_literal, vector_literal
from datasets.models import DataIndex
from datasets.search.selectors import DATA_AND_COLLECTION, ROW_COLUMNS, row_reader
from datasets.search.vector import VectorHit
from datasets.search.vector.pgvector_indexes import forget, has_index, indexed_rows, schedule_checks, vector_type

logger = logging.getLogger(__name__)

EF_SEARCH_MIN, EF_SEARCH_MAX = 40, 1000
REFERENCE_ROWS = 100_000  # where ef_search = 2 × limit was measured to reach recall@10 0.96
EF_SEARCH_GROWTH = 3  # at ten times REFERENCE_ROWS, 4 × the base: 8 × limit (see ef_search_for)


def ef_search_for(limit: int, rows: float = 0) -> int:
    """2 × limit up to REFERENCE_ROWS vectors, then × (1 + 3 · log10(rows / REFERENCE_ROWS)):
    a bigger graph needs a wider search for the same recall. Measured on real prose with the
    built-in embedding (docs/benchmarks.md, "1,000,000 chunks"): at 100,000 vectors 2 × limit
    gives recall@10 0.96; at 1,000,000, 0.91 at 2 × limit, 0.94–0.95 at 4 × and 0.96 at 8 ×
    (two index builds) — hence 8 × there. A real embedding model, whose vectors cluster, would
    reach the same recall with less; the rule is set for the built-in one, the default."""
    scale = 1 + EF_SEARCH_GROWTH * math.log10(rows / REFERENCE_ROWS) if rows > REFERENCE_ROWS else 1.0
    return max(EF_SEARCH_MIN, min(EF_SEARCH_MAX, round(2 * int(limit) * scale)))


def settings_sql(limit: int, rows: float = 0, *, prefer_index: bool = False) -> str:
    """The per-query settings, sent in one batch with the recall: one round trip instead of
    five (BEGIN, two SETs, the SELECT, COMMIT). Several statements in one query string run as
    one implicit transaction, so SET LOCAL lasts exactly as long as the recall (Django's default
    client-side binding sends the batch as one simple query). Inside a caller's transaction,
    SET LOCAL lasts to its end: only recalls read the hnsw settings, and `enable_sort` would
    weigh on the plans of the caller's later statements (no caller in the app holds one: the
    pipeline runs outside transactions).

    `prefer_index`: a dataset's own index is used whenever it exists. Left to its costs, the
    planner sorted datasets of up to ~15,000 vectors exactly — 28.5 ms at 10,000 where the index
    answers in ~5 (docs/benchmarks.md, "Searches with and without a dataset's index"). With sorting
    disabled it takes the index when there is one, and sorts (its only way) when there is none.
    Not with a collection filter: a narrow one is cheaper through the collection's btree, and
    would starve an index scan (pgvector stops iterating after `hnsw.max_scan_tuples`)."""
    return (
        "SET LOCAL hnsw.iterative_scan = relaxed_order; "
        f"SET LOCAL hnsw.ef_search = {ef_search_for(limit, rows)}"
        + ("; SET LOCAL enable_sort = off" if prefer_index else "")
    )


class PgVectorBackend:
    def vectors_changed(self, *, dataset_ids: list[str]) -> None:
        """Queue the datasets' index checks (pgvector_indexes.schedule_checks)."""
        schedule_checks(dataset_ids=dataset_ids)

    def datasets_deleted(self, *, dataset_ids: list[str]) -> None:
        """Queue the datasets' index checks, which drop their indexes (pgvector_indexes.forget)."""
        forget(dataset_ids=dataset_ids)

    def recall_sql(
        self, *, dataset_ids: list[str], query: np.ndarray, limit: int, collection_ids: list[str] | None = None,
        sparse: bool = False,
    ) -> tuple[str, list]:
        """The recall query and its parameters (tests EXPLAIN it)."""
        dimensions = int(len(query))
        table = connection.ops.quote_name(DataIndex._meta.db_table)
        index_type = vector_type(dimensions, sparse=sparse)
        literals: dict[str, str] = {}  # the query's text, by the type it is read as
        collection_filter = "" if collection_ids is None else " AND collection_id = ANY(%s)"
        parts, params = [], []
        for dataset_id in dataset_ids:
            # A dataset with its index is ordered by the index's expression; one without (small,
            # or still loading) by its stored vectors as they are: an exact scan with no cast
            # per row costs 3.6 ms of database CPU at 2,000 vectors, against 4.3 over halfvec
            # and 5.1 over sparsevec (docs/benchmarks.md, "Exact scans without a cast"). One
            # expression for the score and the order, computed once per row: with an exact
            # distance beside the index's, each row scanned cost two.
            if has_index(dataset_id, dimensions):
                cast, distance = index_type, f"embedding::{index_type}({dimensions}) <=> %s::{index_type}({dimensions})"
            else:
                cast, distance = "vector", "embedding <=> %s::vector"
            if cast not in literals:
                literals[cast] = sparse_literal(query) if cast == "sparsevec" else vector_literal(query)
            literal = literals[cast]
            # The dataset id as the index's predicate has it (a constant, with Django's
            # client-side binding), so the planner can prove the index covers the rows.
            parts.append(
                f"SELECT id, data_id, {distance} AS distance FROM {table} "
                f"WHERE dataset_id = %s AND dimensions = {dimensions}{collection_filter} "
                f"ORDER BY {distance} LIMIT %s"
            )
            params += [literal, dataset_id, *([list(collection_ids)] if collection_ids is not None else []), literal, int(limit)]
        if len(parts) == 1:
            return parts[0], params
        merged = " UNION ALL ".join(f"({part})" for part in parts)
        return f"SELECT id, data_id, distance FROM ({merged}) u ORDER BY distance LIMIT %s", [*params, int(limit)]

    def recall(
        self, *, dataset_ids: list[str], query: np.ndarray, limit: int, collection_ids: list[str] | None = None,
        sparse: bool = False,
    ) -> list[VectorHit]:
        if not dataset_ids or limit <= 0 or collection_ids == [] or not np.any(query):
            return []  # (a zero query has no direction: its cosine is undefined)
        sql, params = self.recall_sql(
            dataset_ids=dataset_ids, query=query, limit=limit, collection_ids=collection_ids, sparse=sparse
        )
        # The hits' chunks read in the same statement, joined as `recalled_rows` reads them
        # (searchable collections only, datasets asked for): one round trip, one plan and one
        # statement fewer per search (docs/benchmarks.md, "One hop, one statement fewer").
        sql = (
            f"SELECT h.id, h.distance, {ROW_COLUMNS} FROM ({sql}) h "
            f"JOIN ({DATA_AND_COLLECTION}) ON d.id = h.data_id WHERE c.forbid = %s AND d.dataset_id = ANY(%s)"
        )
        with connection.cursor() as cursor:
            batch = settings_sql(limit, indexed_rows(dataset_ids, len(query)), prefer_index=collection_ids is None)
            cursor.execute(f"{batch}; {sql}", [*params, False, list(dataset_ids)])
            while cursor.description is None and cursor.nextset():
                pass  # past the SETs' empty results, to the SELECT's
            rows = cursor.fetchall()
        # cosine distance → similarity; relaxed_order is re-sorted exactly. A stored zero vector
        # (a chunk without words) has a NaN distance: never a hit.
        row = row_reader()
        hits = [
            VectorHit(data_id=values[0], index_id=index_id, score=1.0 - float(distance), row=row(*values))
            for index_id, distance, *values in rows
            if distance is not None and not np.isnan(distance)
        ]
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits
