"""Migration 0008: every per-size HNSW index is rebuilt over halfvec (and back on reverse);
the searches keep using it."""

from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the HNSW indexes are PostgreSQL's"),
]

migration = import_module("datasets.migrations.0008_hnsw_over_halfvec")
EDITOR = SimpleNamespace(connection=connection)


def hnsw_indexes() -> dict[str, str]:
    """index name → the type its expression casts to."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'dataindex_embedding_hnsw_%'")
        return {name: "halfvec" if "halfvec_cosine_ops" in definition else "vector" for name, definition in cursor.fetchall()}


def test_forward_rebuilds_every_size_over_halfvec_and_reverse_undoes_it():
    with connection.cursor() as cursor:  # as 0008 left it (0009 replaced it by per-dataset indexes)
        cursor.execute(migration.create_sql(512, "halfvec"))
    assert hnsw_indexes() == {"dataindex_embedding_hnsw_512": "halfvec"}

    migration.rebuild("vector", 2000)(apps, EDITOR)  # back to before 0008 …
    with connection.cursor() as cursor:  # … with a size created on demand since
        cursor.execute(migration.create_sql(96, "vector"))
    assert hnsw_indexes() == {"dataindex_embedding_hnsw_512": "vector", "dataindex_embedding_hnsw_96": "vector"}

    migration.rebuild("halfvec", 4000)(apps, EDITOR)
    assert hnsw_indexes() == {"dataindex_embedding_hnsw_512": "halfvec", "dataindex_embedding_hnsw_96": "halfvec"}

    with connection.cursor() as cursor:  # a size only halfvec can index
        cursor.execute(migration.create_sql(3072, "halfvec"))
    migration.rebuild("vector", 2000)(apps, EDITOR)
    assert hnsw_indexes() == {"dataindex_embedding_hnsw_512": "vector", "dataindex_embedding_hnsw_96": "vector"}


def test_nothing_happens_on_sqlite_like_vendors():
    with connection.cursor() as cursor:
        cursor.execute(migration.create_sql(512, "vector"))
    migration.rebuild("halfvec", 4000)(apps, SimpleNamespace(connection=SimpleNamespace(vendor="sqlite")))
    assert hnsw_indexes() == {"dataindex_embedding_hnsw_512": "vector"}
