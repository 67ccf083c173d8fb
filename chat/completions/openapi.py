"""The chat-completions path in the OpenAPI schema.

The endpoint is a plain async view (see chat/completions/views.py), which drf-spectacular cannot
inspect, so its description is added by this post-processing hook.
"""

from drf_spectacular.plumbing import build_array_type, build_basic_type, build_object_type
from drf_spectacular.types import OpenApiTypes

_TEXT = build_basic_type(OpenApiTypes.STR)
_BOOL = build_basic_type(OpenApiTypes.BOOL)
_INT = build_basic_type(OpenApiTypes.INT)
_OBJECT = build_basic_type(OpenApiTypes.OBJECT)

_MESSAGE = build_object_type(
    properties={
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "content": {
            "oneOf": [_TEXT, build_array_type(_OBJECT)],
            "description": "Text, or OpenAI content parts: text, image_url, file_url.",
        },
    },
    required=["role"],
)

REQUEST = build_object_type(
    properties={
        "messages": build_array_type(_MESSAGE),
        "chatId": {**_TEXT, "description": "Server-side history key; omit to send the whole context."},
        "appId": {**_TEXT, "description": "With a global key: an app of your team."},
        "stream": _BOOL,
        "detail": {**_BOOL, "description": "Add responseData, or FastGPT's named SSE events."},
        "responseChatItemId": {**_TEXT, "description": "The id to give this turn's AI record."},
        "variables": _OBJECT,
        "customUid": {**_TEXT, "description": "Your end user's id, stored and filterable."},
        "stream_options": build_object_type(properties={"include_usage": _BOOL}),
    },
    required=["messages"],
)

_USAGE = build_object_type(
    properties={"prompt_tokens": _INT, "completion_tokens": _INT, "total_tokens": _INT}
)
RESPONSE = build_object_type(
    properties={
        "id": {**_TEXT, "description": "The chat id."},
        "object": _TEXT,
        "created": _INT,
        "model": _TEXT,
        "responseChatItemId": _TEXT,
        "usage": _USAGE,
        "choices": build_array_type(_OBJECT),
        "responseData": {
            **build_array_type(_OBJECT),
            "description": "With detail: the run's node records — a datasetSearchNode (quoteList…) "
            "first for an app with datasets, then the chatNode.",
        },
        "newVariables": _OBJECT,
    }
)
# One server-sent event of a stream (the schema of each event, as OpenAPI tools read it).
SSE_EVENT = build_object_type(
    properties={
        "event": {**_TEXT, "description": "With detail: FastGPT's event name (answer, flowResponses…)."},
        "data": {**_TEXT, "description": "A chat.completion.chunk as JSON, then [DONE]."},
    },
    required=["data"],
)
ERROR = build_object_type(
    properties={
        "code": _INT, "statusText": _TEXT, "message": _TEXT,
        "data": {"nullable": True, "description": "null, or the validation detail"},
        "error": _OBJECT,
    }
)

# Works as sent with an app key (a global key also needs `appId`).
EXAMPLES = {
    "question": {
        "summary": "one question, answered whole",
        "value": {"messages": [{"role": "user", "content": "Hello!"}], "stream": False},
    },
}


def add_chat_completions(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    errors = {
        status: {"description": text, "content": {"application/json": {"schema": ERROR}}}
        for status, text in [
            ("400", "Bad request"), ("401", "Missing or invalid key"), ("402", "Usage cap reached"),
            ("403", "Key outside its scope"), ("404", "App not found"), ("429", "Rate limited"),
            ("502", "Model provider (or the dataset search's embedding) failed"),
            ("503", "Database unavailable for a moment (see Retry-After)"),
            ("504", "Model provider (or the dataset search's embedding) timed out"),
        ]
    }
    result["paths"]["/api/v1/chat/completions"] = {
        "post": {
            "operationId": "chat_completions",
            "summary": "OpenAI-compatible chat with server-side history",
            "tags": ["chat"],
            "security": [{"ApiKeyAuth": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": REQUEST, "examples": EXAMPLES}},
            },
            "responses": {
                "200": {
                    "description": "chat.completion, or text/event-stream when `stream` is true",
                    "content": {
                        "application/json": {"schema": RESPONSE},
                        "text/event-stream": {"schema": SSE_EVENT},
                    },
                },
                **errors,
            },
        }
    }
    return result
