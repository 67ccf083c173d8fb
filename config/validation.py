"""Request input: run an input serializer and hand the action its validated data."""

from rest_framework import serializers

from config.errors import BadRequest


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """Validated data, or BadRequest (400) whose message names each bad field."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise BadRequest(validation_message(serializer.errors), data=serializer.errors)
    return serializer.validated_data


def validation_message(detail) -> str:
    """Flatten DRF's nested validation detail into one line naming each field."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            inner = validation_message(value)
            parts.append(inner if field == "non_field_errors" else f"{field}: {inner}")
        return " ".join(parts)
    if isinstance(detail, list):
        # A list of nested dicts (one per item) names each failing item by its position.
        if detail and all(isinstance(item, dict) for item in detail):
            return "; ".join(
                f"[{index}] {validation_message(item)}" for index, item in enumerate(detail) if item
            )
        return " ".join(validation_message(item) for item in detail)
    return str(detail)


class QueryId(serializers.Serializer):
    """`?id=` in the query string."""

    id = serializers.CharField(max_length=64)
