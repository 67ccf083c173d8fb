"""searchTest's input and output shapes, in FastGPT's field names (docs/search-api.md)."""

import json

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datasets.search.budget import DEFAULT_LIMIT, MAX_LIMIT
from datasets.search.collection_filter import FilterInvalid, parse_match
from datasets.search.pipeline import SEARCH_MODES, SearchOptions, SearchResult
from datasets.serializers.common import IdField
from providers.registry import get_model

MAX_QUERY_CHARS = 5000
MAX_DATASETS = 50
MAX_TOP_K = 200


def _declared(model_type: str):
    def check(name: str) -> str:
        model = get_model(name) if name else None
        if name and (model is None or model.type != model_type):
            raise serializers.ValidationError(f"'{name}' is not a configured {model_type} model.")
        return name

    return check


@extend_schema_field(OpenApiTypes.OBJECT)
class CollectionFilterField(serializers.Field):
    """`collectionFilterMatch`: an object, or a JSON string of one (FastGPT accepts both)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            if not data.strip():
                return None
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("is not valid JSON.") from None
        try:
            return parse_match(data)
        except FilterInvalid as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value


class SearchTestIn(serializers.Serializer):
    datasetId = IdField(source="dataset_id", required=False)
    datasetIds = serializers.ListField(
        source="dataset_ids", child=IdField(), required=False, min_length=1, max_length=MAX_DATASETS
    )
    text = serializers.CharField(max_length=MAX_QUERY_CHARS, trim_whitespace=True)
    searchMode = serializers.ChoiceField(source="search_mode", choices=SEARCH_MODES, default=SEARCH_MODES[0])
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    topK = serializers.IntegerField(source="top_k", min_value=1, max_value=MAX_TOP_K, required=False, allow_null=True)
    similarity = serializers.FloatField(min_value=0, max_value=1, default=0, allow_null=True)
    embeddingWeight = serializers.FloatField(source="embedding_weight", min_value=0, max_value=1, default=0.5)
    usingReRank = serializers.BooleanField(source="using_rerank", default=False)
    rerankModel = serializers.CharField(
        source="rerank_model", required=False, allow_blank=True, allow_null=True, default="",
        validators=[_declared("rerank")],
    )
    rerankWeight = serializers.FloatField(source="rerank_weight", min_value=0, max_value=1, default=0.5)
    datasetSearchUsingExtensionQuery = serializers.BooleanField(source="using_extension", default=False)
    datasetSearchExtensionModel = serializers.CharField(
        source="extension_model", required=False, allow_blank=True, allow_null=True, default="",
        validators=[_declared("llm")],
    )
    datasetSearchExtensionBg = serializers.CharField(
        source="extension_background", required=False, allow_blank=True, allow_null=True, default="",
        max_length=5000,
    )
    collectionFilterMatch = CollectionFilterField(source="collection_match", required=False, allow_null=True)

    def validate(self, attrs):
        ids = list(attrs.pop("dataset_ids", None) or [])
        single = attrs.pop("dataset_id", None)
        if single:
            ids.insert(0, single)
        if not ids:
            raise serializers.ValidationError({"datasetId": "datasetId or datasetIds is required."})
        attrs["dataset_ids"] = list(dict.fromkeys(ids))
        for name in ("rerank_model", "extension_model", "extension_background"):
            attrs[name] = attrs.get(name) or ""
        if attrs.get("similarity") is None:
            attrs["similarity"] = 0.0
        return attrs


def search_options(data: dict) -> SearchOptions:
    """The pipeline's options from SearchTestIn's validated data."""
    return SearchOptions(**{k: v for k, v in data.items() if k not in ("dataset_ids", "text")})


class ScoreOut(serializers.Serializer):
    # A CharField, not a ChoiceField: the schema's enum names would collide with other `type`s.
    type = serializers.CharField(help_text="embedding | fullText | reRank | rrf")
    value = serializers.FloatField()
    index = serializers.IntegerField()


class SearchHitOut(serializers.Serializer):
    id = serializers.CharField()
    q = serializers.CharField()
    a = serializers.CharField()
    chunkIndex = serializers.IntegerField(source="chunk_index")
    datasetId = serializers.CharField(source="dataset_id")
    collectionId = serializers.CharField(source="collection_id")
    sourceId = serializers.CharField(source="source_id")
    sourceName = serializers.CharField(source="source_name")
    updateTime = serializers.DateTimeField(source="update_time")
    score = ScoreOut(source="scores", many=True)


class QueryExtensionOut(serializers.Serializer):
    model = serializers.CharField()
    query = serializers.ListField(source="queries", child=serializers.CharField())
    tokens = serializers.IntegerField()


class SearchTestOut(serializers.Serializer):
    list = SearchHitOut(source="hits", many=True)
    duration = serializers.SerializerMethodField()
    searchMode = serializers.CharField(source="search_mode")
    limit = serializers.IntegerField()
    similarity = serializers.FloatField()
    usingReRank = serializers.BooleanField(source="using_rerank")
    usingSimilarityFilter = serializers.BooleanField(source="using_similarity_filter")
    queryExtensionResult = QueryExtensionOut(source="extension", allow_null=True)
    tokens = serializers.IntegerField(source="total_tokens", help_text="Embedding + rerank + extension tokens.")
    notes = serializers.ListField(child=serializers.CharField())

    def get_duration(self, result: SearchResult) -> str:
        return duration_text(result.duration)


def duration_text(seconds: float) -> str:
    """FastGPT's format: seconds with three decimals and an 's', e.g. "0.012s"."""
    return f"{seconds:.3f}s"


def _time_writer():
    """A function writing a hit's time exactly as SearchTestOut's DateTimeField does — ISO 8601
    in the current time zone, "Z" for UTC — with the zone looked up once per answer instead of
    once per hit (DRF's field resolves it for every value)."""
    zone = timezone.get_current_timezone()

    def write(value):
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return write


def search_test_out(result: SearchResult) -> dict:
    """SearchTestOut(result).data, built as plain dicts: the same keys, order and values (test
    `test_search_test_out_is_the_serializers_output`), at a fraction of the CPU — a nested
    serializer walks its fields for each hit and each score (docs/benchmarks.md, "API layer").
    SearchTestOut stays the documented shape (the OpenAPI schema)."""
    time_text = _time_writer()
    extension = result.extension
    return {
        "list": [
            {
                "id": str(hit.id),
                "q": str(hit.q),
                "a": str(hit.a),
                "chunkIndex": int(hit.chunk_index),
                "datasetId": str(hit.dataset_id),
                "collectionId": str(hit.collection_id),
                "sourceId": str(hit.source_id),
                "sourceName": str(hit.source_name),
                "updateTime": time_text(hit.update_time) if hit.update_time is not None else None,
                "score": [{"type": str(s.type), "value": float(s.value), "index": int(s.index)} for s in hit.scores],
            }
            for hit in result.hits
        ],
        "duration": duration_text(result.duration),
        "searchMode": str(result.search_mode),
        "limit": int(result.limit),
        "similarity": float(result.similarity),
        "usingReRank": bool(result.using_rerank),
        "usingSimilarityFilter": bool(result.using_similarity_filter),
        "queryExtensionResult": None if extension is None else {
            "model": str(extension.model),
            "query": [str(query) for query in extension.queries],
            "tokens": int(extension.tokens),
        },
        "tokens": int(result.total_tokens),
        "notes": [str(note) for note in result.notes],
    }
