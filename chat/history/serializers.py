"""Input and output shapes of the chat-history endpoints, in FastGPT's field names.

Inputs only check types and ranges (a bad one is a 400 naming the field); finding and
scoping the app/chat is the selectors' job. Outputs turn rows into FastGPT's JSON.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chat.models import ChatRole, ChatSource
from chat.run_records import run_summary
from chat.value_parts import text_of

# Page-size caps: FastGPT caps dataset lists at 30 and documents none for chat lists; 100 is
# a screenful of conversations and keeps one answer small.
HISTORY_PAGE_MAX = 100
HISTORY_PAGE_DEFAULT = 20
RECORD_PAGE_MAX = 100
RECORD_PAGE_DEFAULT = 20

ID_MAX = 64  # app ids are 24 characters; anything much longer is not an id
CHAT_ID_MAX = 250  # FastGPT: "chatId … < 250 characters"


def app_id_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(source="app_id", max_length=ID_MAX, **kwargs)


def chat_id_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(source="chat_id", max_length=CHAT_ID_MAX, **kwargs)


def data_id_field(source: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(source=source, max_length=ID_MAX, **kwargs)


OFFSET_MAX = 2**31 - 1  # no page lies that far; beyond 2^63 the database itself fails


class OffsetPageIn(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, max_value=OFFSET_MAX, default=0)


# --- histories ------------------------------------------------------------------------------


class HistoryListIn(OffsetPageIn):
    appId = app_id_field()
    pageSize = serializers.IntegerField(
        source="page_size", min_value=1, max_value=HISTORY_PAGE_MAX, default=HISTORY_PAGE_DEFAULT
    )
    source = serializers.ChoiceField(choices=ChatSource.choices, required=False, allow_null=True)
    customUid = serializers.CharField(
        source="custom_uid", max_length=255, required=False, allow_null=True, allow_blank=True,
        help_text='Only this end user\'s chats; "" lists chats without a customUid.',
    )
    startTime = serializers.DateTimeField(source="updated_from", required=False, allow_null=True)
    endTime = serializers.DateTimeField(source="updated_to", required=False, allow_null=True)
    # FastGPT's own names for the same update-time range, and its creation-time range.
    startUpdateTime = serializers.DateTimeField(required=False, allow_null=True)
    endUpdateTime = serializers.DateTimeField(required=False, allow_null=True)
    startCreateTime = serializers.DateTimeField(source="created_from", required=False, allow_null=True)
    endCreateTime = serializers.DateTimeField(source="created_to", required=False, allow_null=True)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        # startUpdateTime/endUpdateTime are FastGPT's spelling of startTime/endTime.
        for alias, name in (("startUpdateTime", "updated_from"), ("endUpdateTime", "updated_to")):
            alias_value = values.pop(alias, None)
            if values.get(name) is None:
                values[name] = alias_value
        return values


class HistoryItemOut(serializers.Serializer):
    chatId = serializers.CharField(source="chat_id")
    updateTime = serializers.DateTimeField(source="updated_at")
    appId = serializers.CharField(source="app_id")
    customTitle = serializers.CharField(source="custom_title")
    title = serializers.CharField()
    top = serializers.BooleanField()
    customUid = serializers.CharField(source="custom_uid")
    source = serializers.CharField()


class HistoryListOut(serializers.Serializer):
    list = HistoryItemOut(many=True)
    total = serializers.IntegerField()


class HistoryUpdateIn(serializers.Serializer):
    appId = app_id_field()
    chatId = chat_id_field()
    customTitle = serializers.CharField(
        source="custom_title", max_length=200, required=False, allow_blank=True
    )
    top = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if "custom_title" not in attrs and "top" not in attrs:
            raise serializers.ValidationError("Send customTitle and/or top.")
        return attrs


class AppQuery(serializers.Serializer):
    """`?appId=`"""

    appId = app_id_field()


class AppChatQuery(AppQuery):
    """`?appId=&chatId=`"""

    chatId = chat_id_field()


class InitQuery(AppQuery):
    """`?appId=&chatId=`; chatId may be absent or new (then there are no variables yet)."""

    chatId = chat_id_field(required=False, allow_blank=True)


# --- records --------------------------------------------------------------------------------


class RecordsIn(OffsetPageIn):
    """getPaginationRecords / getRecords_v2. A cursor (one of initialId, prevId, nextId)
    switches to cursor paging; `offset` then must stay 0."""

    appId = app_id_field()
    chatId = chat_id_field()
    pageSize = serializers.IntegerField(
        source="page_size", min_value=1, max_value=RECORD_PAGE_MAX, default=RECORD_PAGE_DEFAULT
    )
    initialId = data_id_field("initial_id", required=False, allow_null=True)
    prevId = data_id_field("prev_id", required=False, allow_null=True)
    nextId = data_id_field("next_id", required=False, allow_null=True)
    # Accepted for compatibility; custom feedbacks are always sent (as []).
    loadCustomFeedbacks = serializers.BooleanField(required=False)
    type = serializers.CharField(required=False, max_length=20)

    def validate(self, attrs):
        cursors = [name for name in ("initial_id", "prev_id", "next_id") if attrs.get(name)]
        if len(cursors) > 1:
            raise serializers.ValidationError("Send at most one of initialId, prevId, nextId.")
        if cursors and attrs["offset"]:
            raise serializers.ValidationError("offset: use either offset or a cursor (initialId/prevId/nextId).")
        attrs["cursor"] = bool(cursors)
        return attrs


class ResDataQuery(AppChatQuery):
    dataId = data_id_field("data_id")


class RecordDeleteQuery(AppChatQuery):
    contentId = data_id_field("data_id", help_text="The record's dataId.")


class FeedbackIn(serializers.Serializer):
    appId = app_id_field()
    chatId = chat_id_field()
    dataId = data_id_field("data_id", required=False)
    chatItemId = data_id_field("chat_item_id", required=False, help_text="Older name of dataId.")
    userGoodFeedback = serializers.CharField(
        source="good", max_length=5000, required=False, allow_null=True, allow_blank=True
    )
    userBadFeedback = serializers.CharField(
        source="bad", max_length=5000, required=False, allow_null=True, allow_blank=True
    )

    def validate(self, attrs):
        # Pop both (dataId wins): a leftover chatItemId would reach the service.
        data_id, chat_item_id = attrs.pop("data_id", None), attrs.pop("chat_item_id", None)
        data_id = data_id or chat_item_id
        if not data_id:
            raise serializers.ValidationError({"dataId": ["This field is required."]})
        # Omitted means "clear it", as in FastGPT.
        return {**attrs, "data_id": data_id, "good": attrs.get("good"), "bad": attrs.get("bad")}


class QuoteOut(serializers.Serializer):
    id = serializers.CharField(required=False)
    q = serializers.CharField(required=False)
    a = serializers.CharField(required=False)
    datasetId = serializers.CharField(required=False)
    collectionId = serializers.CharField(required=False)
    sourceName = serializers.CharField(required=False)
    sourceId = serializers.CharField(required=False)
    score = serializers.JSONField(required=False)


@extend_schema_field(QuoteOut(many=True))
class QuoteListField(serializers.ListField):
    """Quotes sent whole, as the dataset search stored them (QuoteOut documents the usual keys)."""

    child = serializers.DictField()


class RecordOut(serializers.Serializer):
    """A Human or AI record as getPaginationRecords shows it.

    AI-only fields are left out of Human records, and optional ones (duration, feedback,
    error, interrupted) whenever they are empty.
    """

    _id = serializers.CharField(source="pk")
    id = serializers.CharField(source="data_id", help_text="The dataId again (getRecords_v2's name).")
    dataId = serializers.CharField(source="data_id")
    obj = serializers.ChoiceField(choices=ChatRole.choices)
    value = serializers.JSONField()
    customFeedbacks = serializers.SerializerMethodField()
    time = serializers.DateTimeField()
    durationSeconds = serializers.FloatField(source="duration_seconds", required=False)
    userGoodFeedback = serializers.CharField(source="user_good_feedback", required=False)
    userBadFeedback = serializers.CharField(source="user_bad_feedback", required=False)
    errorMsg = serializers.CharField(source="error_msg", required=False)
    interrupted = serializers.BooleanField(required=False)
    totalQuoteList = QuoteListField(source="summary.quotes", required=False)
    totalRunningTime = serializers.FloatField(source="summary.running_time", required=False)
    llmModuleAccount = serializers.IntegerField(source="summary.llm_node_count", required=False)
    historyPreviewLength = serializers.IntegerField(
        source="summary.history_preview_length", required=False
    )

    AI_ONLY = (
        "userGoodFeedback", "userBadFeedback", "errorMsg", "interrupted", "totalQuoteList",
        "totalRunningTime", "llmModuleAccount", "historyPreviewLength",
    )
    # Optional fields and the values that mean "nothing to say".
    EMPTY = {
        "durationSeconds": None, "userGoodFeedback": None, "userBadFeedback": None,
        "historyPreviewLength": None, "errorMsg": "", "interrupted": False,
    }

    def get_customFeedbacks(self, obj) -> list[str]:
        return []

    def to_representation(self, instance):
        # Totals of the run, read from response_data (a question has no run).
        instance.summary = run_summary(instance.response_data if instance.obj == ChatRole.AI else [])
        data = super().to_representation(instance)
        dropped = {name for name, empty in self.EMPTY.items() if data.get(name) == empty}
        if instance.obj != ChatRole.AI:
            dropped.update(self.AI_ONLY)
        return {name: value for name, value in data.items() if name not in dropped}


class RecordPageOut(serializers.Serializer):
    list = RecordOut(many=True)
    total = serializers.IntegerField()


class RecordWindowOut(RecordPageOut):
    hasMorePrev = serializers.BooleanField()
    hasMoreNext = serializers.BooleanField()


# --- init -----------------------------------------------------------------------------------


class InitAppOut(serializers.Serializer):
    """The app's public chat config. This server has no TTS, speech input, input guide or file
    upload, so those are reported switched off; `variables` lists no declared variables."""

    chatConfig = serializers.SerializerMethodField()
    chatModels = serializers.SerializerMethodField()
    name = serializers.CharField(source="app.name")
    avatar = serializers.CharField(source="app.avatar")
    intro = serializers.CharField(source="app.intro")
    type = serializers.SerializerMethodField()
    pluginInputs = serializers.SerializerMethodField()

    @extend_schema_field({"type": "object"})
    def get_chatConfig(self, init) -> dict:
        return {
            "welcomeText": init.app.welcome_text,
            "variables": [],
            "questionGuide": False,
            "ttsConfig": {"type": "none"},
            "whisperConfig": {"open": False, "autoSend": False, "autoTTSResponse": False},
            "chatInputGuide": {"open": False, "textList": [], "customUrl": ""},
            "instruction": "",
            "fileSelectConfig": {"canSelectFile": False, "canSelectImg": False, "maxFiles": 0},
            "_id": init.app.pk,
        }

    def get_chatModels(self, init) -> list[str]:
        return [init.model_name]

    def get_type(self, init) -> str:
        return "simple"

    def get_pluginInputs(self, init) -> list[dict]:
        return []


class InitOut(serializers.Serializer):
    """`GET /core/chat/init`: the conversation's title and variables, and the app's config."""

    chatId = serializers.CharField(source="chat_id")
    appId = serializers.CharField(source="app.pk")
    title = serializers.SerializerMethodField()
    userAvatar = serializers.SerializerMethodField()
    variables = serializers.SerializerMethodField()
    app = InitAppOut(source="*")

    def get_title(self, init) -> str:
        return (init.chat.custom_title or init.chat.title) if init.chat else ""

    def get_userAvatar(self, init) -> str:
        return ""

    @extend_schema_field({"type": "object"})
    def get_variables(self, init) -> dict:
        return init.chat.variables if init.chat else {}


# --- question guide -------------------------------------------------------------------------


class QuestionGuideConfigIn(serializers.Serializer):
    open = serializers.BooleanField(required=False, help_text="Accepted and ignored, as in FastGPT.")
    model = serializers.CharField(required=False, allow_blank=True, max_length=100)
    customPrompt = serializers.CharField(
        source="custom_prompt", required=False, allow_blank=True, max_length=5000
    )


class QuestionGuideIn(serializers.Serializer):
    appId = app_id_field()
    chatId = chat_id_field()
    questionGuide = QuestionGuideConfigIn(source="question_guide", required=False, allow_null=True)


class MessageIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.JSONField(help_text="A string, or OpenAI content parts.")

    def validate_content(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return text_of(value)  # the text parts: the guide reads words, not images
        raise serializers.ValidationError("Must be a string or a list of content parts.")


class LegacyQuestionGuideIn(serializers.Serializer):
    """The older `/core/ai/agent/createQuestionGuide`: the conversation comes in the body."""

    messages = MessageIn(many=True, allow_empty=False, max_length=200)
    appId = app_id_field(required=False, allow_blank=True)
