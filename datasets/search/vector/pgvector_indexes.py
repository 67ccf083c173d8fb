"""pgvector: one HNSW index per dataset, built in one pass once the dataset's vectors are still.

Why per dataset, and built late (docs/benchmarks.md, "One HNSW index per dataset"):
- Inserting a vector into an HNSW graph costs PostgreSQL ~2 ms of CPU at 50,000 vectors, more
  as the graph grows; building the graph over the same vectors in one pass costs ~0.5 ms each.
  So a bulk load (a 50,000-item push, a large file) is stored unindexed and indexed once done.
- A search of one dataset walks its own graph only: no other dataset's vectors to skip, and
  its `ef_search` follows the dataset's size, not the whole table's.

The lifecycle:
- Writing vectors stamps `Dataset.vectors_changed_at` and, once committed, queues the task
  `datasets.tasks.index_vectors` for VECTOR_INDEX_QUIET_SECONDS later (`schedule_checks`).
- That task (`index_when_still`) builds the index when the dataset holds at least
  VECTOR_INDEX_MIN_ROWS vectors of one size and none of them has changed for the quiet period.
  Still being written: it looks again when the period would end. Smaller: nothing to do, an
  exact search is as fast there.
- Once built, an index takes later vectors one by one, as any index does.
- Deleting a dataset queues the same task, which then drops its indexes; `manage.py
  index_vectors` builds what is due at once.

Until its index exists, a dataset is searched exactly (through its btree on dataset and size):
the same hits, more slowly for a large one.

An index is over the vectors cast to `halfvec`, or to `sparsevec` for a model whose vectors
are mostly zeros (the built-in embedding: `vector_type`); a search must cast them alike.

A build runs `CREATE INDEX CONCURRENTLY` — writes to the table go on meanwhile (inside a
transaction, as in a migration or a test, it cannot: a plain CREATE INDEX there) —, one at a
time per database (an advisory lock), with `maintenance_work_mem` raised to
VECTOR_INDEX_BUILD_MEMORY: a graph that does not fit is built several times more slowly. A
build that failed half-way leaves an invalid index, dropped before the next try.
"""

import logging
import math
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from datasets.models import DataIndex, Dataset
from providers.embeddings import has_sparse_vectors

logger = logging.getLogger(__name__)

HNSW_MAX_DIMENSIONS = 4000  # halfvec's limit for an HNSW index (vector's is 2,000)
PREFIX = "dataindex_hnsw_"
BUILD_LOCK = 0x686E_7377  # the advisory lock a build holds ("hnsw")
SIZES_MAX_AGE = 60.0  # seconds between two reads of the indexes' sizes
DATASET_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")  # object ids: safe inside a name and a literal

_sizes: dict[str, tuple[float, dict[str, float]]] = {}  # database → (monotonic time read, name → rows)
_checks: dict[tuple[str, str], float] = {}  # (database, dataset id) → when its queued check runs


def index_name(dataset_id: str, dimensions: int) -> str:
    if not DATASET_ID.match(dataset_id):
        raise ValueError(f"Not a dataset id: {dataset_id!r}")
    return f"{PREFIX}{dataset_id}_{int(dimensions)}"


def vector_type(dimensions: int, *, sparse: bool) -> str:
    """The type a dataset's vectors of `dimensions` are indexed and compared as (pgvector.py says
    why): `sparsevec` for a sparse model's, `halfvec` for a dense one's up to
    HNSW_MAX_DIMENSIONS, else `vector` (no index: searched exactly)."""
    if sparse:
        return "sparsevec"  # (HNSW takes up to 1,000 non-zero values: the built-in sets ≤ 512)
    return "halfvec" if int(dimensions) <= HNSW_MAX_DIMENSIONS else "vector"


# The built-in embedding's graph is built with twice pgvector's default candidate list: at
# ef_search 200 it finds 0.96 of the exact top 10 for a query of a few rare words where the
# default graph found 0.91 (0.986 / 0.975 for chunk-like queries), for +0.5 ms of CPU per
# search and a build 1.7× longer (docs/benchmarks.md, "ef_construction 128"). Dense models'
# indexes keep the defaults (m 16, ef_construction 64): not measured on them.
SPARSE_BUILD = " WITH (m = 16, ef_construction = 128)"


def index_sql(dataset_id: str, dimensions: int, *, sparse: bool = False, concurrently: bool = True) -> str:
    """The dataset's HNSW index over its vectors of `dimensions`, cast as `vector_type` says."""
    dimensions = int(dimensions)
    cast = vector_type(dimensions, sparse=sparse)
    return (
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS "
        f'"{index_name(dataset_id, dimensions)}" ON {DataIndex._meta.db_table} '
        f"USING hnsw ((embedding::{cast}({dimensions})) {cast}_cosine_ops){SPARSE_BUILD if sparse else ''} "
        f"WHERE dataset_id = '{dataset_id}' AND dimensions = {dimensions}"
    )


def indexed_rows(dataset_ids: Iterable[str], dimensions: int) -> float:
    """The vectors in the largest of these datasets' indexes of `dimensions` (0 if none has
    one yet), as this process last read the indexes' sizes."""
    sizes = index_sizes()
    return max((sizes.get(f"{PREFIX}{dataset_id}_{int(dimensions)}", 0.0) for dataset_id in dataset_ids), default=0.0)


def has_index(dataset_id: str, dimensions: int) -> bool:
    """Whether the dataset has a valid index of `dimensions`, as this process last read the
    indexes (`index_sizes`: at most a minute old)."""
    return f"{PREFIX}{dataset_id}_{int(dimensions)}" in index_sizes()


def forget_index_sizes() -> None:
    """Read the indexes again at the next `index_sizes` (after this process built or dropped one)."""
    _sizes.pop(connection.settings_dict["NAME"], None)


def index_sizes() -> dict[str, float]:
    """The vectors in each valid per-dataset index (PostgreSQL's `reltuples`, set by the build
    and kept current by autovacuum), read at most once a minute per process."""
    database = connection.settings_dict["NAME"]
    read_at, sizes = _sizes.get(database, (-math.inf, {}))
    if time.monotonic() - read_at > SIZES_MAX_AGE:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                "WHERE c.relname LIKE %s AND i.indisvalid",
                [f"{PREFIX}%"],
            )
            sizes = {name: max(0.0, float(rows)) for name, rows in cursor.fetchall()}
        _sizes[database] = (time.monotonic(), sizes)
    return sizes


def vector_counts(dataset_id: str) -> dict[int, int]:
    """The dataset's stored vectors by size."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT dimensions, count(*) FROM {DataIndex._meta.db_table} "
            "WHERE dataset_id = %s AND dimensions > 0 GROUP BY dimensions",
            [dataset_id],
        )
        return dict(cursor.fetchall())


def _index_states(dataset_ids: Iterable[str]) -> dict[str, bool]:
    """The dataset's per-size indexes: name → valid (False: a build that failed half-way)."""
    patterns = [f"{PREFIX}{dataset_id}\\_%" for dataset_id in dataset_ids]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname LIKE ANY(%s)",
            [patterns],
        )
        return dict(cursor.fetchall())


def build_index(*, dataset_id: str, dimensions: int, sparse: bool = False) -> bool:
    """Build the dataset's index over its vectors of `dimensions` (`sparse`: as `sparsevec`),
    unless it exists (or the size is past HNSW's limit: searched exactly). True if it was built."""
    if not 0 < int(dimensions) <= HNSW_MAX_DIMENSIONS:
        return False
    name = index_name(dataset_id, dimensions)
    in_transaction = connection.in_atomic_block
    concurrently = "" if in_transaction else "CONCURRENTLY "
    with connection.cursor() as cursor:
        # One build at a time: two would share the machine's memory and cores, and concurrent
        # builds on one table wait for each other's transactions anyway.
        cursor.execute(f"SELECT {'pg_advisory_xact_lock' if in_transaction else 'pg_advisory_lock'}(%s)", [BUILD_LOCK])
        try:
            valid = _index_states([dataset_id]).get(name)
            if valid:
                return False
            if valid is not None:
                cursor.execute(f'DROP INDEX {concurrently}IF EXISTS "{name}"')
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, %s)", [settings.VECTOR_INDEX_BUILD_MEMORY, in_transaction])
            started = time.monotonic()
            if in_transaction:
                # Rows written earlier in the transaction leave deferred FK checks pending, which
                # CREATE INDEX refuses: run them now, then defer again (Django declares its
                # foreign keys DEFERRABLE INITIALLY DEFERRED).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(index_sql(dataset_id, dimensions, sparse=sparse, concurrently=False))
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            else:
                try:
                    cursor.execute(index_sql(dataset_id, dimensions, sparse=sparse))
                finally:
                    cursor.execute("RESET maintenance_work_mem")
            logger.info("Built %s in %.1f s", name, time.monotonic() - started)
        finally:
            if not in_transaction:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK])
    forget_index_sizes()  # read the new index's size next time
    return True


def due_sizes(dataset_id: str, *, min_rows: int | None = None) -> list[int]:
    """The sizes of the dataset's vectors that have at least `min_rows` (VECTOR_INDEX_MIN_ROWS)
    vectors, fit an HNSW index and have no valid index yet."""
    min_rows = settings.VECTOR_INDEX_MIN_ROWS if min_rows is None else min_rows
    indexed = _index_states([dataset_id])
    return [
        dimensions
        for dimensions, count in sorted(vector_counts(dataset_id).items())
        if count >= min_rows and 0 < dimensions <= HNSW_MAX_DIMENSIONS
        and not indexed.get(index_name(dataset_id, dimensions))
    ]


def build_due(*, dataset_id: str, min_rows: int | None = None) -> list[int]:
    """Build the dataset's due indexes now (`due_sizes`); returns the sizes built."""
    model = Dataset.objects.filter(pk=dataset_id).values_list("vector_model", flat=True).first()
    sparse = has_sparse_vectors(model or "")
    return [
        dimensions
        for dimensions in due_sizes(dataset_id, min_rows=min_rows)
        if build_index(dataset_id=dataset_id, dimensions=dimensions, sparse=sparse)
    ]


def index_when_still(*, dataset_id: str) -> str:
    """The task's body: build the dataset's due indexes once its vectors are still, or drop
    those of a deleted dataset. Returns what it found: "built", "nothing due", "writing" (it
    looks again later) or "gone"."""
    found = Dataset.objects.filter(pk=dataset_id).values_list("vectors_changed_at", "vector_model").first()
    if found is None:
        drop_indexes(dataset_ids=[dataset_id])
        return "gone"
    due = due_sizes(dataset_id)
    if not due:
        return "nothing due"
    if found[0] is not None:  # (None: vectors from before the stamp, still for long)
        still_at = found[0] + timedelta(seconds=settings.VECTOR_INDEX_QUIET_SECONDS)
        if timezone.now() < still_at and _queue_check(dataset_id, run_after=still_at):
            return "writing"
    for dimensions in due:  # (build_index checks again, under its lock, that none exists)
        build_index(dataset_id=dataset_id, dimensions=dimensions, sparse=has_sparse_vectors(found[1]))
    return "built"


def schedule_checks(*, dataset_ids: Iterable[str]) -> None:
    """After vectors of these datasets were committed: queue each a check for when they would
    have been still for the quiet period, unless one is queued already or the dataset is
    indexed (as this process last read the indexes)."""
    sizes = index_sizes()
    database = connection.settings_dict["NAME"]
    for dataset_id in dataset_ids:
        if any(name.startswith(f"{PREFIX}{dataset_id}_") for name in sizes):
            continue
        if _checks.get((database, dataset_id), -math.inf) > time.monotonic():
            continue  # the check queued runs later than this write, and sees it
        _queue_check(dataset_id, run_after=timezone.now() + timedelta(seconds=settings.VECTOR_INDEX_QUIET_SECONDS))


def _queue_check(dataset_id: str, *, run_after: datetime) -> bool:
    """Queue the dataset's check at `run_after`; False when the task backend cannot defer a
    task (there, `manage.py index_vectors` builds the indexes)."""
    from datasets.tasks import index_vectors

    if not index_vectors.get_backend().supports_defer:
        return False
    index_vectors.using(run_after=run_after).enqueue(dataset_id)
    delay = (run_after - timezone.now()).total_seconds()
    _checks[(connection.settings_dict["NAME"], dataset_id)] = time.monotonic() + delay
    return True


def forget(*, dataset_ids: Iterable[str]) -> None:
    """The datasets were deleted: their checks, queued now, drop their indexes. (Not here: a
    build of one of them in progress holds the table's lock that DROP INDEX CONCURRENTLY
    needs, and the request that deleted it would wait for the build.)"""
    from datasets.tasks import index_vectors

    for dataset_id in dataset_ids:
        index_vectors.enqueue(dataset_id)


def drop_indexes(*, dataset_ids: Iterable[str]) -> None:
    """Drop the datasets' indexes (the datasets were deleted)."""
    names = list(_index_states(dataset_ids))
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'DROP INDEX {concurrently}IF EXISTS "{name}"')
    if names:
        forget_index_sizes()


def drop_orphans() -> int:
    """Drop the indexes of datasets that no longer exist (deleted with their team, say);
    returns how many."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE %s", [f"{PREFIX}%"])
        names = [name for (name,) in cursor.fetchall()]
    owners = {name: name[len(PREFIX):].rsplit("_", 1)[0] for name in names}
    alive = set(Dataset.objects.filter(pk__in=set(owners.values())).values_list("pk", flat=True))
    gone = sorted({owner for owner in owners.values() if owner not in alive})
    drop_indexes(dataset_ids=gone)
    return sum(owner in gone for owner in owners.values())
