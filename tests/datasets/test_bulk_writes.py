"""The bulk write path (binary COPY on PostgreSQL, executemany elsewhere): every column of the
models is written, values come back exactly (awkward text, vectors of any size, timestamps),
the full-text engine sees the words, and the training writes touch only the claimed items."""

from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from config.ids import new_object_id
from datasets.models import Data, DataIndex, TrainingState
from datasets.search.fulltext import fulltext_backend
from datasets.services.bulk_writes import DATA_COLUMNS, INDEX_COLUMNS, insert_rows, mark_trained, replace_indexes
from tests.datasets.storage_helpers import make_collection, make_dataset

pytestmark = pytest.mark.django_db

AWKWARD = "tab\there, newline\nthere, back\\slash, quote ' \" , 中文 , emoji 🙂, \\N , \r end"


@pytest.fixture
def collection(team):
    return make_collection(make_dataset(team))


def data_row(collection, *, q="question", a="", words="", state="pending", claim="", stamp=None) -> tuple:
    stamp = stamp or timezone.now()
    return (new_object_id(), collection.team_id, collection.dataset_id, collection.pk, q, a, 3, words, state, 0, "",
            None, claim, "", stamp, stamp)


def index_row(data_id, collection, *, text="question", vector=None) -> tuple:
    return (new_object_id(), data_id, collection.dataset_id, collection.pk, "default", text, vector,
            0 if vector is None else len(vector))


def test_the_column_lists_are_every_column_of_the_models():
    assert set(DATA_COLUMNS) == {field.column for field in Data._meta.concrete_fields}
    assert set(INDEX_COLUMNS) == {field.column for field in DataIndex._meta.concrete_fields}


def test_inserted_rows_read_back_exactly(collection):
    stamp = timezone.now() - timedelta(days=1, microseconds=7)
    item = data_row(collection, q=AWKWARD, a="answer " + AWKWARD, words="alpha beta 中文", state="ready", stamp=stamp)
    wide = np.linspace(-1, 1, 512, dtype=np.float32)
    small = np.array([0.25, -0.5, 1e-8, 3.0], dtype=np.float32)
    indexes = [
        index_row(item[0], collection, text=AWKWARD, vector=wide),
        index_row(item[0], collection, text="small", vector=small),
        index_row(item[0], collection, text="pending"),
    ]
    with transaction.atomic():
        insert_rows(data=[item], indexes=indexes)

    stored = Data.objects.get(pk=item[0])
    assert (stored.q, stored.a, stored.search_words) == (AWKWARD, "answer " + AWKWARD, "alpha beta 中文")
    assert (stored.chunk_index, stored.training_state, stored.train_next_at) == (3, "ready", None)
    assert stored.created_at == stamp and stored.updated_at == stamp
    by_text = {index.text: index for index in DataIndex.objects.filter(data_id=item[0])}
    assert set(by_text) == {AWKWARD, "small", "pending"}
    np.testing.assert_array_equal(by_text[AWKWARD].embedding, wide)
    np.testing.assert_array_equal(by_text["small"].embedding, small)
    assert (by_text[AWKWARD].dimensions, by_text["small"].dimensions) == (512, 4)
    assert by_text["pending"].embedding is None and by_text["pending"].dimensions == 0
    # The database's full-text index saw the words (GIN over the generated tsvector / FTS5 by trigger).
    hits = fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=["beta"], limit=5)
    assert [hit.data_id for hit in hits] == [item[0]]


def test_replace_indexes_writes_the_vectors_of_those_rows_only(collection):
    item = data_row(collection)
    first, second = index_row(item[0], collection, text="one"), index_row(item[0], collection, text="two")
    with transaction.atomic():
        insert_rows(data=[item], indexes=[first, second])
    vector = np.array([0.6, 0.8], dtype=np.float32)
    with transaction.atomic():
        replace_indexes(rows=[(*first[:6], vector, 2)])
    stored = {index.text: index for index in DataIndex.objects.filter(data_id=item[0])}
    assert stored["one"].pk == first[0] and stored["one"].dimensions == 2
    np.testing.assert_array_equal(stored["one"].embedding, vector)
    assert stored["two"].embedding is None and stored["two"].dimensions == 0


def test_mark_trained_touches_only_the_items_still_claimed(collection):
    mine = data_row(collection, claim="token-a")
    kept_words = data_row(collection, words="already here", claim="token-a")
    taken = data_row(collection, claim="token-b")  # re-claimed by another worker meanwhile
    with transaction.atomic():
        insert_rows(data=[mine, kept_words, taken], indexes=[])
    with transaction.atomic():
        mark_trained(
            token="token-a", ready=TrainingState.READY.value,
            items=[(mine[0], "fresh words"), (kept_words[0], None), (taken[0], "stolen")],
        )
    rows = {row.pk: row for row in Data.objects.all()}
    assert (rows[mine[0]].training_state, rows[mine[0]].search_words, rows[mine[0]].train_claim) == (
        "ready", "fresh words", ""
    )
    assert (rows[kept_words[0]].training_state, rows[kept_words[0]].search_words) == ("ready", "already here")
    assert (rows[taken[0]].training_state, rows[taken[0]].search_words, rows[taken[0]].train_claim) == (
        "pending", "", "token-b"
    )
