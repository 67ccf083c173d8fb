"""Field and input shapes shared by the knowledge-base endpoints."""

from rest_framework import serializers

# Ids are 24 hex characters; a longer or odd one is simply not found (404), never a 400.
ID_MAX_LENGTH = 64
# FastGPT's documented cap on dataset list pages.
MAX_PAGE_SIZE = 30


class IdField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", ID_MAX_LENGTH)
        super().__init__(**kwargs)


class NullableParentId(serializers.CharField):
    """`parentId`: null, "" or absent all mean the root."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, max_length=ID_MAX_LENGTH, **kwargs)

    def run_validation(self, data=serializers.empty):
        return super().run_validation(data) or None


class OffsetPageIn(serializers.Serializer):
    """`offset` + `pageSize` (≤ 30), FastGPT's current pagination."""

    offset = serializers.IntegerField(min_value=0, default=0)
    pageSize = serializers.IntegerField(source="page_size", min_value=1, max_value=MAX_PAGE_SIZE, default=10)
    searchText = serializers.CharField(
        source="search_text", required=False, allow_blank=True, allow_null=True, max_length=200, default=""
    )

    def validate(self, attrs):
        attrs["search_text"] = (attrs.get("search_text") or "").strip()
        return attrs


class PageNumIn(OffsetPageIn):
    """The legacy `pageNum` (1-based) pagination, turned into an offset."""

    offset = None
    pageNum = serializers.IntegerField(source="page_num", min_value=1, default=1)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        attrs["offset"] = (attrs["page_num"] - 1) * attrs["page_size"]
        return attrs


def offset_page(list_out: list, total: int) -> dict:
    return {"list": list_out, "total": total}


def legacy_page(list_out: list, total: int, *, page_num: int, page_size: int) -> dict:
    """The legacy endpoints' page shape."""
    return {"pageNum": page_num, "pageSize": page_size, "data": list_out, "total": total}


class OffsetPageOut(serializers.Serializer):
    total = serializers.IntegerField()


class LegacyPageOut(serializers.Serializer):
    pageNum = serializers.IntegerField()
    pageSize = serializers.IntegerField()
    total = serializers.IntegerField()

