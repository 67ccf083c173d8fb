"""Training: embed the pending items of a collection in batches and make them searchable.

A task (`datasets.tasks.train_collection`) runs `train_collection()` in a worker process
(`manage.py db_worker`). It claims up to TRAINING_BATCH_SIZE pending items at a time — a claim
is a random token and a lease (TRAINING_CLAIM_SECONDS), so several workers share a collection
without embedding an item twice, and a crashed worker's items become claimable again —
tokenises them (inserts leave that to this step), embeds their indexes that have no vector
yet, and in one transaction writes the vectors, marks the items ready (with their full-text
words) and bumps the dataset's `vector_version`. Embedding tokens are added to the usage points
of the collection's `usage_key` (and to the push's training bill, if any).

A batch the provider refuses (a 4xx: one bad text?) is halved until the culprit is alone, so
its neighbours still train. A batch that fails (the provider errs or times out, or an internal
error) is retried with exponential backoff (TRAINING_RETRY_BASE_SECONDS × 2^(attempt−1)) by a
deferred task; after TRAINING_MAX_ATTEMPTS attempts its items are in state `error` with the
message, and so is their collection. Nothing is dropped: `retrain_failed()` (the `retrain_failed` command, the admin
action) puts failed items back to pending and enqueues them, and re-enqueues collections whose
pending items were left behind by a worker that died.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from datasets.models import (
    Collection,
    CollectionStatus,
    Data,
    DataIndex,
    Dataset,
    IndexType,
    TrainingBill,
    TrainingState,
)
from datasets.search.vector import bump_vector_version
from datasets.services.bulk_writes import mark_trained, replace_indexes
from datasets.services.data import default_index_text, refresh_collection_status
from datasets.training_claims import claim_due
from keys.models import ApiKey
from keys.services import add_usage
from providers.embeddings import EmbeddingRejected, embed
from providers.errors import ProviderError
from providers.registry import get_model
from providers.words import words

logger = logging.getLogger(__name__)


@dataclass
class TrainingReport:
    trained: int = 0  # items made searchable
    retrying: int = 0  # items whose batch failed and will be retried
    failed: int = 0  # items that failed for good
    tokens: int = 0

    def as_dict(self) -> dict:
        return {"trained": self.trained, "retrying": self.retrying, "failed": self.failed, "tokens": self.tokens}


class TrainingFailed(Exception):
    """A batch could not be embedded (its message is shown on the items and collection).
    `rejected`: the provider refused the input (a 4xx), so one text may be to blame."""

    def __init__(self, message: str, *, rejected: bool = False):
        super().__init__(message)
        self.rejected = rejected


def enqueue_training(*, collection_id: str, run_after: datetime | None = None, tasks: int = 1) -> None:
    """Queue `tasks` training tasks for the collection (several workers can then share it),
    deferred to `run_after` when the backend supports it (otherwise a task runs now and finds
    the items not due yet)."""
    from datasets.tasks import train_collection as task

    if run_after is not None and task.get_backend().supports_defer:
        task = task.using(run_after=run_after)
    for _ in range(max(1, tasks)):
        task.enqueue(collection_id)


def tasks_for(items: int) -> int:
    """How many tasks to queue for `items` new items: one per batch, at most TRAINING_PARALLEL_TASKS."""
    return max(1, min(settings.TRAINING_PARALLEL_TASKS, math.ceil(items / settings.TRAINING_BATCH_SIZE)))


def train_collection(*, collection_id: str) -> TrainingReport:
    """Train the collection's due pending items, batch after batch, until none is left (or
    TRAINING_TASK_MAX_BATCHES were done: then a continuation task is queued)."""
    report = TrainingReport()
    collection = Collection.objects.select_related("dataset").filter(pk=collection_id).first()
    if collection is None:
        return report  # deleted meanwhile: its items went with it
    more = False
    try:
        for _ in range(settings.TRAINING_TASK_MAX_BATCHES):
            token, items = claim_batch(collection_id=collection_id)
            if not items:
                break
            try:
                _train_batch(collection, token, items, report)
            except Exception as exc:
                # A bug or a database error: count the attempt (so it is retried, then shown)
                # rather than leave the batch claimed until its lease runs out.
                logger.exception("Training collection %s failed", collection_id)
                message = f"Training failed with an internal error ({type(exc).__name__}); the worker log has the details."
                _fail_batch(collection, token, [item.pk for item in items], message, report, {})
                raise
        else:
            more = True
    finally:
        refresh_collection_status(collection_id=collection_id)
    if more:
        # The rest in a new task: a worker asked to stop finishes this one soon, and the queue
        # stays fair to other collections.
        enqueue_training(collection_id=collection_id)
    return report


def claim_batch(*, collection_id: str, size: int | None = None) -> tuple[str, list[Data]]:
    """Claim up to `size` due pending items of the collection: (claim token, items)."""
    token, ids = claim_due(Data, collection_id=collection_id, size=size or settings.TRAINING_BATCH_SIZE)
    if not ids:
        return token, []
    return token, list(
        Data.objects.filter(pk__in=ids, train_claim=token).only("id", "bill_id", "q", "a", "search_words")
    )


def _tokenise(items: list[Data]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each item's full-text words, and the `search_words` to store for items that have none
    yet (inserts leave the tokenising to training). They are stored with the batch's outcome —
    ready or failed — so an item whose embedding fails is still found by full text."""
    found: dict[str, list[str]] = {}
    missing: dict[str, str] = {}
    for item in items:
        if item.search_words:
            found[item.pk] = item.search_words.split(" ")
        else:
            found[item.pk] = words(f"{item.q}\n{item.a}")
            if found[item.pk]:
                missing[item.pk] = " ".join(found[item.pk])
    return found, missing


def _train_batch(
    collection: Collection, token: str, items: list[Data], report: TrainingReport,
    tokenised: tuple[dict[str, list[str]], dict[str, str]] | None = None,
) -> None:
    ids = [item.pk for item in items]
    item_words, missing_words = tokenised or _tokenise(items)
    by_pk = {item.pk: item for item in items}
    indexes = list(
        DataIndex.objects.filter(data_id__in=ids, embedding__isnull=True).only(
            "id", "data_id", "dataset_id", "collection_id", "type", "text"
        )
    )
    # The default index's text is q + a: its words are the item's, already at hand.
    words_of = [
        item_words[index.data_id]
        if index.type == IndexType.DEFAULT
        and index.text == default_index_text(by_pk[index.data_id].q, by_pk[index.data_id].a)
        else None
        for index in indexes
    ]
    try:
        vectors, tokens = _embed(collection.dataset, [index.text for index in indexes], words_of)
    except TrainingFailed as exc:
        if exc.rejected and len(items) > 1:
            # One refused text must not fail its neighbours: halve the batch until it is alone.
            middle = len(items) // 2
            for half in (items[:middle], items[middle:]):
                _train_batch(collection, token, half, report, (item_words, missing_words))
        else:
            _fail_batch(collection, token, ids, str(exc), report, missing_words)
        return
    still = _store_trained(collection, token, ids, indexes, vectors, missing_words)
    report.trained += len(still)
    report.tokens += tokens
    _bill(collection, items, still, tokens)


def _store_trained(
    collection: Collection, token: str, ids: list[str], indexes: list[DataIndex], vectors: np.ndarray,
    missing_words: dict[str, str],
) -> set[str]:
    """Write the batch's vectors and mark its items ready (with their new words), in one
    transaction; returns the ids of the items that were still claimed by `token`."""
    with transaction.atomic():
        # Items edited or deleted since the claim lost it: their vectors are not written (the
        # edit queued them again). Locking the items first keeps the edit's order.
        claimed = Data.objects.filter(pk__in=ids, train_claim=token)
        if connection.features.has_select_for_update:
            claimed = claimed.select_for_update()
        still = set(claimed.order_by("pk").values_list("pk", flat=True))
        replace_indexes(rows=[
            (index.pk, index.data_id, index.dataset_id, index.collection_id, index.type, index.text, vector, len(vector))
            for index, vector in zip(indexes, vectors)
            if index.data_id in still
        ])
        mark_trained(
            token=token, items=[(pk, missing_words.get(pk)) for pk in sorted(still)], ready=TrainingState.READY.value
        )
        bump_vector_version(dataset_ids=[collection.dataset_id])
    return still


def _embed(dataset: Dataset, texts: list[str], words_of: list[list[str] | None]):
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), 0
    model = get_model(dataset.vector_model)
    if model is None or model.type != "embedding":
        raise TrainingFailed(f"The embedding model {dataset.vector_model!r} is not declared in AI_MODELS.")
    try:
        embedded = embed(model=model, texts=texts, words_of=words_of)
    except ProviderError as exc:
        raise TrainingFailed(exc.message, rejected=isinstance(exc, EmbeddingRejected)) from exc
    except Exception as exc:  # a bug must not leave the batch claimed and silent
        logger.exception("Embedding failed for dataset %s", dataset.pk)
        raise TrainingFailed(f"Embedding failed with an internal error ({type(exc).__name__}).") from exc
    return embedded.vectors, embedded.tokens


def _fail_batch(
    collection: Collection, token: str, ids: list[str], message: str, report: TrainingReport,
    missing_words: dict[str, str],
) -> None:
    """Count an attempt on the batch's items: retry later with backoff, or fail them for good."""
    now = timezone.now()
    retry_at: datetime | None = None
    table = connection.ops.quote_name(Data._meta.db_table)
    with transaction.atomic():
        rows = list(Data.objects.filter(pk__in=ids, train_claim=token).values_list("pk", "train_attempts"))
        words_rows = [(missing_words[pk], pk, token) for pk, _ in rows if pk in missing_words]
        if words_rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET search_words = %s WHERE id = %s AND train_claim = %s", words_rows
                )
        by_attempts: dict[int, list[str]] = {}
        for pk, attempts in rows:
            by_attempts.setdefault(attempts + 1, []).append(pk)
        for attempts, pks in by_attempts.items():
            if attempts >= settings.TRAINING_MAX_ATTEMPTS:
                Data.objects.filter(pk__in=pks, train_claim=token).update(
                    training_state=TrainingState.ERROR, train_attempts=attempts, train_claim="",
                    train_next_at=None, train_error=f"{message} (after {attempts} attempts)"[:2000],
                )
                report.failed += len(pks)
            else:
                due = now + timedelta(seconds=settings.TRAINING_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
                Data.objects.filter(pk__in=pks, train_claim=token).update(
                    train_attempts=attempts, train_claim="", train_next_at=due,
                    train_error=f"{message} (attempt {attempts} of {settings.TRAINING_MAX_ATTEMPTS}; retrying)"[:2000],
                )
                report.retrying += len(pks)
                retry_at = due if retry_at is None else min(retry_at, due)
    logger.warning("Training collection %s: %d items failed: %s", collection.pk, len(rows), message)
    if retry_at is not None:
        transaction.on_commit(lambda: enqueue_training(collection_id=collection.pk, run_after=retry_at))


def _bill(collection: Collection, items: list[Data], trained: set[str], tokens: int) -> None:
    """Add the batch's tokens to the usage key's points and to the pushes' training bills."""
    if tokens <= 0:
        return
    if collection.usage_key_id:
        key = ApiKey.objects.filter(pk=collection.usage_key_id).first()
        if key is not None:
            add_usage(key=key, points=tokens)
    bills = [item.bill_id for item in items if item.bill_id and item.pk in trained]
    if bills:
        # The tokens split over the bills in proportion to their items.
        for bill_id in set(bills):
            share = round(tokens * bills.count(bill_id) / len(items))
            TrainingBill.objects.filter(pk=bill_id).update(tokens=F("tokens") + share)


def retrain_failed(*, collection_ids: list[str] | None = None) -> int:
    """Put failed items back to pending (attempts reset) and enqueue their collections, plus
    any collection whose pending items no task will pick up (a worker died holding them).
    Returns how many failed items were reset."""
    now = timezone.now()
    failed = Data.objects.filter(training_state=TrainingState.ERROR)
    if collection_ids is not None:
        failed = failed.filter(collection_id__in=collection_ids)
    with transaction.atomic():
        touched = set(failed.values_list("collection_id", flat=True))
        reset = failed.update(
            training_state=TrainingState.PENDING, train_attempts=0, train_error="", train_claim="", train_next_at=None
        )
        Collection.objects.filter(pk__in=touched).update(status=CollectionStatus.TRAINING, error_message="")
    stalled = Data.objects.filter(training_state=TrainingState.PENDING).filter(
        Q(train_next_at__isnull=True) | Q(train_next_at__lte=now)
    )
    if collection_ids is not None:
        stalled = stalled.filter(collection_id__in=collection_ids)
    touched |= set(stalled.values_list("collection_id", flat=True).distinct())
    for collection_id in sorted(touched):
        enqueue_training(collection_id=collection_id)
    from datasets.services.collections import requeue_unread_sources
    from datasets.training_qa import retrain_failed_qa  # `qa` chunks waiting for the language model

    requeue_unread_sources(collection_ids=collection_ids)  # sources whose read task was lost
    return reset + retrain_failed_qa(collection_ids=collection_ids)
