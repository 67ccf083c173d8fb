"""Writes on data items: insert (pushData, chunks of a new collection), update, delete.

An item is written with its indexes (a default q+a index unless the client gives one; at most
5 custom), pending training; training (datasets/training.py) is enqueued after the transaction
commits and, in the background, fills its full-text words (`search_words`, which the
database's full-text index covers) and its vectors — no tokenising or embedding in a request
that inserts thousands of chunks. An edit (update_data) re-tokenises its one item at once. Any change to vectors — a delete here, an index
re-embedded on update — bumps the dataset's `vector_version` in the same transaction.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Subquery, Value, When
from django.utils import timezone

from config.ids import new_object_id

from datasets.models import (
    Collection,
    CollectionStatus,
    Data,
    DataIndex,
    IndexType,
    QaChunk,
    TrainingState,
)
from datasets.search.vector import bump_vector_version
from datasets.services.bulk_writes import DATA_COLUMNS, INDEX_COLUMNS, insert_rows
from keys.models import ApiKey
from keys.services import add_usage
from providers.embeddings import embed
from providers.registry import AiModel
from providers.words import words

MAX_CUSTOM_INDEXES = 5
# Longest q + a accepted (characters): a chunk is ~1,000 characters, a CSV row or a pushed
# item rarely more than a few thousand; beyond this it is skipped, never silently cut.
MAX_DATA_CHARS = getattr(settings, "DATA_MAX_CHARS", 100_000)
INDEX_TYPES = {choice.value for choice in IndexType}


@dataclass
class NewData:
    q: str
    a: str = ""
    chunk_index: int = 0
    indexes: list[dict] = field(default_factory=list)  # [{"type": "custom"|..., "text": str}] as sent


@dataclass
class InsertResult:
    insert_len: int
    skipped: list[dict]  # [{"index": i, "reason": "..."}]


def clean(text: str | None) -> str:
    """Text as stored: stripped, without NUL (PostgreSQL text cannot hold it)."""
    return (text or "").replace("\x00", "").strip()


def search_words_of(q: str, a: str) -> str:
    return " ".join(words(f"{q}\n{a}"))


def default_index_text(q: str, a: str) -> str:
    return f"{q}\n{a}" if a else q


def _index_problem(indexes: list[dict]) -> str | None:
    """Why the client's indexes cannot be stored, or None."""
    custom = 0
    for position, index in enumerate(indexes):
        if not isinstance(index, dict):
            return f"indexes[{position}] is not an object"
        kind = index.get("type") or IndexType.CUSTOM
        if kind not in INDEX_TYPES:
            return f"indexes[{position}].type must be one of {', '.join(sorted(INDEX_TYPES))}"
        text = index.get("text")
        if not isinstance(text, str) or not clean(text):
            return f"indexes[{position}].text is empty"
        custom += kind == IndexType.CUSTOM
    if custom > MAX_CUSTOM_INDEXES:
        return f"more than {MAX_CUSTOM_INDEXES} custom indexes ({custom})"
    return None


def _indexes_for(q: str, a: str, sent: list[dict]) -> list[tuple[str, str]]:
    """(type, text) of an item's indexes: the client's, plus the default q+a one unless given."""
    out = [(index.get("type") or IndexType.CUSTOM, clean(index["text"])) for index in sent]
    if not any(kind == IndexType.DEFAULT for kind, _ in out):
        out.insert(0, (IndexType.DEFAULT, default_index_text(q, a)))
    return out


def insert_data(
    *,
    collection: Collection,
    items: list[NewData],
    usage_key_id: int | None = None,
    bill_id: str | None = None,
    embed_now: AiModel | None = None,
) -> InsertResult:
    """Store `items` in `collection`, pending training, and enqueue training after commit.

    `embed_now` (a local model only — the built-in embedding, which cannot fail or be slow):
    the items are tokenised and embedded here and written ready, with no training to follow.
    The worker's read of a text, file or link source uses it: written once, instead of pending
    and then rewritten by training (PostgreSQL's largest cost per chunk after the HNSW insert,
    docs/benchmarks.md). Requests never do: they answer without embedding.

    Skipped (with the reason, never an error): an empty q, q + a over MAX_DATA_CHARS, bad
    indexes, an item repeating an earlier one of the same call (same q and a)."""
    skipped: list[dict] = []
    seen: dict[tuple[str, str], int] = {}
    rows: list[tuple] = []  # bulk_writes.DATA_COLUMNS
    index_rows: list[tuple] = []  # bulk_writes.INDEX_COLUMNS
    now = timezone.now()
    team_id, dataset_id, collection_id = collection.team_id, collection.dataset_id, collection.pk
    pending = TrainingState.PENDING.value
    for position, item in enumerate(items):
        q, a = clean(item.q), clean(item.a)
        if not q:
            skipped.append({"index": position, "reason": "q is empty"})
            continue
        if len(q) + len(a) > MAX_DATA_CHARS:
            skipped.append({"index": position, "reason": f"q + a is longer than {MAX_DATA_CHARS} characters"})
            continue
        problem = _index_problem(item.indexes or [])
        if problem:
            skipped.append({"index": position, "reason": problem})
            continue
        if (q, a) in seen:
            skipped.append({"index": position, "reason": f"duplicate of item {seen[(q, a)]}"})
            continue
        seen[(q, a)] = position
        data_id = new_object_id()
        # A microsecond apart, so items of one call list in the order sent (chunk_index, created_at).
        stamp = now + timedelta(microseconds=len(rows))
        # search_words "": tokenised by training, off the request (create/text of 5 MB).
        rows.append((
            data_id, team_id, dataset_id, collection_id, q, a, item.chunk_index, "", pending, 0, "", None, "",
            bill_id or "", stamp, stamp,
        ))
        index_rows.extend(
            (new_object_id(), data_id, dataset_id, collection_id, kind, text, None, 0)
            for kind, text in _indexes_for(q, a, item.indexes or [])
        )
    if not rows:
        return InsertResult(insert_len=0, skipped=skipped)
    tokens = _embed_now(embed_now, rows, index_rows) if embed_now is not None else 0
    with transaction.atomic():
        insert_rows(data=rows, indexes=index_rows)
        changes = {"status": CollectionStatus.TRAINING, "error_message": ""}
        if usage_key_id is not None:
            changes["usage_key_id"] = usage_key_id
        Collection.objects.filter(pk=collection.pk).update(**changes)
        for name, value in changes.items():
            setattr(collection, name, value)
        if embed_now is None:
            _train_after_commit(collection.pk, items=len(rows))
        else:
            bump_vector_version(dataset_ids=[dataset_id])
            refresh_collection_status(collection_id=collection.pk)  # ready, unless other items are pending
            key = ApiKey.objects.filter(pk=collection.usage_key_id).first() if collection.usage_key_id else None
            if key is not None and tokens:
                add_usage(key=key, points=tokens)
    return InsertResult(insert_len=len(rows), skipped=skipped)


def _embed_now(model: AiModel, rows: list[tuple], index_rows: list[tuple]) -> int:
    """Fill `rows` (bulk_writes.DATA_COLUMNS) ready with their words, and `index_rows`
    (INDEX_COLUMNS) with their vectors, in place; the embedding tokens to bill."""
    q_at, a_at = DATA_COLUMNS.index("q"), DATA_COLUMNS.index("a")
    words_at, state_at = DATA_COLUMNS.index("search_words"), DATA_COLUMNS.index("training_state")
    text_at, vector_at, size_at = (INDEX_COLUMNS.index(name) for name in ("text", "embedding", "dimensions"))
    item_words = {}
    for position, row in enumerate(rows):
        found = words(f"{row[q_at]}\n{row[a_at]}")  # as training tokenises an item
        item_words[row[0]] = (default_index_text(row[q_at], row[a_at]), found)
        row = list(row)
        row[words_at], row[state_at] = " ".join(found), TrainingState.READY.value
        rows[position] = tuple(row)
    # The default index's text is q + a: its words are the item's, already at hand.
    words_of = []
    for row in index_rows:
        default_text, found = item_words[row[1]]
        words_of.append(found if row[text_at] == default_text else None)
    embedded = embed(model=model, texts=[row[text_at] for row in index_rows], words_of=words_of)
    for position, (row, vector) in enumerate(zip(index_rows, embedded.vectors)):
        row = list(row)
        row[vector_at], row[size_at] = vector, len(vector)
        index_rows[position] = tuple(row)
    return embedded.tokens


def update_data(*, data: Data, q: str | None, a: str | None, indexes: list[dict] | None) -> Data:
    """Change an item's q/a and/or indexes. `indexes` given: the item's indexes become exactly
    those (an entry with the `dataId` of an existing index keeps that id and, if its text is
    unchanged, its vector), plus the default q+a index unless one is given. Changed or new
    indexes are re-embedded in the background; the item is pending until then."""
    new_q = data.q if q is None else clean(q)
    new_a = data.a if a is None else clean(a)
    if not new_q:
        raise ValueError("q is empty")
    if len(new_q) + len(new_a) > MAX_DATA_CHARS:
        raise ValueError(f"q + a is longer than {MAX_DATA_CHARS} characters")
    if indexes is not None:
        problem = _index_problem(indexes)
        if problem:
            raise ValueError(problem)
    with transaction.atomic():
        # Locked first (training locks the item before its indexes too), so a worker finishing
        # this item either commits before us or finds its claim gone.
        data = Data.objects.select_for_update().get(pk=data.pk)
        existing = {index.pk: index for index in data.indexes.all()}
        wanted: list[tuple[str | None, str, str]] = []  # (existing id or None, type, text)
        if indexes is None:
            for index in existing.values():
                if index.type == IndexType.DEFAULT:
                    wanted.append((index.pk, index.type, default_index_text(new_q, new_a)))
                else:
                    wanted.append((index.pk, index.type, index.text))
            if not any(kind == IndexType.DEFAULT for _, kind, _ in wanted):
                wanted.insert(0, (None, IndexType.DEFAULT, default_index_text(new_q, new_a)))
        else:
            used: set[str] = set()
            for index in indexes:
                known = index.get("dataId")
                known = known if known in existing and known not in used else None  # a repeat is new
                used.add(known)
                wanted.append((known, index.get("type") or IndexType.CUSTOM, clean(index["text"])))
            if not any(kind == IndexType.DEFAULT for _, kind, _ in wanted):
                default_id = next((pk for pk, i in existing.items() if i.type == IndexType.DEFAULT), None)
                if default_id in {pk for pk, _, _ in wanted}:
                    default_id = None
                wanted.insert(0, (default_id, IndexType.DEFAULT, default_index_text(new_q, new_a)))

        kept_ids = {pk for pk, _, _ in wanted if pk}
        removed = [pk for pk in existing if pk not in kept_ids]
        vectors_changed = any(existing[pk].embedding is not None for pk in removed)
        to_embed = False
        for pk, kind, text in wanted:
            if pk is None:
                DataIndex.objects.create(
                    data=data, dataset_id=data.dataset_id, collection_id=data.collection_id, type=kind, text=text
                )
                to_embed = True
                continue
            index = existing[pk]
            if index.text != text or index.embedding is None:
                vectors_changed |= index.embedding is not None
                index.text, index.type, index.embedding, index.dimensions = text, kind, None, 0
                index.save(update_fields=["text", "type", "embedding", "dimensions"])
                to_embed = True
            elif index.type != kind:
                index.type = kind
                index.save(update_fields=["type"])
        if removed:
            DataIndex.objects.filter(pk__in=removed).delete()

        data.q, data.a = new_q, new_a
        data.search_words = search_words_of(new_q, new_a)
        fields = ["q", "a", "search_words", "updated_at"]
        if to_embed:
            data.training_state = TrainingState.PENDING
            data.train_attempts, data.train_error, data.train_claim, data.train_next_at = 0, "", "", None
            fields += ["training_state", "train_attempts", "train_error", "train_claim", "train_next_at"]
        data.save(update_fields=fields)
        if vectors_changed:
            bump_vector_version(dataset_ids=[data.dataset_id])
        if to_embed:
            Collection.objects.filter(pk=data.collection_id).update(status=CollectionStatus.TRAINING)
            _train_after_commit(data.collection_id)
    return data


def delete_data(*, data: Data) -> None:
    """Delete an item with its indexes, vectors and full-text words."""
    with transaction.atomic():
        data.delete()
        bump_vector_version(dataset_ids=[data.dataset_id])
        refresh_collection_status(collection_id=data.collection_id)


def delete_collection_data(*, collection_ids: list[str]) -> int:
    """Delete every item of the collections (their indexes, vectors and full-text rows go with
    them: the SQLite FTS5 rows by trigger), invalidating the datasets' cached vectors in the
    same transaction. Returns how many items were deleted."""
    collection_ids = list(collection_ids)
    deleted = 0
    with transaction.atomic():
        dataset_ids = set(
            Collection.objects.filter(pk__in=collection_ids).values_list("dataset_id", flat=True)
        )
        for start in range(0, len(collection_ids), 500):
            chunk = collection_ids[start : start + 500]
            # Indexes first, in one statement (the cascade would fetch their ids item by item).
            DataIndex.objects.filter(collection_id__in=chunk).delete()
            _, per_model = Data.objects.filter(collection_id__in=chunk).delete()
            deleted += per_model.get(Data._meta.label, 0)
        bump_vector_version(dataset_ids=dataset_ids)
    return deleted


def refresh_collection_status(*, collection_id: str) -> None:
    """A collection's state from its items, in one statement: `error` when an item failed
    (with its message), else `training` while items are pending, else `ready` (an error from
    reading the source, with no item behind it, stays)."""
    items = Data.objects.filter(collection_id=OuterRef("pk"))
    failed = items.filter(training_state=TrainingState.ERROR)
    pending = items.filter(training_state=TrainingState.PENDING)
    # `qa` collections: chunks still waiting for the language model count as items too.
    qa_chunks = QaChunk.objects.filter(collection_id=OuterRef("pk"))
    qa_failed = qa_chunks.filter(training_state=TrainingState.ERROR)
    qa_pending = qa_chunks.filter(training_state=TrainingState.PENDING)
    Collection.objects.filter(pk=collection_id).update(
        status=Case(
            When(Exists(failed) | Exists(qa_failed), then=Value(CollectionStatus.ERROR)),
            When(Exists(pending) | Exists(qa_pending), then=Value(CollectionStatus.TRAINING)),
            When(status=CollectionStatus.TRAINING, then=Value(CollectionStatus.READY)),
            default=F("status"),
            output_field=Collection._meta.get_field("status"),
        ),
        error_message=Case(
            When(Exists(failed), then=Subquery(failed.order_by("updated_at").values("train_error")[:1])),
            When(Exists(qa_failed), then=Subquery(qa_failed.order_by("updated_at").values("train_error")[:1])),
            When(Exists(pending) | Exists(qa_pending), then=Value("")),
            When(status=CollectionStatus.TRAINING, then=Value("")),
            default=F("error_message"),
            output_field=Collection._meta.get_field("error_message"),
        ),
    )


def _train_after_commit(collection_id: str, items: int = 1) -> None:
    from datasets.training import enqueue_training, tasks_for

    transaction.on_commit(lambda: enqueue_training(collection_id=collection_id, tasks=tasks_for(items)))
