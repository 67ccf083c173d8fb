"""Input and output shapes of the dataset endpoints, in FastGPT's field names."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from providers.registry import UndeclaredModel, get_model, require_model
from datasets.models import Dataset, DatasetType
from datasets.serializers.common import NullableParentId


def _declared_model(model_type: str):
    def check(name: str) -> str:
        if name:
            try:
                require_model(name, model_type)
            except UndeclaredModel as exc:
                raise serializers.ValidationError(str(exc)) from None
        return name

    return check


class DatasetCreateIn(serializers.Serializer):
    parentId = NullableParentId(source="parent_id")
    type = serializers.ChoiceField(choices=DatasetType.choices, default=DatasetType.DATASET)
    name = serializers.CharField(max_length=100)
    intro = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    avatar = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    vectorModel = serializers.CharField(
        source="vector_model", required=False, allow_blank=True, default="",
        validators=[_declared_model("embedding")],
    )
    agentModel = serializers.CharField(
        source="agent_model", required=False, allow_blank=True, default="",
        validators=[_declared_model("llm")],
    )
    vlmModel = serializers.CharField(
        source="vlm_model", required=False, allow_blank=True, default="",
        validators=[_declared_model("llm")],
    )

    def to_internal_value(self, data):
        # parentId absent must mean the root even though DRF skips absent fields.
        values = super().to_internal_value(data)
        values.setdefault("parent_id", None)
        return values


class DatasetListIn(serializers.Serializer):
    parentId = NullableParentId(source="parent_id")


class VectorModelOut(serializers.Serializer):
    model = serializers.CharField()
    name = serializers.CharField()
    charsPointsPrice = serializers.IntegerField()
    defaultToken = serializers.IntegerField()
    maxToken = serializers.IntegerField()
    weight = serializers.IntegerField()


class AgentModelOut(serializers.Serializer):
    model = serializers.CharField()
    name = serializers.CharField()
    maxContext = serializers.IntegerField()
    maxResponse = serializers.IntegerField()
    charsPointsPrice = serializers.IntegerField()


def vector_model_info(name: str) -> dict:
    model = get_model(name)
    max_tokens = model.max_context if model else 512
    return {
        "model": name,
        "name": name,
        "charsPointsPrice": 0,
        "defaultToken": min(512, max_tokens),
        "maxToken": max_tokens,
        "weight": 100,
    }


def agent_model_info(name: str) -> dict:
    model = get_model(name)
    return {
        "model": name,
        "name": name,
        "maxContext": model.max_context if model else 0,
        "maxResponse": model.max_response if model else 0,
        "charsPointsPrice": 0,
    }


class DatasetListItemOut(serializers.ModelSerializer):
    _id = serializers.CharField(source="id")
    parentId = serializers.CharField(source="parent_id", allow_null=True)
    # A plain string in the schema: the input's enum stays the only `type` choice set of
    # datasets, so the schema's enum names resolve without a collision.
    type = serializers.CharField(help_text="dataset | folder")
    permission = serializers.SerializerMethodField()
    canWrite = serializers.SerializerMethodField()
    isOwner = serializers.SerializerMethodField()
    vectorModel = serializers.SerializerMethodField()
    updateTime = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Dataset
        fields = [
            "_id", "parentId", "avatar", "name", "intro", "type", "permission", "canWrite",
            "isOwner", "vectorModel", "updateTime",
        ]

    def get_permission(self, obj) -> str:
        return "private"

    def get_canWrite(self, obj) -> bool:
        return True

    def get_isOwner(self, obj) -> bool:
        return True

    @extend_schema_field(VectorModelOut)
    def get_vectorModel(self, obj) -> dict:
        return vector_model_info(obj.vector_model)


class DatasetDetailOut(DatasetListItemOut):
    teamId = serializers.CharField(source="team_id")
    tmbId = serializers.CharField(source="team_id")
    agentModel = serializers.SerializerMethodField()
    vlmModel = serializers.CharField(source="vlm_model")

    class Meta(DatasetListItemOut.Meta):
        fields = DatasetListItemOut.Meta.fields + [
            "teamId", "tmbId", "status", "agentModel", "vlmModel",
        ]

    @extend_schema_field(AgentModelOut)
    def get_agentModel(self, obj) -> dict:
        return agent_model_info(obj.agent_model)
