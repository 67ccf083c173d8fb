"""Creating collections: empty ones (folder, virtual), from text, from a link, from a file."""

import json
from urllib.parse import quote

import pytest

from datasets.ingestion.chunking import ChunkSettings, split_text
from datasets.models import Collection, CollectionSource, Data, DataIndex
from datasets.services.collections import read_collection_source
from tests.datasets.api.helpers import (
    PageServer, assert_error, create_text, post, read_and_train, upload,
)
from tests.datasets.ingestion.documents import make_docx, make_pdf

LONG_TEXT = "\n\n".join(
    " ".join(f"第{i}节第{j}句：数据集的分块规则。The chunker splits paragraph {i}, sentence {j}." for j in range(6))
    for i in range(30)
)

# --- empty collections ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "virtual"])
def test_create_empty_collection_returns_its_id(api, dataset, kind):
    response = post(api, "collection/create", {"datasetId": dataset.pk, "name": "Box", "type": kind, "metadata": {"k": 1}})
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["message"]) == (200, "")
    collection = Collection.objects.get(pk=body["data"])
    assert (collection.type, collection.name, collection.dataset_id, collection.parent_id) == (kind, "Box", dataset.pk, None)
    assert (collection.status, collection.metadata) == ("ready", {"k": 1})


def test_create_inside_a_folder(api, dataset, folder):
    response = post(api, "collection/create", {"datasetId": dataset.pk, "name": "In", "type": "virtual", "parentId": folder.pk})
    assert Collection.objects.get(pk=response.json()["data"]).parent_id == folder.pk


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "virtual"}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "A", "type": "text"}, "type"),
        ({"name": "A", "metadata": "nope"}, "metadata"),
    ],
)
def test_create_empty_bad_input_names_the_field(api, dataset, body, field):
    assert_error(post(api, "collection/create", {"datasetId": dataset.pk, **body}), 400, field)


def test_create_without_dataset_is_400(api):
    assert_error(post(api, "collection/create", {"name": "A"}), 400, "datasetId")


def test_parent_must_be_a_folder_of_the_same_dataset(api, dataset, virtual, team):
    from datasets.services.collections import create_empty_collection
    from datasets.services.datasets import create_dataset

    body = {"datasetId": dataset.pk, "name": "A", "type": "virtual"}
    assert_error(post(api, "collection/create", {**body, "parentId": virtual.pk}), 400, "parentId", "folder")
    second = create_dataset(team_id=team.pk, name="Second", type="dataset")
    elsewhere = create_empty_collection(team_id=team.pk, dataset_id=second.pk, name="F", type="folder")
    assert_error(post(api, "collection/create", {**body, "parentId": elsewhere.pk}), 400, "same dataset")


def test_a_folder_of_datasets_holds_no_collections(api, team):
    from datasets.services.datasets import create_dataset

    folder = create_dataset(team_id=team.pk, name="Folder", type="folder")
    assert_error(post(api, "collection/create", {"datasetId": folder.pk, "name": "A"}), 400, "folder")


# --- text -----------------------------------------------------------------------------------


def test_create_text_chunks_it_at_once_and_leaves_training_pending(api, dataset, global_key):
    response = create_text(api, dataset_id=dataset.pk, text=LONG_TEXT, name="Rules", tags=["a", "b"])
    assert response.status_code == 200
    data = response.json()["data"]
    expected = split_text(LONG_TEXT, ChunkSettings())
    assert data["results"]["insertLen"] == len(expected) > 1
    assert data["results"]["skipped"] == [] and data["results"]["repeat"] == []
    collection = Collection.objects.get(pk=data["collectionId"])
    assert (collection.type, collection.name, collection.tags, collection.status) == ("text", "Rules", ["a", "b"], "training")
    assert collection.raw_text_length == len(LONG_TEXT) and len(collection.raw_text_hash) == 64
    assert collection.usage_key_id == global_key.row.pk
    rows = list(Data.objects.filter(collection=collection).order_by("chunk_index"))
    assert [r.q for r in rows] == [c.text for c in expected]
    assert {r.training_state for r in rows} == {"pending"}
    assert DataIndex.objects.filter(collection=collection, type="default").count() == len(rows)


def test_create_text_then_training_makes_it_ready(api, dataset):
    collection_id = create_text(api, dataset_id=dataset.pk, text=LONG_TEXT).json()["data"]["collectionId"]
    collection = read_and_train(collection_id)
    assert collection.status == "ready"
    assert not Data.objects.filter(collection=collection).exclude(training_state="ready").exists()
    assert not DataIndex.objects.filter(collection=collection, embedding__isnull=True).exists()


def test_custom_chunk_settings_are_used_and_kept_as_sent(api, dataset):
    settings = {"chunkSettingMode": "custom", "chunkSplitMode": "size", "chunkSize": 200, "indexSize": 128}
    data = create_text(api, dataset_id=dataset.pk, text=LONG_TEXT, **settings).json()["data"]
    collection = Collection.objects.get(pk=data["collectionId"])
    assert collection.chunk_settings == settings
    expected = split_text(LONG_TEXT, ChunkSettings.from_request(settings))
    assert data["results"]["insertLen"] == len(expected)
    assert max(len(r.q) for r in Data.objects.filter(collection=collection)) <= 240


def test_custom_splitter(api, dataset):
    text = "part one text##part two text##part three"
    data = create_text(
        api, dataset_id=dataset.pk, text=text, chunkSettingMode="custom", chunkSplitMode="char", chunkSplitter="##"
    ).json()["data"]
    assert list(Data.objects.filter(collection_id=data["collectionId"]).order_by("chunk_index").values_list("q", flat=True)) == [
        "part one text", "part two text", "part three",
    ]


def test_create_time_is_kept(api, dataset):
    data = create_text(api, dataset_id=dataset.pk, text="hello", createTime="2024-05-01T10:00:00Z").json()["data"]
    assert Collection.objects.get(pk=data["collectionId"]).created_at.isoformat().startswith("2024-05-01T10:00:00")


@pytest.mark.parametrize(
    "params, field",
    [
        ({"text": "   \n "}, "text"),
        ({"text": None}, "text"),
        ({"name": ""}, "name"),
        ({"trainingType": "auto"}, "trainingType"),
        ({"chunkSize": 10}, "chunkSize"),
        ({"chunkSize": "big"}, "chunkSize"),
        ({"chunkSettingMode": "manual"}, "chunkSettingMode"),
        ({"chunkSplitMode": "words"}, "chunkSplitMode"),
        ({"indexSize": 9000}, "indexSize"),
        ({"tags": "a,b"}, "tags"),
        ({"tags": ["x" * 101]}, "tags"),
        ({"createTime": "yesterday"}, "createTime"),
        ({"metadata": {"webPageSelector": 5}}, "metadata"),
        ({"parentId": ["x"]}, "parentId"),
    ],
)
def test_create_text_bad_input_names_the_field(api, dataset, params, field):
    body = {"datasetId": dataset.pk, "name": "n", "text": "some text", **params}
    assert_error(post(api, "collection/create/text", body), 400, field)
    assert not Collection.objects.exists()


def test_text_blank_is_refused(api, dataset):
    assert_error(create_text(api, dataset_id=dataset.pk, text="  \n\t "), 400, "text")


def test_qa_without_a_language_model_is_400_saying_so(api, dataset):
    body = assert_error(create_text(api, dataset_id=dataset.pk, text="hello", trainingType="qa"), 400, "language model")
    assert "trainingType" in body["message"]
    assert not Collection.objects.exists()


def test_qa_with_a_language_model_queues_chunks_for_it_not_data(api, team, provider_models):
    from datasets.models import Data, QaChunk
    from datasets.services.datasets import create_dataset

    dataset = create_dataset(team_id=team.pk, name="D", type="dataset", agent_model="fake-llm")
    response = create_text(api, dataset_id=dataset.pk, text="hello", trainingType="qa")
    assert response.status_code == 200 and response.json()["data"]["results"]["insertLen"] == 1
    # Not silently chunked: the text waits for the language model (tests/datasets/test_training_qa.py).
    assert list(QaChunk.objects.values_list("text", flat=True)) == ["hello"] and not Data.objects.exists()


# --- link -----------------------------------------------------------------------------------

PAGE = b"""<html><head><title>T</title><style>.x{}</style><script>var secret=1;</script></head>
<body><nav>Home | About</nav><main><h1>Install guide</h1><p>Run the installer. \xe5\xae\x89\xe8\xa3\x85\xe5\xae\x8c\xe6\x88\x90\xe3\x80\x82</p></main>
<div id="extra"><p>Only this part.</p></div></body></html>"""


def test_create_link_answers_before_fetching_and_the_task_reads_it(api, dataset, settings):
    settings.LINK_FETCH_ALLOW_PRIVATE = True  # the test's page server is on loopback
    with PageServer({"/guide": ("text/html; charset=utf-8", PAGE)}) as server:
        response = post(api, "collection/create/link", {"datasetId": dataset.pk, "link": server.url + "/guide", "trainingType": "chunk"})
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["results"]["insertLen"] == 0
        assert server.hits == []  # never fetched in the request
        collection = Collection.objects.get(pk=data["collectionId"])
        assert (collection.type, collection.raw_link, collection.status) == ("link", server.url + "/guide", "training")
        assert collection.name == server.url + "/guide"
        collection = read_and_train(collection.pk)
        assert server.hits == ["/guide"]
    texts = " ".join(Data.objects.filter(collection=collection).values_list("q", flat=True))
    assert "Run the installer" in texts and "安装完成" in texts
    assert "secret" not in texts and "Home | About" not in texts
    assert collection.status == "ready" and collection.raw_text_length > 0


def test_link_with_a_page_selector(api, dataset, settings):
    settings.LINK_FETCH_ALLOW_PRIVATE = True
    with PageServer({"/p": ("text/html", PAGE)}) as server:
        data = post(api, "collection/create/link", {
            "datasetId": dataset.pk, "link": server.url + "/p", "name": "Extra", "metadata": {"webPageSelector": "#extra"},
        }).json()["data"]
        read_collection_source(collection_id=data["collectionId"])
    assert list(Data.objects.filter(collection_id=data["collectionId"]).values_list("q", flat=True)) == ["Only this part."]
    assert Collection.objects.get(pk=data["collectionId"]).name == "Extra"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254", "10.0.0.1",
     "100.64.0.1", "0.0.0.0", "[fd00::1]"],
)
def test_an_internal_address_is_refused_at_once_and_never_hit(api, dataset, host):
    with PageServer({"/p": ("text/html", PAGE)}) as server:
        port = server.url.rsplit(":", 1)[1]
        body = assert_error(
            post(api, "collection/create/link", {"datasetId": dataset.pk, "link": f"http://{host}:{port}/p"}), 400, "link", "public"
        )
        assert server.hits == []
    assert not Collection.objects.exists()
    assert body["statusText"] == "badRequest"


def test_a_name_resolving_to_an_internal_address_is_refused_by_the_task(api, dataset, settings):
    assert settings.LINK_FETCH_ALLOW_PRIVATE is False
    with PageServer({"/p": ("text/html", PAGE)}) as server:
        link = server.url.replace("127.0.0.1", "localhost") + "/p"
        data = post(api, "collection/create/link", {"datasetId": dataset.pk, "link": link}).json()["data"]
        read_collection_source(collection_id=data["collectionId"])
        assert server.hits == []
    collection = Collection.objects.get(pk=data["collectionId"])
    assert collection.status == "error"
    assert "public" in collection.error_message
    assert not Data.objects.filter(collection=collection).exists()


def test_a_page_that_fails_puts_the_collection_in_error(api, dataset, settings):
    settings.LINK_FETCH_ALLOW_PRIVATE = True
    with PageServer({}) as server:
        data = post(api, "collection/create/link", {"datasetId": dataset.pk, "link": server.url + "/missing"}).json()["data"]
        read_collection_source(collection_id=data["collectionId"])
    collection = Collection.objects.get(pk=data["collectionId"])
    assert collection.status == "error" and "404" in collection.error_message


@pytest.mark.parametrize("link", ["ftp://example.com/a", "file:///etc/passwd", "javascript:alert(1)", "example.com", ""])
def test_link_must_be_http(api, dataset, link):
    assert_error(post(api, "collection/create/link", {"datasetId": dataset.pk, "link": link}), 400, "link")
    assert not Collection.objects.exists()


# --- local file -----------------------------------------------------------------------------


def test_upload_a_gbk_text_file_with_an_encoded_chinese_name(api, dataset):
    text = "知识库上传测试。第一段说明文件的编码是 GBK。\n\n第二段：检索应当找到这句话。"
    response = upload(api, dataset_id=dataset.pk, name=quote("中文说明.txt"), content=text.encode("gbk"), tags=["zh"])
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["results"]["insertLen"] == 0  # read in the background
    collection = Collection.objects.get(pk=data["collectionId"])
    assert (collection.type, collection.file_name, collection.name, collection.file_type) == ("file", "中文说明.txt", "中文说明.txt", "txt")
    assert collection.file_size == len(text.encode("gbk")) and collection.tags == ["zh"]
    assert collection.status == "training"
    assert CollectionSource.objects.filter(collection=collection).exists()
    collection = read_and_train(collection.pk)
    assert collection.status == "ready"
    chunks = "".join(Data.objects.filter(collection=collection).values_list("q", flat=True))
    assert "检索应当找到这句话" in chunks
    assert not CollectionSource.objects.filter(collection=collection).exists()  # bytes dropped once read


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("guide.md", "# Guide\n\n## Install\n\nRun it.\n".encode(), "Run it."),
        ("page.html", PAGE, "Run the installer."),
        ("doc.pdf", make_pdf(["Alpha page text", "Beta page text"]), "Beta page text"),
        ("doc.docx", make_docx(title="Handbook", paragraphs=["The docx body."]), "The docx body."),
    ],
)
def test_upload_each_supported_type(api, dataset, name, content, expected):
    data = upload(api, dataset_id=dataset.pk, name=name, content=content).json()["data"]
    collection = read_and_train(data["collectionId"])
    assert collection.status == "ready", collection.error_message
    assert expected in "\n".join(Data.objects.filter(collection=collection).values_list("q", flat=True))


def test_upload_csv_gives_one_item_per_row(api, dataset):
    content = "question,answer\nWhat is it?,A server.\n怎么安装？,运行安装程序。\n".encode()
    data = upload(api, dataset_id=dataset.pk, name="faq.csv", content=content).json()["data"]
    read_and_train(data["collectionId"])
    rows = list(Data.objects.filter(collection_id=data["collectionId"]).order_by("chunk_index").values_list("q", "a"))
    assert ("What is it?", "A server.") in rows and ("怎么安装？", "运行安装程序。") in rows


def test_a_file_that_fails_to_parse_puts_the_collection_in_error(api, dataset):
    data = upload(api, dataset_id=dataset.pk, name="broken.pdf", content=b"%PDF-1.4 this is not a pdf").json()["data"]
    collection = read_and_train(data["collectionId"])
    assert collection.status == "error"
    assert "broken.pdf" in collection.error_message
    assert not Data.objects.filter(collection=collection).exists()
    listed = post(api, "collection/listV2", {"datasetId": dataset.pk}).json()["data"]["list"][0]
    assert (listed["status"], listed["hasError"], listed["trainingAmount"]) == ("error", True, 0)
    assert "broken.pdf" in listed["errorMsg"]


def test_an_unsupported_type_is_415_naming_the_supported_ones(api, dataset):
    body = assert_error(upload(api, dataset_id=dataset.pk, name="tool.exe", content=b"MZ"), 415, "pdf", "docx", "csv", "txt")
    assert body["statusText"]
    assert not Collection.objects.exists()


def test_a_file_over_the_limit_is_413(api, dataset, settings):
    settings.DATASET_MAX_FILE_BYTES = 100
    assert_error(upload(api, dataset_id=dataset.pk, name="a.txt", content=b"x" * 101), 413, "limit")
    assert upload(api, dataset_id=dataset.pk, name="a.txt", content=b"x" * 100).status_code == 200


def test_a_body_announced_over_the_limit_is_413_before_it_is_read(api, dataset, settings):
    settings.DATASET_MAX_FILE_BYTES = 100
    response = api.post(
        "/api/core/dataset/collection/create/localFile", data=b"x" * 10, content_type="multipart/form-data; boundary=b",
        CONTENT_LENGTH=str(5 * 1024 * 1024),
    )
    assert_error(response, 413)


def test_upload_bad_input(api, dataset):
    path = "/api/core/dataset/collection/create/localFile"
    import io

    def file():
        f = io.BytesIO(b"hello")
        f.name = "a.txt"
        return f

    assert_error(api.post(path, {"data": json.dumps({"datasetId": dataset.pk})}, format="multipart"), 400, "file")
    assert_error(api.post(path, {"file": file()}, format="multipart"), 400, "data")
    assert_error(api.post(path, {"file": file(), "data": "{not json"}, format="multipart"), 400, "data")
    assert_error(api.post(path, {"file": file(), "data": "[1]"}, format="multipart"), 400, "data")
    assert_error(api.post(path, {"file": file(), "data": '{"datasetId": "x\\u0000"}'}, format="multipart"), 400, "data")
    assert_error(api.post(path, {"file": file(), "data": json.dumps({})}, format="multipart"), 400, "datasetId")
    assert_error(
        api.post(path, {"file": file(), "data": json.dumps({"datasetId": dataset.pk, "chunkSize": 1})}, format="multipart"),
        400, "chunkSize",
    )
    assert not Collection.objects.exists()


def test_an_empty_file_is_an_error_state_not_an_empty_collection(api, dataset):
    data = upload(api, dataset_id=dataset.pk, name="empty.txt", content=b"").json()["data"]
    collection = read_and_train(data["collectionId"])
    assert collection.status == "error" and "empty" in collection.error_message


# --- not offered ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/core/dataset/collection/create/apiCollection", "/api/proApi/core/dataset/collection/create/externalFileUrl"]
)
def test_api_and_external_file_collections_are_501(api, dataset, path):
    response = api.post(path, {"datasetId": dataset.pk, "name": "x", "apiFileId": "1", "externalFileUrl": "http://x/a.pdf"}, format="json")
    body = assert_error(response, 501, "not supported", "localFile")
    assert body["statusText"] == "notImplemented"


def test_a_long_text_is_chunked_by_the_background_task(api, dataset, settings):
    settings.DATASET_INLINE_TEXT_CHARS = 100
    data = create_text(api, dataset_id=dataset.pk, text=LONG_TEXT).json()["data"]
    assert data["results"]["insertLen"] == 0
    collection = Collection.objects.get(pk=data["collectionId"])
    assert collection.status == "training" and collection.raw_text_length == len(LONG_TEXT)
    assert not Data.objects.filter(collection=collection).exists()
    listed = post(api, "collection/listV2", {"datasetId": dataset.pk}).json()["data"]["list"][0]
    assert listed["trainingAmount"] == 1  # the unread text counts as one pending item
    collection = read_and_train(collection.pk)
    expected = [c.text for c in split_text(LONG_TEXT, ChunkSettings())]
    assert list(Data.objects.filter(collection=collection).order_by("chunk_index").values_list("q", flat=True)) == expected
    assert collection.status == "ready"
    assert not CollectionSource.objects.filter(collection=collection).exists()


def test_an_unread_file_counts_as_pending_until_the_worker_reads_it(api, dataset):
    data = upload(api, dataset_id=dataset.pk, name="a.txt", content=b"First line.\n\nSecond line.").json()["data"]
    listed = post(api, "collection/listV2", {"datasetId": dataset.pk}).json()["data"]["list"][0]
    assert (listed["trainingAmount"], listed["dataAmount"], listed["status"]) == (1, 0, "training")
    read_collection_source(collection_id=data["collectionId"])
    listed = post(api, "collection/listV2", {"datasetId": dataset.pk}).json()["data"]["list"][0]
    # The built-in embedding trains the chunks as the worker reads them: nothing left pending.
    assert (listed["trainingAmount"], listed["status"]) == (0, "ready") and listed["dataAmount"] >= 1
    read_collection_source(collection_id=data["collectionId"])  # a second run (a retried task) reads nothing again
    assert Data.objects.filter(collection_id=data["collectionId"]).count() == listed["dataAmount"]


def test_a_collection_deleted_before_its_read_is_skipped(api, dataset):
    data = upload(api, dataset_id=dataset.pk, name="a.txt", content=b"text").json()["data"]
    post(api, "collection/delete", {"collectionIds": [data["collectionId"]]})
    read_collection_source(collection_id=data["collectionId"])
    assert not Data.objects.exists() and not CollectionSource.objects.exists()


def test_a_lone_surrogate_in_the_text_is_400(api, dataset):
    raw = '{"datasetId": "%s", "name": "n", "text": "broken \\ud800 text"}' % dataset.pk  # a JSON escape
    response = api.post("/api/core/dataset/collection/create/text", raw, content_type="application/json")
    assert_error(response, 400, "text", "surrogate")
    assert not Collection.objects.exists()
