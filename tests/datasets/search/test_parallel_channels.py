"""mixedRecall's two channels side by side (datasets/search/parallel.py): on PostgreSQL outside
a transaction the full-text channel runs on a second connection and the answer is the one the
channels give one after the other; inside a transaction, and on SQLite, nothing runs beside."""

import pytest
from django.db import connection, transaction

from datasets.search import parallel, pipeline
from tests.datasets.search.conftest import CHUNKS
from tests.datasets.search.helpers import add_chunk, hits, make_collection, make_dataset, search


@pytest.fixture
def side_runs(monkeypatch):
    """Records what `parallel.beside` answered for each search (a Future, or None)."""
    answers = []
    original = parallel.beside

    def recording(function, *args):
        answer = original(function, *args)
        answers.append(answer)
        return answer

    monkeypatch.setattr(parallel, "beside", recording)
    return answers


def _knowledge_base(team):
    collection = make_collection(make_dataset(team, "Help center"), "help.md")
    for i, text in enumerate(CHUNKS.values()):
        add_chunk(collection, text, chunk_index=i)
    return collection.dataset


@pytest.mark.django_db(transaction=True)
def test_mixed_recall_runs_full_text_beside_the_vector_channel_on_postgres(api, team, side_runs, monkeypatch):
    dataset = _knowledge_base(team)
    body = {"datasetId": dataset.id, "text": "reset a forgotten password", "searchMode": "mixedRecall"}
    side_by_side = hits(search(api, **body))
    assert len(side_runs) == 1
    if connection.vendor == "postgresql":
        assert side_runs[0] is not None and side_runs[0].done()
    else:
        assert side_runs[0] is None  # SQLite: no second connection to overlap with

    monkeypatch.setattr(parallel, "_spare_connection", lambda: False)
    one_after_the_other = hits(search(api, **body))
    assert side_runs[1] is None
    strip = lambda found: [(h["id"], [(s["type"], round(s["value"], 6), s["index"]) for s in h["score"]]) for h in found]  # noqa: E731
    assert strip(side_by_side) == strip(one_after_the_other)
    assert side_by_side[0]["q"] == CHUNKS["password"]
    assert {s["type"] for s in side_by_side[0]["score"]} == {"embedding", "fullText", "rrf"}


@pytest.mark.django_db(transaction=True)
def test_a_failing_side_channel_fails_the_search_as_it_would_alone(team, side_runs, monkeypatch):
    dataset = _knowledge_base(team)

    def broken(*args):
        raise RuntimeError("full text broke")

    monkeypatch.setattr(pipeline, "_full_text_recall", broken)
    with pytest.raises(RuntimeError, match="full text broke"):
        pipeline.search(team_id=team.id, dataset_ids=[dataset.id], text="password",
                        options=pipeline.SearchOptions(search_mode="mixedRecall"))


def test_nothing_runs_beside_inside_a_transaction(api, kb, side_runs):
    # Every non-transactional test runs inside one: another connection would not see its rows.
    assert connection.in_atomic_block
    response = search(api, datasetId=kb.dataset.id, text="reset a forgotten password", searchMode="mixedRecall")
    assert hits(response)[0]["q"] == CHUNKS["password"]
    assert side_runs == [None]
    with transaction.atomic():
        assert parallel.beside(len, "abc") is None
