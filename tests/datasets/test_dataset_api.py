"""The dataset endpoints: create, list, detail, delete — good and bad input."""

import pytest

from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM
from datasets.models import Dataset


def create(api, **body):
    return api.post("/api/core/dataset/create", body, format="json")


def test_create_returns_the_new_id_in_the_envelope(api, team):
    response = create(api, name="Docs", intro="Product manuals")
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["statusText"], body["message"]) == (200, "", "")
    dataset = Dataset.objects.get(pk=body["data"])
    assert (dataset.team, dataset.name, dataset.intro, dataset.type) == (team, "Docs", "Product manuals", "dataset")
    assert dataset.parent is None
    assert (dataset.vector_model, dataset.agent_model) == (BUILTIN_EMBEDDING, BUILTIN_LLM)


def test_create_in_a_folder_and_list_that_folder(api):
    folder_id = create(api, name="Folder", type="folder").json()["data"]
    child_id = create(api, name="Inside", parentId=folder_id).json()["data"]
    create(api, name="At root")

    root = api.post("/api/core/dataset/list", {}, format="json").json()["data"]
    assert {item["name"] for item in root} == {"Folder", "At root"}
    inside = api.post("/api/core/dataset/list", {"parentId": folder_id}, format="json").json()["data"]
    assert [item["_id"] for item in inside] == [child_id]
    by_query = api.post(f"/api/core/dataset/list?parentId={folder_id}", {}, format="json").json()["data"]
    assert [item["_id"] for item in by_query] == [child_id]


@pytest.mark.parametrize("root", [None, ""])
def test_null_and_empty_parent_mean_the_root(api, root):
    create(api, name="A", parentId=root)
    items = api.post("/api/core/dataset/list", {"parentId": root}, format="json").json()["data"]
    assert [item["name"] for item in items] == ["A"]
    assert items[0]["parentId"] is None


def test_list_items_have_fastgpts_fields(api):
    create(api, name="A", avatar="/icon.svg")
    item = api.post("/api/core/dataset/list", {}, format="json").json()["data"][0]
    assert {"_id", "parentId", "avatar", "name", "intro", "type", "permission", "canWrite", "isOwner", "vectorModel"} <= item.keys()
    assert item["avatar"] == "/icon.svg"
    assert set(item["vectorModel"]) == {"model", "name", "charsPointsPrice", "defaultToken", "maxToken", "weight"}
    assert item["vectorModel"]["model"] == BUILTIN_EMBEDDING


def test_detail_has_fastgpts_fields(api, team):
    dataset_id = create(api, name="A").json()["data"]
    response = api.get(f"/api/core/dataset/detail?id={dataset_id}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["_id"] == dataset_id
    assert data["teamId"] == team.pk
    assert data["status"] == "active"
    assert data["agentModel"]["model"] == BUILTIN_LLM
    assert {"maxContext", "maxResponse", "charsPointsPrice", "name"} <= data["agentModel"].keys()
    assert {"tmbId", "intro", "permission", "updateTime", "canWrite", "isOwner", "vectorModel"} <= data.keys()


def test_delete_removes_it_and_answers_null(api):
    dataset_id = create(api, name="A").json()["data"]
    response = api.delete(f"/api/core/dataset/delete?id={dataset_id}")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert not Dataset.objects.filter(pk=dataset_id).exists()
    assert api.get(f"/api/core/dataset/detail?id={dataset_id}").status_code == 404


def test_deleting_a_folder_deletes_what_is_inside(api):
    folder_id = create(api, name="F", type="folder").json()["data"]
    child_id = create(api, name="C", parentId=folder_id).json()["data"]
    api.delete(f"/api/core/dataset/delete?id={folder_id}")
    assert not Dataset.objects.filter(pk__in=[folder_id, child_id]).exists()


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 5, "type": "library"}, "type"),
        ({"name": "x", "vectorModel": "no-such-model"}, "vectorModel"),
        ({"name": "x", "agentModel": "builtin-lexical-embedding"}, "agentModel"),
        ({"name": "x", "intro": ["list"]}, "intro"),
    ],
)
def test_create_rejects_bad_input_with_400_naming_the_field(api, body, field):
    response = create(api, **body)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert body["statusText"] == "badRequest"
    assert field in body["message"]
    assert field in body["data"]
    assert not Dataset.objects.exists()


def test_create_rejects_a_body_that_is_not_an_object(api):
    response = api.post("/api/core/dataset/create", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["code"] == 400


def test_create_under_a_dataset_that_is_not_a_folder_is_400(api):
    plain = create(api, name="plain").json()["data"]
    response = create(api, name="x", parentId=plain)
    assert response.status_code == 400
    assert "folder" in response.json()["message"]


def test_create_under_an_unknown_parent_is_404(api):
    assert create(api, name="x", parentId="000000000000000000000000").status_code == 404


def test_detail_and_delete_without_id_are_400(api):
    for response in (api.get("/api/core/dataset/detail"), api.delete("/api/core/dataset/delete")):
        assert response.status_code == 400
        assert "id" in response.json()["message"]


def test_unknown_ids_are_404(api):
    assert api.get("/api/core/dataset/detail?id=nope").json()["code"] == 501000
    assert api.delete("/api/core/dataset/delete?id=nope").status_code == 404


def test_wrong_method_is_405_in_the_envelope(api):
    response = api.get("/api/core/dataset/create")
    assert response.status_code == 405
    assert response.json()["statusText"] == "methodNotAllowed"


def test_list_with_a_bad_parent_type_is_400(api):
    response = api.post("/api/core/dataset/list", {"parentId": {"a": 1}}, format="json")
    assert response.status_code == 400
    assert "parentId" in response.json()["message"]
