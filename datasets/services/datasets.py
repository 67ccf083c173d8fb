"""Writes on datasets."""

from django.db import transaction

from datasets.models import Collection, Dataset
from datasets.search.vector import vector_backend
from datasets.selectors import dataset_tree_ids, get_dataset, get_folder
from datasets.services.data import delete_collection_data
from providers.registry import default_model


def create_dataset(
    *,
    team_id: str,
    name: str,
    type: str,
    parent_id: str | None = None,
    intro: str = "",
    avatar: str = "",
    vector_model: str = "",
    agent_model: str = "",
    vlm_model: str = "",
) -> Dataset:
    """Create a dataset or folder; empty model names take the configured defaults."""
    if parent_id is not None:
        get_folder(team_id=team_id, folder_id=parent_id)
    return Dataset.objects.create(
        team_id=team_id,
        parent_id=parent_id,
        type=type,
        name=name,
        intro=intro,
        avatar=avatar,
        vector_model=vector_model or default_model("embedding").name,
        agent_model=agent_model or default_model("llm").name,
        vlm_model=vlm_model,
    )


def delete_dataset(*, team_id: str, dataset_id: str) -> None:
    """Delete a dataset, or a folder with everything inside it, with all their collections'
    data, vectors and full-text tokens."""
    dataset = get_dataset(team_id=team_id, dataset_id=dataset_id)
    with transaction.atomic():
        dataset_ids = dataset_tree_ids(dataset=dataset)
        collection_ids = list(Collection.objects.filter(dataset_id__in=dataset_ids).values_list("pk", flat=True))
        if collection_ids:
            delete_collection_data(collection_ids=collection_ids)
        dataset.delete()
        # Their vector indexes (pgvector: one per large dataset) go once the rows are gone.
        transaction.on_commit(lambda: vector_backend().datasets_deleted(dataset_ids=dataset_ids), robust=True)
