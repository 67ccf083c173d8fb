"""Migration 0009: every dataset with enough vectors of a size gets its own HNSW index, the
per-size indexes go; reverse undoes it."""

from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from datasets.search.vector.pgvector_indexes import index_name
from tests.datasets.storage_helpers import bulk_vectors, make_collection, make_dataset, random_units

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the HNSW indexes are PostgreSQL's"),
]

migration = import_module("datasets.migrations.0009_hnsw_index_per_dataset")
before = import_module("datasets.migrations.0008_hnsw_over_halfvec")
EDITOR = SimpleNamespace(connection=connection)


def hnsw_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'dataindex%%hnsw%%'")
        return {name for (name,) in cursor.fetchall()}


def test_forward_indexes_each_large_dataset_and_drops_the_per_size_indexes(team, settings):
    settings.VECTOR_INDEX_MIN_ROWS = 50
    large, small = make_collection(make_dataset(team, "large")), make_collection(make_dataset(team, "small"))
    bulk_vectors(large, random_units(60, 512, seed=1))
    bulk_vectors(large, random_units(60, 64, seed=2))
    bulk_vectors(small, random_units(10, 512, seed=3))
    with connection.cursor() as cursor:  # as 0008 left the database, with a size created since
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(before.create_sql(512, "halfvec"))
        cursor.execute(before.create_sql(64, "halfvec"))

    migration.per_dataset(apps, EDITOR)
    assert hnsw_indexes() == {index_name(large.dataset_id, 512), index_name(large.dataset_id, 64)}

    migration.per_size(apps, EDITOR)
    assert hnsw_indexes() == {"dataindex_embedding_hnsw_512", "dataindex_embedding_hnsw_64"}


def test_nothing_happens_on_sqlite_like_vendors():
    sqlite = SimpleNamespace(connection=SimpleNamespace(vendor="sqlite"))
    migration.per_dataset(apps, sqlite)
    migration.per_size(apps, sqlite)
    assert hnsw_indexes() == set()
