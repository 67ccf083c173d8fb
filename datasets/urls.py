"""FastGPT's knowledge-base paths (RPC-style, so mapped by hand rather than by a router)."""

from django.urls import path
from rest_framework.parsers import FormParser, MultiPartParser

from config.json_input import StrictJSONParser

from datasets.views.collections import CollectionViewSet
from datasets.views.data import DataViewSet
from datasets.views.datasets import DatasetViewSet
from datasets.views.search import SearchTestViewSet
from datasets.views.training_usage import TrainingUsageViewSet

collection = "core/dataset/collection/"
data = "core/dataset/data/"

urlpatterns = [
    path("core/dataset/create", DatasetViewSet.as_view({"post": "create"})),
    path("core/dataset/list", DatasetViewSet.as_view({"post": "list"})),
    path("core/dataset/detail", DatasetViewSet.as_view({"get": "retrieve"})),
    path("core/dataset/delete", DatasetViewSet.as_view({"delete": "destroy"})),
    # collections
    path(collection + "create", CollectionViewSet.as_view({"post": "create"})),
    path(collection + "create/text", CollectionViewSet.as_view({"post": "create_text"})),
    path(collection + "create/link", CollectionViewSet.as_view({"post": "create_link"})),
    path(
        collection + "create/localFile",
        CollectionViewSet.as_view(
            {"post": "create_local_file"}, parser_classes=[MultiPartParser, FormParser, StrictJSONParser]
        ),
    ),
    path(collection + "create/apiCollection", CollectionViewSet.as_view({"post": "create_api"})),
    path(
        "proApi/" + collection + "create/externalFileUrl",
        CollectionViewSet.as_view({"post": "create_external_file"}),
    ),
    path(collection + "listV2", CollectionViewSet.as_view({"post": "list_v2"})),
    path(collection + "list", CollectionViewSet.as_view({"post": "list_legacy"})),
    path(collection + "detail", CollectionViewSet.as_view({"get": "retrieve"})),
    path(collection + "update", CollectionViewSet.as_view({"put": "update"})),
    path(collection + "delete", CollectionViewSet.as_view({"post": "destroy", "delete": "destroy_by_id"})),
    # data
    path(data + "pushData", DataViewSet.as_view({"post": "push"})),
    path(data + "v2/list", DataViewSet.as_view({"post": "list_v2"})),
    path(data + "list", DataViewSet.as_view({"post": "list_legacy"})),
    path(data + "detail", DataViewSet.as_view({"get": "retrieve"})),
    path(data + "update", DataViewSet.as_view({"put": "update"})),
    path(data + "delete", DataViewSet.as_view({"delete": "destroy"})),
    # training usage (bill ids grouping pushData calls)
    path("support/wallet/usage/createTrainingUsage", TrainingUsageViewSet.as_view({"post": "create"})),
    # [SEARCH]
    path("core/dataset/searchTest", SearchTestViewSet.as_view({"post": "create"})),
]
