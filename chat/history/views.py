"""Chat-history endpoints (any key; an app key only for its own app), mapped in chat/urls.py.

Three resources: conversations (`ChatHistoryViewSet`), the records inside one conversation
(`ChatRecordViewSet`: init, pages, run data, delete, feedback) and follow-up question
suggestions (`QuestionGuideViewSet`). Each action validates its input, calls one selector or
service with the caller's key, and answers the envelope.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets

from chat import selectors
from chat.history import question_guide, selectors as history, services
from chat.history.selectors import HistoryFilters
from chat.history.serializers import (
    AppChatQuery,
    AppQuery,
    FeedbackIn,
    HistoryListIn,
    HistoryListOut,
    HistoryUpdateIn,
    InitOut,
    InitQuery,
    LegacyQuestionGuideIn,
    QuestionGuideIn,
    RecordDeleteQuery,
    RecordPageOut,
    RecordsIn,
    RecordWindowOut,
    ResDataQuery,
)
from config.envelope import ok
from config.validation import validated
from keys.permissions import HasApiKey

APP_ID = OpenApiParameter("appId", str, required=True, description="App id")
CHAT_ID = OpenApiParameter("chatId", str, required=True, description="Conversation id")
TAG = ["chat history"]


class ChatHistoryViewSet(viewsets.ViewSet):
    """Conversations of an app: list, rename/pin, delete one, clear the API-created ones."""

    permission_classes = [HasApiKey]

    @extend_schema(
        operation_id="chat_history_list",
        tags=TAG,
        request=HistoryListIn,
        responses=HistoryListOut,
    )
    def list(self, request):
        data = validated(HistoryListIn, request.data)
        app = selectors.app_for_key(auth=request.auth, app_id=data["app_id"])
        filters = HistoryFilters(
            source=data.get("source"),
            custom_uid=data.get("custom_uid"),
            updated_from=data.get("updated_from"),
            updated_to=data.get("updated_to"),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
        )
        chats, total = history.history_page(
            app=app, filters=filters, offset=data["offset"], page_size=data["page_size"]
        )
        return ok(HistoryListOut({"list": chats, "total": total}).data)

    @extend_schema(
        operation_id="chat_history_update", tags=TAG, request=HistoryUpdateIn, responses=None
    )
    def update(self, request):
        data = validated(HistoryUpdateIn, request.data)
        services.update_history(auth=request.auth, **data)
        return ok(None)

    @extend_schema(
        operation_id="chat_history_delete", tags=TAG, parameters=[APP_ID, CHAT_ID], responses=None
    )
    def destroy(self, request):
        data = validated(AppChatQuery, request.query_params)
        services.delete_history(auth=request.auth, **data)
        return ok(None)

    @extend_schema(
        operation_id="chat_history_clear",
        tags=TAG,
        parameters=[APP_ID],
        responses=None,
        description="Deletes the app's conversations created through the API (source `api`) only.",
    )
    def clear(self, request):
        data = validated(AppQuery, request.query_params)
        services.clear_api_histories(auth=request.auth, **data)
        return ok(None)


class ChatRecordViewSet(viewsets.ViewSet):
    """One conversation: its init data, its records (offset or cursor pages), a record's run
    data, deleting a record, and the end user's feedback on an answer."""

    permission_classes = [HasApiKey]

    @extend_schema(
        operation_id="chat_init",
        tags=TAG,
        parameters=[APP_ID, OpenApiParameter("chatId", str, description="Conversation id; may be new")],
        responses=InitOut,
    )
    def init(self, request):
        data = validated(InitQuery, request.query_params)
        init = history.chat_init(auth=request.auth, app_id=data["app_id"], chat_id=data.get("chat_id") or "")
        return ok(InitOut(init).data)

    @extend_schema(
        operation_id="chat_records_page",
        tags=TAG,
        request=RecordsIn,
        responses=RecordWindowOut,
        description=(
            "Offset paging counts back from the newest record (offset 0 = the latest page); "
            "each page is oldest first. With initialId/prevId/nextId the answer is a cursor "
            "page and also carries hasMorePrev/hasMoreNext."
        ),
    )
    def list(self, request):
        data = validated(RecordsIn, request.data)
        if data["cursor"]:
            return self._cursor_page(request, data)
        chat = selectors.chat_for_key(auth=request.auth, app_id=data["app_id"], chat_id=data["chat_id"])
        items, total = history.record_page(chat=chat, offset=data["offset"], page_size=data["page_size"])
        return ok(RecordPageOut({"list": items, "total": total}).data)

    @extend_schema(
        operation_id="chat_records_cursor",
        tags=TAG,
        request=RecordsIn,
        responses=RecordWindowOut,
        description="FastGPT's getRecords_v2: cursor pages by record dataId.",
    )
    def cursor(self, request):
        return self._cursor_page(request, validated(RecordsIn, request.data))

    def _cursor_page(self, request, data):
        chat = selectors.chat_for_key(auth=request.auth, app_id=data["app_id"], chat_id=data["chat_id"])
        window = history.record_window(
            chat=chat,
            page_size=data["page_size"],
            initial_id=data.get("initial_id"),
            prev_id=data.get("prev_id"),
            next_id=data.get("next_id"),
        )
        return ok(
            RecordWindowOut(
                {
                    "list": window.items,
                    "total": window.total,
                    "hasMorePrev": window.has_more_prev,
                    "hasMoreNext": window.has_more_next,
                }
            ).data
        )

    @extend_schema(
        operation_id="chat_record_response_data",
        tags=TAG,
        parameters=[APP_ID, CHAT_ID, OpenApiParameter("dataId", str, required=True, description="Record id")],
        responses=serializers.ListField(child=serializers.DictField()),
    )
    def res_data(self, request):
        data = validated(ResDataQuery, request.query_params)
        chat = selectors.chat_for_key(auth=request.auth, app_id=data["app_id"], chat_id=data["chat_id"])
        return ok(history.record_in_chat(chat=chat, data_id=data["data_id"]).response_data)

    @extend_schema(
        operation_id="chat_record_delete",
        tags=TAG,
        parameters=[APP_ID, CHAT_ID, OpenApiParameter("contentId", str, required=True, description="Record id")],
        responses=None,
    )
    def destroy(self, request):
        data = validated(RecordDeleteQuery, request.query_params)
        services.delete_record(auth=request.auth, **data)
        return ok(None)

    @extend_schema(
        operation_id="chat_record_feedback",
        tags=TAG,
        request=FeedbackIn,
        responses=None,
        description="Omitting userGoodFeedback or userBadFeedback clears it.",
    )
    def feedback(self, request):
        data = validated(FeedbackIn, request.data)
        services.set_user_feedback(auth=request.auth, **data)
        return ok(None)


QUESTIONS = serializers.ListField(child=serializers.CharField())


class QuestionGuideViewSet(viewsets.ViewSet):
    """Up to 3 follow-up questions suggested by the app's model."""

    permission_classes = [HasApiKey]

    @extend_schema(operation_id="question_guide_create", tags=TAG, request=QuestionGuideIn, responses=QUESTIONS)
    def create(self, request):
        data = validated(QuestionGuideIn, request.data)
        config = data.get("question_guide") or {}
        questions = question_guide.create_question_guide(
            auth=request.auth,
            app_id=data["app_id"],
            chat_id=data["chat_id"],
            model_name=config.get("model") or None,
            custom_prompt=config.get("custom_prompt") or None,
        )
        return ok(questions)

    @extend_schema(
        operation_id="question_guide_create_from_messages",
        tags=TAG,
        request=LegacyQuestionGuideIn,
        responses=QUESTIONS,
        description="The older endpoint: the conversation is sent as `messages`.",
    )
    def create_from_messages(self, request):
        data = validated(LegacyQuestionGuideIn, request.data)
        questions = question_guide.create_question_guide_from_messages(
            auth=request.auth, app_id=data.get("app_id") or None, messages=data["messages"]
        )
        return ok(questions)
