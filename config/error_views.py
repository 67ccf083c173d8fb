"""Django-level error pages: JSON in the envelope under /api, Django's own pages elsewhere.

These catch what never reaches a DRF view: an unknown /api path, or a crash in middleware.
"""

from django.http import JsonResponse
from django.views import defaults

from config.envelope import envelope


def _is_api(request) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse(
            envelope(code=404, status_text="notFound", message=f"No endpoint at {request.path}."),
            status=404,
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse(
            envelope(code=500, status_text="internalServerError", message="Internal server error."),
            status=500,
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse(
            envelope(code=400, status_text="badRequest", message="Bad request."), status=400
        )
    return defaults.bad_request(request, exception)
