"""URLs used only by the error-handling tests: views that fail in unexpected ways."""

from django.urls import path
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns


class Crash(APIView):
    def post(self, request):
        raise RuntimeError("secret internal detail")


def plain_crash(request):
    """A view outside DRF (like chat completions) that crashes."""
    raise RuntimeError("secret internal detail")


async def async_crash(request):
    raise RuntimeError("secret internal detail")


urlpatterns = [
    path("api/test/crash", Crash.as_view()),
    path("api/test/plain-crash", plain_crash),
    path("api/test/async-crash", async_crash),
    *project_urlpatterns,
]
handler404 = "config.error_views.not_found"
handler500 = "config.error_views.server_error"
