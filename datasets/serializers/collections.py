"""Input and output shapes of the collection endpoints, in FastGPT's field names."""

import json
import re
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from datasets.serializers.results import InsertResultsOut
from datasets.serializers.common import (
    IdField, LegacyPageOut, NullableParentId, OffsetPageIn, OffsetPageOut, PageNumIn,
)

TRAINING_TYPES = ("chunk", "qa")
EMPTY_COLLECTION_TYPES = ("folder", "virtual")
# The chunking fields kept on the collection exactly as sent (FastGPT's names).
CHUNK_SETTING_FIELDS = (
    "chunkSettingMode", "chunkSplitMode", "chunkSize", "indexSize", "chunkSplitter",
    "chunkTriggerType", "chunkTriggerMinSize", "paragraphChunkDeep",
    "indexPrefixTitle", "customPdfParse", "autoIndexes", "imageIndex", "qaPrompt",
)
MAX_NAME_LENGTH = 255
MAX_TAGS = 50


class CollectionCommonIn(serializers.Serializer):
    """The parameters every created collection takes (FastGPT's "common parameters")."""

    datasetId = IdField(source="dataset_id")
    parentId = NullableParentId(source="parent_id")
    trainingType = serializers.ChoiceField(source="training_type", choices=TRAINING_TYPES, default="chunk")
    chunkSettingMode = serializers.ChoiceField(choices=("auto", "custom"), required=False)
    chunkSplitMode = serializers.ChoiceField(choices=("size", "char", "paragraph"), required=False)
    chunkSize = serializers.IntegerField(min_value=64, max_value=8000, required=False)
    indexSize = serializers.IntegerField(min_value=64, max_value=8000, required=False)
    chunkSplitter = serializers.CharField(max_length=200, required=False, allow_blank=True, trim_whitespace=False)
    chunkTriggerType = serializers.ChoiceField(choices=("minSize", "maxSize", "forceChunk"), required=False)
    chunkTriggerMinSize = serializers.IntegerField(min_value=0, required=False)
    paragraphChunkDeep = serializers.IntegerField(min_value=0, max_value=10, required=False)
    indexPrefixTitle = serializers.BooleanField(required=False)
    customPdfParse = serializers.BooleanField(required=False)
    # Commercial-only in FastGPT (and a no-op in its open build): accepted, kept, not acted on.
    autoIndexes = serializers.BooleanField(required=False)
    imageIndex = serializers.BooleanField(required=False)
    qaPrompt = serializers.CharField(max_length=10000, required=False, allow_blank=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=MAX_TAGS, required=False, default=list
    )
    createTime = serializers.DateTimeField(source="create_time", required=False, allow_null=True, default=None)
    metadata = serializers.DictField(required=False, default=dict)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        values.setdefault("parent_id", None)
        values["chunk_settings"] = {name: values.pop(name) for name in CHUNK_SETTING_FIELDS if name in values}
        return values

    def validate_metadata(self, value):
        selector = value.get("webPageSelector")
        if selector is not None and not isinstance(selector, str):
            raise serializers.ValidationError("webPageSelector must be a string (a CSS selector).")
        if len(json.dumps(value, default=str)) > 20000:
            raise serializers.ValidationError("metadata is too large (at most 20,000 characters of JSON).")
        return value


class CollectionCreateIn(serializers.Serializer):
    """An empty collection: a folder, or a `virtual` (manual) one filled through pushData."""

    datasetId = IdField(source="dataset_id")
    parentId = NullableParentId(source="parent_id")
    name = serializers.CharField(max_length=MAX_NAME_LENGTH)
    type = serializers.ChoiceField(choices=EMPTY_COLLECTION_TYPES, default="virtual")
    metadata = serializers.DictField(required=False, default=dict)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        values.setdefault("parent_id", None)
        return values


_SURROGATES = re.compile("[\ud800-\udfff]")


class LongTextField(serializers.CharField):
    """A CharField for megabytes of text. DRF's surrogate check walks the string in Python
    (measured: most of the CPU of a 5 MB create/text call); the same check as one regex."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitSurrogateCharactersValidator)]

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _SURROGATES.search(value):
            raise serializers.ValidationError("Surrogate characters are not allowed.")
        return value


class CollectionTextIn(CollectionCommonIn):
    name = serializers.CharField(max_length=MAX_NAME_LENGTH)
    text = LongTextField(trim_whitespace=False)

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("must be an http:// or https:// URL with a host.")
    return value


class CollectionLinkIn(CollectionCommonIn):
    link = serializers.CharField(max_length=2048, validators=[_http_url])
    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False, allow_blank=True, default="")


class CollectionFileIn(CollectionCommonIn):
    """The `data` part of create/localFile (a JSON string in the multipart body)."""

    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False, allow_blank=True, default="")


class CollectionListIn(OffsetPageIn):
    datasetId = IdField(source="dataset_id")
    parentId = NullableParentId(source="parent_id")


class CollectionLegacyListIn(PageNumIn):
    datasetId = IdField(source="dataset_id")
    parentId = NullableParentId(source="parent_id")


class CollectionUpdateIn(serializers.Serializer):
    """Identify by `id`, or by `datasetId` + `externalFileId`; absent fields stay as they are."""

    id = IdField(required=False)
    datasetId = IdField(source="dataset_id", required=False)
    externalFileId = serializers.CharField(source="external_file_id", max_length=200, required=False)
    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False)
    parentId = NullableParentId(source="parent_id")
    tags = serializers.ListField(child=serializers.CharField(max_length=100), max_length=MAX_TAGS, required=False)
    forbid = serializers.BooleanField(required=False)
    createTime = serializers.DateTimeField(source="create_time", required=False)

    def validate(self, attrs):
        if not attrs.get("id") and not (attrs.get("dataset_id") and attrs.get("external_file_id")):
            raise serializers.ValidationError({"id": "Give id, or datasetId and externalFileId."})
        return attrs


class CollectionDeleteIn(serializers.Serializer):
    collectionIds = serializers.ListField(
        source="collection_ids", child=IdField(), min_length=1, max_length=1000
    )


class CollectionPermissionOut(serializers.Serializer):
    value = serializers.IntegerField()
    isOwner = serializers.BooleanField()
    hasManagePer = serializers.BooleanField()
    hasWritePer = serializers.BooleanField()
    hasReadPer = serializers.BooleanField()


OWNER_PERMISSION = {
    "value": 4294967295, "isOwner": True, "hasManagePer": True, "hasWritePer": True, "hasReadPer": True,
}


class CollectionListItemOut(serializers.Serializer):
    """A list item; `dataAmount`/`trainingAmount` come annotated by the selector."""

    _id = serializers.CharField(source="id")
    parentId = serializers.CharField(source="parent_id", allow_null=True)
    teamId = serializers.CharField(source="team_id")
    tmbId = serializers.CharField(source="team_id")
    datasetId = serializers.CharField(source="dataset_id")
    type = serializers.CharField()
    name = serializers.CharField()
    rawLink = serializers.CharField(source="raw_link")
    fileName = serializers.CharField(source="file_name")
    externalFileId = serializers.CharField(source="external_file_id")
    tags = serializers.ListField(child=serializers.CharField())
    forbid = serializers.BooleanField()
    trainingType = serializers.CharField(source="training_type")
    createTime = serializers.DateTimeField(source="created_at")
    updateTime = serializers.DateTimeField(source="updated_at")
    dataAmount = serializers.IntegerField(source="data_amount")
    trainingAmount = serializers.IntegerField(source="training_amount")
    status = serializers.CharField(help_text="ready | training | error")
    hasError = serializers.SerializerMethodField()
    errorMsg = serializers.CharField(source="error_message")
    permission = serializers.SerializerMethodField()

    def get_hasError(self, obj) -> bool:
        return obj.status == "error"

    @extend_schema_field(CollectionPermissionOut)
    def get_permission(self, obj) -> dict:
        return OWNER_PERMISSION


class CollectionListOut(OffsetPageOut):
    list = CollectionListItemOut(many=True)


class CollectionLegacyListOut(LegacyPageOut):
    data = CollectionListItemOut(many=True)


class CollectionDatasetOut(serializers.Serializer):
    """The dataset as populated into a collection's detail (`datasetId`)."""

    _id = serializers.CharField(source="id")
    parentId = serializers.CharField(source="parent_id", allow_null=True)
    teamId = serializers.CharField(source="team_id")
    tmbId = serializers.CharField(source="team_id")
    type = serializers.CharField()
    status = serializers.CharField()
    avatar = serializers.CharField()
    name = serializers.CharField()
    intro = serializers.CharField()
    vectorModel = serializers.CharField(source="vector_model")
    agentModel = serializers.CharField(source="agent_model")
    permission = serializers.SerializerMethodField()
    updateTime = serializers.DateTimeField(source="updated_at")

    def get_permission(self, obj) -> str:
        return "private"


class CollectionDetailOut(CollectionListItemOut):
    datasetId = CollectionDatasetOut(source="dataset")
    chunkSettingMode = serializers.SerializerMethodField()
    chunkSplitMode = serializers.SerializerMethodField()
    chunkSize = serializers.SerializerMethodField()
    indexSize = serializers.SerializerMethodField()
    chunkSplitter = serializers.SerializerMethodField()
    qaPrompt = serializers.SerializerMethodField()
    rawTextLength = serializers.IntegerField(source="raw_text_length")
    hashRawText = serializers.CharField(source="raw_text_hash")
    fileSize = serializers.IntegerField(source="file_size", allow_null=True)
    fileType = serializers.CharField(source="file_type")
    metadata = serializers.DictField()
    canWrite = serializers.SerializerMethodField()
    sourceName = serializers.SerializerMethodField()

    def _setting(self, obj, name, default=None):
        return (obj.chunk_settings or {}).get(name, default)

    def get_chunkSettingMode(self, obj) -> str:
        return self._setting(obj, "chunkSettingMode", "auto")

    def get_chunkSplitMode(self, obj) -> str | None:
        return self._setting(obj, "chunkSplitMode")

    def get_chunkSize(self, obj) -> int | None:
        return self._setting(obj, "chunkSize")

    def get_indexSize(self, obj) -> int | None:
        return self._setting(obj, "indexSize")

    def get_chunkSplitter(self, obj) -> str:
        return self._setting(obj, "chunkSplitter", "")

    def get_qaPrompt(self, obj) -> str:
        return self._setting(obj, "qaPrompt", "")

    def get_canWrite(self, obj) -> bool:
        return True

    def get_sourceName(self, obj) -> str:
        return obj.file_name or obj.raw_link or obj.name


class CollectionCreatedOut(serializers.Serializer):
    collectionId = serializers.CharField()
    results = InsertResultsOut()
