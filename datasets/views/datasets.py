"""Dataset endpoints (global key), mapped onto FastGPT's paths in datasets/urls.py."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets

from config.envelope import ok
from config.validation import QueryId, validated
from datasets import selectors
from datasets.serializers.datasets import DatasetCreateIn, DatasetDetailOut, DatasetListIn, DatasetListItemOut
from datasets.services import datasets as services

ID_PARAM = OpenApiParameter("id", str, required=True, description="Dataset id")


class DatasetViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="dataset_create",
        request=DatasetCreateIn,
        responses=serializers.CharField(help_text="The new dataset's id"),
        examples=[OpenApiExample("a dataset at the root", value={"name": "Product docs"}, request_only=True)],
    )
    def create(self, request):
        data = validated(DatasetCreateIn, request.data)
        dataset = services.create_dataset(team_id=request.auth.team_id, **data)
        return ok(dataset.id)

    @extend_schema(
        operation_id="dataset_list",
        parameters=[OpenApiParameter("parentId", str, description="Folder id; empty = root")],
        request=DatasetListIn,
        responses=DatasetListItemOut(many=True),
        examples=[OpenApiExample("the root's datasets", value={}, request_only=True)],
    )
    def list(self, request):
        # FastGPT reads parentId from the query string or the body; the body wins.
        source = {**request.query_params.dict(), **(request.data if isinstance(request.data, dict) else {})}
        data = validated(DatasetListIn, source)
        datasets = selectors.list_datasets(team_id=request.auth.team_id, parent_id=data.get("parent_id"))
        return ok(DatasetListItemOut(datasets, many=True).data)

    @extend_schema(operation_id="dataset_detail", parameters=[ID_PARAM], responses=DatasetDetailOut)
    def retrieve(self, request):
        data = validated(QueryId, request.query_params)
        dataset = selectors.get_dataset(team_id=request.auth.team_id, dataset_id=data["id"])
        return ok(DatasetDetailOut(dataset).data)

    @extend_schema(operation_id="dataset_delete", parameters=[ID_PARAM], responses=None)
    def destroy(self, request):
        data = validated(QueryId, request.query_params)
        services.delete_dataset(team_id=request.auth.team_id, dataset_id=data["id"])
        return ok(None)
