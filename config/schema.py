"""OpenAPI helpers: describe envelope-wrapped answers to drf-spectacular."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


def enveloped(name: str, data_field: serializers.Field) -> serializers.Serializer:
    """The schema of `{code, statusText, message, data}` whose `data` is ``data_field``."""
    return inline_serializer(
        name=name,
        fields={
            "code": serializers.IntegerField(),
            "statusText": serializers.CharField(),
            "message": serializers.CharField(),
            "data": data_field,
        },
    )


ENVELOPE_NULL = enveloped("NullEnvelope", serializers.JSONField(allow_null=True))
