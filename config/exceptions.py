"""The one exception handler: every error of every API view answered as the envelope."""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.envelope import envelope
from config.errors import ApiError, RequestTooLarge
from config.validation import validation_message

logger = logging.getLogger("config.api")


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


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error as the envelope, with the true HTTP status."""
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)  # sets WWW-Authenticate and Retry-After
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return error_response(500, 500, "internalServerError", "Internal server error.")

    if isinstance(exc, ApiError):
        body_code, status_text, message, data = exc.body_code, exc.status_text, str(exc.detail), exc.data
    else:
        body_code, status_text = next(
            (names for cls, names in _DRF_NAMES.items() if isinstance(exc, cls)),
            (response.status_code, "error"),
        )
        if isinstance(exc, exceptions.ValidationError):
            message, data = validation_message(exc.detail), exc.detail
        else:
            message, data = str(exc.detail), None
    response.data = envelope(code=body_code, status_text=status_text, message=message, data=data)
    return response


def error_response(http_status: int, body_code: int, status_text: str, message: str) -> Response:
    return Response(
        envelope(code=body_code, status_text=status_text, message=message), status=http_status
    )
