"""End to end: a live server and its background worker; real files uploaded with `requests`
(txt in GBK under a URL-encoded Chinese name, md, html, pdf, docx, csv — made here), the
client waiting for trainingAmount to reach 0, then listing the chunks and searching them."""

import csv
import io
import json
import time
from urllib.parse import quote

import pytest
import requests
from django.db import connection

from tests.datasets.ingestion.documents import make_docx, make_pdf
from tests.datasets.storage_helpers import hnsw_indexes_of

pytestmark = pytest.mark.usefixtures("transactional_db")

WAIT_SECONDS = 90  # a deadline for the worker, not a timing assertion


class Client:
    def __init__(self, base_url: str, key):
        self.base = f"{base_url}/api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key.plaintext}"

    def call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, self.base + path, timeout=30, **kwargs)
        body = response.json()
        assert set(body) == {"code", "statusText", "message", "data"}, body
        return response, body

    def ok(self, method: str, path: str, **kwargs):
        response, body = self.call(method, path, **kwargs)
        assert response.status_code == 200 and body["code"] == 200, body
        return body["data"]

    def upload(self, dataset_id: str, name: str, content: bytes, mime: str) -> str:
        data = self.ok(
            "POST", "/core/dataset/collection/create/localFile",
            files={"file": (quote(name), content, mime)},
            data={"data": json.dumps({"datasetId": dataset_id, "trainingType": "chunk"})},
        )
        assert data["results"]["insertLen"] == 0  # read by the worker
        return data["collectionId"]

    def collections(self, dataset_id: str) -> dict[str, dict]:
        page = self.ok("POST", "/core/dataset/collection/listV2", json={"datasetId": dataset_id, "pageSize": 30})
        return {item["_id"]: item for item in page["list"]}

    def chunks(self, collection_id: str) -> list[dict]:
        out, offset = [], 0
        while True:
            page = self.ok("POST", "/core/dataset/data/v2/list", json={"collectionId": collection_id, "offset": offset, "pageSize": 30})
            out += page["list"]
            offset += 30
            if offset >= page["total"]:
                return out


def wait_until_trained(client: Client, dataset_id: str, expected: int) -> dict[str, dict]:
    """Poll listV2 as a client would until every collection is done (trainingAmount 0)."""
    deadline = time.monotonic() + WAIT_SECONDS
    seen_training = False
    while True:
        items = client.collections(dataset_id)
        seen_training |= any(i["trainingAmount"] > 0 for i in items.values())
        if len(items) == expected and all(i["status"] != "training" and i["trainingAmount"] == 0 for i in items.values()):
            return items
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not finish: {[(i['name'], i['status'], i['trainingAmount']) for i in items.values()]}")
        time.sleep(0.25)


def csv_bytes(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


HTML = """<!doctype html><html><head><title>Guide</title><script>var tracking = "do-not-index";</script>
<style>body { color: red }</style></head><body><nav>Home · Pricing · Login</nav>
<main><h1>Installation</h1><p>Unpack the archive and run the installer.</p>
<p>安装完成后重启服务。</p></main><footer>Copyright</footer></body></html>"""

GBK_TEXT = "退货政策\n\n购买后七天内可以无理由退货，运费由买家承担。\n\n质量问题的退货，运费由卖家承担。"


def test_upload_real_files_wait_for_training_and_list_chunks(live_server_url, global_key):
    client = Client(live_server_url, global_key)
    dataset_id = client.ok("POST", "/core/dataset/create", json={"name": "Live KB"})

    uploads = {
        "退货说明.txt": (GBK_TEXT.encode("gbk"), "text/plain", "无理由退货"),
        "guide.md": ("# Guide\n\n## Setup\n\nSet DATABASE_URL before the first start.\n".encode(), "text/markdown", "DATABASE_URL"),
        "page.html": (HTML.encode(), "text/html", "run the installer"),
        "manual.pdf": (make_pdf(["Chapter one: the pump.", "Chapter two: the valve is checked monthly."]), "application/pdf", "valve is checked monthly"),
        "中文手册.pdf": (make_pdf(["第一章：泵的保养。"], chinese=True), "application/pdf", "泵的保养"),
        "handbook.docx": (make_docx(title="Handbook", paragraphs=["Holidays are booked through the portal."]),
                          "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "booked through the portal"),
        "faq.csv": (csv_bytes([["question", "answer"], ["How do I reset my password?", "Use the login page link."]]), "text/csv",
                    "reset my password"),
    }
    ids = {name: client.upload(dataset_id, name, content, mime) for name, (content, mime, _) in uploads.items()}
    text_id = client.ok("POST", "/core/dataset/collection/create/text", json={
        "datasetId": dataset_id, "name": "Pasted", "trainingType": "chunk", "text": "Pasted text about solar panels.",
    })["collectionId"]
    broken_id = client.upload(dataset_id, "broken.pdf", b"%PDF-1.7 not really", "application/pdf")

    items = wait_until_trained(client, dataset_id, expected=len(uploads) + 2)

    for name, (_, _, expected) in uploads.items():
        item = items[ids[name]]
        assert (item["name"], item["status"], item["hasError"]) == (name, "ready", False), item
        assert item["dataAmount"] >= 1
        chunks = client.chunks(ids[name])
        assert len(chunks) == item["dataAmount"]
        assert expected in "\n".join(c["q"] + "\n" + c["a"] for c in chunks), (name, chunks)
    html_chunks = "\n".join(c["q"] for c in client.chunks(ids["page.html"]))
    assert "do-not-index" not in html_chunks and "Pricing" not in html_chunks
    faq = client.chunks(ids["faq.csv"])
    assert any(c["q"] == "How do I reset my password?" and c["a"] == "Use the login page link." for c in faq)
    assert items[text_id]["status"] == "ready"

    broken = items[broken_id]
    assert broken["status"] == "error" and "broken.pdf" in broken["errorMsg"]

    # Searchable: every chunk has its vector, and a search finds the Chinese text file's chunk.
    detail = client.ok("GET", f"/core/dataset/collection/detail?id={ids['退货说明.txt']}")
    assert detail["trainingAmount"] == 0 and detail["sourceName"] == "退货说明.txt"
    found = client.ok("POST", "/core/dataset/searchTest", json={"datasetId": dataset_id, "text": "无理由退货", "searchMode": "fullTextRecall"})
    hits = found["list"] if isinstance(found, dict) else found
    assert any(h["collectionId"] == ids["退货说明.txt"] for h in hits)


def test_a_link_collection_is_fetched_by_the_worker(live_server_url, global_key):
    """Loopback is refused (SSRF) by default: an address at once, a name by the worker; the page
    server is never hit."""
    from tests.datasets.api.helpers import PageServer

    client = Client(live_server_url, global_key)
    dataset_id = client.ok("POST", "/core/dataset/create", json={"name": "Links"})
    with PageServer({"/doc": ("text/html", b"<p>internal</p>")}) as server:
        link = server.url.replace("127.0.0.1", "localhost") + "/doc"  # a name: resolved by the worker
        data = client.ok("POST", "/core/dataset/collection/create/link", json={"datasetId": dataset_id, "link": link})
        response, body = client.call("POST", "/core/dataset/collection/create/link", json={"datasetId": dataset_id, "link": server.url + "/doc"})
        assert response.status_code == 400 and "public" in body["message"]  # an address: refused at once
        items = wait_until_trained(client, dataset_id, expected=1)
        assert server.hits == []
    item = items[data["collectionId"]]
    assert item["status"] == "error" and item["errorMsg"]


def test_scopes_over_http(live_server_url, global_key, app_key, other_global_key):
    client = Client(live_server_url, global_key)
    dataset_id = client.ok("POST", "/core/dataset/create", json={"name": "Mine"})
    response, body = Client(live_server_url, app_key).call("POST", "/core/dataset/collection/listV2", json={"datasetId": dataset_id})
    assert response.status_code == 403 and body["statusText"] == "unAuthorization"
    response, body = Client(live_server_url, other_global_key).call(
        "POST", "/core/dataset/collection/create/text", json={"datasetId": dataset_id, "name": "x", "text": "t"}
    )
    assert response.status_code == 404


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the HNSW indexes are PostgreSQL's")
def test_a_pushed_dataset_gets_its_vector_index_once_still_and_loses_it_when_deleted(
    live_app_server, live_server_url, global_key
):
    """As a client loads a knowledge base: pushes, waits for trainingAmount 0 — searchable then,
    exactly — and a moment later the worker has built the dataset's HNSW index, which its
    searches use; once the dataset is deleted, the worker drops it.

    The server's own settings (VECTOR_INDEX_MIN_ROWS 2,000, VECTOR_INDEX_QUIET_SECONDS 5): any
    worker on the test database may run the tasks — another test's server with other settings
    would answer for this one's."""
    from django.conf import settings

    from datasets.search.vector.pgvector_indexes import index_name

    client = Client(live_server_url, global_key)
    dataset_id = client.ok("POST", "/core/dataset/create", json={"name": "Pushed"})
    collection_id = client.ok("POST", "/core/dataset/collection/create", json={
        "datasetId": dataset_id, "name": "Pushed items", "type": "virtual",
    })
    for batch in range(settings.VECTOR_INDEX_MIN_ROWS // 200):
        items = [{"q": f"Question {batch}-{n} about item number {batch * 200 + n}", "a": f"Answer {n}"} for n in range(200)]
        pushed = client.ok("POST", "/core/dataset/data/pushData", json={
            "collectionId": collection_id, "trainingType": "chunk", "data": items,
        })
        assert pushed["insertLen"] == 200
    wait_until_trained(client, dataset_id, expected=1)

    deadline = time.monotonic() + WAIT_SECONDS
    while not any((indexes := hnsw_indexes_of(dataset_id)).values()):
        if time.monotonic() > deadline:
            from django_tasks_db.models import DBTaskResult

            tasks = list(DBTaskResult.objects.values_list("task_path", "status", "run_after", "enqueued_at"))
            pytest.fail(f"no index for dataset {dataset_id}; tasks {tasks}\n{live_app_server.worker_log()}")
        time.sleep(0.25)
    # The live server's embedding model is the local provider's (64 dimensions).
    assert indexes == {index_name(dataset_id, 64): True}
    # The provider's vectors are hashes of the text: the item's own text (its default index
    # is q + a) is its nearest neighbour, the others unrelated.
    found = client.ok("POST", "/core/dataset/searchTest", json={
        "datasetId": dataset_id, "text": "Question 1-17 about item number 217\nAnswer 17", "searchMode": "embedding",
    })
    assert found["list"][0]["q"] == "Question 1-17 about item number 217"

    client.ok("DELETE", f"/core/dataset/delete?id={dataset_id}")
    deadline = time.monotonic() + WAIT_SECONDS
    while hnsw_indexes_of(dataset_id):  # dropped by the worker
        if time.monotonic() > deadline:
            pytest.fail(f"the index of deleted dataset {dataset_id} is still there\n{live_app_server.worker_log()}")
        time.sleep(0.25)
