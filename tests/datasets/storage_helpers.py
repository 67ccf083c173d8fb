"""Rows for the storage and training tests: datasets, collections, items with vectors."""

import numpy as np
from django.db import connection, transaction

from datasets.models import Collection, CollectionType, Data, DataIndex, Dataset, TrainingState
from datasets.search.vector import bump_vector_version, write_vectors
from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM


def score_tolerance(backend) -> float:
    """How far a backend's cosine may be from the exact one: pgvector scores the halfvec-rounded
    vectors its index holds (2 bytes a dimension, within ~2·10⁻⁴); NumPy's is float32-exact."""
    return 1e-3 if type(backend).__name__ == "PgVectorBackend" else 1e-5


def make_dataset(team, name: str = "kb", vector_model: str = BUILTIN_EMBEDDING) -> Dataset:
    return Dataset.objects.create(team=team, name=name, vector_model=vector_model, agent_model=BUILTIN_LLM)


def make_collection(dataset: Dataset, name: str = "notes.txt", **fields) -> Collection:
    fields.setdefault("type", CollectionType.TEXT)
    return Collection.objects.create(team_id=dataset.team_id, dataset=dataset, name=name, **fields)


def add_vector_item(collection: Collection, vector, q: str = "item", search_words: str = "") -> DataIndex:
    """An item whose one (default) index holds `vector`, written as training writes it."""
    data = Data.objects.create(
        team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection, q=q,
        search_words=search_words, training_state=TrainingState.READY,
    )
    index = DataIndex.objects.create(
        data=data, dataset_id=collection.dataset_id, collection=collection, type="default", text=q
    )
    vector = np.asarray(vector, dtype=np.float32)
    with transaction.atomic():
        write_vectors(rows=[(index.pk, vector)])
        bump_vector_version(dataset_ids=[collection.dataset_id])
    return index


def bulk_vectors(collection, matrix) -> list[str]:
    """Items with one index each holding the rows of `matrix` (bulk, as a big push trains)."""
    data = Data.objects.bulk_create(
        Data(team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection,
             q=f"item {i}", chunk_index=i, training_state=TrainingState.READY)
        for i in range(len(matrix))
    )
    indexes = DataIndex.objects.bulk_create(
        DataIndex(data=d, dataset_id=collection.dataset_id, collection=collection, text=d.q,
                  embedding=row, dimensions=len(row))
        for d, row in zip(data, matrix)
    )
    bump_vector_version(dataset_ids=[collection.dataset_id])
    return [index.pk for index in indexes]


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def random_units(count: int, dimensions: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((count, dimensions)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def sparse_units(count: int, dimensions: int, nonzero: int, seed: int = 0) -> np.ndarray:
    """Unit vectors with `nonzero` values set each, as the built-in embedding's are."""
    rng = np.random.default_rng(seed)
    matrix = np.zeros((count, dimensions), dtype=np.float32)
    for row in matrix:
        row[rng.choice(dimensions, nonzero, replace=False)] = rng.standard_normal(nonzero)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def hnsw_index_types(dataset_id: str) -> dict[str, str]:
    """The dataset's HNSW indexes on PostgreSQL: name → the type its vectors are cast to."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s", [f"dataindex\\_hnsw\\_{dataset_id}\\_%"])
        return {name: definition.split("_cosine_ops")[0].rsplit(" ", 1)[-1] for name, definition in cursor.fetchall()}


def hnsw_build_options(dataset_id: str) -> dict[str, list[str]]:
    """The dataset's HNSW indexes on PostgreSQL: name → the options they were built with."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, coalesce(reloptions, '{}') FROM pg_class WHERE relname LIKE %s", [f"dataindex\\_hnsw\\_{dataset_id}\\_%"])
        return dict(cursor.fetchall())


def hnsw_indexes_of(dataset_id: str) -> dict[str, bool]:
    """The dataset's HNSW indexes on PostgreSQL: name → valid (a build in progress, or one that
    failed half-way, is not)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname LIKE %s",
            [f"dataindex\\_hnsw\\_{dataset_id}\\_%"],
        )
        return dict(cursor.fetchall())
