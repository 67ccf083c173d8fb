"""Input and output shapes of the data (chunk) endpoints, in FastGPT's field names."""

from rest_framework import serializers

from datasets.serializers.collections import TRAINING_TYPES
from datasets.serializers.results import InsertResultsOut
from datasets.serializers.common import IdField, LegacyPageOut, OffsetPageIn, OffsetPageOut, PageNumIn

MAX_PUSH_ITEMS = 200
MAX_CUSTOM_INDEXES = 5
INDEX_TYPES = ("default", "custom", "summary", "question", "image")


class IndexIn(serializers.Serializer):
    """An index as sent: a missing type is `custom`; `dataId` names an existing index to keep."""

    type = serializers.ChoiceField(choices=INDEX_TYPES, default="custom")
    dataId = IdField(required=False, allow_blank=True, allow_null=True)
    text = serializers.CharField(trim_whitespace=False)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        if not values.get("dataId"):
            values.pop("dataId", None)
        return dict(values)


def _check_custom_count(indexes: list[dict]) -> list[dict]:
    custom = sum(1 for index in indexes if index["type"] == "custom")
    if custom > MAX_CUSTOM_INDEXES:
        raise serializers.ValidationError(f"At most {MAX_CUSTOM_INDEXES} custom indexes per item; got {custom}.")
    return indexes


class PushItemIn(serializers.Serializer):
    # Blank q is allowed here: pushData skips such items and says why, rather than failing all.
    q = serializers.CharField(allow_blank=True, trim_whitespace=False)
    a = serializers.CharField(allow_blank=True, trim_whitespace=False, required=False, default="")
    indexes = serializers.ListField(child=IndexIn(), required=False, default=list, allow_null=True)
    chunkIndex = serializers.IntegerField(source="chunk_index", min_value=0, required=False, default=0)

    def validate_indexes(self, value):
        return _check_custom_count(value or [])


class PushDataIn(serializers.Serializer):
    collectionId = IdField(source="collection_id")
    trainingType = serializers.ChoiceField(
        source="training_type", choices=TRAINING_TYPES, required=False, default="chunk"
    )
    # FastGPT's older name of trainingType (a plain string here, so the schema has one enum).
    mode = serializers.CharField(required=False, write_only=True, help_text="Older name of trainingType")
    prompt = serializers.CharField(max_length=10000, required=False, allow_blank=True, default="")
    billId = IdField(source="bill_id", required=False, allow_blank=True, allow_null=True, default=None)
    data = serializers.ListField(child=PushItemIn(), min_length=1, max_length=MAX_PUSH_ITEMS)

    def validate_mode(self, value: str) -> str:
        if value not in TRAINING_TYPES:
            raise serializers.ValidationError(f'"{value}" is not a valid choice ({", ".join(TRAINING_TYPES)}).')
        return value

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        mode = values.pop("mode", None)
        if mode and "trainingType" not in data:
            values["training_type"] = mode
        values["bill_id"] = values.get("bill_id") or None
        return values


class DataListIn(OffsetPageIn):
    collectionId = IdField(source="collection_id")


class DataLegacyListIn(PageNumIn):
    collectionId = IdField(source="collection_id")


class DataUpdateIn(serializers.Serializer):
    dataId = IdField(source="data_id")
    q = serializers.CharField(required=False, trim_whitespace=False)
    a = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    indexes = serializers.ListField(child=IndexIn(), required=False)

    def validate_indexes(self, value):
        return _check_custom_count(value)


class DataListItemOut(serializers.Serializer):
    _id = serializers.CharField(source="id")
    id = serializers.CharField()
    teamId = serializers.CharField(source="team_id")
    datasetId = serializers.CharField(source="dataset_id")
    collectionId = serializers.CharField(source="collection_id")
    q = serializers.CharField()
    a = serializers.CharField()
    chunkIndex = serializers.IntegerField(source="chunk_index")
    updateTime = serializers.DateTimeField(source="updated_at")
    trainingState = serializers.CharField(source="training_state", help_text="pending | ready | error")


class DataListOut(OffsetPageOut):
    list = DataListItemOut(many=True)


class DataLegacyListOut(LegacyPageOut):
    data = DataListItemOut(many=True)


class IndexOut(serializers.Serializer):
    _id = serializers.CharField(source="id")
    dataId = serializers.CharField(source="id")
    type = serializers.CharField()
    defaultIndex = serializers.SerializerMethodField()
    text = serializers.CharField()

    def get_defaultIndex(self, obj) -> bool:
        return obj.type == "default"


class DataDetailOut(DataListItemOut):
    indexes = IndexOut(many=True, source="indexes.all")
    sourceName = serializers.SerializerMethodField()
    sourceId = serializers.SerializerMethodField()
    trainError = serializers.CharField(source="train_error")
    isOwner = serializers.SerializerMethodField()
    canWrite = serializers.SerializerMethodField()

    def get_sourceName(self, obj) -> str:
        collection = obj.collection
        return collection.file_name or collection.raw_link or collection.name

    def get_sourceId(self, obj) -> str:
        return obj.collection.raw_link or obj.collection_id

    def get_isOwner(self, obj) -> bool:
        return True

    def get_canWrite(self, obj) -> bool:
        return True


class PushDataOut(InsertResultsOut):
    """pushData's answer: `insertLen` and the skipped items (FastGPT's older docs' arrays)."""
