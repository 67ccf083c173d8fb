"""A grounded turn: the app's dataset search before the model call, its quotes in the prompt.

An app with linked datasets (chat.models.AppDataset) searches them with its settings
(AppDatasetSearch, or the defaults) for the user's last message text, through
`datasets.search.pipeline.search` — sync, database and an embedding call, so it runs in the
turn's sync preparation step, never across the model call. The quotes become FastGPT's quote
items (`quoteList`), written into the question with the quote template and prompt, and
recorded as the run's `datasetSearchNode`.

A search that fails (the embedding provider down or slow, a misconfigured dataset) fails the
turn: the client gets 502/504 with the reason, and the question is stored with an AI record
carrying the error and the failed search node (SearchFailed). An ungrounded answer is never
passed off as a grounded one.
"""

import time
from dataclasses import dataclass

from chat.app_datasets import linked_dataset_ids
from chat.completions.quote_prompt import grounded_question
from chat.models import App, AppDatasetSearch
from chat.run_records import dataset_search_node
from config.errors import ApiError, UpstreamError, UpstreamTimeout
from config.ids import new_object_id
from datasets.search.fusion import RRF
from datasets.search.pipeline import SearchOptions, SearchResult, search

MAX_QUERY_CHARS = 5000  # as searchTest's `text`: a longer question is searched by its start


@dataclass(frozen=True)
class Grounding:
    """What a turn of an app searches, and how it quotes."""

    dataset_ids: list[str]
    options: SearchOptions
    quote_template: str
    quote_prompt: str


@dataclass
class Grounded:
    """A search's outcome for the turn: the quotes (FastGPT's quote items), its node record,
    the tokens it spent (billed with the turn) and its running time."""

    quotes: list[dict]
    node: dict
    tokens: int
    seconds: float


class SearchFailed(Exception):
    """The search failed: `error` is the API error to answer with, `node` the failed node."""

    def __init__(self, error: ApiError, node: dict):
        super().__init__(str(error.detail))
        self.error, self.node = error, node


def grounding_for(app: App) -> Grounding | None:
    """The app's grounding, or None for an app with no linked dataset."""
    dataset_ids = linked_dataset_ids(app)
    if not dataset_ids:
        return None
    settings = AppDatasetSearch.objects.filter(app=app).first() or AppDatasetSearch(app=app)
    return Grounding(
        dataset_ids=dataset_ids,
        options=search_options(settings),
        quote_template=settings.quote_template,
        quote_prompt=settings.quote_prompt,
    )


def search_options(settings: AppDatasetSearch) -> SearchOptions:
    return SearchOptions(
        search_mode=settings.search_mode,
        limit=settings.limit,
        top_k=settings.top_k,
        similarity=settings.similarity,
        embedding_weight=settings.embedding_weight,
        using_rerank=settings.using_rerank,
        rerank_model=settings.rerank_model,
        rerank_weight=settings.rerank_weight,
        using_extension=settings.using_extension,
        extension_model=settings.extension_model,
        extension_background=settings.extension_background,
    )


def run_search(*, team_id, grounding: Grounding, question: str) -> Grounded:
    """Search the app's datasets for ``question``; raises SearchFailed."""
    started = time.monotonic()
    query = question.strip()[:MAX_QUERY_CHARS]
    if not query:  # e.g. only an image: nothing to search with
        node = _node(grounding, question, started, notes=["the question has no text to search with."])
        return Grounded(quotes=[], node=node, tokens=0, seconds=time.monotonic() - started)
    try:
        result = search(team_id=team_id, dataset_ids=grounding.dataset_ids, text=query, options=grounding.options)
    except (UpstreamError, UpstreamTimeout) as exc:  # the embedding provider failed or was slow
        error = type(exc)(f"Dataset search failed: {exc.detail}")
        raise SearchFailed(error, _node(grounding, query, started, error=str(error.detail))) from exc
    except ApiError as exc:
        # A dataset deleted or changed since it was linked: the app needs its operator.
        error = UpstreamError(f"The app's dataset search is misconfigured: {exc.detail}")
        raise SearchFailed(error, _node(grounding, query, started, error=str(error.detail))) from exc
    relevant = [hit for hit in result.hits if has_evidence(hit)]
    notes = []
    if len(relevant) < len(result.hits):
        notes.append(f"{len(result.hits) - len(relevant)} passage(s) with no positive score in any channel not quoted.")
    quotes = [quote_item(hit) for hit in relevant]
    node = _node(grounding, query, started, result=result, quotes=quotes, notes=notes)
    return Grounded(quotes=quotes, node=node, tokens=result.total_tokens, seconds=time.monotonic() - started)


def has_evidence(hit) -> bool:
    """A hit scored above zero by some channel (embedding, full text, rerank). The nearest
    vectors are recalled whatever their score: with the built-in lexical embedding a cosine of
    0 means not one shared word, and such a passage is no answer to quote. (A semantic
    model's cosines are never exactly 0, so this drops nothing there.)"""
    return any(score.value > 0 for score in hit.scores if score.type != RRF)


def quote_item(hit) -> dict:
    """A search hit as FastGPT's quote item (what `quoteList` holds and the record keeps)."""
    return {
        "id": hit.id,
        "q": hit.q,
        "a": hit.a,
        "chunkIndex": hit.chunk_index,
        "datasetId": hit.dataset_id,
        "collectionId": hit.collection_id,
        "sourceName": hit.source_name,
        "sourceId": hit.source_id,
        "updateTime": hit.update_time.isoformat(),
        "score": [{"type": s.type, "value": s.value, "index": s.index} for s in hit.scores],
    }


def _node(grounding: Grounding, query: str, started: float, *, result: SearchResult | None = None,
          quotes: list[dict] | None = None, notes: list[str] | None = None, error: str = "") -> dict:
    options = grounding.options
    details = {
        "datasetIds": grounding.dataset_ids,
        "topK": options.top_k,
        "embeddingWeight": options.embedding_weight,
        "rerankWeight": options.rerank_weight,
    }
    if result is not None:
        details.update(
            model=result.embedding_model,
            rerankModel=result.rerank_model,
            reRankInputTokens=result.rerank_tokens,
            usingSimilarityFilter=result.using_similarity_filter,
        )
        if result.extension is not None:
            details.update(
                extensionModel=result.extension.model,
                extensionResult="\n".join(result.extension.queries),
                extensionTokens=result.extension.tokens,
            )
    all_notes = list(notes or []) + (list(result.notes) if result is not None else [])
    if all_notes:
        details["notes"] = all_notes
    return dataset_search_node(
        node_id=new_object_id(),
        question=query,
        quotes=quotes or [],
        search_mode=result.search_mode if result else options.search_mode,
        similarity=result.similarity if result else options.similarity,
        limit=result.limit if result else options.limit,
        using_rerank=result.using_rerank if result else False,
        running_time=time.monotonic() - started,
        embedding_tokens=result.embedding_tokens if result else 0,
        tokens=result.total_tokens if result else 0,
        details=details,
        error=error,
    )


def with_quotes(messages: list[dict], quotes: list[dict], grounding: Grounding) -> list[dict]:
    """The provider messages with the question (the last message) wrapped in the quote
    prompt. Parts other than text (images) are kept after it."""
    if not quotes or not messages:
        return messages
    *head, last = messages
    content = last["content"]
    if isinstance(content, str):
        text, others = content, []
    else:
        text = "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
        others = [p for p in content if p.get("type") != "text"]
    prompt = grounded_question(text, quotes, template=grounding.quote_template, prompt=grounding.quote_prompt)
    new_content = [{"type": "text", "text": prompt}, *others] if others else prompt
    return [*head, {**last, "content": new_content}]
