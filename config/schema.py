"""The OpenAPI schema, told truthfully in one place.

Every non-chat answer is one envelope `{code, statusText, message, data}` with HTTP 200 on
success — creates and deletes included — and the envelope with `data` null or the validation
detail on an error. Views therefore declare only the shape of `data`:

    @extend_schema(operation_id="dataset_detail", responses=DatasetDetailOut)

and `EnvelopeAutoSchema` (settings: DEFAULT_SCHEMA_CLASS) wraps it, documents the error
statuses every endpoint can answer, and gives each operation a request example that works as
sent (only the required fields, never a made-up optional id or a date filter).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance, is_list_serializer, is_serializer
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ENVELOPE_FIELDS = ("code", "statusText", "message", "data")
BODY_METHODS = ("POST", "PUT", "PATCH")
AUTO_EXAMPLE = "required fields only"


class ErrorEnvelope(serializers.Serializer):
    """An error answer: `data` is null, or the validation detail naming each bad field."""

    code = serializers.IntegerField(help_text="FastGPT's error code, e.g. 514 for an invalid key.")
    statusText = serializers.CharField(help_text="FastGPT's error name, e.g. unAuthApiKey.")
    message = serializers.CharField()
    data = serializers.JSONField(allow_null=True)


ERRORS = {
    400: "Bad input; the message names each bad field.",
    401: "Missing, malformed, unknown, revoked or expired API key.",
    402: "The key has used all of its usage points.",
    403: "The key may not call this endpoint (e.g. an app key on a dataset endpoint).",
    404: "Not found, or another team's.",
    429: "Too many requests for this key (see Retry-After).",
    503: "The database is unavailable for a moment (see Retry-After).",
}
BODY_ERRORS = {
    413: "Request body too large.",
    415: "Request body is not JSON.",
}


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


def _is_envelope(serializer) -> bool:
    fields = getattr(serializer, "fields", None) if is_serializer(serializer) else None
    return fields is not None and not is_list_serializer(serializer) and set(fields) == set(ENVELOPE_FIELDS)


class EnvelopeAutoSchema(AutoSchema):
    def _is_list_view(self, serializer=None) -> bool:
        return False  # an answer is one envelope; a list is inside `data`

    def _get_response_bodies(self, direction="response"):
        declared = self.get_response_serializers()
        if isinstance(declared, dict):  # statuses spelled out by the view: taken as they are
            return super()._get_response_bodies(direction)
        responses = {"200": self._get_response_for_code(self._success(declared), "200", direction=direction)}
        errors = {**ERRORS, **(BODY_ERRORS if self.method in BODY_METHODS else {})}
        for status, description in errors.items():
            responses[str(status)] = self._get_response_for_code(
                OpenApiResponse(response=ErrorEnvelope, description=description), str(status), direction=direction
            )
        return responses

    def _success(self, declared):
        declared = force_instance(declared)
        if _is_envelope(declared):  # an older view that wraps by itself
            return declared
        data = serializers.JSONField(allow_null=True, help_text="Always null.") if declared is None else declared
        name = "".join(part.capitalize() for part in self.get_operation_id().split("_")) + "Response"
        return enveloped(name, data)

    def get_examples(self):
        """A working request body: the required fields only."""
        if self.method not in BODY_METHODS:
            return []
        serializer = force_instance(self.get_request_serializer())
        if not is_serializer(serializer):
            return []
        return [OpenApiExample(AUTO_EXAMPLE, value=_required_only(serializer), request_only=True)]

    def _get_examples(self, serializer, direction, media_type, status_code=None, extras=None):
        examples = super()._get_examples(serializer, direction, media_type, status_code, extras)
        if len(examples) > 1:  # the view declared its own: those are the better ones
            examples = {name: value for name, value in examples.items() if value.get("summary") != AUTO_EXAMPLE}
        return examples


def _required_only(serializer) -> dict:
    """An example value of ``serializer`` with its required fields, each a placeholder naming
    what to put there."""
    example = {}
    for name, field in serializer.fields.items():
        if field.read_only or not field.required:
            continue
        example[name] = _example_value(name, field)
    return example


def _example_value(name: str, field):
    if is_serializer(field) and not is_list_serializer(field):
        return _required_only(field)
    if is_list_serializer(field) or isinstance(field, serializers.ListField):
        child = field.child
        return [_example_value(name, child)] if child is not None else []
    if isinstance(field, serializers.BooleanField):
        return False
    if isinstance(field, (serializers.IntegerField, serializers.FloatField)):
        return field.min_value if field.min_value is not None else 0
    if isinstance(field, serializers.ChoiceField):
        # A conversation starts with the user: a first message of role "system" is refused.
        return "user" if "user" in field.choices else next(iter(field.choices))
    if isinstance(field, serializers.DictField):
        return {}
    return f"<{name}>"


# `responses=ENVELOPE_NULL`: an answer whose `data` is null (the same as `responses=None`).
ENVELOPE_NULL = None
