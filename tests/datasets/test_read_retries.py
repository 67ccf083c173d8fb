"""Reading a source in the background: a failure that waiting may cure (the link's server
answers 5xx/429, times out, is down; an internal error) is retried with backoff like training;
any other (a 4xx, a broken file, an unsupported type) is shown at once, never retried."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from datasets.models import Collection, CollectionSource, CollectionStatus, Data, QaChunk
from datasets.services import collections as collection_services
from datasets.services.collections import CollectionOptions, read_collection_source
from tests.datasets.api.helpers import post, upload
from tests.datasets.storage_helpers import make_dataset

pytestmark = pytest.mark.django_db

PAGE = b"<html><body><h1>Guide</h1><p>Run the installer, then restart.</p></body></html>"


class ScriptedServer:
    """Answers /page with the statuses in `script`, one per request, then 200 with PAGE."""

    def __init__(self, script: list[int]):
        self.script, self.hits = list(script), 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits += 1
                status = server.script.pop(0) if server.script else 200
                body = PAGE if status == 200 else b"try later"
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/page"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LINK_FETCH_ALLOW_PRIVATE = True  # the scripted server is on loopback
    settings.TRAINING_RETRY_BASE_SECONDS = 10
    settings.TRAINING_MAX_ATTEMPTS = 5


@pytest.fixture
def scripted():
    servers = []

    def start(script):
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def link_collection(team, url: str, **options) -> Collection:
    dataset = make_dataset(team)
    return collection_services.create_link_collection(
        team_id=team.pk, usage_key_id=None, options=CollectionOptions(dataset_id=dataset.pk, **options), link=url
    )


def source_of(collection: Collection) -> CollectionSource | None:
    return CollectionSource.objects.filter(collection_id=collection.pk).first()


def test_a_server_error_is_retried_with_backoff_then_the_page_is_read(team, scripted, clock, api):
    server = scripted([503, 502])
    collection = link_collection(team, server.url)
    read_collection_source(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.TRAINING
    assert collection.error_message == "the page answered HTTP 503 (attempt 1 of 5; retrying)"
    source = source_of(collection)
    assert (source.read_attempts, source.read_next_at) == (1, clock.now + timedelta(seconds=10))
    detail = api.get(f"/api/core/dataset/collection/detail?id={collection.pk}").json()["data"]
    assert detail["trainingAmount"] == 1  # still to be read

    read_collection_source(collection_id=collection.pk)  # not due yet: not fetched
    assert server.hits == 1
    clock.advance(seconds=10)
    read_collection_source(collection_id=collection.pk)
    assert source_of(collection).read_next_at == clock.now + timedelta(seconds=20)  # 10 s × 2^(2−1)
    clock.advance(seconds=20)
    read_collection_source(collection_id=collection.pk)
    assert server.hits == 3
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.READY and collection.error_message == ""  # embedded as read
    assert source_of(collection) is None
    assert "Run the installer" in Data.objects.get(collection=collection).q


def test_a_server_that_keeps_failing_fails_the_collection_after_five_reads(team, scripted, clock):
    server = scripted([500] * 10)
    collection = link_collection(team, server.url)
    waits = []
    for attempt in range(1, 6):
        read_collection_source(collection_id=collection.pk)
        source = source_of(collection)
        if source is not None:
            assert source.read_attempts == attempt
            waits.append(source.read_next_at - clock.now)
            clock.now = source.read_next_at
    assert waits == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    assert server.hits == 5
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.ERROR
    assert collection.error_message == "the page answered HTTP 500 (after 5 attempts)"
    assert source_of(collection) is None and not Data.objects.exists()


def test_too_many_requests_is_retried(team, scripted):
    collection = link_collection(team, scripted([429]).url)
    read_collection_source(collection_id=collection.pk)
    assert source_of(collection).read_attempts == 1


def test_an_unreachable_server_is_retried(team):
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    collection = link_collection(team, f"http://127.0.0.1:{port}/page")
    read_collection_source(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.TRAINING and "could not connect" in collection.error_message
    assert source_of(collection).read_attempts == 1


@pytest.mark.parametrize("code", [404, 403, 410])
def test_a_client_error_fails_at_once(team, scripted, code):
    server = scripted([code])
    collection = link_collection(team, server.url)
    read_collection_source(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.ERROR
    assert collection.error_message == f"the page answered HTTP {code}"
    assert source_of(collection) is None
    read_collection_source(collection_id=collection.pk)  # nothing left to read
    assert server.hits == 1


def test_a_broken_file_fails_at_once(api, team):
    dataset = make_dataset(team)
    data = upload(api, dataset_id=dataset.pk, name="broken.pdf", content=b"%PDF-1.4 not really").json()["data"]
    read_collection_source(collection_id=data["collectionId"])
    collection = Collection.objects.get(pk=data["collectionId"])
    assert collection.status == CollectionStatus.ERROR and "broken.pdf" in collection.error_message
    assert "attempt" not in collection.error_message and source_of(collection) is None


def test_an_unsupported_page_type_fails_at_once(team, monkeypatch):
    from datasets.ingestion.readers import UnsupportedFileType

    def unsupported(**kwargs):
        raise UnsupportedFileType(".exe is not supported")

    monkeypatch.setattr(collection_services, "read_document", unsupported)
    collection = collection_services.create_file_collection(
        team_id=team.pk, usage_key_id=None, options=CollectionOptions(dataset_id=make_dataset(team).pk),
        file_name="notes.txt", content=b"text",
    )
    read_collection_source(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.ERROR and collection.error_message == ".exe is not supported"


def test_an_internal_error_while_reading_is_retried_not_lost(team, monkeypatch, clock):
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk hiccup")
        return real(**kwargs)

    real = collection_services.read_document
    monkeypatch.setattr(collection_services, "read_document", flaky)
    collection = collection_services.create_file_collection(
        team_id=team.pk, usage_key_id=None, options=CollectionOptions(dataset_id=make_dataset(team).pk),
        file_name="notes.txt", content="Some notes to keep.".encode(),
    )
    read_collection_source(collection_id=collection.pk)
    collection.refresh_from_db()
    assert "internal error" in collection.error_message and "attempt 1 of 5" in collection.error_message
    clock.advance(seconds=10)
    read_collection_source(collection_id=collection.pk)
    assert Data.objects.get(collection=collection).q == "Some notes to keep."


def test_a_retry_is_a_deferred_task(team, scripted, clock, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    collection = link_collection(team, scripted([503]).url)
    DBTaskResult.objects.all().delete()  # the create's own read task
    with django_capture_on_commit_callbacks(execute=True):
        read_collection_source(collection_id=collection.pk)
    [task] = DBTaskResult.objects.filter(task_path="datasets.tasks.read_collection")
    assert task.run_after == clock.now + timedelta(seconds=10)
    assert task.args_kwargs["args"] == [collection.pk]


def test_a_second_read_of_the_same_source_stores_nothing_twice(team, scripted, monkeypatch):
    """Two reads racing (a retry queued twice): the first to store wins, the other stores nothing."""
    server = scripted([])
    collection = link_collection(team, server.url)
    real_fetch = collection_services._read
    stored_meanwhile = []

    def read_then_let_another_finish(collection_row, content):
        document = real_fetch(collection_row, content)
        if not stored_meanwhile:  # while this read holds the page, another one completes
            stored_meanwhile.append(1)
            read_collection_source(collection_id=collection.pk)
        return document

    monkeypatch.setattr(collection_services, "_read", read_then_let_another_finish)
    read_collection_source(collection_id=collection.pk)
    assert server.hits == 2 and Data.objects.filter(collection=collection).count() == 1


def test_a_qa_link_read_after_a_retry_queues_its_chunks(team, scripted, clock, provider_models):
    from datasets.models import Dataset

    server = scripted([503])
    dataset = Dataset.objects.create(team=team, name="qa", agent_model="fake-llm")
    collection = collection_services.create_link_collection(
        team_id=team.pk, usage_key_id=None,
        options=CollectionOptions(dataset_id=dataset.pk, training_type="qa"), link=server.url,
    )
    read_collection_source(collection_id=collection.pk)
    clock.advance(seconds=10)
    read_collection_source(collection_id=collection.pk)
    assert "Run the installer" in QaChunk.objects.get(collection=collection).text
    assert not Data.objects.exists()


def test_retrain_failed_requeues_a_read_whose_task_was_lost(team, scripted, settings, django_capture_on_commit_callbacks):
    from datasets import training

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    collection = link_collection(team, scripted([]).url)  # its read task "lost": never run here
    assert source_of(collection) is not None
    with django_capture_on_commit_callbacks(execute=True):
        training.retrain_failed()
    assert source_of(collection) is None and Data.objects.filter(collection=collection).count() == 1


def test_the_listing_shows_the_retrying_note(api, team, scripted):
    dataset = make_dataset(team)
    collection = collection_services.create_link_collection(
        team_id=team.pk, usage_key_id=None, options=CollectionOptions(dataset_id=dataset.pk), link=scripted([503]).url
    )
    read_collection_source(collection_id=collection.pk)
    [item] = post(api, "collection/listV2", {"datasetId": dataset.pk}).json()["data"]["list"]
    assert item["trainingAmount"] == 1 and "retrying" in item["errorMsg"]
