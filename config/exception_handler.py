"""The one error renderer: every API error as the envelope, with its headers set here.

`api_exception_handler` is DRF's EXCEPTION_HANDLER; `error_json_response` answers for views
outside DRF (chat completions, which add OpenAI's `error` object). Both go through
`render_error`, the one place that sets `WWW-Authenticate` (every 401), `Retry-After`
(every 429) and `Allow` (a 405 of a view outside DRF; DRF adds its own).
"""

import logging
import math
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.envelope import envelope
from config.errors import BEARER_CHALLENGE, ApiError, DatabaseUnavailable, InternalError, RequestTooLarge
from config.validation import validation_message

logger = logging.getLogger("config.api")

JSON_OPTIONS = {"ensure_ascii": False, "separators": (",", ":")}

# DRF's own exceptions, mapped onto a body code and name of the same meaning.
_DRF_NAMES = {
    exceptions.ParseError: (400, "badRequest"),
    exceptions.ValidationError: (400, "badRequest"),
    exceptions.NotAuthenticated: (403, "unAuthorization"),
    exceptions.AuthenticationFailed: (514, "unAuthApiKey"),
    exceptions.PermissionDenied: (403, "unAuthorization"),
    exceptions.NotFound: (404, "notFound"),
    exceptions.MethodNotAllowed: (405, "methodNotAllowed"),
    exceptions.NotAcceptable: (406, "notAcceptable"),
    exceptions.UnsupportedMediaType: (415, "unsupportedMediaType"),
    exceptions.Throttled: (429, "tooManyRequests"),
}


@dataclass
class RenderedError:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def as_api_exception(exc: Exception) -> Exception:
    """Django's own exceptions as the API's (others are returned unchanged)."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, OperationalError):  # transient: a 503 to retry, not a 500 to report
        logger.warning("Database unavailable: %s", exc)
        return DatabaseUnavailable()
    return exc


def render_error(exc: exceptions.APIException, *, openai: bool = False) -> RenderedError:
    """The envelope (plus OpenAI's `error` object when ``openai``), status and headers."""
    if isinstance(exc, ApiError):
        body_code, status_text, message, data = exc.body_code, exc.status_text, str(exc.detail), exc.data
    else:
        body_code, status_text = next(
            (names for cls, names in _DRF_NAMES.items() if isinstance(exc, cls)),
            (exc.status_code, "error"),
        )
        if isinstance(exc, exceptions.ValidationError):
            message, data = validation_message(exc.detail), exc.detail
        else:
            message, data = str(exc.detail), None
    body = envelope(code=body_code, status_text=status_text, message=message, data=data)
    if openai:
        # OpenAI SDKs show `error.message`.
        body["error"] = {"message": message, "type": status_text, "code": body_code}
    headers = {}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    allowed = getattr(exc, "allowed", None)
    if allowed:
        headers["Allow"] = ", ".join(allowed)
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return RenderedError(exc.status_code, body, headers)


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error as the envelope, with the true HTTP status."""
    exc = as_api_exception(exc)
    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        exc = InternalError()
    rendered = render_error(exc)
    set_rollback()
    return Response(rendered.body, status=rendered.status, headers=rendered.headers)


def error_json_response(exc: exceptions.APIException, *, openai: bool = False) -> JsonResponse:
    """The same answer for a plain Django view."""
    rendered = render_error(exc, openai=openai)
    response = JsonResponse(rendered.body, status=rendered.status, json_dumps_params=JSON_OPTIONS)
    for name, value in rendered.headers.items():
        response[name] = value
    return response
