"""A small knowledge base linked to an app, for the grounded-chat tests (rows in the test's
transaction; vectors written as training writes them, so no worker is needed)."""

from types import SimpleNamespace

from chat.models import App, AppDataset, AppDatasetSearch
from providers.registry import BUILTIN_EMBEDDING
from tests.datasets.search.helpers import add_chunk, make_collection, make_dataset

CHUNKS = {
    "refund": "Refunds: a customer may return any product within thirty days of delivery for a full refund.",
    "shipping": "Shipping: parcels leave the warehouse within two working days and arrive within a week.",
    "warranty": "Warranty: every appliance is covered for two years against manufacturing defects.",
}
REFUND_QUESTION = "How many days do I have to return a product for a refund?"
UNRELATED_QUESTION = "量子色动力学"  # shares no word with the chunks


def knowledge_base(team, *, name: str = "Store policies", source: str = "policies.md",
                   vector_model: str = BUILTIN_EMBEDDING) -> SimpleNamespace:
    dataset = make_dataset(team, name, vector_model=vector_model)
    collection = make_collection(dataset, source)
    chunks = {key: add_chunk(collection, text, chunk_index=i) for i, (key, text) in enumerate(CHUNKS.items())}
    return SimpleNamespace(dataset=dataset, collection=collection, chunks=chunks)


def link(app: App, *datasets, **settings) -> None:
    """Link ``datasets`` to ``app``; ``settings``: AppDatasetSearch fields (else the defaults)."""
    for dataset in datasets:
        AppDataset.objects.create(app=app, dataset=dataset)
    if settings:
        AppDatasetSearch.objects.update_or_create(app=app, defaults=settings)


def search_node(body_or_nodes) -> dict:
    nodes = body_or_nodes["responseData"] if isinstance(body_or_nodes, dict) else body_or_nodes
    found = [n for n in nodes if n.get("moduleType") == "datasetSearchNode"]
    assert len(found) == 1, nodes
    return found[0]
