"""pgvector specifics (PostgreSQL only): per-size HNSW expression indexes, created on demand,
used by recall (EXPLAIN) even with a dataset filter, whose results iterative scans keep full."""

import time

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from datasets.models import Data, DataIndex, TrainingState
from datasets.search.selectors import recalled_rows
from datasets.search.vector import bump_vector_version
from datasets.search.vector.pgvector import PgVectorBackend, ef_search_for, index_name, settings_sql
from tests.datasets.storage_helpers import make_collection, make_dataset, random_units

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="pgvector runs on PostgreSQL"),
]


@pytest.fixture(autouse=True)
def _forget_known_indexes(monkeypatch):
    """The backend remembers, per process, the sizes whose index exists once their transaction
    commits; tests roll back (and django_capture_on_commit_callbacks runs callbacks anyway), so
    each test starts with nothing remembered."""
    from datasets.search.vector import pgvector

    monkeypatch.setattr(pgvector, "_indexed", set())
    monkeypatch.setattr(pgvector, "_rows", {})


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


def index_exists(dimensions: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [index_name(dimensions)])
        row = cursor.fetchone()
    return row is not None and f"halfvec({dimensions})" in row[0] and f"dimensions = {dimensions}" in row[0]


def explain(backend, **recall) -> str:
    """The plan of the recall's SELECT under the settings it is sent with (one batch, as recall
    sends it)."""
    sql, params = backend.recall_sql(**recall)
    with connection.cursor() as cursor:
        cursor.execute(f"{settings_sql(recall['limit'])}; EXPLAIN {sql}", params)
        while cursor.description is None and cursor.nextset():
            pass
        return "\n".join(row[0] for row in cursor.fetchall())


def analyze():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_dataindex")


def test_the_migration_indexes_the_builtin_size():
    assert index_exists(512)


def test_prepare_creates_the_index_of_a_new_size_once(team):
    backend = PgVectorBackend()
    assert not index_exists(96)
    backend.prepare(dimensions=96)
    assert index_exists(96)
    backend.prepare(dimensions=96)  # known: nothing happens, no error
    backend.prepare(dimensions=3072)  # over vector's HNSW limit (2,000), within halfvec's (4,000)
    assert index_exists(3072)
    backend.prepare(dimensions=4096)  # over halfvec's: no index, searched exactly
    assert not index_exists(4096)


@pytest.mark.parametrize("dimensions", [512, 64])
def test_recall_uses_the_hnsw_index_with_a_dataset_filter(team, dimensions):
    backend = PgVectorBackend()
    collection = make_collection(make_dataset(team))
    # 10,000 rows: at 3,000 an exact sort and the HNSW scan cost about the same to the planner,
    # and the files earlier tests' rolled-back inserts left grown (a rollback shrinks no
    # relation) tipped it either way. The index is built over them (a build is much faster
    # than 10,000 inserts into the graph).
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {index_name(dimensions)}")
    bulk_vectors(collection, random_units(10_000, dimensions, seed=dimensions))
    backend.prepare(dimensions=dimensions)
    analyze()
    plan = explain(backend, dataset_ids=[collection.dataset_id], query=random_units(1, dimensions)[0], limit=10)
    assert f"Index Scan using {index_name(dimensions)}" in plan, plan


def test_a_filter_does_not_starve_results(team):
    """The target dataset holds 10 % of the rows, all far from the query. Through the HNSW
    index a plain scan returns ef_search rows of the big dataset and loses nearly all of them
    to the filter; iterative scanning keeps going until `limit` rows of the target are found.

    (On this little table the planner rightly prefers an exact scan of the target's 300 rows;
    sorting is disabled here so that it takes the HNSW path the test is about.)"""
    backend = PgVectorBackend()
    big = make_collection(make_dataset(team, "big"))
    small = make_collection(make_dataset(team, "small"))
    cluster = random_units(1, 512, seed=1)[0]
    noise = random_units(3000, 512, seed=2) * 0.3 + cluster  # the big dataset: around the query
    bulk_vectors(big, noise / np.linalg.norm(noise, axis=1, keepdims=True))
    small_matrix = random_units(300, 512, seed=3)
    small_ids = bulk_vectors(small, small_matrix)
    analyze()
    recall = {"dataset_ids": [small.dataset_id], "query": cluster, "limit": 10}

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        assert f"Index Scan using {index_name(512)}" in explain(backend, **recall)
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


def test_the_planner_scans_a_small_dataset_exactly(team):
    """A dataset with few rows among many is read through its btree index and sorted exactly."""
    backend = PgVectorBackend()
    bulk_vectors(make_collection(make_dataset(team, "big")), random_units(3000, 512, seed=5))
    small = make_collection(make_dataset(team, "small"))
    ids = bulk_vectors(small, random_units(20, 512, seed=6))
    analyze()
    recall = {"dataset_ids": [small.dataset_id], "query": random_units(1, 512, seed=7)[0], "limit": 10}
    assert "hnsw" not in explain(backend, **recall)
    assert len(backend.recall(**recall)) == 10 and set(h.index_id for h in backend.recall(**recall)) <= set(ids)


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
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
        assert cursor.fetchone() == ("40", "off")


def test_ef_search_follows_the_limit_and_grows_with_the_table():
    assert ef_search_for(5) == 40
    assert ef_search_for(100) == 200
    assert ef_search_for(10_000) == 1000
    assert ef_search_for(100, rows=50_000) == ef_search_for(100, rows=100_000) == 200
    assert ef_search_for(100, rows=300_000) == 486
    assert ef_search_for(100, rows=1_000_000) == 800 and ef_search_for(10, rows=1_000_000) == 80
    assert ef_search_for(100, rows=10_000_000) == 1000  # the ceiling


def test_the_recall_widens_its_search_as_the_table_grows(team, monkeypatch):
    """The table's size is PostgreSQL's estimate (reltuples after ANALYZE), read once a minute."""
    from datasets.search.vector import pgvector

    collection = make_collection(make_dataset(team))
    bulk_vectors(collection, random_units(5, 512, seed=11))
    recall = {"dataset_ids": [collection.dataset_id], "query": random_units(1, 512, seed=12)[0], "limit": 100}
    analyze()
    with CaptureQueriesContext(connection) as queries:
        PgVectorBackend().recall(**recall)
        PgVectorBackend().recall(**recall)
    assert sum("reltuples" in q["sql"] for q in queries) == 1  # then remembered
    assert all("hnsw.ef_search = 200;" in q["sql"] for q in queries if "hnsw" in q["sql"])

    monkeypatch.setattr(pgvector, "_rows", {connection.settings_dict["NAME"]: (time.monotonic(), 1e6)})
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
