"""searchTest on PostgreSQL walks the dataset's own HNSW index, cast as the dataset's model
needs: `sparsevec` for the built-in embedding, `halfvec` for a provider's dense vectors."""

import pytest
from django.db import connection

from datasets.search.vector.pgvector_indexes import build_due
from providers.registry import BUILTIN_EMBEDDING
from tests.datasets.search.conftest import CHUNKS
from tests.datasets.search.helpers import add_chunk, hits, make_collection, make_dataset, qs, search
from tests.datasets.storage_helpers import hnsw_index_types

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="pgvector runs on PostgreSQL"),
]


def index_scans(name: str) -> int:
    """Scans of the index so far in this test's transaction (PostgreSQL's own count)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_numscans(%s::regclass)", [name])
        return int(cursor.fetchone()[0])


@pytest.mark.parametrize(("vector_model", "cast"), [(BUILTIN_EMBEDDING, "sparsevec"), ("fake-embedding", "halfvec")])
def test_an_embedding_search_walks_the_datasets_index(api, team, provider_models, vector_model, cast):
    dataset = make_dataset(team, vector_model=vector_model)
    collection = make_collection(dataset)
    for number, text in enumerate(CHUNKS.values()):
        add_chunk(collection, text, chunk_index=number)
    build_due(dataset_id=dataset.id, min_rows=1)
    [(name, built_as)] = hnsw_index_types(dataset.id).items()
    assert built_as == cast

    response = search(api, datasetId=dataset.id, text="How do I reset a forgotten password?")

    assert hits(response)
    if vector_model == BUILTIN_EMBEDDING:  # (the fake provider's vectors carry no meaning)
        assert qs(response)[0] == CHUNKS["password"]
    assert index_scans(name) == 1
