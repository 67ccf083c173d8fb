"""The chat-completion request: OpenAI's body plus FastGPT's fields, validated.

OpenAI fields the app decides itself (`model`, `temperature`, `max_tokens`, …) are accepted and
ignored, so that stock SDK calls pass.
"""

from rest_framework import serializers

from config.validation import validated

ROLES = ("system", "user", "assistant", "tool", "function", "developer")
PART_TYPES = ("text", "image_url", "file_url")


def _check_parts(parts: list) -> None:
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            raise serializers.ValidationError(
                f"content[{index}] must be an object with type one of {', '.join(PART_TYPES)}."
            )
        kind = part["type"]
        if kind == "text" and not isinstance(part.get("text"), str):
            raise serializers.ValidationError(f"content[{index}].text must be a string.")
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise serializers.ValidationError(f"content[{index}].image_url.url must be a string.")
        if kind == "file_url" and not isinstance(part.get("url"), str):
            raise serializers.ValidationError(f"content[{index}].url must be a string.")


class MessageIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = serializers.JSONField(required=False, allow_null=True)
    dataId = serializers.CharField(required=False, max_length=64)

    def validate_content(self, content):
        if content is None or isinstance(content, str):
            return content
        if isinstance(content, list):
            _check_parts(content)
            return content
        raise serializers.ValidationError("content must be a string or a list of content parts.")


class StreamOptionsIn(serializers.Serializer):
    include_usage = serializers.BooleanField(required=False, default=False)


class ChatCompletionIn(serializers.Serializer):
    messages = MessageIn(many=True, allow_empty=False)
    chatId = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=250)
    appId = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=24)
    stream = serializers.BooleanField(required=False, default=False)
    detail = serializers.BooleanField(required=False, default=False)
    responseChatItemId = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=64)
    variables = serializers.DictField(required=False, default=dict)
    customUid = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    metadata = serializers.DictField(required=False, default=dict)
    stream_options = StreamOptionsIn(required=False, allow_null=True)

    def validate_messages(self, messages):
        last = messages[-1]
        if last["role"] != "user":
            raise serializers.ValidationError("The last message must be the user's question (role 'user').")
        content = last.get("content")
        empty_text = isinstance(content, str) and not content.strip()
        if content is None or empty_text or (isinstance(content, list) and not content):
            raise serializers.ValidationError("The user's question is empty.")
        return messages


# --- the hot path ---------------------------------------------------------------------------

_OPTIONAL_TEXT = (("chatId", 250), ("appId", 24), ("responseChatItemId", 64), ("customUid", 255))
_FLAGS = ("stream", "detail")
_MAPPINGS = ("variables", "metadata")


def validated_chat_request(body: dict) -> dict:
    """`ChatCompletionIn`'s validated data, without running DRF for the usual request.

    Every chat turn validates its body, and DRF's serializer measured ~0.3–0.5 ms of a turn's
    ~3 ms of CPU (docs/benchmarks.md). A body whose every field already has the plain shape the
    serializer would return unchanged (strings untrimmed and within their limits, real
    booleans, objects for variables/metadata, well-formed messages) is taken as it is, with the
    serializer's defaults; anything else — every invalid body, and every value DRF would
    coerce (`"true"`, a number for a string, padded text) — goes through `ChatCompletionIn`,
    so the data and every 400 message are DRF's own.
    """
    data = _plain_request(body)
    return validated(ChatCompletionIn, body) if data is None else data


def _plain_request(body: dict) -> dict | None:
    """The validated data of a plainly shaped body, or None (let the serializer decide)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    data = {"messages": [_plain_message(message) for message in messages]}
    if None in data["messages"]:
        return None
    last = data["messages"][-1]
    content = last.get("content")
    if last["role"] != "user" or content is None or (isinstance(content, str) and not content.strip()) or (
        isinstance(content, list) and not content
    ):
        return None
    for name, limit in _OPTIONAL_TEXT:
        if name in body:
            value = body[name]
            if value is not None and not _plain_text(value, limit, blank=True):
                return None
            data[name] = value
    for name in _FLAGS:
        value = body.get(name, False)
        if not isinstance(value, bool):
            return None
        data[name] = value
    for name in _MAPPINGS:
        value = body.get(name, {})
        if not isinstance(value, dict):
            return None
        data[name] = dict(value)
    if "stream_options" in body:
        options = body["stream_options"]
        if options is None:
            data["stream_options"] = None
        elif isinstance(options, dict) and isinstance(options.get("include_usage", False), bool):
            data["stream_options"] = {"include_usage": options.get("include_usage", False)}
        else:
            return None
    return data


def _plain_message(message) -> dict | None:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str) or message["role"] not in ROLES:
        return None
    out = {"role": message["role"]}
    if "content" in message:
        content = message["content"]
        if isinstance(content, list):
            try:
                _check_parts(content)
            except serializers.ValidationError:
                return None
        elif content is not None and not isinstance(content, str):
            return None
        out["content"] = content
    if "dataId" in message:
        if not _plain_text(message["dataId"], 64, blank=False):
            return None
        out["dataId"] = message["dataId"]
    return out


def _plain_text(value, limit: int, *, blank: bool) -> bool:
    """A string DRF's CharField keeps as it is (it trims whitespace and refuses NUL)."""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        return False
    if value == "":
        return blank
    return value == value.strip()
