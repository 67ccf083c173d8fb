"""Reads of datasets, always within the caller's team: another team's dataset is not found."""

from django.db.models import QuerySet

from config.errors import BadRequest, DatasetNotFound
from datasets.models import Dataset, DatasetType


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


def list_datasets(*, team_id: str, parent_id: str | None) -> QuerySet[Dataset]:
    """The datasets and folders directly inside ``parent_id`` (None: the root)."""
    if parent_id is not None:
        get_folder(team_id=team_id, folder_id=parent_id)
    return Dataset.objects.filter(team_id=team_id, parent_id=parent_id).order_by("-updated_at")
