"""FastGPT's dataset paths (RPC-style, so mapped by hand rather than by a router)."""

from django.urls import path

from datasets.views import DatasetViewSet

urlpatterns = [
    path("core/dataset/create", DatasetViewSet.as_view({"post": "create"})),
    path("core/dataset/list", DatasetViewSet.as_view({"post": "list"})),
    path("core/dataset/detail", DatasetViewSet.as_view({"get": "retrieve"})),
    path("core/dataset/delete", DatasetViewSet.as_view({"delete": "destroy"})),
]
