"""End to end: `qa` training through the live server's background worker — the dataset's
language model (the local provider) writes question/answer pairs from the text, which the
client then lists as the collection's data, and its key's usage points grew by the tokens."""

import time

import pytest

from keys.models import ApiKey
from tests.e2e.test_knowledge_base_live import WAIT_SECONDS, Client

pytestmark = pytest.mark.usefixtures("transactional_db")

PAIRS = "Q1: Where is the power switch?\nA1: On the back panel.\nQ2: 如何重置？\nA2: 按住按钮五秒。"


def test_qa_training_writes_pairs_through_the_worker(live_app_server, live_server_url, global_key):
    client = Client(live_server_url, global_key)
    dataset_id = client.ok("POST", "/core/dataset/create", json={"name": "QA KB", "agentModel": "fake-llm"})
    created = client.ok(
        "POST", "/core/dataset/collection/create/text",
        json={"datasetId": dataset_id, "name": "manual", "trainingType": "qa",
              "text": f"The device manual. [[answer:{PAIRS}]]"},
    )
    collection_id = created["collectionId"]
    assert created["results"]["insertLen"] == 1  # one chunk for the language model
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        item = client.ok("GET", f"/core/dataset/collection/detail?id={collection_id}")
        if item["trainingAmount"] == 0 and item["status"] != "training":
            break
        assert time.monotonic() < deadline, f"still training after {WAIT_SECONDS} s: {item}\n{live_app_server.worker_log()}"
        time.sleep(0.25)
    assert item["status"] == "ready", item
    chunks = client.ok("POST", "/core/dataset/data/v2/list", json={"collectionId": collection_id})["list"]
    assert sorted((c["q"], c["a"]) for c in chunks) == [
        ("Where is the power switch?", "On the back panel."),
        ("如何重置？", "按住按钮五秒。"),
    ]
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points > 0
