"""Request input: run an input serializer and hand the action its validated data."""

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """Validated data, or a ValidationError that the handler answers as 400 naming the field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class QueryId(serializers.Serializer):
    """`?id=` in the query string."""

    id = serializers.CharField(max_length=64)
