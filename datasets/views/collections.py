"""Collection endpoints (global key), mapped onto FastGPT's paths in datasets/urls.py."""

from urllib.parse import unquote

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets

from config.envelope import ok
from config.errors import BadRequest
from config.json_input import parse_json
from config.validation import QueryId, validated
from datasets import selectors
from datasets.errors import FileTooLarge
from datasets.serializers.collections import (
    CollectionCreatedOut, CollectionCreateIn, CollectionDeleteIn, CollectionDetailOut, CollectionFileIn,
    CollectionLegacyListIn, CollectionLegacyListOut, CollectionLinkIn, CollectionListIn, CollectionListItemOut,
    CollectionListOut, CollectionTextIn, CollectionUpdateIn,
)
from datasets.serializers.common import legacy_page, offset_page
from datasets.serializers.results import insert_results
from datasets.services import collections as services


ID_PARAM = OpenApiParameter("id", str, required=True, description="Collection id")

LOCAL_FILE_REQUEST = {
    "multipart/form-data": inline_serializer(
        name="CollectionLocalFileIn",
        fields={
            "file": serializers.FileField(help_text="pdf, docx, md, txt, html or csv; URL-encode a non-ASCII name"),
            "data": serializers.CharField(help_text="JSON string: datasetId, trainingType, chunk settings, metadata…"),
        },
    )
}


def created(collection, results: dict) -> dict:
    return {"collectionId": collection.pk, "results": results}


class CollectionViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="collection_create",
        request=CollectionCreateIn,
        responses=serializers.CharField(help_text="The new collection's id"),
    )
    def create(self, request):
        data = validated(CollectionCreateIn, request.data)
        collection = services.create_empty_collection(team_id=request.auth.team_id, **data)
        return ok(collection.pk)

    @extend_schema(operation_id="collection_create_text", request=CollectionTextIn, responses=CollectionCreatedOut)
    def create_text(self, request):
        data = validated(CollectionTextIn, request.data)
        collection, result = services.create_text_collection(
            team_id=request.auth.team_id, usage_key_id=request.auth.key.pk,
            options=services.options_from(data), text=data["text"],
        )
        return ok(created(collection, insert_results(result)))

    @extend_schema(operation_id="collection_create_link", request=CollectionLinkIn, responses=CollectionCreatedOut)
    def create_link(self, request):
        data = validated(CollectionLinkIn, request.data)
        collection = services.create_link_collection(
            team_id=request.auth.team_id, usage_key_id=request.auth.key.pk,
            options=services.options_from(data), link=data["link"],
        )
        return ok(created(collection, insert_results(None)))

    @extend_schema(operation_id="collection_create_local_file", request=LOCAL_FILE_REQUEST, responses=CollectionCreatedOut)
    def create_local_file(self, request):
        limit = settings.DATASET_MAX_FILE_BYTES
        # Refuse an announced oversize body before reading it (1 MiB of slack for the other parts).
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + 1024 * 1024:
            raise FileTooLarge(_too_large(limit))
        upload = request.FILES.get("file")
        if upload is None:
            raise BadRequest("file: a multipart/form-data part named 'file' is required.")
        if upload.size > limit:
            raise FileTooLarge(_too_large(limit))
        file_name = unquote(upload.name or "")
        services.check_file_type(file_name)  # 415 before anything is validated or stored
        data = validated(CollectionFileIn, _json_part(request.data.get("data")))
        collection = services.create_file_collection(
            team_id=request.auth.team_id, usage_key_id=request.auth.key.pk,
            options=services.options_from(data), file_name=file_name, content=upload.read(),
        )
        return ok(created(collection, insert_results(None)))

    # Not offered (501): kept out of the schema, which lists what the server does.
    @extend_schema(exclude=True)
    def create_api(self, request):
        services.not_supported("API collections (apiCollection)")

    @extend_schema(exclude=True)
    def create_external_file(self, request):
        services.not_supported("External-file collections (externalFileUrl)")

    @extend_schema(operation_id="collection_list_v2", request=CollectionListIn, responses=CollectionListOut)
    def list_v2(self, request):
        data = validated(CollectionListIn, request.data)
        collections = selectors.list_collections(
            team_id=request.auth.team_id, dataset_id=data["dataset_id"], parent_id=data.get("parent_id"),
            search_text=data["search_text"],
        )
        page = collections[data["offset"]: data["offset"] + data["page_size"]]
        return ok(offset_page(CollectionListItemOut(page, many=True).data, collections.count()))

    @extend_schema(
        operation_id="collection_list", request=CollectionLegacyListIn, responses=CollectionLegacyListOut,
        deprecated=True, description="The legacy list (pageNum); use collection/listV2.",
    )
    def list_legacy(self, request):
        data = validated(CollectionLegacyListIn, request.data)
        collections = selectors.list_collections(
            team_id=request.auth.team_id, dataset_id=data["dataset_id"], parent_id=data.get("parent_id"),
            search_text=data["search_text"],
        )
        page = collections[data["offset"]: data["offset"] + data["page_size"]]
        return ok(legacy_page(
            CollectionListItemOut(page, many=True).data, collections.count(),
            page_num=data["page_num"], page_size=data["page_size"],
        ))

    @extend_schema(operation_id="collection_detail", parameters=[ID_PARAM], responses=CollectionDetailOut)
    def retrieve(self, request):
        data = validated(QueryId, request.query_params)
        collection = selectors.get_collection_with_amounts(team_id=request.auth.team_id, collection_id=data["id"])
        return ok(CollectionDetailOut(collection).data)

    @extend_schema(operation_id="collection_update", request=CollectionUpdateIn, responses=None)
    def update(self, request):
        data = dict(validated(CollectionUpdateIn, request.data))
        keys = {name: data.pop(name, None) for name in ("id", "dataset_id", "external_file_id")}
        services.update_collection(
            team_id=request.auth.team_id, collection_id=keys["id"], dataset_id=keys["dataset_id"],
            external_file_id=keys["external_file_id"], changes=data,
        )
        return ok(None)

    @extend_schema(operation_id="collection_delete", request=CollectionDeleteIn, responses=None)
    def destroy(self, request):
        ids = validated(CollectionDeleteIn, request.data)["collection_ids"]
        services.delete_collections(team_id=request.auth.team_id, collection_ids=ids)
        return ok(None)

    @extend_schema(
        operation_id="collection_delete_by_id", parameters=[ID_PARAM], responses=None,
        description="FastGPT's older form of collection/delete.",
    )
    def destroy_by_id(self, request):
        data = validated(QueryId, request.query_params)
        services.delete_collections(team_id=request.auth.team_id, collection_ids=[data["id"]])
        return ok(None)


def _too_large(limit: int) -> str:
    return f"file: larger than the limit of {limit // (1024 * 1024)} MB (DATASET_MAX_FILE_BYTES)."


def _json_part(raw) -> dict:
    """The `data` part of create/localFile: a JSON object sent as a string."""
    if raw is None:
        raise BadRequest("data: a multipart part named 'data' (a JSON string of the parameters) is required.")
    if not isinstance(raw, str):
        raise BadRequest("data: must be a JSON string.")
    try:
        value = parse_json(raw)  # the project's JSON boundary: NUL, lone surrogates, depth refused
    except BadRequest as exc:
        raise BadRequest(f"data: {exc.detail}") from None
    if not isinstance(value, dict):
        raise BadRequest("data: must be a JSON object.")
    return value
