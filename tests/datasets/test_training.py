"""Data writes and training: items inserted pending, embedded in batches, searchable; usage
points; retries with backoff, final failure shown on the item and its collection; retraining;
updates that keep unchanged indexes; deletes that invalidate cached vectors."""

from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from datasets import training
from datasets.models import Collection, CollectionStatus, Data, DataIndex, Dataset, TrainingBill, TrainingState
from datasets.search.fulltext import fulltext_backend
from datasets.search.vector import vector_backend
from datasets.services.data import NewData, delete_collection_data, delete_data, insert_data, update_data
from keys.models import ApiKey
from providers.embeddings import lexical_embedding
from providers.words import words
from tests.datasets.storage_helpers import make_collection, make_dataset
from tests.fake_provider import embed as fake_vector

pytestmark = pytest.mark.django_db

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _training_settings(settings):
    settings.TRAINING_RETRY_BASE_SECONDS = 10
    settings.TRAINING_MAX_ATTEMPTS = 5
    settings.EMBEDDING_HTTP_RETRIES = 0
    settings.EMBEDDING_HTTP_BACKOFF_SECONDS = 0


@pytest.fixture
def immediate(settings):
    """Tasks run synchronously (when the transaction commits)."""
    settings.TASKS = IMMEDIATE


@pytest.fixture
def collection(team, global_key):
    return make_collection(make_dataset(team), usage_key=global_key.row)


@pytest.fixture
def provider_collection(team, global_key, provider_models):
    return make_collection(make_dataset(team, "remote", vector_model="fake-embedding"), usage_key=global_key.row)


def push(collection, *items, capture, **kw):
    """insert_data, then run what it queued on commit (the training task)."""
    with capture(execute=True):
        return insert_data(collection=collection, items=[NewData(**i) if isinstance(i, dict) else NewData(q=i) for i in items], **kw)


def state(data: Data) -> tuple[str, int]:
    data.refresh_from_db()
    return data.training_state, data.train_attempts


# --- inserting ------------------------------------------------------------------------------


def test_insert_writes_items_indexes_and_words_pending(collection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        result = insert_data(
            collection=collection,
            items=[
                NewData(q="What is the refund policy?", a="30 days, no questions.", chunk_index=3),
                NewData(q="重置密码", indexes=[{"type": "custom", "text": "忘记密码怎么办"}]),
            ],
            bill_id="b" * 24,
        )
    assert result.insert_len == 2 and result.skipped == []
    assert len(queued) == 1  # one training task, after commit
    first, second = Data.objects.filter(collection=collection).order_by("chunk_index")[1], Data.objects.get(q="重置密码")
    assert first.chunk_index == 3 and first.training_state == TrainingState.PENDING and first.bill_id == "b" * 24
    assert first.search_words == ""  # tokenised by training, not in the request
    assert [(i.type, i.text) for i in first.indexes.all()] == [("default", "What is the refund policy?\n30 days, no questions.")]
    assert sorted((i.type, i.text) for i in second.indexes.all()) == [("custom", "忘记密码怎么办"), ("default", "重置密码")]
    assert all(i.embedding is None and i.dimensions == 0 for i in DataIndex.objects.all())
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.TRAINING
    assert Data.objects.filter(collection=collection, training_state=TrainingState.PENDING).count() == 2


def test_insert_skips_bad_items_with_reasons(collection):
    result = insert_data(
        collection=collection,
        items=[
            NewData(q="kept"),
            NewData(q="   "),
            NewData(q="kept"),
            NewData(q="six customs", indexes=[{"type": "custom", "text": f"t{i}"} for i in range(6)]),
            NewData(q="bad type", indexes=[{"type": "vector", "text": "x"}]),
            NewData(q="empty index", indexes=[{"type": "custom", "text": " "}]),
            NewData(q="x" * 100_001),
            NewData(q="five customs and a default", indexes=[{"type": "custom", "text": f"t{i}"} for i in range(5)]
                    + [{"type": "default", "text": "my own default"}]),
            NewData(q="nul \x00 removed"),
        ],
    )
    assert result.insert_len == 3
    reasons = {s["index"]: s["reason"] for s in result.skipped}
    assert reasons[1] == "q is empty"
    assert reasons[2] == "duplicate of item 0"
    assert reasons[3] == "more than 5 custom indexes (6)"
    assert reasons[4].startswith("indexes[0].type must be one of")
    assert reasons[5] == "indexes[0].text is empty"
    assert reasons[6] == "q + a is longer than 100000 characters"
    five = Data.objects.get(q="five customs and a default")
    assert sorted(i.text for i in five.indexes.filter(type="default")) == ["my own default"]  # no second default
    assert five.indexes.count() == 6
    assert Data.objects.filter(q="nul  removed").exists()


def test_nothing_to_insert_queues_nothing(collection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        assert insert_data(collection=collection, items=[NewData(q="")]).insert_len == 0
    assert queued == []
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.READY


# --- training -------------------------------------------------------------------------------


def test_training_makes_items_searchable(collection, immediate, django_capture_on_commit_callbacks):
    version = collection.dataset.vector_version
    push(collection, "Refunds are possible within 30 days.", {"q": "Reset a password", "a": "Open Settings."},
         capture=django_capture_on_commit_callbacks)

    assert set(Data.objects.values_list("training_state", flat=True)) == {TrainingState.READY}
    assert Data.objects.get(q="Reset a password").search_words == "reset a password open settings"
    assert all(i.dimensions == 512 and i.embedding.shape == (512,) for i in DataIndex.objects.all())
    index = DataIndex.objects.get(data__q="Reset a password")
    assert np.allclose(index.embedding, lexical_embedding(["Reset a password\nOpen Settings."])[0])
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.READY and collection.error_message == ""
    assert Dataset.objects.get(pk=collection.dataset_id).vector_version > version

    [hit] = vector_backend().recall(dataset_ids=[collection.dataset_id], query=lexical_embedding(["password"])[0], limit=1)
    assert hit.index_id == index.pk
    [text_hit] = fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=["refunds"], limit=5)
    assert text_hit.data_id == Data.objects.get(q__startswith="Refunds").pk


def test_embedding_tokens_become_usage_points(collection, global_key, immediate, django_capture_on_commit_callbacks):
    bill = TrainingBill.objects.create(team=collection.team, dataset=collection.dataset, name="import")
    texts = ["first text to embed", "第二段文字"]
    push(collection, *texts, capture=django_capture_on_commit_callbacks, bill_id=bill.pk)
    expected = sum(len(words(t)) for t in texts)  # the built-in model bills the words it hashed
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == expected
    bill.refresh_from_db()
    assert bill.tokens == expected


def test_embedding_on_insert_writes_what_training_writes(team, global_key, django_capture_on_commit_callbacks):
    """insert_data(embed_now=built-in model) — the worker's read of a source — stores items
    exactly as training would (words, vectors, state), bills the tokens and queues nothing."""
    from providers.registry import BUILTIN_EMBEDDING, get_model

    items = [NewData(q="Refunds are possible within 30 days."),
             NewData(q="Reset a password", a="Open Settings.", indexes=[{"type": "custom", "text": "forgot login"}])]
    trained = make_collection(make_dataset(team, "trained"), usage_key=global_key.row)
    with django_capture_on_commit_callbacks(execute=True):
        insert_data(collection=trained, items=items)
    with django_capture_on_commit_callbacks(execute=True):
        training.train_collection(collection_id=trained.pk)
    points_after_training = ApiKey.objects.get(pk=global_key.row.pk).usage_points

    now = make_collection(make_dataset(team, "embedded now"), usage_key=global_key.row)
    version = now.dataset.vector_version
    from django_tasks_db.models import DBTaskResult

    training_tasks = DBTaskResult.objects.filter(task_path="datasets.tasks.train_collection")
    queued_before = training_tasks.count()
    with django_capture_on_commit_callbacks(execute=True):
        result = insert_data(collection=now, items=items, embed_now=get_model(BUILTIN_EMBEDDING))
    assert result.insert_len == 2 and training_tasks.count() == queued_before  # no training task

    def stored(collection):
        return sorted(
            (i.data.q, i.type, i.text, i.data.search_words, i.data.training_state, i.dimensions, i.embedding.tobytes())
            for i in DataIndex.objects.filter(collection=collection).select_related("data")
        )

    assert stored(now) == stored(trained)
    assert {state for _, _, _, _, state, _, _ in stored(now)} == {TrainingState.READY}
    now.refresh_from_db()
    assert now.status == CollectionStatus.READY
    assert Dataset.objects.get(pk=now.dataset_id).vector_version > version
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == 2 * points_after_training
    [hit] = vector_backend().recall(dataset_ids=[now.dataset_id], query=lexical_embedding(["forgot login"])[0], limit=1)
    assert DataIndex.objects.get(pk=hit.index_id).text == "forgot login"


def test_embedding_on_insert_leaves_a_collection_training_while_other_items_are_pending(collection):
    from providers.registry import BUILTIN_EMBEDDING, get_model

    insert_data(collection=collection, items=[NewData(q="pushed earlier, still pending")])
    insert_data(collection=collection, items=[NewData(q="read now")], embed_now=get_model(BUILTIN_EMBEDDING))
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.TRAINING
    assert dict(Data.objects.values_list("q", "training_state")) == {
        "pushed earlier, still pending": TrainingState.PENDING, "read now": TrainingState.READY,
    }


def test_a_source_read_with_a_provider_model_is_left_to_training(team, global_key, provider_models,
                                                                django_capture_on_commit_callbacks):
    """Only the built-in model embeds during the read: an HTTP model's chunks are pending and
    trained in batches, with its retries."""
    from datasets.models import CollectionSource
    from datasets.services.collections import read_collection_source

    collection = make_collection(
        make_dataset(team, "remote", vector_model="fake-embedding"), type="file", file_name="notes.txt",
        usage_key=global_key.row,
    )
    CollectionSource.objects.create(collection=collection, content=b"First paragraph.\n\nSecond paragraph.")
    with django_capture_on_commit_callbacks() as queued:
        read_collection_source(collection_id=collection.pk)
    assert Data.objects.filter(collection=collection).count() >= 1
    assert set(Data.objects.filter(collection=collection).values_list("training_state", flat=True)) == {TrainingState.PENDING}
    assert queued and provider_models.requests == []


def test_a_source_of_many_chunks_is_left_to_training(team, global_key, settings, django_capture_on_commit_callbacks):
    """Over DATASET_READ_EMBED_MAX_CHUNKS a read source is trained in shared batches (with its
    progress in trainingAmount), even with the built-in model."""
    from datasets.models import CollectionSource
    from datasets.services.collections import read_collection_source

    text = "\n\n".join(f"Paragraph number {n} about topic {n}." * 30 for n in range(4))
    sources = {}
    for limit in (2, 100):
        settings.DATASET_READ_EMBED_MAX_CHUNKS = limit
        collection = make_collection(make_dataset(team, f"limit {limit}"), type="file", file_name="notes.txt",
                                     chunk_settings={"chunkSize": 200}, usage_key=global_key.row)
        CollectionSource.objects.create(collection=collection, content=text.encode())
        with django_capture_on_commit_callbacks():
            read_collection_source(collection_id=collection.pk)
        sources[limit] = set(Data.objects.filter(collection=collection).values_list("training_state", flat=True))
        assert Data.objects.filter(collection=collection).count() > 2
    assert sources == {2: {TrainingState.PENDING}, 100: {TrainingState.READY}}


def test_a_provider_model_trains_through_http(provider_collection, global_key, provider_models, immediate,
                                              django_capture_on_commit_callbacks, settings):
    settings.TRAINING_BATCH_SIZE = 2
    texts = [f"chunk number {i}" for i in range(5)]
    push(provider_collection, *texts, capture=django_capture_on_commit_callbacks)
    assert [len(r["body"]["input"]) for r in provider_models.requests] == [2, 2, 1]  # claimed in batches
    for index in DataIndex.objects.all():
        assert index.dimensions == 64
        assert np.allclose(index.embedding, fake_vector(index.text, 64), atol=1e-6)
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == 3 * 5  # the provider's usage: words
    provider_collection.refresh_from_db()
    assert provider_collection.status == CollectionStatus.READY


def test_different_dimensions_train_side_by_side(collection, provider_collection, immediate,
                                                 django_capture_on_commit_callbacks):
    push(collection, "local words", capture=django_capture_on_commit_callbacks)
    push(provider_collection, "remote words", capture=django_capture_on_commit_callbacks)
    assert sorted(DataIndex.objects.values_list("dimensions", flat=True)) == [64, 512]
    remote = vector_backend().recall(
        dataset_ids=[provider_collection.dataset_id], query=np.array(fake_vector("remote words", 64)), limit=5
    )
    assert [h.data_id for h in remote] == [Data.objects.get(q="remote words").pk]


def test_failed_batch_is_retried_with_backoff_then_fails_for_good(
    provider_collection, provider_models, clock, settings
):
    settings.TRAINING_BATCH_SIZE = 1
    insert_data(collection=provider_collection, items=[NewData(q="good one"), NewData(q="bad one [[fail:500]]")])
    good, bad = Data.objects.get(q="good one"), Data.objects.get(q__startswith="bad one")

    report = training.train_collection(collection_id=provider_collection.pk)
    assert (report.trained, report.retrying, report.failed) == (1, 1, 0)
    assert state(good) == (TrainingState.READY, 0)
    assert state(bad) == (TrainingState.PENDING, 1)
    assert bad.train_next_at == clock.now + timedelta(seconds=10)
    assert "HTTP 500" in bad.train_error and "attempt 1 of 5; retrying" in bad.train_error
    provider_collection.refresh_from_db()
    assert provider_collection.status == CollectionStatus.TRAINING  # still pending: trainingAmount 1

    training.train_collection(collection_id=provider_collection.pk)  # not due yet: untouched
    assert state(bad) == (TrainingState.PENDING, 1)

    waits = []
    for attempt in range(2, 6):
        waits.append(bad.train_next_at - clock.now)
        clock.now = bad.train_next_at
        training.train_collection(collection_id=provider_collection.pk)
        assert state(bad)[1] == attempt
    assert waits == [timedelta(seconds=s) for s in (10, 20, 40, 80)]  # 10 s × 2^(attempt−1)

    assert state(bad) == (TrainingState.ERROR, 5)
    assert bad.search_words == "bad one fail 500"  # still found by full text
    assert "HTTP 500" in bad.train_error and "(after 5 attempts)" in bad.train_error
    provider_collection.refresh_from_db()
    assert provider_collection.status == CollectionStatus.ERROR
    assert provider_collection.error_message == bad.train_error
    assert Data.objects.filter(pk=bad.pk).exists()  # never dropped
    assert DataIndex.objects.get(data=bad).embedding is None
    assert state(good) == (TrainingState.READY, 0)


def test_a_refused_text_does_not_fail_its_batch(provider_collection, provider_models):
    texts = ["one", "two", "three [[fail:400]]", "four", "five"]
    insert_data(collection=provider_collection, items=[NewData(q=t, chunk_index=i) for i, t in enumerate(texts)])
    report = training.train_collection(collection_id=provider_collection.pk)
    assert (report.trained, report.retrying) == (4, 1)
    bad = Data.objects.get(q__startswith="three")
    assert state(bad) == (TrainingState.PENDING, 1) and "HTTP 400" in bad.train_error
    assert Data.objects.filter(training_state=TrainingState.READY).count() == 4


def test_a_failure_queues_a_deferred_retry(provider_collection, provider_models, clock,
                                            django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    insert_data(collection=provider_collection, items=[NewData(q="x [[fail:503]]")])
    with django_capture_on_commit_callbacks(execute=True):
        training.train_collection(collection_id=provider_collection.pk)
    [task] = DBTaskResult.objects.filter(task_path="datasets.tasks.train_collection")
    assert task.run_after == clock.now + timedelta(seconds=10)
    assert task.args_kwargs["args"] == [provider_collection.pk]


def test_provider_down_then_back(provider_collection, provider_models, clock, settings, immediate,
                                 django_capture_on_commit_callbacks):
    """The provider is unreachable for the first attempts; a later attempt succeeds."""
    import json

    working = settings.AI_MODELS
    broken = json.loads(working)
    for model in broken:
        model["baseUrl"] = "http://127.0.0.1:9/v1"
    settings.AI_MODELS = json.dumps(broken)
    insert_data(collection=provider_collection, items=[NewData(q="patience")])
    training.train_collection(collection_id=provider_collection.pk)
    item = Data.objects.get(q="patience")
    assert state(item) == (TrainingState.PENDING, 1) and "connection failed" in item.train_error

    settings.AI_MODELS = working
    clock.advance(seconds=10)
    training.train_collection(collection_id=provider_collection.pk)
    item.refresh_from_db()
    assert item.training_state == TrainingState.READY and item.train_error == ""
    provider_collection.refresh_from_db()
    assert provider_collection.status == CollectionStatus.READY


def test_an_undeclared_model_is_an_error_on_the_collection(team, clock, settings):
    settings.TRAINING_MAX_ATTEMPTS = 1
    collection = make_collection(make_dataset(team, vector_model="gone-model"))
    insert_data(collection=collection, items=[NewData(q="orphan")])
    training.train_collection(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.ERROR
    assert "The embedding model 'gone-model' is not declared in AI_MODELS." in collection.error_message


def test_retrain_failed_command(provider_collection, provider_models, clock, settings, immediate,
                                django_capture_on_commit_callbacks):
    settings.TRAINING_MAX_ATTEMPTS = 1
    settings.TRAINING_BATCH_SIZE = 1  # a 5xx fails its whole batch: keep the flaky item alone
    insert_data(collection=provider_collection, items=[NewData(q="flaky [[fail:500]]"), NewData(q="fine")])
    training.train_collection(collection_id=provider_collection.pk)
    flaky = Data.objects.get(q__startswith="flaky")
    assert state(flaky) == (TrainingState.ERROR, 1)

    # The provider "recovers" for this item: its text no longer asks for a failure.
    Data.objects.filter(pk=flaky.pk).update(q="flaky")
    DataIndex.objects.filter(data=flaky).update(text="flaky")
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("retrain_failed", stdout=out)
    assert "1 failed item(s) reset" in out.getvalue()
    assert state(flaky) == (TrainingState.READY, 0)
    provider_collection.refresh_from_db()
    assert provider_collection.status == CollectionStatus.READY and provider_collection.error_message == ""


def test_retrain_failed_limited_to_collections(team, clock, settings):
    settings.TRAINING_MAX_ATTEMPTS = 1
    a = make_collection(make_dataset(team, vector_model="gone-model"), "a")
    b = make_collection(a.dataset, "b")
    insert_data(collection=a, items=[NewData(q="in a")])
    insert_data(collection=b, items=[NewData(q="in b")])
    for c in (a, b):
        training.train_collection(collection_id=c.pk)
    assert training.retrain_failed(collection_ids=[a.pk]) == 1
    assert Data.objects.get(q="in a").training_state == TrainingState.PENDING
    assert Data.objects.get(q="in b").training_state == TrainingState.ERROR


# --- claims ---------------------------------------------------------------------------------


def test_claims_do_not_overlap_and_expire(collection, clock, settings):
    insert_data(collection=collection, items=[NewData(q=f"item {i}", chunk_index=i) for i in range(5)])
    first_token, first = training.claim_batch(collection_id=collection.pk, size=3)
    second_token, second = training.claim_batch(collection_id=collection.pk, size=3)
    assert [d.q for d in first] == ["item 0", "item 1", "item 2"]
    assert [d.q for d in second] == ["item 3", "item 4"]
    assert first_token != second_token
    assert training.claim_batch(collection_id=collection.pk)[1] == []

    clock.advance(seconds=settings.TRAINING_CLAIM_SECONDS + 1)  # the workers died
    _, again = training.claim_batch(collection_id=collection.pk)
    assert len(again) == 5


def test_an_item_edited_while_training_is_not_marked_with_old_vectors(collection):
    insert_data(collection=collection, items=[NewData(q="old text")])
    token, items = training.claim_batch(collection_id=collection.pk)
    update_data(data=items[0], q="new text", a=None, indexes=None)  # meanwhile, an edit
    training._train_batch(collection, token, items, training.TrainingReport())  # the stale worker finishes

    item = Data.objects.get(pk=items[0].pk)
    assert item.training_state == TrainingState.PENDING  # still to train, with the new text
    assert DataIndex.objects.get(data=item).embedding is None
    training.train_collection(collection_id=collection.pk)
    index = DataIndex.objects.get(data=item)
    assert index.text == "new text" and np.allclose(index.embedding, lexical_embedding(["new text"])[0])


# --- update and delete ----------------------------------------------------------------------


@pytest.fixture
def trained_item(collection, immediate, django_capture_on_commit_callbacks):
    push(collection, {"q": "question", "a": "answer",
                      "indexes": [{"type": "custom", "text": "keep me"}, {"type": "custom", "text": "drop me"}]},
         capture=django_capture_on_commit_callbacks)
    return Data.objects.get(q="question")


def test_update_reembeds_only_changed_indexes(trained_item, django_capture_on_commit_callbacks):
    before = {i.text: i for i in trained_item.indexes.all()}
    version = Dataset.objects.get(pk=trained_item.dataset_id).vector_version
    with django_capture_on_commit_callbacks(execute=True):
        updated = update_data(
            data=trained_item, q="new question", a=None,
            indexes=[{"dataId": before["keep me"].pk, "type": "custom", "text": "keep me"},
                     {"type": "custom", "text": "brand new"}],
        )
    assert updated.q == "new question" and updated.a == "answer"
    after = {i.text: i for i in DataIndex.objects.filter(data=trained_item)}
    assert set(after) == {"new question\nanswer", "keep me", "brand new"}
    assert after["keep me"].pk == before["keep me"].pk  # the unchanged index keeps its id…
    assert np.array_equal(after["keep me"].embedding, before["keep me"].embedding)  # …and vector
    assert after["new question\nanswer"].pk == before["question\nanswer"].pk  # the default keeps its id
    assert np.allclose(after["new question\nanswer"].embedding, lexical_embedding(["new question\nanswer"])[0])
    assert after["brand new"].embedding is not None
    assert not DataIndex.objects.filter(pk=before["drop me"].pk).exists()
    assert Data.objects.get(pk=trained_item.pk).training_state == TrainingState.READY
    assert Dataset.objects.get(pk=trained_item.dataset_id).vector_version > version
    assert Data.objects.get(pk=trained_item.pk).search_words == " ".join(words("new question\nanswer"))


def test_update_of_answer_only_keeps_customs(trained_item, django_capture_on_commit_callbacks):
    customs = {i.pk: i.embedding for i in trained_item.indexes.filter(type="custom")}
    with django_capture_on_commit_callbacks(execute=True):
        update_data(data=trained_item, q=None, a="better answer", indexes=None)
    for pk, vector in customs.items():
        assert np.array_equal(DataIndex.objects.get(pk=pk).embedding, vector)
    default = DataIndex.objects.get(data=trained_item, type="default")
    assert default.text == "question\nbetter answer" and default.embedding is not None


def test_update_rejects_bad_input(trained_item):
    with pytest.raises(ValueError, match="q is empty"):
        update_data(data=trained_item, q="  ", a=None, indexes=None)
    with pytest.raises(ValueError, match="more than 5 custom"):
        update_data(data=trained_item, q=None, a=None, indexes=[{"type": "custom", "text": str(i)} for i in range(6)])


def test_delete_removes_vectors_and_words_and_invalidates(trained_item, collection):
    dataset_id = trained_item.dataset_id
    backend = vector_backend()
    query = lexical_embedding(["question answer"])[0]
    assert backend.recall(dataset_ids=[dataset_id], query=query, limit=5)
    delete_data(data=trained_item)
    assert not DataIndex.objects.filter(data_id=trained_item.pk).exists()
    assert backend.recall(dataset_ids=[dataset_id], query=query, limit=5) == []
    assert fulltext_backend().recall(dataset_ids=[dataset_id], words=["question"], limit=5) == []


def test_delete_collection_data(trained_item, collection):
    version = Dataset.objects.get(pk=collection.dataset_id).vector_version
    assert delete_collection_data(collection_ids=[collection.pk]) == 1
    assert not Data.objects.filter(collection=collection).exists()
    assert not DataIndex.objects.filter(collection=collection).exists()
    assert Collection.objects.filter(pk=collection.pk).exists()
    assert Dataset.objects.get(pk=collection.dataset_id).vector_version == version + 1


def test_a_deleted_collection_trains_nothing(collection):
    insert_data(collection=collection, items=[NewData(q="soon gone")])
    Collection.objects.filter(pk=collection.pk).delete()
    assert training.train_collection(collection_id=collection.pk).as_dict() == {
        "trained": 0, "retrying": 0, "failed": 0, "tokens": 0
    }


def test_a_large_push_is_shared_and_continued(collection, settings, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    settings.TRAINING_BATCH_SIZE = 2
    settings.TRAINING_TASK_MAX_BATCHES = 2
    settings.TRAINING_PARALLEL_TASKS = 3
    with django_capture_on_commit_callbacks(execute=True):
        insert_data(collection=collection, items=[NewData(q=f"item {i}") for i in range(11)])
    assert DBTaskResult.objects.count() == 3  # three workers may share the push
    DBTaskResult.objects.all().delete()

    report = training.train_collection(collection_id=collection.pk)
    assert report.trained == 4  # two batches of two, then…
    assert DBTaskResult.objects.count() == 1  # …a continuation for the rest
    assert Data.objects.filter(training_state=TrainingState.PENDING).count() == 7
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.TRAINING


def test_an_internal_error_counts_an_attempt_instead_of_stranding_the_batch(collection, monkeypatch, clock):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training, "replace_indexes", broken)
    insert_data(collection=collection, items=[NewData(q="unlucky")])
    with pytest.raises(RuntimeError):
        training.train_collection(collection_id=collection.pk)
    item = Data.objects.get(q="unlucky")
    assert state(item) == (TrainingState.PENDING, 1)
    assert item.train_claim == "" and "internal error (RuntimeError)" in item.train_error
    assert item.train_next_at == clock.now + timedelta(seconds=10)


def test_update_with_a_repeated_data_id_keeps_it_once(trained_item, django_capture_on_commit_callbacks):
    keep = trained_item.indexes.get(text="keep me")
    with django_capture_on_commit_callbacks(execute=True):
        update_data(data=trained_item, q=None, a=None, indexes=[
            {"dataId": keep.pk, "type": "custom", "text": "keep me"},
            {"dataId": keep.pk, "type": "custom", "text": "a copy"},
            {"dataId": "not-one-of-mine", "type": "custom", "text": "stranger"},
        ])
    texts = dict(DataIndex.objects.filter(data=trained_item).values_list("text", "pk"))
    assert set(texts) == {"question\nanswer", "keep me", "a copy", "stranger"}
    assert texts["keep me"] == keep.pk and texts["a copy"] != keep.pk and texts["stranger"] != "not-one-of-mine"
