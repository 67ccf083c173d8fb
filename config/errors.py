"""The API's errors.

Each error carries FastGPT's body `code` and `statusText` where FastGPT has one, and the true
HTTP status (FastGPT answers 200 or 500 for everything; clients and proxies deserve better).
"""

from rest_framework import exceptions, status

# Sent with every 401 (RFC 9110): how to authenticate.
BEARER_CHALLENGE = 'Bearer realm="api"'


class ApiError(exceptions.APIException):
    """An error with FastGPT's body code and name; subclasses set the three class attributes."""

    status_code = status.HTTP_400_BAD_REQUEST
    body_code: int = 400
    status_text: str = "badRequest"
    default_detail = "Bad request."

    def __init__(self, message: str | None = None, *, data=None):
        super().__init__(message or self.default_detail)
        self.data = data


class BadRequest(ApiError):
    pass


# The two credential errors subclass DRF's so that DRF adds `WWW-Authenticate: Bearer`.
class MissingCredential(ApiError, exceptions.NotAuthenticated):
    status_code = status.HTTP_401_UNAUTHORIZED
    body_code = 403
    status_text = "unAuthorization"
    default_detail = "Missing or malformed Authorization header; send 'Authorization: Bearer fastgpt-…'."


class InvalidApiKey(ApiError, exceptions.AuthenticationFailed):
    status_code = status.HTTP_401_UNAUTHORIZED
    body_code = 514
    status_text = "unAuthApiKey"
    default_detail = "Invalid API key."


class KeyOutOfScope(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    body_code = 403
    status_text = "unAuthorization"
    default_detail = "This API key may not call this endpoint."


class UsageCapReached(ApiError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    body_code = 510
    status_text = "insufficientQuota"
    default_detail = "This API key has used all of its usage points."


class MethodNotAllowed(ApiError):
    """For views outside DRF (DRF raises its own for its views)."""

    status_code = status.HTTP_405_METHOD_NOT_ALLOWED
    body_code = 405
    status_text = "methodNotAllowed"
    default_detail = "Method not allowed."

    def __init__(self, message: str | None = None, *, allowed: list[str]):
        super().__init__(message)
        self.allowed = allowed  # sent as the `Allow` header


class RequestTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    body_code = 413
    status_text = "requestTooLarge"
    default_detail = "Request body is too large."


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    body_code = 404
    status_text = "notFound"
    default_detail = "Not found."


class DatasetNotFound(NotFound):
    body_code = 501000
    status_text = "unExistDataset"
    default_detail = "Dataset not found."


class AppNotFound(NotFound):
    body_code = 502000
    status_text = "appUnExist"
    default_detail = "App not found."


class ChatNotFound(NotFound):
    body_code = 504000
    status_text = "unAuthChat"
    default_detail = "Chat not found."


class RateLimited(ApiError):
    """For views outside DRF (DRF views raise its own Throttled through the throttle class)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    body_code = 429
    status_text = "tooManyRequests"
    default_detail = "Too many requests for this API key."

    def __init__(self, wait_seconds: float):
        super().__init__(f"Too many requests for this API key; retry in {max(1, round(wait_seconds))} s.")
        self.wait = wait_seconds  # DRF's name on Throttled: the renderer sends it as Retry-After


class DatabaseUnavailable(ApiError):
    """The database could not be reached or answered with a transient failure (server down or
    restarting, no pooled connection in time, a lock or serialisation conflict): worth a retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    body_code = 503
    status_text = "databaseUnavailable"
    default_detail = "The database is unavailable at the moment; retry shortly."
    wait = 5  # sent as Retry-After


class UpstreamError(ApiError):
    """The model provider failed (bad status, broken connection, malformed answer)."""

    status_code = status.HTTP_502_BAD_GATEWAY
    body_code = 502
    status_text = "upstreamError"
    default_detail = "The model provider failed."


class UpstreamTimeout(ApiError):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    body_code = 504
    status_text = "upstreamTimeout"
    default_detail = "The model provider did not answer in time."


class StorageError(ApiError):
    """The answer was delivered but could not be stored (sent as a stream's last event)."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    body_code = 500
    status_text = "storageError"
    default_detail = "The answer could not be stored."


class InternalError(ApiError):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    body_code = 500
    status_text = "internalServerError"
    default_detail = "Internal server error."
