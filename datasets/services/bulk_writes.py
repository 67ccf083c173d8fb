"""Many data items and their indexes written at once: the insert and training write paths.

PostgreSQL: one binary `COPY … FROM STDIN` per table and batch (psycopg 3's `cursor.copy()`),
vectors in pgvector's binary form (no float → text → float round trip), and one
`UPDATE … FROM unnest(…)` for a batch's items. Anywhere else (SQLite): `executemany`, which
the sqlite3 module runs in C.

Rows are plain tuples in the column order of `DATA_COLUMNS` / `INDEX_COLUMNS` (built by the
callers from their own values: no model instance per row). Measured on this machine (bench/
ingest.py, docs/benchmarks.md): the ORM's `bulk_create` and one UPDATE statement per vector
cost the worker ~0.3 ms per item in Python and PostgreSQL ~1 ms per item besides the HNSW
insert itself.
"""

import struct
import threading
from datetime import datetime
from functools import lru_cache

import numpy as np
from django.db import connection

from datasets.fields import EmbeddingField
from datasets.models import Data, DataIndex

DATA_COLUMNS = (
    "id", "team_id", "dataset_id", "collection_id", "q", "a", "chunk_index", "search_words", "training_state",
    "train_attempts", "train_error", "train_next_at", "train_claim", "bill_id", "created_at", "updated_at",
)
INDEX_COLUMNS = ("id", "data_id", "dataset_id", "collection_id", "type", "text", "embedding", "dimensions")

_oids: dict[tuple[str, str], list[int]] = {}  # (database name, table) → the COPY columns' type oids
_oids_lock = threading.Lock()


def insert_rows(*, data: list[tuple], indexes: list[tuple]) -> None:
    """Insert items (tuples in DATA_COLUMNS order) and then their indexes (INDEX_COLUMNS order;
    `embedding` a float32 vector or None, `dimensions` its size or 0). Run it in a transaction."""
    if connection.vendor == "postgresql":
        _copy(Data._meta.db_table, DATA_COLUMNS, data)
        _copy(DataIndex._meta.db_table, INDEX_COLUMNS, indexes)
        return
    _insert_many(Data._meta.db_table, DATA_COLUMNS, data)
    field: EmbeddingField = DataIndex._meta.get_field("embedding")
    position = INDEX_COLUMNS.index("embedding")
    prepared = [
        (*row[:position], field.get_db_prep_value(row[position], connection), *row[position + 1 :]) for row in indexes
    ]
    _insert_many(DataIndex._meta.db_table, INDEX_COLUMNS, prepared)


def replace_indexes(*, rows: list[tuple]) -> None:
    """Write index rows again (INDEX_COLUMNS order), now with their vectors: on PostgreSQL the
    old rows are deleted and the new ones copied in (what an UPDATE does to a row whose indexed
    columns change, in two statements instead of one per row); elsewhere an UPDATE per row.
    Run it in a transaction that holds the items' locks."""
    if not rows:
        return
    table = connection.ops.quote_name(DataIndex._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [[row[0] for row in rows]])
        _copy(DataIndex._meta.db_table, INDEX_COLUMNS, rows)
        return
    field: EmbeddingField = DataIndex._meta.get_field("embedding")
    vector, size = INDEX_COLUMNS.index("embedding"), INDEX_COLUMNS.index("dimensions")
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET embedding = %s, dimensions = %s WHERE id = %s",
            [(field.get_db_prep_value(row[vector], connection), row[size], row[0]) for row in rows],
        )


def mark_trained(*, token: str, items: list[tuple[str, str | None]], ready: str) -> None:
    """Mark the items still claimed by `token` trained (state `ready`, claim and error cleared)
    and store their full-text words where given (`(id, words or None)`): one statement on
    PostgreSQL. One UPDATE per item either way, as each rewrites the row's index entries (GIN
    included): a second one would double that cost."""
    if not items:
        return
    table = connection.ops.quote_name(Data._meta.db_table)
    assignments = (
        "training_state = %s, train_claim = '', train_next_at = NULL, train_error = '', "
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS d SET {assignments}search_words = COALESCE(v.words, d.search_words) "
                "FROM unnest(%s::varchar[], %s::text[]) AS v(id, words) WHERE d.id = v.id AND d.train_claim = %s",
                [ready, [pk for pk, _ in items], [found for _, found in items], token],
            )
            return
        cursor.executemany(
            f"UPDATE {table} SET {assignments}search_words = COALESCE(%s, search_words) WHERE id = %s AND train_claim = %s",
            [(ready, found, pk, token) for pk, found in items],
        )


# --- PostgreSQL -----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _vector_dumper(vector_oid: int) -> type:
    """A psycopg dumper writing a float32 array as pgvector's binary `vector` (its `vector_recv`
    form): the size and an unused 16 bits, then the big-endian float32s."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = vector_oid

        def dump(self, obj) -> bytes:
            array = np.asarray(obj, dtype=">f4")
            return struct.pack(">HH", array.shape[0], 0) + array.tobytes()

    return VectorDumper


def _copy(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """`COPY table (columns) FROM STDIN` in binary, the columns' types read from the catalog."""
    if not rows:
        return
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # psycopg's own
        oids = _column_oids(cursor, table, columns)
        vector_oid = _vector_oid(cursor)
        if vector_oid in oids:
            cursor.adapters.register_dumper(None, _vector_dumper(vector_oid))
        quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
        with cursor.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(oids)
            for row in rows:
                copy.write_row(row)


def _column_oids(cursor, table: str, columns: tuple[str, ...]) -> list[int]:
    key = (connection.settings_dict["NAME"], table)
    found = _oids.get(key)
    if found is None:
        cursor.execute(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped",
            [connection.ops.quote_name(table)],
        )
        by_name = dict(cursor.fetchall())
        found = [by_name[column] for column in columns]
        with _oids_lock:
            _oids[key] = found
    return found


def _vector_oid(cursor) -> int:
    key = (connection.settings_dict["NAME"], "vector")
    found = _oids.get(key)
    if found is None:
        cursor.execute("SELECT oid::int FROM pg_type WHERE typname = 'vector'")
        row = cursor.fetchone()
        found = [row[0] if row else -1]
        with _oids_lock:
            _oids[key] = found
    return found[0]


# --- SQLite and the rest --------------------------------------------------------------------


def _insert_many(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores them
    rows = [tuple(adapt(value) if isinstance(value, datetime) else value for value in row) for row in rows]
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) VALUES ({marks})", rows)
