"""Exact cosine recall with NumPy over a per-process cache of each dataset's vectors.

For SQLite (the embedded default), where no vector index exists: a dataset's vectors of one
size are loaded once into a float32 matrix (L2-normalised) with their index, data and
collection ids, and a search is one matrix-vector product. The matrix is kept one row per
dimension (dims × n, contiguous), so a sparse query — the built-in lexical embedding of a
short question has a handful of non-zero dimensions out of 512 — reads only its own
dimensions' rows: exact cosine at 100,000 vectors in ~0.2 ms instead of a 200 MB pass
(~15–70 ms, docs/benchmarks.md). A dense query (any embedding model's) is one BLAS
vector-matrix product over the whole matrix, as before. Each search reads the datasets'
`vector_version` (one small query) and reloads a dataset whose version moved — training bumps
it in the same transaction as its vector writes, so a worker process's writes are seen here.
The cache is bounded (settings.VECTOR_CACHE_MAX_BYTES, least recently used dropped first).
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from datasets.fields import EmbeddingField
from datasets.models import DataIndex, Dataset
from datasets.search.vector import VectorHit

# A query with at most 1/SPARSE_FRACTION of its dimensions non-zero is scored on those alone.
SPARSE_FRACTION = 8


@dataclass(frozen=True)
class Block:
    """One dataset's vectors of one size, as of `version`."""

    version: int
    index_ids: np.ndarray  # object (str)
    data_ids: np.ndarray  # object (str)
    collections: np.ndarray  # object (str): the block's distinct collection ids
    collection_of: np.ndarray  # int32 (n,): each vector's place in `collections`
    columns: np.ndarray  # (dims, n) float32: column i is vector i, L2-normalised (zero stays zero)

    @property
    def nbytes(self) -> int:
        return self.columns.nbytes + 2 * 80 * len(self.index_ids) + 4 * len(self.collection_of)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of every vector with `query` (L2-normalised)."""
        nonzero = np.flatnonzero(query)
        if len(nonzero) * SPARSE_FRACTION <= len(query):
            return query[nonzero] @ self.columns[nonzero]  # reads len(nonzero) rows of n floats
        return query @ self.columns

    def rows_in(self, collection_ids: set[str]) -> np.ndarray:
        """A mask of the vectors whose collection is in `collection_ids`."""
        wanted = np.fromiter((c in collection_ids for c in self.collections), dtype=bool, count=len(self.collections))
        return wanted[self.collection_of]


class NumpyExactBackend:
    def __init__(self) -> None:
        self._blocks: OrderedDict[tuple, Block] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many blocks were read from the database (tests watch it)

    def vectors_changed(self, *, dataset_ids: list[str]) -> None:
        """Nothing to do: a cached block is reread when its dataset's `vector_version` moves."""

    def datasets_deleted(self, *, dataset_ids: list[str]) -> None:
        """Nothing to do: a deleted dataset's cached block is never asked for again, and ages out."""

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()

    def recall(
        self, *, dataset_ids: list[str], query: np.ndarray, limit: int, collection_ids: list[str] | None = None,
        sparse: bool = False,  # (nothing to do: a sparse query is scored on its non-zero rows anyway)
    ) -> list[VectorHit]:
        query = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if not dataset_ids or limit <= 0 or collection_ids == [] or norm == 0:
            return []
        query = query / norm
        versions = dict(Dataset.objects.filter(id__in=list(dataset_ids)).values_list("id", "vector_version"))
        if len(versions) < len(set(dataset_ids)):
            self._forget(set(dataset_ids) - set(versions))  # deleted datasets
        wanted = set(collection_ids) if collection_ids is not None else None
        candidates: list[tuple[float, Block, int]] = []
        for dataset_id, version in versions.items():
            block = self._block(dataset_id, version, len(query))
            if not len(block.index_ids):
                continue
            scores = block.scores(query)
            rows = np.arange(len(scores))
            if wanted is not None:
                keep = block.rows_in(wanted)
                scores, rows = scores[keep], rows[keep]
            if len(scores) > limit:
                top = np.argpartition(-scores, limit - 1)[:limit]
                scores, rows = scores[top], rows[top]
            candidates.extend(zip(scores.tolist(), [block] * len(rows), rows.tolist()))
        candidates.sort(key=lambda c: c[0], reverse=True)
        # A stored zero vector (a chunk without words) scores 0 against anything.
        return [
            VectorHit(data_id=block.data_ids[row], index_id=block.index_ids[row], score=score)
            for score, block, row in candidates[:limit]
        ]

    def _forget(self, dataset_ids: set[str]) -> None:
        with self._lock:
            for key in [key for key in self._blocks if key[2] in dataset_ids]:
                del self._blocks[key]

    def _block(self, dataset_id: str, version: int, dimensions: int) -> Block:
        key = (connection.alias, connection.settings_dict["NAME"], dataset_id, dimensions)
        with self._lock:
            block = self._blocks.get(key)
            if block is not None and block.version == version:
                self._blocks.move_to_end(key)
                return block
        # Loaded outside the lock (a slow read must not stall other datasets' searches); the
        # version read before the rows can only be older than them: the next search reloads.
        block = self._load(dataset_id, version, dimensions)
        with self._lock:
            self.loads += 1
            self._blocks[key] = block
            self._blocks.move_to_end(key)
            total = sum(b.nbytes for b in self._blocks.values())
            while total > settings.VECTOR_CACHE_MAX_BYTES and len(self._blocks) > 1:
                _, dropped = self._blocks.popitem(last=False)
                total -= dropped.nbytes
        return block

    def _load(self, dataset_id: str, version: int, dimensions: int) -> Block:
        field: EmbeddingField = DataIndex._meta.get_field("embedding")
        table = connection.ops.quote_name(DataIndex._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, data_id, collection_id, embedding FROM {table} "
                "WHERE dataset_id = %s AND dimensions = %s AND embedding IS NOT NULL",
                [dataset_id, dimensions],
            )
            rows = cursor.fetchall()
        if not rows:
            empty = np.array([], dtype=object)
            return Block(version, empty, empty, empty, np.zeros(0, dtype=np.int32), np.zeros((dimensions, 0), dtype=np.float32))
        index_ids, data_ids, collection_ids, raw = zip(*rows)
        if isinstance(raw[0], (bytes, memoryview)):
            matrix = np.frombuffer(b"".join(map(bytes, raw)), dtype="<f4").reshape(len(raw), dimensions)
        else:
            matrix = np.vstack([field.to_python(value) for value in raw])
        matrix = matrix.astype(np.float32)  # a copy: frombuffer's array is read-only
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms == 0, 1, norms)
        collections, collection_of = np.unique(np.array(collection_ids, dtype=object), return_inverse=True)
        return Block(
            version=version,
            index_ids=np.array(index_ids, dtype=object),
            data_ids=np.array(data_ids, dtype=object),
            collections=collections,
            collection_of=collection_of.astype(np.int32),
            columns=np.ascontiguousarray(matrix.T),
        )


NUMPY_BACKEND = NumpyExactBackend()
