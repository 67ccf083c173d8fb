"""Over real HTTP: a chunked body (no Content-Length) is read by the DRF endpoints too."""

import json

import pytest
import requests

from datasets.models import Dataset

pytestmark = pytest.mark.usefixtures("transactional_db")


def chunks(document: dict):
    text = json.dumps(document).encode()
    for start in range(0, len(text), 5):
        yield text[start:start + 5]


def test_dataset_create_reads_a_chunked_body(live_server_url, global_key):
    response = requests.post(
        f"{live_server_url}/api/core/dataset/create",
        data=chunks({"name": "Chunked docs"}),  # a generator: requests sends it chunked
        headers={"Authorization": global_key.header, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert Dataset.objects.get(pk=response.json()["data"]).name == "Chunked docs"


def test_chat_completions_reads_a_chunked_body(live_server_url, app_key):
    response = requests.post(
        f"{live_server_url}/api/v1/chat/completions",
        data=chunks({"messages": [{"role": "user", "content": "hello"}]}),
        headers={"Authorization": app_key.header, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
