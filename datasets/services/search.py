"""searchTest as a service: run the search for a key and charge the key for the model calls."""

from datasets.search.pipeline import SearchOptions, SearchResult, search
from keys.models import ApiKey
from keys.services import add_usage


def search_test(*, key: ApiKey, dataset_ids: list[str], text: str, options: SearchOptions) -> SearchResult:
    """Search the key's team's datasets; the tokens spent (query embedding, rerank, query
    extension) are added to the key's usage points."""
    result = search(team_id=key.team_id, dataset_ids=dataset_ids, text=text, options=options)
    add_usage(key=key, points=result.total_tokens)
    return result
