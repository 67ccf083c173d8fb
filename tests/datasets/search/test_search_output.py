"""searchTest's answer built as plain dicts (`search_test_out`) is exactly what the documented
serializer (`SearchTestOut`, the OpenAPI schema's) gives: same keys in the same order, same
values and types — for a real search's result and for the fields a search rarely fills."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as dj_timezone

from datasets.search.extension import ExtensionResult
from datasets.search.fusion import Score
from datasets.search.pipeline import SearchHit, SearchOptions, SearchResult, search
from datasets.serializers.search import SearchTestOut, search_test_out


def same(result: SearchResult):
    plain, documented = search_test_out(result), SearchTestOut(result).data
    # json.dumps keeps order and types (1 vs 1.0, "0.5" vs 0.5): compare the rendered text.
    assert json.dumps(plain) == json.dumps(documented)
    return plain


@pytest.mark.parametrize("mode", ["embedding", "fullTextRecall", "mixedRecall"])
def test_a_real_search_result(kb, mode):
    result = search(team_id=kb.dataset.team_id, dataset_ids=[kb.dataset.id], text="reset my password",
                    options=SearchOptions(search_mode=mode))
    out = same(result)
    assert out["list"] and out["list"][0]["q"].startswith("How to reset")
    assert list(out["list"][0]) == ["id", "q", "a", "chunkIndex", "datasetId", "collectionId", "sourceId",
                                    "sourceName", "updateTime", "score"]


def hit(**fields) -> SearchHit:
    values = {"id": "d1", "q": "question", "a": "answer", "chunk_index": 3, "dataset_id": "ds", "collection_id": "c",
              "source_id": "", "source_name": "guide.md", "update_time": datetime(2026, 1, 2, 3, 4, 5, 678900,
                                                                                 tzinfo=timezone.utc),
              "scores": [Score(type="embedding", value=0.5, index=0), Score(type="rrf", value=1, index=2)]}
    return SearchHit(**{**values, **fields})


def result(**fields) -> SearchResult:
    values = {"hits": [hit()], "search_mode": "mixedRecall", "limit": 5000, "similarity": 0, "using_rerank": True,
              "using_similarity_filter": False, "duration": 0.01234, "embedding_tokens": 3, "rerank_tokens": 4,
              "notes": ["a note"]}
    return SearchResult(**{**values, **fields})


def test_every_field_filled_integers_as_floats_and_an_extension():
    out = same(result(extension=ExtensionResult(model="gpt", queries=["one", "two"], tokens=7)))
    assert out["duration"] == "0.012s" and out["tokens"] == 14 and out["similarity"] == 0.0
    assert out["list"][0]["score"][1] == {"type": "rrf", "value": 1.0, "index": 2}
    assert out["queryExtensionResult"] == {"model": "gpt", "query": ["one", "two"], "tokens": 7}


def test_no_hits_no_extension_no_notes():
    out = same(result(hits=[], notes=[]))
    assert out["list"] == [] and out["queryExtensionResult"] is None


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
def test_times_in_the_current_time_zone(settings, zone):
    settings.TIME_ZONE = zone
    with dj_timezone.override(zone):
        same(result(hits=[hit(), hit(update_time=datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))]))
