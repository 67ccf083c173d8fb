"""The per-dataset HNSW indexes' lifecycle (PostgreSQL only): a check is queued when vectors are
written, the index is built once the dataset holds enough vectors and they are still, never
twice, and dropped with the dataset; `manage.py index_vectors` builds what is due at once."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from datasets.models import Dataset
from datasets.search.vector import bump_vector_version, pgvector_indexes
from datasets.search.vector.pgvector_indexes import (
    build_index,
    drop_indexes,
    index_name,
    index_sql,
    index_when_still,
)
from datasets.services.datasets import delete_dataset
from providers.registry import BUILTIN_EMBEDDING
from tests.datasets.storage_helpers import (
    bulk_vectors,
    hnsw_build_options,
    hnsw_index_types,
    hnsw_indexes_of,
    make_collection,
    make_dataset,
    random_units,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="pgvector runs on PostgreSQL"),
]

TASK = "datasets.tasks.index_vectors"


@pytest.fixture(autouse=True)
def _small_thresholds(settings, monkeypatch):
    settings.VECTOR_INDEX_MIN_ROWS = 50
    settings.VECTOR_INDEX_QUIET_SECONDS = 5
    monkeypatch.setattr(pgvector_indexes, "_sizes", {})
    monkeypatch.setattr(pgvector_indexes, "_checks", {})


def loaded(team, rows: int, *, dimensions: int = 512, still_for: float = 60, vector_model: str = BUILTIN_EMBEDDING):
    """A dataset holding `rows` vectors, last written `still_for` seconds ago."""
    collection = make_collection(make_dataset(team, vector_model=vector_model))
    bulk_vectors(collection, random_units(rows, dimensions, seed=rows))
    Dataset.objects.filter(pk=collection.dataset_id).update(
        vectors_changed_at=timezone.now() - timedelta(seconds=still_for)
    )
    return collection.dataset


def queued_checks() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=TASK).order_by("enqueued_at"))


def test_a_dataset_still_for_the_quiet_period_gets_its_index(team):
    dataset = loaded(team, 60)
    assert index_when_still(dataset_id=dataset.id) == "built"
    assert hnsw_indexes_of(dataset.id) == {index_name(dataset.id, 512): True}
    assert index_when_still(dataset_id=dataset.id) == "nothing due"  # never twice


def test_the_built_in_embeddings_vectors_are_indexed_as_sparsevec_a_dense_models_as_halfvec(team):
    builtin, dense = loaded(team, 60), loaded(team, 60, vector_model="text-embedding-3-small")
    for dataset in (builtin, dense):
        assert index_when_still(dataset_id=dataset.id) == "built"
    assert hnsw_index_types(builtin.id) == {index_name(builtin.id, 512): "sparsevec"}
    assert hnsw_index_types(dense.id) == {index_name(dense.id, 512): "halfvec"}
    assert hnsw_build_options(builtin.id) == {index_name(builtin.id, 512): ["m=16", "ef_construction=128"]}
    assert hnsw_build_options(dense.id) == {index_name(dense.id, 512): []}  # pgvector's defaults


def test_a_dataset_still_being_written_is_looked_at_again_when_it_would_be_still(team):
    dataset = loaded(team, 60, still_for=1)
    assert index_when_still(dataset_id=dataset.id) == "writing"
    assert hnsw_indexes_of(dataset.id) == {}
    [check] = queued_checks()
    changed_at = Dataset.objects.get(pk=dataset.id).vectors_changed_at
    assert check.run_after == changed_at + timedelta(seconds=5)
    assert check.args_kwargs["args"] == [dataset.id]


def test_a_small_dataset_is_left_to_exact_search(team):
    dataset = loaded(team, 49)
    assert index_when_still(dataset_id=dataset.id) == "nothing due"
    assert hnsw_indexes_of(dataset.id) == {}


def test_a_deleted_dataset_is_gone(team):
    dataset = loaded(team, 60)
    build_index(dataset_id=dataset.id, dimensions=512)
    Dataset.objects.filter(pk=dataset.id).delete()
    assert index_when_still(dataset_id=dataset.id) == "gone"
    assert hnsw_indexes_of(dataset.id) == {}


def test_vectors_of_another_size_get_their_own_index(team):
    dataset = loaded(team, 60)
    other = make_collection(dataset, "other.md")
    bulk_vectors(other, random_units(60, 64, seed=3))
    Dataset.objects.filter(pk=dataset.id).update(vectors_changed_at=timezone.now() - timedelta(minutes=1))
    assert index_when_still(dataset_id=dataset.id) == "built"
    assert hnsw_indexes_of(dataset.id) == {index_name(dataset.id, 512): True, index_name(dataset.id, 64): True}


def test_vectors_past_hnsw_limit_stay_exact(team):
    dataset = loaded(team, 60, dimensions=4096)
    assert index_when_still(dataset_id=dataset.id) == "nothing due"
    assert not build_index(dataset_id=dataset.id, dimensions=4096)
    assert hnsw_indexes_of(dataset.id) == {}


def test_a_write_queues_one_check_for_when_the_dataset_would_be_still(team, django_capture_on_commit_callbacks):
    collection = make_collection(make_dataset(team))
    with django_capture_on_commit_callbacks(execute=True):
        bump_vector_version(dataset_ids=[collection.dataset_id])
    [check] = queued_checks()
    changed_at = Dataset.objects.get(pk=collection.dataset_id).vectors_changed_at
    assert abs((check.run_after - changed_at).total_seconds() - 5) < 1
    with django_capture_on_commit_callbacks(execute=True):
        bump_vector_version(dataset_ids=[collection.dataset_id])  # the queued check will see this one too
    assert len(queued_checks()) == 1


def test_no_check_is_queued_for_an_indexed_dataset(team, django_capture_on_commit_callbacks):
    dataset = loaded(team, 60)
    build_index(dataset_id=dataset.id, dimensions=512)
    with django_capture_on_commit_callbacks(execute=True):
        bump_vector_version(dataset_ids=[dataset.id])
    assert queued_checks() == []


def test_without_deferred_tasks_no_check_is_queued(team, settings, django_capture_on_commit_callbacks):
    """The immediate backend cannot wait for the quiet period: `index_vectors` builds then."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    dataset = loaded(team, 60, still_for=0)
    with django_capture_on_commit_callbacks(execute=True):
        bump_vector_version(dataset_ids=[dataset.id])
    assert hnsw_indexes_of(dataset.id) == {}
    call_command("index_vectors", stdout=StringIO())
    assert hnsw_indexes_of(dataset.id) == {index_name(dataset.id, 512): True}


def test_an_index_left_invalid_by_a_failed_build_is_built_again(team):
    dataset = loaded(team, 60)
    build_index(dataset_id=dataset.id, dimensions=512)
    with connection.cursor() as cursor:  # what an interrupted CREATE INDEX CONCURRENTLY leaves
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [f'"{index_name(dataset.id, 512)}"'])
    assert hnsw_indexes_of(dataset.id) == {index_name(dataset.id, 512): False}
    assert index_when_still(dataset_id=dataset.id) == "built"
    assert hnsw_indexes_of(dataset.id) == {index_name(dataset.id, 512): True}


def test_deleting_a_dataset_queues_its_check_which_drops_its_index(team, django_capture_on_commit_callbacks):
    dataset, kept = loaded(team, 60), loaded(team, 70)
    for each in (dataset, kept):
        build_index(dataset_id=each.id, dimensions=512)
    with django_capture_on_commit_callbacks(execute=True):
        delete_dataset(team_id=team.id, dataset_id=dataset.id)
    [check] = queued_checks()
    assert check.args_kwargs["args"] == [dataset.id] and check.run_after == get_date_max()  # not deferred
    assert index_when_still(dataset_id=dataset.id) == "gone"  # what the worker runs
    assert hnsw_indexes_of(dataset.id) == {}
    assert hnsw_indexes_of(kept.id) == {index_name(kept.id, 512): True}


def test_the_command_builds_what_is_due_and_drops_what_deleted_datasets_left(team):
    due, small = loaded(team, 60, still_for=0), loaded(team, 10)
    with connection.cursor() as cursor:  # a dataset deleted with its team, behind the API's back
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # (this test's rows: CREATE INDEX wants no pending checks)
        cursor.execute(index_sql("0" * 24, 512, concurrently=False))
    out = StringIO()
    call_command("index_vectors", stdout=out)
    assert hnsw_indexes_of(due.id) == {index_name(due.id, 512): True}  # no waiting for the quiet period
    assert hnsw_index_types(due.id) == {index_name(due.id, 512): "sparsevec"}  # the built-in embedding's
    assert hnsw_indexes_of(small.id) == {} and hnsw_indexes_of("0" * 24) == {}
    assert "1 index(es) built, 1 left by deleted datasets dropped." in out.getvalue()

    call_command("index_vectors", "--dataset", small.id, "--min-rows", "0", stdout=StringIO())
    assert hnsw_indexes_of(small.id) == {index_name(small.id, 512): True}


def test_ids_that_are_not_the_apps_get_no_index():
    with pytest.raises(ValueError):
        index_name("x'; DROP TABLE datasets_dataindex; --", 512)
    drop_indexes(dataset_ids=[])  # nothing to do, no error


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_build_is_concurrent_and_leaves_the_session_as_it_was(team):
    dataset = loaded(team, 60)
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        before = cursor.fetchone()[0]
    with CaptureQueriesContext(connection) as queries:
        assert index_when_still(dataset_id=dataset.id) == "built"
    assert any(q["sql"].startswith("CREATE INDEX CONCURRENTLY") for q in queries)
    assert hnsw_indexes_of(dataset.id) == {index_name(dataset.id, 512): True}
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        assert cursor.fetchone()[0] == before
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert cursor.fetchone()[0] == 0  # the build's lock released
