"""Listing, reading, updating and deleting collections."""

import pytest

from datasets.models import Collection, Data, DataIndex, Dataset
from datasets.search.fulltext import fulltext_backend
from datasets.services.collections import create_empty_collection
from providers.words import words
from tests.datasets.api.helpers import assert_error, create_text, post, put, read_and_train


def make(dataset, name, kind="virtual", parent=None):
    return create_empty_collection(
        team_id=dataset.team_id, dataset_id=dataset.pk, name=name, type=kind, parent_id=parent.pk if parent else None
    )


def list_v2(api, **body):
    return post(api, "collection/listV2", body)


# --- listV2 and the legacy list --------------------------------------------------------------


def test_list_items_have_fastgpts_fields_and_amounts(api, dataset):
    collection_id = create_text(api, dataset_id=dataset.pk, text="one.\n\ntwo.", name="T").json()["data"]["collectionId"]
    response = list_v2(api, datasetId=dataset.pk)
    assert response.status_code == 200
    page = response.json()["data"]
    assert page["total"] == 1
    item = page["list"][0]
    assert {
        "_id", "parentId", "tmbId", "type", "name", "rawLink", "updateTime", "dataAmount", "trainingAmount",
        "externalFileId", "tags", "forbid", "trainingType", "permission", "status", "errorMsg", "hasError",
    } <= item.keys()
    assert (item["_id"], item["type"], item["name"], item["trainingType"]) == (collection_id, "text", "T", "chunk")
    assert (item["dataAmount"], item["trainingAmount"], item["status"]) == (1, 1, "training")
    assert item["permission"]["hasWritePer"] is True

    read_and_train(collection_id)
    item = list_v2(api, datasetId=dataset.pk).json()["data"]["list"][0]
    assert (item["dataAmount"], item["trainingAmount"], item["status"], item["hasError"]) == (1, 0, "ready", False)


def test_list_pages_with_offset_and_page_size(api, dataset):
    names = [f"c{i:02d}" for i in range(35)]
    for name in names:
        make(dataset, name)
    first = list_v2(api, datasetId=dataset.pk, offset=0, pageSize=30).json()["data"]
    second = list_v2(api, datasetId=dataset.pk, offset=30, pageSize=30).json()["data"]
    assert first["total"] == second["total"] == 35
    assert len(first["list"]) == 30 and len(second["list"]) == 5
    assert sorted(i["name"] for i in first["list"] + second["list"]) == names


def test_list_by_folder_and_search(api, dataset):
    folder = make(dataset, "Folder", "folder")
    make(dataset, "Root doc")
    make(dataset, "Inner doc", parent=folder)
    root = list_v2(api, datasetId=dataset.pk).json()["data"]["list"]
    assert {i["name"] for i in root} == {"Folder", "Root doc"}
    inner = list_v2(api, datasetId=dataset.pk, parentId=folder.pk).json()["data"]["list"]
    assert [(i["name"], i["parentId"]) for i in inner] == [("Inner doc", folder.pk)]
    found = list_v2(api, datasetId=dataset.pk, searchText="inner").json()["data"]
    assert [i["name"] for i in found["list"]] == ["Inner doc"] and found["total"] == 1


def test_legacy_list_pages_by_page_number(api, dataset):
    for i in range(5):
        make(dataset, f"c{i}")
    page = post(api, "collection/list", {"datasetId": dataset.pk, "pageNum": 2, "pageSize": 2}).json()["data"]
    assert (page["pageNum"], page["pageSize"], page["total"], len(page["data"])) == (2, 2, 5, 2)
    page3 = post(api, "collection/list", {"datasetId": dataset.pk, "pageNum": 3, "pageSize": 2}).json()["data"]
    assert len(page3["data"]) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"pageSize": 31}, "pageSize"),
        ({"pageSize": 0}, "pageSize"),
        ({"offset": -1}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"searchText": "x" * 201}, "searchText"),
    ],
)
def test_list_bad_input_names_the_field(api, dataset, body, field):
    assert_error(list_v2(api, datasetId=dataset.pk, **body), 400, field)


def test_list_bad_input(api, dataset, virtual):
    assert_error(list_v2(api), 400, "datasetId")
    assert_error(list_v2(api, datasetId=dataset.pk, parentId=virtual.pk), 400, "folder")
    assert_error(post(api, "collection/list", {"datasetId": dataset.pk, "pageNum": 0}), 400, "pageNum")
    assert_error(list_v2(api, datasetId="0" * 24), 404)


# --- detail ----------------------------------------------------------------------------------


def test_detail_has_fastgpts_fields(api, dataset, team):
    data = create_text(
        api, dataset_id=dataset.pk, text="Hello.", name="T", chunkSettingMode="custom", chunkSize=300, chunkSplitter="##",
    ).json()["data"]
    response = api.get(f"/api/core/dataset/collection/detail?id={data['collectionId']}")
    assert response.status_code == 200
    detail = response.json()["data"]
    assert detail["_id"] == data["collectionId"] and detail["teamId"] == team.pk
    assert detail["datasetId"]["_id"] == dataset.pk
    assert detail["datasetId"]["vectorModel"] == dataset.vector_model
    assert (detail["chunkSize"], detail["chunkSplitter"], detail["chunkSettingMode"]) == (300, "##", "custom")
    assert detail["rawTextLength"] == 6 and len(detail["hashRawText"]) == 64
    assert (detail["dataAmount"], detail["trainingAmount"], detail["sourceName"]) == (1, 1, "T")
    assert {"createTime", "updateTime", "canWrite", "trainingType", "qaPrompt", "tags", "forbid"} <= detail.keys()


def test_detail_bad_input(api):
    assert_error(api.get("/api/core/dataset/collection/detail"), 400, "id")
    assert_error(api.get("/api/core/dataset/collection/detail?id=nope"), 404)


# --- update ----------------------------------------------------------------------------------


def test_update_fields(api, dataset, virtual):
    response = put(api, "collection/update", {
        "id": virtual.pk, "name": "Renamed", "tags": ["x"], "forbid": True, "createTime": "2023-01-02T03:04:05Z",
    })
    assert response.status_code == 200 and response.json()["data"] is None
    virtual.refresh_from_db()
    assert (virtual.name, virtual.tags, virtual.forbid) == ("Renamed", ["x"], True)
    assert virtual.created_at.isoformat().startswith("2023-01-02T03:04:05")


def test_absent_fields_stay(api, virtual):
    put(api, "collection/update", {"id": virtual.pk, "forbid": True})
    virtual.refresh_from_db()
    assert (virtual.name, virtual.forbid) == ("Manual", True)


def test_move_into_a_folder_and_back_to_the_root(api, dataset, virtual, folder):
    put(api, "collection/update", {"id": virtual.pk, "parentId": folder.pk})
    virtual.refresh_from_db()
    assert virtual.parent_id == folder.pk
    put(api, "collection/update", {"id": virtual.pk, "parentId": None})
    virtual.refresh_from_db()
    assert virtual.parent_id is None


def test_a_folder_cannot_move_into_itself_or_below(api, dataset, folder):
    inner = make(dataset, "Inner", "folder", parent=folder)
    assert_error(put(api, "collection/update", {"id": folder.pk, "parentId": folder.pk}), 400, "parentId")
    assert_error(put(api, "collection/update", {"id": folder.pk, "parentId": inner.pk}), 400, "parentId")
    folder.refresh_from_db()
    assert folder.parent_id is None


def test_update_by_dataset_and_external_file_id(api, dataset, virtual):
    Collection.objects.filter(pk=virtual.pk).update(external_file_id="ext-1")
    put(api, "collection/update", {"datasetId": dataset.pk, "externalFileId": "ext-1", "name": "By external id"})
    virtual.refresh_from_db()
    assert virtual.name == "By external id"
    assert_error(put(api, "collection/update", {"datasetId": dataset.pk, "externalFileId": "nope", "name": "x"}), 404)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x"}, "id"),
        ({"datasetId": "abc", "name": "x"}, "id"),
        ({"id": "ID", "name": ""}, "name"),
        ({"id": "ID", "tags": "x"}, "tags"),
        ({"id": "ID", "forbid": "maybe"}, "forbid"),
        ({"id": "ID", "createTime": "soon"}, "createTime"),
    ],
)
def test_update_bad_input_names_the_field(api, virtual, body, field):
    body = {k: (virtual.pk if v == "ID" else v) for k, v in body.items()}
    assert_error(put(api, "collection/update", body), 400, field)


def test_update_parent_must_be_a_folder(api, virtual):
    other = make(virtual.dataset, "Other")
    assert_error(put(api, "collection/update", {"id": virtual.pk, "parentId": other.pk}), 400, "folder")


# --- delete ----------------------------------------------------------------------------------


def searchable(dataset, text: str) -> list[str]:
    return [hit.data_id for hit in fulltext_backend().recall(dataset_ids=[dataset.pk], words=words(text), limit=10)]


def test_delete_removes_data_vectors_and_tokens(api, dataset):
    collection_id = create_text(api, dataset_id=dataset.pk, text="Zebra crossings are striped.").json()["data"]["collectionId"]
    read_and_train(collection_id)
    assert searchable(dataset, "zebra") and DataIndex.objects.filter(embedding__isnull=False).exists()
    version = Dataset.objects.get(pk=dataset.pk).vector_version

    response = post(api, "collection/delete", {"collectionIds": [collection_id]})
    assert response.status_code == 200 and response.json()["data"] is None
    assert not Collection.objects.filter(pk=collection_id).exists()
    assert not Data.objects.exists() and not DataIndex.objects.exists()
    assert searchable(dataset, "zebra") == []
    assert Dataset.objects.get(pk=dataset.pk).vector_version > version


def test_delete_a_folder_deletes_what_is_inside(api, dataset, folder):
    inner = make(dataset, "Inner", "folder", parent=folder)
    leaf = create_text(api, dataset_id=dataset.pk, text="leaf text", parentId=inner.pk).json()["data"]["collectionId"]
    post(api, "collection/delete", {"collectionIds": [folder.pk]})
    assert not Collection.objects.filter(pk__in=[folder.pk, inner.pk, leaf]).exists()
    assert not Data.objects.exists()


def test_delete_with_the_older_delete_form(api, virtual):
    response = api.delete(f"/api/core/dataset/collection/delete?id={virtual.pk}")
    assert response.status_code == 200
    assert not Collection.objects.filter(pk=virtual.pk).exists()


def test_one_unknown_id_deletes_nothing(api, virtual):
    assert_error(post(api, "collection/delete", {"collectionIds": [virtual.pk, "f" * 24]}), 404)
    assert Collection.objects.filter(pk=virtual.pk).exists()


@pytest.mark.parametrize("body", [{}, {"collectionIds": []}, {"collectionIds": "abc"}, {"collectionIds": [None]}])
def test_delete_bad_input(api, body):
    assert_error(post(api, "collection/delete", body), 400, "collectionIds")


def test_delete_without_id_is_400(api):
    assert_error(api.delete("/api/core/dataset/collection/delete"), 400, "id")


def test_deleting_the_dataset_removes_its_data_and_tokens(api, dataset):
    collection_id = create_text(api, dataset_id=dataset.pk, text="Giraffes have long necks.").json()["data"]["collectionId"]
    read_and_train(collection_id)
    assert searchable(dataset, "giraffes")
    assert api.delete(f"/api/core/dataset/delete?id={dataset.pk}").status_code == 200
    assert not Collection.objects.exists() and not Data.objects.exists() and not DataIndex.objects.exists()
    assert searchable(dataset, "giraffes") == []
