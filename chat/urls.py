"""FastGPT's chat paths: completions (OpenAI-compatible) and the chat-history endpoints."""

from django.urls import path

from chat.completions import chat_completions

urlpatterns = [
    path("v1/chat/completions", chat_completions, name="chat-completions"),
    # History endpoints (newest paths first, older documented paths as aliases) follow.
]
