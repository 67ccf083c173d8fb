"""URL map: the API under /api (FastGPT's paths), its schema and docs, the admin, and a
landing page at `/`."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.error_views import not_found

api_patterns = [
    path("", include("chat.urls")),
    path("", include("datasets.urls")),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="swagger-ui",
    ),
    # Last: any other /api path is the envelope's 404, also with DEBUG on (where Django would
    # answer its HTML debug page instead of handler404).
    re_path(r"^.*$", csrf_exempt(not_found)),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
]

handler400 = "config.error_views.bad_request"
handler404 = "config.error_views.not_found"
handler500 = "config.error_views.server_error"
