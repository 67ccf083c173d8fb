"""The chat body's hot-path validation gives exactly what DRF's serializer gives."""

import pytest

from chat.completions.serializers import ChatCompletionIn, _plain_request, validated_chat_request
from config.errors import BadRequest
from config.validation import validated

USER = {"role": "user", "content": "hi"}

BODIES = [
    {"messages": [USER]},
    {"messages": [USER], "stream": True, "detail": False, "chatId": "c1", "variables": {"a": 1}},
    {"messages": [{"role": "system", "content": "be brief"}, USER], "metadata": {"k": "v"}, "customUid": ""},
    {"messages": [USER], "appId": None, "chatId": "", "responseChatItemId": "r1", "stream_options": None},
    {"messages": [USER], "stream_options": {"include_usage": True}, "model": "gpt-4o", "temperature": 0.2},
    {"messages": [USER], "stream_options": {}},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"},
                                               {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
    {"messages": [{"role": "assistant", "content": None}, {"role": "user", "content": "q", "dataId": "d1", "x": 1}]},
    # Values DRF coerces or refuses: the serializer decides them.
    {"messages": [USER], "stream": "true"},
    {"messages": [USER], "detail": 1},
    {"messages": [USER], "chatId": "  padded  "},
    {"messages": [USER], "chatId": 12},
    {"messages": [USER], "chatId": "   "},
    {"messages": [USER], "chatId": "x" * 251},
    {"messages": [USER], "appId": "a" * 25},
    {"messages": [USER], "responseChatItemId": "y" * 65},
    {"messages": [USER], "variables": [1]},
    {"messages": [USER], "variables": None},
    {"messages": [USER], "metadata": "m"},
    {"messages": [USER], "stream_options": {"include_usage": "yes"}},
    {"messages": [USER], "stream_options": 3},
    {"messages": [{"role": "user", "content": "q", "dataId": ""}]},
    {"messages": [{"role": "user", "content": "q", "dataId": " d "}]},
    {"messages": [{"role": "user", "content": "q", "dataId": "z" * 65}]},
    {"messages": [{"role": "user", "content": "q", "dataId": 7}]},
    {},
    {"messages": []},
    {"messages": "hi"},
    {"messages": [None]},
    {"messages": [{"role": "user"}]},
    {"messages": [{"role": "user", "content": "   "}]},
    {"messages": [{"role": "user", "content": []}]},
    {"messages": [{"role": "assistant", "content": "hi"}]},
    {"messages": [{"role": "wizard", "content": "hi"}]},
    {"messages": [{"role": 5, "content": "hi"}]},
    {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "user", "content": [{"type": "audio"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
]


def outcome(function, body):
    try:
        return "ok", function(body)
    except BadRequest as exc:
        return "400", str(exc.detail), exc.data if hasattr(exc, "data") else None


@pytest.mark.parametrize("body", BODIES)
def test_same_data_and_same_400_as_the_serializer(body):
    assert outcome(validated_chat_request, body) == outcome(lambda b: validated(ChatCompletionIn, b), body)


def test_the_usual_requests_skip_the_serializer():
    assert _plain_request(BODIES[0]) is not None
    assert _plain_request(BODIES[1]) is not None
    assert _plain_request({"messages": [USER], "stream": "true"}) is None
