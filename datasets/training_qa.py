"""`qa` training: a language model reads each chunk and writes question/answer pairs, which
become the collection's data items (FastGPT's QA mode).

A `qa` collection's chunks (and items pushed with `trainingType: qa`) wait as `QaChunk` rows,
counted in `trainingAmount`. The `generate_qa` task claims them one at a time (a random token
and a lease, as training claims data items, so several workers share a collection), sends the
chunk to the dataset's `agentModel` with the QA prompt, parses the answer's `Q1: … A1: …`
pairs and, in one transaction, inserts them as data items (pending embedding: the usual
training then makes them searchable) and deletes the chunk. The model's tokens are added to
the usage points of the collection's `usage_key` and to the push's training bill.

An answer with no pair in it is a failure like a provider error: the chunk is retried with
backoff (TRAINING_RETRY_BASE_SECONDS × 2^(attempt−1)); after TRAINING_MAX_ATTEMPTS it is in
state `error` with the message, shown on its collection; `retrain_failed` puts it back.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from datasets.models import Collection, CollectionStatus, QaChunk, TrainingBill, TrainingState
from datasets.services.data import MAX_DATA_CHARS, InsertResult, NewData, clean, insert_data, refresh_collection_status
from datasets.training_claims import claim_due
from keys.models import ApiKey
from keys.services import add_usage
from providers.chat_models import complete_sync
from providers.errors import ProviderError
from providers.registry import get_model

logger = logging.getLogger(__name__)

# The instructions (FastGPT's QA prompt in our words). A client's own `prompt`/`qaPrompt`
# replaces them; the answer format and the text below are always appended, so the answer can
# be parsed whatever the instructions. `{{theme}}` may appear in either.
DEFAULT_THEME = "it may cover several topics"
DEFAULT_INSTRUCTIONS = """The text between <Context></Context> is source material ({{theme}}). Study it and write down what it teaches as questions with their answers:
- Ask the questions a reader of this text would ask, and answer each one.
- Answers are detailed and complete; keep the text's own wording where you can, and add explanation where it helps.
- Answers may use Markdown: lists, links, code, tables, formulas.
- Ask at most 50 questions.
- Write the questions and answers in the language of the text."""
ANSWER_FORMAT = """

Write them in exactly this format, nothing else:
Q1: the first question?
A1: its answer.
Q2: the second question?
A2: its answer.

<Context>
{{text}}
</Context>"""

# A question or answer marker at the start of a line: "Q1:", "Q:", "q 2：", "**Q3:**", "- A4:" …
_MARKER = re.compile(r"^[ \t>*#_-]*([QqAa])[ \t]*(\d*)[ \t]*[:：][ \t*_]*", re.MULTILINE)


class QaUnparsable(Exception):
    """The model's answer holds no question/answer pair."""


@dataclass
class QaReport:
    generated: int = 0  # chunks turned into items
    retrying: int = 0
    failed: int = 0
    tokens: int = 0

    def as_dict(self) -> dict:
        return {"generated": self.generated, "retrying": self.retrying, "failed": self.failed, "tokens": self.tokens}


# --- queueing -------------------------------------------------------------------------------


def queue_qa(
    *, collection: Collection, items: list[NewData], prompt: str = "", bill_id: str | None = None,
    usage_key_id: int | None = None,
) -> InsertResult:
    """Keep ``items`` (chunks, or pushed q/a items) as chunks for the language model, pending,
    and enqueue the task after commit. Skipped (with the reason): an empty text, one over
    MAX_DATA_CHARS, a repeat of an earlier item of the same call."""
    skipped: list[dict] = []
    seen: dict[str, int] = {}
    rows: list[QaChunk] = []
    for position, item in enumerate(items):
        q, a = clean(item.q), clean(item.a)
        text = f"{q}\n{a}" if a else q
        if not q:
            skipped.append({"index": position, "reason": "q is empty"})
        elif len(text) > MAX_DATA_CHARS:
            skipped.append({"index": position, "reason": f"q + a is longer than {MAX_DATA_CHARS} characters"})
        elif text in seen:
            skipped.append({"index": position, "reason": f"duplicate of item {seen[text]}"})
        else:
            seen[text] = position
            rows.append(
                QaChunk(collection=collection, text=text, chunk_index=item.chunk_index, prompt=prompt or "", bill_id=bill_id or "")
            )
    if rows:
        with transaction.atomic():
            QaChunk.objects.bulk_create(rows, batch_size=500)
            changes = {"status": CollectionStatus.TRAINING, "error_message": ""}
            if usage_key_id is not None:  # whose points the model's tokens spend
                changes["usage_key_id"] = usage_key_id
            Collection.objects.filter(pk=collection.pk).update(**changes)
            for name, value in changes.items():
                setattr(collection, name, value)
            tasks = max(1, min(settings.TRAINING_PARALLEL_TASKS, len(rows)))
            transaction.on_commit(lambda: enqueue_qa(collection_id=collection.pk, tasks=tasks))
    return InsertResult(insert_len=len(rows), skipped=skipped)


def enqueue_qa(*, collection_id: str, run_after: datetime | None = None, tasks: int = 1) -> None:
    from datasets.tasks import generate_qa as task

    if run_after is not None and task.get_backend().supports_defer:
        task = task.using(run_after=run_after)
    for _ in range(max(1, tasks)):
        task.enqueue(collection_id)


# --- the prompt and the answer ----------------------------------------------------------------


def qa_prompt(text: str, instructions: str = "") -> str:
    """The user message asking for the pairs of ``text`` (``instructions``: the client's own)."""
    prompt = (instructions.strip() or DEFAULT_INSTRUCTIONS) + ANSWER_FORMAT
    return prompt.replace("{{theme}}", DEFAULT_THEME).replace("{{text}}", text)


def parse_qa(answer: str) -> list[tuple[str, str]]:
    """The (question, answer) pairs of a model's answer in `Q1: … A1: …` form: numbers may be
    missing or wrong, text before the first question is ignored, a question without an answer
    is dropped. QaUnparsable if no pair is found."""
    markers = list(_MARKER.finditer(answer or ""))
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for position, marker in enumerate(markers):
        end = markers[position + 1].start() if position + 1 < len(markers) else len(answer)
        body = answer[marker.end():end].strip()
        if marker.group(1) in "Qq":
            question = body
        elif question:  # an answer, after a question
            if body:
                pairs.append((question, body))
            question = None
    if not pairs:
        shown = " ".join((answer or "").split())[:200]
        raise QaUnparsable(
            f"The language model's answer held no question/answer pair in the Q1:/A1: format "
            f"(it began: {shown!r})." if shown else "The language model answered nothing."
        )
    return pairs


# --- the task -------------------------------------------------------------------------------


def generate_qa(*, collection_id: str) -> QaReport:
    """Turn the collection's due QA chunks into items, one model call each, until none is left
    (or TRAINING_TASK_MAX_BATCHES were done: then a continuation task is queued)."""
    report = QaReport()
    collection = Collection.objects.select_related("dataset").filter(pk=collection_id).first()
    if collection is None:
        return report
    more = False
    try:
        for _ in range(settings.TRAINING_TASK_MAX_BATCHES):
            token, chunk = claim_chunk(collection_id=collection_id)
            if chunk is None:
                break
            try:
                _generate(collection, token, chunk, report)
            except Exception as exc:
                logger.exception("QA generation for collection %s failed", collection_id)
                _fail(collection, token, chunk, f"QA generation failed with an internal error ({type(exc).__name__}).", report)
                raise
        else:
            more = True
    finally:
        refresh_collection_status(collection_id=collection_id)
    if more:
        enqueue_qa(collection_id=collection_id)
    return report


def claim_chunk(*, collection_id: str) -> tuple[str, QaChunk | None]:
    """Claim the collection's next due pending QA chunk: (claim token, chunk or None)."""
    token, ids = claim_due(QaChunk, collection_id=collection_id, size=1)
    return token, (QaChunk.objects.filter(pk=ids[0], train_claim=token).first() if ids else None)


def _generate(collection: Collection, token: str, chunk: QaChunk, report: QaReport) -> None:
    model = get_model(collection.dataset.agent_model)
    if model is None or model.type != "llm" or model.is_builtin:
        _fail(collection, token, chunk, f"The dataset's agentModel {collection.dataset.agent_model!r} is not a language model declared in AI_MODELS.", report)
        return
    messages = [{"role": "user", "content": qa_prompt(chunk.text, chunk.prompt)}]
    try:
        completion = complete_sync(model=model, messages=messages, temperature=0.3, max_tokens=model.max_response)
    except ProviderError as exc:
        _fail(collection, token, chunk, exc.message, report)
        return
    tokens = completion.usage.total_tokens
    _bill(collection, chunk, tokens)  # spent whether or not the answer parses
    report.tokens += tokens
    try:
        pairs = parse_qa(completion.text)
    except QaUnparsable as exc:
        _fail(collection, token, chunk, str(exc), report)
        return
    with transaction.atomic():
        # A chunk deleted (its collection) or reclaimed meanwhile is not written twice.
        if not QaChunk.objects.select_for_update().filter(pk=chunk.pk, train_claim=token).exists():
            return
        insert_data(
            collection=collection,
            items=[NewData(q=q, a=a, chunk_index=chunk.chunk_index) for q, a in pairs],
            bill_id=chunk.bill_id or None,
        )
        QaChunk.objects.filter(pk=chunk.pk).delete()
    report.generated += 1


def _fail(collection: Collection, token: str, chunk: QaChunk, message: str, report: QaReport) -> None:
    """Count an attempt: retry later with backoff, or fail the chunk for good."""
    attempts = chunk.train_attempts + 1
    claimed = QaChunk.objects.filter(pk=chunk.pk, train_claim=token)
    if attempts >= settings.TRAINING_MAX_ATTEMPTS:
        claimed.update(
            training_state=TrainingState.ERROR, train_attempts=attempts, train_claim="", train_next_at=None,
            train_error=f"{message} (after {attempts} attempts)"[:2000],
        )
        report.failed += 1
    else:
        due = timezone.now() + timedelta(seconds=settings.TRAINING_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
        updated = claimed.update(
            train_attempts=attempts, train_claim="", train_next_at=due,
            train_error=f"{message} (attempt {attempts} of {settings.TRAINING_MAX_ATTEMPTS}; retrying)"[:2000],
        )
        if updated:
            report.retrying += 1
            enqueue_qa(collection_id=collection.pk, run_after=due)
    logger.warning("QA generation for collection %s: chunk %s failed: %s", collection.pk, chunk.pk, message)


def _bill(collection: Collection, chunk: QaChunk, tokens: int) -> None:
    """The model's tokens to the usage key's points and the push's training bill."""
    if tokens <= 0:
        return
    if collection.usage_key_id:
        key = ApiKey.objects.filter(pk=collection.usage_key_id).first()
        if key is not None:
            add_usage(key=key, points=tokens)
    if chunk.bill_id:
        TrainingBill.objects.filter(pk=chunk.bill_id).update(tokens=F("tokens") + tokens)


# --- retraining -----------------------------------------------------------------------------


def retrain_failed_qa(*, collection_ids: list[str] | None = None) -> int:
    """Put failed QA chunks back to pending and enqueue their collections, plus any collection
    whose pending chunks no task will pick up. Returns how many failed chunks were reset."""
    now = timezone.now()
    failed = QaChunk.objects.filter(training_state=TrainingState.ERROR)
    stalled = QaChunk.objects.filter(training_state=TrainingState.PENDING).filter(
        Q(train_next_at__isnull=True) | Q(train_next_at__lte=now)
    )
    if collection_ids is not None:
        failed, stalled = failed.filter(collection_id__in=collection_ids), stalled.filter(collection_id__in=collection_ids)
    with transaction.atomic():
        touched = set(failed.values_list("collection_id", flat=True))
        reset = failed.update(
            training_state=TrainingState.PENDING, train_attempts=0, train_error="", train_claim="", train_next_at=None
        )
        Collection.objects.filter(pk__in=touched).update(status=CollectionStatus.TRAINING, error_message="")
    touched |= set(stalled.values_list("collection_id", flat=True).distinct())
    for collection_id in sorted(touched):
        enqueue_qa(collection_id=collection_id)
    return reset
