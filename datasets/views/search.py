"""`POST /api/core/dataset/searchTest` (global key): search one or several datasets of the team."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets

from config.envelope import ok
from config.schema import enveloped
from config.validation import validated
from datasets.serializers.search import SearchTestIn, SearchTestOut, search_options, search_test_out
from datasets.services.search import search_test


class SearchTestViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="dataset_search_test",
        request=SearchTestIn,
        responses=enveloped("SearchTestEnvelope", SearchTestOut()),
        description="Search datasets as FastGPT's searchTest does; see docs/search-api.md.",
    )
    def create(self, request):
        data = validated(SearchTestIn, request.data)
        result = search_test(
            key=request.auth.key, dataset_ids=data["dataset_ids"], text=data["text"], options=search_options(data)
        )
        return ok(search_test_out(result))  # SearchTestOut's shape, as plain dicts (cheaper)
