"""Claims on training work (data items to embed, `qa` chunks to send to a model).

A worker takes a collection's due pending rows under a random token and a lease
(`train_next_at`): several workers share a collection without taking the same rows, and the
rows of a worker that died come back when its lease ends. A worker writes its outcome only
to rows still carrying its token, so a row edited meanwhile is not overwritten.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from datasets.models import TrainingState


def claim_due(model: type[Model], *, collection_id: str, size: int) -> tuple[str, list[str]]:
    """Claim up to `size` due pending rows of `model` in the collection, in chunk order:
    (the claim token, their ids)."""
    now = timezone.now()
    token = secrets.token_hex(16)
    due = model.objects.filter(collection_id=collection_id, training_state=TrainingState.PENDING).filter(
        Q(train_next_at__isnull=True) | Q(train_next_at__lte=now)
    )
    with transaction.atomic():
        candidates = due.order_by("chunk_index", "id")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("id", flat=True)[:size])
        if ids:
            # The same conditions again: on SQLite (no row locks) the write lock serialises claims.
            due.filter(id__in=ids).update(
                train_claim=token, train_next_at=now + timedelta(seconds=settings.TRAINING_CLAIM_SECONDS)
            )
    return token, ids
