"""The dataset search: recall per channel, fuse, rerank, dedupe, filter, cut to size.

`search(...)` is the one entry point (the searchTest endpoint and grounded chat call it). The
steps are FastGPT's (`core/dataset/search/controller.ts`):

1. Scope: the team's datasets, minus forbidden collections, narrowed by `collectionFilterMatch`.
2. Queries: the question, plus alternatives from a language model when extension is on.
3. Recall, per query and channel: `embedding` 100 chunks, `fullTextRecall` 100, `mixedRecall`
   80 by embedding + 60 by full text (on PostgreSQL the two channels run side by side on two
   connections when they can: parallel.py). A chunk found through several indexes takes its best
   index's score. Several queries' lists of one channel are RRF-fused (equal weights).
4. Fusion: RRF, `weight / (60 + rank)`, the embedding list weighted `embeddingWeight` and the
   full-text list `1 - embeddingWeight` (one channel: weight 1).
5. Rerank (optional): the recalled chunks (deduplicated) scored by the rerank model against the
   question; its list is RRF-fused with step 4's by `rerankWeight` (1 = rerank order alone). A
   failing rerank model leaves the results unreranked, `usingReRank` false and a note.
6. Dedupe by the sha256 of q+a without non-letter/digit characters (the best-ranked is kept).
7. `similarity`: applied to the rerank score when rerank ran, else to the embedding score in
   `embedding` mode, else not applied — `usingSimilarityFilter` reports which.
8. `topK` (a count cap) and `limit` (a token budget, see budget.py); at least one result.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from config.errors import BadRequest, UpstreamError
from datasets.search import fusion, parallel
from datasets.search.budget import DEFAULT_LIMIT, count_tokens, within_budget
from datasets.search.collection_filter import CollectionMatch, searchable_collections
from datasets.search.dedupe import content_key, unique
from datasets.search.extension import ExtensionResult, ExtensionSkipped, extend_query
from datasets.search.fusion import EMBEDDING, FULL_TEXT, RERANK, Candidate
from datasets.search.selectors import Row, recalled_rows, searched_datasets
from providers.errors import ProviderError
from providers.registry import all_models, get_model

EMBEDDING_MODE = "embedding"
FULL_TEXT_MODE = "fullTextRecall"
MIXED_MODE = "mixedRecall"
SEARCH_MODES = (EMBEDDING_MODE, FULL_TEXT_MODE, MIXED_MODE)

# Candidates recalled per query: (embedding, full text) for each mode.
RECALL_LIMITS = {EMBEDDING_MODE: (100, 0), FULL_TEXT_MODE: (0, 100), MIXED_MODE: (80, 60)}


@dataclass(frozen=True)
class SearchOptions:
    search_mode: str = EMBEDDING_MODE
    limit: int = DEFAULT_LIMIT  # token budget of the results
    top_k: int | None = None  # count cap (None: only the budget)
    similarity: float = 0.0
    embedding_weight: float = 0.5
    using_rerank: bool = False
    rerank_model: str = ""  # empty: the first declared rerank model
    rerank_weight: float = 0.5
    using_extension: bool = False
    extension_model: str = ""  # empty: the default language model
    extension_background: str = ""
    collection_match: CollectionMatch | None = None


@dataclass
class SearchHit:
    id: str
    q: str
    a: str
    chunk_index: int
    dataset_id: str
    collection_id: str
    source_id: str
    source_name: str
    update_time: datetime
    scores: list[fusion.Score]


@dataclass
class SearchResult:
    hits: list[SearchHit]
    search_mode: str
    limit: int
    similarity: float
    using_rerank: bool  # rerank ran (false when asked for but it failed or no model exists)
    using_similarity_filter: bool
    duration: float  # seconds
    embedding_tokens: int = 0  # spent embedding the queries
    rerank_tokens: int = 0
    extension: ExtensionResult | None = None
    embedding_model: str = ""
    rerank_model: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        extension = self.extension.tokens if self.extension else 0
        return self.embedding_tokens + self.rerank_tokens + extension


def search(*, team_id, dataset_ids: list[str], text: str, options: SearchOptions) -> SearchResult:
    """Search `dataset_ids` (all of team `team_id`, else DatasetNotFound) for `text`."""
    started = time.perf_counter()
    datasets = searched_datasets(team_id=team_id, dataset_ids=dataset_ids)
    ids = [d.id for d in datasets]
    result = SearchResult(
        hits=[], search_mode=options.search_mode, limit=options.limit, similarity=options.similarity,
        using_rerank=False, using_similarity_filter=False, duration=0.0,
    )

    match = options.collection_match
    no_filter = (match is None or match.is_empty) and not any(d.has_forbidden for d in datasets)
    scope = None if no_filter else searchable_collections(dataset_ids=ids, match=match)
    if scope is not None and not scope:
        result.notes.append("no collection matches: every one is forbidden or filtered out.")
        return _finish(result, [], {}, options, started)

    queries = [text]
    if options.using_extension:
        try:
            result.extension = extend_query(
                query=text, model_name=options.extension_model, background=options.extension_background
            )
            queries += result.extension.queries
        except ExtensionSkipped as skipped:
            result.notes.append(str(skipped))

    embedding_limit, full_text_limit = RECALL_LIMITS[options.search_mode]
    # mixedRecall: the full-text channel runs beside the vector one on PostgreSQL (parallel.py).
    side = parallel.beside(_full_text_recall, ids, queries, full_text_limit, scope) if (
        embedding_limit and full_text_limit
    ) else None
    read: dict[str, Row] = {}  # chunks the vector recall read with its hits (PostgreSQL)
    try:
        embedding_list = _embedding_recall(result, datasets, ids, queries, embedding_limit, scope, read) if embedding_limit else []
    finally:
        full_text_list = side.result() if side is not None else None  # waited for even on error
    if full_text_list is None:
        full_text_list = _full_text_recall(ids, queries, full_text_limit, scope) if full_text_limit else []

    wanted = {c.data_id for c in embedding_list} | {c.data_id for c in full_text_list}
    rows = read | recalled_rows(dataset_ids=ids, data_ids=wanted - read.keys())
    embedding_list = [c for c in embedding_list if c.data_id in rows]
    full_text_list = [c for c in full_text_list if c.data_id in rows]

    if options.search_mode == MIXED_MODE:
        weight = options.embedding_weight
        fused = fusion.rrf([(embedding_list, weight), (full_text_list, 1 - weight)])
    else:
        fused = fusion.rrf([(embedding_list or full_text_list, 1.0)])

    keys: dict[str, str] = {}

    def key(candidate: Candidate) -> str:
        if candidate.data_id not in keys:
            row = rows[candidate.data_id]
            keys[candidate.data_id] = content_key(row.q, row.a)
        return keys[candidate.data_id]

    if options.using_rerank:
        in_embedding = {c.data_id for c in embedding_list}
        in_order = embedding_list + [c for c in full_text_list if c.data_id not in in_embedding]
        reranked = _rerank(result, text, list(unique(in_order, key)), rows, options.rerank_model)
        if reranked is not None:
            recalled = {c.data_id: c for c in fused}  # with both channels' scores
            for candidate in reranked:  # keep the channel scores beside the rerank score
                candidate.scores.update({k: s for k, s in recalled[candidate.data_id].scores.items() if k != fusion.RRF})
            if options.rerank_weight >= 1:
                fused = fusion.rrf([(reranked, 1.0)])
            else:
                fused = fusion.rrf([(fused, 1 - options.rerank_weight), (reranked, options.rerank_weight)])

    # Lazily from here: the budget reads only as many results as it keeps.
    kept = _similarity_filter(result, unique(fused, key), options)
    return _finish(result, kept, rows, options, started)


# --- the steps ------------------------------------------------------------------------------


def _embedding_recall(result, datasets, ids, queries, limit, scope, read: dict) -> list[Candidate]:
    """The vector channel's list; the chunks a backend read with its hits go into `read`."""
    from datasets.search.vector import vector_backend
    from providers.embeddings import embed, has_sparse_vectors

    names = sorted({d.vector_model for d in datasets})
    if len(names) > 1:
        raise BadRequest(
            f"datasetIds: the datasets use different vector models ({', '.join(names)}); "
            "search them separately."
        )
    model = get_model(names[0])
    if model is None or model.type != "embedding":
        raise UpstreamError(f"The datasets' vector model '{names[0]}' is not configured on this server.")
    try:
        embedded = embed(model=model, texts=queries)
    except ProviderError as exc:
        raise exc.as_api_error("Embedding the query failed: ") from exc
    result.embedding_tokens += embedded.tokens
    result.embedding_model = model.name
    backend, sparse = vector_backend(), has_sparse_vectors(model.name)
    lists = []
    for vector in embedded.vectors:
        hits = backend.recall(dataset_ids=ids, query=vector, limit=limit, collection_ids=scope, sparse=sparse)
        read.update((hit.data_id, hit.row) for hit in hits if hit.row is not None)
        lists.append(fusion.ranked(EMBEDDING, [(h.data_id, h.score) for h in hits]))
    return _merge_queries(EMBEDDING, lists)


def _full_text_recall(ids, queries, limit, scope) -> list[Candidate]:
    from datasets.search.fulltext import fulltext_backend
    from providers.words import words

    backend = fulltext_backend()
    lists = []
    for query in queries:
        terms = list(dict.fromkeys(words(query)))
        hits = backend.recall(dataset_ids=ids, words=terms, limit=limit, collection_ids=scope) if terms else []
        lists.append(fusion.ranked(FULL_TEXT, [(h.data_id, h.score) for h in hits]))
    return _merge_queries(FULL_TEXT, lists)


def _merge_queries(kind: str, lists: list[list[Candidate]]) -> list[Candidate]:
    if len(lists) == 1:
        return lists[0]
    merged = fusion.rrf([(candidates, 1.0) for candidates in lists])
    for candidate in merged:
        del candidate.scores[fusion.RRF]
    return fusion.reindex(kind, merged)


def _rerank_model(name: str):
    if name:
        model = get_model(name)
        return model if model is not None and model.type == "rerank" else None
    return next((m for m in all_models().values() if m.type == "rerank"), None)


def _rerank(result, query, candidates, rows, model_name) -> list[Candidate] | None:
    from providers.rerank import rerank

    model = _rerank_model(model_name)
    if model is None:
        what = f"'{model_name}' is not a configured rerank model" if model_name else "no rerank model is configured"
        result.notes.append(f"rerank skipped: {what}; results are not reranked.")
        return None
    if not candidates:
        return None
    documents = [f"{rows[c.data_id].q}\n{rows[c.data_id].a}".strip() for c in candidates]
    try:
        answer = rerank(model=model, query=query, documents=documents)
    except ProviderError as exc:
        result.notes.append(f"rerank failed ({exc.message}); results are not reranked.")
        return None
    result.using_rerank = True
    result.rerank_model = model.name
    result.rerank_tokens += answer.tokens if answer.tokens is not None else (
        count_tokens(query) * len(documents) + sum(count_tokens(d) for d in documents)
    )
    return [
        Candidate(candidates[s.index].data_id, {RERANK: fusion.Score(RERANK, s.score, place)})
        for place, s in enumerate(answer.scores)
    ]


def _similarity_filter(result: SearchResult, candidates: Iterable[Candidate], options: SearchOptions) -> Iterable[Candidate]:
    if result.using_rerank:
        kind = RERANK
    elif options.search_mode == EMBEDDING_MODE:
        kind = EMBEDDING
    else:
        return candidates  # fused and full-text scores have no common scale: not applied
    result.using_similarity_filter = True
    return (c for c in candidates if (c.score(kind) is not None and c.score(kind) >= options.similarity))


def _finish(result, candidates, rows, options, started) -> SearchResult:
    kept = within_budget(
        candidates, limit=options.limit, top_k=options.top_k,
        text_of=lambda c: rows[c.data_id].q + rows[c.data_id].a,
    )
    for candidate in kept:
        row = rows[candidate.data_id]
        result.hits.append(
            SearchHit(
                id=row.id, q=row.q, a=row.a, chunk_index=row.chunk_index, dataset_id=row.dataset_id,
                collection_id=row.collection_id, source_id=row.source_id, source_name=row.source_name,
                update_time=row.updated_at, scores=candidate.score_list(),
            )
        )
    result.duration = time.perf_counter() - started
    return result
