"""PostgreSQL full text specifics (PostgreSQL only: SQLite has FTS5): the stored `search_vector`
column of migration 0005 — filled for existing rows, following writes —, its GIN index serving
both the statistics and the ranking statement (EXPLAIN), and the IDF arithmetic."""

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from datasets.models import Data, TrainingState
from datasets.search.fulltext import fulltext_backend
from datasets.search.fulltext.postgres import (
    MIN_COMMON_DF,
    PostgresFullText,
    common_threshold,
    idf,
    tsquery_literal,
)
from providers.words import words
from tests.datasets.storage_helpers import make_collection, make_dataset

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the stored tsvector is PostgreSQL's"),
]

BEFORE, AFTER = ("datasets", "0004_training_claim_index"), ("datasets", "0005_postgres_stored_tsvector")


def item(collection, q: str) -> Data:
    return Data.objects.create(
        team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection, q=q,
        search_words=" ".join(words(q)), training_state=TrainingState.READY,
    )


def stored_vector(pk: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_vector::text FROM datasets_data WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def indexdef(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else None


def migrate(target):
    with connection.cursor() as cursor:
        # The test's rows were inserted in this (test) transaction: their deferred foreign-key
        # checks must run before PostgreSQL lets an ALTER TABLE touch the table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def test_the_generated_column_follows_writes(team):
    collection = make_collection(make_dataset(team))
    data = item(collection, "Reset the password")
    assert stored_vector(data.pk) == "'password':3 'reset':1 'the':2"
    data.search_words = "invoices billing"
    data.save(update_fields=["search_words"])
    assert stored_vector(data.pk) == "'billing':2 'invoices':1"


def test_the_gin_index_is_on_the_stored_column_only():
    assert "gin (search_vector)" in indexdef("data_search_vector_gin")
    assert indexdef("data_search_words_gin") is None  # the expression index is gone


def test_the_migration_fills_the_column_of_existing_rows(team):
    collection = make_collection(make_dataset(team))
    migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'datasets_data' AND column_name = 'search_vector'"
        )
        assert cursor.fetchone()[0] == 0
    assert "to_tsvector" in indexdef("data_search_words_gin")
    existing = [item(collection, "Old chunk about tarballs"), item(collection, "Another old chunk")]

    migrate(AFTER)
    assert stored_vector(existing[0].pk) == "'about':3 'chunk':2 'old':1 'tarballs':4"
    assert indexdef("data_search_words_gin") is None and indexdef("data_search_vector_gin")
    hits = fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=["tarballs"], limit=5)
    assert [hit.data_id for hit in hits] == [existing[0].pk]


def explain(sql: str, params: list) -> str:
    """The plan with sequential scans discouraged: proves the GIN index can serve the statement
    (on a few hundred rows the planner would rightly prefer a scan)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_statistics_and_ranking_use_the_gin_index(team):
    collection = make_collection(make_dataset(team))
    Data.objects.bulk_create(
        Data(team_id=team.pk, dataset_id=collection.dataset_id, collection=collection, q=f"item {i}",
             search_words=f"common word{i % 50} item{i}", chunk_index=i, training_state=TrainingState.READY)
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        # Rows written in bulk wait in the GIN index's pending list (costed as such by the
        # planner) until vacuum merges them: merge them now, as autovacuum would.
        cursor.execute("SELECT gin_clean_pending_list('data_search_vector_gin')")
        cursor.execute("ANALYZE datasets_data")
    backend = PostgresFullText()
    recall = dict(dataset_ids=[collection.dataset_id], words=["common", "word3", "item7"], limit=10)

    stats = explain(*backend.stats_sql(dataset_ids=recall["dataset_ids"], words=recall["words"]))
    assert "data_search_vector_gin" in stats and "to_tsvector('simple'::regconfig, search_words)" not in stats
    rank = explain(*backend.recall_sql(**recall))
    assert "Bitmap Index Scan on data_search_vector_gin" in rank
    assert "to_tsvector" not in rank  # ranked from the stored vector, nothing re-parsed

    hits = backend.recall(**recall)
    assert hits[0].data_id == Data.objects.get(search_words="common word7 item7").pk  # the rarest word


def test_idf_and_the_common_threshold():
    assert idf(df=1, chunks=1000) > idf(df=10, chunks=1000) > idf(df=500, chunks=1000) > 0
    assert common_threshold(10) == MIN_COMMON_DF
    assert common_threshold(5_000) == 500
    assert common_threshold(10_000_000) == 1000


@pytest.mark.parametrize("lexeme", ["plain", "it's", "back\\slash", "'", "\\'", "a & b", "x:*", "!", "中文"])
def test_tsquery_literal_is_one_operand(lexeme):
    with connection.cursor() as cursor:
        cursor.execute("SELECT querytree(%s::tsquery), numnode(%s::tsquery)", [tsquery_literal(lexeme)] * 2)
        tree, nodes = cursor.fetchone()
    assert nodes == 1 and tree == tsquery_literal(lexeme)  # the same operand, printed back
