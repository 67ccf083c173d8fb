"""Reads of the knowledge base, always within the caller's team: another team's dataset,
collection, data item or bill is not found (404, the same answer as an unknown id)."""

from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from config.errors import BadRequest, DatasetNotFound
from datasets.errors import CollectionNotFound, DataNotFound, TrainingBillNotFound
from datasets.models import (
    Collection, CollectionSource, CollectionType, Data, Dataset, DatasetType, QaChunk, TrainingBill, TrainingState,
)

# --- datasets -------------------------------------------------------------------------------


def get_dataset(*, team_id: str, dataset_id: str) -> Dataset:
    dataset = Dataset.objects.filter(team_id=team_id, pk=dataset_id).first()
    if dataset is None:
        raise DatasetNotFound()
    return dataset


def get_folder(*, team_id: str, folder_id: str) -> Dataset:
    folder = get_dataset(team_id=team_id, dataset_id=folder_id)
    if folder.type != DatasetType.FOLDER:
        raise BadRequest("parentId must name a folder.")
    return folder


def get_knowledge_base(*, team_id: str, dataset_id: str) -> Dataset:
    """A dataset that holds collections (not a folder of datasets)."""
    dataset = get_dataset(team_id=team_id, dataset_id=dataset_id)
    if dataset.type == DatasetType.FOLDER:
        raise BadRequest("datasetId names a folder of datasets; collections belong in a dataset.")
    return dataset


def list_datasets(*, team_id: str, parent_id: str | None) -> QuerySet[Dataset]:
    """The datasets and folders directly inside ``parent_id`` (None: the root)."""
    if parent_id is not None:
        get_folder(team_id=team_id, folder_id=parent_id)
    return Dataset.objects.filter(team_id=team_id, parent_id=parent_id).order_by("-updated_at")


def dataset_tree_ids(*, dataset: Dataset) -> list[str]:
    """The dataset and, for a folder, every dataset and folder below it."""
    ids, frontier = [dataset.pk], [dataset.pk]
    while frontier:
        frontier = list(Dataset.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        ids.extend(frontier)
    return ids


# --- collections ----------------------------------------------------------------------------


def _amount(filter_q: Q | None = None) -> Subquery:
    """A correlated count of a collection's data rows (cheaper per page than a GROUP BY join)."""
    rows = Data.objects.filter(collection_id=OuterRef("pk"))
    if filter_q is not None:
        rows = rows.filter(filter_q)
    counted = rows.order_by().values("collection_id").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def with_amounts(collections: QuerySet[Collection]) -> QuerySet[Collection]:
    """Annotate `data_amount` (all data) and `training_amount` (data still pending, plus one
    while the source — a file, a link, a long text — is still to be read, plus the `qa`
    chunks still waiting for the language model)."""
    unread = Case(
        When(Exists(CollectionSource.objects.filter(collection_id=OuterRef("pk"))), then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    qa_rows = QaChunk.objects.filter(collection_id=OuterRef("pk"), training_state=TrainingState.PENDING)
    qa_pending = Coalesce(
        Subquery(qa_rows.order_by().values("collection_id").annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
        Value(0),
    )
    return collections.annotate(
        data_amount=_amount(),
        training_amount=_amount(Q(training_state=TrainingState.PENDING)) + unread + qa_pending,
    )


def get_collection(*, team_id: str, collection_id: str) -> Collection:
    collection = (
        Collection.objects.select_related("dataset").filter(team_id=team_id, pk=collection_id).first()
    )
    if collection is None:
        raise CollectionNotFound()
    return collection


def get_collection_with_amounts(*, team_id: str, collection_id: str) -> Collection:
    collection = (
        with_amounts(Collection.objects.select_related("dataset"))
        .filter(team_id=team_id, pk=collection_id)
        .first()
    )
    if collection is None:
        raise CollectionNotFound()
    return collection


def get_collection_by_external_id(*, team_id: str, dataset_id: str, external_file_id: str) -> Collection:
    collection = Collection.objects.filter(
        team_id=team_id, dataset_id=dataset_id, external_file_id=external_file_id
    ).first()
    if collection is None:
        raise CollectionNotFound()
    return collection


def get_collection_folder(*, team_id: str, dataset_id: str, folder_id: str) -> Collection:
    """A folder collection of the dataset, to put a collection in."""
    folder = get_collection(team_id=team_id, collection_id=folder_id)
    if folder.type != CollectionType.FOLDER:
        raise BadRequest("parentId must name a folder collection.")
    if folder.dataset_id != dataset_id:
        raise BadRequest("parentId must name a folder of the same dataset.")
    return folder


def list_collections(
    *, team_id: str, dataset_id: str, parent_id: str | None, search_text: str = ""
) -> QuerySet[Collection]:
    """A folder's (None: the root's) collections, newest first. With ``search_text``, the
    names matching it anywhere in the dataset (FastGPT searches the whole dataset)."""
    get_knowledge_base(team_id=team_id, dataset_id=dataset_id)
    collections = Collection.objects.filter(team_id=team_id, dataset_id=dataset_id)
    if search_text:
        collections = collections.filter(name__icontains=search_text)
    else:
        if parent_id is not None:
            get_collection_folder(team_id=team_id, dataset_id=dataset_id, folder_id=parent_id)
        collections = collections.filter(parent_id=parent_id)
    return with_amounts(collections).order_by("-updated_at", "-pk")


def collection_tree_ids(*, collection: Collection) -> list[str]:
    """The collection and, for a folder, every collection below it."""
    ids, frontier = [collection.pk], [collection.pk]
    while frontier:
        frontier = list(Collection.objects.filter(parent_id__in=frontier).values_list("pk", flat=True))
        ids.extend(frontier)
    return ids


# --- data -----------------------------------------------------------------------------------


def get_data(*, team_id: str, data_id: str) -> Data:
    data = Data.objects.select_related("collection").filter(team_id=team_id, pk=data_id).first()
    if data is None:
        raise DataNotFound()
    return data


def get_data_detail(*, team_id: str, data_id: str) -> Data:
    data = (
        Data.objects.select_related("collection")
        .prefetch_related("indexes")
        .filter(team_id=team_id, pk=data_id)
        .first()
    )
    if data is None:
        raise DataNotFound()
    return data


def list_data(*, team_id: str, collection_id: str, search_text: str = "") -> QuerySet[Data]:
    """A collection's data in chunk order; ``search_text`` matches q or a."""
    collection = get_collection(team_id=team_id, collection_id=collection_id)
    rows = Data.objects.filter(collection=collection)
    if search_text:
        rows = rows.filter(Q(q__icontains=search_text) | Q(a__icontains=search_text))
    return rows.order_by("chunk_index", "created_at", "pk")


# --- training bills -------------------------------------------------------------------------


def get_training_bill(*, team_id: str, bill_id: str) -> TrainingBill:
    bill = TrainingBill.objects.filter(team_id=team_id, pk=bill_id).first()
    if bill is None:
        raise TrainingBillNotFound()
    return bill
