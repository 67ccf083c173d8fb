"""A small knowledge base the search tests share (rows in the test's transaction)."""

from types import SimpleNamespace

import pytest

from tests.datasets.search.helpers import add_chunk, make_collection, make_dataset

CHUNKS = {
    "password": "How to reset a forgotten password: open Settings, choose Security and click Reset password.",
    "invoice": "Invoices are emailed on the first day of each month; download them from the Billing page.",
    "rerank": "The rerank model orders search results by relevance before they are quoted.",
    "zebra": "Zebras migrate across the Serengeti every year, following the rains.",
    "venv": "Python virtual environments isolate package installs per project.",
}


@pytest.fixture
def kb(team):
    dataset = make_dataset(team, "Help center")
    collection = make_collection(dataset, "help.md")
    chunks = {
        name: add_chunk(collection, text, chunk_index=i) for i, (name, text) in enumerate(CHUNKS.items())
    }
    return SimpleNamespace(dataset=dataset, collection=collection, chunks=chunks)
