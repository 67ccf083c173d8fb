"""A URL conf for config.asgi.key_api_paths(): which views count as key-authenticated."""

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import include, path, re_path
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from keys.authentication import ApiKeyAuthentication


class KeyOnly(APIView):
    def post(self, request):
        return HttpResponse("ok")


class KeyOrSession(KeyOnly):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]


class Default(KeyOnly):
    pass  # settings' DEFAULT_AUTHENTICATION_CLASSES: the API key


def plain(request):
    return HttpResponse("ok")


def stream(request):
    return StreamingHttpResponse(iter(["one ", "two ", "three"]))


api = [
    path("key", KeyOnly.as_view(authentication_classes=[ApiKeyAuthentication])),
    path("default", Default.as_view()),
    path("session", KeyOrSession.as_view()),
    path("none", KeyOnly.as_view(authentication_classes=[])),
    path("plain", plain),
    path("stream", stream),
    path("item/<int:pk>", Default.as_view()),
    re_path(r"^regex$", Default.as_view()),
    path("nested/", include([path("deep", Default.as_view())])),
]

urlpatterns = [
    path("api/", include(api)),
    path("elsewhere/default", Default.as_view()),
]
