"""FastGPT's chat paths: completions (OpenAI-compatible) and the chat-history endpoints."""

from django.urls import path

from chat.completions.views import chat_completions
from chat.history.views import ChatHistoryViewSet, ChatRecordViewSet, QuestionGuideViewSet


def alias(viewset, actions: dict):
    """An older path of an endpoint: same view, left out of the OpenAPI schema (which lists
    each operation once, under its newest path)."""
    return viewset.as_view(actions, schema=None)


histories = ChatHistoryViewSet
records = ChatRecordViewSet
guide = QuestionGuideViewSet

urlpatterns = [
    path("v1/chat/completions", chat_completions, name="chat-completions"),
    # History endpoints (newest paths first, older documented paths as aliases) follow.
    path("core/chat/history/getHistories", histories.as_view({"post": "list"})),
    path("core/chat/history/updateHistory", histories.as_view({"post": "update"})),
    path("core/chat/history/delHistory", histories.as_view({"delete": "destroy"})),
    path("core/chat/history/clearHistories", histories.as_view({"delete": "clear"})),
    path("core/chat/getHistories", alias(histories, {"post": "list"})),
    path("core/chat/updateHistory", alias(histories, {"post": "update"})),
    path("core/chat/delHistory", alias(histories, {"delete": "destroy"})),
    path("core/chat/clearHistories", alias(histories, {"delete": "clear"})),
    # Records of one conversation.
    path("core/chat/init", records.as_view({"get": "init"})),
    path("core/chat/getPaginationRecords", records.as_view({"post": "list"})),
    path("core/chat/record/getRecords_v2", records.as_view({"post": "cursor"})),
    path("core/chat/getRecords_v2", alias(records, {"post": "cursor"})),
    path("core/chat/getResData", records.as_view({"get": "res_data"})),
    path("core/chat/item/delete", records.as_view({"delete": "destroy"})),
    path("core/chat/feedback/updateUserFeedback", records.as_view({"post": "feedback"})),
    # Follow-up question suggestions.
    path("core/ai/agent/v2/createQuestionGuide", guide.as_view({"post": "create"})),
    path("core/ai/agent/createQuestionGuide", guide.as_view({"post": "create_from_messages"})),
]
