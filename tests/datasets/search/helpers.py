"""Building searchable knowledge bases for the search tests: rows written directly, vectors
embedded with the dataset's model and stored through the vector backend's own writer (the
same path training takes), so the tests need no worker."""

from datetime import datetime

from django.db import transaction

from datasets.models import Collection, CollectionType, Data, DataIndex, Dataset, TrainingState
from datasets.search.vector import bump_vector_version, write_vectors
from providers.embeddings import embed
from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM, get_model
from providers.words import words

SEARCH_TEST = "/api/core/dataset/searchTest"


def make_dataset(team, name: str = "kb", vector_model: str = BUILTIN_EMBEDDING) -> Dataset:
    return Dataset.objects.create(team=team, name=name, vector_model=vector_model, agent_model=BUILTIN_LLM)


def make_collection(dataset: Dataset, name: str = "guide.md", *, tags=(), forbid: bool = False,
                    created_at: datetime | None = None, **fields) -> Collection:
    extra = {"created_at": created_at} if created_at else {}
    return Collection.objects.create(
        team_id=dataset.team_id, dataset=dataset, type=CollectionType.TEXT, name=name,
        tags=list(tags), forbid=forbid, **extra, **fields,
    )


def add_chunk(collection: Collection, q: str, a: str = "", *, chunk_index: int = 0, trained: bool = True,
              indexes: tuple[str, ...] = (), full_text: bool = True) -> Data:
    """One chunk with its default index (q + a) and any extra index texts.

    `trained=False` leaves its vectors unwritten (found by full text only); `full_text=False`
    leaves its full-text words empty (found by its vectors only)."""
    data = Data.objects.create(
        team_id=collection.team_id, dataset_id=collection.dataset_id, collection=collection, q=q, a=a,
        chunk_index=chunk_index, search_words=" ".join(words(q + "\n" + a)) if full_text else "",
        training_state=TrainingState.READY if trained else TrainingState.PENDING,
    )
    texts = [f"{q}\n{a}".strip(), *indexes]
    rows = [
        DataIndex.objects.create(
            data=data, dataset_id=collection.dataset_id, collection=collection,
            type="default" if i == 0 else "custom", text=text,
        )
        for i, text in enumerate(texts)
    ]
    if trained:
        model = get_model(collection.dataset.vector_model)
        vectors = embed(model=model, texts=texts).vectors
        with transaction.atomic():
            write_vectors(rows=[(row.id, vector) for row, vector in zip(rows, vectors)])
            bump_vector_version(dataset_ids=[collection.dataset_id])
    return data


def search(client, **body):
    """POST searchTest; returns the response (its envelope in `.json()`)."""
    return client.post(SEARCH_TEST, body, format="json")


def hits(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["data"]["list"]


def qs(response) -> list[str]:
    return [hit["q"] for hit in hits(response)]


def score(hit: dict, kind: str) -> float | None:
    return next((s["value"] for s in hit["score"] if s["type"] == kind), None)
