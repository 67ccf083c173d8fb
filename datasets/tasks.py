"""Background tasks (Django's Tasks API, the django-tasks backport): thin wrappers only.

Run by `manage.py db_worker` with the database backend (settings.TASKS); the logic lives in
datasets/training.py and datasets/services/.
"""

from django_tasks import task

from datasets import training


@task()
def train_collection(collection_id: str) -> dict:
    """Embed the collection's pending items (datasets.training.train_collection)."""
    return training.train_collection(collection_id=collection_id).as_dict()


@task()
def generate_qa(collection_id: str) -> dict:
    """Have the language model write the questions and answers of the collection's pending QA
    chunks (datasets.training_qa.generate_qa)."""
    from datasets import training_qa

    return training_qa.generate_qa(collection_id=collection_id).as_dict()


@task()
def read_collection(collection_id: str) -> None:
    """Fetch/read a link or file collection's source, chunk it and insert its items."""
    from datasets.services.collections import read_collection_source

    read_collection_source(collection_id=collection_id)


@task()
def index_vectors(dataset_id: str) -> str:
    """Build the dataset's HNSW index once its vectors are still (PostgreSQL; see
    datasets.search.vector.pgvector_indexes.index_when_still)."""
    from datasets.search.vector.pgvector_indexes import index_when_still

    return index_when_still(dataset_id=dataset_id)
