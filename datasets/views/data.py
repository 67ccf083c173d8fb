"""Data (chunk) endpoints (global key), mapped onto FastGPT's paths in datasets/urls.py."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets

from config.envelope import ok
from config.errors import BadRequest
from config.validation import QueryId, validated
from datasets import selectors
from datasets.serializers.common import legacy_page, offset_page
from datasets.serializers.data import (
    DataDetailOut, DataLegacyListIn, DataLegacyListOut, DataListIn, DataListItemOut, DataListOut, DataUpdateIn,
    PushDataIn, PushDataOut,
)
from datasets.serializers.results import insert_results
from datasets.services import data as data_services
from datasets.services.pushes import push_data

ID_PARAM = OpenApiParameter("id", str, required=True, description="Data id")


class DataViewSet(viewsets.ViewSet):
    @extend_schema(operation_id="data_push", request=PushDataIn, responses=PushDataOut)
    def push(self, request):
        data = validated(PushDataIn, request.data)
        result = push_data(
            team_id=request.auth.team_id, usage_key_id=request.auth.key.pk, collection_id=data["collection_id"],
            items=data["data"], training_type=data["training_type"], bill_id=data["bill_id"], prompt=data["prompt"],
        )
        return ok(insert_results(result))

    @extend_schema(operation_id="data_list_v2", request=DataListIn, responses=DataListOut)
    def list_v2(self, request):
        data = validated(DataListIn, request.data)
        rows = selectors.list_data(
            team_id=request.auth.team_id, collection_id=data["collection_id"], search_text=data["search_text"]
        )
        page = rows[data["offset"]: data["offset"] + data["page_size"]]
        return ok(offset_page(DataListItemOut(page, many=True).data, rows.count()))

    @extend_schema(
        operation_id="data_list", request=DataLegacyListIn, responses=DataLegacyListOut,
        deprecated=True, description="The legacy list (pageNum); use data/v2/list.",
    )
    def list_legacy(self, request):
        data = validated(DataLegacyListIn, request.data)
        rows = selectors.list_data(
            team_id=request.auth.team_id, collection_id=data["collection_id"], search_text=data["search_text"]
        )
        page = rows[data["offset"]: data["offset"] + data["page_size"]]
        return ok(legacy_page(
            DataListItemOut(page, many=True).data, rows.count(), page_num=data["page_num"], page_size=data["page_size"]
        ))

    @extend_schema(operation_id="data_detail", parameters=[ID_PARAM], responses=DataDetailOut)
    def retrieve(self, request):
        data = validated(QueryId, request.query_params)
        item = selectors.get_data_detail(team_id=request.auth.team_id, data_id=data["id"])
        return ok(DataDetailOut(item).data)

    @extend_schema(operation_id="data_update", request=DataUpdateIn, responses=None)
    def update(self, request):
        data = validated(DataUpdateIn, request.data)
        item = selectors.get_data(team_id=request.auth.team_id, data_id=data["data_id"])
        try:
            data_services.update_data(data=item, q=data.get("q"), a=data.get("a"), indexes=data.get("indexes"))
        except ValueError as exc:  # the service's own checks (empty q, too long, bad indexes)
            raise BadRequest(str(exc)) from None
        return ok(None)

    @extend_schema(operation_id="data_delete", parameters=[ID_PARAM], responses=serializers.CharField(help_text='"success"'))
    def destroy(self, request):
        data = validated(QueryId, request.query_params)
        item = selectors.get_data(team_id=request.auth.team_id, data_id=data["id"])
        data_services.delete_data(data=item)
        return ok("success")
