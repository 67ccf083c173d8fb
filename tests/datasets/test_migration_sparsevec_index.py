"""Migration 0010: the built-in embedding's per-dataset HNSW indexes are built again over
sparsevec, other models' stay over halfvec; reverse undoes it."""

from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from datasets.search.vector.pgvector_indexes import build_index, index_name
from tests.datasets.storage_helpers import (
    bulk_vectors,
    hnsw_build_options,
    hnsw_index_types,
    make_collection,
    make_dataset,
    random_units,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the HNSW indexes are PostgreSQL's"),
]

migration = import_module("datasets.migrations.0010_builtin_embedding_sparsevec_index")
EDITOR = SimpleNamespace(connection=connection)


def test_forward_rebuilds_the_builtin_embeddings_indexes_over_sparsevec_and_reverse_undoes_it(team):
    builtin = make_collection(make_dataset(team, "builtin"))
    dense = make_collection(make_dataset(team, "dense", vector_model="text-embedding-3-small"))
    bulk_vectors(builtin, random_units(60, 512, seed=1))
    bulk_vectors(dense, random_units(60, 512, seed=2))
    for collection in (builtin, dense):  # as 0009 left them: every index over halfvec
        build_index(dataset_id=collection.dataset_id, dimensions=512, sparse=False)
    mine, theirs = index_name(builtin.dataset_id, 512), index_name(dense.dataset_id, 512)

    migration.Migration.operations[0].code(apps, EDITOR)
    assert hnsw_index_types(builtin.dataset_id) == {mine: "sparsevec"}
    assert hnsw_build_options(builtin.dataset_id) == {mine: ["m=16", "ef_construction=128"]}  # as the app builds it
    assert hnsw_index_types(dense.dataset_id) == {theirs: "halfvec"}

    migration.Migration.operations[0].reverse_code(apps, EDITOR)
    assert hnsw_index_types(builtin.dataset_id) == {mine: "halfvec"}
    assert hnsw_build_options(builtin.dataset_id) == {mine: []}
    assert hnsw_index_types(dense.dataset_id) == {theirs: "halfvec"}


def test_nothing_happens_on_sqlite_like_vendors():
    sqlite = SimpleNamespace(connection=SimpleNamespace(vendor="sqlite"))
    migration.Migration.operations[0].code(apps, sqlite)
    migration.Migration.operations[0].reverse_code(apps, sqlite)
