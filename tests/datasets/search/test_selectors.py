"""The search's reads in SQL (datasets/search/selectors.py): what the ORM would answer, on the
database under test."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.errors import BadRequest, DatasetNotFound
from datasets.models import Collection, CollectionType, Data, Dataset, DatasetType
from datasets.search import pipeline
from datasets.search.selectors import ROW_COLUMNS, recalled_rows, searched_datasets
from tests.datasets.search.helpers import add_chunk, make_collection, make_dataset

pytestmark = pytest.mark.django_db


def test_datasets_come_in_the_order_asked_once_each_with_their_forbidden_flag(team):
    plain, forbidding, with_forbidden_folder = (make_dataset(team, name) for name in ("a", "b", "c"))
    make_collection(plain)
    make_collection(forbidding, forbid=True)
    folder = make_collection(with_forbidden_folder, forbid=True)
    Collection.objects.filter(pk=folder.pk).update(type=CollectionType.FOLDER)  # holds no chunks: forbids nothing
    asked = [with_forbidden_folder.id, forbidding.id, plain.id, forbidding.id]
    found = searched_datasets(team_id=team.id, dataset_ids=asked)
    assert [(d.id, d.has_forbidden) for d in found] == [
        (with_forbidden_folder.id, False), (forbidding.id, True), (plain.id, False),
    ]
    assert {d.vector_model for d in found} == {plain.vector_model}


def test_unknown_and_other_teams_datasets_are_not_found_by_name(team, other_team):
    mine, theirs = make_dataset(team), make_dataset(other_team)
    with pytest.raises(DatasetNotFound) as raised:
        searched_datasets(team_id=team.id, dataset_ids=[mine.id, theirs.id, "0" * 24])
    assert theirs.id in str(raised.value.detail) and "0" * 24 in str(raised.value.detail)
    assert mine.id not in str(raised.value.detail)
    with pytest.raises(DatasetNotFound):
        searched_datasets(team_id=team.id, dataset_ids=[])


def test_a_folder_is_refused(team):
    folder = Dataset.objects.create(team=team, name="f", type=DatasetType.FOLDER, vector_model="x", agent_model="y")
    with pytest.raises(BadRequest, match="is a folder"):
        searched_datasets(team_id=team.id, dataset_ids=[folder.id])


def test_rows_are_the_orms_values_of_searchable_collections_of_the_datasets_asked(team):
    dataset, elsewhere = make_dataset(team, "kb"), make_dataset(team, "other")
    text = make_collection(dataset, "guide.md")
    link = make_collection(dataset, "page", raw_link="https://example.com/page")
    external = make_collection(dataset, "file.pdf", external_file_id="ext-1", raw_link="https://example.com/f")
    forbidden = make_collection(dataset, "secret.md", forbid=True)
    chunks = [add_chunk(c, f"chunk of {c.name}", "its answer", trained=False) for c in (text, link, external, forbidden)]
    other = add_chunk(make_collection(elsewhere), "another dataset's chunk", trained=False)

    rows = recalled_rows(dataset_ids=[dataset.id], data_ids={c.id for c in chunks} | {other.id, "f" * 24})

    assert set(rows) == {chunks[0].id, chunks[1].id, chunks[2].id}  # not forbidden, not elsewhere, not unknown
    assert [rows[c.id].source_id for c in chunks[:3]] == [text.id, "https://example.com/page", "ext-1"]
    stored = Data.objects.get(pk=chunks[0].id)
    row = rows[stored.id]
    assert (row.q, row.a, row.chunk_index, row.dataset_id, row.collection_id, row.source_name) == (
        stored.q, stored.a, stored.chunk_index, stored.dataset_id, stored.collection_id, "guide.md",
    )
    assert row.updated_at == stored.updated_at and row.updated_at.tzinfo is not None  # aware, as the ORM's
    assert recalled_rows(dataset_ids=[dataset.id], data_ids=set()) == {}


def test_more_ids_than_a_statement_caches_are_read_in_one_go(team):
    collection = make_collection(make_dataset(team))
    chunks = [add_chunk(collection, f"chunk {n}", trained=False) for n in range(120)]
    rows = recalled_rows(dataset_ids=[collection.dataset_id], data_ids={c.id for c in chunks})
    assert set(rows) == {c.id for c in chunks}


def test_an_embedding_search_reads_its_chunks_with_the_recall_on_postgresql(team):
    """pgvector's recall returns its hits' rows (one statement fewer); the NumPy backend's hits
    have none, and the rows are read by `recalled_rows`. The answer is the same either way."""
    collection = make_collection(make_dataset(team))
    for i, text in enumerate(("Reset your password in Settings.", "Invoices arrive monthly.", "Password rules.")):
        add_chunk(collection, text, chunk_index=i)

    with CaptureQueriesContext(connection) as queries:
        result = pipeline.search(team_id=team.id, dataset_ids=[collection.dataset_id], text="password",
                                 options=pipeline.SearchOptions(search_mode="embedding"))

    assert [hit.q for hit in result.hits][:2] == ["Password rules.", "Reset your password in Settings."]
    assert result.hits[0].source_name == collection.name
    rows_read_apart = [q for q in queries if q["sql"].startswith(f"SELECT {ROW_COLUMNS}")]
    assert len(rows_read_apart) == (0 if connection.vendor == "postgresql" else 1)
