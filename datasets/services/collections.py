"""Writes on collections: create (folder, virtual, text, link, file), read a source in the
background, update, delete.

A short text is chunked and inserted in the request, so the answer counts its chunks. Long
texts, files and links are read by the `read_collection` task: what is to be read waits in a
`CollectionSource` row (a file's bytes, a long text, nothing for a link — a link is only ever
fetched there), which counts as one pending item in `trainingAmount` until it is read, as
FastGPT's "parse" training item does. Measured: inserting 5 MB of text (~4,000 chunks, their
full-text words and indexes) takes seconds; storing it takes milliseconds.
"""

import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import BadRequest
from datasets import selectors
from datasets.errors import FileTypeNotSupported, NotSupportedHere
from datasets.ingestion.chunking import DEFAULT_CHUNK_SIZE, ChunkSettings, InvalidChunkSettings, split_text
from datasets.ingestion.readers import (
    SUPPORTED_EXTENSIONS, DocumentUnreadable, ReadDocument, UnsupportedFileType, extension_of, read_document,
)
from datasets.models import (
    Collection, CollectionSource, CollectionStatus, CollectionType, Dataset, TrainingType,
)
from datasets.services.data import InsertResult, NewData, delete_collection_data, insert_data
from providers.registry import AiModel, get_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionOptions:
    """What every created collection takes besides its source (FastGPT's common parameters)."""

    dataset_id: str
    parent_id: str | None = None
    name: str = ""
    training_type: str = TrainingType.CHUNK
    chunk_settings: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    create_time: datetime | None = None
    metadata: dict = field(default_factory=dict)


def options_from(values: dict) -> CollectionOptions:
    """CollectionOptions from an input serializer's validated data (other keys ignored)."""
    names = CollectionOptions.__dataclass_fields__
    return CollectionOptions(**{k: v for k, v in values.items() if k in names})


# --- create ---------------------------------------------------------------------------------


def create_empty_collection(
    *, team_id: str, dataset_id: str, name: str, type: str, parent_id: str | None = None,
    metadata: dict | None = None,
) -> Collection:
    """A folder, or a `virtual` collection filled through pushData."""
    dataset = selectors.get_knowledge_base(team_id=team_id, dataset_id=dataset_id)
    _check_parent(team_id=team_id, dataset=dataset, parent_id=parent_id)
    return Collection.objects.create(
        team_id=team_id, dataset=dataset, parent_id=parent_id, type=type, name=name,
        metadata=metadata or {}, status=CollectionStatus.READY,
    )


def create_text_collection(
    *, team_id: str, usage_key_id: int | None, options: CollectionOptions, text: str
) -> tuple[Collection, InsertResult | None]:
    """A collection of raw text. Up to DATASET_INLINE_TEXT_CHARS it is chunked and inserted now
    (the result counts the chunks); a longer text is kept as the collection's source and
    chunked by the background task (the result is None), so the call answers at once."""
    dataset = _prepare(team_id=team_id, options=options)
    inline = len(text) <= settings.DATASET_INLINE_TEXT_CHARS
    chunk_settings = chunk_settings_of(options.chunk_settings, training_type=options.training_type, dataset=dataset)
    chunks = split_text(text, chunk_settings) if inline else None
    with transaction.atomic():
        collection = _create(
            team_id=team_id, dataset=dataset, options=options, type=CollectionType.TEXT,
            usage_key_id=usage_key_id, raw_text_length=len(text), raw_text_hash=text_hash(text),
        )
        if chunks is None:
            CollectionSource.objects.create(collection=collection, content=text.encode("utf-8", "surrogatepass"))
            _enqueue_read(collection.pk)
            return collection, None
        result = store_items(
            collection=collection,
            items=[NewData(q=chunk.text, chunk_index=chunk.index) for chunk in chunks],
            usage_key_id=usage_key_id,
        )
        _settle(collection, result)
    return collection, result


def create_link_collection(
    *, team_id: str, usage_key_id: int | None, options: CollectionOptions, link: str
) -> Collection:
    """A web page's collection; the page is fetched by the background task, never here. A host
    written as an address (127.0.0.1, 2130706433, 0x7f.1, [::1]…) is checked now, without DNS:
    an internal one is a 400. A name is resolved and checked by the task, at fetch time."""
    _refuse_internal_address(link)
    dataset = _prepare(team_id=team_id, options=options)
    with transaction.atomic():
        collection = _create(
            team_id=team_id, dataset=dataset, options=options, type=CollectionType.LINK,
            usage_key_id=usage_key_id, raw_link=link, name=options.name or link,
            status=CollectionStatus.TRAINING,
        )
        # An empty source row: "still to be read" (counted in trainingAmount until then).
        CollectionSource.objects.create(collection=collection, content=b"")
        _enqueue_read(collection.pk)
    return collection


def _refuse_internal_address(link: str) -> None:
    from datasets.ingestion.links import LinkFetchFailed, LinkRefused, check_url

    host = (urlsplit(link).hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            socket.inet_aton(host)  # the numeric forms a resolver accepts; no DNS is asked
        except OSError:
            return  # a name: checked when the task resolves it
    try:
        check_url(link, allow_private=settings.LINK_FETCH_ALLOW_PRIVATE)
    except LinkRefused as exc:
        raise BadRequest(f"link: {exc}.") from None
    except LinkFetchFailed:
        pass


def check_file_type(file_name: str) -> str:
    """The file's extension, or 415 naming the supported types."""
    ext = extension_of(file_name)
    if ext not in SUPPORTED_EXTENSIONS and ext != "markdown":
        shown = f".{ext}" if ext else "a file without an extension"
        raise FileTypeNotSupported(
            f"{shown} is not supported; supported file types: {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    return ext


def create_file_collection(
    *, team_id: str, usage_key_id: int | None, options: CollectionOptions, file_name: str, content: bytes
) -> Collection:
    """A file's collection; the file is read (parsed, chunked) by the background task."""
    ext = check_file_type(file_name)
    dataset = _prepare(team_id=team_id, options=options)
    with transaction.atomic():
        collection = _create(
            team_id=team_id, dataset=dataset, options=options, type=CollectionType.FILE,
            usage_key_id=usage_key_id, name=options.name or file_name, file_name=file_name,
            file_size=len(content), file_type=ext, status=CollectionStatus.TRAINING,
        )
        CollectionSource.objects.create(collection=collection, content=content)
        _enqueue_read(collection.pk)
    return collection


def not_supported(what: str) -> None:
    raise NotSupportedHere(
        f"{what} are not supported by this server (they need FastGPT's commercial API-file or "
        "external-file services). Upload the file with collection/create/localFile, or send its "
        "text with collection/create/text."
    )


# --- read (the background task) -------------------------------------------------------------


def read_collection_source(*, collection_id: str) -> None:
    """Fetch the link or read the stored file, chunk it and insert the chunks (pending
    training). A failure that waiting may cure — the link's server answered 5xx/429/408, timed
    out or could not be reached; an internal error — is retried with backoff like training
    (TRAINING_RETRY_BASE_SECONDS × 2^(attempt−1), TRAINING_MAX_ATTEMPTS reads); any other (a
    4xx, an unsupported type, a broken file, a refused address) puts the collection in state
    `error` with a readable message at once."""
    from datasets.ingestion.links import LinkFetchFailed, LinkFetchTransient, LinkRefused

    collection = Collection.objects.select_related("dataset").filter(pk=collection_id).first()
    source = CollectionSource.objects.filter(collection_id=collection_id).first()
    if collection is None or source is None:  # deleted before its turn, or read already
        return
    if source.read_next_at is not None and source.read_next_at > timezone.now():
        return  # a retry not due yet: its deferred task comes later
    try:
        document = _read(collection, bytes(source.content))
    except LinkFetchTransient as exc:
        _retry_read(collection, source, str(exc))
        return
    except (DocumentUnreadable, UnsupportedFileType, LinkFetchFailed, LinkRefused) as exc:
        _fail(collection, str(exc))
        return
    except Exception:
        logger.exception("Reading collection %s failed", collection_id)
        _retry_read(collection, source, "Reading the source failed with an internal error; the server log has the details.")
        return

    if document.rows is not None:
        items = [NewData(q=q, a=a, chunk_index=i) for i, (q, a) in enumerate(document.rows)]
    else:
        chunking = chunk_settings_of(collection.chunk_settings, training_type=collection.training_type, dataset=collection.dataset)
        chunks = split_text(document.text, chunking)
        items = [NewData(q=chunk.text, chunk_index=chunk.index) for chunk in chunks]
    embed_now = _local_embedding(collection) if len(items) <= settings.DATASET_READ_EMBED_MAX_CHUNKS else None
    with transaction.atomic():
        # The collection may have been deleted while the file was being read, or another read
        # of the same source (a retry queued twice) may have stored it already.
        if not CollectionSource.objects.select_for_update().filter(collection_id=collection.pk).exists():
            return
        collection.raw_text_length = len(document.text)
        collection.raw_text_hash = text_hash(document.text)
        collection.error_message = ""  # a retried read's "retrying" note
        collection.save(update_fields=["raw_text_length", "raw_text_hash", "error_message", "updated_at"])
        result = store_items(
            collection=collection, items=items, usage_key_id=collection.usage_key_id,
            embed_now=embed_now,
        )
        _settle(collection, result)
        CollectionSource.objects.filter(collection=collection).delete()


def _read(collection: Collection, content: bytes) -> ReadDocument:
    selector = (collection.metadata or {}).get("webPageSelector") or None
    if collection.type == CollectionType.TEXT:
        return ReadDocument(text=content.decode("utf-8", "surrogatepass"))
    if collection.type == CollectionType.LINK:
        from datasets.ingestion.links import fetch_page

        page = fetch_page(collection.raw_link, allow_private=settings.LINK_FETCH_ALLOW_PRIVATE)
        return read_document(filename=page_file_name(page.url, page.content_type), content=page.content, selector=selector)
    return read_document(filename=collection.file_name, content=content, selector=selector)


_PAGE_TYPES = {
    "text/html": "html", "application/xhtml+xml": "html", "text/plain": "txt", "text/markdown": "md",
    "text/x-markdown": "md", "application/pdf": "pdf", "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}


def page_file_name(url: str, content_type: str) -> str:
    """A file name whose extension tells the reader what a fetched page is."""
    mime = content_type.split(";", 1)[0].strip().lower()
    ext = _PAGE_TYPES.get(mime)
    if ext is None:
        path_ext = extension_of(url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1])
        ext = path_ext if path_ext in SUPPORTED_EXTENSIONS else "html"
    return f"page.{ext}"


def _fail(collection: Collection, message: str) -> None:
    Collection.objects.filter(pk=collection.pk).update(status=CollectionStatus.ERROR, error_message=message[:2000])
    CollectionSource.objects.filter(collection_id=collection.pk).delete()


def _retry_read(collection: Collection, source: CollectionSource, message: str) -> None:
    """Count a failed read: try again later with backoff (the collection's message says so),
    or, after TRAINING_MAX_ATTEMPTS reads, fail the collection for good."""
    attempts = source.read_attempts + 1
    if attempts >= settings.TRAINING_MAX_ATTEMPTS:
        _fail(collection, f"{message} (after {attempts} attempts)")
        return
    due = timezone.now() + timedelta(seconds=settings.TRAINING_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    with transaction.atomic():
        counted = CollectionSource.objects.filter(
            collection_id=collection.pk, read_attempts=source.read_attempts
        ).update(read_attempts=attempts, read_next_at=due)
        if not counted:  # deleted, or another read counted this attempt
            return
        Collection.objects.filter(pk=collection.pk).update(
            error_message=f"{message} (attempt {attempts} of {settings.TRAINING_MAX_ATTEMPTS}; retrying)"[:2000]
        )
        _enqueue_read(collection.pk, run_after=due)
    logger.warning("Reading collection %s failed (attempt %d), retrying: %s", collection.pk, attempts, message)


def requeue_unread_sources(*, collection_ids: list[str] | None = None) -> int:
    """Queue a read of every source that is due and still unread (its task was lost, e.g. a
    worker died reading it); a second read of one being read stores nothing twice."""
    now = timezone.now()
    due = CollectionSource.objects.filter(Q(read_next_at__isnull=True) | Q(read_next_at__lte=now))
    if collection_ids is not None:
        due = due.filter(collection_id__in=collection_ids)
    ids = list(due.values_list("collection_id", flat=True))
    for collection_id in ids:
        _enqueue_read(collection_id)
    return len(ids)


# --- update, delete -------------------------------------------------------------------------


def update_collection(
    *, team_id: str, collection_id: str | None = None, dataset_id: str | None = None,
    external_file_id: str | None = None, changes: dict,
) -> Collection:
    """Rename, move (`parent_id`; None = the root), retag, forbid/allow, re-date a collection,
    named by id or by dataset + externalFileId. Keys absent from ``changes`` stay as they are."""
    if collection_id:
        collection = selectors.get_collection(team_id=team_id, collection_id=collection_id)
    else:
        collection = selectors.get_collection_by_external_id(
            team_id=team_id, dataset_id=dataset_id, external_file_id=external_file_id
        )
    if "parent_id" in changes:
        parent_id = changes["parent_id"]
        if parent_id is not None:
            selectors.get_collection_folder(team_id=team_id, dataset_id=collection.dataset_id, folder_id=parent_id)
            if parent_id in selectors.collection_tree_ids(collection=collection):
                raise BadRequest("parentId: a collection cannot move into itself or a folder inside it.")
        collection.parent_id = parent_id
    for name, attribute in (("name", "name"), ("tags", "tags"), ("forbid", "forbid"), ("create_time", "created_at")):
        if name in changes:
            setattr(collection, attribute, changes[name])
    collection.save()
    return collection


def delete_collections(*, team_id: str, collection_ids: list[str]) -> None:
    """Delete collections (a folder with everything inside) and their data, vectors and
    tokens. One unknown id (or another team's) → 404 and nothing is deleted."""
    wanted = set(collection_ids)
    found = list(Collection.objects.filter(team_id=team_id, pk__in=wanted))
    if len(found) != len(wanted):
        selectors.get_collection(team_id=team_id, collection_id=next(iter(wanted - {c.pk for c in found})))
    ids: set[str] = set()
    for collection in found:
        if collection.pk not in ids:
            ids.update(selectors.collection_tree_ids(collection=collection))
    with transaction.atomic():
        delete_collection_data(collection_ids=sorted(ids))
        Collection.objects.filter(pk__in=ids).delete()


# --- helpers --------------------------------------------------------------------------------


# FastGPT's `qa` chunks: a language model writes questions from each, so they are cut larger —
# the model's context, at most 8,000 characters — unless the client sends a chunkSize.
QA_MAX_CHUNK_SIZE = 8000


def chunk_settings_of(sent: dict, *, training_type: str = TrainingType.CHUNK, dataset: Dataset | None = None) -> ChunkSettings:
    default_size = DEFAULT_CHUNK_SIZE
    if training_type == TrainingType.QA and dataset is not None:
        model = get_model(dataset.agent_model)
        default_size = min(model.max_context if model is not None else QA_MAX_CHUNK_SIZE, QA_MAX_CHUNK_SIZE)
    try:
        return ChunkSettings.from_request(sent or {}, default_size=default_size)
    except InvalidChunkSettings as exc:
        raise BadRequest(str(exc)) from None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _prepare(*, team_id: str, options: CollectionOptions) -> Dataset:
    """The checks every source collection passes before anything is written."""
    dataset = selectors.get_knowledge_base(team_id=team_id, dataset_id=options.dataset_id)
    _check_parent(team_id=team_id, dataset=dataset, parent_id=options.parent_id)
    if options.training_type == TrainingType.QA:
        check_qa_possible(dataset=dataset)
    chunk_settings_of(options.chunk_settings)  # a bad setting is a 400 now, not a failed read later
    return dataset


def check_qa_possible(*, dataset: Dataset) -> None:
    """`qa` training needs a language model to write the questions and answers."""
    model = get_model(dataset.agent_model)
    if model is None or model.is_builtin:
        raise BadRequest(
            "trainingType: 'qa' needs a language model to write questions and answers, and this "
            f"dataset's agentModel is {dataset.agent_model!r} (the built-in offline responder, not a "
            "language model). Declare an LLM in AI_MODELS and make it the dataset's agentModel, or "
            "use trainingType 'chunk'."
        )


def store_items(
    *, collection: Collection, items: list[NewData], usage_key_id: int | None, embed_now: AiModel | None = None
) -> InsertResult:
    """A source's chunks into the collection: data items pending embedding (or embedded now
    with `embed_now`, see insert_data), or — `qa` training — chunks for the language model to
    write questions and answers from."""
    if collection.training_type == TrainingType.QA:
        from datasets.training_qa import queue_qa

        return queue_qa(collection=collection, items=items, prompt=(collection.chunk_settings or {}).get("qaPrompt") or "")
    return insert_data(collection=collection, items=items, usage_key_id=usage_key_id, embed_now=embed_now)


def _local_embedding(collection: Collection) -> AiModel | None:
    """The dataset's embedding model when it runs in this process (the built-in one): the
    worker reading a source then embeds its chunks as it inserts them."""
    model = get_model(collection.dataset.vector_model)
    return model if model is not None and model.type == "embedding" and model.is_builtin else None


def _check_parent(*, team_id: str, dataset: Dataset, parent_id: str | None) -> None:
    if parent_id is not None:
        selectors.get_collection_folder(team_id=team_id, dataset_id=dataset.pk, folder_id=parent_id)


def _create(
    *, team_id: str, dataset: Dataset, options: CollectionOptions, type: str, usage_key_id: int | None,
    **fields,
) -> Collection:
    fields.setdefault("name", options.name)
    fields.setdefault("status", CollectionStatus.TRAINING)
    if options.create_time is not None:
        fields["created_at"] = options.create_time
    return Collection.objects.create(
        team_id=team_id, dataset=dataset, parent_id=options.parent_id, type=type,
        training_type=options.training_type, chunk_settings=options.chunk_settings, tags=options.tags,
        metadata=options.metadata, usage_key_id=usage_key_id, **fields,
    )


def _settle(collection: Collection, result: InsertResult) -> None:
    """Nothing inserted (all skipped, or an empty source): the collection is done or failed."""
    if result.insert_len:
        return
    if result.skipped:
        reasons = "; ".join(sorted({item["reason"] for item in result.skipped}))
        collection.status, collection.error_message = CollectionStatus.ERROR, f"No chunk was inserted: {reasons}"[:2000]
    else:
        collection.status = CollectionStatus.READY
    collection.save(update_fields=["status", "error_message", "updated_at"])


def _enqueue_read(collection_id: str, *, run_after: datetime | None = None) -> None:
    from datasets.tasks import read_collection

    task = read_collection
    if run_after is not None and task.get_backend().supports_defer:
        task = task.using(run_after=run_after)
    transaction.on_commit(lambda: task.enqueue(collection_id))
