"""Request-level middleware for the API: chunked bodies read like any other, and errors under
/api answered as the envelope whatever DEBUG says.

Both work in sync and async mode without a thread hop, so the async chat view stays cheap.
"""

import io
import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse

from config.envelope import envelope
from config.errors import RequestTooLarge

logger = logging.getLogger("config.api")


def is_api(request) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


class _HybridMiddleware:
    """A pass-through usable from sync and async handlers; subclasses add hooks."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def before(self, request):
        """A response to answer at once, or None to go on."""
        return None

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return self.before(request) or self.get_response(request)

    async def _acall(self, request):
        return self.before(request) or await self.get_response(request)


class ChunkedBodyMiddleware(_HybridMiddleware):
    """A `Transfer-Encoding: chunked` body (no Content-Length) made an ordinary body.

    The ASGI server hands Django the whole body, but DRF takes a missing Content-Length for an
    empty body, and Django's size limit only looks at Content-Length. Here the body is read up
    to the limit (413 beyond it) and its length set, so every view sees the same request.
    """

    def before(self, request):
        meta = request.META
        if meta.get("CONTENT_LENGTH") or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = request.read() if limit is None else request.read(limit + 1)
        if limit is not None and len(body) > limit:
            if is_api(request):
                error = RequestTooLarge()
                return JsonResponse(
                    envelope(code=error.body_code, status_text=error.status_text, message=str(error.detail)),
                    status=error.status_code,
                )
            return HttpResponse("Request body is too large.", status=413, content_type="text/plain")
        request._body = body
        request._stream = io.BytesIO(body)
        meta["CONTENT_LENGTH"] = str(len(body))
        return None


class ApiErrorMiddleware(_HybridMiddleware):
    """A crash in any view under /api answers the 500 envelope — with DEBUG on too, where
    Django would otherwise show its HTML traceback page."""

    def process_exception(self, request, exception):
        if not is_api(request):
            return None
        if isinstance(exception, Http404):  # DEBUG's HTML 404 page otherwise
            return JsonResponse(
                envelope(code=404, status_text="notFound", message="Not found."), status=404
            )
        logger.error("Unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return JsonResponse(
            envelope(code=500, status_text="internalServerError", message="Internal server error."),
            status=500,
        )
