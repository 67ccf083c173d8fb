"""EmbeddingField: vectors in and out as float32 arrays; sizes coexisting in one column."""

import numpy as np
import pytest
from django.db import connection

from datasets.fields import EmbeddingField, parse_vector_literal, sparse_literal, vector_literal
from datasets.models import DataIndex
from tests.datasets.storage_helpers import add_vector_item, make_collection, make_dataset, random_units

pytestmark = pytest.mark.django_db


def test_column_type_per_vendor():
    field = DataIndex._meta.get_field("embedding")
    expected = {"postgresql": "vector", "sqlite": "blob"}[connection.vendor]
    assert field.db_type(connection) == expected


def test_round_trip_keeps_every_float32_bit(team):
    collection = make_collection(make_dataset(team))
    vector = random_units(1, 512, seed=3)[0]
    vector[0] = np.float32(1e-30)  # tiny and awkward values survive the text form too
    vector[1] = np.float32(-0.1)
    index = add_vector_item(collection, vector)

    stored = DataIndex.objects.get(pk=index.pk)
    assert isinstance(stored.embedding, np.ndarray)
    assert stored.embedding.dtype == np.float32
    assert stored.dimensions == 512
    assert np.array_equal(stored.embedding, vector)


def test_orm_save_accepts_lists_and_null(team):
    collection = make_collection(make_dataset(team))
    index = add_vector_item(collection, [1.0, 0.0, 0.0])
    index.embedding = [0.25, 0.5, -0.75]
    index.save(update_fields=["embedding"])
    assert DataIndex.objects.get(pk=index.pk).embedding.tolist() == [0.25, 0.5, -0.75]

    index.embedding = None
    index.save(update_fields=["embedding"])
    assert DataIndex.objects.get(pk=index.pk).embedding is None
    assert DataIndex.objects.filter(pk=index.pk, embedding__isnull=True).exists()


def test_different_dimensions_coexist_in_one_column(team):
    small = make_collection(make_dataset(team, "small", vector_model="fake-embedding"))
    large = make_collection(make_dataset(team, "large"))
    a = add_vector_item(small, random_units(1, 64, seed=1)[0])
    b = add_vector_item(large, random_units(1, 512, seed=2)[0])
    c = add_vector_item(large, random_units(1, 1536, seed=4)[0])
    sizes = dict(DataIndex.objects.values_list("pk", "dimensions"))
    assert sizes == {a.pk: 64, b.pk: 512, c.pk: 1536}
    assert [len(DataIndex.objects.get(pk=pk).embedding) for pk in (a.pk, b.pk, c.pk)] == [64, 512, 1536]


def test_literal_helpers_round_trip():
    vector = np.array([0.1, -2.5, 3e-8], dtype=np.float32)
    assert np.array_equal(parse_vector_literal(vector_literal(vector)), vector)
    with pytest.raises(ValueError):
        EmbeddingField().get_db_prep_value([[1.0, 2.0]], connection)


def test_the_sparse_literal_names_the_non_zero_values_by_their_1_based_positions():
    vector = np.array([0, 0.25, 0, 0, -3e-8], dtype=np.float32)
    assert sparse_literal(vector) == "{2:0.25,5:-2.999999892949745e-08}/5"  # (float32 -3e-8, exactly)
    assert sparse_literal(np.zeros(3, dtype=np.float32)) == "{}/3"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pgvector's own reading of the literal")
@pytest.mark.django_db
def test_pgvector_reads_the_sparse_literal_as_the_same_vector():
    vector = random_units(1, 512, seed=4)[0]
    vector[vector < 0.05] = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT (%s::sparsevec(512))::vector::text", [sparse_literal(vector)])
        assert np.array_equal(parse_vector_literal(cursor.fetchone()[0]), vector)
