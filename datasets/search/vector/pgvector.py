"""pgvector: HNSW (cosine) recall on PostgreSQL.

The `embedding` column is a `vector` without fixed size, so datasets whose models differ in
size share it; HNSW needs a fixed size, hence one expression + partial index per size, over
the vectors cast to `halfvec` (2 bytes a dimension):

    CREATE INDEX dataindex_embedding_hnsw_512 ON datasets_dataindex
        USING hnsw ((embedding::halfvec(512)) halfvec_cosine_ops) WHERE dimensions = 512

(512 — the built-in embedding — comes with the migrations; other sizes are created, IF NOT
EXISTS, when their first vectors are written). Why halfvec (migration 0008, measured by
bench/hnsw_params.py at 100,000 chunks): the same recall@10 (0.961 against 0.962), half the
index (130 against 260 MB, so twice as many vectors stay in the buffer cache), 6–14 % less
CPU per query and 6 % per insert, and an index for vectors of up to 4,000 dimensions where
`vector` stops at 2,000 (text-embedding-3-large's 3,072 get one). The price: a small dataset,
which the planner scans exactly, converts each row to halfvec (+0.9 ms at 3,000 chunks).

Recall orders by the indexed expression and repeats the predicate, so the planner can use the
index; the score it reports is the same expression's, the cosine of the halfvec-rounded
vectors (within 2·10⁻⁴ of the exact one on the built-in embedding; SQLite's is exact). With a
dataset/collection filter an HNSW scan would stop after `ef_search` candidates and starve the
filter; pgvector's iterative index scans (`hnsw.iterative_scan = relaxed_order`) keep scanning
until `limit` rows pass it, and `hnsw.ef_search` is set per query from the limit and the
table's size (`ef_search_for`).
relaxed_order may return rows slightly out of order: they are sorted again here.

Vectors of more than 4,000 dimensions are searched exactly.
"""

import logging
import math
import threading
import time

import numpy as np
from django.db import DatabaseError, connection, transaction

from datasets.fields import vector_literal
from datasets.models import DataIndex
from datasets.search.selectors import DATA_AND_COLLECTION, ROW_COLUMNS, row_reader
from datasets.search.vector import VectorHit

logger = logging.getLogger(__name__)

HNSW_MAX_DIMENSIONS = 4000  # halfvec's limit for an HNSW index (vector's is 2,000)
EF_SEARCH_MIN, EF_SEARCH_MAX = 40, 1000
REFERENCE_ROWS = 100_000  # where ef_search = 2 × limit was measured to reach recall@10 0.96
EF_SEARCH_GROWTH = 3  # at ten times REFERENCE_ROWS, 4 × the base: 8 × limit (see ef_search_for)
ROWS_MAX_AGE = 60.0  # seconds between two reads of the table's size

_rows: dict[str, tuple[float, float]] = {}  # database name → (monotonic time read, reltuples)

_indexed: set[tuple[str, int]] = set()  # (database name, dimensions) known to have their index
_indexed_lock = threading.Lock()


def index_name(dimensions: int) -> str:
    return f"dataindex_embedding_hnsw_{int(dimensions)}"


def index_sql(dimensions: int, table: str = "datasets_dataindex") -> str:
    """The HNSW index of vectors of `dimensions` (IF NOT EXISTS)."""
    dimensions = int(dimensions)
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(dimensions)} ON {table} "
        f"USING hnsw ((embedding::halfvec({dimensions})) halfvec_cosine_ops) WHERE dimensions = {dimensions}"
    )


def ef_search_for(limit: int, rows: float = 0) -> int:
    """2 × limit up to REFERENCE_ROWS vectors, then × (1 + 3 · log10(rows / REFERENCE_ROWS)):
    a bigger graph needs a wider search for the same recall. Measured on real prose with the
    built-in embedding (docs/benchmarks.md, "1,000,000 chunks"): at 100,000 vectors 2 × limit
    gives recall@10 0.96; at 1,000,000, 0.91 at 2 × limit, 0.94–0.95 at 4 × and 0.96 at 8 ×
    (two index builds) — hence 8 × there. A real embedding model, whose vectors cluster, would
    reach the same recall with less; the rule is set for the built-in one, the default."""
    scale = 1 + EF_SEARCH_GROWTH * math.log10(rows / REFERENCE_ROWS) if rows > REFERENCE_ROWS else 1.0
    return max(EF_SEARCH_MIN, min(EF_SEARCH_MAX, round(2 * int(limit) * scale)))


def indexed_rows() -> float:
    """PostgreSQL's estimate of the vectors stored (the table's `reltuples`, which autovacuum's
    ANALYZE keeps current; 0 before the first), read at most once a minute per process."""
    name = connection.settings_dict["NAME"]
    read_at, rows = _rows.get(name, (-math.inf, 0.0))
    if time.monotonic() - read_at > ROWS_MAX_AGE:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [DataIndex._meta.db_table])
            found = cursor.fetchone()
        rows = max(0.0, float(found[0])) if found else 0.0
        _rows[name] = (time.monotonic(), rows)
    return rows


def settings_sql(limit: int, rows: float = 0) -> str:
    """The per-query settings, sent in one batch with the recall: one round trip instead of
    five (BEGIN, two SETs, the SELECT, COMMIT). Several statements in one query string run as
    one implicit transaction, so SET LOCAL lasts exactly as long as the recall (Django's default
    client-side binding sends the batch as one simple query). Inside a caller's transaction,
    SET LOCAL lasts to its end, as before: only this recall reads these settings."""
    return (
        "SET LOCAL hnsw.iterative_scan = relaxed_order; "
        f"SET LOCAL hnsw.ef_search = {ef_search_for(limit, rows)}"
    )


def _remember(key: tuple[str, int]) -> None:
    with _indexed_lock:
        _indexed.add(key)


class PgVectorBackend:
    def prepare(self, *, dimensions: int) -> None:
        """The HNSW index for vectors of `dimensions`, created if missing (once per process)."""
        dimensions = int(dimensions)
        if not 0 < dimensions <= HNSW_MAX_DIMENSIONS:
            return
        key = (connection.settings_dict["NAME"], dimensions)
        if key in _indexed:
            return
        sql = index_sql(dimensions, connection.ops.quote_name(DataIndex._meta.db_table))
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # Inside a caller's transaction, rows written earlier leave deferred FK checks
                # pending, which CREATE INDEX refuses: run them now, then defer again (Django
                # declares its foreign keys DEFERRABLE INITIALLY DEFERRED). Training calls this
                # outside any transaction, so the index's lock is held only while it is built.
                deferred = connection.in_atomic_block and len(connection.atomic_blocks) > 1
                if deferred:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(sql)
                if deferred:
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        except DatabaseError:
            # Two workers creating the same index at once: one wins, the other's IF NOT EXISTS
            # can still collide in the catalog. The index exists either way; check it does.
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name(dimensions)])
                if cursor.fetchone() is None:
                    raise
        # Remembered once committed: an index created in a transaction that rolls back is gone.
        transaction.on_commit(lambda: _remember(key))

    def recall_sql(
        self, *, dataset_ids: list[str], query: np.ndarray, limit: int, collection_ids: list[str] | None = None
    ) -> tuple[str, list]:
        """The recall query and its parameters (tests EXPLAIN it)."""
        dimensions = int(len(query))
        table = connection.ops.quote_name(DataIndex._meta.db_table)
        ordered = "halfvec" if dimensions <= HNSW_MAX_DIMENSIONS else "vector"  # the index's type
        literal = vector_literal(query)
        where = [f"dimensions = {dimensions}", "dataset_id = ANY(%s)"]
        params: list = [list(dataset_ids)]
        if collection_ids is not None:
            where.append("collection_id = ANY(%s)")
            params.append(list(collection_ids))
        # One expression for the score and the order: computed once per row. With an exact
        # `vector` distance beside it, each row scanned cost two distances, and the exact scan
        # the planner picks for a small dataset 1.8× the CPU (bench/search_statements.py,
        # 3,000 chunks: 12.9 against 7.0 ms).
        distance = f"embedding::{ordered}({dimensions}) <=> %s::{ordered}({dimensions})"
        sql = (
            f"SELECT id, data_id, {distance} AS distance FROM {table} "
            f"WHERE {' AND '.join(where)} ORDER BY {distance} LIMIT %s"
        )
        return sql, [literal, *params, literal, int(limit)]

    def recall(
        self, *, dataset_ids: list[str], query: np.ndarray, limit: int, collection_ids: list[str] | None = None
    ) -> list[VectorHit]:
        if not dataset_ids or limit <= 0 or collection_ids == [] or not np.any(query):
            return []  # (a zero query has no direction: its cosine is undefined)
        sql, params = self.recall_sql(
            dataset_ids=dataset_ids, query=query, limit=limit, collection_ids=collection_ids
        )
        # The hits' chunks read in the same statement, joined as `recalled_rows` reads them
        # (searchable collections only, datasets asked for): one round trip, one plan and one
        # statement fewer per search (docs/benchmarks.md, "One hop, one statement fewer").
        sql = (
            f"SELECT h.id, h.distance, {ROW_COLUMNS} FROM ({sql}) h "
            f"JOIN ({DATA_AND_COLLECTION}) ON d.id = h.data_id WHERE c.forbid = %s AND d.dataset_id = ANY(%s)"
        )
        with connection.cursor() as cursor:
            cursor.execute(f"{settings_sql(limit, indexed_rows())}; {sql}", [*params, False, list(dataset_ids)])
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
