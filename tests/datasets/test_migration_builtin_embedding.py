"""Migration 0007: stored vectors of the built-in embedding are recomputed with the current
embedding (no function words), other models' vectors are left alone, versions are bumped."""

from importlib import import_module
from types import SimpleNamespace

import numpy as np
import pytest
from django.apps import apps
from django.db import connection

from datasets.models import DataIndex, Dataset
from providers.embeddings import lexical_embedding
from tests.datasets.storage_helpers import add_vector_item, make_collection, make_dataset, random_units

pytestmark = pytest.mark.django_db

migration = import_module("datasets.migrations.0007_builtin_embedding_without_stopwords")


def test_builtin_vectors_are_recomputed_and_versions_bumped(team):
    builtin = make_collection(make_dataset(team, "builtin"))
    other_dataset = make_dataset(team, "other")
    Dataset.objects.filter(pk=other_dataset.pk).update(vector_model="text-embedding-3-small")
    other = make_collection(other_dataset)
    stale = random_units(3, 512, seed=4)  # stand-ins for the earlier embedding's vectors
    texts = ["How do I reset the password of my account?", "The invoices are in the billing page"]
    mine = [add_vector_item(builtin, vector, q=text) for vector, text in zip(stale, texts)]
    theirs = add_vector_item(other, stale[2], q="How do I reset the password?")
    versions = dict(Dataset.objects.values_list("id", "vector_version"))

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # rows of this test's transaction
    migration.reembed(apps, SimpleNamespace(connection=connection))

    for index, text in zip(mine, texts):
        stored = DataIndex.objects.get(pk=index.pk).embedding
        assert np.allclose(stored, lexical_embedding([text])[0], atol=1e-6)
        assert not np.allclose(stored, stale[mine.index(index)], atol=1e-3)
    assert np.allclose(DataIndex.objects.get(pk=theirs.pk).embedding, stale[2], atol=1e-6)
    after = dict(Dataset.objects.values_list("id", "vector_version"))
    assert after[builtin.dataset_id] == versions[builtin.dataset_id] + 1
    assert after[other_dataset.pk] == versions[other_dataset.pk]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [migration.HNSW_INDEX])
            assert cursor.fetchone() is not None  # dropped for the updates, built again


def test_nothing_to_do_without_builtin_vectors(team):
    make_collection(make_dataset(team))  # a built-in dataset, nothing trained
    versions = dict(Dataset.objects.values_list("id", "vector_version"))
    migration.reembed(apps, SimpleNamespace(connection=connection))
    assert dict(Dataset.objects.values_list("id", "vector_version")) == versions
