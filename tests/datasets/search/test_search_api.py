"""POST /api/core/dataset/searchTest: modes, options and errors, on the database under test."""

from datetime import datetime, timezone as tz

import pytest

from datasets.models import Collection
from datasets.search.budget import count_tokens
from keys.models import ApiKey
from tests.datasets.search.conftest import CHUNKS
from tests.datasets.search.helpers import (
    SEARCH_TEST, add_chunk, hits, make_collection, make_dataset, qs, score, search,
)

MODES = ["embedding", "fullTextRecall", "mixedRecall"]
LONG_GARDEN = ("garden hose nozzle pressure settings plus other unrelated words about lawns trees fences "
               "sheds patios and weekend chores")


# --- the answer's shape ---------------------------------------------------------------------


def test_the_answer_has_fastgpts_shape(api, kb):
    response = search(api, datasetId=kb.dataset.id, text="reset my password")
    body = response.json()
    assert response.status_code == 200
    assert (body["code"], body["statusText"], body["message"]) == (200, "", "")
    data = body["data"]
    assert {"list", "duration", "searchMode", "limit", "similarity", "usingReRank", "usingSimilarityFilter"} <= set(data)
    assert data["searchMode"] == "embedding" and data["limit"] == 5000 and data["similarity"] == 0
    assert data["usingReRank"] is False and data["usingSimilarityFilter"] is True
    assert data["duration"].endswith("s") and float(data["duration"][:-1]) >= 0
    first = data["list"][0]
    chunk = kb.chunks["password"]
    assert first == {
        "id": chunk.id, "q": chunk.q, "a": "", "chunkIndex": 0, "datasetId": kb.dataset.id,
        "collectionId": kb.collection.id, "sourceId": kb.collection.id, "sourceName": "help.md",
        "updateTime": first["updateTime"], "score": first["score"],
    }
    assert datetime.fromisoformat(first["updateTime"].replace("Z", "+00:00"))
    assert [s["type"] for s in first["score"]] == ["embedding", "rrf"]
    assert first["score"][0]["index"] == 0 and 0 < first["score"][0]["value"] <= 1


# --- modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_finds_the_matching_chunk_first(api, kb, mode):
    response = search(api, datasetId=kb.dataset.id, text="How do I reset a forgotten password?", searchMode=mode)
    assert qs(response)[0] == CHUNKS["password"]
    assert response.json()["data"]["searchMode"] == mode
    first = hits(response)[0]
    wanted = {"embedding": {"embedding", "rrf"}, "fullTextRecall": {"fullText", "rrf"},
              "mixedRecall": {"embedding", "fullText", "rrf"}}[mode]
    assert {s["type"] for s in first["score"]} == wanted


@pytest.mark.parametrize("mode", MODES)
def test_chunks_sharing_no_word_are_not_found_by_full_text(api, kb, mode):
    found = qs(search(api, datasetId=kb.dataset.id, text="serengeti zebras", searchMode=mode))
    assert found[0] == CHUNKS["zebra"]
    if mode == "fullTextRecall":
        assert found == [CHUNKS["zebra"]]


def test_a_chunk_is_scored_by_its_best_index(api, team):
    dataset = make_dataset(team)
    collection = make_collection(dataset)
    chunk = add_chunk(collection, "Quarterly report of the sales team.", indexes=("aurora borealis photography",))
    add_chunk(collection, "Aurora is a name; borealis means northern.")
    found = hits(search(api, datasetId=dataset.id, text="aurora borealis photography"))
    assert found[0]["id"] == chunk.id
    assert score(found[0], "embedding") == pytest.approx(1.0, abs=1e-5)  # its custom index, exactly
    assert [hit["id"] for hit in found].count(chunk.id) == 1


def test_mixed_recall_weights_the_channels(api, team):
    dataset = make_dataset(team)
    collection = make_collection(dataset)
    # One chunk only the vectors find (no full-text words), one only full text finds (untrained).
    vectors_only = add_chunk(collection, "solar panel inverter sizing", full_text=False)
    text_only = add_chunk(collection, "solar panel inverter sizing guide", trained=False)

    def order(weight):
        body = dict(datasetId=dataset.id, text="solar panel inverter sizing", searchMode="mixedRecall",
                    embeddingWeight=weight)
        return [hit["id"] for hit in hits(search(api, **body))]

    assert order(1.0)[0] == vectors_only.id
    assert order(0.0)[0] == text_only.id
    assert order(0.8) == [vectors_only.id, text_only.id]
    assert order(0.2) == [text_only.id, vectors_only.id]
    found = hits(search(api, datasetId=dataset.id, text="solar panel", searchMode="mixedRecall"))
    by_id = {hit["id"]: hit for hit in found}
    assert {s["type"] for s in by_id[vectors_only.id]["score"]} == {"embedding", "rrf"}
    assert {s["type"] for s in by_id[text_only.id]["score"]} == {"fullText", "rrf"}
    assert score(by_id[vectors_only.id], "rrf") == pytest.approx(0.5 / 61)


def test_several_datasets_of_the_team_are_searched_together(api, team, kb):
    other = make_dataset(team, "Second")
    extra = add_chunk(make_collection(other, "more.md"), "Resetting a password needs the old email address.")
    response = search(api, datasetIds=[kb.dataset.id, other.id], text="reset password", searchMode="mixedRecall")
    found = {hit["id"]: hit["datasetId"] for hit in hits(response)}
    assert found[kb.chunks["password"].id] == kb.dataset.id
    assert found[extra.id] == other.id
    # datasetId and datasetIds together: both are searched
    both = hits(search(api, datasetId=other.id, datasetIds=[kb.dataset.id], text="reset password"))
    assert {hit["datasetId"] for hit in both} == {kb.dataset.id, other.id}


def test_datasets_with_different_vector_models_are_refused(api, team, kb, provider_models):
    other = make_dataset(team, "Other model", vector_model="fake-embedding")
    response = search(api, datasetIds=[kb.dataset.id, other.id], text="reset password")
    assert response.status_code == 400
    assert "datasetIds" in response.json()["message"]
    # full text needs no vectors: the two can be searched together that way
    assert search(api, datasetIds=[kb.dataset.id, other.id], text="password",
                  searchMode="fullTextRecall").status_code == 200


def test_a_query_with_no_words_finds_nothing(api, kb):
    for mode in MODES:
        response = search(api, datasetId=kb.dataset.id, text="?!… ---", searchMode=mode)
        assert hits(response) == []


def test_an_empty_dataset_answers_an_empty_list(api, team):
    dataset = make_dataset(team)
    assert hits(search(api, datasetId=dataset.id, text="anything", searchMode="mixedRecall")) == []


# --- similarity -----------------------------------------------------------------------------


def test_similarity_applies_to_the_embedding_score_in_embedding_mode(api, kb):
    loose = hits(search(api, datasetId=kb.dataset.id, text="reset forgotten password settings", similarity=0))
    strict = hits(search(api, datasetId=kb.dataset.id, text="reset forgotten password settings", similarity=0.3))
    assert len(loose) > 1
    assert [hit["q"] for hit in strict] == [CHUNKS["password"]]
    assert all(score(hit, "embedding") >= 0.3 for hit in strict)
    data = search(api, datasetId=kb.dataset.id, text="zebra", similarity=0.99).json()["data"]
    assert data["list"] == [] and data["usingSimilarityFilter"] is True  # the filter may empty the list


@pytest.mark.parametrize("mode", ["fullTextRecall", "mixedRecall"])
def test_similarity_is_not_applied_without_rerank_outside_embedding_mode(api, kb, mode):
    data = search(api, datasetId=kb.dataset.id, text="reset password", searchMode=mode, similarity=0.99).json()["data"]
    assert data["usingSimilarityFilter"] is False
    assert data["similarity"] == 0.99
    assert data["list"][0]["q"] == CHUNKS["password"]


# --- budget and topK ------------------------------------------------------------------------


def test_the_token_budget_limits_the_results_and_keeps_at_least_one(api, team):
    dataset = make_dataset(team)
    collection = make_collection(dataset)
    for i in range(6):
        add_chunk(collection, f"budget item {i} " + "word " * 30, chunk_index=i)
    each = count_tokens("budget item 0 " + "word " * 30)
    everything = hits(search(api, datasetId=dataset.id, text="budget item", searchMode="fullTextRecall"))
    assert len(everything) == 6
    # two fit; the third would pass the budget by one token: it is left out
    two = hits(search(api, datasetId=dataset.id, text="budget item", searchMode="fullTextRecall", limit=3 * each - 1))
    assert len(two) == 2 and [h["id"] for h in two] == [h["id"] for h in everything[:2]]
    one = search(api, datasetId=dataset.id, text="budget item", searchMode="fullTextRecall", limit=1)
    assert len(hits(one)) == 1 and one.json()["data"]["limit"] == 1


def test_top_k_caps_the_count(api, kb):
    found = hits(search(api, datasetId=kb.dataset.id, text="password invoices zebras python rerank",
                        searchMode="fullTextRecall", topK=2))
    assert len(found) == 2
    assert len(hits(search(api, datasetId=kb.dataset.id, text="password invoices zebras python rerank",
                           searchMode="fullTextRecall"))) == 5


# --- scope: forbid, tags, create time --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_forbidden_collections_are_never_returned(api, kb, mode):
    hidden = make_collection(kb.dataset, "secret.md", forbid=True)
    secret = add_chunk(hidden, "The reset password master code is 1234.")
    found = hits(search(api, datasetId=kb.dataset.id, text="reset password master code", searchMode=mode))
    assert secret.id not in {hit["id"] for hit in found}
    assert found[0]["q"] == CHUNKS["password"]
    Collection.objects.filter(pk=hidden.pk).update(forbid=False)
    found = hits(search(api, datasetId=kb.dataset.id, text="reset password master code", searchMode=mode))
    assert secret.id in [hit["id"] for hit in found[:2]]


def test_every_collection_forbidden_answers_nothing(api, kb):
    Collection.objects.filter(pk=kb.collection.pk).update(forbid=True)
    data = search(api, datasetId=kb.dataset.id, text="reset password").json()["data"]
    assert data["list"] == [] and data["notes"]


@pytest.fixture
def tagged(team):
    dataset = make_dataset(team)
    made = {}
    for name, tags, day in [("a", ["faq"], 1), ("b", ["faq", "billing"], 10), ("c", ["billing"], 20), ("d", [], 30)]:
        collection = make_collection(dataset, f"{name}.md", tags=tags, created_at=datetime(2024, 3, day, tzinfo=tz.utc))
        made[name] = add_chunk(collection, f"shared topic text from collection {name}")
    return dataset, made


@pytest.mark.parametrize(
    "match, expected",
    [
        ({"tags": {"$and": ["faq"]}}, "ab"),
        ({"tags": {"$and": ["faq", "billing"]}}, "b"),
        ({"tags": {"$or": ["billing"]}}, "bc"),
        ({"tags": {"$or": ["faq", None]}}, "abd"),
        ({"tags": {"$and": [None]}}, "d"),
        ({"tags": {"$and": ["nope"]}}, ""),
        ({"createTime": {"$gte": "2024-03-10", "$lte": "2024-03-20 00:00"}}, "bc"),
        ({"createTime": {"$gte": "2024-03-15"}, "tags": {"$or": ["billing", "faq"]}}, "c"),
        ({}, "abcd"),
    ],
)
@pytest.mark.parametrize("mode", ["embedding", "mixedRecall"])
def test_collection_filter_match_by_tags_and_create_time(api, tagged, match, expected, mode):
    dataset, made = tagged
    found = hits(search(api, datasetId=dataset.id, text="shared topic text", searchMode=mode,
                        collectionFilterMatch=match))
    names = {name for name, chunk in made.items() if chunk.id in {hit["id"] for hit in found}}
    assert names == set(expected)


def test_collection_filter_match_may_be_a_json_string(api, tagged):
    dataset, made = tagged
    found = hits(search(api, datasetId=dataset.id, text="shared topic", searchMode="fullTextRecall",
                        collectionFilterMatch='{"tags": {"$and": ["billing"]}}'))
    assert {hit["id"] for hit in found} == {made["b"].id, made["c"].id}


# --- dedupe ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_chunks_equal_but_for_punctuation_are_returned_once(api, kb, mode):
    copy = make_collection(kb.dataset, "copy.md")
    add_chunk(copy, "How to reset a forgotten password -- open Settings; choose Security, and click Reset password!")
    found = qs(search(api, datasetId=kb.dataset.id, text="reset forgotten password", searchMode=mode))
    assert sum("forgotten password" in q for q in found) == 1


# --- rerank ---------------------------------------------------------------------------------


def test_rerank_reorders_and_reports_its_scores(api, team, provider_models):
    dataset = make_dataset(team)
    collection = make_collection(dataset)
    # The lexical embedding puts the repetitive chunk first; the reranker (word overlap)
    # prefers the one holding every query word.
    repetitive = add_chunk(collection, "garden garden garden hose hose")
    complete = add_chunk(collection, LONG_GARDEN)
    body = dict(datasetId=dataset.id, text="garden hose nozzle pressure", searchMode="embedding")
    assert [h["id"] for h in hits(search(api, **body))] == [repetitive.id, complete.id]

    response = search(api, **body, usingReRank=True, rerankModel="fake-rerank", rerankWeight=1)
    data = response.json()["data"]
    assert data["usingReRank"] is True and data["usingSimilarityFilter"] is True
    assert [h["id"] for h in data["list"]] == [complete.id, repetitive.id]
    assert score(data["list"][0], "reRank") == 1.0 and score(data["list"][1], "reRank") == 0.5
    assert {s["type"] for s in data["list"][0]["score"]} == {"embedding", "reRank", "rrf"}
    sent = [r for r in provider_models.requests if r["path"] == "/v1/rerank"]
    assert len(sent) == 1 and sent[0]["body"]["query"] == "garden hose nozzle pressure"
    assert sorted(sent[0]["body"]["documents"]) == sorted([repetitive.q, complete.q])


def test_rerank_weight_blends_the_two_orders(api, team, provider_models):
    dataset = make_dataset(team)
    collection = make_collection(dataset)
    repetitive = add_chunk(collection, "garden garden garden hose hose")
    complete = add_chunk(collection, LONG_GARDEN)
    body = dict(datasetId=dataset.id, text="garden hose nozzle pressure", usingReRank=True)
    assert [h["id"] for h in hits(search(api, **body, rerankWeight=0.2))] == [repetitive.id, complete.id]
    assert [h["id"] for h in hits(search(api, **body, rerankWeight=0.8))] == [complete.id, repetitive.id]


def test_similarity_applies_to_the_rerank_score_when_rerank_ran(api, kb, provider_models):
    body = dict(datasetId=kb.dataset.id, text="reset password zebras", searchMode="mixedRecall",
                usingReRank=True, similarity=0.6)
    data = search(api, **body).json()["data"]
    assert data["usingReRank"] is True and data["usingSimilarityFilter"] is True
    assert [h["q"] for h in data["list"]] == [CHUNKS["password"]]  # 2 of 3 words; the zebra chunk has 1
    assert score(data["list"][0], "reRank") == pytest.approx(2 / 3)


@pytest.mark.parametrize("status", [500, 429])
def test_a_failing_rerank_still_answers_without_rerank(api, kb, provider_models, status):
    data = search(api, datasetId=kb.dataset.id, text=f"reset password [[fail:{status}]]", searchMode="mixedRecall",
                  usingReRank=True, similarity=0.9).json()["data"]
    assert data["usingReRank"] is False
    assert data["usingSimilarityFilter"] is False  # mixed mode without rerank: not applied
    assert data["list"][0]["q"] == CHUNKS["password"]
    assert all(score(hit, "reRank") is None for hit in data["list"])
    assert any("rerank failed" in note and f"HTTP {status}" in note for note in data["notes"])


def test_rerank_with_no_rerank_model_configured_is_noted(api, kb):
    data = search(api, datasetId=kb.dataset.id, text="reset password", usingReRank=True).json()["data"]
    assert data["usingReRank"] is False
    assert data["list"][0]["q"] == CHUNKS["password"]
    assert any("no rerank model is configured" in note for note in data["notes"])


# --- query extension ------------------------------------------------------------------------


def test_query_extension_recalls_each_alternative(api, kb, provider_models):
    body = dict(datasetId=kb.dataset.id, text="monthly bill", searchMode="fullTextRecall")
    assert CHUNKS["invoice"] not in qs(search(api, **body))
    response = search(api, **body, datasetSearchUsingExtensionQuery=True, datasetSearchExtensionModel="fake-llm",
                      datasetSearchExtensionBg="A help center. [[answer:download invoices\nbilling page]]")
    data = response.json()["data"]
    assert data["list"][0]["q"] == CHUNKS["invoice"]
    assert data["queryExtensionResult"]["model"] == "fake-llm"
    assert data["queryExtensionResult"]["query"] == ["download invoices", "billing page"]
    prompt = [r for r in provider_models.requests if r["path"] == "/v1/chat/completions"][0]["body"]
    assert "monthly bill" in prompt["messages"][-1]["content"] and "A help center." in prompt["messages"][-1]["content"]


def test_query_extension_is_skipped_with_a_note_when_only_the_offline_responder_exists(api, kb):
    data = search(api, datasetId=kb.dataset.id, text="reset password", datasetSearchUsingExtensionQuery=True).json()["data"]
    assert data["list"][0]["q"] == CHUNKS["password"]
    assert data["queryExtensionResult"] is None
    assert any("query extension skipped" in note for note in data["notes"])


def test_a_failing_extension_model_is_noted_and_the_question_still_searched(api, kb, provider_models):
    data = search(api, datasetId=kb.dataset.id, text="reset password", datasetSearchUsingExtensionQuery=True,
                  datasetSearchExtensionBg="[[fail:503]]").json()["data"]
    assert data["list"][0]["q"] == CHUNKS["password"]
    assert any("query extension failed" in note and "HTTP 503" in note for note in data["notes"])


# --- usage ----------------------------------------------------------------------------------


def test_the_query_embedding_tokens_count_toward_the_key_usage(api, global_key, team, provider_models):
    dataset = make_dataset(team, vector_model="fake-embedding")
    add_chunk(make_collection(dataset), "four words of text")
    data = search(api, datasetId=dataset.id, text="four words of text").json()["data"]
    assert data["list"][0]["q"] == "four words of text"
    assert score(data["list"][0], "embedding") == pytest.approx(1.0, abs=1e-5)
    assert data["tokens"] == 4  # the fake provider bills one token per word
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == 4
    search(api, datasetId=dataset.id, text="more words", searchMode="fullTextRecall")  # no model call
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == 4


def test_a_failing_embedding_provider_answers_502(api, team, provider_models):
    dataset = make_dataset(team, vector_model="fake-embedding")
    response = search(api, datasetId=dataset.id, text="hello [[fail:500]]")
    assert response.status_code == 502
    assert "Embedding the query failed" in response.json()["message"]


# --- who may search what --------------------------------------------------------------------


def test_another_teams_dataset_is_not_found(api, kb, other_team):
    theirs = make_dataset(other_team, "Theirs")
    add_chunk(make_collection(theirs), "their reset password notes")
    for body in ({"datasetId": theirs.id}, {"datasetIds": [kb.dataset.id, theirs.id]}, {"datasetId": "0" * 24}):
        response = search(api, text="reset password", **body)
        assert response.status_code == 404, body
        assert response.json()["statusText"] == "unExistDataset"


def test_another_teams_key_cannot_search_our_dataset(client_for, other_global_key, kb):
    response = search(client_for(other_global_key), datasetId=kb.dataset.id, text="reset password")
    assert response.status_code == 404


def test_an_app_key_is_refused(client_for, app_key, kb):
    response = search(client_for(app_key), datasetId=kb.dataset.id, text="reset password")
    assert response.status_code == 403
    assert response.json()["statusText"] == "unAuthorization"


def test_no_key_is_refused(client_for, kb):
    assert search(client_for(None), datasetId=kb.dataset.id, text="reset password").status_code == 401


def test_a_folder_is_not_searchable(api, team):
    folder = make_dataset(team, "Folder")
    folder.type = "folder"
    folder.save()
    response = search(api, datasetId=folder.id, text="anything")
    assert response.status_code == 400 and "folder" in response.json()["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"text": "x"}, "datasetId"),
        ({"datasetId": "D"}, "text"),
        ({"datasetId": "D", "text": "   "}, "text"),
        ({"datasetId": "D", "text": "x", "searchMode": "semantic"}, "searchMode"),
        ({"datasetId": "D", "text": "x", "limit": 20001}, "limit"),
        ({"datasetId": "D", "text": "x", "limit": 0}, "limit"),
        ({"datasetId": "D", "text": "x", "similarity": 1.5}, "similarity"),
        ({"datasetId": "D", "text": "x", "embeddingWeight": -0.1}, "embeddingWeight"),
        ({"datasetId": "D", "text": "x", "rerankWeight": 2}, "rerankWeight"),
        ({"datasetId": "D", "text": "x", "topK": 0}, "topK"),
        ({"datasetId": "D", "text": "x", "usingReRank": "maybe"}, "usingReRank"),
        ({"datasetId": "D", "text": "x", "rerankModel": "no-such-model"}, "rerankModel"),
        ({"datasetId": "D", "text": "x", "datasetSearchExtensionModel": "fake-embedding"}, "datasetSearchExtensionModel"),
        ({"datasetId": "D", "text": "x", "collectionFilterMatch": "{bad json"}, "collectionFilterMatch"),
        ({"datasetId": "D", "text": "x", "collectionFilterMatch": {"tags": {"$and": "faq"}}}, "collectionFilterMatch"),
        ({"datasetIds": []}, "datasetIds"),
        ({"datasetIds": "abc", "text": "x"}, "datasetIds"),
        ({"datasetId": "D", "text": "x" * 5001}, "text"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, kb, provider_models, body, field):
    body = {k: (kb.dataset.id if v == "D" else v) for k, v in body.items()}
    response = api.post(SEARCH_TEST, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(field) or f"{field}:" in response.json()["message"]


def test_only_post_is_served(api, kb):
    assert api.get(SEARCH_TEST).status_code == 405


def test_reranked_hits_keep_both_channels_scores(api, kb, provider_models):
    body = dict(datasetId=kb.dataset.id, text="reset forgotten password", searchMode="mixedRecall",
                usingReRank=True, rerankWeight=1)
    first = hits(search(api, **body))[0]
    assert first["q"] == CHUNKS["password"]
    assert [s["type"] for s in first["score"]] == ["embedding", "fullText", "reRank", "rrf"]
    assert score(first, "reRank") == 1.0
