"""Vector recall on the database's backend (pgvector HNSW / NumPy exact), and the NumPy
backend on both databases: filters, sizes, ordering, cache invalidation."""

import numpy as np
import pytest
from django.db import connection, transaction

from datasets.models import DataIndex
from datasets.search.vector import bump_vector_version, vector_backend, write_vectors
from datasets.search.vector.numpy_exact import NumpyExactBackend
from tests.datasets.storage_helpers import (
    add_vector_item, make_collection, make_dataset, random_units, score_tolerance, unit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", "numpy"])
def backend(request, settings):
    """The vendor's backend, and the NumPy one (which also runs on PostgreSQL by setting)."""
    if request.param == "numpy":
        settings.DATASET_VECTOR_BACKEND = "numpy"
        return NumpyExactBackend()
    return vector_backend()


def test_vendor_default():
    expected = "PgVectorBackend" if connection.vendor == "postgresql" else "NumpyExactBackend"
    assert type(vector_backend()).__name__ == expected


def test_nearest_first_with_cosine_scores(team, backend):
    collection = make_collection(make_dataset(team))
    east = add_vector_item(collection, unit(1, 0, 0), q="east")
    north = add_vector_item(collection, unit(0, 1, 0), q="north")
    northeast = add_vector_item(collection, unit(1, 1, 0), q="northeast")

    hits = backend.recall(dataset_ids=[collection.dataset_id], query=unit(1, 0.1, 0), limit=3)
    assert [h.index_id for h in hits] == [east.pk, northeast.pk, north.pk]
    assert [h.data_id for h in hits] == [east.data_id, northeast.data_id, north.data_id]
    expected = [float(unit(1, 0.1, 0) @ unit(*v)) for v in ((1, 0, 0), (1, 1, 0), (0, 1, 0))]
    assert [h.score for h in hits] == pytest.approx(expected, abs=score_tolerance(backend))
    assert len(backend.recall(dataset_ids=[collection.dataset_id], query=unit(1, 0, 0), limit=2)) == 2


def test_dataset_collection_and_size_filters(team, other_team, backend):
    mine = make_dataset(team, "mine")
    first, second = make_collection(mine, "a"), make_collection(mine, "b")
    theirs = make_collection(make_dataset(other_team, "theirs"))
    a = add_vector_item(first, unit(1, 0, 0))
    b = add_vector_item(second, unit(1, 0.2, 0))
    add_vector_item(theirs, unit(1, 0, 0))  # identical vector, another dataset
    add_vector_item(first, unit(1, 0, 0, 0))  # another size in the same dataset

    query = unit(1, 0, 0)
    assert {h.index_id for h in backend.recall(dataset_ids=[mine.pk], query=query, limit=10)} == {a.pk, b.pk}
    only_b = backend.recall(dataset_ids=[mine.pk], query=query, limit=10, collection_ids=[second.pk])
    assert [h.index_id for h in only_b] == [b.pk]
    assert backend.recall(dataset_ids=[mine.pk], query=query, limit=10, collection_ids=[]) == []
    assert backend.recall(dataset_ids=[], query=query, limit=10) == []
    assert backend.recall(dataset_ids=[mine.pk], query=np.zeros(3, dtype=np.float32), limit=10) == []


def test_untrained_indexes_are_not_recalled(team, backend):
    collection = make_collection(make_dataset(team))
    trained = add_vector_item(collection, unit(1, 0, 0))
    DataIndex.objects.create(data=trained.data, dataset_id=collection.dataset_id, collection=collection, text="t")
    hits = backend.recall(dataset_ids=[collection.dataset_id], query=unit(1, 0, 0), limit=10)
    assert [h.index_id for h in hits] == [trained.pk]


def test_recall_matches_exact_search_on_many_vectors(team, backend):
    """200 random 512-d vectors, 100 asked for (as embedding mode does): every hit carries its
    true cosine, hits come best first, and the top 10 are the exact top 10 — all of them on the
    exact backends; on pgvector, whose HNSW scan is approximate by design (and here may also
    walk the dead entries earlier tests' rolled-back rows left in the index), at least 9 of 10."""
    collection = make_collection(make_dataset(team))
    matrix = random_units(200, 512, seed=7)
    items = [add_vector_item(collection, row) for row in matrix]
    query = random_units(1, 512, seed=8)[0]
    true_score = {item.pk: float(score) for item, score in zip(items, matrix @ query)}
    exact = [items[i].pk for i in np.argsort(-(matrix @ query))[:10]]

    hits = backend.recall(dataset_ids=[collection.dataset_id], query=query, limit=100)

    assert len(hits) == 100
    assert [h.score for h in hits] == pytest.approx([true_score[h.index_id] for h in hits], abs=score_tolerance(backend))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top10 = [h.index_id for h in hits[:10]]
    if type(backend).__name__ == "PgVectorBackend":
        assert len(set(top10) & set(exact)) >= 9
    else:
        assert top10 == exact


def test_sparse_query_scores_equal_a_dense_product(team, settings):
    """A query with few non-zero dimensions (the built-in embedding of a short question) —
    NumPy scores it on those dimensions alone — ranks and scores exactly as the full product.
    (NumPy only: through HNSW on PostgreSQL the same recall is approximate.)"""
    settings.DATASET_VECTOR_BACKEND = "numpy"
    backend = NumpyExactBackend()
    first, second = make_collection(make_dataset(team)), None
    second = make_collection(first.dataset, "b")
    rng = np.random.default_rng(3)
    matrix = random_units(120, 512, seed=11)
    matrix[rng.random(matrix.shape) < 0.8] = 0  # sparse stored vectors too
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    items = [add_vector_item(first if i % 2 else second, row) for i, row in enumerate(matrix)]
    query = np.zeros(512, dtype=np.float32)
    query[[5, 77, 300]] = (0.6, -0.48, 0.64)
    exact = matrix @ query
    hits = backend.recall(dataset_ids=[first.dataset_id], query=query, limit=len(items))
    assert {h.index_id: h.score for h in hits} == pytest.approx(
        {items[i].pk: float(exact[i]) for i in range(len(items))}, abs=1e-5
    )
    only_first = backend.recall(dataset_ids=[first.dataset_id], query=query, limit=5, collection_ids=[first.pk])
    odd = [i for i in np.argsort(-exact, kind="stable") if i % 2][:5]
    assert [h.score for h in only_first] == pytest.approx([float(exact[i]) for i in odd], abs=1e-5)
    assert all(h.index_id in {items[i].pk for i in range(1, len(items), 2)} for h in only_first)


def test_numpy_cache_reloads_only_after_a_vector_write(team):
    backend = NumpyExactBackend()
    collection = make_collection(make_dataset(team))
    add_vector_item(collection, unit(1, 0, 0), q="first")
    recall = lambda: backend.recall(dataset_ids=[collection.dataset_id], query=unit(0, 1, 0), limit=5)  # noqa: E731

    assert len(recall()) == 1
    assert len(recall()) == 1
    assert backend.loads == 1  # the second search used the cache

    added = add_vector_item(collection, unit(0, 1, 0), q="second")  # writes + bumps vector_version
    hits = recall()
    assert backend.loads == 2
    assert hits[0].index_id == added.pk

    # A write without a version bump is invisible to the cache: the bump is what invalidates.
    with transaction.atomic():
        write_vectors(rows=[(added.pk, unit(0, 0, 1))])
    assert recall()[0].index_id == added.pk
    with transaction.atomic():
        bump_vector_version(dataset_ids=[collection.dataset_id])
    assert recall()[0].index_id != added.pk
    assert backend.loads == 3


def test_numpy_cache_is_bounded(team, settings):
    backend = NumpyExactBackend()
    datasets = [make_dataset(team, f"kb{i}") for i in range(3)]
    for dataset in datasets:
        add_vector_item(make_collection(dataset), random_units(1, 512)[0])
    settings.VECTOR_CACHE_MAX_BYTES = 2 * 512 * 4 + 500  # room for about two blocks
    for dataset in datasets:
        backend.recall(dataset_ids=[dataset.pk], query=random_units(1, 512)[0], limit=1)
    assert len(backend._blocks) == 2
    backend.recall(dataset_ids=[datasets[0].pk], query=random_units(1, 512)[0], limit=1)
    assert backend.loads == 4  # the first dataset's block had been dropped


def test_numpy_cache_forgets_deleted_datasets(team):
    backend = NumpyExactBackend()
    collection = make_collection(make_dataset(team))
    add_vector_item(collection, unit(1, 0, 0))
    assert len(backend.recall(dataset_ids=[collection.dataset_id], query=unit(1, 0, 0), limit=5)) == 1
    assert len(backend._blocks) == 1
    collection.dataset.delete()
    assert backend.recall(dataset_ids=[collection.dataset_id], query=unit(1, 0, 0), limit=5) == []
    assert len(backend._blocks) == 0
