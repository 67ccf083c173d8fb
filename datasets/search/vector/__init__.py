"""Vector storage and recall, one interface over two backends.

- `pgvector` (PostgreSQL): HNSW, cosine, one expression + partial index per dataset and vector
  size, built once the dataset's vectors are still (pgvector_indexes.py).
- `numpy` (SQLite, or anywhere by setting): exact cosine over a per-process cache of each
  dataset's vectors, refreshed when `Dataset.vector_version` moves.

`vector_backend()` picks one by `settings.DATASET_VECTOR_BACKEND`, else by the database vendor,
the way Django picks a session engine. Training writes vectors with `write_vectors` and bumps
the datasets' `vector_version` in the same transaction (`bump_vector_version`), which tells the
backend once committed.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from datasets.fields import EmbeddingField
from datasets.models import DataIndex, Dataset

if TYPE_CHECKING:
    from datasets.search.selectors import Row


@dataclass(frozen=True)
class VectorHit:
    data_id: str
    index_id: str
    score: float  # cosine similarity, higher is better
    row: "Row | None" = None  # the chunk, when the backend read it with the hit (pgvector)


class VectorBackend(Protocol):
    def recall(
        self,
        *,
        dataset_ids: list[str],
        query: np.ndarray,
        limit: int,
        collection_ids: list[str] | None = None,
        sparse: bool = False,
    ) -> list[VectorHit]:
        """Index-level hits among vectors of the query's size, best first (≤ `limit`); a
        backend may give each hit its chunk's row (searchable collections only). `sparse`: the
        datasets' model has sparse vectors (`providers.embeddings.has_sparse_vectors`), which a
        backend may store and compare as such."""

    def vectors_changed(self, *, dataset_ids: list[str]) -> None:
        """The datasets' vectors were written or deleted (called once that is committed)."""

    def datasets_deleted(self, *, dataset_ids: list[str]) -> None:
        """The datasets were deleted (called once that is committed)."""


def vector_backend() -> VectorBackend:
    name = settings.DATASET_VECTOR_BACKEND or ("pgvector" if connection.vendor == "postgresql" else "numpy")
    if name == "pgvector":
        from datasets.search.vector.pgvector import PgVectorBackend

        return PgVectorBackend()
    if name == "numpy":
        from datasets.search.vector.numpy_exact import NUMPY_BACKEND

        return NUMPY_BACKEND
    raise ValueError(f"DATASET_VECTOR_BACKEND must be 'pgvector' or 'numpy', not {name!r}")


def write_vectors(*, rows: list[tuple[str, np.ndarray]]) -> None:
    """Store `(index id, vector)` pairs, with their sizes. Run it inside the transaction that
    also calls `bump_vector_version` for the datasets concerned."""
    if not rows:
        return
    field: EmbeddingField = DataIndex._meta.get_field("embedding")
    table = connection.ops.quote_name(DataIndex._meta.db_table)
    cast = "::vector" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET embedding = %s{cast}, dimensions = %s WHERE id = %s",
            [(field.get_db_prep_value(vector, connection), int(len(vector)), index_id) for index_id, vector in rows],
        )


def bump_vector_version(*, dataset_ids) -> None:
    """Mark the datasets' vectors changed: every process's cached copy becomes stale, and the
    backend hears of it once the transaction commits (pgvector then plans the datasets' index)."""
    ids = sorted(set(dataset_ids))
    if ids:
        Dataset.objects.filter(id__in=ids).update(vector_version=F("vector_version") + 1, vectors_changed_at=timezone.now())
        # robust: the vectors are stored either way; a check that could not be queued is
        # queued by the next write, or `manage.py index_vectors` builds the index.
        transaction.on_commit(lambda: vector_backend().vectors_changed(dataset_ids=ids), robust=True)
