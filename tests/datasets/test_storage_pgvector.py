"""pgvector specifics (PostgreSQL only): recall asks each dataset apart so that the planner
uses that dataset's HNSW index (EXPLAIN), iterative scans keep a filtered scan's results full,
and `ef_search` follows the size of the datasets' indexes. The indexes' lifecycle (when one is
built, dropped) is tests/datasets/test_vector_indexes.py's."""

import time

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from datasets.search.selectors import recalled_rows
from datasets.search.vector.pgvector import PgVectorBackend, ef_search_for, settings_sql
from datasets.search.vector.pgvector_indexes import build_index, index_name
from tests.datasets.storage_helpers import bulk_vectors, make_collection, make_dataset, random_units, sparse_units

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="pgvector runs on PostgreSQL"),
]


@pytest.fixture(autouse=True)
def _forget_index_sizes(monkeypatch):
    """The backend reads the indexes' sizes once a minute per process; each test starts afresh."""
    from datasets.search.vector import pgvector_indexes

    monkeypatch.setattr(pgvector_indexes, "_sizes", {})


def explain(backend, **recall) -> str:
    """The plan of the recall's SELECT under the settings it is sent with (one batch, as recall
    sends it)."""
    sql, params = backend.recall_sql(**recall)
    with connection.cursor() as cursor:
        batch = settings_sql(recall["limit"], prefer_index=recall.get("collection_ids") is None)
        cursor.execute(f"{batch}; EXPLAIN {sql}", params)
        while cursor.description is None and cursor.nextset():
            pass
        return "\n".join(row[0] for row in cursor.fetchall())


def analyze():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_dataindex")


@pytest.mark.parametrize("dimensions", [512, 64])
def test_recall_uses_the_datasets_own_hnsw_index(team, dimensions):
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    # 10,000 rows: at 3,000 an exact sort and the HNSW scan cost about the same to the planner,
    # and the files earlier tests' rolled-back inserts left grown (a rollback shrinks no
    # relation) tipped it either way.
    bulk_vectors(collection, random_units(10_000, dimensions, seed=dimensions))
    assert build_index(dataset_id=collection.dataset_id, dimensions=dimensions)
    analyze()
    plan = explain(backend, dataset_ids=[collection.dataset_id], query=random_units(1, dimensions)[0], limit=10)
    assert f"Index Scan using {index_name(collection.dataset_id, dimensions)}" in plan, plan


def test_several_datasets_are_each_searched_through_their_own_index_and_merged(team):
    backend = PgVectorBackend()
    first, second = make_collection(make_dataset(team, "first")), make_collection(make_dataset(team, "second"))
    first_matrix, second_matrix = random_units(4000, 512, seed=21), random_units(4000, 512, seed=22)
    first_ids, second_ids = bulk_vectors(first, first_matrix), bulk_vectors(second, second_matrix)
    for collection in (first, second):
        build_index(dataset_id=collection.dataset_id, dimensions=512)
    analyze()
    query = first_matrix[:5].sum(axis=0) + second_matrix[:5].sum(axis=0)
    # 50 recalled, the best 10 compared: uniformly random vectors are HNSW's worst case, and at
    # the ef_search of a limit of 10 (40) the graph walk missed 2 of the 10 in 1 run of 12.
    recall = {"dataset_ids": [first.dataset_id, second.dataset_id], "query": query, "limit": 50}

    plan = explain(backend, **recall)
    hits = backend.recall(**recall)

    for collection in (first, second):
        assert f"Index Scan using {index_name(collection.dataset_id, 512)}" in plan, plan
    matrix, ids = np.vstack([first_matrix, second_matrix]), first_ids + second_ids
    exact = {ids[i] for i in np.argsort(-(matrix @ query))[:10]}
    assert len({h.index_id for h in hits[:10]} & exact) >= 9  # HNSW is approximate
    assert {h.index_id for h in hits} & set(first_ids) and {h.index_id for h in hits} & set(second_ids)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_collection_filter_does_not_starve_results(team):
    """The collection asked for holds 10 % of the dataset's rows, all far from the query.
    Through the HNSW index a plain scan returns ef_search rows of the other collection and loses
    nearly all of them to the filter; iterative scanning keeps going until `limit` rows of the
    target are found.

    (On this little table the planner rightly prefers an exact scan of the target's 300 rows;
    sorting is disabled here so that it takes the HNSW path the test is about.)"""
    backend = PgVectorBackend()
    dataset = make_dataset(team)
    big, small = make_collection(dataset, "big.md"), make_collection(dataset, "small.md")
    cluster = random_units(1, 512, seed=1)[0]
    noise = random_units(3000, 512, seed=2) * 0.3 + cluster  # the big collection: around the query
    bulk_vectors(big, noise / np.linalg.norm(noise, axis=1, keepdims=True))
    small_matrix = random_units(300, 512, seed=3)
    small_ids = bulk_vectors(small, small_matrix)
    build_index(dataset_id=dataset.id, dimensions=512)
    analyze()
    recall = {"dataset_ids": [dataset.id], "query": cluster, "limit": 10, "collection_ids": [small.pk]}

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        assert f"Index Scan using {index_name(dataset.id, 512)}" in explain(backend, **recall)
        hits = backend.recall(**recall)

        sql, params = backend.recall_sql(**recall)
        cursor.execute("SET LOCAL hnsw.iterative_scan = off")
        cursor.execute("SET LOCAL hnsw.ef_search = 40")
        cursor.execute(sql, params)
        starved = cursor.fetchall()

    assert len(starved) < 10  # what a filtered HNSW scan gives without iterative scans
    assert len(hits) == 10
    exact = [small_ids[i] for i in np.argsort(-(small_matrix @ cluster))[:10]]
    assert len({h.index_id for h in hits} & set(exact)) >= 9  # HNSW is approximate
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_dataset_without_its_index_is_searched_exactly(team):
    """Another dataset's index is not this one's: its rows are read through the btree index and
    sorted exactly, all of them found."""
    backend = PgVectorBackend()
    indexed = make_collection(make_dataset(team, "indexed"))
    bulk_vectors(indexed, random_units(3000, 512, seed=5))
    build_index(dataset_id=indexed.dataset_id, dimensions=512)
    loading = make_collection(make_dataset(team, "loading"))
    matrix = random_units(500, 512, seed=6)
    ids = bulk_vectors(loading, matrix)
    analyze()
    query = random_units(1, 512, seed=7)[0]
    recall = {"dataset_ids": [loading.dataset_id], "query": query, "limit": 10}
    assert "hnsw" not in explain(backend, **recall)
    assert [h.index_id for h in backend.recall(**recall)] == [ids[i] for i in np.argsort(-(matrix @ query))[:10]]


def test_a_dataset_with_its_index_is_searched_through_it_whatever_the_planners_costs(team):
    """Left to its costs the planner sorted a 3,000-vector dataset exactly, at several times
    the index's cost; the recall has it use the dataset's index whenever there is one."""
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    matrix = random_units(3000, 512, seed=5)
    ids = bulk_vectors(collection, matrix)
    build_index(dataset_id=collection.dataset_id, dimensions=512)
    analyze()
    query = random_units(1, 512, seed=7)[0]
    recall = {"dataset_ids": [collection.dataset_id], "query": query, "limit": 100}  # as the pipeline asks
    sql, params = backend.recall_sql(**recall)
    with connection.cursor() as cursor:  # the planner's own choice, for the record
        cursor.execute(f"{settings_sql(100)}; EXPLAIN {sql}", params)
        while cursor.description is None and cursor.nextset():
            pass
        unforced = "\n".join(row[0] for row in cursor.fetchall())

    assert f"Index Scan using {index_name(collection.dataset_id, 512)}" in explain(backend, **recall), unforced
    hits = backend.recall(**recall)[:10]
    exact = {ids[i] for i in np.argsort(-(matrix @ query))[:10]}
    assert len({h.index_id for h in hits} & exact) >= 9  # HNSW is approximate


def test_sparse_vectors_are_searched_through_a_sparsevec_index_with_float32_scores(team):
    """The built-in embedding's vectors (sparse: `recall(sparse=True)`) are indexed and compared
    as sparsevec: the dataset's index is used, and the scores are the float32 cosines, not
    halfvec-rounded ones."""
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    matrix = sparse_units(3000, 512, nonzero=40, seed=13)
    ids = bulk_vectors(collection, matrix)
    build_index(dataset_id=collection.dataset_id, dimensions=512, sparse=True)
    analyze()
    query = sparse_units(1, 512, nonzero=8, seed=14)[0] + matrix[0]  # near one chunk, as a question is
    recall = {"dataset_ids": [collection.dataset_id], "query": query, "limit": 100, "sparse": True}

    assert f"Index Scan using {index_name(collection.dataset_id, 512)}" in explain(backend, **recall)
    assert "hnsw" not in explain(backend, **{**recall, "sparse": False})  # a halfvec cast matches no index
    hits = backend.recall(**recall)
    exact = matrix @ (query / np.linalg.norm(query))
    row_of = {index_id: row for row, index_id in enumerate(ids)}
    assert len({h.index_id for h in hits[:10]} & {ids[i] for i in np.argsort(-exact)[:10]}) >= 9  # approximate
    assert hits[0].index_id == ids[0]
    assert max(abs(h.score - exact[row_of[h.index_id]]) for h in hits) < 1e-5


def test_without_its_index_a_dataset_is_ordered_by_its_stored_vectors_with_no_cast(team):
    """No index to match: the exact scan reads the `vector`s as stored (a cast per row cost
    17–30 % more); once the dataset has its index, the index's expression is used."""
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    bulk_vectors(collection, sparse_units(60, 512, nonzero=30, seed=17))
    recall = {"dataset_ids": [collection.dataset_id], "query": sparse_units(1, 512, nonzero=5, seed=18)[0], "limit": 10}
    for sparse in (False, True):
        sql, _ = backend.recall_sql(**recall, sparse=sparse)
        assert "embedding <=> %s::vector " in sql and "halfvec" not in sql and "sparsevec" not in sql
    build_index(dataset_id=collection.dataset_id, dimensions=512, sparse=True)
    sql, _ = backend.recall_sql(**recall, sparse=True)
    assert "embedding::sparsevec(512) <=> %s::sparsevec(512)" in sql


def test_sparse_vectors_without_an_index_are_searched_exactly(team):
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    matrix = sparse_units(400, 512, nonzero=30, seed=15)
    matrix[5] = 0  # a chunk without words: never a hit
    ids = bulk_vectors(collection, matrix)
    query = sparse_units(1, 512, nonzero=200, seed=16)[0]
    hits = backend.recall(dataset_ids=[collection.dataset_id], query=query, limit=10, sparse=True)
    assert [h.index_id for h in hits] == [ids[i] for i in np.argsort(-(matrix @ query))[:10]]
    assert ids[5] not in {h.index_id for h in backend.recall(dataset_ids=[collection.dataset_id], query=query, limit=400, sparse=True)}


def test_with_a_collection_filter_the_planner_chooses(team):
    """A narrow collection filter is cheaper through the collection's btree than an index scan
    that would have to skip the rest of the dataset: the planner keeps its choice there."""
    backend = PgVectorBackend()
    dataset = make_dataset(team)
    bulk_vectors(make_collection(dataset, "big.md"), random_units(3000, 512, seed=8))
    small = make_collection(dataset, "small.md")
    ids = bulk_vectors(small, random_units(20, 512, seed=9))
    build_index(dataset_id=dataset.id, dimensions=512)
    analyze()
    recall = {"dataset_ids": [dataset.id], "query": random_units(1, 512, seed=10)[0], "limit": 10,
              "collection_ids": [small.pk]}
    assert "hnsw" not in explain(backend, **recall)
    assert {h.index_id for h in backend.recall(**recall)} <= set(ids) and len(backend.recall(**recall)) == 10


@pytest.mark.django_db(transaction=True)
def test_the_recall_settings_last_only_as_long_as_the_recall(team):
    """The SETs travel with the SELECT in one round trip; outside a transaction they end with it
    and the pooled connection goes back with PostgreSQL's defaults."""
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    bulk_vectors(collection, random_units(20, 512, seed=8))
    hits = backend.recall(dataset_ids=[collection.dataset_id], query=random_units(1, 512, seed=9)[0], limit=100)
    assert len(hits) == 20
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'), current_setting('enable_sort')"
        )
        assert cursor.fetchone() == ("40", "off", "on")


def test_ef_search_follows_the_limit_and_grows_with_the_table():
    assert ef_search_for(5) == 40
    assert ef_search_for(100) == 200
    assert ef_search_for(10_000) == 1000
    assert ef_search_for(100, rows=50_000) == ef_search_for(100, rows=100_000) == 200
    assert ef_search_for(100, rows=300_000) == 486
    assert ef_search_for(100, rows=1_000_000) == 800 and ef_search_for(10, rows=1_000_000) == 80
    assert ef_search_for(100, rows=10_000_000) == 1000  # the ceiling


def test_the_recall_widens_its_search_as_the_dataset_grows(team, monkeypatch):
    """The size is that of the dataset's index (PostgreSQL's reltuples), read once a minute."""
    from datasets.search.vector import pgvector_indexes

    collection = make_collection(make_dataset(team))
    bulk_vectors(collection, random_units(5, 512, seed=11))
    build_index(dataset_id=collection.dataset_id, dimensions=512)
    recall = {"dataset_ids": [collection.dataset_id], "query": random_units(1, 512, seed=12)[0], "limit": 100}
    with CaptureQueriesContext(connection) as queries:
        PgVectorBackend().recall(**recall)
        PgVectorBackend().recall(**recall)
    assert sum("reltuples" in q["sql"] for q in queries) == 1  # then remembered
    assert all("hnsw.ef_search = 200;" in q["sql"] for q in queries if "ef_search" in q["sql"])

    sizes = {index_name(collection.dataset_id, 512): 1e6, index_name("0" * 24, 512): 1e7}  # another's: no matter
    monkeypatch.setattr(pgvector_indexes, "_sizes", {connection.settings_dict["NAME"]: (time.monotonic(), sizes)})
    with CaptureQueriesContext(connection) as queries:
        PgVectorBackend().recall(**recall)
    assert "hnsw.ef_search = 800;" in queries[-1]["sql"]


def test_the_hits_carry_their_chunks_rows_as_the_rows_selector_reads_them(team):
    """The recall reads its hits' chunks in the same statement: the same rows `recalled_rows`
    gives (searchable collections only), so the pipeline needs no statement of its own for them."""
    backend = PgVectorBackend()
    dataset = make_dataset(team)
    shown, hidden = make_collection(dataset, "shown.md"), make_collection(dataset, "hidden.md", forbid=True)
    matrix = random_units(12, 512, seed=10)
    bulk_vectors(shown, matrix[:8])
    bulk_vectors(hidden, matrix[8:])
    query = matrix[:3].sum(axis=0)

    hits = backend.recall(dataset_ids=[dataset.id], query=query, limit=100)

    assert len(hits) == 8  # the forbidden collection's four are not hits
    assert all(hit.row is not None and hit.row.id == hit.data_id for hit in hits)
    assert {hit.data_id: hit.row for hit in hits} == recalled_rows(
        dataset_ids=[dataset.id], data_ids={hit.data_id for hit in hits}
    )
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
