"""The chat-completion request: OpenAI's body plus FastGPT's fields, validated.

OpenAI fields the app decides itself (`model`, `temperature`, `max_tokens`, …) are accepted and
ignored, so that stock SDK calls pass.
"""

from rest_framework import serializers

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
