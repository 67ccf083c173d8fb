"""Full-text recall (PostgreSQL tsvector + GIN / SQLite FTS5 + bm25): matching, ranking,
filters, staying in sync with writes and deletes, and user text that is never query syntax."""

import pytest
from django.db import connection

from datasets.models import Collection, Data, TrainingState
from datasets.search.fulltext import MAX_QUERY_WORDS, fulltext_backend, query_terms
from providers.words import words
from tests.datasets.storage_helpers import make_collection, make_dataset

pytestmark = pytest.mark.django_db


def item(collection, q: str, a: str = "") -> Data:
    return Data.objects.create(
        team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection, q=q, a=a,
        search_words=" ".join(words(f"{q}\n{a}")), training_state=TrainingState.READY,
    )


def recall(collection_or_dataset_ids, text: str, limit: int = 10, **kw) -> list[str]:
    ids = collection_or_dataset_ids
    return [hit.data_id for hit in fulltext_backend().recall(dataset_ids=ids, words=words(text), limit=limit, **kw)]


@pytest.fixture
def kb(team):
    collection = make_collection(make_dataset(team))
    return collection, {
        "password": item(collection, "How do I reset my password?", "Open Settings, then Security."),
        "invoice": item(collection, "Where are invoices?", "Invoices are on the Billing page."),
        "china": item(collection, "中华人民共和国的首都是北京", "北京是一座历史悠久的城市"),
        "repeat": item(collection, "password password password reset", "password rules"),
    }


def test_matches_words_and_ranks_the_denser_item_first(kb):
    collection, items = kb
    found = recall([collection.dataset_id], "password")
    assert found == [items["repeat"].pk, items["password"].pk]
    hits = fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=["password"], limit=10)
    assert hits[0].score > hits[1].score > 0


def test_any_word_matches(kb):
    collection, items = kb
    assert set(recall([collection.dataset_id], "billing security")) == {items["invoice"].pk, items["password"].pk}
    assert recall([collection.dataset_id], "nothing-like-this zebra") == []


def test_chinese_words_from_jieba_search_mode(kb):
    collection, items = kb
    assert recall([collection.dataset_id], "首都北京") == [items["china"].pk]
    assert recall([collection.dataset_id], "人民") == [items["china"].pk]  # a word inside 中华人民共和国


def test_dataset_and_collection_filters(kb, team, other_team):
    collection, items = kb
    other = make_collection(collection.dataset, "other")
    extra = item(other, "password elsewhere")
    theirs = item(make_collection(make_dataset(other_team)), "password of another team")
    found = recall([collection.dataset_id], "password")
    assert extra.pk in found and theirs.pk not in found
    assert recall([collection.dataset_id], "password", collection_ids=[other.pk]) == [extra.pk]
    assert recall([collection.dataset_id], "password", collection_ids=[]) == []
    assert recall([], "password") == []
    assert len(recall([collection.dataset_id], "password", limit=1)) == 1


def test_follows_updates_and_deletes(kb):
    collection, items = kb
    invoice = items["invoice"]
    invoice.search_words = " ".join(words("Refunds take five days"))
    invoice.save(update_fields=["search_words"])
    assert recall([collection.dataset_id], "refunds") == [invoice.pk]
    assert invoice.pk not in recall([collection.dataset_id], "invoices billing")

    items["password"].delete()
    assert recall([collection.dataset_id], "security") == []
    Collection.objects.filter(pk=collection.pk).delete()  # cascades to its items
    assert recall([collection.dataset_id], "password refunds") == []
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM datasets_data_fts")
            assert cursor.fetchone()[0] == 0  # the triggers removed every row


@pytest.mark.parametrize(
    "text",
    ['"', '""', "'", "''", "*", "pass*", ":", "a:b", "&", "|", "!", "!password", "(", ")", "()",
     "-", "^", "~", "\\", "<->", "NEAR(a b)", "AND", "OR", "NOT", "password OR", 'password" OR "x',
     "search_words:password", "data_id:x", "{search_words}: x", "' | 'x", "\\' | \\'", "password & !reset",
     "\x00", "😀", "a" * 3000, "中文\"引号\"", "%s", "%(x)s", "; DROP TABLE datasets_data; --"],
)
def test_user_text_is_never_query_syntax(kb, text):
    collection, _ = kb
    fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=words(text), limit=5)
    # The backends also hold against raw, untokenised words.
    fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=[text, "password"], limit=5)
    assert Data.objects.filter(collection=collection).count() == 4


def test_raw_words_are_normalised_like_the_index(kb):
    """A word with punctuation or capitals (not from words()) is cut and folded the way the
    indexed words were, so it still matches."""
    collection, items = kb
    hits = fulltext_backend().recall(dataset_ids=[collection.dataset_id], words=['PassWord"'], limit=5)
    assert {h.data_id for h in hits} == {items["repeat"].pk, items["password"].pk}


def test_query_terms_dedupe_and_cap():
    assert query_terms(["a", "b", "a", " ", ""]) == ["a", "b"]
    assert len(query_terms([f"w{i}" for i in range(500)])) == MAX_QUERY_WORDS
    assert query_terms([]) == []


@pytest.fixture
def filler(team):
    """60 chunks sharing the common words "how", "do", "i", "the", "use", one of them also
    holding the rare word "tarball" — more chunks than the PostgreSQL backend's smallest
    common-word threshold, so "how"/"the"… are common there."""
    collection = make_collection(make_dataset(team, "filler"))
    Data.objects.bulk_create(
        Data(team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection,
             q=q, search_words=" ".join(words(q)), training_state=TrainingState.READY, chunk_index=i)
        for i, q in enumerate(
            [f"How do I use the thing number {i}? The the the how how use use." for i in range(59)]
            + ["Unpack the tarball into a folder."]
        )
    )
    rare = Data.objects.get(collection=collection, q__contains="tarball")
    return collection, rare


def test_a_rare_word_outranks_common_ones(filler):
    """IDF: the one chunk holding the rare word comes first, although every other chunk holds
    the query's common words many times and the rare chunk holds only one of them."""
    collection, rare = filler
    hits = fulltext_backend().recall(
        dataset_ids=[collection.dataset_id], words=words("how do I use the tarball"), limit=5
    )
    assert hits and hits[0].data_id == rare.pk
    assert all(hits[0].score > hit.score for hit in hits[1:])


def test_a_query_of_only_common_words_still_answers(filler):
    collection, rare = filler
    found = recall([collection.dataset_id], "how do I use the", limit=10)
    assert len(found) == 10
    assert rare.pk not in found  # it holds "the" only: the chunks holding every word come first
    assert len(recall([collection.dataset_id], "the", limit=100)) == 60  # a word of every chunk


def test_words_missing_from_the_dataset_do_not_hide_the_others(filler):
    collection, rare = filler
    assert recall([collection.dataset_id], "zyzzyva tarball qwxz")[0] == rare.pk
    assert recall([collection.dataset_id], "zyzzyva qwxz") == []


def test_common_words_that_never_meet_still_answer(team):
    """Two words each in half of 120 chunks (common for PostgreSQL's backend), never together:
    no chunk holds both, so the chunks holding either answer."""
    collection = make_collection(make_dataset(team, "halves"))
    Data.objects.bulk_create(
        Data(team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection,
             q=q, search_words=q, training_state=TrainingState.READY, chunk_index=i)
        for i, q in enumerate([f"alpha one{i}" for i in range(60)] + [f"beta two{i}" for i in range(60)])
    )
    found = recall([collection.dataset_id], "alpha beta", limit=200)
    assert len(found) == 120
