"""Helpers the knowledge-base endpoint tests import: requests in FastGPT's shapes, and running
the background steps (read a file/link, train) in the test process."""

import io

from datasets.models import Collection
from datasets.services.collections import read_collection_source
from datasets.training import train_collection

API = "/api/core/dataset/"


def post(api, path: str, body: dict):
    return api.post(API + path, body, format="json")


def put(api, path: str, body: dict):
    return api.put(API + path, body, format="json")


def upload(api, *, dataset_id: str, name: str, content: bytes, **params):
    """collection/create/localFile: multipart `file` + `data` (a JSON string)."""
    import json

    file = io.BytesIO(content)
    file.name = name
    return api.post(
        API + "collection/create/localFile",
        {"file": file, "data": json.dumps({"datasetId": dataset_id, "trainingType": "chunk", **params})},
        format="multipart",
    )


def create_text(api, *, dataset_id: str, text: str, name: str = "notes", **params):
    return post(api, "collection/create/text", {"datasetId": dataset_id, "name": name, "text": text, **params})


def read_and_train(collection_id: str) -> Collection:
    """What the worker does after a create: read the source (files, links), embed the chunks."""
    read_collection_source(collection_id=collection_id)
    train_collection(collection_id=collection_id)
    return Collection.objects.get(pk=collection_id)


def assert_error(response, status: int, *fragments: str) -> dict:
    """The envelope of an error with HTTP ``status`` whose message holds each fragment."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"code", "statusText", "message", "data"}
    assert body["code"] != 200
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    return body


class PageServer:
    """A local web server for link collections: serves `pages` {path: (content type, bytes)}
    and records every path requested (so a test can assert it was never hit)."""

    def __init__(self, pages: dict[str, tuple[str, bytes]]):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self
        self.pages, self.hits = pages, []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                page = server.pages.get(self.path)
                if page is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                content_type, body = page
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
